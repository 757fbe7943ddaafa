# forkctl branch and restore --api-sock against the test VMM
# (tools/vmm/fcvmm), on every backend this machine has (thread always,
# kvm where /dev/kvm exists; FCVMM_BACKENDS overrides): 10 consecutive branches of a running guest (a Full,
# then Diffs), each restored byte-identical to the guest's RAM at that
# snapshot (the VMM's --dump-dir writes it, independently of the Diff it
# hands out); one of them loaded into a fresh VMM that keeps running and
# branches again; then the failures: snapshot/create answered with 400,
# socket missing, VMM dying mid-branch, staging full. After each failure
# the store is unchanged and the VM (when alive) is running.
. "$(dirname "$0")/lib.sh"
[ -x "${FCVMM:-}" ] || die "FCVMM (tools/vmm) not built"
backends=${FCVMM_BACKENDS:-thread}
[ -n "${FCVMM_BACKENDS:-}" ] || ! [ -c /dev/kvm ] || backends="kvm thread"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start_vmm() { # start_vmm SOCK ARGS...: starts fcvmm and waits for its socket
    local sock=$1
    shift
    "$FCVMM" --api-sock "$sock" --backend "$backend" "$@" 2>>vmm.err &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
    die "fcvmm did not start: $(cat vmm.err)"
}
api() { curl -sf --max-time 5 --unix-socket "$1" "http://localhost$2"; }
state() { api "$1" / | jq -r .state; }
iters() { api "$1" / | jq .iterations; }

suite() {
fk --quiet init
mkdir -p dumps stage
start_vmm "$TESTDIR/vm.sock" --mem-mib 32 --rate 20000 --seed 3 --dump-dir "$TESTDIR/dumps"
sleep 0.3

# 10 branches: b0 Full, b1..b9 Diff on the previous one.
prev=""
for i in $(seq 0 9); do
    out=$(fk branch --api-sock "$TESTDIR/vm.sock" --tag "b$i" ${prev:+--parent "$prev"} --staging "$TESTDIR/stage" --json) ||
        die "branch b$i failed"
    want=Full; [ -n "$prev" ] && want=Diff
    [ "$(echo "$out" | jq -r .type)" = $want ] || die "b$i: type $(echo "$out" | jq -r .type), want $want"
    [ "$(echo "$out" | jq '.pause_ms > 0 and .snapshot_ms > 0 and .ingest_ms > 0')" = true ] || die "b$i: timings missing: $out"
    [ "$(state "$TESTDIR/vm.sock")" = Running ] || die "VM not running after branch b$i"
    [ -z "$(ls -A stage)" ] || die "branch b$i left staged files: $(ls -A stage)"
    prev=b$i
    sleep 0.1
done
ndumps=$(ls dumps | wc -l)
[ "$ndumps" = 10 ] || die "the VMM dumped $ndumps images, expected 10"
i=0
for d in $(ls dumps | sort); do
    fk --quiet restore "b$i" --out "r$i"
    same "r$i/memory.bin" "dumps/$d"
    i=$((i + 1))
done
# Diffs were small, timings recorded and visible in SQL and info.
[ "$(fk sql --csv "SELECT count(*) FROM snapshot_stats WHERE pause_ms IS NOT NULL AND ingest_ms IS NOT NULL" | tail -n 1)" = 10 ] ||
    die "branch timings not recorded for all 10"
fk info b5 | grep -q "^branch timings *pause" || die "info b5 shows no branch timings"
fk verify >/dev/null

# Load b4 into a fresh VMM: it runs on, and branches again (a Diff against b4).
start_vmm "$TESTDIR/vm2.sock" --no-boot --dump-dir "$TESTDIR/dumps2"
[ "$(state "$TESTDIR/vm2.sock")" = "Not started" ] || die "fresh VMM state: $(state "$TESTDIR/vm2.sock")"
ld=$(fk restore b4 --api-sock "$TESTDIR/vm2.sock" --staging "$TESTDIR/stage" --json) || die "restore --api-sock failed"
[ "$(state "$TESTDIR/vm2.sock")" = Running ] || die "loaded VM not running"
a=$(iters "$TESTDIR/vm2.sock"); sleep 0.5; b=$(iters "$TESTDIR/vm2.sock")
[ "$b" -gt "$a" ] || die "loaded VM does not make progress ($a -> $b iterations)"
fk --quiet branch --api-sock "$TESTDIR/vm2.sock" --tag c1 --parent b4 --staging "$TESTDIR/stage2" 2>&1 ||
    die "branch of the loaded VM failed"
fk --quiet restore c1 --out rc1
same rc1/memory.bin "dumps2/$(ls dumps2 | sort | tail -n 1)"
rm -rf "$(echo "$ld" | jq -r .staging)"

# ---- failures: the store is unchanged, the VM runs ----
before=$(store_state)
# 1. snapshot/create answered with 400: the error names the fault, the VM is resumed.
start_vmm "$TESTDIR/bad.sock" --mem-mib 16 --fail-snapshot-create
expect_fail 1 "injected failure" fk branch --api-sock "$TESTDIR/bad.sock" --tag f1 --staging "$TESTDIR/stage"
grep -q "resumed" "$TESTDIR/err" || die "the error does not say the VM was resumed: $(cat "$TESTDIR/err")"
[ "$(state "$TESTDIR/bad.sock")" = Running ] || die "VM left $(state "$TESTDIR/bad.sock") after a failed snapshot"
[ -z "$(ls -A stage)" ] || die "a failed branch left staged files"
# 2. socket missing.
expect_fail 3 "API socket $TESTDIR/nope.sock" fk branch --api-sock "$TESTDIR/nope.sock" --tag f2
# 3. VMM dies in the middle of writing the snapshot.
start_vmm "$TESTDIR/die.sock" --mem-mib 16 --die-in-snapshot
expect_fail 1 "resuming the VM failed too" fk branch --api-sock "$TESTDIR/die.sock" --tag f3 --staging "$TESTDIR/stage" --timeout 3000
[ -z "$(ls -A stage)" ] || die "a branch whose VMM died left staged files"
# 4. staging full: a 1 MiB tmpfs cannot hold a 16 MiB Full snapshot (root only).
if [ "$(id -u)" = 0 ] && mkdir -p small && mount -t tmpfs -o size=1m tmpfs small 2>/dev/null; then
    start_vmm "$TESTDIR/full.sock" --mem-mib 16
    expect_fail 1 "No space left" fk branch --api-sock "$TESTDIR/full.sock" --tag f4 --staging "$TESTDIR/small"
    [ "$(state "$TESTDIR/full.sock")" = Running ] || die "VM not resumed after staging filled up"
    [ -z "$(ls -A small)" ] || die "a branch into a full staging directory left files"
    umount small
else
    echo "staging-full case skipped (needs root to mount a small tmpfs)" >&2
fi
[ "$(store_state)" = "$before" ] || die "a failed branch changed the store"
fk verify >/dev/null
}

top=$TESTDIR
for backend in $backends; do
    TESTDIR=$top/$backend
    mkdir -p "$TESTDIR"
    cd "$TESTDIR"
    echo "t_branch: backend $backend" >&2
    suite
    cleanup
    pids=()
done
