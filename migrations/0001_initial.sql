-- 0001_initial: the catalog's tables.
--
-- Lineage (snapshot, artifact), the page index (page: hash -> bytes in a
-- chunk file), the page maps (run) and the chunk files themselves.
-- A page map is materialized per artifact: every artifact lists all its
-- non-zero pages, so restore reads one map whatever the chain depth and
-- removing a snapshot never touches its children. Maps are run-length
-- encoded: run (pgno, npages, page_id) says pages pgno .. pgno+npages-1
-- hold pages page_id .. page_id+npages-1. A page number no run covers is
-- a zero page (a hole on restore). Pages stored by one ingest get
-- consecutive ids in file order, so a fresh image costs few runs.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;

CREATE TABLE snapshot (
    id          INTEGER PRIMARY KEY,
    tag         TEXT NOT NULL UNIQUE,
    parent_id   INTEGER REFERENCES snapshot(id),
    created_ms  INTEGER NOT NULL,             -- unix time, milliseconds
    state       TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready')),
    stored_bytes INTEGER NOT NULL DEFAULT 0,  -- compressed bytes it added
    new_pages   INTEGER NOT NULL DEFAULT 0    -- pages it added to the index
);
CREATE INDEX snapshot_parent ON snapshot(parent_id);

CREATE TABLE artifact (
    id          INTEGER PRIMARY KEY,
    snapshot_id INTEGER NOT NULL REFERENCES snapshot(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,             -- logical bytes
    UNIQUE (snapshot_id, name)
);

CREATE TABLE chunk (
    id          INTEGER PRIMARY KEY,          -- file chunks/<id as %08x>.chunk
    cap         INTEGER NOT NULL,             -- bytes preallocated
    used        INTEGER NOT NULL,             -- end of the committed records
    created_ms  INTEGER NOT NULL
);

CREATE TABLE page (
    id          INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,         -- XXH3-128, 16 bytes big-endian
    chunk_id    INTEGER NOT NULL REFERENCES chunk(id),
    off         INTEGER NOT NULL,             -- offset of its block record in the chunk
    len         INTEGER NOT NULL,             -- bytes of that block record
    slot        INTEGER NOT NULL,             -- which page of the block (0-7)
    rlen        INTEGER                       -- page bytes; NULL means 4096
);

CREATE TABLE run (
    artifact_id INTEGER NOT NULL REFERENCES artifact(id) ON DELETE CASCADE,
    pgno        INTEGER NOT NULL,
    npages      INTEGER NOT NULL CHECK (npages > 0),
    page_id     INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, pgno)
) WITHOUT ROWID;
