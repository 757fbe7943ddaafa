-- 0003_views: read-only views for people querying the catalog with
-- `forkctl sql` or plain `sqlite3 DIR/catalog.db`. No table changes.
--
-- Page maps are run-length encoded (run: pages pgno .. pgno+npages-1 hold
-- page ids page_id .. page_id+npages-1), so the views work on runs and
-- never expand them page by page unless a column needs single pages; the
-- page table (ids are its rowids) then serves as the list of ids in a
-- run. Bytes of pages [a, b) of an artifact of size S are
-- min(b*4096, S) - a*4096: a file's last page may be short. Pages are
-- stored in block records of up to 8 pages (page.off, page.len name the
-- record); a record is live while any of its pages is in the index, so
-- live bytes count each distinct (chunk_id, off) once.
--
--   lineage          ancestor/descendant pairs, distance 0 = itself.
--   snapshot_depth   id, tag, depth (0 for a root).
--   snapshot_pages   one row per non-zero page of every artifact. Cost is
--                    the number of pages: filter by snapshot and artifact.
--   page_snapshots   who references a page: query WHERE hash = x'...' or
--                    WHERE page_id = N (an index lookup, then one pass
--                    over the runs).
--   snapshot_stats   sizes per snapshot: logical, non-zero, shared with its
--                    parent, unique (pages no other snapshot references,
--                    counted as 4096 bytes each), stored, and the branch
--                    timings. unique_bytes is whole-store work (every run
--                    sorted twice), even with WHERE tag = ...; `forkctl
--                    info` computes one snapshot's numbers in C instead.
--   chunk_usage      per chunk file: committed bytes, bytes of pages still
--                    in the index (live), the rest (dead: reclaimed by
--                    compaction in gc), live page count.
--
-- Measured on a 512 MiB, 12-snapshot forkgen chain (24 artifacts, 234,000
-- runs, 96,000 pages; 2 cores): lineage, snapshot_depth 5 ms;
-- snapshot_pages 0.10 s in all (1 M rows), 13 ms for one memory file;
-- page_snapshots 25 ms by hash, 0.10 s in all; snapshot_stats 0.77 s
-- (forkctl info: 60 ms); chunk_usage 27 ms.

CREATE VIEW lineage AS
WITH RECURSIVE up(ancestor_id, descendant_id, distance) AS (
    SELECT id, id, 0 FROM snapshot
    UNION ALL
    SELECT s.parent_id, up.descendant_id, up.distance + 1
    FROM up JOIN snapshot s ON s.id = up.ancestor_id
    WHERE s.parent_id IS NOT NULL AND up.distance < 100000
)
SELECT up.ancestor_id, a.tag AS ancestor_tag, up.descendant_id, d.tag AS descendant_tag, up.distance
FROM up JOIN snapshot a ON a.id = up.ancestor_id JOIN snapshot d ON d.id = up.descendant_id;

CREATE VIEW snapshot_depth AS
WITH RECURSIVE down(id, depth) AS (
    SELECT id, 0 FROM snapshot WHERE parent_id IS NULL
    UNION ALL
    SELECT s.id, down.depth + 1 FROM down JOIN snapshot s ON s.parent_id = down.id
    WHERE down.depth < 100000
)
SELECT down.id, s.tag, down.depth FROM down JOIN snapshot s ON s.id = down.id;

CREATE VIEW snapshot_pages AS
SELECT s.id AS snapshot_id, s.tag, a.name AS artifact, r.pgno + (p.id - r.page_id) AS pgno, p.id AS page_id
FROM snapshot s
JOIN artifact a ON a.snapshot_id = s.id
JOIN run r ON r.artifact_id = a.id
JOIN page p ON p.id >= r.page_id AND p.id < r.page_id + r.npages;

CREATE VIEW page_snapshots AS
SELECT p.id AS page_id, p.hash, s.id AS snapshot_id, s.tag, a.name AS artifact,
       r.pgno + (p.id - r.page_id) AS pgno
FROM page p
JOIN run r ON r.page_id <= p.id AND r.page_id + r.npages > p.id
JOIN artifact a ON a.id = r.artifact_id
JOIN snapshot s ON s.id = a.snapshot_id;

CREATE VIEW snapshot_stats AS
WITH
logical(id, bytes) AS (
    SELECT snapshot_id, sum(size) FROM artifact GROUP BY snapshot_id
),
nonzero(id, bytes) AS (
    SELECT a.snapshot_id, sum(max(0, min((r.pgno + r.npages) * 4096, a.size) - r.pgno * 4096))
    FROM artifact a JOIN run r ON r.artifact_id = a.id
    GROUP BY a.snapshot_id
),
-- Child run c and parent run p (same artifact name) hold the same pages
-- where they overlap and lie on the same diagonal page_id - pgno. The
-- parent runs that can overlap c start at the last one at or before
-- c.pgno: a bounded range of the primary key, not a scan.
shared(id, bytes) AS (
    SELECT ca.snapshot_id,
           sum(max(0, min(min(c.pgno + c.npages, p.pgno + p.npages) * 4096, ca.size)
                      - max(c.pgno, p.pgno) * 4096))
    FROM snapshot s
    JOIN artifact ca ON ca.snapshot_id = s.id
    JOIN artifact pa ON pa.snapshot_id = s.parent_id AND pa.name = ca.name
    JOIN run c ON c.artifact_id = ca.id
    JOIN run p ON p.artifact_id = pa.id
         AND p.pgno >= coalesce((SELECT max(x.pgno) FROM run x
                                 WHERE x.artifact_id = pa.id AND x.pgno <= c.pgno), c.pgno)
         AND p.pgno < c.pgno + c.npages
    WHERE p.pgno + p.npages > c.pgno AND p.page_id - p.pgno = c.page_id - c.pgno
    GROUP BY ca.snapshot_id
),
-- Unique pages, by two sweeps over page-id intervals: first each
-- snapshot's runs are merged into disjoint intervals (a snapshot may name
-- a page twice), then the merged intervals of all snapshots are swept
-- together; where exactly one snapshot covers an id range, the running
-- sum of snapshot ids is that snapshot's id.
ev(sid, pos, d) AS (
    SELECT a.snapshot_id, r.page_id, 1 FROM run r JOIN artifact a ON a.id = r.artifact_id
    UNION ALL
    SELECT a.snapshot_id, r.page_id + r.npages, -1 FROM run r JOIN artifact a ON a.id = r.artifact_id
),
cover(sid, pos, depth) AS (
    SELECT sid, pos, sum(sum(d)) OVER (PARTITION BY sid ORDER BY pos ROWS UNBOUNDED PRECEDING)
    FROM ev GROUP BY sid, pos
),
edge(sid, pos, d) AS (
    SELECT sid, pos, CASE WHEN depth > 0 THEN 1 ELSE -1 END
    FROM (SELECT sid, pos, depth,
                 coalesce(lag(depth) OVER (PARTITION BY sid ORDER BY pos), 0) AS before
          FROM cover)
    WHERE (depth > 0) <> (before > 0)
),
sweep(pos, n, owner, next) AS (
    SELECT pos, sum(sum(d)) OVER w, sum(sum(d * sid)) OVER w, lead(pos) OVER (ORDER BY pos)
    FROM edge GROUP BY pos
    WINDOW w AS (ORDER BY pos ROWS UNBOUNDED PRECEDING)
),
uniq(id, pages) AS (
    SELECT owner, sum(next - pos) FROM sweep WHERE n = 1 GROUP BY owner
)
SELECT s.id, s.tag, pt.tag AS parent_tag,
       coalesce(logical.bytes, 0) AS logical_bytes,
       coalesce(nonzero.bytes, 0) AS nonzero_bytes,
       CASE WHEN s.parent_id IS NULL THEN 0 ELSE coalesce(shared.bytes, 0) END AS shared_with_parent_bytes,
       coalesce(uniq.pages, 0) * 4096 AS unique_bytes,
       s.stored_bytes, s.pause_ms, s.snapshot_ms, s.ingest_ms, s.diff_bytes
FROM snapshot s
LEFT JOIN snapshot pt ON pt.id = s.parent_id
LEFT JOIN logical ON logical.id = s.id
LEFT JOIN nonzero ON nonzero.id = s.id
LEFT JOIN shared ON shared.id = s.id
LEFT JOIN uniq ON uniq.id = s.id;

CREATE VIEW chunk_usage AS
SELECT c.id AS chunk_id, c.used AS used_bytes,
       coalesce(u.live, 0) AS live_bytes,
       max(0, c.used - 64 - coalesce(u.live, 0)) AS dead_bytes,  -- 64: the file header
       coalesce(u.pages, 0) AS live_pages
FROM chunk c
LEFT JOIN (SELECT chunk_id, sum(len) AS live, sum(n) AS pages
           FROM (SELECT chunk_id, off, max(len) AS len, count(*) AS n FROM page GROUP BY chunk_id, off)
           GROUP BY chunk_id) u
     ON u.chunk_id = c.id;
