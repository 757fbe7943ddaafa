# Hostile: numbers in arguments (issue 13 rows 2 and 9). A duration that
# overflowed made `prune --keep-within 999999999y --keep-last 1` remove
# snapshots made seconds earlier; nan, inf, negative values, overflow and
# trailing characters must be refused as usage errors (exit 2) with a
# message naming the flag and the allowed range, and nothing changes.
. "$(dirname "$0")/../cli/lib.sh"
base_store
head -c 65536 /dev/urandom >m2
fk ingest --tag child --parent base --memory m2 --vmstate vm >/dev/null
before=$(store_state)

for d in 999999999y 1e300 1e400 101y nan NaN inf -inf -1d 0 0s 5x 2h7 " 3d" "" 0x10 1e; do
    expect_fail 2 "--keep-within takes a duration .*100 years.*got '$d'" \
        fk prune --keep-within "$d" --keep-last 1
done
[ "$(store_state)" = "$before" ] || die "a refused prune changed the store"
# The largest allowed duration keeps everything (nothing is older).
out=$(fk prune --keep-within 100y --keep-last 1 --json)
[ "$(echo "$out" | jq '.removed | length')" = 0 ] || die "prune --keep-within 100y removed: $out"
[ "$(store_state)" = "$before" ] || die "prune --keep-within 100y changed the store"

for n in 0 -1 1.5 nan inf 1e300 1000001 3x ""; do
    expect_fail 2 "--keep-last takes a whole number from 1 to 1000000, got '$n'" fk prune --keep-last "$n"
done
for d in nan inf -5 0 1e300 10q; do
    expect_fail 2 "--max-duration takes a duration" fk gc --max-duration "$d"
done
for t in nan inf 0 1.5 -0.1 0.5x; do
    expect_fail 2 "--threshold takes a fraction" fk gc --threshold "$t"
done
for p in nan inf 0 101 -3 50%; do
    expect_fail 2 "--sample takes a percentage" fk verify --sample "$p"
done
for t in nan inf 0 1.5 3600001 1e300 5ms; do
    expect_fail 2 "--timeout takes a whole number of milliseconds" fk restore base --api-sock /nonexistent --timeout "$t"
done
[ "$(store_state)" = "$before" ] || die "a refused command changed the store"

# --chunk-size: inf became 16 MiB silently.
for c in inf nan -1M 1.3K 1e300 512K 5G 1Q 1MiBx 0x100000; do
    expect_fail 2 "--chunk-size takes a size in bytes from 1048576 to 4294967296.*got '$c'" \
        "$FORKCTL" init "$TESTDIR/s-$RANDOM" --chunk-size "$c"
done
[ -z "$(ls -d "$TESTDIR"/s-* 2>/dev/null)" ] || die "a refused init left a store behind"
for c in 1M 1MiB 1.5M 2048K 4G; do
    "$FORKCTL" init "$TESTDIR/ok-$c" --chunk-size "$c" >/dev/null || die "--chunk-size $c refused"
done

# Environment variables get the same checks.
for t in abc 0 65 -1 " 4" 4x 1e1 99999999999999999999; do
    expect_fail 2 "FORKSTORE_THREADS='.*' is not a number of threads from 1 to 64" \
        env FORKSTORE_THREADS="$t" "$FORKCTL" --store "$TESTDIR/store" restore base --out "o-$RANDOM"
done
FORKSTORE_THREADS=3 fk restore base --out o3 >/dev/null
same o3/memory.bin m
for t in nan abc -1 1e400 inf INF infinity 0x10 " 4" "4 " +4 86401 1e5 4s .; do
    expect_fail 2 "FORKSTORE_LOCK_TIMEOUT='.*' is not a number of seconds from 0 to 86400" \
        env FORKSTORE_LOCK_TIMEOUT="$t" "$FORKCTL" --store "$TESTDIR/store" tag base b2
done
for t in 0 0.5 1e1 86400 ""; do
    FORKSTORE_LOCK_TIMEOUT="$t" fk tag base lt >/dev/null || die "FORKSTORE_LOCK_TIMEOUT='$t' refused"
    FORKSTORE_LOCK_TIMEOUT="$t" fk tag lt base >/dev/null || die "FORKSTORE_LOCK_TIMEOUT='$t' refused"
done
