/*
** pindex.h: the page index, hash -> page id (see pindex.c).
*/
#ifndef FKS_PINDEX_H
#define FKS_PINDEX_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define PIDX_BITS_MIN 12           /* buckets: at least 2^12 */
#define PIDX_BITS_MAX 32
#define PIDX_FILL 1200             /* gc adds a bit when buckets average more */
#define PIDX_ENT 9                 /* bytes per packed entry */

typedef struct pidx pidx;

/* Prepares the lookups on db; pidx_begin must follow each BEGIN. */
int pidx_open(pidx **out, sqlite3 *db);
void pidx_close(pidx *x);
/* Reads the packing parameters for the transaction just begun; pidx_end
** must come before that transaction ends (it closes the open bucket). */
int pidx_begin(pidx *x);
void pidx_end(pidx *x);
/* *id = the page with this hash, 0 if none. */
int pidx_find(pidx *x, const uint8_t hash[16], int64_t *id);
/* One-shot lookups on db, each with its own page-index handle and, outside
** a transaction, its own read transaction (the tiers as one snapshot):
** pidx_lookup sets the page id of a hash, FKS_ENOTFOUND if none;
** pidx_lookup_many sets ids[i] = the page whose hash is hashes[i], 0 if
** none. */
int pidx_lookup(int64_t *id, sqlite3 *db, const uint8_t hash[16]);
int pidx_lookup_many(int64_t *ids, sqlite3 *db, const uint8_t (*hashes)[16], size_t n);
/* In a write transaction: page row id (hash, rlen) and its page_new row. */
int pidx_add_page(pidx *x, int64_t id, const uint8_t hash[16], uint32_t rlen);
/* In a write transaction: the block row of pages first .. first+n-1, slots
** slot0 .. slot0+n-1 of the record at off (len bytes) of chunk. */
int pidx_add_block(pidx *x, int64_t first, int64_t chunk, uint64_t off, uint32_t len, uint32_t n, uint32_t slot0);

/* Block rows as pages are stored one by one, in id order: pidx_blocks_push
** extends the current row when the page continues it (next id, next slot,
** same record), else writes it and starts another; flush writes the last. */
struct pidx_blocks {
    pidx *x;
    int64_t first, chunk;
    uint64_t off;
    uint32_t len, n, slot0;
};
int pidx_blocks_push(struct pidx_blocks *b, int64_t id, int64_t chunk, uint64_t off, uint32_t len, uint32_t slot);
int pidx_blocks_flush(struct pidx_blocks *b);

/* gc, inside its write transaction, after the dead page rows are gone:
** merges page_new into page_idx, drops the entries of dead pages (ids
** below next that live does not mark; live NULL: none dead), whose hash
** prefixes are dead[0..ndead-1], and grows the bucket bits when buckets
** average over PIDX_FILL. *packed = entries moved in, *dropped = out. */
int pidx_pack(sqlite3 *db, const uint8_t *live, int64_t next, const uint64_t *dead, size_t ndead, uint64_t *packed,
              uint64_t *dropped);

/* Registers the SQL function hash_page(hash) (the page id or NULL) on db. */
int pidx_sql_register(sqlite3 *db);

/* Tests: the bucket fill that makes pidx_pack add a bit (PIDX_FILL). */
void pidx_set_fill(unsigned fill);

/* The first 8 bytes of a hash as a number (the bucket and key bits). */
uint64_t pidx_prefix(const uint8_t hash[16]);

#endif
