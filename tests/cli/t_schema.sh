# schema/catalog.sql describes exactly what the migrations build.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 CLI not installed"
root=$(cd "$(dirname "$0")/../.." && pwd)
fk init >/dev/null
sqlite3 fresh.db <"$root/schema/catalog.sql"
describe() {
    sqlite3 "$1" "SELECT m.name, m.type, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk
                  FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY 1, 3;
                  SELECT name, tbl_name FROM sqlite_master WHERE type IN ('index', 'view', 'trigger')
                  AND name NOT LIKE 'sqlite_autoindex%' ORDER BY 1;"
}
diff <(describe store/catalog.db) <(describe fresh.db) || die "schema/catalog.sql and migrations/ disagree"
v=$(sqlite3 store/catalog.db "PRAGMA user_version")
n=$(ls "$root"/migrations/[0-9]*.sql | wc -l)
[ "$v" = "$n" ] || die "user_version $v, but $n migrations"
# A catalog from a newer forkstore is refused, naming the versions.
sqlite3 store/catalog.db "PRAGMA user_version = 999"
expect_fail 1 "schema version 999, newer than this forkstore" fk images
