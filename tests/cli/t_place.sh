# A restore of several files is all or nothing: if renaming a later file
# into place fails (injected with tests/cli/failrename.c, an LD_PRELOAD
# shim), the files already placed are taken back. Into a new directory it
# leaves nothing; with --force over existing files, every replaced file is
# put back as it was. Each failure is checked for its message and that
# the store and the output directory are unchanged.
. "$(dirname "$0")/lib.sh"
[ -f "${FAILRENAME:-}" ] || die "FAILRENAME (build/tests/failrename.so) not built"
# Under ASan the shim would precede the sanitizer runtime in the load order.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
failing() { # failing N CMD...: CMD with its Nth renameat2() failing
    local n=$1; shift
    LD_PRELOAD="$FAILRENAME" FKS_FAIL_RENAME=$n "$@"
}
base_store
before=$(store_state)
check_unchanged() { # check_unchanged DIR STATE WHAT
    [ "$(out_state "$1")" = "$2" ] || die "$3 changed $1: $(ls -A "$1")"
    [ "$(store_state)" = "$before" ] || die "$3 changed the store"
}
# The shim must really fail the call it is told to, or this test proves nothing.
mkdir probe && touch probe/a
failing 1 fk restore base --out probe --force >/dev/null 2>&1 && die "the rename shim did not fail a call"
rm -rf probe

# Files are placed in name order: memory.bin, rootfs, vmstate.
# ---- into a new directory: the third of three renames fails ----
mkdir new
s=$(out_state new)
expect_fail 1 "nothing was restored: rename new/\.vmstate\.[A-Za-z0-9]{6} to new/vmstate: Input/output error" \
    failing 3 fk restore base --out new
check_unchanged new "$s" "a failed restore"
# ... the second fails, with the disk full: same cleanup.
expect_fail 1 "nothing was restored: rename new/\.rootfs.* to new/rootfs: No space left" \
    env FKS_FAIL_ERRNO=ENOSPC LD_PRELOAD="$FAILRENAME" FKS_FAIL_RENAME=2 "$FORKCTL" --store "$TESTDIR/store" \
    restore base --out new
check_unchanged new "$s" "a failed restore (ENOSPC)"

# ---- --force over existing files: each replaced file comes back ----
mkdir old
printf 'old memory\n' >old/memory.bin
printf 'old vmstate\n' >old/vmstate
printf 'old rootfs\n' >old/rootfs
ln -s memory.bin old/alias
s=$(out_state old)
for n in 2 3; do   # one call per file (RENAME_EXCHANGE): undo one, then two
    expect_fail 1 "nothing was restored: rename" failing $n fk restore base --out old --force
    check_unchanged old "$s" "a failed restore --force (rename $n)"
done
# Mixed: memory.bin exists (exchanged), rootfs is new (exchange finds
# nothing, then a no-replace rename), vmstate exists; the 4th call fails.
rm old/rootfs
s=$(out_state old)
expect_fail 1 "nothing was restored: rename old/\.vmstate.* to old/vmstate" failing 4 fk restore base --out old --force
check_unchanged old "$s" "a failed restore --force over a partial directory"
[ "$(cat old/memory.bin)" = "old memory" ] || die "memory.bin was not put back"

# ---- --force onto a directory is refused up front ----
mkdir -p dirout/vmstate
s=$(out_state dirout)
expect_fail 1 "dirout/vmstate is a directory \(only files are replaced\)" fk restore base --out dirout --force
check_unchanged dirout "$s" "a refused restore onto a directory"

# ---- without a fault the same restores succeed and replace everything ----
fk restore base --out old --force >/dev/null
same old/memory.bin m && same old/vmstate vm && same old/rootfs extra
[ "$(readlink old/alias)" = memory.bin ] || die "an unrelated symlink was touched"
[ -z "$(find old -name '.*' -print -quit)" ] || die "a replaced file was left behind: $(ls -A old)"
fk restore base --out new >/dev/null
same new/memory.bin m && same new/vmstate vm && same new/rootfs extra
