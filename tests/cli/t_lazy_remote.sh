# Lazy restore from the remote (src/integrations/remote_lazy.c, pageserver.c design 8)
# against a real S3 server (Ceph radosgw, tools/s3/rgw.sh) and the test
# VMM's Uffd backend (thread backend). Store A branches a chain (Full b0,
# Diff b1) from a running fcvmm, records b1's working set with a lazy
# restore of its own and pushes: the working set goes up with it. Store B,
# empty, restores b1 lazily: every page the paused guest reads back (a
# Full snapshot of it) equals A's b1, fetched with Range GETs, the working
# set pushed from A prefetched first; once the VM is gone B holds b1 (the
# background pull committed) and a second lazy restore in B sends no
# request to the remote (its credentials are wrong by then). The same
# through an encrypted remote (sealed pages, a sealed working set under a
# keyed name); with the pull beside the guest (the server switches to the
# store mid-VM). Pages that fail their hash in the bucket are refused. No remote, or a tag on neither
# side, is "not found" with a message saying which.
. "$(dirname "$0")/lib.sh"
[ -x "${FCVMM:-}" ] || die "FCVMM (tools/vmm) not built"
command -v jq >/dev/null || die "jq not installed"
rgw_up fleet

fa() { "$FORKCTL" --store "$TESTDIR/a" "$@"; }
fb() { "$FORKCTL" --store "$TESTDIR/b" "$@"; }
qb() { fb sql --csv "$1" | tail -n 1; }
# lazy STORE-FN TAG SOCK ARGS...: restore --lazy; sets spid (the server)
lazy() {
    local f=$1 tag=$2 sock=$3 out
    shift 3
    out=$($f restore "$tag" --api-sock "$sock" --lazy --staging "$TESTDIR/stage" --server-log "$TESTDIR/server.log" \
          --json "$@") || die "restore --lazy failed: $(cat server.log 2>/dev/null)"
    spid=$(echo "$out" | jq .page_server_pid)
    [ "$spid" -gt 1 ] || die "no page server pid in $out"
    pids+=("$spid")
}
mkdir -p stage

# Store A: a chain branched from a running guest, its working set, a push.
fa --quiet init --chunk-size 1M
fa --quiet remote add origin s3://fleet/hosts --endpoint "$RGW_ENDPOINT"
start_vmm "$TESTDIR/boot.sock" --mem-mib 32 --rate 20000 --seed 7
sleep 0.3
fa --quiet branch --api-sock "$TESTDIR/boot.sock" --tag b0 --staging "$TESTDIR/stage"
sleep 0.3
fa --quiet branch --api-sock "$TESTDIR/boot.sock" --tag b1 --parent b0 --staging "$TESTDIR/stage"
kill -9 "$vpid"
[ "$(fa info b1 --json | jq -r .parent)" = b0 ] || die "b1 is not b0's child"
fa --quiet restore b1 --out ref
start_vmm "$TESTDIR/a1.sock" --no-boot
lazy fa b1 "$TESTDIR/a1.sock"
sleep 1                          # the running guest touches its pages
kill -9 "$vpid"
gone "$spid"
wsa=$(fa sql --csv "SELECT npages FROM working_set" | tail -n 1)
[ "$wsa" -gt 100 ] || die "A recorded a working set of $wsa pages"
out=$(fa push b1 --json) || die "push failed"
[ "$(echo "$out" | jq .working_sets)" = 1 ] || die "push uploaded no working set: $out"
out=$(fa push b1 --json) || die "second push failed"
[ "$(echo "$out" | jq .working_sets)" = 0 ] || die "the working set was uploaded twice: $out"

# No remote configured, then a tag on neither side: "not found", saying which.
fb --quiet init --chunk-size 1M
start_vmm "$TESTDIR/x.sock" --no-boot
expect_fail 3 "not found in the store, and the store has no remote" \
    fb restore b1 --api-sock "$TESTDIR/x.sock" --lazy --staging "$TESTDIR/stage"
fb --quiet remote add origin s3://fleet/hosts --endpoint "$RGW_ENDPOINT"
expect_fail 3 "snapshot nosuch not found on remote origin" \
    fb restore nosuch --api-sock "$TESTDIR/x.sock" --lazy --staging "$TESTDIR/stage"
kill -9 "$vpid"

# Store B, empty: a paused lazy load of b1 reads every page right through
# the remote; the working set pushed from A came first.
start_vmm "$TESTDIR/b1.sock" --no-boot
v=$vpid
FKS_TEST_PULL_HOLD=1 lazy fb b1 "$TESTDIR/b1.sock" --paused    # pulled only once the VM is gone
[ "$(api "$TESTDIR/b1.sock" / | jq -r .state)" = Paused ] || die "lazily loaded VM is not paused"
full "$TESTDIR/b1.sock" "$TESTDIR/fullb.mem"
same ref/memory.bin fullb.mem
kill -9 "$v"
gone "$spid"
line=$(grep "from remote origin" server.log) || die "the server did not serve from the remote: $(cat server.log)"
rg=$(echo "$line" | sed -E 's/.* ([0-9]+) Range GETs.*/\1/')
rp=$(echo "$line" | sed -E 's/.*origin: ([0-9]+) pages in.*/\1/')
nz=$(python3 -c '
import sys; b = open(sys.argv[1], "rb").read()
print(sum(1 for i in range(0, len(b), 4096) if any(b[i:i + 4096])))' ref/memory.bin)
# every stored page from the remote, some dozens of pages per Range GET
[ "$rp" -ge "$nz" ] && [ "$rg" -gt 10 ] && [ $((rg * 4)) -lt "$rp" ] || die "not fetched with Range GETs ($nz pages): $line"
echo "$line" | grep -q "working set $wsa pages from b1;" || die "B did not prefetch A's working set: $line"
echo "$line" | grep -q "; pulled into the store" || die "not pulled: $line"

# After the VM, B holds the chain; its first lazy restore's figures are
# b1's; a restore from B's store equals A's.
[ "$(fb images --json | jq -r '[.[].tag] | sort | join(",")')" = b0,b1 ] || die "B holds $(fb images)"
[ "$(qb "SELECT count(*) FROM lease")" = 0 ] || die "lease left in B"
[ "$(qb "SELECT pages_prefetch FROM lazy_restore")" -gt 100 ] || die "B's lazy restore prefetched nothing"
fb --quiet restore b1 --out rb
same ref/memory.bin rb/memory.bin
same ref/vmstate rb/vmstate

# A second lazy restore in B needs no remote request: wrong credentials.
rm -f server.log
start_vmm "$TESTDIR/b2.sock" --no-boot
v=$vpid
AWS_SECRET_ACCESS_KEY=wrong lazy fb b1 "$TESTDIR/b2.sock" --paused
full "$TESTDIR/b2.sock" "$TESTDIR/fullb2.mem"
same ref/memory.bin fullb2.mem
kill -9 "$v"
gone "$spid"
! grep -q "from remote" server.log || die "the second restore in B used the remote: $(cat server.log)"

# An encrypted remote (remote add --encrypt): the working set goes up
# named and sealed as the manifest; store E with the same key restores b1
# lazily through sealed pages, byte-identical, its working set prefetched.
fa --quiet remote keygen key
fa --quiet remote add sec s3://fleet/enc --endpoint "$RGW_ENDPOINT" --encrypt key
out=$(fa push b1 --remote sec --json) || die "push to the encrypted remote failed"
[ "$(echo "$out" | jq .working_sets)" = 1 ] || die "push to sec uploaded no working set: $out"
[ -n "$(keys enc/snapshots/ | grep '\.ws$')" ] || die "no working set object under enc/snapshots/"
! keys enc/ | grep -q '/b[01]\.' || die "a key of the encrypted remote names b1: $(keys enc/)"
fe() { "$FORKCTL" --store "$TESTDIR/e" "$@"; }
fe --quiet init --chunk-size 1M
fe --quiet remote add sec s3://fleet/enc --endpoint "$RGW_ENDPOINT" --encrypt key
rm -f server.log
start_vmm "$TESTDIR/e1.sock" --no-boot
v=$vpid
FKS_TEST_PULL_HOLD=1 lazy fe b1 "$TESTDIR/e1.sock" --paused
full "$TESTDIR/e1.sock" "$TESTDIR/fulle.mem"
same ref/memory.bin fulle.mem
kill -9 "$v"
gone "$spid"
grep -Eq "from remote sec: [0-9]+ pages in [0-9]+ Range GETs.*working set $wsa pages from b1; pulled into the store" server.log ||
    die "E: $(cat server.log)"

# Store C: the pull runs beside the guest (the server switches to the store
# once it commits, design 8); every page still right.
fc() { "$FORKCTL" --store "$TESTDIR/c" "$@"; }
fc --quiet init --chunk-size 1M
fc --quiet remote add origin s3://fleet/hosts --endpoint "$RGW_ENDPOINT"
rm -f server.log
start_vmm "$TESTDIR/c1.sock" --no-boot
v=$vpid
lazy fc b1 "$TESTDIR/c1.sock" --paused
full "$TESTDIR/c1.sock" "$TESTDIR/fullc.mem"
same ref/memory.bin fullc.mem
kill -9 "$v"
gone "$spid"
grep -q "from remote origin: .*; pulled into the store" server.log || die "C: $(cat server.log)"
[ "$(fc images --json | jq length)" = 2 ] || die "C holds $(fc images)"

# Pages that fail their hash in the bucket (every pack damaged): the
# fault is refused, the guest gets no page of it (the server says which
# pack), and the pull refuses the packs.
fd() { "$FORKCTL" --store "$TESTDIR/d" "$@"; }
fd --quiet init --chunk-size 1M
fd --quiet remote add origin s3://fleet/hosts --endpoint "$RGW_ENDPOINT"
for pk in $(keys hosts/packs/); do
    s3curl -o pack "$RGW_ENDPOINT/fleet/$pk" || die "GET $pk"
    python3 - pack <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n, = struct.unpack_from('<I', b, 8)
for i in range(n):       # one byte of every page's stored bytes
    off, = struct.unpack_from('<Q', b, 16 + 32 * i + 16)
    b[off] ^= 0xff
open(sys.argv[1], 'wb').write(b)
EOF
    s3put "$pk" pack || die "PUT $pk"
done
[ -n "${pk:-}" ] || die "no pack in the bucket"
# serve-pages (the vmstate is A's: staging it would meet the damage first)
fd serve-pages b1 --socket "$TESTDIR/d.pages" --prefetch off --no-record 2>server.log &
spid=$!
pids+=("$spid")
for _ in $(seq 200); do [ -S "$TESTDIR/d.pages" ] && break; sleep 0.05; done
start_vmm "$TESTDIR/d1.sock" --no-boot
v=$vpid
code=$(put "$TESTDIR/d1.sock" /snapshot/load "{\"snapshot_path\":\"$TESTDIR/ref/vmstate\",\"mem_backend\":{\"backend_type\":\"Uffd\",\"backend_path\":\"$TESTDIR/d.pages\"},\"resume_vm\":false}")
[ "$code" = 204 ] || die "Uffd load answered $code: $(cat put.out)"
# the guest waits for its page for ever (as Firecracker's): a short timeout
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X PUT --unix-socket "$TESTDIR/d1.sock" \
       http://localhost/snapshot/create -d "{\"snapshot_path\":\"$TESTDIR/d.vs\",\"mem_file_path\":\"$TESTDIR/d.mem\"}") || true
[ "$code" != 204 ] || die "a Full snapshot through damaged pages succeeded"
kill -9 "$v" 2>/dev/null || true
rc=0
wait "$spid" || rc=$?
[ "$rc" = 5 ] || die "serve-pages of damaged pages exited $rc: $(cat server.log)"
grep -Eq "remote pack .*(does not match its hash|does not decode)" server.log ||
    die "no message about the damaged pack: $(cat server.log)"
[ "$(fd images --json | jq length)" = 0 ] || die "D pulled a snapshot from a damaged pack"
echo ok
