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
w=2; [ -d "$src/00" ] || w=3   # forkgen names NN with more digits past 100
abs=$(cd "$out" && pwd) cabs=$(cd "$cache" && pwd)
mv "$src/rootfs.ext4" "$cache/python-numpy.ext4"
chmod 644 "$cache/python-numpy.ext4"
cp "$cache/python-numpy.ext4" "$exp/python-numpy.rootfs"
# One python3 process for the per-snapshot work: a 300-link tree in a
# second, not a fork per file.
python3 - "$src" "$out" "$exp" "$abs" "$cabs" "$n" "$mixed" "$w" <<'PY'
import hashlib, os, shutil, sys
src, out, exp, abs_, cabs, n, mixed, w = sys.argv[1:9]
n, mixed, w = int(n), mixed == "1", int(w)
def snapjson(t, mem, parent=None, h=None):
    s = '{\n  "vmstate": "%s/%s/vmstate",\n  "memory": "%s/%s/%s",\n  "volumes": []' % (abs_, t, abs_, t, mem)
    if parent:
        s += ',\n  "parent_tag": "%s",\n  "parent_content_hash": "%s"' % (parent, h)
    else:
        s += ',\n  "rootfs": "%s/python-numpy.ext4"' % cabs
    return s + "\n}"
def holey(srcf, dstf):  # cp --sparse=always: zero pages become holes
    with open(srcf, "rb") as f, open(dstf, "wb") as g:
        size = os.fstat(f.fileno()).st_size
        g.truncate(size)
        for off in range(0, size, 4096):
            b = f.read(4096)
            if b.strip(b"\0"):
                g.seek(off)
                g.write(b)
prev = prevmem = None
for i in range(n + 1):
    nn = "%0*d" % (w, i)
    t = "python-numpy" if i == 0 else "link%d" % i
    d = os.path.join(out, t)
    os.mkdir(d)
    os.rename(os.path.join(src, nn, "vmstate"), os.path.join(d, "vmstate"))
    full, diff = os.path.join(src, nn, "memory.full"), os.path.join(src, nn, "memory.diff")
    kind = "full" if i == 0 else "holey" if mixed and i == 4 else ("sparse", "full", "diffbin")[(i - 1) % 3]
    mem = "diff.bin" if kind == "diffbin" else "memory.bin"
    if kind == "full":
        shutil.copyfile(full, os.path.join(d, mem))
    elif kind == "holey":
        holey(full, os.path.join(d, mem))
    else:  # a Diff keeps its extents: rename, never a sparse copy
        os.rename(diff, os.path.join(d, mem))
    os.rename(full, os.path.join(exp, t + ".memory"))
    if i == 0:
        js = snapjson(t, mem)
    else:
        h = hashlib.sha256()
        with open(prevmem, "rb") as f:
            h.update(f.read())
        js = snapjson(t, mem, prev, h.hexdigest())
    with open(os.path.join(d, "snapshot.json"), "w") as f:
        f.write(js)
    prev, prevmem = t, os.path.join(d, mem)
PY
if [ "$mixed" = 1 ]; then
    mkdir -p "$out/legacy-v04"
    cp "$exp/link2.memory" "$out/legacy-v04/memory.bin"
    cp "$exp/link2.memory" "$exp/legacy-v04.memory"
    head -c 20000 /dev/zero | tr '\0' 'v' >"$out/legacy-v04/vmstate"
fi
rm -rf "$src"
