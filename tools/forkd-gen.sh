#!/usr/bin/env bash
# tools/forkd-gen.sh OUT [SIZE]: writes a forkd snapshot root for tests.
#
#   OUT/base/     memory.bin (Full), vmstate, rootfs.ext4, snapshot.json
#   OUT/child1/   diff.bin (sparse Diff over base), vmstate, snapshot.json
#   OUT/child2/   memory.bin (a Full link over child1), vmstate, snapshot.json
#   OUT/child3/   diff.bin (sparse Diff over child2), vmstate, snapshot.json
#
# snapshot.json holds absolute paths, parent_tag and parent_content_hash
# (SHA-256 of the parent's full memory), as forkd writes them. The full
# image of every snapshot is left in OUT.expected/<tag>.memory for
# comparison. Uses $FORKGEN (tools/gen/forkgen).
set -euo pipefail
: "${FORKGEN:?FORKGEN must point at build/tools/forkgen}"
out=$1 size=${2:-16M}
src=$out.src exp=$out.expected
rm -rf "$out" "$src" "$exp"
mkdir -p "$out" "$exp"
"$FORKGEN" --out "$src" --size "$size" --snapshots 4 --dirty 4 --seed 7 --rootfs 8M --quiet
abs=$(cd "$out" && pwd)
tags=(base child1 child2 child3)
kinds=(full diff full diff)
for i in 0 1 2 3; do
    t=${tags[$i]} nn=$(printf '%02d' $i) d=$out/${tags[$i]}
    mkdir -p "$d"
    cp "$src/$nn/vmstate" "$d/vmstate"
    cp "$src/$nn/memory.full" "$exp/$t.memory"
    if [ "${kinds[$i]}" = full ]; then
        mem=memory.bin
        cp "$src/$nn/memory.full" "$d/memory.bin"
    else
        mem=diff.bin
        # never cp --sparse=always a Diff: it would turn pages dirtied to
        # zero (data in a Diff) into holes (inherit), changing its meaning
        mv "$src/$nn/memory.diff" "$d/diff.bin"
    fi
    {
        printf '{\n  "vmstate": "%s/%s/vmstate",\n  "memory": "%s/%s/%s"' "$abs" "$t" "$abs" "$t" "$mem"
        if [ "$i" -gt 0 ]; then
            p=${tags[$((i - 1))]}
            printf ',\n  "parent_tag": "%s",\n  "parent_content_hash": "%s"' "$p" \
                "$(sha256sum <"$exp/$p.memory" | cut -d' ' -f1)"
        fi
        if [ "$i" -eq 0 ]; then
            cp "$src/rootfs.ext4" "$d/rootfs.ext4"
            cp "$src/rootfs.ext4" "$exp/$t.rootfs"
            printf ',\n  "rootfs": "%s/%s/rootfs.ext4"' "$abs" "$t"
        fi
        printf ',\n  "volumes": []\n}\n'
    } >"$d/snapshot.json"
done
rm -rf "$src"
