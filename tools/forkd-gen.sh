#!/usr/bin/env bash
# tools/forkd-gen.sh OUT [SIZE] [LINKS]: writes a snapshot root exactly as
# forkd v0.5.3 lays it out, for tests.
#
# Without LINKS (the mixed tree):
#   OUT/python-numpy/  base: full memory.bin, vmstate, snapshot.json whose
#                      "rootfs" names OUT.cache/python-numpy.ext4 (outside
#                      the snapshot directory, as forkd's /var/cache/forkd)
#   OUT/link1/         chained, memory.bin sparse: the dirtied pages as data
#                      (zeros too), holes elsewhere (an FC Diff)
#   OUT/link2/         chained, memory.bin full, every page data (what the
#                      v0.5.3 daemon's diff BRANCH writes: copy + apply_diff)
#   OUT/link3/         chained, diff.bin sparse (forkd's older link name)
#   OUT/link4/         chained, memory.bin a full image whose zero pages are
#                      holes: forkd's overlay shows link3's pages there
#   OUT/legacy-v04/    v0.4: vmstate and memory.bin, no snapshot.json
# With LINKS=N: OUT/python-numpy/ and N chained links link1..linkN, kinds
# cycling sparse / full / diff.bin (no holey link, no v0.4 directory).
#
# snapshot.json is what serde_json::to_vec_pretty writes for forkd's
# Snapshot: vmstate, memory, volumes, then parent_tag and
# parent_content_hash for a link, rootfs for the base; absolute paths, no
# trailing newline. parent_content_hash is forkd's: the SHA-256 of the
# parent's memory file as it is (for a chained parent, its sparse file).
# The guest's real memory of every snapshot is left in
# OUT.expected/<tag>.memory (forkd's assembly differs from it for link4
# only: tools/forkd-assemble.py gives what forkd restores).
# Uses $FORKGEN (tools/gen/forkgen).
set -euo pipefail
: "${FORKGEN:?FORKGEN must point at build/tools/forkgen}"
out=$1 size=${2:-16M} links=${3:-}
src=$out.src exp=$out.expected cache=$out.cache
rm -rf "$out" "$src" "$exp" "$cache"
mkdir -p "$out" "$exp" "$cache"
if [ -n "$links" ]; then n=$links mixed=0; else n=4 mixed=1; fi
"$FORKGEN" --out "$src" --size "$size" --snapshots $((n + 1)) --dirty 4 --seed 7 --rootfs 4M --quiet >/dev/null
abs=$(cd "$out" && pwd) cabs=$(cd "$cache" && pwd)
mv "$src/rootfs.ext4" "$cache/python-numpy.ext4"
chmod 644 "$cache/python-numpy.ext4"
cp "$cache/python-numpy.ext4" "$exp/python-numpy.rootfs"
# snapjson TAG MEMFILE [PARENT HASH]
snapjson() {
    printf '{\n  "vmstate": "%s/%s/vmstate",\n  "memory": "%s/%s/%s",\n  "volumes": []' "$abs" "$1" "$abs" "$1" "$2"
    if [ $# -gt 2 ]; then
        printf ',\n  "parent_tag": "%s",\n  "parent_content_hash": "%s"' "$3" "$4"
    else
        printf ',\n  "rootfs": "%s/python-numpy.ext4"' "$cabs"
    fi
    printf '\n}'
}
prev="" prevmem=""
for ((i = 0; i <= n; i++)); do
    nn=$(printf '%02d' "$i")
    if [ "$i" -eq 0 ]; then t=python-numpy; else t=link$i; fi
    d=$out/$t
    mkdir -p "$d"
    mv "$src/$nn/vmstate" "$d/vmstate"
    if [ "$i" -eq 0 ]; then
        kind=full
    elif [ "$mixed" = 1 ] && [ "$i" -eq 4 ]; then
        kind=holey
    else
        kind=$(( (i - 1) % 3 )); kind=${kind/0/sparse}; kind=${kind/1/full}; kind=${kind/2/diffbin}
    fi
    case $kind in
        full) mem=memory.bin; cp "$src/$nn/memory.full" "$d/memory.bin" ;;
        # never cp --sparse=always a Diff: pages dirtied to zero are data
        sparse) mem=memory.bin; mv "$src/$nn/memory.diff" "$d/memory.bin" ;;
        diffbin) mem=diff.bin; mv "$src/$nn/memory.diff" "$d/diff.bin" ;;
        holey) mem=memory.bin; cp --sparse=always "$src/$nn/memory.full" "$d/memory.bin" ;;
    esac
    mv "$src/$nn/memory.full" "$exp/$t.memory"
    if [ "$i" -eq 0 ]; then
        snapjson "$t" "$mem" >"$d/snapshot.json"
    else
        snapjson "$t" "$mem" "$prev" "$(sha256sum <"$prevmem" | cut -d' ' -f1)" >"$d/snapshot.json"
    fi
    prev=$t prevmem=$d/$mem
done
if [ "$mixed" = 1 ]; then
    mkdir -p "$out/legacy-v04"
    cp "$exp/link2.memory" "$out/legacy-v04/memory.bin"
    cp "$exp/link2.memory" "$exp/legacy-v04.memory"
    head -c 20000 /dev/zero | tr '\0' 'v' >"$out/legacy-v04/vmstate"
fi
rm -rf "$src"
