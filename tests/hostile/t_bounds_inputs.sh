# Hostile: inputs whose size is not their contents (issue 13 rows 8, 9).
# /proc/self/status as --vmstate (the kernel reports 0 bytes) was stored as
# an empty file with exit 0; a socket as --memory gave exit 1. Files of
# the kernel's pseudo file systems, sockets, FIFOs, devices and
# directories are refused as invalid input (exit 2) naming the file and
# what it is; a regular copy of the same bytes is stored byte-identically.
. "$(dirname "$0")/../cli/lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"
base_store
before=$(store_state)
for f in /proc/self/status /proc/self/maps /proc/cpuinfo; do
    [ -r "$f" ] || continue
    expect_fail 2 "vmstate file $f is on a kernel pseudo file system.*copy it to a regular file" \
        fk ingest --tag p --memory m --vmstate "$f"
    expect_fail 2 "cfg file $f is on a kernel pseudo file system" \
        fk ingest --tag p --memory m --vmstate vm --file "cfg=$f"
done
for f in /sys/kernel/mm/transparent_hugepage/enabled /sys/devices/system/cpu/online; do
    [ -r "$f" ] || continue
    expect_fail 2 "is on a kernel pseudo file system" fk ingest --tag p --memory m --vmstate "$f"
done
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TESTDIR/sock"
[ -S sock ] || die "no socket made"
expect_fail 2 "memory file sock is a socket, not a regular file" fk ingest --tag p --memory sock --vmstate vm
expect_fail 2 "vmstate file sock is a socket" fk ingest --tag p --memory m --vmstate sock
mkfifo fifo
expect_fail 2 "memory file fifo is a FIFO" timeout 10 "$FORKCTL" --store "$TESTDIR/store" ingest --tag p --memory fifo --vmstate vm
expect_fail 2 "memory file /dev/null is a character device" fk ingest --tag p --memory /dev/null --vmstate vm
mkdir d
expect_fail 2 "vmstate file d is a directory" fk ingest --tag p --memory m --vmstate d
[ "$(store_state)" = "$before" ] || die "a refused ingest changed the store"

# What is accepted comes back byte for byte: a regular copy of the same.
cat /proc/self/status >status
[ -s status ] || die "empty copy of /proc/self/status"
fk ingest --tag p --memory m --vmstate status >/dev/null
fk restore p --out o >/dev/null
same o/vmstate status
same o/memory.bin m
