# A 64 GiB logical memory file with a handful of data pages (truncate -s
# 64G, then 4 KiB writes) ingests as Full in a few seconds, reading only
# its data, with a small peak RSS; it restores byte-identically as a
# 64 GiB sparse file whose allocation is only its non-zero pages. Prints
# the timings and peak RSS (/usr/bin/time -f %M).
. "$(dirname "$0")/lib.sh"
[ -x /usr/bin/time ] || skip "needs /usr/bin/time (Debian package time)"
fk init >/dev/null
SIZE=$((64 << 30)) PG=4096
truncate -s "$SIZE" big.mem 2>/dev/null || skip "cannot create a 64 GiB sparse file here"
[ "$(stat -c %b big.mem)" -lt 16 ] || skip "this file system does not keep holes"
# pages: first, 1 GiB, odd spots, 63 GiB, last; one all-zero page written
# as data (a Full ingest stores it as a hole); one duplicate.
pages="0 262144 4456451 8388608 12345677 16515072 16777215"
i=0
for p in $pages; do
    head -c $PG /dev/urandom >page.$i
    dd if=page.$i of=big.mem bs=$PG seek="$p" conv=notrunc status=none
    i=$((i + 1))
done
cp page.2 page.dup && dd if=page.dup of=big.mem bs=$PG seek=9000000 conv=notrunc status=none
dd if=/dev/zero of=big.mem bs=$PG seek=10000000 count=1 conv=notrunc status=none
[ "$(stat -c %s big.mem)" = "$SIZE" ] || die "test setup: size changed"
head -c 20000 /dev/urandom >vm

# RSS bound: a per-page structure for 16 Mi pages would cost >= 128 MiB.
MAX_RSS_KB=$((120 * 1024))
case "${BUILD:-}" in *asan*|*ubsan*) MAX_RSS_KB=$((400 * 1024)) ;; esac

/usr/bin/time -f '%e %M' -o ingest.time "$FORKCTL" --store "$TESTDIR/store" ingest --tag big \
    --memory big.mem --vmstate vm --json >ingest.json
read -r isecs irss <ingest.time
num() { grep -o "\"$1\": *[0-9]*" ingest.json | grep -o '[0-9]*$'; }
echo "ingest of 64 GiB sparse (9 data pages, 1 of them zero): ${isecs}s, peak RSS ${irss} KiB," \
     "read $(num read_bytes) bytes, $(num pages) pages examined, $(num zero_pages) zero," \
     "$(num dedup_pages) dedup, $(num new_pages) new"
[ "$(num logical_bytes)" -eq $((SIZE + 20000)) ] || die "logical size $(num logical_bytes)"
[ "$(num read_bytes)" -le $((1 << 20)) ] || die "ingest read $(num read_bytes) bytes of a file with 9 data pages"
[ "$(num new_pages)" -eq $((7 + 5)) ] || die "expected 7 memory + 5 vmstate new pages: $(cat ingest.json)"
[ "$(num dedup_pages)" -ge 1 ] || die "the duplicate page was not deduplicated"
awk -v s="$isecs" 'BEGIN { exit !(s < 10) }' || die "ingest took ${isecs}s (expected a few seconds)"
[ "$irss" -lt "$MAX_RSS_KB" ] || die "ingest peak RSS ${irss} KiB (limit $MAX_RSS_KB)"

/usr/bin/time -f '%e %M' -o restore.time "$FORKCTL" --store "$TESTDIR/store" restore big --out r >/dev/null
read -r rsecs rrss <restore.time
alloc=$(($(stat -c %b r/memory.bin) * 512))
echo "restore: ${rsecs}s, peak RSS ${rrss} KiB; memory.bin $(stat -c %s r/memory.bin) bytes, $alloc allocated"
[ "$(stat -c %s r/memory.bin)" = "$SIZE" ] || die "restored memory.bin is not 64 GiB"
[ "$alloc" -le $((1 << 20)) ] || die "restored memory.bin allocates $alloc bytes (zero pages must be holes)"
awk -v s="$rsecs" 'BEGIN { exit !(s < 10) }' || die "restore took ${rsecs}s"
[ "$rrss" -lt "$MAX_RSS_KB" ] || die "restore peak RSS ${rrss} KiB (limit $MAX_RSS_KB)"
page_at() { dd if="$1" bs=$PG skip="$2" count=1 status=none; }
i=0
for p in $pages; do
    page_at r/memory.bin "$p" | cmp -s - page.$i || die "page $p differs after restore"
    i=$((i + 1))
done
page_at r/memory.bin 9000000 | cmp -s - page.dup || die "the duplicate page differs"
for p in 1 10000000 16777214; do
    page_at r/memory.bin "$p" | cmp -s - <(head -c $PG /dev/zero) || die "page $p is not zero"
done
same r/vmstate vm
