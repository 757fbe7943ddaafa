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
-- pmap_chain lists each node's chain, for the views.
--
-- The migration makes every existing artifact's map a complete node with
-- the same runs (node id = artifact id), in this one transaction: a
-- crash leaves version 4 or version 5, never between. Views that read
-- runs now read artifact_pages, the complete maps computed from the
-- nodes; artifact_runs and a view named run keep queries on the old
-- table working.

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

-- Each node's chain, written with the node: (node, 0, node), then its
-- base at level 1, the base's base at 2, ... (a fold removes the folded
-- node from the chains through it). The views join it instead of walking
-- bases recursively, so that a WHERE on a snapshot reaches the runs.
CREATE TABLE pmap_chain (
    pmap_id  INTEGER NOT NULL REFERENCES pmap(id) ON DELETE CASCADE,
    level    INTEGER NOT NULL,
    node_id  INTEGER NOT NULL REFERENCES pmap(id),
    PRIMARY KEY (pmap_id, level)
) WITHOUT ROWID;
CREATE INDEX pmap_chain_node ON pmap_chain(node_id);
INSERT INTO pmap_chain(pmap_id, level, node_id) SELECT id, 0, id FROM pmap;

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


-- Every non-zero page of every artifact: a page of a node's run is the
-- artifact's where no node nearer in its chain has a run over that page
-- number (one primary-key seek per nearer node). Plain joins, so a WHERE
-- on the artifact or snapshot is applied before the pages are read.
CREATE VIEW artifact_pages AS
SELECT a.id AS artifact_id, r.pgno + (p.id - r.page_id) AS pgno, p.id AS page_id
FROM artifact a
JOIN pmap_chain c ON c.pmap_id = a.pmap_id
JOIN pmap_run r ON r.pmap_id = c.node_id AND r.page_id > 0
JOIN page p ON p.id >= r.page_id AND p.id < r.page_id + r.npages
WHERE NOT EXISTS (
    SELECT 1 FROM pmap_chain c2
    JOIN pmap_run r2 ON r2.pmap_id = c2.node_id
         AND r2.pgno = (SELECT max(x.pgno) FROM pmap_run x
                        WHERE x.pmap_id = c2.node_id AND x.pgno <= r.pgno + (p.id - r.page_id))
    WHERE c2.pmap_id = a.pmap_id AND c2.level < c.level
      AND r2.pgno + r2.npages > r.pgno + (p.id - r.page_id));

-- The complete maps as runs of one page (what table run held, not
-- merged); run is the same under its old name.
CREATE VIEW artifact_runs AS
SELECT artifact_id, pgno, 1 AS npages, page_id FROM artifact_pages;

CREATE VIEW run AS SELECT artifact_id, pgno, npages, page_id FROM artifact_runs;

CREATE VIEW snapshot_pages AS
SELECT s.id AS snapshot_id, s.tag, a.name AS artifact, ap.pgno, ap.page_id
FROM snapshot s
JOIN artifact a ON a.snapshot_id = s.id
JOIN artifact_pages ap ON ap.artifact_id = a.id;

CREATE VIEW page_snapshots AS
SELECT p.id AS page_id, p.hash, s.id AS snapshot_id, s.tag, a.name AS artifact,
       r.pgno + (p.id - r.page_id) AS pgno
FROM page p
JOIN pmap_run r ON r.page_id > 0 AND r.page_id <= p.id AND r.page_id + r.npages > p.id
JOIN pmap_chain c ON c.node_id = r.pmap_id
JOIN artifact a ON a.pmap_id = c.pmap_id
JOIN snapshot s ON s.id = a.snapshot_id
WHERE NOT EXISTS (
    SELECT 1 FROM pmap_chain c2
    JOIN pmap_run r2 ON r2.pmap_id = c2.node_id
         AND r2.pgno = (SELECT max(x.pgno) FROM pmap_run x
                        WHERE x.pmap_id = c2.node_id AND x.pgno <= r.pgno + (p.id - r.page_id))
    WHERE c2.pmap_id = c.pmap_id AND c2.level < c.level
      AND r2.pgno + r2.npages > r.pgno + (p.id - r.page_id));

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
-- The same page at the same page number of the parent's same-named file.
shared(id, bytes) AS (
    SELECT ca.snapshot_id, sum(min((c.pgno + 1) * 4096, ca.size) - c.pgno * 4096)
    FROM snapshot s
    JOIN artifact ca ON ca.snapshot_id = s.id
    JOIN artifact pa ON pa.snapshot_id = s.parent_id AND pa.name = ca.name
    JOIN ar c ON c.artifact_id = ca.id
    JOIN ar p ON p.artifact_id = pa.id AND p.pgno = c.pgno AND p.page_id = c.page_id
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
