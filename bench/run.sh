#!/usr/bin/env bash
# Benchmark dockhand against skopeo and against the machine's physical limits.
#
#   bench/run.sh [SIZE_MIB]      (default 1024)
#
# Builds a docker-save archive of SIZE_MIB from /usr files, then times (best of 3,
# wall clock, peak RSS from /usr/bin/time):
#   - the floors: cat (read), sha256sum (coreutils, no SHA-NI), cp, and a pipe into a
#     file (what spooling stdin costs before any conversion work);
#   - docker-archive -> OCI dir, layers kept (dockhand; skopeo with
#     --dest-oci-accept-uncompressed-layers, the same work);
#   - docker-archive -> docker-archive;
#   - OCI (gzip layers) -> docker-archive (decompression and two hashes per byte);
#   - inspect (index only) on the archive.
# Needs a release build (cargo build --release) and skopeo.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}
bin=target/release/dockhand
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d "${TMPDIR:-/tmp}/dockhand-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 bench/make-image.py "$work/in.tar" "$size" 3 >&2
skopeo copy -q --dest-compress docker-archive:"$work/in.tar" oci:"$work/gz:latest" >/dev/null
sync

measure() { # name, then the command; prints best wall seconds and its peak RSS
    local name=$1; shift
    local best="" rss=""
    for _ in 1 2 3; do
        rm -rf "$work/out" "$work/out.tar"
        /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
        read -r secs kb <"$work/time"
        if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; rss=$kb; fi
    done
    awk -v n="$name" -v s="$best" -v kb="$rss" -v mib="$size" \
        'BEGIN{ printf "| %-52s | %7.2f s | %7.0f MB/s | %6.1f MB |\n", n, s, (s>0? mib*1.048576/s : 0), kb/1024 }'
}

echo "input: $(du -m "$work/in.tar" | cut -f1) MiB docker-save archive, 3 layers; $(nproc) cores"
echo
echo "| operation | wall (best of 3) | throughput | peak RSS |"
echo "|---|---|---|---|"
measure "floor: cat archive > /dev/null" cat "$work/in.tar"
measure "floor: sha256sum archive" sha256sum "$work/in.tar"
measure "floor: cp archive" cp "$work/in.tar" "$work/out.tar"
measure "floor: cat archive | cat > file (a pipe spooled)" sh -c "cat '$work/in.tar' | cat > '$work/out.tar'"
measure "dockhand inspect (index only)" "$bin" inspect "$work/in.tar"
measure "dockhand docker-archive -> oci" "$bin" convert -q "$work/in.tar" "$work/out"
measure "skopeo docker-archive -> oci (uncompressed)" skopeo copy -q --dest-oci-accept-uncompressed-layers docker-archive:"$work/in.tar" oci:"$work/out:latest"
measure "dockhand docker-archive -> docker-archive" "$bin" convert -q "$work/in.tar" "$work/out.tar"
measure "skopeo docker-archive -> docker-archive" skopeo copy -q docker-archive:"$work/in.tar" docker-archive:"$work/out.tar:bench/image:latest"
measure "dockhand oci (gzip) -> docker-archive" "$bin" convert -q "$work/gz" "$work/out.tar"
measure "skopeo oci (gzip) -> docker-archive" skopeo copy -q oci:"$work/gz:latest" docker-archive:"$work/out.tar:bench/image:latest"
measure "dockhand stdin -> oci-archive stdout" sh -c "cat '$work/in.tar' | '$bin' convert -q - - --to oci-archive > '$work/out.tar'"
