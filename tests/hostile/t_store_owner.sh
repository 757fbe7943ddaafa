# Row 4: ownership, as OpenSSH's StrictModes. Even as root, a store any
# part of which belongs to a user other than the store's owner (the owner
# of DIR) or is writable by group or others is refused, with the exact
# chown / chmod in the message. A store wholly owned by another user is
# that user's: root may use it, and what root adds belongs to that user.
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to chown to another uid"
base_store
fk gc >/dev/null     # leaves the WAL, lock files and the reserve in place
chunk=$(ls "$TESTDIR"/store/chunks/*.chunk | head -n 1)
U=54321
parts="store/catalog.db store/chunks store/lock store/gc.lock store/reserve"
[ -e store/catalog.db-wal ] && parts="$parts store/catalog.db-wal"
[ -e store/catalog.db-shm ] && parts="$parts store/catalog.db-shm"
for p in $parts; do
    chown "$U" "$p"
    expect_fail 1 "belongs to uid $U, not to the store's owner \(uid 0.*run \`chown 0 $TESTDIR/$p\`" fk images
    expect_fail 1 "belongs to uid $U" fk restore base --out r
    [ ! -e r ] || die "restore from a refused store wrote its output"
    chown 0 "$p"
done
# The directories other modules make: manifests/ (ingest) and vm-locks/
# (branch). Whoever owns or may write them can swap manifests (what
# recover trusts) or VM locks: refused as the others, exact fix named.
[ -d store/vm-locks ] || mkdir -m 700 store/vm-locks
[ -d store/manifests ] || die "ingest left no manifests/"
for p in store/manifests store/vm-locks; do
    chown 12345 "$p"
    expect_fail 1 "directory $TESTDIR/$p belongs to uid 12345, not to the store's owner \(uid 0.*run \`chown 0 $TESTDIR/$p\`" fk images
    expect_fail 1 "belongs to uid 12345" fk gc
    chown 0 "$p"
    chmod g+w "$p"
    expect_fail 1 "directory $TESTDIR/$p is writable by other users.*run \`chmod go-w $TESTDIR/$p\`" fk images
    chmod g-w "$p"
done
fk images >/dev/null
# A chunk file: refused wherever it is opened (restore, verify).
chown "$U" "$chunk"
expect_fail 1 "chunk file $chunk belongs to uid $U.*chown 0 $chunk" fk restore base --out r
expect_fail 5 "chunk file $chunk belongs to uid $U" fk verify
chown 0 "$chunk"
chmod g+w "$chunk"
expect_fail 1 "chunk file $chunk is writable by other users.*chmod go-w $chunk" fk restore base --out r
chmod g-w "$chunk"
chmod o+w store/catalog.db
expect_fail 1 "writable by other users.*chmod go-w $TESTDIR/store/catalog.db" fk verify
chmod o-w store/catalog.db
fk restore base --out r >/dev/null
same r/memory.bin m

# A store that is wholly another user's: root may read and write it, and
# the files root creates there are given to that user.
chown -R "$U" store
fk restore base --out r2 >/dev/null
same r2/memory.bin m
head -c 3M /dev/urandom >big
fk ingest --tag big --memory big --vmstate vm >/dev/null
fk gc >/dev/null
bad=$(find store ! -uid "$U" | head -n 3)
[ -z "$bad" ] || die "root left files in another user's store that are not theirs: $bad"
fk verify >/dev/null
