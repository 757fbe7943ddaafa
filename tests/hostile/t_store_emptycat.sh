# Row 3: a 0-byte, empty (schema version 0) or foreign catalog beside chunk
# files is damage (exit 5, with the way to recover), never a new store:
# no command builds a catalog over it, init refuses to make one over chunk
# files, and gc never deletes chunk files a catalog does not know.
. "$(dirname "$0")/../cli/lib.sh"
base_store
chunks_state() { (cd "$TESTDIR/store/chunks" && ls && cat ./*.chunk) | sha256sum | cut -d' ' -f1; }
cs=$(chunks_state)
fk gc >/dev/null        # checkpoints: catalog.db alone holds the catalog
cp store/catalog.db good.db
[ ! -s store/catalog.db-wal ] || die "gc left frames in the WAL"
rm -f store/catalog.db-wal store/catalog.db-shm

: >store/catalog.db
for cmd in "images" "verify" "gc" "ingest --tag t1 --memory m --vmstate vm" "rmi base" "restore base --out r"; do
    # shellcheck disable=SC2086
    expect_fail 5 "catalog .*catalog.db is empty \(0 bytes\) beside [0-9]+ chunk files" fk $cmd
    grep -q "forkctl recover" "$TESTDIR/err" || die "no recover advice from '$cmd': $(cat "$TESTDIR/err")"
    [ ! -s store/catalog.db ] || die "'$cmd' wrote into the empty catalog"
done
[ "$(chunks_state)" = "$cs" ] || die "chunk files changed beside an empty catalog"

# An SQLite database with no forkstore schema (user_version 0).
rm -f store/catalog.db*
sqlite3 store/catalog.db "CREATE TABLE notes(x); PRAGMA user_version = 0;"
expect_fail 5 "holds no forkstore schema \(schema version 0\)" fk gc
expect_fail 5 "holds no forkstore schema" fk ingest --tag t1 --memory m --vmstate vm
[ "$(sqlite3 store/catalog.db "SELECT count(*) FROM sqlite_master")" = 1 ] || die "the foreign catalog was migrated"
[ "$(chunks_state)" = "$cs" ] || die "chunk files changed beside a foreign catalog"

# No catalog at all: init refuses to make one over the chunk files.
rm -f store/catalog.db*
expect_fail 5 "no catalog.db but .* holds [0-9]+ chunk files" fk init --chunk-size 1M
[ ! -e store/catalog.db ] || die "init made a catalog over chunk files"
[ "$(chunks_state)" = "$cs" ] || die "init changed the chunk files"

# A catalog that names no chunk (the wrong catalog): gc keeps the files.
"$FORKCTL" --store other init --chunk-size 1M >/dev/null
cp other/catalog.db store/catalog.db
sqlite3 store/catalog.db "DELETE FROM chunk; DELETE FROM meta WHERE key = 'next_chunk_id';"
expect_fail 5 "names no chunk, but .* holds [0-9]+ chunk files" fk gc
[ "$(chunks_state)" = "$cs" ] || die "gc deleted chunk files its catalog does not name"

# The right catalog back: everything as before.
rm -f store/catalog.db*
cp good.db store/catalog.db
fk restore base --out ok >/dev/null
same ok/memory.bin m
fk verify >/dev/null
