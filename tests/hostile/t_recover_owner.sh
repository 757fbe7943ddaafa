# Manifests are store files: root's writes into another user's store give
# them to that user, and recover refuses a manifest that someone other than
# the store's owner owns or may write (it could name any pages).
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to chown"
base_store
for f in store/manifests/*; do
    [ "$(stat -c %u "$f")" = 0 ] || die "$f not the owner's"
done
m=$(ls store/manifests/*.manifest | head -n 1)
lost=${m%.manifest}.lost
# again: the refused manifest (kept as .lost) back in place, no catalog
again() {
    [ -e "$lost" ] && mv "$lost" "$m"
    rm -f store/catalog.db store/catalog.db-wal store/catalog.db-shm
}
chown 12345 "$m"
again
expect_fail 5 "belongs to uid 12345, not to the store's owner.*chown 0" fk recover
again
chown 0 "$m"
chmod g+w "$m"
expect_fail 5 "writable by other users.*chmod go-w" fk recover
again
chmod g-w "$m"
fk recover >/dev/null
fk restore base --out r >/dev/null
same r/memory.bin m
