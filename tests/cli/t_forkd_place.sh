# A forkd export is all or nothing, as a restore is. It is made to fail for
# real at every step that can fail late:
# - every renameat2() of the export in turn (tests/cli/failrename.c): the
#   files restore places inside a snapshot's directory, the rootfs's
#   rename, each directory's rename into OUT (a later one fails after
#   earlier ones were placed, which are then taken back), once with ENOSPC;
# - a file larger than RLIMIT_FSIZE: with SIGXFSZ ignored the write fails
#   (EFBIG), with it at its default the process dies mid-write, as after
#   kill -9.
# After each failure no final directory is there (a clean failure leaves
# nothing at all, a killed export only its temporary directory, which the
# next export removes unless an export still holds its lock), an OUT that
# already held an ancestor is as it was, and the retry succeeds; the
# exported files are byte-identical (cmp) to a restore of each snapshot,
# and forkd's assembly of the chain (tools/forkd-assemble.py) to the head.
. "$(dirname "$0")/lib.sh"
[ -f "${FAILRENAME:-}" ] || die "FAILRENAME (build/tests/failrename.so) not built"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
root=$(cd "$(dirname "$0")/../.." && pwd)
failing() { # failing N CMD...: CMD with its Nth renameat2() failing
    local n=$1; shift
    LD_PRELOAD="$FAILRENAME" FKS_FAIL_RENAME=$n "$@"
}
finals() { ls "$1" 2>/dev/null | tr '\n' ' '; }   # the non-dot names in DIR

gen g --size 4M --snapshots 3 --dirty 10 --seed 7 --rootfs 64K
fk init --chunk-size 1M >/dev/null
fk ingest --tag b0 --memory g/00/memory.full --vmstate g/00/vmstate --file rootfs=g/rootfs.ext4 >/dev/null
fk ingest --tag b1 --parent b0 --memory g/01/memory.diff --diff --vmstate g/01/vmstate \
    --file rootfs=g/rootfs.ext4 >/dev/null
fk ingest --tag b2 --parent b1 --memory g/02/memory.diff --diff --vmstate g/02/vmstate >/dev/null
for t in b0 b1 b2; do fk restore "$t" --out "r.$t" >/dev/null; done

# check_export DIR: DIR holds b0 b1 b2 as forkd lays them out, each file
# the bytes of a restore, the chain assembling to b2's memory.
check_export() {
    local d=$1 t
    [ "$(finals "$d")" = "b0 b1 b2 " ] || die "$d holds $(ls -A "$d")"
    [ -z "$(ls -A "$d" | grep '^\.' || true)" ] || die "a temporary name stayed in $d: $(ls -A "$d")"
    for t in b0 b1 b2; do cmp "$d/$t/vmstate" "r.$t/vmstate" || die "$d/$t/vmstate"; done
    cmp "$d/b0/memory.bin" r.b0/memory.bin || die "$d/b0/memory.bin is not b0's memory"
    cmp "$d/b0/rootfs.ext4" r.b0/rootfs || die "$d/b0/rootfs.ext4"
    cmp "$d/b1/rootfs.ext4" r.b1/rootfs || die "$d/b1/rootfs.ext4"
    rm -f asm.b2 && python3 "$root/tools/forkd-assemble.py" "$d" b2 asm.b2 >/dev/null
    cmp asm.b2 r.b2/memory.bin || die "forkd's assembly of $d/b2 is not b2's memory"
}

# The shim must really fail the call it is told to, or this test proves nothing.
failing 1 fk export b0 --forkd probe --flat >/dev/null 2>&1 && die "the rename shim did not fail a call"
rm -rf probe

# ---- every rename in turn, into an empty OUT ----
n=0
while :; do
    n=$((n + 1))
    [ $n -le 40 ] || die "the export still fails at rename 40"
    rc=0
    failing $n fk export b2 --forkd exp >/dev/null 2>err || rc=$?
    [ $rc -ne 0 ] || break
    grep -q "Input/output error" err || die "rename $n: unclear error: $(cat err)"
    [ -z "$(ls -A exp)" ] || die "rename $n failed and left $(ls -A exp)"
    grep -q "rename .*/b[012] to .*/exp/b2" err && last=$n
done
rm -rf exp
[ $n -ge 10 ] && [ "${last:-0}" -gt 2 ] || die "only $((n - 1)) renames failed (placement of b2: ${last:-none})"
echo "t_forkd_place: $((n - 1)) renames failed one by one, each left nothing" >&2
# the run that got past every injected failure is a whole export
failing 1000 fk export b2 --forkd exp >/dev/null
check_export exp
rm -rf exp

# ---- OUT already holds b0 (reused): a failed placement leaves it as it was ----
fk export b0 --forkd exp --flat >/dev/null
s=$(out_state exp)
placements=0 n=0
while :; do
    n=$((n + 1))
    [ $n -le 40 ] || die "the export still fails at rename 40"
    rc=0
    failing $n fk export b2 --forkd exp >o.txt 2>err || rc=$?
    [ $rc -ne 0 ] || break
    [ "$(out_state exp)" = "$s" ] || die "rename $n failed and changed exp: $(ls -A exp)"
    grep -q "rename .* to .*/exp/b[12]" err && placements=$((placements + 1))
    grep -q "rename .* to .*/exp/b2" err && last=$n
done
[ $placements -eq 2 ] || die "expected the placements of b1 and b2 to fail, saw $placements"
grep -q "(base b0; 1 already there)" o.txt || die "b0 was not reused: $(cat o.txt)"
check_export exp
rm -rf exp/b1 exp/b2
[ "$(out_state exp)" = "$s" ] || die "exp: $(ls -A exp)"
# ... with the disk full at the last placement.
expect_fail 1 "rename .* to .*/exp/b2 .*No space left" env FKS_FAIL_ERRNO=ENOSPC LD_PRELOAD="$FAILRENAME" \
    FKS_FAIL_RENAME="$last" "$FORKCTL" --store "$TESTDIR/store" export b2 --forkd exp
[ "$(out_state exp)" = "$s" ] || die "a failed export (ENOSPC) changed exp: $(ls -A exp)"
rm -rf exp

# ---- a file over RLIMIT_FSIZE (2 MiB; memory.bin is 4 MiB) ----
# SIGXFSZ ignored: the write fails with EFBIG, the export cleans up.
rc=0
bash -c 'trap "" XFSZ; ulimit -f 2048; exec "$@"' sh "$FORKCTL" --store "$TESTDIR/store" \
    export b2 --forkd exp >/dev/null 2>err || rc=$?
[ $rc -ne 0 ] || die "an export over the file size limit succeeded"
grep -q "File too large" err || die "unclear error over the file size limit: $(cat err)"
[ -z "$(ls -A exp)" ] || die "a failed export (EFBIG) left $(ls -A exp)"
# SIGXFSZ at its default: the process dies mid-write, nothing cleans up.
rc=0
bash -c 'ulimit -c 0; ulimit -f 2048; exec "$@"' sh "$FORKCTL" --store "$TESTDIR/store" \
    export b2 --forkd exp >/dev/null 2>&1 || rc=$?
[ $rc -gt 128 ] || die "the export was not killed by SIGXFSZ (exit $rc)"
[ -z "$(finals exp)" ] || die "a killed export left a final name: $(ls -A exp)"
left=$(ls -A exp)
case "$left" in .fks-export-??????) ;; *) die "a killed export left $left, not one temporary directory" ;; esac
# A temporary directory whose lock is held (an export still running: here
# this shell holds it) is left alone; the dead export's is removed by the
# retry, which succeeds.
mkdir exp/.fks-export-live && touch exp/.fks-export-live/f
exec 9<exp/.fks-export-live
flock -n 9 || die "cannot lock exp/.fks-export-live"
fk export b2 --forkd exp >/dev/null
[ -e exp/.fks-export-live/f ] || die "the retry removed a temporary directory in use"
exec 9<&-
[ ! -e "exp/$left" ] || die "the retry left the killed export's $left"
rm -r exp/.fks-export-live
check_export exp
