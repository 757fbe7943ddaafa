# Disk full: on a small tmpfs, an ingest that runs out of space fails with
# a clear message, the store stays consistent (verify passes, earlier
# snapshots restore exactly), and after space is freed the next ingest works.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
mkdir -p small
mount -t tmpfs -o size=40m tmpfs small 2>/dev/null || skip "cannot mount tmpfs here"
trap 'umount -l "$TESTDIR/small" 2>/dev/null || true' EXIT
gen g --size 16M --snapshots 3 --dirty 5 --seed 5
s=small/store
"$FORKCTL" --store "$s" init --chunk-size 1M >/dev/null
"$FORKCTL" --store "$s" --quiet ingest --tag s00 --memory g/00/memory.full --vmstate g/00/vmstate
head -c 16M /dev/urandom > big1.full      # incompressible: 16 MiB of new pages each
head -c 16M /dev/urandom > big2.full
# fill the file system until the ingest cannot fit
dd if=/dev/zero of=small/filler bs=1M count=12 status=none 2>/dev/null || true
rc=0
"$FORKCTL" --store "$s" ingest --tag full1 --memory big1.full --vmstate g/00/vmstate >out1 2>err1 || rc=$?
if [ $rc -eq 0 ]; then
    rc=0
    "$FORKCTL" --store "$s" ingest --tag full2 --memory big2.full --vmstate g/00/vmstate >out2 2>err1 || rc=$?
fi
[ $rc -ne 0 ] || die "no ingest failed on a full file system (df: $(df -h small | tail -n 1))"
grep -Eq "No space left on device|disk full" err1 || die "unclear error on a full disk: $(cat err1)"
[ "$(wc -l <err1)" -le 2 ] || die "error is not one clear line: $(cat err1)"
echo "ENOSPC message: $(cat err1)"
"$FORKCTL" --store "$s" verify || die "verify fails after ENOSPC"
"$FORKCTL" --store "$s" --quiet restore s00 --out r0
same r0/memory.bin g/00/memory.full
# free space: drop the filler, collect garbage, ingest again
rm -f small/filler
"$FORKCTL" --store "$s" --quiet gc
"$FORKCTL" --store "$s" --quiet ingest --tag s01 --parent s00 --memory g/01/memory.diff --diff --vmstate g/01/vmstate
"$FORKCTL" --store "$s" --quiet restore s01 --out r1
same r1/memory.bin g/01/memory.full
"$FORKCTL" --store "$s" verify >/dev/null
