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
    diff_bytes   INTEGER
);
CREATE INDEX snapshot_parent ON snapshot(parent_id);

-- The named files of a snapshot: memory, vmstate, rootfs, or any name.
CREATE TABLE artifact (
    id          INTEGER PRIMARY KEY,
    snapshot_id INTEGER NOT NULL REFERENCES snapshot(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,                   -- logical bytes
    UNIQUE (snapshot_id, name)
);

-- Chunk files: DIR/chunks/<id as 8 hex digits>.chunk, preallocated to cap
-- bytes; used is the end of the committed records.
CREATE TABLE chunk (
    id          INTEGER PRIMARY KEY,
    cap         INTEGER NOT NULL,
    used        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);

-- The page index: every distinct non-zero page, once. Pages are stored
-- in blocks of up to 8 (one zstd frame); a page is page `slot` of the
-- block record at `off` in chunk `chunk_id`, `len` bytes long.
CREATE TABLE page (
    id          INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    chunk_id    INTEGER NOT NULL REFERENCES chunk(id),
    off         INTEGER NOT NULL,                   -- its block record's offset
    len         INTEGER NOT NULL,                   -- that record's bytes
    slot        INTEGER NOT NULL,                   -- page of the block (0-7)
    rlen        INTEGER                             -- page bytes; NULL = 4096
);

-- Page maps, run-length encoded: pages pgno .. pgno+npages-1 of the
-- artifact hold pages page_id .. page_id+npages-1. A page number that no
-- run covers is all zeros. Every artifact's map is complete (a diff's map
-- includes what it inherited), so a snapshot never depends on another.
CREATE TABLE run (
    artifact_id INTEGER NOT NULL REFERENCES artifact(id) ON DELETE CASCADE,
    pgno        INTEGER NOT NULL,
    npages      INTEGER NOT NULL CHECK (npages > 0),
    page_id     INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, pgno)
) WITHOUT ROWID;
