# Issue 13 row 5: import-forkd never follows a symbolic link inside the
# snapshot root, at any level: not a snapshot directory that is a link
# (O_NOFOLLOW on the last component alone used to import what it points
# to), not a file in a snapshot directory, not a directory on the way to a
# rootfs outside the tree. Each refusal leaves the store unchanged.
. "$(dirname "$0")/../cli/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
FORKGEN=$FORKGEN "$root/tools/forkd-gen.sh" tree 1M 2
fk init >/dev/null
before=$(store_state)
# 1. A snapshot directory that is a link to a directory elsewhere.
mkdir -p elsewhere && cp -r tree/link1 elsewhere/snap
mkdir -p t1 && cp -r tree/python-numpy t1/ && ln -s "$TESTDIR/elsewhere/snap" t1/link1
expect_fail 2 "t1/link1 is a symbolic link: refused .*nothing imported" fk import-forkd t1 --rootfs-dir tree.cache
[ "$(store_state)" = "$before" ] || die "a refused import changed the store"
# ... also a link to a directory inside the tree itself.
mkdir -p t1b && cp -r tree/* t1b/ && ln -s link2 t1b/link9
expect_fail 2 "t1b/link9 is a symbolic link" fk import-forkd t1b --rootfs-dir tree.cache
[ "$(store_state)" = "$before" ] || die "a refused import changed the store"
# 2. A file inside a snapshot directory that is a link (memory, vmstate, snapshot.json).
for f in memory.bin vmstate snapshot.json; do
    rm -rf t2 && cp -r tree t2
    mv "t2/link1/$f" "elsewhere/$f" && ln -s "$TESTDIR/elsewhere/$f" "t2/link1/$f"
    expect_fail 2 "t2/link1/$f is a symbolic link: refused" fk import-forkd t2 --rootfs-dir tree.cache
    [ "$(store_state)" = "$before" ] || die "a refused import changed the store ($f)"
done
# 3. A symbolic link as a parent component on the way to the rootfs
#    outside the tree: the rootfs is not read (the rest is imported, named).
mkdir -p cache/real && mv tree.cache/python-numpy.ext4 cache/real/ && ln -s real cache/sub
sed -i "s#\"rootfs\": \".*\"#\"rootfs\": \"$TESTDIR/cache/sub/python-numpy.ext4\"#" tree/python-numpy/snapshot.json
fk import-forkd tree --rootfs-dir cache >out.txt 2>err.txt
grep -q "rootfs $TESTDIR/cache/sub/python-numpy.ext4 not imported: directory sub: a symbolic link" err.txt \
    || die "a symlinked directory on the rootfs path was followed: $(cat err.txt)"
grep -q "1 without the rootfs" out.txt || die "summary: $(cat out.txt)"
[ "$(fk sql "SELECT count(*) FROM artifact WHERE name = 'rootfs'" --csv | tail -n 1)" = 0 ] || die "rootfs imported through a link"
# the same file reached without the link is imported
sed -i "s#/cache/sub/#/cache/real/#" tree/python-numpy/snapshot.json
fk import-forkd tree --prefix ok- --rootfs-dir cache >out.txt 2>err.txt
! grep -q "without the rootfs" out.txt || die "trusted rootfs refused: $(cat err.txt)"
fk restore ok-python-numpy --out r >/dev/null && same r/rootfs cache/real/python-numpy.ext4
