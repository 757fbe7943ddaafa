# Sparse Diff inputs: holes at the start and the end, single-page extents,
# dirtied zero pages written as data, a page reverted to earlier content
# (a dedup hit), and a Full file that is itself sparse: all round-trip.
. "$(dirname "$0")/lib.sh"
P=4096 N=256
fk init >/dev/null
# Base: a sparse Full file: data only in pages 10-99 and 200-209.
truncate -s $((N * P)) base.full
head -c $((90 * P)) /dev/urandom | dd of=base.full bs=$P seek=10 conv=notrunc status=none
head -c $((10 * P)) < <(yes "forkstore text page") | dd of=base.full bs=$P seek=200 conv=notrunc status=none
head -c 20500 /dev/urandom >vm
fk ingest --tag s0 --memory base.full --vmstate vm >/dev/null

# Diff 1: page 0 (start), page 255 (end), single page 50 dirtied to zero
# (written as data), pages 120-121 new, page 60 reverted to page 10's bytes.
cp --sparse=always base.full s1.full
truncate -s $((N * P)) s1.diff
put() { # put PAGE SRC SRCPAGE: copy one page into the diff and the full image
    dd if="$2" of=s1.diff bs=$P skip="$3" seek="$1" count=1 conv=notrunc status=none
    dd if="$2" of=s1.full bs=$P skip="$3" seek="$1" count=1 conv=notrunc status=none
}
head -c $((4 * P)) /dev/urandom >rnd
dd if=/dev/zero bs=$P count=1 status=none >zero
put 0 rnd 0
put 255 rnd 1
put 50 zero 0
put 120 rnd 2
put 121 rnd 3
put 60 base.full 10
# the data extents are what the diff says changed
[ "$(du -k s1.diff | cut -f1)" -le 40 ] || die "diff is not sparse"
fk ingest --tag s1 --parent s0 --memory s1.diff --diff --vmstate vm >/dev/null
dedup=$(fk sql "SELECT count(*) FROM run r JOIN artifact a ON a.id = r.artifact_id JOIN snapshot s ON s.id = a.snapshot_id WHERE s.tag = 's1' AND a.name = 'memory' AND r.pgno = 60 AND r.page_id = (SELECT page_id FROM run WHERE artifact_id = 1 AND pgno <= 10 ORDER BY pgno DESC LIMIT 1) + 10 - (SELECT pgno FROM run WHERE artifact_id = 1 AND pgno <= 10 ORDER BY pgno DESC LIMIT 1)" --csv | tail -n 1)
[ "$dedup" = 1 ] || die "reverted page 60 was not deduplicated against page 10"

# Diff 2 on top of diff 1: a hole-only diff (no change at all).
truncate -s $((N * P)) s2.diff
fk ingest --tag s2 --parent s1 --memory s2.diff --diff --vmstate vm >/dev/null

for t in s0:base.full s1:s1.full s2:s1.full; do
    tag=${t%%:*} want=${t#*:}
    fk restore "$tag" --out "r-$tag" >/dev/null
    same "r-$tag/memory.bin" "$want"
    same "r-$tag/vmstate" vm
done
# Zero pages are holes in the output: base has 100 data pages of 256.
alloc=$(du -k r-s0/memory.bin | cut -f1)
[ "$alloc" -le $((100 * 4 + 16)) ] || die "restored memory.bin allocates ${alloc} KiB, expected ~400 (holes)"
