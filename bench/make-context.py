#!/usr/bin/env python3
"""Write a Docker build context for the benchmark image, from files of this machine.

    make-context.py DIR

DIR gets a Dockerfile (FROM scratch, one COPY per layer) and one folder per layer,
about 1 GiB in all, shaped like real images:

  1. base      ~120 MiB of small compressible files (headers, scripts, docs)
  2-4. bin-N   ~150 MiB each of large binaries and libraries
  5. names     50,000 small files under long paths (over 100 bytes: PAX headers)
  6. random    200 MiB of pseudo-random bytes (incompressible, fixed seed)
  7. share     ~80 MiB of mixed data (locales, icons, fonts, already-compressed docs)
  8. config    a few small files, as the last layer of an application image

Files are picked in sorted order and their times pinned, so the same machine always
builds the same layers.
"""
import os
import random
import shutil
import sys

MIB = 1024 * 1024
out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def walk(*roots):
    """Regular files under roots, sorted, each once."""
    seen = set()
    for root in roots:
        for path, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(path, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                real = os.path.realpath(full)
                if real in seen:
                    continue
                seen.add(real)
                yield full


def readable(path):
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


used = set()


def take(files, budget, predicate):
    """Files matching predicate, not used by another layer, up to budget bytes."""
    picked, total = [], 0
    for f in files:
        if f in used or not predicate(f) or not readable(f):
            continue
        size = os.path.getsize(f)
        if total + size > budget:
            continue
        picked.append(f)
        used.add(f)
        total += size
        if total >= budget * 0.98:
            break
    return picked


def copy_tree(layer, files):
    for f in files:
        dest = os.path.join(out, layer, f.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(f, dest)


layers = []

TEXT = (".h", ".hpp", ".py", ".pl", ".pm", ".sh", ".txt", ".md", ".html", ".css",
        ".js", ".json", ".xml", ".conf", ".rb", ".tcl", ".c", ".rs", ".toml", "copyright")
base = take(walk("/usr/include", "/usr/lib", "/usr/share"), 120 * MIB,
            lambda f: f.endswith(TEXT) and os.path.getsize(f) < 256 * 1024)
copy_tree("base", base)
layers.append("base")

# Large binaries and libraries, biggest first, dealt round-robin into three layers.
big = sorted((f for f in walk("/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec")
              if os.path.getsize(f) >= MIB and readable(f)),
             key=lambda f: (-os.path.getsize(f), f))
bins = [[], [], []]
sizes = [0, 0, 0]
for f in big:
    i = sizes.index(min(sizes))
    size = os.path.getsize(f)
    if sizes[i] + size > 150 * MIB:
        continue
    bins[i].append(f)
    sizes[i] += size
    used.add(f)
for i, files in enumerate(bins):
    copy_tree(f"bin-{i + 1}", files)
    layers.append(f"bin-{i + 1}")

# 50,000 small files under long names: every path is over 100 bytes.
small = [f for f in walk("/usr") if f not in used and os.path.getsize(f) < 8 * 1024
         and readable(f)]
if len(small) < 1000:
    sys.exit("make-context.py: too few small files under /usr")
for n in range(50_000):
    f = small[n % len(small)]
    d = os.path.join(out, "names", "application-data-directory-with-a-long-name-%03d" % (n // 500),
                     "nested-component-that-makes-the-path-longer-still")
    os.makedirs(d, exist_ok=True)
    name = "%05d-%s-with-a-suffix-long-enough-for-pax" % (n, os.path.basename(f)[:40])
    shutil.copyfile(f, os.path.join(d, name))
layers.append("names")

rng = random.Random(20261126)
os.makedirs(os.path.join(out, "random"), exist_ok=True)
for i in range(4):
    with open(os.path.join(out, "random", "blob-%d.bin" % i), "wb") as fh:
        for _ in range(50):
            fh.write(rng.randbytes(MIB))
layers.append("random")

share = take(walk("/usr/share", "/usr/lib"), 80 * MIB, lambda f: True)
copy_tree("share", share)
layers.append("share")

os.makedirs(os.path.join(out, "config", "etc", "app"), exist_ok=True)
for name in ("app.conf", "logging.conf", "version"):
    with open(os.path.join(out, "config", "etc", "app", name), "w") as fh:
        fh.write("# %s of the benchmark image\nkey = value\n" % name)
layers.append("config")

with open(os.path.join(out, "Dockerfile"), "w") as fh:
    fh.write("FROM scratch\n")
    for layer in layers:
        fh.write("COPY %s/ /\n" % layer)
    fh.write('ENV PATH=/usr/bin\nCMD ["/usr/bin/true"]\n')

for path, dirs, names in os.walk(out):
    for name in dirs + names:
        os.utime(os.path.join(path, name), (0, 0), follow_symlinks=False)
total = sum(os.path.getsize(os.path.join(p, n)) for p, _, ns in os.walk(out) for n in ns)
print("build context: %d MiB in %d layers" % (total // MIB, len(layers)), file=sys.stderr)
