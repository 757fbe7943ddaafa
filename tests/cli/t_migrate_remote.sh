# Migration 0009 (encrypted remotes): a version-8 catalog holding remotes
# migrates in place on the first write; its remotes stay unencrypted,
# unchanged, and an encrypted remote can then be added. A row naming a key
# file without its key id is refused as damage.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || die "sqlite3 CLI not installed"
root=$(cd "$(dirname "$0")/../.." && pwd)
base_store
fk remote add origin s3://fleet/hosts --endpoint http://127.0.0.1:9000 >/dev/null
fk remote add eu s3://fleet/eu --endpoint https://s3.example.net --region eu-west-1 >/dev/null
fk remote ls --json | jq -c 'map(del(.encrypted, .key_file, .key_id))' >before.json
describe() {
    sqlite3 "$1" "SELECT m.name, m.type, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk
                  FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY 1, 3;
                  SELECT name, tbl_name FROM sqlite_master WHERE type IN ('index', 'view', 'trigger')
                  AND name NOT LIKE 'sqlite_autoindex%' ORDER BY 1;"
}
# The same catalog as version 8 wrote it: 0009's columns dropped, and the
# result checked against what migrations 0001-0008 build.
sqlite3 store/catalog.db "PRAGMA wal_checkpoint(TRUNCATE); ALTER TABLE remote DROP COLUMN key_id;
                          ALTER TABLE remote DROP COLUMN key_file; PRAGMA user_version = 8;" >/dev/null
args=()
for m in "$root"/migrations/000[1-8]_*.sql; do args+=(".read $m"); done
sqlite3 v8.db "${args[@]}" >/dev/null
diff <(describe store/catalog.db) <(describe v8.db) >/dev/null || die "test setup: not a version-8 catalog"

expect_fail 2 "schema version 8 and needs migrating" fk remote ls
fk gc >/dev/null || die "the first write did not migrate"
latest=$(ls "$root"/migrations/[0-9]*.sql | wc -l)
[ "$(sqlite3 store/catalog.db "PRAGMA user_version")" = "$latest" ] || die "not migrated to $latest"
fk remote ls --json >after.json
[ "$(jq -c 'map(del(.encrypted, .key_file, .key_id))' after.json)" = "$(cat before.json)" ] ||
    die "remotes changed in the migration: $(cat before.json) -> $(cat after.json)"
[ "$(jq -c '[.[] | [.encrypted, .key_file, .key_id]] | unique' after.json)" = '[[false,null,null]]' ] ||
    die "a migrated remote is encrypted: $(cat after.json)"
fk restore base --out o >/dev/null
same o/memory.bin m

# After it: an encrypted remote beside the old ones.
fk remote keygen k >/dev/null
fk remote add sec s3://fleet/sec --endpoint http://127.0.0.1:9000 --encrypt k >/dev/null
fk remote ls --json | jq -e '.[] | select(.name == "sec") | .encrypted and (.key_id | test("^[0-9a-f]{16}$"))' >/dev/null ||
    die "remote ls after add --encrypt: $(fk remote ls --json)"
sqlite3 store/catalog.db "UPDATE remote SET key_id = NULL WHERE name = 'sec'"
expect_fail 5 "row of remote 'sec' is malformed" fk remote ls
echo "migrate 0009: version 8 -> $latest in place, remotes unchanged and unencrypted"
