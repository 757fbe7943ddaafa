# gc reclaims at least 90% of the bytes only removed snapshots referenced;
# everything left verifies and restores; a second gc is refused at once.
. "$(dirname "$0")/lib.sh"
fk init --chunk-size 1M >/dev/null
head -c 20000 /dev/urandom >vm
# Eight independent 2 MiB snapshots, half of them random (incompressible).
for i in 0 1 2 3 4 5 6 7; do
    head -c $((2 << 20)) /dev/urandom >"m$i"
    fk ingest --tag "s$i" --memory "m$i" --vmstate vm >/dev/null
done
only=$(fk sql "SELECT sum(stored_bytes) FROM snapshot WHERE tag IN ('s1','s3','s5','s7')" --csv | tail -n 1)
fk rmi s1 s3 s5 s7 >/dev/null
fk gc --dry-run --json >dry.json
grep -Eq "\"pages_freed\": ?2048" dry.json || die "dry run should count 2048 unreferenced pages: $(cat dry.json)"
fk verify >/dev/null
fk gc --json >gc.json
reclaimed=$(sed -n "s/.*\"bytes_reclaimed\": *\([0-9-]*\).*/\1/p" gc.json)
echo "only-removed bytes $only, reclaimed $reclaimed"
[ "$reclaimed" -ge $((only * 9 / 10)) ] || die "gc reclaimed $reclaimed of $only bytes (< 90%)"
fk verify >/dev/null || die "verify failed after gc"
for i in 0 2 4 6; do
    fk restore "s$i" --out "r$i" >/dev/null
    same "r$i/memory.bin" "m$i"
done
# A second gc while one holds the lock: exit 4 at once, clear message.
exec 9>"$TESTDIR/store/gc.lock"
flock -n 9
expect_fail 4 "another gc is running" fk gc
exec 9>&-
# A stray file (as left by a crash before a commit) is removed.
fallocate -l 1M "$TESTDIR/store/chunks/tmp.999.dead"
fk gc --json >gc2.json
grep -Eq "\"strays_deleted\": ?1," gc2.json || die "stray file not deleted: $(cat gc2.json)"
[ ! -e "$TESTDIR/store/chunks/tmp.999.dead" ] || die "stray still there"
