# Migration 0005 (page maps as shared deltas): a version-4 catalog, with
# its complete maps in table run, as forkstore wrote them before 0005 (a
# Full root with a rootfs, Diffs, a Full mid-chain, an rmi), migrates in
# place on the first write; every snapshot then restores byte-identical,
# the views list the same pages, verify is clean, new Diffs on migrated
# snapshots are deltas, and gc works. A migration killed at random
# moments leaves version 4 or version 5, each complete and restorable.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || die "sqlite3 CLI not installed"
root=$(cd "$(dirname "$0")/../.." && pwd)
gen g --size 4M --snapshots 8 --dirty 6 --seed 5 --rootfs 1M
# One chunk holds the whole store (about 1.5 MiB), so the pages the rmi
# below leaves dead sit between live ones in it, wherever record sizes put
# chunk boundaries (with 1 MiB chunks they fell at a chunk's end).
fk init --chunk-size 4M >/dev/null
fk ingest --tag s0 --memory g/00/memory.full --vmstate g/00/vmstate --file rootfs=g/rootfs.ext4 >/dev/null
for i in 1 2 3 4 5 6 7; do
    if [ $i = 4 ]; then
        fk ingest --tag s$i --parent s$((i - 1)) --memory g/0$i/memory.full --vmstate g/0$i/vmstate >/dev/null
    else
        fk ingest --tag s$i --parent s$((i - 1)) --memory g/0$i/memory.diff --diff --vmstate g/0$i/vmstate >/dev/null
    fi
done
fk rmi s2 >/dev/null
tags="s0 s1 s3 s4 s5 s6 s7"
pages() { fk sql "SELECT tag, artifact, pgno, page_id FROM snapshot_pages ORDER BY tag, artifact, pgno" --csv | sha256sum; }
pages >pages.before

# The same store as version 4: migrations 0001-0004 and the rows, the
# maps complete in table run (what 0004 stored).
make_v4() {
    rm -f v4.db
    local args=()
    for m in "$root"/migrations/000[1-4]_*.sql; do args+=(".read $m"); done
    sqlite3 v4.db "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA page_size = 4096;" "${args[@]}" \
        "ATTACH '$TESTDIR/store/catalog.db' AS n;
         INSERT INTO meta SELECT * FROM n.meta;
         INSERT INTO snapshot SELECT * FROM n.snapshot;
         INSERT INTO artifact(id, snapshot_id, name, size) SELECT id, snapshot_id, name, size FROM n.artifact;
         INSERT INTO chunk SELECT * FROM n.chunk;
         INSERT INTO page SELECT id, hash, chunk_id, off, len, slot, CASE rlen WHEN 4096 THEN NULL ELSE rlen END
             FROM n.page_place;
         INSERT INTO run SELECT artifact_id, pgno, npages, page_id FROM n.artifact_runs;
         DETACH n; PRAGMA user_version = 4; PRAGMA journal_mode = WAL;" >/dev/null
    chmod 600 v4.db
}
# Compaction copies the live pages of a chunk into new block records, so
# a record can hold pages whose ids are not consecutive (0008 splits it
# into block rows; versions before it kept a slot per page).
fk gc --threshold 0.999 >/dev/null            # also a checkpoint: catalog.db is the whole catalog
make_v4
irregular=$(sqlite3 v4.db "SELECT count(*) FROM (SELECT max(id) - min(id) + 1 AS span, count(*) AS n
                           FROM page GROUP BY chunk_id, off) WHERE span > n")
[ "$irregular" -gt 0 ] || die "test setup: compaction left no block record with non-consecutive page ids"
[ "$(sqlite3 v4.db "SELECT count(*) FROM run")" -gt 0 ] || die "test setup: no runs in the v4 catalog"
cp -a "$TESTDIR/store" v4store
rm -f v4store/catalog.db*
cp v4.db v4store/catalog.db

use_v4() { rm -rf "$TESTDIR/store"; cp -a v4store "$TESTDIR/store"; }
check_all() {
    for t in $tags; do
        rm -rf "out_$t"
        fk restore "$t" --out "out_$t" >/dev/null || die "restore $t failed ($1)"
        same "out_$t/memory.bin" "g/0${t#s}/memory.full"
        same "out_$t/vmstate" "g/0${t#s}/vmstate"
    done
    same out_s0/rootfs g/rootfs.ext4
}

use_v4
[ "$(sqlite3 store/catalog.db "PRAGMA user_version")" = 4 ] || die "test setup: not version 4"
expect_fail 2 "schema version 4 and needs migrating" fk images
fk gc >/dev/null || die "the first write did not migrate"
latest=$(ls "$root"/migrations/[0-9]*.sql | wc -l)
[ "$(sqlite3 store/catalog.db "PRAGMA user_version")" = "$latest" ] || die "not migrated to $latest"
[ "$(sqlite3 store/catalog.db "SELECT count(*) FROM sqlite_master WHERE name = 'run' AND type = 'table'")" = 0 ] ||
    die "table run survived the migration"
check_all "after the migration"
pages >pages.after
diff pages.before pages.after >/dev/null || die "snapshot_pages differs after the migration"
fk verify | grep -q "verify: ok" || die "verify after the migration: $(fk verify 2>&1)"
# 0008: every page in a block row that holds it, split where ids are
# not consecutive; the hash index finds every page (gc packed page_new).
db() { sqlite3 store/catalog.db "$1"; }
[ "$(db "SELECT count(*) FROM page_place WHERE block_id IS NULL OR id >= block_id + block_n")" = 0 ] ||
    die "pages without a block row after the migration"
[ "$(db "SELECT count(*) FROM block WHERE slot0 > 0")" -gt 0 ] || die "no split block record after the migration"
[ "$(db "SELECT count(*) FROM page_new")" = 0 ] || die "gc left pages in page_new"
[ "$(db "SELECT value FROM meta WHERE key = 'idx_count'")" = "$(db "SELECT count(*) FROM page")" ] ||
    die "the packed index does not hold every page"
fk ingest --tag again --memory g/03/memory.full --vmstate g/03/vmstate --json >again.json
grep -q '"new_pages": *0[,}]' again.json || die "migrated pages were stored again: $(cat again.json)"
fk rmi again >/dev/null
# Refcounts as the triggers keep them: every node is named or built on.
bad=$(sqlite3 store/catalog.db "SELECT count(*) FROM pmap p WHERE refs <> (SELECT count(*) FROM artifact a WHERE a.pmap_id = p.id)
                                + (SELECT count(*) FROM pmap b WHERE b.base_id = p.id)")
[ "$bad" = 0 ] || die "$bad page map nodes have a wrong refs count after the migration"
# A Diff on a migrated snapshot is a delta: its node has a base and holds
# only the pages of the diff.
fk ingest --tag s8 --parent s7 --memory g/07/memory.diff --diff --vmstate g/07/vmstate >/dev/null
read -r base nruns < <(sqlite3 -separator ' ' store/catalog.db "SELECT coalesce(p.base_id, 0), (SELECT count(*) FROM pmap_run r WHERE r.pmap_id = p.id)
    FROM artifact a JOIN snapshot s ON s.id = a.snapshot_id JOIN pmap p ON p.id = a.pmap_id WHERE s.tag = 's8' AND a.name = 'memory'")
[ "$base" != 0 ] || die "a Diff on a migrated snapshot was stored as a complete map"
full=$(sqlite3 store/catalog.db "SELECT count(*) FROM artifact_runs r JOIN artifact a ON a.id = r.artifact_id
    JOIN snapshot s ON s.id = a.snapshot_id WHERE s.tag = 's7' AND a.name = 'memory'")
[ "$nruns" -le "$full" ] || die "the Diff's node has $nruns runs, more than the whole map ($full)"
rm -rf o8; fk restore s8 --out o8 >/dev/null; same o8/memory.bin g/07/memory.full
fk rmi s7 >/dev/null && fk gc >/dev/null
tags="s0 s1 s3 s4 s5 s6"
check_all "after rmi and gc of a migrated snapshot"
# gc folded s7's node into s8's: pmap_chain still lists exactly each
# node's chain of bases, and the refs are right.
[ "$(sqlite3 store/catalog.db "SELECT count(*) FROM pmap p WHERE NOT EXISTS (SELECT 1 FROM artifact a WHERE a.pmap_id = p.id)")" = 0 ] ||
    die "gc left a page map no snapshot names"
chains="WITH RECURSIVE w(pmap_id, node) AS (SELECT id, id FROM pmap UNION ALL
            SELECT w.pmap_id, p.base_id FROM w JOIN pmap p ON p.id = w.node WHERE p.base_id IS NOT NULL)"
[ "$(sqlite3 store/catalog.db "$chains SELECT count(*) FROM (SELECT pmap_id, node FROM w EXCEPT SELECT pmap_id, node_id FROM pmap_chain)")" = 0 ] &&
[ "$(sqlite3 store/catalog.db "$chains SELECT count(*) FROM (SELECT pmap_id, node_id FROM pmap_chain EXCEPT SELECT pmap_id, node FROM w)")" = 0 ] ||
    die "pmap_chain and the bases disagree after a fold"
bad=$(sqlite3 store/catalog.db "SELECT count(*) FROM pmap p WHERE refs <> (SELECT count(*) FROM artifact a WHERE a.pmap_id = p.id)
                                + (SELECT count(*) FROM pmap b WHERE b.base_id = p.id)")
[ "$bad" = 0 ] || die "$bad page map nodes have a wrong refs count after a fold"
rm -rf o8; fk restore s8 --out o8 >/dev/null; same o8/memory.bin g/07/memory.full

# Killed mid-migration: each migration is one transaction, so the
# version is 4, the latest or one between, never a half-applied one, and
# either way everything restores (and the next write finishes the job).
tags="s0 s1 s3 s4 s5 s6 s7"
for i in 1 2 3 4 5 6 7 8; do
    use_v4
    "$FORKCTL" --store "$TESTDIR/store" gc >/dev/null 2>&1 &
    pid=$!
    sleep "0.0$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    v=$(sqlite3 store/catalog.db "PRAGMA user_version")
    [ "$v" -ge 4 ] && [ "$v" -le "$latest" ] || die "killed migration left version $v"
    if [ "$v" -ge 5 ]; then    # 0005 applied: its tables are whole
        [ "$(sqlite3 store/catalog.db "SELECT count(*) FROM artifact WHERE pmap_id IS NULL")" = 0 ] ||
            die "version $v but artifacts without a page map"
    else
        [ "$(sqlite3 store/catalog.db "SELECT count(*) FROM sqlite_master WHERE name = 'pmap'")" = 0 ] ||
            die "version 4 but table pmap exists"
    fi
    fk gc >/dev/null 2>&1 || die "the write after a killed migration (version $v) failed"
    check_all "after a migration killed at version $v"
done
echo "migrate: version 4 -> $latest in place, restores byte-identical, views equal, index packed, killed migrations atomic"
