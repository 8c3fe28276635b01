#!/usr/bin/env python3
"""Write the layer the diff benchmark puts on top of the benchmark image.

    make-extra-layer.py SAVE.tar OUT.tar

The layer changes the first regular file of the image's top layer, deletes the second
with a whiteout, and adds a file of its own, so that the two images differ in each
way a diff reports.
"""
import io
import json
import sys
import tarfile

save, out = sys.argv[1], sys.argv[2]
with tarfile.open(save) as archive:
    manifest = json.load(archive.extractfile("manifest.json"))
    top = tarfile.open(fileobj=archive.extractfile(manifest[0]["Layers"][-1]))
    changed, deleted = [m.name for m in top.getmembers() if m.isfile()][:2]


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1700000000
    tar.addfile(info, io.BytesIO(data))


with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
    add(tar, changed, b"changed by the benchmark\n")
    parent, _, base = deleted.rpartition("/")
    add(tar, (parent + "/" if parent else "") + ".wh." + base, b"")
    add(tar, "bench-diff/added.txt", b"added by the benchmark\n")
