# Chain safety of forkctl branch against the test VMM (tools/vmm/fcvmm):
# Firecracker resets its dirty pages on every successful snapshot/create,
# so after each failure that follows a create, a later branch either
# refuses a Diff with advice (exit 6) or yields a snapshot that restores to
# exactly the VM's RAM at that snapshot (the VMM's --dump-dir image of
# every successful create). Failure points: ingest error (FAILRENAME),
# disk full (a small tmpfs store, root only), lock timeout (the store's
# lock held during the create), SIGKILL of forkctl (in the create, and
# with FORKSTORE_TEST_KILL_AFTER_CREATE before and after the staged state
# is recorded). Also: a parent that is not the VM's last snapshot, a VM
# never snapshotted here, two branches of one VM at once, --vm-id.
. "$(dirname "$0")/lib.sh"
[ -x "${FCVMM:-}" ] || skip "FCVMM (tools/vmm) not built"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
            if mountpoint -q "$TESTDIR/small" 2>/dev/null; then umount "$TESTDIR/small"; fi; }
trap cleanup EXIT
start_vmm() { # start_vmm SOCK ARGS...
    local sock=$1
    shift
    "$FCVMM" --api-sock "$sock" "$@" 2>>vmm.err &
    pids+=($!)
    for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
    die "fcvmm did not start: $(cat vmm.err)"
}
api() { curl -sf --max-time 5 --unix-socket "$1" "http://localhost$2"; }
state() { api "$1" / | jq -r .state; }
S=$TESTDIR/vm.sock
running() { [ "$(state "$S")" = Running ] || die "VM is $(state "$S") $*"; }
last_dump() { echo "${1:-dumps}/$(ls "${1:-dumps}" | sort | tail -n 1)"; }
# check TAG DUMP: TAG restores to the VM's RAM image DUMP.
check() { rm -rf "r_$1"; fk --quiet restore "$1" --out "r_$1"; same "r_$1/memory.bin" "$2"; }
br() { fk --quiet branch --api-sock "$S" --staging "$TESTDIR/stage" "$@"; }

fk --quiet init --chunk-size 1M
mkdir -p dumps dumps2 stage
start_vmm "$S" --mem-mib 16 --rate 20000 --seed 5 --dump-dir "$TESTDIR/dumps" --id chainvm
sleep 0.2

# A VM this store never snapshotted: no Diff on anything.
head -c 65536 /dev/urandom >om
fk --quiet ingest --tag other --memory om --vmstate om
expect_fail 6 "no snapshot of VM fc:chainvm@.* is recorded" br --tag x0 --parent other
grep -q -- "--full" "$TESTDIR/err" || die "refusal gives no advice: $(cat "$TESTDIR/err")"
br --tag b0
check b0 "$(last_dump)"
[ "$(fk sql --csv "SELECT state || ' ' || (SELECT tag FROM snapshot WHERE id = head_id) FROM vm_head" | tail -n 1)" = "stored b0" ] ||
    die "vm_head does not record b0: $(fk sql "SELECT * FROM vm_head")"
br --tag b1 --parent b0
check b1 "$(last_dump)"

# A parent that is not the VM's last snapshot: refused with the fix; --full takes it as lineage.
expect_fail 6 "last snapshot is b1, not b0" br --tag b2 --parent b0
grep -q -- "--parent b1" "$TESTDIR/err" || die "advice does not name the head: $(cat "$TESTDIR/err")"
fk --quiet branch --api-sock "$S" --staging "$TESTDIR/stage" --tag b2 --parent b0 --full --json >b2.json
[ "$(jq -r .type b2.json)" = Full ] || die "--full with a parent: $(cat b2.json)"
[ "$(fk info b2 --json | jq -r .parent)" = b0 ] || die "--full lost the lineage parent"
check b2 "$(last_dump)"
br --tag b3 --parent b2
check b3 "$(last_dump)"
running "after the first branches"

# 1. ingest error after the create: the chunk directory turns read-only (root: a read-only bind
#    mount), else the first chunk rename fails (FAILRENAME; exercised only when the ingest needs a
#    new chunk). Files kept, Diff refused, --resume finishes.
before=$(store_state)
rc=0
if [ "$(id -u)" = 0 ] && mount --bind store/chunks store/chunks 2>/dev/null; then
    mount -o remount,ro,bind store/chunks || { umount store/chunks; die "read-only remount failed"; }
    br --tag b4 --parent b3 2>err4 || rc=$?
    umount store/chunks
else
    [ -f "${FAILRENAME:-}" ] || die "FAILRENAME (build/tests/failrename.so) not built"
    env LD_PRELOAD="$FAILRENAME" FKS_FAIL_RENAME=1 "$FORKCTL" --store "$TESTDIR/store" branch --api-sock "$S" \
        --staging "$TESTDIR/stage" --tag b4 --parent b3 2>err4 || rc=$?
    [ $rc = 0 ] && skip "the ingest needed no new chunk: FAILRENAME had nothing to fail (run as root)"
fi
[ $rc = 1 ] || die "ingest failure: exit $rc: $(cat err4)"
d4=$(last_dump)
grep -q "created (Firecracker reset its dirty pages) but not stored" err4 || die "message: $(cat err4)"
grep -q "branch --resume --api-sock" err4 || die "no --resume advice: $(cat err4)"
[ "$(store_state)" = "$before" ] || die "the failed ingest changed the store"
[ -n "$(ls -A stage)" ] || die "the staged files of a created snapshot were removed"
running "after an ingest failure"
expect_fail 6 "b4 was created but not stored" br --tag b5 --parent b3
grep -q -- "--resume" "$TESTDIR/err" || die "no --resume advice on the refused Diff"
fk --quiet branch --resume --api-sock "$S"
check b4 "$d4"
[ "$(fk info b4 --json | jq -r .parent)" = b3 ] || die "resumed b4 has the wrong parent"
[ -z "$(ls -A stage)" ] || die "--resume left staged files: $(ls stage)"
expect_fail 3 "no staged snapshot" fk branch --resume --api-sock "$S"
br --tag b5 --parent b4
check b5 "$(last_dump)"

# 2. SIGKILL after the create, before the staged state is recorded: unknown outcome, Full only.
rc=0
FORKSTORE_TEST_KILL_AFTER_CREATE=creating br --tag b6 --parent b5 2>/dev/null || rc=$?
[ $rc = 137 ] || die "the kill hook did not fire (exit $rc)"
running "after forkctl was killed"
expect_fail 6 "unknown outcome" br --tag b6 --parent b5
expect_fail 6 "unknown outcome" fk branch --resume --api-sock "$S"
br --tag b6 --parent b5 --full
check b6 "$(last_dump)"
[ -z "$(ls -A stage)" ] || die "the Full did not remove the killed branch's staging: $(ls stage)"

# 3. SIGKILL after the staged state is recorded: --resume stores it.
rc=0
FORKSTORE_TEST_KILL_AFTER_CREATE=staged br --tag b7 --parent b6 2>/dev/null || rc=$?
[ $rc = 137 ] || die "the kill hook did not fire (exit $rc)"
d7=$(last_dump)
expect_fail 6 "created but not stored" br --tag b8 --parent b6
fk --quiet branch --resume --api-sock "$S" --json >b7.json
[ "$(jq -r '.tag + " " + .type' b7.json)" = "b7 Diff" ] || die "resume result: $(cat b7.json)"
check b7 "$d7"

# 4. SIGKILL of forkctl inside a slow create (the VM stays paused): Full only after it.
start_vmm "$TESTDIR/slow.sock" --mem-mib 16 --seed 7 --slow-snapshot-ms 1500 --dump-dir "$TESTDIR/dumps2" --id slowvm
fk --quiet branch --api-sock "$TESTDIR/slow.sock" --staging "$TESTDIR/stage" --tag s0
"$FORKCTL" --store "$TESTDIR/store" branch --api-sock "$TESTDIR/slow.sock" --staging "$TESTDIR/stage" \
    --tag s1 --parent s0 2>/dev/null &
kp=$!
sleep 0.6
# Two branches of one VM at once: the second is refused at once.
expect_fail 4 "another branch of the VM at sock:.*slow.sock" fk branch --api-sock "$TESTDIR/slow.sock" --tag s9 --parent s0
kill -9 $kp
wait $kp 2>/dev/null || true
sleep 1.2
curl -sf --unix-socket "$TESTDIR/slow.sock" -X PATCH -H 'Content-Type: application/json' \
    -d '{"state": "Resumed"}' http://localhost/vm >/dev/null || die "resume by hand failed"
expect_fail 6 "unknown outcome" fk branch --api-sock "$TESTDIR/slow.sock" --tag s1 --parent s0
fk --quiet branch --api-sock "$TESTDIR/slow.sock" --staging "$TESTDIR/stage" --tag s1 --full
check s1 "$(last_dump dumps2)"

# 5. Lock timeout after the create: the store's lock is taken while the create runs.
FORKSTORE_LOCK_TIMEOUT=1 "$FORKCTL" --store "$TESTDIR/store" branch --api-sock "$TESTDIR/slow.sock" \
    --staging "$TESTDIR/stage" --tag s2 --parent s1 2>errlock &
kp=$!
sleep 0.5
flock "$TESTDIR/store/lock" sleep 3 &
lp=$!
rc=0
wait $kp || rc=$?
wait $lp
[ $rc = 4 ] || die "lock timeout: exit $rc: $(cat errlock)"
grep -q -- "--full" errlock || die "no advice after a lock timeout: $(cat errlock)"
expect_fail 6 "unknown outcome" fk branch --api-sock "$TESTDIR/slow.sock" --tag s2 --parent s1
fk --quiet branch --api-sock "$TESTDIR/slow.sock" --staging "$TESTDIR/stage" --tag s2 --full
check s2 "$(last_dump dumps2)"

# 6. --vm-id: the caller names the VM; the record follows the name.
fk --quiet branch --api-sock "$S" --staging "$TESTDIR/stage" --vm-id web-1 --tag v0
# That create reset the dirty pages: the VM's record under its instance id cannot vouch any more.
expect_fail 6 "snapshotted under another identity" br --tag v1 --parent b7
fk --quiet branch --api-sock "$S" --staging "$TESTDIR/stage" --vm-id web-1 --tag v1 --parent v0
check v1 "$(last_dump)"

# 7. Disk full in the store after the create (root: a small tmpfs): --resume once there is room.
#    A 64 MiB guest dirtying fast, so the Diff needs more than the room left in preallocated chunks.
if [ "$(id -u)" = 0 ] && mkdir -p small && mount -t tmpfs -o size=160m tmpfs small 2>/dev/null; then
    F=$TESTDIR/full.sock
    mkdir -p dumps3
    start_vmm "$F" --mem-mib 64 --rate 100000 --seed 9 --dump-dir "$TESTDIR/dumps3" --id fullvm
    sfk() { "$FORKCTL" --store "$TESTDIR/small/store" "$@"; }
    sfk --quiet init --chunk-size 1M
    sfk --quiet branch --api-sock "$F" --staging "$TESTDIR/stage" --tag f0
    used=$(df -k --output=used small | tail -n 1)
    mount -o remount,size=$((used + 600))k small
    sleep 1
    rc=0
    sfk branch --api-sock "$F" --staging "$TESTDIR/stage" --tag f1 --parent f0 2>errfull || rc=$?
    [ $rc = 1 ] || die "disk full: exit $rc: $(cat errfull)"
    df=$(last_dump dumps3)
    grep -q "No space left\|disk full" errfull || die "not a disk-full failure: $(cat errfull)"
    grep -q "branch --resume" errfull || die "no --resume advice when the store is full: $(cat errfull)"
    rc=0
    sfk branch --api-sock "$F" --staging "$TESTDIR/stage" --tag f2 --parent f0 2>/dev/null || rc=$?
    [ $rc = 6 ] || die "a Diff after a full disk was not refused (exit $rc)"
    mount -o remount,size=160m small
    sfk --quiet branch --resume --api-sock "$F"
    rm -rf r_f1
    sfk --quiet restore f1 --out r_f1
    same r_f1/memory.bin "$df"
    sfk verify >/dev/null
    umount small
else
    echo "disk-full case skipped (needs root to mount a small tmpfs)" >&2
fi
running "at the end"
fk verify >/dev/null
