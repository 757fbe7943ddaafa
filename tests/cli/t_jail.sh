# forkctl branch / restore --api-sock with a jailed VMM (fcvmm --chroot
# --uid --gid, as Firecracker's jailer runs it; root only): staging is made
# inside the chroot and belongs to the jail's uid/gid, the VMM is sent
# chroot-relative paths, branches restore to the guest's RAM, a snapshot
# loads into a fresh jailed VMM that branches on; without --jail-root the
# VMM cannot reach the staging (and the next Diff is refused).
. "$(dirname "$0")/lib.sh"
[ -x "${FCVMM:-}" ] || skip "FCVMM (tools/vmm) not built"
[ "$(id -u)" = 0 ] || skip "the jail tests need root (chroot, another uid)"
U=12345
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
jail() { # jail DIR ARGS...: a jailed fcvmm with its socket at DIR/run/fc.sock
    local j=$1
    shift
    mkdir -p "$j/run" "$j/dumps"
    chmod 755 "$j"
    chown $U:$U "$j/run" "$j/dumps"
    "$FCVMM" --api-sock /run/fc.sock --chroot "$j" --uid $U --gid $U --dump-dir /dumps "$@" >/dev/null 2>>vmm.err &
    pids+=($!)
    for _ in $(seq 200); do [ -S "$j/run/fc.sock" ] && return 0; sleep 0.05; done
    die "jailed fcvmm did not start: $(cat vmm.err)"
}
state() { curl -sf --max-time 5 --unix-socket "$1" http://localhost/ | jq -r .state; }
last_dump() { echo "$1/dumps/$(ls "$1/dumps" | sort | tail -n 1)"; }
J=$TESTDIR/jail
S=$J/run/fc.sock
JOPT=(--jail-root "$J" --jail-uid $U --jail-gid $U)

fk --quiet init
jail "$J" --mem-mib 16 --rate 20000 --id jailed
fk --quiet branch --api-sock "$S" "${JOPT[@]}" --tag j0
fk --quiet restore j0 --out r0
same r0/memory.bin "$(last_dump "$J")"
sleep 0.1
fk --quiet branch --api-sock "$S" "${JOPT[@]}" --tag j1 --parent j0
fk --quiet restore j1 --out r1
same r1/memory.bin "$(last_dump "$J")"
[ -z "$(ls -d "$J"/forkstore-staging-* 2>/dev/null)" ] || die "branch left staging in the jail"

# The staging of a branch killed after its create: inside the jail, the jail's, then --resume.
rc=0
FORKSTORE_TEST_KILL_AFTER_CREATE=staged fk --quiet branch --api-sock "$S" "${JOPT[@]}" --tag j2 --parent j1 2>/dev/null || rc=$?
[ $rc = 137 ] || die "the kill hook did not fire (exit $rc)"
st=$(ls -d "$J"/forkstore-staging-*)
[ -d "$st" ] || die "no staging inside the jail"
for f in "$st" "$st/memory" "$st/vmstate"; do
    [ "$(stat -c %u:%g "$f")" = $U:$U ] || die "$f belongs to $(stat -c %u:%g "$f"), not the jail"
done
d2=$(last_dump "$J")
fk --quiet branch --resume --api-sock "$S"
fk --quiet restore j2 --out r2
same r2/memory.bin "$d2"
[ ! -e "$st" ] || die "--resume left the jail's staging"

# Load into a fresh jailed VMM: the files it maps are inside its jail and its own; it branches on.
J2=$TESTDIR/jail2
jail "$J2" --no-boot
fk --quiet restore j2 --api-sock "$J2/run/fc.sock" --jail-root "$J2" --jail-uid $U --jail-gid $U --json >l.json
[ "$(state "$J2/run/fc.sock")" = Running ] || die "the jailed load: $(state "$J2/run/fc.sock")"
ld=$(jq -r .staging l.json)
case "$ld" in "$J2"/forkstore-staging-*) ;; *) die "load staging $ld is not inside the jail" ;; esac
[ "$(stat -c %u:%g "$ld/memory.bin")" = $U:$U ] || die "the loaded memory file is not the jail's"
sleep 0.1
fk --quiet branch --api-sock "$J2/run/fc.sock" --jail-root "$J2" --jail-uid $U --jail-gid $U --tag k1 --parent j2
fk --quiet restore k1 --out rk1
same rk1/memory.bin "$(last_dump "$J2")"

# Staging outside the jail is refused; without --jail-root the VMM cannot reach /dev/shm.
expect_fail 2 "outside the jail" fk branch --api-sock "$S" "${JOPT[@]}" --staging /dev/shm --tag x1 --parent j2
expect_fail 2 "need --jail-root" fk branch --api-sock "$S" --jail-uid $U --tag x1
expect_fail 1 "No such file" fk branch --api-sock "$S" --tag x1 --parent j2 --staging "$TESTDIR/stage"
expect_fail 6 "unknown outcome" fk branch --api-sock "$S" "${JOPT[@]}" --tag x1 --parent j2
fk --quiet branch --api-sock "$S" "${JOPT[@]}" --tag x1 --parent j2 --full
fk --quiet restore x1 --out rx1
same rx1/memory.bin "$(last_dump "$J")"
[ "$(state "$S")" = Running ] || die "the jailed VM is $(state "$S")"
fk verify >/dev/null
