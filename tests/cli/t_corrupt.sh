# Damage in chunk files: verify names exactly the affected snapshots and
# exits 5; restore of an affected snapshot fails naming it; unaffected
# snapshots still restore byte for byte.
. "$(dirname "$0")/lib.sh"
fk init --chunk-size 1M >/dev/null
head -c 20000 /dev/urandom >vm
for t in a b c d; do
    head -c $((3 << 20)) /dev/urandom >"m$t"
    fk ingest --tag "$t" --memory "m$t" --vmstate vm >/dev/null
done
fk verify >/dev/null
q() { fk sql "$1" --csv | tail -n +2; }
# Flip a byte inside a record of chunk 1; truncate the chunk holding d's last page.
flip=5000
c1=$(printf '%s/store/chunks/%08x.chunk' "$TESTDIR" 1)
# Complement the byte: writing a fixed value would leave it unchanged
# (and the damage unseen) when it already held that value, 1 run in 256.
old=$(od -An -tu1 -j $flip -N1 "$c1" | tr -d ' ')
printf "\\x$(printf '%02x' $((255 - old)))" | dd of="$c1" bs=1 seek=$flip conv=notrunc status=none
[ "$(od -An -tu1 -j $flip -N1 "$c1" | tr -d ' ')" != "$old" ] || die "test setup: the byte did not change"
cx=$(q "SELECT chunk_id FROM page_place ORDER BY chunk_id DESC, off DESC LIMIT 1")
[ "$cx" != 1 ] || die "test setup: every page in chunk 1"
cut_at=$(( $(q "SELECT used FROM chunk WHERE id = $cx") - 10000 ))
truncate -s $cut_at "$(printf '%s/store/chunks/%08x.chunk' "$TESTDIR" "$cx")"
# The snapshots whose pages the damage reaches, computed from the catalog.
want=$(q "SELECT DISTINCT s.tag FROM page_place p JOIN run r ON p.id BETWEEN r.page_id AND r.page_id + r.npages - 1
          JOIN artifact a ON a.id = r.artifact_id JOIN snapshot s ON s.id = a.snapshot_id
          WHERE (p.chunk_id = 1 AND p.off <= $flip AND $flip < p.off + p.len)
             OR (p.chunk_id = $cx AND p.off + p.len > $cut_at) ORDER BY 1" | tr '\n' ' ')
rc=0
fk verify >v.out 2>v.err || rc=$?
[ $rc -eq 5 ] || die "verify exit $rc, expected 5"
got=$(sed -n 's/.*snapshots affected: //p' v.err | tr ' ' '\n' | sort | tr '\n' ' ')
echo "affected: want [$want] got [$got]"
[ "$got" = "$want" ] || die "verify named [$got], expected [$want]"
grep -q "is truncated" v.err || die "verify did not report the truncated chunk"
for t in a b c d; do
    if echo " $want" | grep -q " $t "; then
        expect_fail 5 "snapshot $t" fk restore "$t" --out "r$t"
        [ -z "$(ls -A "r$t" 2>/dev/null)" ] || die "a failed restore left files in r$t"
    else
        fk restore "$t" --out "r$t" >/dev/null
        same "r$t/memory.bin" "m$t"
    fi
done

# A map run whose columns are not integers names no page: restore must
# call it damage, not write zeros (a BLOB even passes CHECK (npages > 0)).
for v in "X'0400000000000000'" "'four'" "4.5"; do
    rm -rf s2 o2
    "$FORKCTL" --store s2 --quiet init
    "$FORKCTL" --store s2 --quiet ingest --tag x --memory ma --vmstate ma
    sqlite3 s2/catalog.db "UPDATE pmap_run SET npages = $v"
    rc=0
    "$FORKCTL" --store s2 restore x --out o2 2>e2 || rc=$?
    [ $rc -eq 5 ] && grep -q "page map .*damaged" e2 || die "npages = $v: restore exit $rc: $(cat e2)"
    [ -z "$(ls -A o2 2>/dev/null)" ] || die "npages = $v: a failed restore left files"
done

# verify checks each run's shape: a huge npages (once an out-of-memory), a
# run moved past the file's end or negative numbers are damage, naming the
# snapshot, and verify stays small.
for upd in "npages = 4611686018427387903" "pgno = pgno + 100000" "pgno = -5" "page_id = -3"; do
    rm -rf s3
    "$FORKCTL" --store s3 --quiet init
    "$FORKCTL" --store s3 --quiet ingest --tag y --memory ma --vmstate ma
    "$FORKCTL" --store s3 --quiet ingest --tag z --parent y --memory mb --vmstate ma
    sqlite3 s3/catalog.db "PRAGMA ignore_check_constraints = 1; UPDATE pmap_run SET $upd WHERE pmap_id = (SELECT a.pmap_id FROM artifact a JOIN snapshot s ON s.id = a.snapshot_id WHERE s.tag = 'z' AND a.name = 'memory')" 2>/dev/null ||
        continue   # the primary key refuses this one on this map: nothing to check
    rc=0
    /usr/bin/time -f %M -o rss "$FORKCTL" --store s3 verify >v3.out 2>v3.err || rc=$?
    [ $rc -eq 5 ] && grep -q "snapshots affected: z" v3.err || die "verify after '$upd': exit $rc: $(cat v3.err)"
    [ "$(tail -n 1 rss)" -lt 200000 ] || die "verify after '$upd' used $(tail -n 1 rss) KB"
done
