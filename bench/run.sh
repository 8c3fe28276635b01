#!/usr/bin/env bash
# Benchmark dockhand against skopeo, and both against the machine's floors, on a
# realistic image of about 1 GiB.
#
#   bench/run.sh [RUNS]        (default 3; each number is the median of RUNS runs)
#
# Builds the image with a private Docker daemon (vfs storage, no network, stopped on
# exit) from files of this machine (bench/make-context.py: 8 layers, among them 200 MiB
# of random bytes, 50,000 small files under long names, large binaries and small text
# files), saves it with `docker save`, derives uncompressed, gzip and zstd OCI layouts
# with skopeo, then times each conversion with dockhand and skopeo on the same inputs:
# wall time and peak RSS (GNU time), outputs removed and flushed between runs, dockhand
# and skopeo in turn (d s d s ...) so that the machine's drift weighs on both. Prints
# Markdown tables: the conversions, the floors, and the targets.
#
# Then it pushes the image to a registry on 127.0.0.1 (Debian's docker-registry) and
# pulls it back, with each tool; every push starts from an empty registry.
#
# Needs: a release build (built here), skopeo, docker.io (dockerd), docker-registry,
# pigz, zstd, GNU time, python3; root, for dockerd. Uses about 12 GiB under
# ${TMPDIR:-/tmp}. With DOCKHAND_BENCH_DIR set, the inputs are kept there and reused by
# the next run. DOCKHAND_BENCH_ONLY=registry measures only the registry rows (and the
# catalogue); DOCKHAND_BENCH_ONLY=sync only the catalogue: 50 generated images
# (bench/make-images.py) synced between two loopback registries with dockhand sync and
# skopeo sync, first into an empty registry and then again with nothing new.
# DOCKHAND_BENCH_ONLY=diff only the comparison of two images (the benchmark image and
# the same with one more layer, bench/make-extra-layer.py) with `dockhand diff`,
# against unpacking both with umoci and comparing the trees with `diff -r`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
for tool in skopeo dockerd docker docker-registry pigz zstd python3 tar /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/run.sh needs $tool" >&2; exit 1; }
done
cargo build --release --quiet
bin=$PWD/target/release/dockhand
if [ -n "${DOCKHAND_BENCH_DIR:-}" ]; then
    mkdir -p "$DOCKHAND_BENCH_DIR"
    work=$(cd "$DOCKHAND_BENCH_DIR" && pwd)
    keep=1
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/dockhand-bench.XXXXXX")
    keep=0
fi

daemon_pid=""
registry_pid=""
mirror_pid=""
stop_registry() {
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
        registry_pid=""
    fi
    rm -rf "$work/registry"
}
stop_mirror() {
    if [ -n "$mirror_pid" ]; then
        kill "$mirror_pid" 2>/dev/null || true
        wait "$mirror_pid" 2>/dev/null || true
        mirror_pid=""
    fi
    rm -rf "$work/mirror"
}
stop_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        daemon_pid=""
    fi
}
finish() {
    stop_daemon
    stop_registry
    stop_mirror
    if [ "$keep" = 1 ]; then rm -rf "$work"/out* "$work/docker" "$work/context"; else rm -rf "$work"; fi
}
trap finish EXIT

# ---------------------------------------------------------------- the inputs
only=${DOCKHAND_BENCH_ONLY:-}
if [ "$only" != sync ] && [ ! -f "$work/zstd/index.json" ]; then
    echo "building the benchmark image..." >&2
    rm -rf "$work/docker" "$work/context" "$work/plain" "$work/gzip" "$work/zstd"
    dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
        --data-root "$work/docker/root" --exec-root "$work/docker/exec" \
        --pidfile "$work/docker/pid" -H "unix://$work/docker/sock" >"$work/docker.log" 2>&1 &
    daemon_pid=$!
    export DOCKER_HOST="unix://$work/docker/sock"
    for _ in $(seq 1 120); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
    docker version >/dev/null || { cat "$work/docker.log" >&2; exit 1; }
    python3 bench/make-context.py "$work/context"
    DOCKER_BUILDKIT=0 docker build -q -t bench/big:1 "$work/context" >/dev/null 2>"$work/build.err" ||
        { cat "$work/build.err" >&2; exit 1; }
    # A second, smaller image, for picking one image out of an archive of two.
    printf 'FROM scratch\nCOPY share/ /app/share/\nCOPY config/ /app/\n' |
        DOCKER_BUILDKIT=0 docker build -q -t bench/app:1 -f - "$work/context" >/dev/null 2>"$work/build.err" ||
        { cat "$work/build.err" >&2; exit 1; }
    docker save bench/big:1 >"$work/in.tar"
    docker save bench/big:1 bench/app:1 >"$work/two.tar"
    stop_daemon
    rm -rf "$work/docker" "$work/context"
    skopeo copy -q --dest-oci-accept-uncompressed-layers docker-archive:"$work/in.tar" oci:"$work/plain:latest"
    skopeo copy -q docker-archive:"$work/in.tar" oci:"$work/gzip:latest"
    skopeo copy -q --dest-compress-format zstd docker-archive:"$work/in.tar" oci:"$work/zstd:latest"
fi
sync

# The layer blobs of an OCI layout, for the decompression floors.
layers() {
    python3 - "$1" <<'EOF'
import json, sys
root = sys.argv[1]
blob = lambda d: "%s/blobs/sha256/%s" % (root, d.split(":")[1])
index = json.load(open(root + "/index.json"))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
print("\n".join(blob(l["digest"]) for l in manifest["layers"]))
EOF
}
if [ "$only" != sync ]; then
    mapfile -t gzip_layers < <(layers "$work/gzip")
    mapfile -t zstd_layers < <(layers "$work/zstd")
fi

# ---------------------------------------------------------------- measuring
declare -A wall rss
declare -A runs_of
# run_once KEY COMMAND: one run of the shell command, timed; its "wall rss_kb" line is
# added to KEY's runs. Outputs ($work/out*) are removed and flushed first. A command
# that fails marks KEY "failed".
run_once() {
    local key=$1 cmd=$2
    [ "${wall[$key]:-}" = failed ] && return
    rm -rf "$work"/out*
    sync
    if ! /usr/bin/time -f "%e %M" -o "$work/time" sh -c "$cmd" >/dev/null 2>"$work/err"; then
        echo "  $key failed: $(grep -v '^Command exited' "$work/err" | tail -n1)" >&2
        wall[$key]=failed
        rss[$key]=failed
        return
    fi
    runs_of[$key]+="$(cat "$work/time")"$'\n'
}
# settle KEY: the median wall seconds of KEY's runs, and the peak RSS (MiB) of that run.
settle() {
    local key=$1 median
    [ "${wall[$key]:-}" = failed ] && return
    median=$(printf '%s' "${runs_of[$key]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    wall[$key]=${median% *}
    rss[$key]=$(awk -v kb="${median#* }" 'BEGIN { printf "%.0f", kb / 1024 }')
    echo "  $key: ${wall[$key]} s, ${rss[$key]} MiB" >&2
}
# measure KEY COMMAND: the median of $runs runs of one shell command.
measure() {
    local i
    for ((i = 0; i < runs; i++)); do run_once "$1" "$2"; done
    settle "$1"
}
# pair NAME DOCKHAND_COMMAND SKOPEO_COMMAND: both, run in turn (d s d s ...), so that
# the machine's drift (page cache, disk write-back) weighs on both alike.
pair() {
    local i
    for ((i = 0; i < runs; i++)); do
        run_once "d-$1" "$2"
        run_once "s-$1" "$3"
    done
    settle "d-$1"
    settle "s-$1"
}
size_of() { du -sb "$1" | cut -f1; }

# ---------------------------------------------------------------- the tables
ratio() { # a / b, or "n/a" when either failed
    case "$1$2" in *failed*) echo n/a; return;; esac
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
row() { # label, key suffix
    local d=d-$2 s=s-$2
    if [ "${wall[$s]}" = failed ]; then
        printf '| %s | %s s | fails | | %s MiB | |\n' "$1" "${wall[$d]}" "${rss[$d]}"
        return
    fi
    local faster
    faster=$(ratio "${wall[$s]}" "${wall[$d]}")
    # A row whose dockhand time is below GNU time's 10 ms clock has no ratio.
    if [ "$faster" = n/a ]; then faster="(below the 10 ms clock)"; else faster="**${faster}x**"; fi
    printf '| %s | %s s | %s s | %s | %s MiB | %s MiB |\n' "$1" "${wall[$d]}" "${wall[$s]}" \
        "$faster" "${rss[$d]}" "${rss[$s]}"
}
echo "measuring ($runs runs each)..." >&2
in=$work/in.tar
d=$bin
if [ -z "$only" ]; then
measure floor-start "'$d' --version"
measure floor-cat "cat '$in'"
measure floor-cp-sync "cp '$in' '$work/out.tar' && sync '$work/out.tar'"
measure floor-tar "mkdir '$work/out' && tar -xf '$in' -C '$work/out'"
measure floor-zstd "zstd -q -T0 -3 -c '$in' > '$work/out.zst'"
measure floor-pigz "pigz -6 -c '$in' > '$work/out.gz'"
measure floor-unzstd "zstd -q -d -c ${zstd_layers[*]} > /dev/null"
measure floor-unpigz "pigz -d -c ${gzip_layers[*]} > /dev/null"

pair oci "'$d' convert -q '$in' '$work/out'" \
    "skopeo copy -q --dest-oci-accept-uncompressed-layers docker-archive:'$in' oci:'$work/out:latest'"
pair oci-archive "'$d' convert -q --to oci-archive '$in' '$work/out.tar'" \
    "skopeo copy -q --dest-oci-accept-uncompressed-layers docker-archive:'$in' oci-archive:'$work/out.tar:latest'"
pair dir "'$d' convert -q '$in' dir:'$work/out'" \
    "skopeo copy -q docker-archive:'$in' dir:'$work/out'"
# The compressed sizes, from one run of each.
run_once size-d-gzip "'$d' convert -q --layer-compression gzip '$in' '$work/out'"
d_gzip_size=$(size_of "$work/out/blobs")
run_once size-s-gzip "skopeo copy -q docker-archive:'$in' oci:'$work/out:latest'"
s_gzip_size=$(size_of "$work/out/blobs")
run_once size-d-zstd "'$d' convert -q --layer-compression zstd '$in' '$work/out'"
d_zstd_size=$(size_of "$work/out/blobs")
run_once size-s-zstd "skopeo copy -q --dest-compress-format zstd docker-archive:'$in' oci:'$work/out:latest'"
s_zstd_size=$(size_of "$work/out/blobs")
pair gzip "'$d' convert -q --layer-compression gzip '$in' '$work/out'" \
    "skopeo copy -q docker-archive:'$in' oci:'$work/out:latest'"
pair zstd "'$d' convert -q --layer-compression zstd '$in' '$work/out'" \
    "skopeo copy -q --dest-compress-format zstd docker-archive:'$in' oci:'$work/out:latest'"
for from in plain gzip zstd; do
    pair "$from-docker" "'$d' convert -q '$work/$from' '$work/out.tar'" \
        "skopeo copy -q oci:'$work/$from:latest' docker-archive:'$work/out.tar:bench/big:1'"
done
# skopeo cannot read a pipe: stdin is compared with dockhand's own file path.
for ((i = 0; i < runs; i++)); do
    run_once d-stdin "cat '$in' | '$d' convert -q - '$work/out'"
    run_once d-file "'$d' convert -q '$in' '$work/out'"
done
settle d-stdin
settle d-file
pair pick "'$d' convert -q --image bench/app:1 '$work/two.tar' '$work/out'" \
    "skopeo copy -q --dest-oci-accept-uncompressed-layers docker-archive:'$work/two.tar:bench/app:1' oci:'$work/out:latest'"
pair inspect "'$d' inspect '$in'" "skopeo inspect docker-archive:'$in'"

cores=$(nproc)
echo "Input: $(mib "$(size_of "$in")") MiB docker-save archive of 8 layers (bench/make-context.py);"
echo "$cores cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(skopeo --version);"
echo "median of $runs runs, page cache warm, outputs flushed to disk by dockhand (skopeo does not flush)."
echo
echo "| conversion | dockhand | skopeo | faster | dockhand peak RSS | skopeo peak RSS |"
echo "|---|---|---|---|---|---|"
row "docker-archive → oci (layers kept)" oci
row "docker-archive → oci-archive" oci-archive
row "docker-archive → dir" dir
row "docker-archive → oci, gzip" gzip
row "docker-archive → oci, zstd" zstd
row "oci (uncompressed) → docker-archive" plain-docker
row "oci (gzip) → docker-archive" gzip-docker
row "oci (zstd) → docker-archive" zstd-docker
row "one image of a two-image archive → oci" pick
row "inspect" inspect
printf '| docker-archive on stdin → oci | %s s | (cannot read a pipe; from the file: %s s) | | %s MiB | |\n' \
    "${wall[d-stdin]}" "${wall[d-file]}" "${rss[d-stdin]}"
echo
echo "Layer bytes written: gzip $(mib "$d_gzip_size") MiB (skopeo $(mib "$s_gzip_size") MiB," \
    "$(ratio "$d_gzip_size" "$s_gzip_size")x); zstd $(mib "$d_zstd_size") MiB" \
    "(skopeo $(mib "$s_zstd_size") MiB, $(ratio "$d_zstd_size" "$s_zstd_size")x)."
echo
echo "| floor | wall | peak RSS |"
echo "|---|---|---|"
for f in "start:dockhand --version (process start)" "cat:cat archive > /dev/null" \
    "cp-sync:cp archive, then sync the copy" "tar:tar -xf archive" \
    "zstd:zstd -T0 -3 archive > file" "pigz:pigz -6 archive > file" \
    "unzstd:zstd -d of the zstd layers" "unpigz:pigz -d of the gzip layers"; do
    printf '| %s | %s s | %s MiB |\n' "${f#*:}" "${wall[floor-${f%%:*}]}" "${rss[floor-${f%%:*}]}"
done
echo
# target LABEL VALUE OP GOAL: one row of the targets table.
target() {
    local met
    [ "$2" = n/a ] && { printf '| %s | n/a | %s %s | not measurable |\n' "$1" "$3" "$4"; return; }
    met=$(awk -v v="$2" -v g="$4" -v op="$3" 'BEGIN { print ((op == "<=" ? v <= g : v >= g) ? "met" : "**missed**") }')
    printf '| %s | %s | %s %s | %s |\n' "$1" "$2" "$3" "$4" "$met"
}
echo "| target | measured | goal | |"
echo "|---|---|---|---|"
target "oci (kept) / (cp + sync)" "$(ratio "${wall[d-oci]}" "${wall[floor-cp-sync]}")" "<=" 1.1
target "skopeo / dockhand, → oci-archive" "$(ratio "${wall[s-oci-archive]}" "${wall[d-oci-archive]}")" ">=" 4
target "skopeo / dockhand, → dir" "$(ratio "${wall[s-dir]}" "${wall[d-dir]}")" ">=" 4
target "skopeo / dockhand, oci → docker-archive" "$(ratio "${wall[s-plain-docker]}" "${wall[d-plain-docker]}")" ">=" 4
target "skopeo / dockhand, → oci zstd" "$(ratio "${wall[s-zstd]}" "${wall[d-zstd]}")" ">=" 2.5
target "dockhand → oci zstd / zstd -T0 -3" "$(ratio "${wall[d-zstd]}" "${wall[floor-zstd]}")" "<=" 1.2
target "skopeo / dockhand, → oci gzip" "$(ratio "${wall[s-gzip]}" "${wall[d-gzip]}")" ">=" 2
target "gzip layer bytes, dockhand / skopeo" "$(ratio "$d_gzip_size" "$s_gzip_size")" "<=" 1.05
target "skopeo / dockhand, oci gzip → docker-archive" "$(ratio "${wall[s-gzip-docker]}" "${wall[d-gzip-docker]}")" ">=" 3
target "skopeo / dockhand, oci zstd → docker-archive" "$(ratio "${wall[s-zstd-docker]}" "${wall[d-zstd-docker]}")" ">=" 3
target "stdin / file, → oci" "$(ratio "${wall[d-stdin]}" "${wall[d-file]}")" "<=" 1.3
target "inspect / process start" "$(ratio "${wall[d-inspect]}" "${wall[floor-start]}")" "<=" 2
max_keep=0
for k in d-oci d-oci-archive d-dir d-plain-docker d-gzip-docker d-zstd-docker d-stdin d-pick; do
    [ "${rss[$k]}" -gt "$max_keep" ] && max_keep=${rss[$k]}
done
target "peak RSS (MiB), layers kept or decompressed" "$max_keep" "<=" 32
target "peak RSS (MiB), compressing" "$(( rss[d-gzip] > rss[d-zstd] ? rss[d-gzip] : rss[d-zstd] ))" "<=" 96
echo
fi

# ---------------------------------------------------------------- two images compared
# B is the benchmark image with one more layer (a file of its top layer changed,
# another deleted by a whiteout, one added), both as gzip OCI layouts. dockhand diff
# reads each layer once (the 8 B shares with A once for both); the baseline unpacks
# both images with umoci and compares the two trees with diff -r (exit 1: they differ).
if [ -z "$only" ] || [ "$only" = diff ]; then
    command -v umoci >/dev/null || { echo "the diff rows need umoci" >&2; exit 1; }
    if [ ! -f "$work/b-gzip/index.json" ]; then
        python3 bench/make-extra-layer.py "$in" "$work/extra.tar"
        "$d" append -q "$in" "$work/extra.tar" "$work/b.tar"
        skopeo copy -q docker-archive:"$work/b.tar" oci:"$work/b-gzip:latest"
    fi
    pair diff "'$d' diff -q oci:'$work/gzip:latest' oci:'$work/b-gzip:latest'" \
        "umoci unpack --image '$work/gzip:latest' '$work/out-a' >/dev/null && umoci unpack --image '$work/b-gzip:latest' '$work/out-b' >/dev/null && { diff -rq --no-dereference '$work/out-a/rootfs' '$work/out-b/rootfs'; [ \$? -eq 1 ]; }"
    echo "Two images compared: the benchmark image (8 gzip layers) and the same with a 9th."
    echo
    echo "| comparison | dockhand diff | umoci unpack of both + diff -r | faster | dockhand peak RSS | umoci + diff peak RSS |"
    echo "|---|---|---|---|---|---|"
    row "A and B, gzip OCI layouts" diff
    echo
    if [ "$only" = diff ]; then exit 0; fi
fi

# ---------------------------------------------------------------- a registry
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
# start_registry: a registry with empty storage on $reg. Each push starts from one, so
# that neither tool finds blobs of an earlier run (skopeo's blob-info cache would mount
# them from another repository).
# serve_registry DIR ADDR: a registry with empty storage under DIR on ADDR, ready.
serve_registry() {
    mkdir -p "$1"
    printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp: {addr: "%s", secret: bench}\n' \
        "$1/storage" "$2" >"$1/config.yml"
    docker-registry serve "$1/config.yml" >"$1.log" 2>&1 &
    served_pid=$!
    for _ in $(seq 1 100); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://$2/v2/')" 2>/dev/null && return
        sleep 0.1
    done
    cat "$1.log" >&2
    exit 1
}
start_registry() {
    stop_registry
    serve_registry "$work/registry" "$reg"
    registry_pid=$served_pid
}
# A second, empty registry for registry-to-registry copies (skopeo's blob-info cache
# cleared too, or it would mount blobs it saw in an earlier run).
port2=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg2=127.0.0.1:$port2
start_mirror() {
    stop_mirror
    rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
    serve_registry "$work/mirror" "$reg2"
    mirror_pid=$served_pid
}
if [ -z "$only" ] || [ "$only" = registry ]; then
for ((i = 0; i < runs; i++)); do
    start_registry
    run_once d-push "'$d' convert -q --tls-verify=false '$in' docker://$reg/bench/d:1"
    start_registry
    run_once s-push "skopeo copy -q --dest-tls-verify=false docker-archive:'$in' docker://$reg/bench/s:1"
done
settle d-push
settle s-push
# The pulls read what skopeo pushed (gzip layers), into a docker-archive and an OCI layout.
pair pull-docker "'$d' convert -q --tls-verify=false --no-cache docker://$reg/bench/s:1 '$work/out.tar'" \
    "skopeo copy -q --src-tls-verify=false docker://$reg/bench/s:1 docker-archive:'$work/out.tar:bench/big:1'"
pair pull-oci "'$d' convert -q --tls-verify=false --no-cache docker://$reg/bench/s:1 '$work/out'" \
    "skopeo copy -q --src-tls-verify=false docker://$reg/bench/s:1 oci:'$work/out:latest'"
pair pull-inspect "'$d' inspect --tls-verify=false docker://$reg/bench/s:1" \
    "skopeo inspect --tls-verify=false docker://$reg/bench/s:1"
# Registry to registry: what skopeo pushed, into the empty second registry.
for ((i = 0; i < runs; i++)); do
    start_mirror
    run_once d-copy "'$d' convert -q --tls-verify=false docker://$reg/bench/s:1 docker://$reg2/bench/copy:1"
    start_mirror
    run_once s-copy "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$reg/bench/s:1 docker://$reg2/bench/copy:1"
done
settle d-copy
settle s-copy
stop_mirror
stop_registry
echo "Registry: docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null) on 127.0.0.1, plain HTTP, empty before each push (skopeo's blob-info cache cleared before each copy); median of $runs runs."
echo "dockhand verifies every layer's diff_id as it pulls (so it decompresses gzip layers even into an OCI layout); skopeo checks the digests only."
echo
echo "| registry | dockhand | skopeo | faster | dockhand peak RSS | skopeo peak RSS |"
echo "|---|---|---|---|---|---|"
row "push docker-archive (layers gzipped)" push
row "pull → docker-archive" pull-docker
row "pull → oci (layers kept)" pull-oci
row "registry → registry (another, empty)" copy
row "inspect" pull-inspect
echo
fi

# ---------------------------------------------------------------- a catalogue
# `dockhand sync` against `skopeo sync` on the same YAML: 50 generated images (three
# stacks of shared base layers, one layer of each image's own) from one registry into
# an empty one, then again with nothing new. Requests are counted from the registries'
# access logs.
[ -f "$work/catalogue/app49.tar" ] || python3 bench/make-images.py "$work/catalogue" 50
serve_counting() { # DIR ADDR: a registry that logs each request
    serve_registry "$1" "$2"
    kill "$served_pid"; wait "$served_pid" 2>/dev/null || true
    sed -i 's/level: error/level: info/' "$1/config.yml"
    docker-registry serve "$1/config.yml" >"$1.log" 2>&1 &
    served_pid=$!
    for _ in $(seq 1 100); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://$2/v2/')" 2>/dev/null && return
        sleep 0.1
    done
    exit 1
}
requests() { grep -c "response completed" "$1.log" || true; }
stop_registry
serve_counting "$work/registry" "$reg"
registry_pid=$served_pid
for n in $(seq 0 49); do
    "$bin" convert -q --tls-verify=false "$work/catalogue/app$n.tar" "docker://$reg/bench/app$n:1"
done
{ echo "$reg:"; echo "  images:"; for n in $(seq 0 49); do echo "    bench/app$n: ['1']"; done
  echo "  tls-verify: false"; } >"$work/sync.yaml"
fresh_mirror() {
    stop_mirror
    rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
    serve_counting "$work/mirror" "$reg2"
    mirror_pid=$served_pid
}
declare -A again
for ((i = 0; i < runs; i++)); do
    fresh_mirror
    run_once d-sync "'$bin' sync -q --src yaml --dest-tls-verify=false '$work/sync.yaml' docker://$reg2/mirror"
    before=$(( $(requests "$work/registry") + $(requests "$work/mirror") ))
    run_once d-resync "'$bin' sync -q --src yaml --dest-tls-verify=false '$work/sync.yaml' docker://$reg2/mirror"
    again[d]=$(( $(requests "$work/registry") + $(requests "$work/mirror") - before ))
    fresh_mirror
    run_once s-sync "skopeo sync --src yaml --dest docker --dest-tls-verify=false '$work/sync.yaml' $reg2/mirror"
    before=$(( $(requests "$work/registry") + $(requests "$work/mirror") ))
    run_once s-resync "skopeo sync --src yaml --dest docker --dest-tls-verify=false '$work/sync.yaml' $reg2/mirror"
    again[s]=$(( $(requests "$work/registry") + $(requests "$work/mirror") - before ))
done
for key in d-sync s-sync d-resync s-resync; do settle "$key"; done
stop_mirror
stop_registry
echo "Catalogue: 50 generated images ($(du -sh "$work/catalogue" | cut -f1) of docker-save archives, three stacks of shared 4 MiB base layers and 256 KiB of each image's own), pushed to one registry, synced into an empty one from skopeo sync's YAML; median of $runs runs. Requests of the re-run, at both registries: dockhand ${again[d]}, skopeo ${again[s]}."
echo
echo "| sync | dockhand | skopeo | faster | dockhand peak RSS | skopeo peak RSS |"
echo "|---|---|---|---|---|---|"
row "first run (an empty mirror)" sync
row "re-run (nothing new)" resync

