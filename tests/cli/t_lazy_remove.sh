# Lazy restore: a balloon's UFFD_EVENT_REMOVE racing the prefetch
# (src/integrations/pageserver.c, design 4b). The prefetch thread is held (test hook
# FKS_TEST_PREFETCH_PAUSE=PGNO:MS) after it has looked at the removed set
# and before it copies the run holding PGNO; the balloon gives pages
# PGNO.. back meanwhile. Before the fix the copy landed after the kernel
# had zapped the range and the guest read the old contents; now the
# removed range reads as zeros, and every other page equals the stored one.
# Also: a REMOVE in one VM does not zero the page for another VM of the
# same server (the removed set is per VM).
. "$(dirname "$0")/lib.sh"
[ -x "${FCVMM:-}" ] || die "FCVMM (tools/vmm) not built"
command -v jq >/dev/null || die "jq not installed"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start_vmm() { # start_vmm SOCK ARGS...
    local sock=$1
    shift
    "$FCVMM" --api-sock "$sock" --backend thread "$@" 2>>vmm.err &
    pids+=($!)
    vpid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
    die "fcvmm did not start: $(cat vmm.err)"
}
put() { curl -s --max-time 60 -o "$TESTDIR/put.out" -w '%{http_code}' -X PUT --unix-socket "$1" "http://localhost$2" -d "$3"; }
full() { # full SOCK FILE: a Full snapshot of the (paused) VM into FILE
    local code
    code=$(put "$1" /snapshot/create "{\"snapshot_path\":\"$TESTDIR/full.vs\",\"mem_file_path\":\"$2\"}")
    [ "$code" = 204 ] || die "snapshot/create answered $code: $(cat put.out)"
}
lazy() { # lazy SOCK ARGS...: restore b0 --lazy; sets spid (the server)
    local sock=$1 out
    shift
    out=$(fk restore b0 --api-sock "$sock" --lazy --staging "$TESTDIR/stage" --server-log "$TESTDIR/server.log" \
          --json "$@") || die "restore --lazy failed: $(cat server.log 2>/dev/null)"
    spid=$(echo "$out" | jq .page_server_pid)
    [ "$spid" -gt 1 ] || die "no page server pid in $out"
    pids+=("$spid")
}
gone() { for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; die "process $1 still runs"; }
q() { fk sql --csv "$1" | tail -n 1; }

fk --quiet init --chunk-size 1M
mkdir -p stage
start_vmm "$TESTDIR/boot.sock" --mem-mib 32 --rate 20000 --seed 7
sleep 0.3
fk --quiet branch --api-sock "$TESTDIR/boot.sock" --tag b0 --staging "$TESTDIR/stage"
kill -9 "$vpid"
fk --quiet restore b0 --out ref
cp ref/memory.bin want
dd if=/dev/zero of=want bs=4096 seek=300 count=16 conv=notrunc status=none
cmp -s ref/memory.bin want && die "pages 300..315 of b0 are zero already: the test proves nothing"

# the first lazy restore records the working set (a full read: every page)
start_vmm "$TESTDIR/v1.sock" --no-boot
lazy "$TESTDIR/v1.sock" --paused
full "$TESTDIR/v1.sock" "$TESTDIR/full1.mem"
same ref/memory.bin full1.mem
kill -9 "$vpid"
gone "$spid"
[ "$(q "SELECT npages FROM working_set")" -gt 300 ] || die "no working set recorded"

# the race: the prefetch holds at page 300 for 1.5 s; the balloon removes 300..315 meanwhile
start_vmm "$TESTDIR/v2.sock" --no-boot --remove-on-usr2 300:16
v2=$vpid
FKS_TEST_PREFETCH_PAUSE=300:1500 lazy "$TESTDIR/v2.sock" --paused --no-record
kill -USR2 "$v2"
sleep 2.5                       # the pause is over: the prefetch went on
full "$TESTDIR/v2.sock" "$TESTDIR/full2.mem"
same want full2.mem
kill -9 "$v2"
gone "$spid"
tail -n 1 server.log | grep -q " 16 removed" || die "removed pages: $(tail -n 1 server.log)"
[ "$(q "SELECT pages_prefetch FROM lazy_restore")" -gt 100 ] || die "the prefetch did not run"

# two VMs on one server: the balloon of one does not zero the other's pages
rm -f "$TESTDIR/p.sock"
fk serve-pages b0 --socket "$TESTDIR/p.sock" --vms 2 --prefetch off --no-record >serve.out 2>&1 &
sp=$!
pids+=("$sp")
for _ in $(seq 100); do [ -S "$TESTDIR/p.sock" ] && break; sleep 0.05; done
load='{"snapshot_path":"'$TESTDIR'/ref/vmstate","mem_backend":{"backend_type":"Uffd","backend_path":"'$TESTDIR'/p.sock"},"resume_vm":false}'
start_vmm "$TESTDIR/m1.sock" --no-boot --remove-on-usr2 300:16
m1=$vpid
[ "$(put "$TESTDIR/m1.sock" /snapshot/load "$load")" = 204 ] || die "load 1: $(cat put.out)"
start_vmm "$TESTDIR/m2.sock" --no-boot
m2=$vpid
[ "$(put "$TESTDIR/m2.sock" /snapshot/load "$load")" = 204 ] || die "load 2: $(cat put.out)"
kill -USR2 "$m1"
sleep 0.3
full "$TESTDIR/m1.sock" "$TESTDIR/m1.mem"
full "$TESTDIR/m2.sock" "$TESTDIR/m2.mem"
same want m1.mem
same ref/memory.bin m2.mem
kill -9 "$m1" "$m2"
gone "$sp"
echo ok
