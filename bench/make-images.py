#!/usr/bin/env python3
"""Write N docker-save archives of a catalogue to DIR: every image has one of three
base layers stacks (4 MiB of random bytes per layer, shared as real catalogues share
their bases) and a 256 KiB layer of its own; tagged bench/appN:1.

    bench/make-images.py DIR [N]
"""
import hashlib
import io
import json
import os
import random
import sys
import tarfile


def layer(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def main():
    out, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 50
    rng = random.Random(7)
    bases = [layer([(f"base{k}/blob", rng.randbytes(4 << 20))]) for k in range(3)]
    os.makedirs(out, exist_ok=True)
    for n in range(count):
        layers = bases[: 1 + n % 3] + [layer([(f"app/{n}", rng.randbytes(256 << 10))])]
        diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        with tarfile.open(os.path.join(out, f"app{n}.tar"), "w") as tar:
            def add(name, data):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            add(config_name, config)
            names = []
            for data, diff_id in zip(layers, diff_ids):
                names.append(diff_id[7:] + "/layer.tar")
                add(names[-1], data)
            item = {"Config": config_name, "RepoTags": [f"bench/app{n}:1"], "Layers": names}
            add("manifest.json", json.dumps([item]).encode())


main()
