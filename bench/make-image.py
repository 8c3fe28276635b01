#!/usr/bin/env python3
"""Build a docker-save archive of a given size for benchmarks, from files on this machine.

    make-image.py OUT.tar SIZE_MIB [LAYERS]

Layer content is real files (binaries, libraries, text) from /usr, so compression and
hashing see realistic data. The archive is in Docker <= 24 form (manifest.json,
<id>.json, <v1id>/layer.tar); each layer's diff_id is computed here.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

out, size_mib = sys.argv[1], int(sys.argv[2])
layers = int(sys.argv[3]) if len(sys.argv) > 3 else 3
per_layer = size_mib * 1024 * 1024 // layers


def files():
    while True:
        for root, dirs, names in os.walk("/usr"):
            dirs.sort()
            for n in sorted(names):
                p = os.path.join(root, n)
                if os.path.isfile(p) and not os.path.islink(p):
                    yield p


source = files()
layer_blobs = []
for i in range(layers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        total = 0
        k = 0
        while total < per_layer:
            p = next(source)
            try:
                data = open(p, "rb").read()
            except OSError:
                continue
            info = tarfile.TarInfo("layer%d/%06d/%s" % (i, k, os.path.basename(p)))
            info.size = len(data)
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
            total += len(data)
            k += 1
    layer_blobs.append(buf.getvalue())

diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layer_blobs]
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["/bin/sh"]},
    "created": "2024-01-01T00:00:00Z",
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "bench layer %d" % i} for i in range(layers)],
}).encode()
config_hex = hashlib.sha256(config).hexdigest()
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add(config_hex + ".json", config)
    paths = []
    for i, blob in enumerate(layer_blobs):
        v1 = hashlib.sha256(("bench %d %s" % (i, diff_ids[i])).encode()).hexdigest()
        add(v1 + "/layer.tar", blob)
        paths.append(v1 + "/layer.tar")
    add("manifest.json", json.dumps([{"Config": config_hex + ".json", "RepoTags": ["bench/image:latest"], "Layers": paths}]).encode())
print("%s: %d layers, %d MiB, config sha256:%s" % (out, layers, os.path.getsize(out) >> 20, config_hex))
