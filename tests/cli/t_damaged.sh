# Damaged input and damaged stores: each case gives a clear error with a
# documented exit code and never wrong output: a refused ingest leaves
# the store as it was, a failed restore leaves no files in its output
# directory, and a store that cannot be read is left untouched.
. "$(dirname "$0")/lib.sh"
fk init --chunk-size 1M >/dev/null
head -c 65536 /dev/urandom >m
head -c 5000 /dev/urandom >vm
fk ingest --tag base --memory m --vmstate vm >/dev/null
truncate -s 65536 d
head -c 4096 /dev/urandom | dd of=d bs=4096 seek=3 conv=notrunc status=none
fk ingest --tag child --parent base --memory d --diff --vmstate vm >/dev/null
fk verify >/dev/null
before=$(store_state)
cp -a store store.orig
q() { sqlite3 store/catalog.db "$1"; }
chunk1=store/chunks/00000001.chunk
# files_state: the bytes of the catalog and the chunk files (for stores
# forkctl cannot open, where store_state cannot run).
files_state() { (cd store && sha256sum catalog.db chunks/*) | sha256sum | cut -d' ' -f1; }
reset_store() { rm -rf store && cp -a store.orig store; }
# restore_fails CODE PATTERN TAG: restore fails as expected and leaves
# nothing in its output directory.
n=0
restore_fails() {
    n=$((n + 1))
    expect_fail "$1" "$2" fk restore "$3" --out "r$n"
    [ -z "$(ls -A "r$n" 2>/dev/null)" ] || die "failed restore of $3 left files: $(ls -A "r$n")"
}
verify_names() {
    local rc=0
    fk verify >v.out 2>v.err || rc=$?
    [ $rc -eq 5 ] || die "verify exit $rc, expected 5: $(cat v.err)"
    local t
    for t in $1; do
        grep -Eq "snapshots affected:.* $t( |$)" v.err || die "verify did not name $t: $(cat v.err)"
    done
}

# ---- bad input files: refused, store unchanged ----
head -c 10000 m >m.short
expect_fail 2 "memory file m.short is 10000 bytes, not a multiple of the 4096-byte page size" \
    fk ingest --tag t1 --memory m.short --vmstate vm
truncate -s 32768 d.short
expect_fail 2 "diff d.short is 32768 bytes but the parent base's memory is 65536 bytes" \
    fk ingest --tag t1 --parent base --memory d.short --diff --vmstate vm
truncate -s 131072 d.long
expect_fail 2 "diff d.long is 131072 bytes but the parent base's memory is 65536 bytes" \
    fk ingest --tag t1 --parent base --memory d.long --diff --vmstate vm
head -c 30000 d >d.mid
expect_fail 2 "memory file d.mid is 30000 bytes, not a multiple" \
    fk ingest --tag t1 --parent base --memory d.mid --diff --vmstate vm
[ "$(store_state)" = "$before" ] || die "a refused ingest changed the store"

# ---- chunk file truncated ----
truncate -s 2000 "$chunk1"
restore_fails 5 "snapshot base, memory page 0 .*record runs past the end of the chunk file .*truncated" base
restore_fails 5 "snapshot child, memory page 0 " child
verify_names "base child"
grep -q "is truncated" v.err || die "verify did not say the chunk is truncated"
[ "$(store_state)" = "$before" ] || die "restore or verify changed the catalog"
truncate -s 40 "$chunk1"
restore_fails 5 "chunk file .*00000001.chunk is damaged \(bad or truncated header\)" base
reset_store

# ---- flipped bits ----
off=$(q "SELECT off FROM page_place WHERE id = 1")
flip() { printf "\\x$2" | dd of="$chunk1" bs=1 seek="$1" conv=notrunc status=none; }
flip $((off + 200)) 5a                              # a payload byte of the first record
restore_fails 5 "snapshot base, memory page 0 .*does not match its hash" base
verify_names "base child"
reset_store
flip $((off + 20)) 5a                               # its header (a page hash)
restore_fails 5 "snapshot base, memory page 0 .*record header damaged" base
reset_store
flip 17 7f                                          # the file header (chunk id)
restore_fails 5 "00000001.chunk is damaged \(bad or truncated header\)" base
verify_names "base child"
grep -q "has a damaged header" v.err || die "verify did not report the header"
reset_store

# ---- the catalog points past the end of a chunk ----
q "UPDATE block SET off = (SELECT cap FROM chunk WHERE id = 1) + 4096 WHERE id = (SELECT block_id FROM page_place WHERE id = 2)"
restore_fails 5 "snapshot base, memory page [0-9]* \(page id [0-9]*\).*past the end of the chunk file" base
verify_names "base child"
reset_store

# ---- a page map naming a missing page ----
q "DELETE FROM page WHERE id = 5"
restore_fails 5 "snapshot base, memory: page [0-9]* is missing from the page index" base
restore_fails 5 "snapshot child, memory: page [0-9]* is missing from the page index" child
verify_names "base child"
grep -q "missing from the index" v.err || die "verify did not report the missing page"
reset_store

# ---- an artifact row with a damaged size ----
q "UPDATE artifact SET size = -5 WHERE name = 'vmstate' AND snapshot_id = 1"
fs=$(files_state)
expect_fail 5 "catalog names an artifact badly \(name or size damaged\)" fk info base
expect_fail 5 "catalog names an artifact badly" fk diff base child
restore_fails 5 "catalog names an artifact of base badly" base
[ "$(files_state)" = "$fs" ] || die "reading a damaged artifact row changed the store"
reset_store

# ---- a catalog from a newer forkstore: refused, not touched ----
q "PRAGMA user_version = 999"
fs=$(files_state)
expect_fail 1 "schema version 999, newer than this forkstore .* understands \([0-9]+\): upgrade forkstore" fk images
restore_fails 1 "schema version 999" base
expect_fail 1 "schema version 999" fk ingest --tag t1 --memory m --vmstate vm
expect_fail 1 "schema version 999" fk gc
[ "$(q 'PRAGMA user_version')" = 999 ] || die "the catalog's version was changed"
[ "$(files_state)" = "$fs" ] || die "a newer catalog was modified"
reset_store

# ---- a catalog that is not SQLite: refused, not overwritten ----
rm -f store/catalog.db-wal store/catalog.db-shm
echo "this is not a database, but someone's notes" >store/catalog.db
fs=$(files_state)
expect_fail 5 "catalog.db is not a forkstore catalog \(not an SQLite database, or damaged\)" fk images
restore_fails 5 "not a forkstore catalog" base
expect_fail 5 "not a forkstore catalog" fk ingest --tag t1 --memory m --vmstate vm
expect_fail 1 "already holds a store" fk init
[ "$(files_state)" = "$fs" ] || die "a catalog that is not SQLite was modified"
reset_store

# After all that, the store itself is fine.
[ "$(store_state)" = "$before" ] || die "store changed"
fk restore child --out ok >/dev/null
same ok/vmstate vm
