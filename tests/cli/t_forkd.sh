# forkd interop, against a tree laid out as forkd v0.5.3 writes it
# (tools/forkd-gen.sh: rootfs outside the snapshot directory, chained
# links with sparse, full, diff.bin and holey memory files, a v0.4
# directory) and tools/forkd-assemble.py, a reimplementation of forkd's
# resolve_chain / verify_parent_hashes / assemble_chain_memory:
# - every imported tag restores to the bytes forkd assembles;
# - a tampered or missing parent_content_hash refuses the import, store unchanged;
# - the rootfs outside the tree: imported under --rootfs-dir by the
#   ownership rule, else the rest is imported and a warning names it;
# - export of a depth-3 (and depth-4) snapshot passes forkd's chain checks
#   and assembles to the snapshot's bytes; --flat; forkd's tag rule, --tag;
# - export then import round-trips; paths in snapshot.json are not followed.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
asm() { python3 "$root/tools/forkd-assemble.py" "$@"; }
FORKGEN=$FORKGEN "$root/tools/forkd-gen.sh" tree 2M
tags="python-numpy link1 link2 link3 link4 legacy-v04"
for t in $tags; do asm tree "$t" "ref.$t" >/dev/null; done
# the reference agrees with the guest's memory except for the holey link,
# where forkd shows link3's pages: the case import must follow forkd in
for t in python-numpy link1 link2 link3 legacy-v04; do same "ref.$t" "tree.expected/$t.memory"; done
! cmp -s ref.link4 tree.expected/link4.memory || die "the holey link does not exercise inheritance"
fk init >/dev/null
# Tampered parent_content_hash: refused before anything is ingested.
cp -r --sparse=never tree bad
sed -E 's/("parent_content_hash": ")(.)/\1\2\2/; s/("parent_content_hash": ".{64})./\1/' tree/link2/snapshot.json \
    >bad/link2/snapshot.json
! cmp -s tree/link2/snapshot.json bad/link2/snapshot.json || die "tampering failed"
before=$(store_state)
expect_fail 5 "link2: parent_content_hash .* does not match its parent link1.*nothing imported" \
    fk import-forkd bad --rootfs-dir tree.cache
[ "$(store_state)" = "$before" ] || die "a refused import changed the store"
# A chained link without parent_content_hash: forkd refuses it, so do we.
grep -v parent_content_hash tree/link2/snapshot.json | sed 's/"link1",/"link1"/' >bad/link2/snapshot.json
expect_fail 2 "link2 has parent_tag link1 but no parent_content_hash" fk import-forkd bad --rootfs-dir tree.cache
[ "$(store_state)" = "$before" ] || die "a refused import changed the store"
rm -rf bad
# The import: every tag restores to forkd's bytes, the rootfs is read.
fk import-forkd tree --prefix f- --rootfs-dir tree.cache >out.txt
grep -q "imported 6 snapshots from tree$" out.txt || die "import summary: $(cat out.txt)"
[ "$(fk sql "SELECT p.tag FROM snapshot s JOIN snapshot p ON p.id = s.parent_id WHERE s.tag = 'f-link4'" --csv | tail -n 1)" = f-link3 ] \
    || die "lineage lost"
for t in $tags; do
    rm -rf r && fk restore "f-$t" --out r >/dev/null
    same r/memory.bin "ref.$t"
    same r/vmstate "tree/$t/vmstate"
done
fk restore f-python-numpy --out rb >/dev/null
same rb/rootfs tree.expected/python-numpy.rootfs
# Without --rootfs-dir (default /var/cache/forkd) the rootfs is not read:
# the rest is imported and the missing rootfs is named, not skipped silently.
fk import-forkd tree --prefix g- >out.txt 2>err.txt
grep -q "1 without the rootfs" out.txt || die "summary does not name the missing rootfs: $(cat out.txt)"
grep -q "python-numpy: rootfs $TESTDIR/tree.cache/python-numpy.ext4 not imported: it is not under the rootfs directory /var/cache/forkd" err.txt \
    || die "no rootfs warning: $(cat err.txt)"
[ "$(fk sql "SELECT count(*) FROM artifact a JOIN snapshot s ON s.id = a.snapshot_id WHERE s.tag = 'g-python-numpy' AND a.name = 'rootfs'" --csv | tail -n 1)" = 0 ] \
    || die "an untrusted rootfs was imported"
# The ownership rule: writable by others, owned by another user, a link.
mkdir -p t2 && cp -r tree/python-numpy t2/ && cache=$TESTDIR/tree.cache
chmod o+w "$cache/python-numpy.ext4"
fk import-forkd t2 --prefix h1- --rootfs-dir tree.cache 2>err.txt >/dev/null
grep -q "not imported: the file is writable by others" err.txt || die "world-writable rootfs: $(cat err.txt)"
chmod o-w "$cache/python-numpy.ext4"
if [ "$(id -u)" = 0 ]; then
    chown 65534 "$cache/python-numpy.ext4"
    fk import-forkd t2 --prefix h2- --rootfs-dir tree.cache 2>err.txt >/dev/null
    grep -q "not imported: the file is owned by uid 65534" err.txt || die "foreign rootfs: $(cat err.txt)"
    chown 0 "$cache/python-numpy.ext4"
fi
mv "$cache/python-numpy.ext4" "$cache/real.ext4" && ln -s real.ext4 "$cache/python-numpy.ext4"
fk import-forkd t2 --prefix h3- --rootfs-dir tree.cache 2>err.txt >/dev/null
grep -q "not imported: it is a symbolic link" err.txt || die "symlinked rootfs: $(cat err.txt)"
rm "$cache/python-numpy.ext4" && mv "$cache/real.ext4" "$cache/python-numpy.ext4"
# Export of the depth-3 snapshot as a chain: forkd's checks pass and its
# assembly is the snapshot's bytes; depth 4 (the holey link) too.
for t in link3 link4; do
    fk export "f-$t" --forkd exp >out.txt
    chain=$(asm exp "f-$t" "exp.$t")
    [ "$t" != link3 ] || [ "$chain" = "f-python-numpy f-link1 f-link2 f-link3" ] || die "export chain of f-$t: $chain"
    same "exp.$t" "ref.$t"
    grep -Eq "\"memory\": \"$TESTDIR/exp/f-$t/memory.bin\"" "exp/f-$t/snapshot.json" || die "paths: $(cat "exp/f-$t/snapshot.json")"
done
grep -q "chain of 5 (base f-python-numpy; 4 already there)" out.txt || die "ancestors not reused: $(cat out.txt)"
grep -q '"parent_tag": "f-link3"' exp/f-link4/snapshot.json || die "export lost parent_tag"
same exp/f-python-numpy/rootfs.ext4 tree.expected/python-numpy.rootfs
# the chained files hold only the changed pages: smaller on disk than the base
[ "$(du -k exp/f-link1/memory.bin | cut -f1)" -lt "$(du -k exp/f-python-numpy/memory.bin | cut -f1)" ] \
    || die "a chained memory.bin is not sparse"
# A tampered exported parent is caught by forkd's check.
cp -r exp exp2 && printf 'x' | dd of=exp2/f-link2/memory.bin bs=1 seek=5000 conv=notrunc status=none
sed -i "s#$TESTDIR/exp/#$TESTDIR/exp2/#g" exp2/*/snapshot.json
! asm exp2 f-link3 2>err.txt || die "forkd's check missed a changed parent"
grep -q "chain \`f-link3\` references parent \`f-link2\`" err.txt || die "$(cat err.txt)"
# Flat, and forkd's tag rule.
fk export f-link4 --forkd flat --flat >/dev/null
[ "$(ls flat)" = f-link4 ] || die "flat export wrote $(ls flat)"
! grep -q parent_tag flat/f-link4/snapshot.json || die "flat export has a parent"
same flat/f-link4/memory.bin ref.link4
fk tag f-link2 v1.2
expect_fail 2 "not a forkd tag: forkd takes \[A-Za-z0-9_-\]\{1,64\}.*--tag NAME" fk export v1.2 --forkd x
expect_fail 2 "ancestor v1.2 needs a forkd name.*forkctl tag" fk export f-link3 --forkd x
[ ! -e x ] || [ -z "$(ls -A x)" ] || die "a refused export wrote $(ls -A x)"
fk export v1.2 --forkd x --flat --tag v1_2 >/dev/null
same x/v1_2/memory.bin ref.link2
expect_fail 2 "not a forkd tag" fk export f-link1 --forkd x --tag 'bad/name'
# Round trip: the exported chain imports back to the same bytes.
fk import-forkd exp --prefix rt- >/dev/null 2>&1
for t in link3 link4; do
    rm -rf r && fk restore "rt-f-$t" --out r >/dev/null && same r/memory.bin "ref.$t"
done
# A snapshot.json pointing outside its directory is not followed.
mkdir -p evil/x && cp tree/link1/vmstate evil/x/ && echo secret > outside.bin
printf '{"vmstate": "/etc/passwd", "memory": "%s/outside.bin"}\n' "$TESTDIR" > evil/x/snapshot.json
expect_fail 2 'expected memory.bin or diff.bin' fk import-forkd evil
