# forkd interop: import of a generated forkd tree (a 4-level chain with a
# sparse diff link, a full link and a rootfs) then export reproduces every
# memory file byte for byte; a tampered parent_content_hash is refused and
# changes nothing; absolute paths in snapshot.json are never read.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
FORKGEN=$FORKGEN "$root/tools/forkd-gen.sh" tree 8M
fk init >/dev/null
# Tampered copy first: must be refused before anything is ingested.
cp -r --sparse=never tree bad
# flip the first hex digit of the hash: 0 <-> 1, anything else -> 0
awk '{ if (match($0, /"parent_content_hash": "./)) { c = substr($0, RSTART + RLENGTH - 1, 1)
       $0 = substr($0, 1, RSTART + RLENGTH - 2) (c == "0" ? "1" : "0") substr($0, RSTART + RLENGTH) } print }' \
    tree/child2/snapshot.json > bad/child2/snapshot.json
! cmp -s tree/child2/snapshot.json bad/child2/snapshot.json || die "tampering failed"
before=$(store_state)
expect_fail 5 "child2: parent_content_hash .* does not match its parent child1.*nothing imported" fk import-forkd bad
[ "$(store_state)" = "$before" ] || die "a refused import changed the store"
fk import-forkd tree --prefix f- >/dev/null
[ "$(fk sql "SELECT count(*) FROM snapshot" --csv | tail -n 1)" = 4 ] || die "expected 4 snapshots"
[ "$(fk sql "SELECT p.tag FROM snapshot s JOIN snapshot p ON p.id = s.parent_id WHERE s.tag = 'f-child3'" --csv | tail -n 1)" = f-child2 ] \
    || die "lineage lost"
for t in base child1 child2 child3; do
    fk export "f-$t" --forkd exp >/dev/null
    same "exp/f-$t/memory.bin" "tree.expected/$t.memory"
    same "exp/f-$t/vmstate" "tree/$t/vmstate"
    grep -Eq "\"memory\": ?\"$TESTDIR/exp/f-$t/memory.bin\"" "exp/f-$t/snapshot.json" || die "export snapshot.json paths: $(cat exp/f-$t/snapshot.json)"
done
same exp/f-base/rootfs.ext4 tree.expected/base.rootfs
grep -Eq '"parent_tag": ?"f-child2"' exp/f-child3/snapshot.json || die "export lost parent_tag"
# A snapshot.json pointing outside its directory is not followed.
mkdir -p evil/x && cp tree/base/vmstate evil/x/ && echo secret > outside.bin
printf '{"vmstate": "/etc/passwd", "memory": "%s/outside.bin"}\n' "$TESTDIR" > evil/x/snapshot.json
expect_fail 2 'expected memory.bin or diff.bin' fk import-forkd evil
