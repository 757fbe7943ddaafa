# Versions and load options of forkctl branch / restore --api-sock against
# the test VMM emulating Firecracker releases (fcvmm --fc-version):
# versions recorded and shown by info; a load refused before any load
# request when the format major differs (the VMM stays alive, Not
# started); enable_diff_snapshots before 1.13 (fcvmm 1.12 refuses
# track_dirty_pages as an unknown field) and track_dirty_pages from 1.13,
# each followed by a Diff of the loaded VM; --paused; --network-override
# (1.12+) and --vsock-uds (1.16+) passed through or refused before
# loading; --rootfs placed byte-identical; Diffs refused on 1.14.0/1.14.1
# for guests over 3 GiB.
. "$(dirname "$0")/lib.sh"
[ -x "${FCVMM:-}" ] || skip "FCVMM (tools/vmm) not built"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
n=0
vmm() { # vmm VERSION ARGS...: starts fcvmm emulating VERSION; its socket in $SOCK
    n=$((n + 1))
    SOCK=$TESTDIR/v$n.sock
    "$FCVMM" --api-sock "$SOCK" --fc-version "$@" --dump-dir "$TESTDIR/d$n" >/dev/null 2>>vmm.err &
    pids+=($!)
    for _ in $(seq 200); do [ -S "$SOCK" ] && return 0; sleep 0.05; done
    die "fcvmm did not start: $(cat vmm.err)"
}
api() { curl -sf --max-time 5 --unix-socket "$1" "http://localhost$2"; }
state() { api "$1" / | jq -r .state; }
fresh() { vmm "$1" --no-boot; }

fk --quiet init
vmm 1.14.2 --mem-mib 16 --rate 20000 --id a; A=$SOCK
fk --quiet branch --api-sock "$A" --tag a0 --staging "$TESTDIR/stage"
sleep 0.1
fk --quiet branch --api-sock "$A" --tag a1 --parent a0 --staging "$TESTDIR/stage"
fk info a1 | grep -q "^versions *Firecracker 1.14.2, snapshot format 8.0.0$" || die "info: $(fk info a1 | grep versions)"
[ "$(fk info a1 --json | jq -r '.firecracker_version + " " + .format_version')" = "1.14.2 8.0.0" ] ||
    die "info --json versions: $(fk info a1 --json | jq -c '[.firecracker_version, .format_version]')"
head -c 8192 /dev/urandom >m && fk --quiet ingest --tag plain --memory m --vmstate m
fk info plain | grep -q "^versions *- (not recorded)" || die "info of an ingested snapshot: $(fk info plain | grep versions)"
[ "$(fk info plain --json | jq .firecracker_version)" = null ] || die "info --json of an ingested snapshot"

# Format major 8 into 1.15 (9.0.0): refused before any load request; the VMM lives on, fresh.
fresh 1.15.0; V=$SOCK
expect_fail 6 "format version 8.0.0; Firecracker 1.15.0 .* loads 9.0.x only" fk restore a1 --api-sock "$V" --staging "$TESTDIR/stage"
[ "$(state "$V")" = "Not started" ] || die "the refused load reached the VMM: $(state "$V")"
[ -z "$(ls -A stage)" ] || die "a refused load left staging: $(ls stage)"
# 1.13 reads format 8: track_dirty_pages is sent, the loaded VM takes a Diff on a1.
fresh 1.13.0; V=$SOCK
fk --quiet restore a1 --api-sock "$V" --staging "$TESTDIR/stage" --json >l.json
[ "$(state "$V")" = Running ] || die "1.13 load: $(state "$V")"
[ "$(jq -r '.firecracker_version + " " + .format_version' l.json)" = "1.13.0 8.0.0" ] || die "load json: $(cat l.json)"
sleep 0.1
fk --quiet branch --api-sock "$V" --tag a2 --parent a1 --staging "$TESTDIR/stage2"
fk --quiet restore a2 --out ra2
same ra2/memory.bin "$TESTDIR/d$n/$(ls "d$n" | sort | tail -n 1)"

# 1.12: enable_diff_snapshots (fcvmm 1.12 refuses track_dirty_pages as unknown, as 1.12 does).
vmm 1.12.0 --mem-mib 16 --rate 20000 --id b; B=$SOCK
fk --quiet branch --api-sock "$B" --tag b0 --staging "$TESTDIR/stage"
[ "$(fk info b0 --json | jq -r .format_version)" = 6.0.0 ] || die "1.12 format version"
fresh 1.12.1; V=$SOCK
fk --quiet restore b0 --api-sock "$V" --staging "$TESTDIR/stage" --network-override eth0=tap7
[ "$(state "$V")" = Running ] || die "1.12 load: $(state "$V")"
[ "$(api "$V" /vm/config | jq -c '."network-interfaces"')" = '[{"iface_id":"eth0","host_dev_name":"tap7"}]' ] ||
    die "network override not passed: $(api "$V" /vm/config)"
sleep 0.1
fk --quiet branch --api-sock "$V" --tag b1 --parent b0 --staging "$TESTDIR/stage2"
fk --quiet restore b1 --out rb1
same rb1/memory.bin "$TESTDIR/d$n/$(ls "d$n" | sort | tail -n 1)"
# network_overrides only from 1.12, vsock_override only from 1.16: refused before loading.
fresh 1.11.0; V=$SOCK
expect_fail 6 "no network overrides on load \(from 1.12\)" fk restore a1 --api-sock "$V" --network-override eth0=tap1
[ "$(state "$V")" = "Not started" ] || die "a refused option reached the VMM"
fresh 1.14.2; V=$SOCK
expect_fail 6 "no vsock override on load \(from 1.16\)" fk restore a1 --api-sock "$V" --vsock-uds /tmp/v.sock
expect_fail 2 "IFACE=HOSTDEV" fk restore a1 --api-sock "$V" --network-override eth0
vmm 1.16.0 --mem-mib 16 --id c; C=$SOCK
fk --quiet branch --api-sock "$C" --tag c0 --staging "$TESTDIR/stage"
[ "$(fk info c0 --json | jq -r .format_version)" = 10.0.0 ] || die "1.16 (bitcode header) format version: $(fk info c0 --json | jq .format_version)"
fresh 1.16.1; V=$SOCK
fk --quiet restore c0 --api-sock "$V" --staging "$TESTDIR/stage" --vsock-uds /run/v.sock --paused
[ "$(state "$V")" = Paused ] || die "--paused: the VM is $(state "$V")"
[ "$(api "$V" /vm/config | jq -r .vsock.uds_path)" = /run/v.sock ] || die "vsock override not passed: $(api "$V" /vm/config)"
# A VMM that is not fresh is refused.
expect_fail 2 "loads only into a fresh VMM" fk restore c0 --api-sock "$C"

# --rootfs: the stored rootfs placed at the given path, byte-identical; refused when absent or taken.
fk --quiet restore a1 --out ra1
head -c 300000 /dev/urandom >disk.img
fk --quiet ingest --tag ar --memory ra1/memory.bin --vmstate ra1/vmstate --file rootfs=disk.img
fresh 1.14.2; V=$SOCK
fk --quiet restore ar --api-sock "$V" --staging "$TESTDIR/stage" --rootfs "$TESTDIR/drive.ext4" --paused
same drive.ext4 disk.img
[ "$(state "$V")" = Paused ] || die "--rootfs --paused: $(state "$V")"
fresh 1.14.2; V=$SOCK
expect_fail 3 "snapshot a1 has no rootfs" fk restore a1 --api-sock "$V" --rootfs "$TESTDIR/x.ext4"
expect_fail 1 "already exists" fk restore ar --api-sock "$V" --rootfs "$TESTDIR/drive.ext4"
[ "$(state "$V")" = "Not started" ] || die "a refused --rootfs reached the VMM"
expect_fail 2 "need --api-sock" fk restore a1 --out x --paused

# 1.14.0 and 1.14.1 corrupt Diffs of guests with two memory slots (over 3 GiB): refused; 1.14.2 is not.
vmm 1.14.1 --mem-mib 3200 --no-boot; M=$SOCK
expect_fail 6 "Firecracker 1.14.1 corrupts Diff snapshots" fk branch --api-sock "$M" --tag m1 --parent a0
vmm 1.14.0 --mem-mib 32 --slots 2; M=$SOCK     # hot-pluggable memory: a second slot
expect_fail 6 "Firecracker 1.14.0 corrupts Diff snapshots" fk branch --api-sock "$M" --tag m1 --parent a0
vmm 1.14.2 --mem-mib 3200 --no-boot; M=$SOCK
expect_fail 2 "not Running" fk branch --api-sock "$M" --tag m1 --parent a0
# Releases outside 1.10 .. 1.16 are refused (exit 6) before any pause or load; --force-version takes them.
for v in 1.9.0 1.17.0; do
    vmm $v --mem-mib 16 --rate 20000; U=$SOCK
    expect_fail 6 "$v" fk branch --api-sock "$U" --tag u$v --staging "$TESTDIR/stage"
    [ "$(state "$U")" = Running ] || die "a refused $v branch paused the VM: $(state "$U")"
    fk --quiet branch --api-sock "$U" --tag u$v --staging "$TESTDIR/stage" --force-version
    [ "$(state "$U")" = Running ] || die "$v branch left the VM $(state "$U")"
    fresh $v; U=$SOCK
    expect_fail 6 "$v" fk restore u$v --api-sock "$U" --staging "$TESTDIR/stage"
    [ "$(state "$U")" = "Not started" ] || die "a refused $v load reached the VMM: $(state "$U")"
    fk --quiet restore u$v --api-sock "$U" --staging "$TESTDIR/stage" --force-version
    [ "$(state "$U")" = Running ] || die "$v forced load: $(state "$U")"
done
fk verify >/dev/null
