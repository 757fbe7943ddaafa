# forkctl compact: recompressing every chunk at a higher zstd level leaves
# every snapshot restoring byte-identical and verify passing, and the
# store's committed records smaller; a second run finds nothing to do; a
# kill at each step of a chunk's rewrite (new records synced, catalog
# switched) and at random moments loses nothing, and a later compact
# finishes the work.
. "$(dirname "$0")/lib.sh"
gen chain --size 8M --snapshots 4 --dirty 10 --seed 3
fk init --chunk-size 1M >/dev/null
tags=""
prev=""
for nn in 00 01 02 03; do
    fk ingest --tag "s$nn" ${prev:+--parent "$prev"} --memory "chain/$nn/memory.full" \
        --vmstate "chain/$nn/vmstate" >/dev/null
    prev=s$nn
    tags="$tags $nn"
done
# Dead records too: compact drops them on the way.
fk ingest --tag gone --memory "chain/01/memory.diff" --vmstate chain/01/vmstate >/dev/null
fk rmi gone >/dev/null
records() { fk sql "SELECT sum(len) FROM (SELECT DISTINCT chunk_id, off, len FROM block)" --csv | tail -n 1; }
check_all() { # every snapshot restores byte-identical, verify passes
    fk verify >/dev/null || die "verify failed $1"
    for nn in $tags; do
        rm -rf r
        fk restore "s$nn" --out r >/dev/null
        same r/memory.bin "chain/$nn/memory.full"
        same r/vmstate "chain/$nn/vmstate"
    done
}
num() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$2"; }
check_all "before compact"
cp -a "$TESTDIR/store" "$TESTDIR/pristine"
before=$(records)

# Usage errors, and the gc lock.
expect_fail 2 "level" fk compact --level 0
expect_fail 2 "level" fk compact --level 23
exec 9>"$TESTDIR/store/gc.lock"
flock -n 9
expect_fail 4 "another compact is running" fk compact
exec 9>&-

fk compact --json >c1.json
after=$(records)
echo "records $before -> $after bytes; $(tr -d '\n ' <c1.json)"
[ "$(num chunks_recompressed c1.json)" -ge 1 ] || die "compact rewrote no chunk: $(cat c1.json)"
[ "$after" -lt "$before" ] || die "records did not shrink: $before -> $after"
[ "$(num bytes_after c1.json)" -lt "$(num bytes_before c1.json)" ] || die "report says no gain: $(cat c1.json)"
check_all "after compact"
# The room after compact's last record went back to the file system when
# another chunk keeps room: such a chunk's file is exactly its used bytes.
fk sql "SELECT id, used FROM chunk WHERE cap = used" --csv | tail -n +2 | while IFS=, read -r id used; do
    [ "$(stat -c %s "$TESTDIR/store/chunks/$(printf %08x "$id").chunk")" -eq "$used" ] ||
        die "chunk $id trimmed in the catalog, not on disk"
done
# Ingest goes on as before (new pages land in chunks with room).
head -c $((1 << 20)) /dev/urandom >new.mem
fk ingest --tag new --memory new.mem --vmstate chain/00/vmstate >/dev/null
fk restore new --out rn >/dev/null
same rn/memory.bin new.mem
fk rmi new >/dev/null
fk gc >/dev/null
after=$(records)
# A second run: everything is dense now, nothing is rewritten.
fk compact --json >c2.json
[ "$(num chunks_recompressed c2.json)" -eq 0 ] || die "second compact rewrote chunks: $(cat c2.json)"
[ "$(records)" -eq "$after" ] || die "second compact changed the records"
# gc moves blocks at the compact level from now on: a gc that compacts
# (removing a snapshot frees records between kept ones) does not undo it.
[ "$(fk sql "SELECT value FROM meta WHERE key = 'compact_level'" --csv | tail -n 1)" = 15 ] ||
    die "compact_level not recorded"
check_all "after the second compact"

# Kills: at each step of the second chunk's rewrite, then at random moments.
for point in synced committed synced:1 committed:3; do
    rm -rf "$TESTDIR/store"
    cp -a "$TESTDIR/pristine" "$TESTDIR/store"
    rc=0
    FKS_TEST_COMPACT_KILL=$point fk compact --quiet || rc=$?
    [ "$rc" -eq 137 ] || die "compact with kill point $point exited $rc, not killed"
    check_all "after a kill at $point"
    fk compact --quiet
    check_all "after a compact that followed a kill at $point"
    fk gc >/dev/null
    check_all "after gc following a kill at $point"
    [ "$(records)" -lt "$before" ] || die "compact after a kill at $point did not shrink the records"
done
for delay in 0.05 0.2 0.4 0.8; do
    rm -rf "$TESTDIR/store"
    cp -a "$TESTDIR/pristine" "$TESTDIR/store"
    "$FORKCTL" --store "$TESTDIR/store" --quiet compact &   # not fk: $! must be forkctl
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    check_all "after a kill $delay s into compact"
    fk compact --quiet
    fk gc >/dev/null
    check_all "after compact and gc following a kill $delay s in"
done
# Beside ingests and restores: all of them and compact succeed, and
# everything restores afterwards.
rm -rf "$TESTDIR/store"
cp -a "$TESTDIR/pristine" "$TESTDIR/store"
head -c $((3 << 20)) /dev/urandom >side.mem
cat chain/02/memory.full side.mem >side2.mem
fk compact --quiet &
cpid=$!
fk ingest --tag side --parent s03 --memory side2.mem --vmstate chain/00/vmstate >/dev/null
rm -rf rs
fk restore s02 --out rs >/dev/null
same rs/memory.bin chain/02/memory.full
wait "$cpid" || die "compact beside an ingest failed"
check_all "after compact beside an ingest"
fk restore side --out rs2 >/dev/null
same rs2/memory.bin side2.mem
echo "ok"
