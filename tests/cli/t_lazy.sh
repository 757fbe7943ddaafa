# Lazy restore (src/integrations/pageserver.c) against the test VMM's Uffd backend
# (thread backend: no /dev/kvm needed; where /dev/kvm opens, part 9 runs
# the round trip again with the KVM backend). Every page a paused, lazily loaded
# VM reads back equals the stored page (a Full snapshot of it, which makes
# fcvmm read all of RAM through the page server, equals restore --out);
# the second lazy restore prefetches the recorded working set and needs
# far fewer demand faults; a Diff branch of a lazily loaded, running VM
# restores byte-identical to its RAM; REMOVE events read back as zeros;
# the server exits when its VMM is killed; a killed server's lease keeps
# the pages until it expires; gc and rmi while serving keep the VM's pages.
. "$(dirname "$0")/lib.sh"
[ -x "${FCVMM:-}" ] || die "FCVMM (tools/vmm) not built"
command -v jq >/dev/null || die "jq not installed"

trap kill_pids EXIT
lazy() { # lazy SOCK ARGS...: restore b0 --lazy; sets spid (the server)
    local sock=$1 out
    shift
    out=$(fk restore "${TAG:-b0}" --api-sock "$sock" --lazy --staging "$TESTDIR/stage" --server-log "$TESTDIR/server.log" \
          --json "$@") || die "restore --lazy failed: $(cat server.log 2>/dev/null)"
    spid=$(echo "$out" | jq .page_server_pid)
    [ "$spid" -gt 1 ] || die "no page server pid in $out"
    [ "$(echo "$out" | jq .lazy)" = true ] || die "not lazy: $out"
    pids+=("$spid")
}
q() { fk sql --csv "$1" | tail -n 1; }

fk --quiet init --chunk-size 1M
mkdir -p stage
start_vmm "$TESTDIR/boot.sock" --mem-mib 32 --rate 20000 --seed 7
sleep 0.3
fk --quiet branch --api-sock "$TESTDIR/boot.sock" --tag b0 --staging "$TESTDIR/stage"
kill -9 "$vpid"
fk --quiet restore b0 --out ref

# 1. A paused lazy load: the Full snapshot fcvmm writes (every page read
# through the server) equals the stored image.
start_vmm "$TESTDIR/v1.sock" --no-boot
v1=$vpid
lazy "$TESTDIR/v1.sock" --paused
[ "$(api "$TESTDIR/v1.sock" / | jq -r .state)" = Paused ] || die "lazily loaded VM is not paused"
[ "$(q "SELECT count(*) FROM lease")" = 1 ] || die "no lease while serving"
full "$TESTDIR/v1.sock" "$TESTDIR/full1.mem"
same ref/memory.bin full1.mem
kill -9 "$v1"
gone "$spid"                    # the server follows its VMM (pidfd)
[ "$(q "SELECT count(*) FROM lease")" = 0 ] || die "lease not released at exit"
ws=$(q "SELECT npages FROM working_set")
[ "$ws" -gt 1000 ] || die "working set of $ws pages recorded"
d1=$(q "SELECT pages_demand FROM lazy_restore")
z1=$(q "SELECT pages_zero FROM lazy_restore")
[ "$d1" -gt 1000 ] && [ "$z1" -gt 0 ] || die "figures of the first lazy restore: demand $d1, zero $z1"
[ -z "$(ls stage/*/memory.bin 2>/dev/null)" ] || die "restore --lazy wrote memory.bin"
fk info b0 | grep -Eq "^last lazy restore .*: 1 VM\(s\), [0-9]+ faults, pages $d1 on demand" || die "info: $(fk info b0)"
[ "$(fk info b0 --json | jq .last_lazy_restore.pages_demand)" = "$d1" ] || die "info --json: no last_lazy_restore"
[ "$(fk info b0 --json | jq .last_lazy_restore.working_set_pages)" = "$ws" ] || die "info --json: working set"


# 2. The second lazy restore prefetches the working set: demand faults cut
# by 90% or more, and still every page right.
start_vmm "$TESTDIR/v2.sock" --no-boot
v2=$vpid
lazy "$TESTDIR/v2.sock" --paused
sleep 1                         # let the prefetch finish before the guest reads
full "$TESTDIR/v2.sock" "$TESTDIR/full2.mem"
same ref/memory.bin full2.mem
kill -9 "$v2"
gone "$spid"
d2=$(q "SELECT pages_demand FROM lazy_restore")
p2=$(q "SELECT pages_prefetch FROM lazy_restore")
[ "$p2" -gt 1000 ] || die "prefetch installed $p2 pages"
[ $((d2 * 10)) -le "$d1" ] || die "demand faults $d1 -> $d2: not cut by 90%"
# --prefetch off: no prefetch. --cache-cold --cache-pages 64: every stored
# page decoded on its fault, through a cache far smaller than the image
# (slots shared, evicted): still every page right.
start_vmm "$TESTDIR/v3.sock" --no-boot
v3=$vpid
lazy "$TESTDIR/v3.sock" --paused --prefetch off --no-record --cache-cold --cache-pages 64
full "$TESTDIR/v3.sock" "$TESTDIR/full3.mem"
same ref/memory.bin full3.mem
kill -9 "$v3"
gone "$spid"
[ "$(q "SELECT pages_prefetch FROM lazy_restore")" = 0 ] || die "--prefetch off prefetched"
[ "$(q "SELECT bytes_decoded FROM lazy_restore")" -gt 0 ] || die "nothing decoded with --cache-cold"

# 3. A running lazily loaded VM: its Diff branch restores byte-identical
# to its RAM (the dump of the same create).
start_vmm "$TESTDIR/v4.sock" --no-boot --dump-dir "$TESTDIR/dumps"
v4=$vpid
lazy "$TESTDIR/v4.sock"
[ "$(api "$TESTDIR/v4.sock" / | jq -r .state)" = Running ] || die "lazily loaded VM is not running"
i0=$(api "$TESTDIR/v4.sock" / | jq .iterations)
sleep 0.5
i1=$(api "$TESTDIR/v4.sock" / | jq .iterations)
[ "$i1" -gt "$i0" ] || die "the lazily loaded guest makes no progress ($i0 -> $i1)"
out=$(fk branch --api-sock "$TESTDIR/v4.sock" --tag d1 --parent b0 --staging "$TESTDIR/stage" --json) || die "branch of a lazy VM failed"
[ "$(echo "$out" | jq -r .type)" = Diff ] || die "branch of a lazy VM took $(echo "$out" | jq -r .type)"
fk --quiet restore d1 --out rd1
same rd1/memory.bin dumps/000000.full

# 4. The VMM killed mid-serve (guest running): the server exits, the lease goes.
kill -9 "$v4"
gone "$spid"
[ "$(q "SELECT count(*) FROM lease")" = 0 ] || die "lease left after the VMM was killed"

# 5. REMOVE events (balloon): the pages read back as zeros afterwards.
start_vmm "$TESTDIR/v5.sock" --no-boot --remove-on-usr2 300:16
v5=$vpid
lazy "$TESTDIR/v5.sock" --paused --prefetch off --no-record
kill -USR2 "$v5"
sleep 0.3
full "$TESTDIR/v5.sock" "$TESTDIR/full5.mem"
cp ref/memory.bin want5
dd if=/dev/zero of=want5 bs=4096 seek=300 count=16 conv=notrunc status=none
cmp -s ref/memory.bin want5 && die "pages 300..315 of b0 are zero already: the test proves nothing"
same want5 full5.mem
kill -9 "$v5"
gone "$spid"
[ "$(q "SELECT count(*) FROM lease")" = 0 ] || die "lease left"

# 6. The server killed: its lease outlives it until it expires (gc keeps
# the pages meanwhile), then the next gc deletes it. The VM is left with
# no one to serve its next missing page: it hangs there, as Firecracker's.
start_vmm "$TESTDIR/v6.sock" --no-boot
v6=$vpid
t0=$(date +%s.%N)
lazy "$TESTDIR/v6.sock" --paused --lease-ttl 5 --no-record
t1=$(date +%s.%N)               # the lease was taken between t0 and t1
kill -9 "$spid"
gone "$spid"
fk --quiet gc
n=$(q "SELECT count(*) FROM lease")
el=$(echo "$(date +%s.%N) - $t0" | bc)
# (on a machine so slow that 4.5 s passed, the lease may rightly be gone)
[ "$n" = 1 ] || [ "$(echo "$el >= 4.5" | bc)" = 1 ] || die "gc dropped the lease of a killed server before it expired"
sleep "$(echo "x = 5.3 - ($(date +%s.%N) - $t1); if (x < 0) x = 0; x" | bc)"
fk --quiet gc
[ "$(q "SELECT count(*) FROM lease")" = 0 ] || die "gc kept an expired lease of a dead server"
kill -9 "$v6"

# 7. rmi + gc while serving: the VM's pages stay until the server is done.
start_vmm "$TESTDIR/v7.sock" --no-boot
v7=$vpid
TAG=d1 lazy "$TESTDIR/v7.sock" --paused --prefetch off --no-record
fk --quiet rmi b0
fk --quiet rmi d1
fk --quiet gc
full "$TESTDIR/v7.sock" "$TESTDIR/full7.mem"
same rd1/memory.bin full7.mem
kill -9 "$v7"
gone "$spid"
out=$(fk gc --json)
[ "$(echo "$out" | jq .pages_freed)" -gt 1000 ] || die "gc freed nothing once the server was gone: $out"

# 8. The handshake's failures: a Uffd load whose socket nobody listens on
# fails and the VMM exits, as Firecracker; a server nobody connects to gives
# up after --accept-timeout; options that need --lazy are refused.
start_vmm "$TESTDIR/v8.sock" --no-boot
v8=$vpid
code=$(put "$TESTDIR/v8.sock" /snapshot/load "{\"snapshot_path\":\"$TESTDIR/ref/vmstate\",\"mem_backend\":{\"backend_type\":\"Uffd\",\"backend_path\":\"$TESTDIR/nobody.sock\"}}")
[ "$code" = 400 ] || die "Uffd load without a server answered $code"
grep -q "Failed to connect to UDS" put.out || die "unexpected fault: $(cat put.out)"
gone "$v8"
fk --quiet ingest --tag s --memory ref/memory.bin --vmstate ref/vmstate
expect_fail 1 "no VMM connected" fk serve-pages s --socket "$TESTDIR/p.sock" --accept-timeout 1
[ "$(q "SELECT count(*) FROM lease")" = 0 ] || die "lease left by a server that timed out"
expect_fail 2 "need --lazy" fk restore s --api-sock "$TESTDIR/x.sock" --prefetch off
expect_fail 2 "--socket PATH is required" fk serve-pages s
expect_fail 2 "--prefetch takes" fk serve-pages s --socket "$TESTDIR/p.sock" --prefetch lots
expect_fail 3 "not found" fk serve-pages nosuch --socket "$TESTDIR/p.sock" --accept-timeout 1

# 9. Where /dev/kvm opens: the KVM backend (guest RAM registered with the
# page server's uffd, KVM dirty logging) reads every page right through the
# server, and a Diff branch of a lazily loaded KVM guest restores
# byte-identical. Without /dev/kvm the thread backend above covered the
# page server; this part says so and is not a skip of the test.
if [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; then
    export BACKEND=kvm
    start_vmm "$TESTDIR/k0.sock" --mem-mib 32 --fill-mib 8 --seed 9
    sleep 0.3
    fk --quiet branch --api-sock "$TESTDIR/k0.sock" --tag k0 --staging "$TESTDIR/stage"
    kill -9 "$vpid"
    fk --quiet restore k0 --out refk
    start_vmm "$TESTDIR/k1.sock" --no-boot
    k1=$vpid
    TAG=k0 lazy "$TESTDIR/k1.sock" --paused
    full "$TESTDIR/k1.sock" "$TESTDIR/fullk1.mem"
    same refk/memory.bin fullk1.mem
    kill -9 "$k1"
    gone "$spid"
    start_vmm "$TESTDIR/k2.sock" --no-boot --dump-dir "$TESTDIR/dumpsk"
    k2=$vpid
    TAG=k0 lazy "$TESTDIR/k2.sock"
    sleep 0.3
    out=$(fk branch --api-sock "$TESTDIR/k2.sock" --tag kd1 --parent k0 --staging "$TESTDIR/stage" --json) ||
        die "branch of a lazy KVM VM failed"
    [ "$(echo "$out" | jq -r .type)" = Diff ] || die "branch of a lazy KVM VM took $(echo "$out" | jq -r .type)"
    fk --quiet restore kd1 --out rkd1
    same rkd1/memory.bin dumpsk/000000.full
    kill -9 "$k2"
    gone "$spid"
    echo "t_lazy: KVM backend checked"
else
    echo "t_lazy: /dev/kvm does not open here: the KVM backend part did not run (thread backend covered)"
fi
echo ok
