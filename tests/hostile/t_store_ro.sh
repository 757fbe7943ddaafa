# Row 9: a read-only bind mount of a store: every reader works (images,
# info, restore, verify, sql), whether the WAL holds frames or not; a
# writer fails cleanly.
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for a bind mount"
base_store
mkdir ro
mount --bind store ro 2>/dev/null || skip "cannot bind-mount here"
trap 'umount -l "$TESTDIR/ro" 2>/dev/null || true' EXIT
mount -o remount,ro,bind ro || skip "cannot remount read-only"
R() { "$FORKCTL" --store "$TESTDIR/ro" "$@"; }
readers() {
    R images >/dev/null 2>err || die "images on a read-only mount ($1): $(cat err)"
    R info base >/dev/null 2>err || die "info on a read-only mount ($1): $(cat err)"
    R verify >/dev/null 2>err || die "verify on a read-only mount ($1): $(cat err)"
    [ "$(R sql "SELECT count(*) FROM snapshot" --csv 2>err | tail -n 1)" = 1 ] || die "sql on a read-only mount ($1): $(cat err)"
    rm -rf "r$1"
    R restore base --out "r$1" >/dev/null 2>err || die "restore on a read-only mount ($1): $(cat err)"
    same "r$1/memory.bin" m
}
readers wal
expect_fail 1 "[Rr]ead-only" R ingest --tag t2 --memory m --vmstate vm
# After a checkpoint that empties the WAL (and with no -wal/-shm at all).
fk gc >/dev/null
readers nowal
umount ro
rm -f store/catalog.db-wal store/catalog.db-shm
mount --bind store ro && mount -o remount,ro,bind ro
readers nofiles
