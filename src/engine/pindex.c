/*
** pindex.c: the page index, hash -> page id, in two tiers.
**
** Design
**  1. A page row is (id, hash, rlen) in table page, ids given in the
**     order pages are stored, so the table grows at its end. Where a
**     page lives is its block row (table block: a run of consecutive ids
**     in consecutive slots of one block record), found as the row with
**     the largest id <= the page's id (catalog.c reads both).
**  2. Dedup asks the other way, hash -> id, for every page of every
**     snapshot. One B-tree keyed by random 16-byte hashes costs twice: a
**     batch of new pages inserted into tens of millions of entries dirties
**     nearly every leaf (the WAL then holds most of the index), and the
**     index takes 37 bytes a page. So the index has two tiers:
**       page_new  hash -> id for the pages stored since the last gc: a
**                 small WITHOUT ROWID B-tree, cheap to insert into.
**       page_idx  everything else, packed by gc: one row per bucket of
**                 hashes, its entries sorted in one blob, 9 bytes each.
**     A lookup asks page_new, then the page_idx bucket; an entry there is a
**     hint (it carries 32 bits of the hash) confirmed against page.hash
**     by one rowid read, so a stale or colliding entry can cost a read but
**     never name the wrong page.
**  3. gc packs (pidx_pack), inside the sweep's write transaction: the
**     page_new entries move into their buckets, the entries of the pages
**     the sweep deleted are dropped, and only the buckets that gain or
**     lose an entry are rewritten. When buckets average more than
**     PIDX_FILL (1200) entries the bucket bits grow, and every bucket is
**     split, so a bucket averages 600-1200 entries, 5.4-10.8 KB: a blob
**     past SQLite's largest local payload (4061 bytes in a 4 KiB page)
**     fills whole overflow pages and packs its remainder with others,
**     where one of 2-4 KB would leave a third of its page empty;
**     the entries keep hash bits 12..43, so a split needs no page reads
**     (up to PIDX_BITS_MAX bits, 2^32 buckets).
**  4. Every page is in exactly one tier: ingest inserts into page_new in
**     the transaction that adds the page row; gc deletes both together,
**     and packs under the writer lock, so no ingest commits meanwhile.
**
** Layout of a page_idx row (meta.idx_bits = b, 12 <= b <= 32):
**
**   bucket  b * 2^44 + (the first b bits of the hash): the generation b in
**           the key keeps the rows of a split apart from the old ones.
**   ents    n entries of 9 bytes, sorted by (key, id):
**             offset 0  4  key: bits 12 .. 43 of the hash, big-endian
**             offset 4  5  page id, little-endian
**
** Bits are numbered from the first (most significant) bit of the
** canonical, big-endian XXH3-128 hash. meta.idx_count holds the entries
** in page_idx (0: lookups skip it).
*/
#include "pindex.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "util.h"

#define GEN_SHIFT 44
#define WIN 64                     /* entries read at once around a guess */

static unsigned fill_max = PIDX_FILL;

void pidx_set_fill(unsigned fill)
{
    fill_max = fill ? fill : PIDX_FILL;
}

struct pidx {
    sqlite3 *db;
    sqlite3_stmt *q_new, *q_bucket, *q_hash, *ins_page, *ins_new, *ins_block;
    int bits;
    int64_t count;
    sqlite3_blob *blob;            /* on a bucket row, within a transaction */
};

uint64_t pidx_prefix(const uint8_t h[16])
{
    uint64_t p = 0;
    for (int i = 0; i < 8; i++)
        p = p << 8 | h[i];
    return p;
}

static uint32_t key_of(uint64_t p)
{
    return (uint32_t)(p >> 20);
}

static int64_t row_key(int bits, uint64_t p)
{
    return (int64_t)((uint64_t)bits << GEN_SHIFT | p >> (64 - bits));
}

static uint32_t get32be(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int64_t get40le(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 4; i >= 0; i--)
        v = v << 8 | b[i];
    return (int64_t)v;
}

static void put_ent(uint8_t *b, uint32_t key, int64_t id)
{
    b[0] = (uint8_t)(key >> 24), b[1] = (uint8_t)(key >> 16), b[2] = (uint8_t)(key >> 8), b[3] = (uint8_t)key;
    for (int i = 0; i < 5; i++)
        b[4 + i] = (uint8_t)((uint64_t)id >> (8 * i));
}

static int read_params(sqlite3 *db, int *bits, int64_t *count)
{
    int64_t b = PIDX_BITS_MIN, n = 0;
    int rc = cat_meta_get(db, "idx_bits", &b);
    if (rc == 0)
        rc = cat_meta_get(db, "idx_count", &n);
    if (rc)
        return rc;
    if (b < PIDX_BITS_MIN || b > PIDX_BITS_MAX || n < 0)
        return fks__err(FKS_ECORRUPT, "page index: meta idx_bits %lld / idx_count %lld out of range", (long long)b,
                        (long long)n);
    *bits = (int)b;
    *count = n;
    return 0;
}

int pidx_open(pidx **out, sqlite3 *db)
{
    pidx *x = calloc(1, sizeof *x);
    if (!x)
        return fks__err(FKS_ENOMEM, "out of memory");
    x->db = db;
    int rc;
    if ((rc = cat_prepare(db, &x->q_new, "SELECT id FROM page_new WHERE hash = ?1")) != 0 ||
        (rc = cat_prepare(db, &x->q_hash, "SELECT hash FROM page WHERE id = ?1")) != 0) {
        pidx_close(x);
        return rc;
    }
    *out = x;
    return 0;
}

void pidx_close(pidx *x)
{
    if (!x)
        return;
    pidx_end(x);
    sqlite3_finalize(x->q_new);
    sqlite3_finalize(x->q_hash);
    sqlite3_finalize(x->ins_page);
    sqlite3_finalize(x->ins_new);
    sqlite3_finalize(x->ins_block);
    free(x);
}

int pidx_begin(pidx *x)
{
    pidx_end(x);
    return read_params(x->db, &x->bits, &x->count);
}

void pidx_end(pidx *x)
{
    if (x->blob)
        sqlite3_blob_close(x->blob);
    x->blob = NULL;
}

/* Points x->blob at bucket row key (incremental BLOB I/O: a lookup reads
** the dozen entries its binary search visits, not the bucket's 5-11 KB);
** *n = its entries, 0 if there is no such row. */
static int open_bucket(pidx *x, int64_t key, size_t *n)
{
    int s = x->blob ? sqlite3_blob_reopen(x->blob, key)
                    : sqlite3_blob_open(x->db, "main", "page_idx", "ents", key, 0, &x->blob);
    *n = 0;
    if (s != SQLITE_OK) {
        if (x->blob)               /* a failed reopen leaves it unusable */
            sqlite3_blob_close(x->blob);
        x->blob = NULL;
        /* SQLITE_ERROR: no such row (an empty bucket), or a value that is
        ** no BLOB: as an empty bucket, which verify reports */
        return (s & 0xff) == SQLITE_ERROR ? 0 : cat_err(x->db, s, "catalog: open page index bucket");
    }
    int bytes = sqlite3_blob_bytes(x->blob);
    if (bytes % PIDX_ENT)
        return fks__err(FKS_ECORRUPT, "page index: bucket %lld is damaged (%d bytes)", (long long)key, bytes);
    *n = (size_t)bytes / PIDX_ENT;
    return 0;
}

static int read_ent(pidx *x, size_t i, uint8_t e[PIDX_ENT])
{
    int s = sqlite3_blob_read(x->blob, e, PIDX_ENT, (int)(i * PIDX_ENT));
    return s == SQLITE_OK ? 0 : cat_err(x->db, s, "catalog: read page index bucket");
}

/* 1: page id has this hash; 0: not (or no such page any more). */
static int confirm(pidx *x, int64_t id, const uint8_t hash[16], int *ok)
{
    sqlite3_bind_int64(x->q_hash, 1, id);
    int s = sqlite3_step(x->q_hash);
    *ok = s == SQLITE_ROW && sqlite3_column_bytes(x->q_hash, 0) == 16 &&
          memcmp(sqlite3_column_blob(x->q_hash, 0), hash, 16) == 0;
    sqlite3_reset(x->q_hash);
    return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : cat_err(x->db, s, "catalog: read page hash");
}

int pidx_find(pidx *x, const uint8_t hash[16], int64_t *id)
{
    *id = 0;
    sqlite3_bind_blob(x->q_new, 1, hash, 16, SQLITE_STATIC);
    int s = sqlite3_step(x->q_new), rc = 0;
    if (s == SQLITE_ROW) {
        *id = sqlite3_column_int64(x->q_new, 0);
        if (sqlite3_column_type(x->q_new, 0) != SQLITE_INTEGER || *id <= 0)
            rc = fks__err(FKS_ECORRUPT, "page index: a page_new row has a damaged id");
    } else if (s != SQLITE_DONE) {
        rc = cat_err(x->db, s, "catalog: page lookup");
    }
    sqlite3_reset(x->q_new);
    if (rc || *id || x->count == 0)
        return rc;
    uint64_t p = pidx_prefix(hash);
    size_t n;
    if ((rc = open_bucket(x, row_key(x->bits, p), &n)) != 0)
        return rc;
    uint32_t key = key_of(p);
    uint8_t e[PIDX_ENT];
    size_t lo = 0, hi = n;
    /* Keys are uniform in the bucket's key range (its bits 12..b-1 are
    ** fixed): read the window of WIN entries around where the key should
    ** be in one call; it holds the key's place unless the bucket is
    ** lopsided there, then the binary search goes on outside it. */
    if (n > WIN) {
        int fixed = x->bits - 12;               /* key bits the bucket fixes */
        uint64_t span = (uint64_t)1 << (32 - fixed), kmin = fixed ? (uint64_t)key & ~(span - 1) : 0;
        size_t guess = (size_t)(((uint64_t)key - kmin) * n / span), w0 = guess > WIN / 2 ? guess - WIN / 2 : 0;
        if (w0 > n - WIN)
            w0 = n - WIN;
        uint8_t win[WIN * PIDX_ENT];
        int s2 = sqlite3_blob_read(x->blob, win, (int)sizeof win, (int)(w0 * PIDX_ENT));
        if (s2 != SQLITE_OK)
            return cat_err(x->db, s2, "catalog: read page index bucket");
        if (get32be(win) >= key)                       /* before the window */
            hi = w0 + 1;
        else if (get32be(win + (WIN - 1) * PIDX_ENT) < key)  /* after it */
            lo = w0 + WIN;
        else {                                         /* inside: in memory */
            size_t a = 0, b = WIN;
            while (a < b) {
                size_t m = a + (b - a) / 2;
                if (get32be(win + m * PIDX_ENT) < key)
                    a = m + 1;
                else
                    b = m;
            }
            lo = hi = w0 + a;
        }
    }
    while (lo < hi) {                           /* first entry >= key */
        size_t mid = lo + (hi - lo) / 2;
        if ((rc = read_ent(x, mid, e)) != 0)
            return rc;
        if (get32be(e) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < n; i++) {
        if ((rc = read_ent(x, i, e)) != 0)
            return rc;
        if (get32be(e) != key)
            break;
        int64_t cand = get40le(e + 4);
        int ok;
        if ((rc = confirm(x, cand, hash, &ok)) != 0)
            return rc;
        if (ok) {
            *id = cand;
            return 0;
        }
    }
    return 0;
}

int pidx_lookup_many(int64_t *ids, sqlite3 *db, const uint8_t (*hashes)[16], size_t n)
{
    pidx *x;
    int rc = pidx_open(&x, db);
    if (rc)
        return rc;
    int txn = sqlite3_get_autocommit(db);   /* the tiers as one snapshot */
    if (txn && (rc = cat_read_begin(db)) != 0) {
        pidx_close(x);
        return rc;
    }
    if ((rc = pidx_begin(x)) == 0)
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = pidx_find(x, hashes[i], &ids[i]);
    pidx_close(x);
    if (txn) {
        int rc2 = cat_read_end(db);
        rc = rc ? rc : rc2;
    }
    return rc;
}

int pidx_lookup(int64_t *id, sqlite3 *db, const uint8_t hash[16])
{
    int rc = pidx_lookup_many(id, db, (const uint8_t (*)[16])hash, 1);
    if (rc == 0 && *id == 0)
        rc = fks__err(FKS_ENOTFOUND, "no page with that hash in the store");
    return rc;
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    return s == SQLITE_DONE ? 0 : cat_err(db, s, what);
}

int pidx_add_page(pidx *x, int64_t id, const uint8_t hash[16], uint32_t rlen)
{
    int rc;
    if (!x->ins_page && ((rc = cat_prepare(x->db, &x->ins_page, "INSERT INTO page(id, hash, rlen) VALUES (?1, ?2, ?3)")) != 0 ||
                         (rc = cat_prepare(x->db, &x->ins_new, "INSERT INTO page_new(hash, id) VALUES (?1, ?2)")) != 0))
        return rc;
    sqlite3_bind_int64(x->ins_page, 1, id);
    sqlite3_bind_blob(x->ins_page, 2, hash, 16, SQLITE_STATIC);
    if (rlen == 4096)
        sqlite3_bind_null(x->ins_page, 3);
    else
        sqlite3_bind_int64(x->ins_page, 3, rlen);
    sqlite3_bind_blob(x->ins_new, 1, hash, 16, SQLITE_STATIC);
    sqlite3_bind_int64(x->ins_new, 2, id);
    if ((rc = step_done(x->db, x->ins_page, "catalog: insert page")) != 0)
        return rc;
    return step_done(x->db, x->ins_new, "catalog: insert page index entry");
}

int pidx_add_block(pidx *x, int64_t first, int64_t chunk, uint64_t off, uint32_t len, uint32_t n, uint32_t slot0)
{
    int rc;
    if (!x->ins_block && (rc = cat_prepare(x->db, &x->ins_block, "INSERT INTO block(id, chunk_id, off, len, n, slot0) "
                                                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")) != 0)
        return rc;
    sqlite3_bind_int64(x->ins_block, 1, first);
    sqlite3_bind_int64(x->ins_block, 2, chunk);
    sqlite3_bind_int64(x->ins_block, 3, (int64_t)off);
    sqlite3_bind_int64(x->ins_block, 4, len);
    sqlite3_bind_int64(x->ins_block, 5, n);
    sqlite3_bind_int64(x->ins_block, 6, slot0);
    return step_done(x->db, x->ins_block, "catalog: insert block");
}

int pidx_blocks_flush(struct pidx_blocks *b)
{
    int rc = 0;
    if (b->n)
        rc = pidx_add_block(b->x, b->first, b->chunk, b->off, b->len, b->n, b->slot0);
    b->n = 0;
    return rc;
}

int pidx_blocks_push(struct pidx_blocks *b, int64_t id, int64_t chunk, uint64_t off, uint32_t len, uint32_t slot)
{
    if (b->n && id == b->first + b->n && chunk == b->chunk && off == b->off && slot == b->slot0 + b->n) {
        b->n++;
        return 0;
    }
    int rc = pidx_blocks_flush(b);
    b->first = id, b->chunk = chunk, b->off = off, b->len = len, b->n = 1, b->slot0 = slot;
    return rc;
}

/* ------------------------------------------------------------- packing */

struct ent {
    uint64_t p;                    /* hash bits 0..43 (the rest zero) */
    int64_t id;
};

static int cmp_ent(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    uint64_t kx = x->p >> 20, ky = y->p >> 20;
    if (kx != ky)
        return kx < ky ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

struct vec {
    void *v;
    size_t n, alloc, size;
};

static void *vec_push(struct vec *v)
{
    if (fks__grow(&v->v, &v->alloc, v->n, v->size) != 0)
        return NULL;
    return (char *)v->v + v->size * v->n++;
}

/* Writes the entries e[0..n-1] (sorted by bucket at bits, then key) as
** bucket rows of generation bits. */
static int write_buckets(sqlite3 *db, sqlite3_stmt *put, int bits, const struct ent *e, size_t n, uint8_t **buf,
                         size_t *balloc)
{
    for (size_t i = 0; i < n;) {
        uint64_t u = e[i].p >> (64 - bits);
        size_t j = i;
        while (j < n && e[j].p >> (64 - bits) == u)
            j++;
        size_t need = (j - i) * PIDX_ENT;
        if (need > *balloc) {
            uint8_t *nb = realloc(*buf, need);
            if (!nb)
                return fks__err(FKS_ENOMEM, "out of memory");
            *buf = nb, *balloc = need;
        }
        for (size_t k = i; k < j; k++)
            put_ent(*buf + (k - i) * PIDX_ENT, key_of(e[k].p), e[k].id);
        sqlite3_bind_int64(put, 1, (int64_t)((uint64_t)bits << GEN_SHIFT | u));
        sqlite3_bind_blob(put, 2, *buf, (int)need, SQLITE_STATIC);
        int rc = step_done(db, put, "catalog: write page index bucket");
        if (rc)
            return rc;
        i = j;
    }
    return 0;
}

/* One pack (design 3): the tiers' state between its steps. */
struct pack {
    sqlite3 *db;
    const uint8_t *live;           /* bit id: page id is live; NULL: none dead */
    int64_t next;                  /* live covers the ids below it */
    int bits, nbits;               /* bucket bits before and after the pack */
    int64_t count;                 /* entries in page_idx */
    struct vec nw;                 /* page_new's entries, in hash order */
    struct vec us;                 /* old buckets to rewrite, sorted, repeats allowed */
    struct vec cur;                /* the entries of the bucket being rewritten */
    uint8_t *buf;                  /* write_buckets' blob */
    size_t balloc;
    sqlite3_stmt *get, *put, *del;
    uint64_t *packed, *dropped;
};

/* Reads page_new, in hash order, into x->nw: the entries that move into
** their buckets. */
static int pack_read_new(struct pack *x)
{
    sqlite3_stmt *st = NULL;
    int rc, s;
    if ((rc = cat_prepare(x->db, &st, "SELECT hash, id FROM page_new ORDER BY hash")) != 0)
        return rc;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != 16 || sqlite3_column_int64(st, 1) <= 0) {
            rc = fks__err(FKS_ECORRUPT, "page index: a page_new row is damaged");
            goto out;
        }
        struct ent *e = vec_push(&x->nw);
        if (!e) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            goto out;
        }
        e->p = pidx_prefix(sqlite3_column_blob(st, 0)) & ~(uint64_t)0xfffff;
        e->id = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (s != SQLITE_DONE)
        rc = cat_err(x->db, s, "catalog: read page_new");
out:
    sqlite3_finalize(st);
    return rc;
}

/* The bucket bits after the pack: grown until buckets average at most
** fill_max entries (a split), up to PIDX_BITS_MAX. */
static int pack_grow(int bits, int64_t count, size_t nnew)
{
    int nbits = bits;
    while (nbits < PIDX_BITS_MAX && (uint64_t)(count + (int64_t)nnew) >> nbits > fill_max)
        nbits++;
    return nbits;
}

/* Lists in x->us, sorted, the old buckets to rewrite: all of them for a
** split, else those that gain or lose an entry. */
static int pack_touched(struct pack *x, const uint64_t *dead, size_t ndead)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (x->nbits != x->bits) {
        if ((rc = cat_prepare(x->db, &st, "SELECT bucket FROM page_idx WHERE bucket >= ?1 AND bucket < ?2")) != 0)
            return rc;
        sqlite3_bind_int64(st, 1, (int64_t)((uint64_t)x->bits << GEN_SHIFT));
        sqlite3_bind_int64(st, 2, (int64_t)((uint64_t)(x->bits + 1) << GEN_SHIFT));
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            uint64_t *u = vec_push(&x->us);
            if (!u) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                goto out;
            }
            *u = (uint64_t)sqlite3_column_int64(st, 0) & (((uint64_t)1 << GEN_SHIFT) - 1);
        }
        sqlite3_finalize(st);
        st = NULL;
        if (s != SQLITE_DONE) {
            rc = cat_err(x->db, s, "catalog: list page index buckets");
            goto out;
        }
    }
    for (size_t i = 0; i < x->nw.n + ndead; i++) {
        uint64_t *u = vec_push(&x->us);
        if (!u) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            goto out;
        }
        *u = (i < x->nw.n ? ((struct ent *)x->nw.v)[i].p : dead[i - x->nw.n]) >> (64 - x->bits);
    }
    if (x->us.n)
        qsort(x->us.v, x->us.n, sizeof(uint64_t), cmp_u64);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Reads old bucket u (row okey) into x->cur, dropping the entries of the
** pages the sweep deleted; x->count loses every entry read. */
static int pack_drop(struct pack *x, uint64_t u, int64_t okey)
{
    int rc = 0;
    sqlite3_bind_int64(x->get, 1, okey);
    int s = sqlite3_step(x->get);
    if (s == SQLITE_ROW) {
        int n = sqlite3_column_bytes(x->get, 0);
        const uint8_t *b = sqlite3_column_blob(x->get, 0);
        if (n % PIDX_ENT)
            rc = fks__err(FKS_ECORRUPT, "page index: bucket %lld is damaged (%d bytes)", (long long)okey, n);
        for (int i = 0; rc == 0 && i < n / PIDX_ENT; i++) {
            int64_t id = get40le(b + i * PIDX_ENT + 4);
            x->count--;
            if (x->live && id > 0 && id < x->next && !(x->live[id >> 3] & (1u << (id & 7)))) {
                (*x->dropped)++;
                continue;
            }
            struct ent *e = vec_push(&x->cur);
            if (!e) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            e->p = (u << (64 - x->bits)) | (uint64_t)get32be(b + i * PIDX_ENT) << 20;
            e->id = id;
        }
    } else if (s != SQLITE_DONE) {
        rc = cat_err(x->db, s, "catalog: read page index bucket");
    }
    sqlite3_reset(x->get);
    return rc;
}

/* Rewrites old bucket u: the entries it keeps and the page_new entries
** x->nw[*ni..] that move into it, as the bucket rows of x->nbits. */
static int pack_bucket(struct pack *x, uint64_t u, size_t *ni)
{
    const struct ent *ne = x->nw.v;
    int64_t okey = (int64_t)((uint64_t)x->bits << GEN_SHIFT | u);
    x->cur.n = 0;
    int rc = pack_drop(x, u, okey);
    while (rc == 0 && *ni < x->nw.n && ne[*ni].p >> (64 - x->bits) == u) {
        struct ent *e = vec_push(&x->cur);
        if (!e) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            break;
        }
        *e = ne[(*ni)++];
        (*x->packed)++;
    }
    if (rc)
        return rc;
    /* Sorted by p (bits 0..43) is sorted by (bucket, key) at any bits. */
    if (x->cur.n)
        qsort(x->cur.v, x->cur.n, sizeof(struct ent), cmp_ent);
    sqlite3_bind_int64(x->del, 1, okey);
    if ((rc = step_done(x->db, x->del, "catalog: rewrite page index bucket")) != 0)
        return rc;
    rc = write_buckets(x->db, x->put, x->nbits, x->cur.v, x->cur.n, &x->buf, &x->balloc);
    x->count += (int64_t)x->cur.n;
    return rc;
}

int pidx_pack(sqlite3 *db, const uint8_t *live, int64_t next, const uint64_t *dead, size_t ndead, uint64_t *packed,
              uint64_t *dropped)
{
    struct pack x = {.db = db, .live = live, .next = next, .bits = PIDX_BITS_MIN,
                     .nw = {.size = sizeof(struct ent)}, .us = {.size = sizeof(uint64_t)},
                     .cur = {.size = sizeof(struct ent)}, .packed = packed, .dropped = dropped};
    int rc;
    *packed = *dropped = 0;
    if ((rc = read_params(db, &x.bits, &x.count)) != 0)
        return rc;
    if ((rc = pack_read_new(&x)) != 0)
        goto out;
    x.nbits = pack_grow(x.bits, x.count, x.nw.n);
    if ((rc = pack_touched(&x, dead, ndead)) != 0)
        goto out;
    if ((rc = cat_prepare(db, &x.get, "SELECT ents FROM page_idx WHERE bucket = ?1")) != 0 ||
        (rc = cat_prepare(db, &x.put, "INSERT OR REPLACE INTO page_idx(bucket, ents) VALUES (?1, ?2)")) != 0 ||
        (rc = cat_prepare(db, &x.del, "DELETE FROM page_idx WHERE bucket = ?1")) != 0)
        goto out;
    size_t ni = 0;
    const uint64_t *uv = x.us.v;
    for (size_t k = 0; k < x.us.n && rc == 0; k++) {
        if (k && uv[k - 1] == uv[k])
            continue;
        rc = pack_bucket(&x, uv[k], &ni);
    }
    if (rc == 0)
        rc = cat_exec(db, "DELETE FROM page_new");
    if (rc == 0)
        rc = cat_meta_set(db, "idx_bits", x.nbits);
    if (rc == 0)
        rc = cat_meta_set(db, "idx_count", x.count);
out:
    sqlite3_finalize(x.get);
    sqlite3_finalize(x.put);
    sqlite3_finalize(x.del);
    free(x.nw.v);
    free(x.us.v);
    free(x.cur.v);
    free(x.buf);
    return rc;
}

/* SQL function hash_page(hash): the id of the stored page with that hash,
** or NULL; a lookup through both tiers, for queries (the hash is not a
** SQL index since migration 0008). */
static void sql_hash_page(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_bytes(argv[0]) != 16) {
        sqlite3_result_null(ctx);
        return;
    }
    uint8_t h[16];
    memcpy(h, sqlite3_value_blob(argv[0]), 16);
    pidx *x = NULL;
    int64_t id = 0;
    int rc = pidx_open(&x, sqlite3_context_db_handle(ctx));
    if (rc == 0) {
        if ((rc = pidx_begin(x)) == 0)
            rc = pidx_find(x, h, &id);
        pidx_close(x);
    }
    if (rc)
        sqlite3_result_error(ctx, fks_errmsg(), -1);
    else if (id)
        sqlite3_result_int64(ctx, id);
    else
        sqlite3_result_null(ctx);
}

int pidx_sql_register(sqlite3 *db)
{
    int src = sqlite3_create_function(db, "hash_page", 1, SQLITE_UTF8, NULL, sql_hash_page, NULL, NULL);
    return src == SQLITE_OK ? 0 : cat_err(db, src, "catalog: register hash_page()");
}
