-- Example queries for `forkctl sql "..."` or `sqlite3 DIR/catalog.db`, on a
-- chain s00 <- s01 <- ... <- s05 (`forkgen`, ingested as in tests/cli/t_sql.sh).
-- One query a line, each under its comment; tests/cli/t_sql.sh runs them all.

-- Snapshots as a tree: depth, tag and parent, oldest first
SELECT d.depth, d.tag, p.tag AS parent FROM snapshot_depth d JOIN snapshot s ON s.id = d.id LEFT JOIN snapshot p ON p.id = s.parent_id ORDER BY s.created_ms, s.id;
-- The chain of s03: itself, its parent, ... up to its root
SELECT ancestor_tag, distance FROM lineage WHERE descendant_tag = 's03' ORDER BY distance;
-- Everything that descends from s01 (what `forkctl rmi --cascade s01` removes with it)
SELECT descendant_tag, distance FROM lineage WHERE ancestor_tag = 's01' AND distance > 0 ORDER BY distance, descendant_tag;
-- Sizes per snapshot: non-zero bytes, bytes shared with the parent, bytes no other snapshot holds
SELECT tag, parent_tag, logical_bytes, nonzero_bytes, shared_with_parent_bytes, unique_bytes, stored_bytes FROM snapshot_stats ORDER BY id;
-- Non-zero pages of each memory image
SELECT tag, count(*) AS nonzero_pages FROM snapshot_pages WHERE artifact = 'memory' GROUP BY snapshot_id ORDER BY snapshot_id;
-- How many memory pages differ between s01 and s02 (`forkctl diff s01 s02` lists them as byte ranges)
SELECT count(*) AS differing_pages FROM (SELECT pgno FROM snapshot_pages WHERE tag IN ('s01', 's02') AND artifact = 'memory' GROUP BY pgno HAVING count(*) = 1 OR min(page_id) <> max(page_id));
-- Where a page is used: put its hash (from `SELECT hex(hash) FROM page`) in place of HASH
SELECT tag, artifact, pgno FROM page_snapshots WHERE hash = x'HASH' ORDER BY snapshot_id, artifact, pgno;
-- The five most repeated pages (dedup at work)
SELECT hex(hash) AS hash, count(*) AS uses, count(DISTINCT snapshot_id) AS snapshots FROM page_snapshots GROUP BY page_id ORDER BY uses DESC, page_id LIMIT 5;
-- Chunk files with the most dead bytes (what gc compaction would reclaim)
SELECT chunk_id, used_bytes, live_bytes, dead_bytes, live_pages FROM chunk_usage ORDER BY dead_bytes DESC, chunk_id;
-- Snapshots taken by `forkctl branch`, longest pause first
SELECT tag, pause_ms, snapshot_ms, ingest_ms, diff_bytes FROM snapshot_stats WHERE pause_ms IS NOT NULL ORDER BY pause_ms DESC;
-- When each snapshot was taken (UTC)
SELECT tag, datetime(created_ms / 1000, 'unixepoch') AS created FROM snapshot ORDER BY created_ms, id;
