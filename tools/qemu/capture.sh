#!/usr/bin/env bash
# tools/qemu/capture.sh --out DIR --mem SIZE --snapshots N: a chain of real
# Linux guest memory images for the benchmark.
#
# Boots Debian's kernel with a busybox initramfs under qemu-system-x86_64
# (-accel tcg: the nested /dev/kvm here cannot run a full kernel), guest RAM
# in a shared file under /dev/shm, runs a workload in the guest (files
# written, compressed, hashed, sorted, deleted in tmpfs), and every few
# seconds pauses it over QMP, copies the RAM file (a Full image) and
# resumes. Diff files (only the pages that changed since the previous
# image, zero pages included) are derived with mkdiff.c.
#
# Output, as tools/gen/forkgen writes it: DIR/chain.tsv and DIR/NN/
# {memory.full, memory.diff, vmstate}. Cached: a second run with the same
# parameters reuses DIR. Downloads (kernel .deb) and the initramfs are
# cached in $FORKSTORE_QEMU_CACHE (default /var/cache/forkstore-qemu).
# Debian packages: qemu-system-x86 busybox-static cpio (tools/deps.sh qemu).
# Exits 3 with a one-line reason when QEMU or the kernel is not available.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="" mem=512M snaps=12 gap=${CAPTURE_GAP_S:-3}
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --snapshots) snaps=$2; shift 2 ;;
        *) echo "usage: tools/qemu/capture.sh --out DIR --mem SIZE --snapshots N" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { echo "capture: --out DIR is required" >&2; exit 2; }
if [ -f "$out/chain.tsv" ] && [ "$(cat "$out/.params" 2>/dev/null)" = "qemu $mem $snaps" ]; then
    exit 0
fi
unavailable() { echo "capture: $*" >&2; exit 3; }
command -v qemu-system-x86_64 >/dev/null && [ -x /bin/busybox ] || "$here/../deps.sh" qemu >&2 ||
    unavailable "qemu-system-x86 and busybox-static are not installed"
command -v qemu-system-x86_64 >/dev/null || unavailable "qemu-system-x86_64 not found"
{ ldd /bin/busybox 2>&1 || true; } | grep -q "not a dynamic" ||
    unavailable "/bin/busybox is not static (install busybox-static)"

cache=${FORKSTORE_QEMU_CACHE:-/var/cache/forkstore-qemu}
mkdir -p "$cache"
# The kernel: Debian's, unpacked from its .deb (nothing installed on the host).
kver=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kver" ] || unavailable "no linux-image-amd64 in the package index"
vmlinuz=$(ls "$cache/$kver"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
if [ -z "$vmlinuz" ]; then
    (cd "$cache" && apt-get download "$kver" >/dev/null 2>&1) || unavailable "cannot download $kver"
    dpkg-deb -x "$cache/$kver"_*.deb "$cache/$kver"
    rm -f "$cache/$kver"_*.deb
    vmlinuz=$(ls "$cache/$kver"/boot/vmlinuz-* | head -n 1)
fi
# The initramfs: static busybox and a workload as /init.
initrd=$cache/initramfs-v1.cpio.gz
if [ ! -f "$initrd" ]; then
    r=$(mktemp -d)
    mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/work"
    cp /bin/busybox "$r/bin/busybox"
    cat >"$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o size=70% tmpfs /work
echo FKS-READY > /dev/ttyS0
i=0
while true; do
    i=$((i + 1))
    dd if=/dev/urandom of=/work/r$i bs=64k count=24 2>/dev/null
    seq 1 20000 | sed "s/^/line $i /" > /work/t$i
    gzip -c /work/t$i > /work/t$i.gz
    sort -r /work/t$i | md5sum > /work/m$i
    cat /work/r$i /work/t$i.gz | sha256sum >> /work/sums
    [ $((i % 5)) = 0 ] && rm -f /work/r$((i - 4)) /work/t$((i - 4))* /work/m$((i - 3))
    [ $((i % 7)) = 0 ] && cp /work/t$i /work/keep$i
    sleep 0.2
done
EOF
    chmod +x "$r/init"
    (cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
    rm -rf "$r"
fi
mkdiff=$cache/mkdiff
[ -x "$mkdiff" ] && [ "$mkdiff" -nt "$here/mkdiff.c" ] || cc -O2 -o "$mkdiff" "$here/mkdiff.c"

bytes=$(numfmt --from=iec "$mem")
work=$(mktemp -d "${TMPDIR:-/tmp}/fks-qemu.XXXXXX")
ram=/dev/shm/fks-qemu-ram.$$
qpid=""
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
    rm -f "$ram"
    rm -rf "$work"
}
trap cleanup EXIT
qemu-system-x86_64 -accel tcg -m "$((bytes >> 20))" -smp 1 \
    -object "memory-backend-file,id=mem,size=$bytes,mem-path=$ram,share=on" -machine q35,memory-backend=mem \
    -kernel "$vmlinuz" -initrd "$initrd" -append "console=ttyS0 quiet panic=-1" \
    -display none -monitor none -serial "file:$work/serial.log" -no-reboot \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" >"$work/qemu.log" 2>&1 &
qpid=$!
qmp() { # qmp COMMAND: one QMP command on a fresh connection
    python3 - "$work/qmp.sock" "$1" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.readline()
for cmd in ("qmp_capabilities", sys.argv[2]):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r: break
        if "error" in r: sys.exit("QMP %s: %s" % (cmd, r["error"]))
EOF
}
t0=$(date +%s)
until grep -q FKS-READY "$work/serial.log" 2>/dev/null; do
    kill -0 "$qpid" 2>/dev/null || unavailable "QEMU exited: $(tail -n 3 "$work/qemu.log" "$work/serial.log" | tr '\n' ' ')"
    [ $(($(date +%s) - t0)) -lt 300 ] || unavailable "the guest did not boot within 300 s"
    sleep 0.5
done
echo "capture: guest booted in $(($(date +%s) - t0)) s (tcg); taking $snaps images of $mem, ${gap}s apart" >&2
sleep "$gap"
rm -rf "$out"
mkdir -p "$out"
printf '#NN\ttag\tparent\tdirty_pages\tdiff_data_bytes\n' >"$out/chain.tsv"
for i in $(seq 0 $((snaps - 1))); do
    nn=$(printf %02d "$i")
    mkdir -p "$out/$nn"
    qmp stop
    cp --sparse=always "$ram" "$out/$nn/memory.full"
    qmp cont
    head -c 20480 /dev/urandom >"$out/$nn/vmstate"
    sleep "$gap"
done
for i in $(seq 0 $((snaps - 1))); do
    nn=$(printf %02d "$i")
    if [ "$i" = 0 ]; then
        cp --sparse=never "$out/$nn/memory.full" "$out/$nn/memory.diff"
        printf '%s\ts%s\t-\t0\t0\n' "$nn" "$nn" >>"$out/chain.tsv"
    else
        pn=$(printf %02d $((i - 1)))
        pages=$("$mkdiff" "$out/$pn/memory.full" "$out/$nn/memory.full" "$out/$nn/memory.diff")
        printf '%s\ts%s\ts%s\t%s\t%s\n' "$nn" "$nn" "$pn" "$pages" "$((pages * 4096))" >>"$out/chain.tsv"
    fi
done
echo "qemu $mem $snaps" >"$out/.params"
echo "capture: $snaps images in $out ($(($(date +%s) - t0)) s)" >&2
