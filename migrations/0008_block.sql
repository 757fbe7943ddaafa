-- 0008_block: a page index of about 38 bytes per distinct page (was 65).
--
-- Until 0007 every page row held its block's location (chunk_id, off,
-- len, slot) and the hash had a UNIQUE index: 65 bytes per page, and a
-- batch of new pages inserted into a random 16-byte-key B-tree of tens
-- of millions of entries dirtied nearly every leaf of it. Now
--
--   page      (id, hash, rlen): one row per page, ids in the order pages
--             were stored, so it grows by appending (25 bytes a page).
--   block     one row per run of consecutive page ids stored in
--             consecutive slots of one block record: page id+k is slot
--             slot0+k of the record at off (len bytes) in chunk chunk_id,
--             for 0 <= k < n (3 bytes a page). A page's block is the row
--             with the largest id <= the page's id.
--   page_new  hash -> id for pages not yet in page_idx: the pages stored
--             since the last gc (a small B-tree, inserted into cheaply).
--   page_idx  hash -> id for everything else, packed by gc (src/pindex.c):
--             bucket = the first meta.idx_bits bits of the hash; ents =
--             sorted 9-byte entries (the next 32 bits of the hash, then
--             the page id, 5 bytes little-endian). An entry is a hint:
--             the lookup confirms it against page.hash.
--
-- Existing stores: every page goes to page_new (gc packs it into
-- page_idx later), every block record becomes one or more block rows
-- (a record that compaction filled with pages of non-consecutive ids
-- becomes one row per run). One transaction: a crash leaves version 7
-- or version 8. The views read page by id and hash only, and keep
-- working on the new table (legacy_alter_table keeps them as written
-- across the rename); chunk_usage reads block.


CREATE TABLE block (
    id       INTEGER PRIMARY KEY,                   -- page id of its first page
    chunk_id INTEGER NOT NULL REFERENCES chunk(id),
    off      INTEGER NOT NULL,                      -- the block record's offset
    len      INTEGER NOT NULL,                      -- that record's bytes
    n        INTEGER NOT NULL,                      -- pages id .. id+n-1 (1-8)
    slot0    INTEGER NOT NULL DEFAULT 0             -- slot of page id in the record
);

-- Runs of consecutive ids in consecutive slots of one record.
INSERT INTO block(id, chunk_id, off, len, n, slot0)
WITH o AS (
    SELECT id, chunk_id, off, len, slot,
           CASE WHEN lag(id) OVER w = id - 1 AND lag(chunk_id) OVER w = chunk_id
                 AND lag(off) OVER w = off AND lag(slot) OVER w = slot - 1 THEN 0 ELSE 1 END AS brk
    FROM page WINDOW w AS (ORDER BY id)
),
g AS (SELECT *, sum(brk) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS grp FROM o)
SELECT min(id), min(chunk_id), min(off), max(len), count(*), min(slot) FROM g GROUP BY grp;

CREATE TABLE page_new (
    hash     BLOB PRIMARY KEY,
    id       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO page_new(hash, id) SELECT hash, id FROM page ORDER BY hash;

CREATE TABLE page_idx (
    bucket   INTEGER PRIMARY KEY,
    ents     BLOB NOT NULL
);
INSERT OR REPLACE INTO meta(key, value) VALUES ('idx_bits', 12), ('idx_count', 0);

PRAGMA legacy_alter_table = ON;
CREATE TABLE page_v8 (
    id       INTEGER PRIMARY KEY,
    hash     BLOB NOT NULL,
    rlen     INTEGER                                -- page bytes; NULL = 4096
);
INSERT INTO page_v8(id, hash, rlen) SELECT id, hash, rlen FROM page ORDER BY id;
DROP TABLE page;
ALTER TABLE page_v8 RENAME TO page;
PRAGMA legacy_alter_table = OFF;

-- Where each page lives, as the old page table had it (for queries).
CREATE VIEW page_place AS
SELECT p.id, b.chunk_id, b.off, b.len, b.slot0 + (p.id - b.id) AS slot,
       coalesce(p.rlen, 4096) AS rlen, p.hash, b.id AS block_id, b.n AS block_n
FROM page p
LEFT JOIN block b ON b.id = (SELECT max(x.id) FROM block x WHERE x.id <= p.id);

DROP VIEW chunk_usage;
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
