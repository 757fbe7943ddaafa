#!/usr/bin/env bash
# tools/demo.sh [DIR]: the main job of forkstore on a built-in default.
#
# Generates a realistic chain (a 256 MiB Full image with zero, repeated,
# text-like, structured and random pages, then 7 sparse Diffs dirtying ~3%
# of pages each, some to zero, some back to earlier contents, plus a 64 MiB
# rootfs), ingests it into a fresh store, restores every snapshot, checks
# each file against the original by SHA-256, and prints the images table
# and the dedup figures. Everything lives under DIR (default
# /tmp/forkstore-demo), which is removed first.
set -euo pipefail
: "${FORKCTL:?}" "${FORKGEN:?}"
dir=${1:-/tmp/forkstore-demo}
size=${DEMO_SIZE:-256M}
n=${DEMO_SNAPSHOTS:-8}
rm -rf "$dir"
mkdir -p "$dir"
fk() { "$FORKCTL" --store "$dir/store" "$@"; }

echo "== generating a chain of $n snapshots of a $size guest in $dir/chain"
"$FORKGEN" --out "$dir/chain" --size "$size" --snapshots "$n" --dirty 3 --seed 42 --rootfs 64M --quiet
fk init --quiet
start=$(date +%s.%N)
while IFS=$'\t' read -r nn tag parent _; do
    case $nn in \#*) continue ;; esac
    if [ "$parent" = - ]; then
        fk ingest --tag "$tag" --memory "$dir/chain/$nn/memory.full" --vmstate "$dir/chain/$nn/vmstate" \
            --file rootfs="$dir/chain/rootfs.ext4"
    else
        fk ingest --tag "$tag" --parent "$parent" --memory "$dir/chain/$nn/memory.diff" --diff \
            --vmstate "$dir/chain/$nn/vmstate"
    fi
done <"$dir/chain/chain.tsv"
echo "ingest of the chain: $(echo "$(date +%s.%N) - $start" | bc) s"

echo "== restoring every snapshot and checking it against the original"
ok=0
while IFS=$'\t' read -r nn tag parent _; do
    case $nn in \#*) continue ;; esac
    fk --quiet restore "$tag" --out "$dir/restored/$tag"
    want=$(sha256sum <"$dir/chain/$nn/memory.full" | cut -d' ' -f1)
    got=$(sha256sum <"$dir/restored/$tag/memory.bin" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { echo "MISMATCH: $tag memory.bin"; exit 1; }
    cmp -s "$dir/chain/$nn/vmstate" "$dir/restored/$tag/vmstate" || { echo "MISMATCH: $tag vmstate"; exit 1; }
    if [ "$parent" = - ]; then
        cmp -s "$dir/chain/rootfs.ext4" "$dir/restored/$tag/rootfs" || { echo "MISMATCH: $tag rootfs"; exit 1; }
    fi
    echo "  $tag: sha256 $got  ok"
    ok=$((ok + 1))
    rm -rf "$dir/restored/$tag"
done <"$dir/chain/chain.tsv"
echo "$ok of $ok snapshots restored byte-identical"

echo "== images"
fk images
logical=$(fk sql "SELECT sum(size) FROM artifact" --csv | tail -n 1)
stored=$(du -sb "$dir/store/chunks" | cut -f1)
catalog=$(du -cb "$dir/store"/catalog.db* | tail -n 1 | cut -f1)
whole=$(du -sb --apparent-size "$dir/chain" | cut -f1)
echo "== dedup"
awk -v l="$logical" -v s="$stored" -v c="$catalog" -v n="$n" 'BEGIN {
    printf "logical bytes of all snapshots: %.1f MiB\n", l / 1048576
    printf "chunk files on disk:            %.1f MiB (%.1fx smaller)\n", s / 1048576, l / s
    printf "catalog:                        %.2f MiB (%.2f%% of logical)\n", c / 1048576, 100 * c / l
    printf "a full memory.bin per snapshot (forkd layout) would take %d x the image size\n", n }'
fk verify
