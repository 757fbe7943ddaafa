-- 0005_pmap: page maps as shared deltas on a skip chain (src/map.c).
--
-- Until 0004 every artifact had its complete map in table run, so a
-- Diff copied its parent's whole map: 2000 Diffs of a 256 MiB guest
-- with a fragmented image made a 2 GB catalog for 50 MB of pages. Now a
-- map is a node of pmap with its runs in pmap_run: complete (base_id
-- NULL) or a delta on a base node (runs with page_id 0 mean zeros). A
-- Diff of seq n is a delta on the ancestor of seq n - lowbit(n) holding
-- the changes since it; reading any map visits at most log2(n) + 1
-- nodes. refs counts the artifacts naming a node and the nodes built on
-- it, kept here by triggers; map_sweep deletes nodes at refs 0.
--
-- The migration makes every existing artifact's map a complete node with
-- the same runs (node id = artifact id), in this one transaction: a
-- crash leaves version 4 or version 5, never between. Views that read
-- runs now read artifact_runs, the complete maps computed from the
-- nodes; a view named run keeps queries on the old table working.

CREATE TABLE pmap (
    id       INTEGER PRIMARY KEY,
    base_id  INTEGER REFERENCES pmap(id),          -- NULL: a complete map
    seq      INTEGER NOT NULL CHECK (seq >= 0),    -- 0 complete, else Diffs on its line
    npages   INTEGER NOT NULL,                     -- pages of the artifact
    pages    INTEGER NOT NULL,                     -- non-zero pages of the whole map
    refs     INTEGER NOT NULL DEFAULT 0            -- artifacts + nodes built on it
);
CREATE INDEX pmap_base ON pmap(base_id);
CREATE INDEX pmap_unused ON pmap(id) WHERE refs <= 0;

-- Runs are at most 4096 pages long (src/map.c MAP_RUN_MAX).
CREATE TABLE pmap_run (
    pmap_id  INTEGER NOT NULL REFERENCES pmap(id) ON DELETE CASCADE,
    pgno     INTEGER NOT NULL,
    npages   INTEGER NOT NULL CHECK (npages > 0),
    page_id  INTEGER NOT NULL,                     -- 0: zero pages (a delta's)
    PRIMARY KEY (pmap_id, pgno)
) WITHOUT ROWID;

INSERT INTO pmap(id, base_id, seq, npages, pages, refs)
SELECT a.id, NULL, 0, (a.size + 4095) / 4096,
       (SELECT coalesce(sum(r.npages), 0) FROM run r WHERE r.artifact_id = a.id), 0
FROM artifact a;
-- Runs of at most 4096 pages (map.c MAP_RUN_MAX): the runs that name a
-- page id then lie in an index range of that width.
WITH RECURSIVE cut(artifact_id, pgno, npages, page_id, rest) AS (
    SELECT artifact_id, pgno, min(npages, 4096), page_id, npages - min(npages, 4096) FROM run
    UNION ALL
    SELECT artifact_id, pgno + 4096, min(rest, 4096), page_id + 4096, rest - min(rest, 4096)
    FROM cut WHERE rest > 0
)
INSERT INTO pmap_run(pmap_id, pgno, npages, page_id)
SELECT artifact_id, pgno, npages, page_id FROM cut;

ALTER TABLE artifact ADD COLUMN pmap_id INTEGER REFERENCES pmap(id);
UPDATE artifact SET pmap_id = id;
UPDATE pmap SET refs = 1;
CREATE INDEX artifact_pmap ON artifact(pmap_id);

CREATE TRIGGER artifact_ref AFTER INSERT ON artifact WHEN NEW.pmap_id IS NOT NULL
BEGIN UPDATE pmap SET refs = refs + 1 WHERE id = NEW.pmap_id; END;
CREATE TRIGGER artifact_unref AFTER DELETE ON artifact WHEN OLD.pmap_id IS NOT NULL
BEGIN UPDATE pmap SET refs = refs - 1 WHERE id = OLD.pmap_id; END;
CREATE TRIGGER artifact_reref AFTER UPDATE OF pmap_id ON artifact
BEGIN
    UPDATE pmap SET refs = refs - 1 WHERE id = OLD.pmap_id;
    UPDATE pmap SET refs = refs + 1 WHERE id = NEW.pmap_id;
END;
CREATE TRIGGER pmap_ref AFTER INSERT ON pmap WHEN NEW.base_id IS NOT NULL
BEGIN UPDATE pmap SET refs = refs + 1 WHERE id = NEW.base_id; END;
CREATE TRIGGER pmap_unref AFTER DELETE ON pmap WHEN OLD.base_id IS NOT NULL
BEGIN UPDATE pmap SET refs = refs - 1 WHERE id = OLD.base_id; END;
CREATE TRIGGER pmap_rebase AFTER UPDATE OF base_id ON pmap
BEGIN
    UPDATE pmap SET refs = refs - 1 WHERE id = OLD.base_id;
    UPDATE pmap SET refs = refs + 1 WHERE id = NEW.base_id;
END;

DROP VIEW snapshot_pages;
DROP VIEW page_snapshots;
DROP VIEW snapshot_stats;
DROP TABLE run;

-- The complete map of every artifact, as runs (not always maximal: a run
-- may be cut where a lower node's run ends). Elementary segments between
-- the run boundaries of an artifact's chain; each is decided by the
-- nearest node with a run covering it (one primary-key seek per node).
-- Cost: the runs of the chains involved; filter by artifact_id.
CREATE VIEW artifact_runs AS
WITH RECURSIVE chain(artifact_id, pmap_id, level) AS (
    SELECT id, pmap_id, 0 FROM artifact
    UNION ALL
    SELECT c.artifact_id, p.base_id, c.level + 1 FROM chain c JOIN pmap p ON p.id = c.pmap_id
    WHERE p.base_id IS NOT NULL AND c.level < 64
),
bounds(artifact_id, pos) AS (
    SELECT c.artifact_id, r.pgno FROM chain c JOIN pmap_run r ON r.pmap_id = c.pmap_id
    UNION
    SELECT c.artifact_id, r.pgno + r.npages FROM chain c JOIN pmap_run r ON r.pmap_id = c.pmap_id
),
seg(artifact_id, pos, next) AS (
    SELECT artifact_id, pos, lead(pos) OVER (PARTITION BY artifact_id ORDER BY pos) FROM bounds
),
hit(artifact_id, pos, next, level, pgno, page_id) AS (
    SELECT s.artifact_id, s.pos, s.next, c.level, r.pgno, r.page_id
    FROM seg s
    JOIN chain c ON c.artifact_id = s.artifact_id
    JOIN pmap_run r ON r.pmap_id = c.pmap_id
         AND r.pgno = (SELECT max(x.pgno) FROM pmap_run x WHERE x.pmap_id = c.pmap_id AND x.pgno <= s.pos)
    WHERE s.next IS NOT NULL AND r.pgno + r.npages > s.pos
),
best(artifact_id, pos, next, pgno, page_id, level) AS (
    SELECT artifact_id, pos, next, pgno, page_id, min(level) FROM hit GROUP BY artifact_id, pos
)
SELECT artifact_id, pos AS pgno, next - pos AS npages, page_id + (pos - pgno) AS page_id
FROM best WHERE page_id <> 0;

CREATE VIEW run AS SELECT artifact_id, pgno, npages, page_id FROM artifact_runs;

CREATE VIEW snapshot_pages AS
SELECT s.id AS snapshot_id, s.tag, a.name AS artifact, r.pgno + (p.id - r.page_id) AS pgno, p.id AS page_id
FROM snapshot s
JOIN artifact a ON a.snapshot_id = s.id
JOIN artifact_runs r ON r.artifact_id = a.id
JOIN page p ON p.id >= r.page_id AND p.id < r.page_id + r.npages;

CREATE VIEW page_snapshots AS
WITH ar AS MATERIALIZED (SELECT * FROM artifact_runs)
SELECT p.id AS page_id, p.hash, s.id AS snapshot_id, s.tag, a.name AS artifact,
       r.pgno + (p.id - r.page_id) AS pgno
FROM page p
JOIN ar r ON r.page_id <= p.id AND r.page_id + r.npages > p.id
JOIN artifact a ON a.id = r.artifact_id
JOIN snapshot s ON s.id = a.snapshot_id;

CREATE VIEW snapshot_stats AS
WITH
ar AS MATERIALIZED (SELECT * FROM artifact_runs),
logical(id, bytes) AS (
    SELECT snapshot_id, sum(size) FROM artifact GROUP BY snapshot_id
),
nonzero(id, bytes) AS (
    SELECT a.snapshot_id, sum(max(0, min((r.pgno + r.npages) * 4096, a.size) - r.pgno * 4096))
    FROM artifact a JOIN ar r ON r.artifact_id = a.id
    GROUP BY a.snapshot_id
),
-- Child run c and parent run p (same artifact name) hold the same pages
-- where they overlap and lie on the same diagonal page_id - pgno.
shared(id, bytes) AS (
    SELECT ca.snapshot_id,
           sum(max(0, min(min(c.pgno + c.npages, p.pgno + p.npages) * 4096, ca.size)
                      - max(c.pgno, p.pgno) * 4096))
    FROM snapshot s
    JOIN artifact ca ON ca.snapshot_id = s.id
    JOIN artifact pa ON pa.snapshot_id = s.parent_id AND pa.name = ca.name
    JOIN ar c ON c.artifact_id = ca.id
    JOIN ar p ON p.artifact_id = pa.id AND p.pgno < c.pgno + c.npages AND p.pgno + p.npages > c.pgno
    WHERE p.page_id - p.pgno = c.page_id - c.pgno
    GROUP BY ca.snapshot_id
),
-- Unique pages, by two sweeps over page-id intervals: first each
-- snapshot's runs are merged into disjoint intervals (a snapshot may name
-- a page twice), then the merged intervals of all snapshots are swept
-- together; where exactly one snapshot covers an id range, the running
-- sum of snapshot ids is that snapshot's id.
ev(sid, pos, d) AS (
    SELECT a.snapshot_id, r.page_id, 1 FROM ar r JOIN artifact a ON a.id = r.artifact_id
    UNION ALL
    SELECT a.snapshot_id, r.page_id + r.npages, -1 FROM ar r JOIN artifact a ON a.id = r.artifact_id
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
