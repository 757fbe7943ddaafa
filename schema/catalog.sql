-- schema/catalog.sql: the current catalog schema of forkstore, in one file.
--
-- This is what migrations/0001..NNNN produce, written out to be read on
-- its own (the store is built from migrations/, and `make check` verifies
-- that both agree). Open a store's catalog with `sqlite3 DIR/catalog.db`.
--
-- Sizes are bytes; times are unix milliseconds; hashes are XXH3-128 as 16
-- bytes, big-endian (`hex(hash)` prints them).

-- Store-wide settings and counters: chunk_size, gc_generation (bumped by
-- every gc that deletes pages), next_page_id (page ids are never reused),
-- created_ms.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;

-- One row per snapshot. A snapshot row exists only once the snapshot is
-- complete (it is inserted by the transaction that commits the ingest).
CREATE TABLE snapshot (
    id           INTEGER PRIMARY KEY,
    tag          TEXT NOT NULL UNIQUE,
    parent_id    INTEGER REFERENCES snapshot(id),   -- NULL for a root
    created_ms   INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready')),
    stored_bytes INTEGER NOT NULL DEFAULT 0,        -- chunk bytes it added
    new_pages    INTEGER NOT NULL DEFAULT 0,        -- pages it added
    pause_ms     INTEGER,                           -- forkctl branch timings,
    snapshot_ms  INTEGER,                           -- NULL when ingested
    ingest_ms    INTEGER,                           -- from files
    diff_bytes   INTEGER,
    fc_version   TEXT,                              -- GET /version of the VMM that took it
    format_version TEXT                             -- snapshot format in its vmstate header
);
CREATE INDEX snapshot_parent ON snapshot(parent_id);

-- The named files of a snapshot: memory, vmstate, rootfs, or any name.
CREATE TABLE artifact (
    id          INTEGER PRIMARY KEY,
    snapshot_id INTEGER NOT NULL REFERENCES snapshot(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,                   -- logical bytes
    pmap_id     INTEGER REFERENCES pmap(id),        -- its page map (0005)
    UNIQUE (snapshot_id, name)
);
CREATE INDEX artifact_pmap ON artifact(pmap_id);

-- Chunk files: DIR/chunks/<id as 8 hex digits>.chunk, preallocated to cap
-- bytes; used is the end of the committed records.
CREATE TABLE chunk (
    id          INTEGER PRIMARY KEY,
    cap         INTEGER NOT NULL,
    used        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);

-- The page index (migrations/0008_block.sql, src/engine/pindex.c): every distinct
-- non-zero page, once, ids in the order pages were stored. Pages are
-- stored in block records of up to 8 (one zstd frame); a block row is a
-- run of consecutive ids in consecutive slots of one record: page id+k is
-- slot slot0+k of the record at off (len bytes) of chunk chunk_id. A
-- page's block row is the one with the largest id <= its id.
CREATE TABLE page (
    id       INTEGER PRIMARY KEY,
    hash     BLOB NOT NULL,
    rlen     INTEGER                                -- page bytes; NULL = 4096
);
CREATE TABLE block (
    id       INTEGER PRIMARY KEY,                   -- page id of its first page
    chunk_id INTEGER NOT NULL REFERENCES chunk(id),
    off      INTEGER NOT NULL,                      -- the block record's offset
    len      INTEGER NOT NULL,                      -- that record's bytes
    n        INTEGER NOT NULL,                      -- pages id .. id+n-1 (1-8)
    slot0    INTEGER NOT NULL DEFAULT 0             -- slot of page id in the record
);
-- hash -> id: page_new for the pages stored since the last gc, page_idx
-- for the rest, packed by gc into buckets of sorted 9-byte entries (see
-- src/engine/pindex.c for the layout); meta idx_bits and idx_count describe it.
CREATE TABLE page_new (
    hash     BLOB PRIMARY KEY,
    id       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE page_idx (
    bucket   INTEGER PRIMARY KEY,
    ents     BLOB NOT NULL
);

-- Page maps (migrations/0005_pmap.sql, src/engine/map.c): a node of pmap with
-- its runs in pmap_run, complete (base_id NULL) or a delta on a base
-- node (runs with page_id 0 mean zeros). Pages pgno .. pgno+npages-1 hold
-- page ids page_id .. page_id+npages-1; a page number that no run of the
-- chain covers is all zeros. A Diff of seq n is a delta on the ancestor
-- of seq n - lowbit(n): reading any map visits <= log2(n) + 1 nodes.
-- refs counts artifacts naming a node and nodes built on it (triggers).
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

-- Runs are at most 4096 pages long (src/engine/map.c MAP_RUN_MAX).
CREATE TABLE pmap_run (
    pmap_id  INTEGER NOT NULL REFERENCES pmap(id) ON DELETE CASCADE,
    pgno     INTEGER NOT NULL,
    npages   INTEGER NOT NULL CHECK (npages > 0),
    page_id  INTEGER NOT NULL,                     -- 0: zero pages (a delta's)
    PRIMARY KEY (pmap_id, pgno)
) WITHOUT ROWID;

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

-- Per VM branched by forkctl (migrations/0004_vm_chain.sql): its last
-- snapshot and how far it got. state 'stored': head_id is the VM's last
-- snapshot, Diffs on it are correct; 'creating': a snapshot/create with
-- unknown outcome, only Full is safe; 'staged': created into staging but
-- not ingested (pending_*), `forkctl branch --resume` finishes it.
-- vm_key: "vm:<--vm-id>" or "fc:<instance id>@<api socket>".
CREATE TABLE vm_head (
    vm_key            TEXT PRIMARY KEY,
    api_sock          TEXT,
    state             TEXT NOT NULL CHECK (state IN ('stored', 'creating', 'staged')),
    head_id           INTEGER REFERENCES snapshot(id) ON DELETE SET NULL,
    pending_tag       TEXT,
    pending_parent_id INTEGER REFERENCES snapshot(id) ON DELETE SET NULL,
    pending_diff      INTEGER,
    staging           TEXT,
    fc_version        TEXT,
    format_version    TEXT,
    pause_ms          INTEGER,
    snapshot_ms       INTEGER,
    diff_bytes        INTEGER,
    updated_ms        INTEGER NOT NULL
) WITHOUT ROWID;

-- Remotes (migrations/0007_remote.sql): S3-compatible buckets this store
-- pushes to and pulls from. No credentials: those come from the
-- environment or ~/.aws/credentials at each push and pull. An encrypted
-- remote names its key file, never the key (0009_remote_encrypt.sql).
CREATE TABLE remote (
    name       TEXT PRIMARY KEY,
    bucket     TEXT NOT NULL,
    prefix     TEXT NOT NULL,      -- '' or without leading/trailing '/'
    endpoint   TEXT NOT NULL,      -- http[s]://HOST[:PORT], path-style
    region     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    key_file   TEXT,               -- 0009: NULL, or the absolute path of
    key_id     TEXT                -- the key file and its 16-hex key id
) WITHOUT ROWID;

-- Views, for reading the catalog (migrations/0003_views.sql says what each
-- costs). They work on runs, never expanding a map page by page unless a
-- column needs single pages. Bytes of pages [a, b) of a file of size S are
-- min(b*4096, S) - a*4096; live bytes count each block record
-- (distinct chunk_id, off) once.
--   lineage          ancestor/descendant pairs, distance 0 = itself
--   snapshot_depth   id, tag, depth (0 for a root)
--   artifact_pages   every artifact's non-zero pages (artifact_runs, run:
--                    the same as one-page runs)
--   snapshot_pages   one row per non-zero page (filter by snapshot)
--   page_snapshots   who uses a page (WHERE hash = x'...')
--   snapshot_stats   per snapshot: logical, non-zero, shared with parent,
--                    unique and stored bytes, branch timings
--   chunk_usage      per chunk file: used, live and dead bytes, live pages

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

CREATE VIEW chunk_usage AS
SELECT c.id AS chunk_id, c.used AS used_bytes,
       coalesce(u.live, 0) AS live_bytes,
       max(0, c.used - 64 - coalesce(u.live, 0)) AS dead_bytes,  -- 64: the file header
       coalesce(u.pages, 0) AS live_pages
FROM chunk c
LEFT JOIN (SELECT chunk_id, sum(len) AS live, sum(n) AS pages
           FROM (SELECT chunk_id, off, max(len) AS len, sum(n) AS n
                 FROM (SELECT b.chunk_id, b.off, b.len,
                              (SELECT count(*) FROM page p WHERE p.id >= b.id AND p.id < b.id + b.n) AS n
                       FROM block b)
                 GROUP BY chunk_id, off HAVING sum(n) > 0)
           GROUP BY chunk_id) u
     ON u.chunk_id = c.id;

-- Where each page lives, as the old page table had it (for queries).
CREATE VIEW page_place AS
SELECT p.id, b.chunk_id, b.off, b.len, b.slot0 + (p.id - b.id) AS slot,
       coalesce(p.rlen, 4096) AS rlen, p.hash, b.id AS block_id, b.n AS block_n
FROM page p
LEFT JOIN block b ON b.id = (SELECT max(x.id) FROM block x WHERE x.id <= p.id);

-- Lazy restore (migrations/0006_lease.sql): page-server leases, which gc
-- honours even after an rmi, the recorded working sets and the figures of
-- each snapshot's last lazy restore. See that migration for the rules.
CREATE TABLE lease (
    id          INTEGER PRIMARY KEY,
    snapshot_id INTEGER NOT NULL,
    tag         TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    boot_id     TEXT NOT NULL,
    start_time  INTEGER NOT NULL,                    -- /proc/PID/stat field 22
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);

CREATE TABLE lease_run (
    lease_id    INTEGER NOT NULL REFERENCES lease(id) ON DELETE CASCADE,
    pgno        INTEGER NOT NULL,
    npages      INTEGER NOT NULL CHECK (npages > 0),
    page_id     INTEGER NOT NULL,
    PRIMARY KEY (lease_id, pgno)
) WITHOUT ROWID;

CREATE TABLE working_set (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshot(id) ON DELETE CASCADE,
    npages      INTEGER NOT NULL,
    pages       BLOB NOT NULL,
    recorded_ms INTEGER NOT NULL
);

CREATE TABLE lazy_restore (
    snapshot_id    INTEGER PRIMARY KEY REFERENCES snapshot(id) ON DELETE CASCADE,
    finished_ms    INTEGER NOT NULL,
    vms            INTEGER NOT NULL,
    faults         INTEGER NOT NULL,
    pages_demand   INTEGER NOT NULL,
    pages_prefetch INTEGER NOT NULL,
    pages_zero     INTEGER NOT NULL,
    bytes_decoded  INTEGER NOT NULL,
    fault_p50_us   REAL,
    fault_p99_us   REAL
);
