#!/usr/bin/env bash
# Fill fuzz/corpus/<target>/ with seeds: the repository's fixtures, small archives of
# the acceptance corpus (../shared/corpus beside the repository, if present) and the
# synthetic documents of examples/write_seeds.rs. fuzz/corpus is git-ignored: nothing
# copied here ends up in the repository.
#
# Usage (from anywhere): fuzz/seed-corpus.sh
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz_dir")
shared_corpus=${SHARED_CORPUS:-$repo/../shared/corpus}
max_seed=${MAX_SEED_BYTES:-131072}
corpus=$fuzz_dir/corpus
mkdir -p "$corpus"/{tar_index,docker_manifest,oci_index,whole_input,challenge,link,retry_after,manifest,whiteouts}

# A readable name for a seed from its path: fixtures/a/b -> a-b.
seed_name() { echo "$1" | sed -e 's|^\./||' -e 's|/|-|g'; }

small() { [ "$(stat -c %s "$1")" -le "$max_seed" ]; }

# Copy one member of a tar (maybe compressed) to a seed, if it has it.
extract_member() { # archive member dest
    tar -xOf "$1" "$2" >"$3" 2>/dev/null || tar -xOf "$1" "./$2" >"$3" 2>/dev/null || rm -f "$3"
    [ -s "$3" ] || rm -f "$3"
}

# Whole inputs: every fixture input that is a file, and every directory fixture packed
# as a tar (deterministically), so the OCI, dir: and docker-dir layouts are covered too.
cd "$repo/fixtures"
for input in */input*; do
    fixture=${input%%/*}
    if [ -f "$input" ]; then
        [ -s "$input" ] || continue
        cp "$input" "$corpus/whole_input/fixture-$fixture-$(basename "$input")"
        case "$input" in
        *.tar) cp "$input" "$corpus/tar_index/fixture-$fixture.tar" ;;
        esac
        extract_member "$input" manifest.json "$corpus/docker_manifest/fixture-$fixture.json"
        extract_member "$input" index.json "$corpus/oci_index/fixture-$fixture.json"
    elif [ -d "$input" ]; then
        out=$corpus/whole_input/fixture-$fixture-dir.tar
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$input" -cf "$out" .
        small "$out" && cp "$out" "$corpus/tar_index/fixture-$fixture-dir.tar"
        small "$out" || rm -f "$out"
        [ -f "$input/manifest.json" ] && cp "$input/manifest.json" "$corpus/docker_manifest/fixture-$fixture.json"
        [ -f "$input/index.json" ] && cp "$input/index.json" "$corpus/oci_index/fixture-$fixture.json"
    fi
done

# whiteouts: the uncompressed layers of the docker-save fixtures, each after a 0x80
# byte (the target's raw-layer mode), and a few generated images (three bytes an entry).
for input in */input*.tar; do
    members=$(tar -tf "$input" 2>/dev/null | grep '/layer.tar$' || true)
    for member in $members; do
        out=$corpus/whiteouts/layer-${input%%/*}-$(seed_name "$member")
        { printf '\x80'; tar -xOf "$input" "$member"; } >"$out" || rm -f "$out"
        [ -f "$out" ] && { small "$out" || rm -f "$out"; }
    done
done
printf '\x00\x00\x00\x02\x03\x00\x07\x00\x00\x05\x00\x00\x04\x01\x00' >"$corpus/whiteouts/gen-whiteout-link"
printf '\x00\x02\x05\x00\x04\x06\x07\x00\x00\x06\x00\x00\x00\x03\x02' >"$corpus/whiteouts/gen-opaque"

# The acceptance corpus: small archives whole, and every index.json / manifest.json.
if [ -d "$shared_corpus" ]; then
    cd "$shared_corpus"
    find . -type f \( -name '*.tar' -o -name '*.tar.gz' -o -name '*.tgz' -o -name '*.tar.xz' \
        -o -name '*.tar.zst' -o -name '*.tar.bz2' \) -size -$((max_seed + 1))c -print |
        sort | while read -r f; do
            name=corpus-$(seed_name "$f")
            cp "$f" "$corpus/whole_input/$name"
            case "$f" in
            *.tar) cp "$f" "$corpus/tar_index/$name" ;;
            esac
            extract_member "$f" manifest.json "$corpus/docker_manifest/$name.json"
            extract_member "$f" index.json "$corpus/oci_index/$name.json"
        done
    find . -type f -name index.json -print | sort | while read -r f; do
        cp "$f" "$corpus/oci_index/corpus-$(seed_name "$f")"
    done
    find . -type f -name manifest.json -print | sort | while read -r f; do
        cp "$f" "$corpus/docker_manifest/corpus-$(seed_name "$f")"
    done
else
    echo "note: $shared_corpus not found; seeding from fixtures only" >&2
fi

# Synthetic documents that fit the docker_manifest and oci_index trees.
cd "$fuzz_dir"
cargo run --quiet --example write_seeds

# The registry client's parsers: every manifest and index above, and the header
# shapes registries send (Docker Hub, distribution, GHCR, Quay, ECR, Harbor).
cp "$corpus"/docker_manifest/* "$corpus"/oci_index/* "$corpus/manifest/" 2>/dev/null || true
seed() { printf '%s' "$2" >"$corpus/$1/$3"; }
seed challenge 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"' hub
seed challenge 'Bearer realm="http://127.0.0.1:5001/token",service="registry",scope="repository:a/b:pull,push",error="insufficient_scope"' distribution
seed challenge 'Basic realm="Registry Realm", Bearer realm="https://ghcr.io/token",service="ghcr.io"' two
seed challenge 'bearer REALM=https://quay.io/v2/auth,service=quay.io' unquoted
seed challenge 'Bearer realm="http://u:p@evil:99999/t\"x",service=' userinfo
seed link '</v2/a/tags/list?last=b&n=100>; rel="next"' relative
seed link '<https://registry.example/v2/a/tags/list?last=b>; rel="next last", <x>; rel=prev' absolute
seed link '<?last=c>; rel=next' query
seed link '<//other:5000/v2/_catalog?last=a>; rel="next"' network
printf '<list?n=2>; rel="next"\0http://[::1]:5000/v2/a/tags/list' >"$corpus/link/base"
seed retry_after '00000000120' seconds
seed retry_after '00000000Sun, 06 Nov 1994 08:49:37 GMT' date
seed retry_after '00000000Wed, 29 Feb 2024 23:59:60 GMT' leap
seed retry_after '0000000099999999999999999999' huge

# Empty seeds make no sense for any target.
find "$corpus" -type f -empty -delete
for t in tar_index docker_manifest oci_index whole_input challenge link retry_after manifest whiteouts; do
    echo "$t: $(find "$corpus/$t" -type f | wc -l) seeds"
done
