# Row 9: a catalog whose schema version is older than its tables (set by
# hand, or partial) errors once, clearly, as damage; it does not send the
# user between "open it read-write" and a failing migration. A real old
# catalog (version 1, only the first migration) is migrated.
. "$(dirname "$0")/../cli/lib.sh"
base_store
for v in 1 2; do
    sqlite3 store/catalog.db "PRAGMA user_version = $v"
    expect_fail 5 "says schema version $v, but migration 000$((v + 1))_[a-z_]+ does not apply to it: the catalog is damaged" fk gc
    grep -q "forkctl recover" "$TESTDIR/err" || die "no way out named: $(cat "$TESTDIR/err")"
    expect_fail 5 "says schema version $v" fk ingest --tag x --memory m --vmstate vm
    [ "$(sqlite3 store/catalog.db "PRAGMA user_version")" = $v ] || die "a failed migration changed the version"
done
latest=$(ls "$(dirname "$0")"/../../migrations/[0-9]*.sql | wc -l)
sqlite3 store/catalog.db "PRAGMA user_version = $latest"
fk restore base --out r >/dev/null
same r/memory.bin m

# A genuine version-1 catalog migrates on the first write.
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir old
sqlite3 old/catalog.db "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA page_size = 4096;" \
    ".read $root/migrations/0001_initial.sql" \
    "INSERT INTO meta VALUES ('chunk_size', 1048576), ('gc_generation', 0), ('created_ms', 0);
     PRAGMA user_version = 1; PRAGMA journal_mode = WAL;" >/dev/null
chmod 700 old
mkdir -m 700 old/chunks
: >old/lock
: >old/gc.lock
chmod 600 old/lock old/gc.lock old/catalog.db
O() { "$FORKCTL" --store "$TESTDIR/old" "$@"; }
expect_fail 2 "schema version 1 and needs migrating" O images
O ingest --tag first --memory m --vmstate vm >/dev/null 2>err || die "a version-1 catalog did not migrate: $(cat err)"
[ "$(sqlite3 old/catalog.db "PRAGMA user_version")" = "$latest" ] || die "not migrated to $latest"
O restore first --out r2 >/dev/null
same r2/memory.bin m
