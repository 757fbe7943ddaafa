# Row 6, the rest of it: on a 100% full disk, removing snapshots must
# still work, or forkctl cannot free space: rmi and prune failed to commit
# (SQLite had no room for the WAL frames). Now a commit that fails for a
# full disk deletes DIR/reserve and retries once, says so, and gc (which
# then frees the space) makes the reserve again. Without a reserve left
# the failure is clean: nothing changed, and the hint says what to do.
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
mkdir -p small
mount -t tmpfs -o size=24m tmpfs small 2>/dev/null || skip "cannot mount tmpfs"
trap 'umount -l "$TESTDIR/small" 2>/dev/null || true' EXIT
s=small/store
S() { "$FORKCTL" --store "$s" "$@"; }
avail() { df --output=avail -k small | tail -n 1; }
room() {   # free space plus the reserve gc holds back (KiB)
    echo $(( $(avail) + $(du -k "$s/reserve" 2>/dev/null | cut -f1 || echo 0) ))
}
fill() {   # to 100%: a filler file as large as the disk lets it grow
    dd if=/dev/zero of="small/filler$1" bs=16k status=none 2>/dev/null || true
    [ "$(avail)" -lt 32 ] || die "the disk is not full ($(avail) KiB free)"
}
head -c 100 /dev/urandom >vm
S init --chunk-size 1M >/dev/null
for t in a b c0 c1 c2; do head -c 2M /dev/urandom >"m-$t"; done
S --quiet ingest --tag a --memory m-a --vmstate vm
S --quiet ingest --tag b --memory m-b --vmstate vm
S --quiet ingest --tag c0 --memory m-c0 --vmstate vm
S --quiet ingest --tag c1 --parent c0 --memory m-c1 --vmstate vm
S --quiet ingest --tag c2 --parent c1 --memory m-c2 --vmstate vm
S --quiet gc                     # makes the reserve
[ -s "$s/reserve" ] || die "no reserve after gc"
fill 1

# rmi on a full disk: commits with the reserve's room and says so.
S rmi a >out 2>err || die "rmi on a full disk failed: $(cat err)"
grep -q "removed a" out || die "rmi said: $(cat out)"
grep -q "disk is full: used the store's gc reserve.*forkctl gc" err || die "rmi did not say it used the reserve: $(cat err)"
[ ! -e "$s/reserve" ] || die "rmi committed without using the reserve?"
S images --json | jq -e 'map(.tag) | index("a") == null' >/dev/null || die "a still listed after rmi"

# gc on the full disk frees what rmi left, and makes the reserve again
# once there is room for it.
a0=$(room)
S gc >out 2>err || die "gc on a full disk failed: $(cat err)"
[ "$(room)" -gt $((a0 + 1024)) ] || die "gc freed only $(( $(room) - a0 )) KiB"
rm -f small/filler*
S --quiet gc
[ -s "$s/reserve" ] || die "gc did not make the reserve again"

# prune on a full disk: the same (each removal is one commit).
fill 2
S prune --keep-last 1 >out 2>err || die "prune on a full disk failed: $(cat err)"
grep -q "disk is full: used the store's gc reserve" err || die "prune did not say it used the reserve: $(cat err)"
[ "$(S images --json | jq -r 'map(.tag) | sort | join(" ")')" = "b c2" ] || die "prune left: $(S images 2>&1)"

# As told, gc next: on the disk still full but for what the reserve
# held, it frees the pruned snapshots' space and makes the reserve again.
a0=$(room)
S gc >out 2>err || die "gc after prune on a full disk failed: $(cat err)"
[ "$(room)" -gt $((a0 + 2048)) ] || die "gc after prune freed only $(( $(room) - a0 )) KiB"
[ -s "$s/reserve" ] || die "gc after prune did not make the reserve again"

# No reserve (deleted here) and the disk full: rmi may still find room in
# the WAL file; if not, it fails cleanly, changes nothing and says how out.
rm -f "$s/reserve"
fill 3
rc=0; S rmi b >out 2>err || rc=$?
if [ $rc -ne 0 ]; then
    grep -q "disk is full and the store's gc reserve is used up.*forkctl gc" err || die "no hint: $(cat err)"
    [ "$(S images --json | jq -r 'map(.tag) | sort | join(" ")')" = "b c2" ] || die "a failed rmi changed the store"
fi
rm -f small/filler*
S --quiet gc
[ -s "$s/reserve" ] || die "gc did not make the reserve again"
S verify >/dev/null
S --quiet restore c2 --out r
same r/memory.bin m-c2
if [ $rc -ne 0 ]; then
    S --quiet restore b --out rb
    same rb/memory.bin m-b
fi
echo "full disk: rmi and prune committed with the reserve; rmi without one exited $rc"
