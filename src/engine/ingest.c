/*
** ingest.c: turning snapshot files into pages, chunks and a page map.
**
** Design
**  1. Each input file is walked by data extents (lseek SEEK_DATA /
**     SEEK_HOLE), so time is proportional to the data, not the logical
**     size. In a Full file a hole reads as zero pages; in a Diff file the
**     extents are the "cover": pages there are the snapshot's own (even
**     when all zero), pages outside it inherit the parent's.
**  2. Each page: all-zero pages are recorded as absent from the map (a
**     hole on restore) and never stored. Others are hashed (XXH3-128) and
**     looked up: first among the pages this ingest already stored, then in
**     the catalog. A page found is referenced, never stored again; a new
**     page is zstd-compressed and appended to a preallocated chunk.
**  3. The snapshot becomes visible in one catalog transaction at the end,
**     after the chunk bytes are fdatasync()ed (chunk.c): the new page
**     rows, the snapshot, its artifacts and their maps. A crash before
**     that commit leaves the store unchanged; the bytes written are dead
**     space that the next writer of that chunk overwrites or gc reclaims.
**  4. Races (see gc.c): pages are never deleted while referenced, but an
**     ingest may have found a page that a concurrent gc then deleted as
**     unreferenced. gc bumps meta.gc_generation in the transaction that
**     deletes pages; the commit compares it with the value at the start
**     and, if it moved, checks that every page the new maps reference
**     still exists (page ids are never reused, meta.next_page_id only
**     grows). If one is gone the ingest starts over, at most 3 times.
**     A concurrent ingest may also have stored the same new page first:
**     the insert then keeps the existing row and the map points at it.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <zstd.h>

#include "catalog.h"
#include "chunk.h"
#include "manifest.h"
#include "map.h"
#include "par.h"
#include "pindex.h"
#include "pmap.h"
#include "store.h"
#include "util.h"

#define BATCH_PAGES 256            /* 1 MiB read at a time */
#define MAX_ATTEMPTS 3
#define RETRY_GC (-100)            /* internal: a referenced page vanished */

/* Pages stored by this ingest, with a hash table over them. Each lives
** in page slot[k] of the block record (chunk[k], off[k], len[k]). */
struct newpages {
    uint8_t (*hash)[16];
    int64_t *chunk;
    uint64_t *off;
    uint32_t *len, *rlen;
    uint8_t *slot;
    size_t n, alloc;
    uint32_t *tab;                 /* hash table: local index + 1; 0 = empty */
    size_t mask;
};

struct art {
    const fks_artifact_in *in;
    int fd;
    uint64_t size;
    int64_t parent_art;            /* the parent's same-named artifact, 0 if none */
    uint64_t parent_size;
    pm_map map;                    /* a Full's complete map; a Diff's delta (page 0: zeros) */
    struct hints *hints;           /* its pages, while this artifact is ingested */
};

/* A Full image taken after its parent is mostly the parent's pages at the
** same page numbers: the parent's (pgno, page id, hash) in pgno order,
** walked with a cursor as the ingest advances, answer most lookups
** without touching the page index. Memory: 32 bytes per non-zero page
** of the parent. A hint is only a shortcut: a page it names that a
** concurrent gc deleted is caught by the commit's check (design 4). */
struct hint {
    uint64_t pgno;
    int64_t id;
    uint8_t hash[16];
};
struct hints {
    struct hint *v;
    size_t n, alloc, cur;
};

struct ingest {
    fks_store *s;
    const fks_ingest_opts *o;
    int64_t parent_id;
    int64_t gc_gen;
    struct art *arts;
    size_t n;
    pidx *lookup;                  /* the page index (pindex.c) */
    int64_t top_page;              /* max(page.id) before the first lookup */
    chunk_writer *w;
    par *par;
    ZSTD_CCtx **cctx;              /* one per thread */
    struct newpages np;
    uint8_t *buf[2];               /* BATCH_PAGES pages read from the input */
    struct batch *b[2];            /* double-buffered: see ingest_range */
    fks_ingest_stats st;
    uint64_t done, total;
    fks__progress prog;            /* of done out of total (util.h) */
};

/* ------------------------------------------------------------ new pages */

static void np_free(struct newpages *np)
{
    free(np->hash);
    free(np->chunk);
    free(np->off);
    free(np->len);
    free(np->rlen);
    free(np->slot);
    free(np->tab);
    memset(np, 0, sizeof *np);
}

static size_t bucket_of(const uint8_t h[16], size_t mask)
{
    uint64_t x = fks__get64(h + 8);
    return (size_t)x & mask;
}

static int np_grow(struct newpages *np)
{
    size_t na = np->alloc ? np->alloc * 2 : 4096;
#define GROW(f) do { void *p_ = realloc(np->f, na * sizeof *np->f); if (!p_) goto oom; np->f = p_; } while (0)
    GROW(hash);
    GROW(chunk);
    GROW(off);
    GROW(len);
    GROW(rlen);
    GROW(slot);
#undef GROW
    np->alloc = na;
    /* Rehash into a table twice the capacity (load factor <= 1/2). */
    size_t ns = na * 2;
    uint32_t *tab = calloc(ns, sizeof *tab);
    if (!tab)
        goto oom;
    for (size_t i = 0; i < np->n; i++) {
        size_t j = bucket_of(np->hash[i], ns - 1);
        while (tab[j])
            j = (j + 1) & (ns - 1);
        tab[j] = (uint32_t)(i + 1);
    }
    free(np->tab);
    np->tab = tab;
    np->mask = ns - 1;
    return 0;
oom:
    return fks__err(FKS_ENOMEM, "out of memory (%zu new pages)", np->n);
}

/* Local index of hash, or -1. */
static int64_t np_find(const struct newpages *np, const uint8_t h[16])
{
    if (!np->tab)
        return -1;
    for (size_t j = bucket_of(h, np->mask);; j = (j + 1) & np->mask) {
        uint32_t v = np->tab[j];
        if (!v)
            return -1;
        if (memcmp(np->hash[v - 1], h, 16) == 0)
            return v - 1;
    }
}

static int np_add(struct newpages *np, const uint8_t h[16], uint32_t rlen, int64_t *idx)
{
    int rc;
    if (np->n == np->alloc && (rc = np_grow(np)) != 0)
        return rc;
    if (np->n >= UINT32_MAX - 1)
        return fks__err(FKS_EINVAL, "too many new pages in one ingest");
    size_t i = np->n++;
    memcpy(np->hash[i], h, 16);
    np->chunk[i] = 0;          /* set when its block is appended */
    np->off[i] = 0;
    np->len[i] = 0;
    np->slot[i] = 0;
    np->rlen[i] = rlen;
    size_t j = bucket_of(h, np->mask);
    while (np->tab[j])
        j = (j + 1) & np->mask;
    np->tab[j] = (uint32_t)(i + 1);
    *idx = (int64_t)i;
    return 0;
}

/* ------------------------------------------------------------- pages */

static void report(struct ingest *g, int final)
{
    if (final)
        fks__progress_end(&g->prog);
    else
        fks__progress_set(&g->prog, g->done);
}

/* One batch of pages in flight. The parallel steps (hash_part,
** compress_part) touch only their own slice of these arrays. New pages
** are grouped, in order, into blocks of up to CHUNK_BLOCK_PAGES. */
#define BATCH_BLOCKS ((BATCH_PAGES + CHUNK_BLOCK_PAGES - 1) / CHUNK_BLOCK_PAGES)
struct batch {
    size_t n;
    const uint8_t *data;           /* page i at data + i * 4096 */
    size_t len;                    /* bytes valid in data */
    uint32_t rlen[BATCH_PAGES];
    uint8_t zero[BATCH_PAGES];
    uint8_t hash[BATCH_PAGES][16];
    int64_t ref[BATCH_PAGES];
    size_t nblocks;
    uint32_t bn[BATCH_BLOCKS];                       /* pages in block */
    uint16_t bpage[BATCH_BLOCKS][CHUNK_BLOCK_PAGES]; /* their batch index */
    uint32_t clen[BATCH_BLOCKS];
    int codec[BATCH_BLOCKS];
    int err[BATCH_BLOCKS];
    uint8_t raw[BATCH_BLOCKS][CHUNK_BLOCK_MAX];
    uint8_t payload[BATCH_BLOCKS][CHUNK_BLOCK_MAX];
    struct hints *hints;           /* of the artifact, or NULL */
    uint64_t first;                /* page number of page 0 */
};

static void hash_part(void *arg, int tid, size_t lo, size_t hi)
{
    struct batch *b = arg;
    (void)tid;
    for (size_t i = lo; i < hi; i++) {
        size_t po = i * FKS_PAGE_SIZE;
        const uint8_t *p = b->data + po;
        b->rlen[i] = (uint32_t)(b->len - po < FKS_PAGE_SIZE ? b->len - po : FKS_PAGE_SIZE);
        b->zero[i] = (uint8_t)fks__is_zero(p, b->rlen[i]);
        if (!b->zero[i])
            fks__hash(b->hash[i], p, b->rlen[i]);
    }
}

struct cpart {
    struct batch *b;
    ZSTD_CCtx **cctx;
};

static void compress_part(void *arg, int tid, size_t lo, size_t hi)
{
    struct cpart *c = arg;
    struct batch *b = c->b;
    for (size_t k = lo; k < hi; k++) {
        size_t len = 0;
        for (uint32_t j = 0; j < b->bn[k]; j++) {
            size_t i = b->bpage[k][j];
            memcpy(b->raw[k] + len, b->data + i * FKS_PAGE_SIZE, b->rlen[i]);
            len += b->rlen[i];
        }
        b->err[k] = chunk_compress(c->cctx[tid], b->raw[k], len, b->payload[k], &b->clen[k], &b->codec[k]);
    }
}

/* The serial step: dedup lookups, in page order; new pages go into blocks.
** One read transaction per batch: SQLite takes its WAL read lock once
** instead of once per lookup. */
static int lookup_batch_txn(struct ingest *g, struct batch *b);
static int lookup_batch(struct ingest *g, struct batch *b)
{
    int rc = cat_exec(g->s->db, "BEGIN");
    if (rc)
        return rc;
    if ((rc = pidx_begin(g->lookup)) == 0)
        rc = lookup_batch_txn(g, b);
    pidx_end(g->lookup);
    int rc2 = cat_exec(g->s->db, "COMMIT");
    return rc ? rc : rc2;
}

static int lookup_batch_txn(struct ingest *g, struct batch *b)
{
    b->nblocks = 0;
    struct hints *h = b->hints;
    for (size_t i = 0; i < b->n; i++) {
        if (b->zero[i])
            continue;
        if (h) {
            uint64_t pg = b->first + i;
            while (h->cur < h->n && h->v[h->cur].pgno < pg)
                h->cur++;
            if (h->cur < h->n && h->v[h->cur].pgno == pg && memcmp(h->v[h->cur].hash, b->hash[i], 16) == 0) {
                b->ref[i] = h->v[h->cur].id;
                g->st.dedup_pages++;
                continue;
            }
        }
        int64_t k = np_find(&g->np, b->hash[i]);
        if (k >= 0) {
            g->st.dedup_pages++;
            b->ref[i] = PM_NEW + k;
            continue;
        }
        int64_t found;
        int rc = pidx_find(g->lookup, b->hash[i], &found);
        if (rc)
            return rc;
        if (found) {
            b->ref[i] = found;
            g->st.dedup_pages++;
            continue;
        }
        /* New: claim a local index now, so a repeat later in this batch
        ** finds it; the location is filled in by store_batch. */
        if ((rc = np_add(&g->np, b->hash[i], b->rlen[i], &k)) != 0)
            return rc;
        b->ref[i] = PM_NEW + k;
        if (b->nblocks == 0 || b->bn[b->nblocks - 1] == CHUNK_BLOCK_PAGES)
            b->bn[b->nblocks++] = 0;
        size_t blk = b->nblocks - 1;
        b->bpage[blk][b->bn[blk]++] = (uint16_t)i;
    }
    return 0;
}

static int store_batch(struct ingest *g, struct batch *b)
{
    for (size_t k = 0; k < b->nblocks; k++) {
        if (b->err[k])
            return b->err[k];
        uint32_t rlen[CHUNK_BLOCK_PAGES];
        uint8_t hash[CHUNK_BLOCK_PAGES][16];
        for (uint32_t j = 0; j < b->bn[k]; j++) {
            rlen[j] = b->rlen[b->bpage[k][j]];
            memcpy(hash[j], b->hash[b->bpage[k][j]], 16);
        }
        int64_t chunk;
        uint64_t off;
        uint32_t len;
        int rc = chunk_append(g->w, b->bn[k], rlen, (const uint8_t (*)[16])hash, b->payload[k], b->clen[k],
                              b->codec[k], &chunk, &off, &len);
        if (rc)
            return rc;
        for (uint32_t j = 0; j < b->bn[k]; j++) {
            size_t np = (size_t)(b->ref[b->bpage[k][j]] - PM_NEW);
            g->np.chunk[np] = chunk;
            g->np.off[np] = off;
            g->np.len[np] = len;
            g->np.slot[np] = (uint8_t)j;
        }
        g->st.new_pages += b->bn[k];
        g->st.stored_bytes += len;
    }
    return 0;
}

/* Reads pages [first, first + n) of a into b and hashes them (in
** parallel when hash_par), then looks them up (serial). */
static int read_batch(struct ingest *g, struct art *a, struct batch *b, uint8_t *buf, uint64_t first,
                      uint64_t n, int hash_par)
{
    uint64_t off = first * FKS_PAGE_SIZE;
    size_t len = (size_t)(off + n * FKS_PAGE_SIZE > a->size ? a->size - off : n * FKS_PAGE_SIZE);
    int rc = fks__pread_full(a->fd, buf, len, (off_t)off, a->in->path);
    if (rc)
        return rc;
    g->st.read_bytes += len;
    b->n = (size_t)n;
    b->data = buf;
    b->len = len;
    b->hints = a->hints;
    b->first = first;
    if (hash_par)
        par_run(g->par, hash_part, b, b->n);
    else
        hash_part(b, 0, 0, b->n);
    return lookup_batch(g, b);
}

/* The two halves of a pipeline step, run side by side by par_run: item 0
** reads, hashes and looks up the next batch, then helps compress; the
** other items compress the current batch's blocks, taken one at a time
** from a shared counter (each thread with its own compression context). */
struct step {
    struct ingest *g;
    struct art *a;
    struct batch *next, *cur;
    uint8_t *buf;
    uint64_t first, n;
    atomic_size_t blk;
    int rc;
};

static void step_part(void *arg, int tid, size_t lo, size_t hi)
{
    struct step *x = arg;
    if (lo == 0 && hi > 0)
        x->rc = read_batch(x->g, x->a, x->next, x->buf, x->first, x->n, 0);
    struct cpart cp = {x->cur, x->g->cctx};
    for (size_t k; (k = atomic_fetch_add(&x->blk, 1)) < x->cur->nblocks;)
        compress_part(&cp, tid, k, k + 1);
}

/* Appends the current batch's blocks and pushes its pages to own. */
static int finish_batch(struct ingest *g, struct batch *b, uint64_t first, pm_map *own)
{
    int rc = store_batch(g, b);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n; i++) {
        g->st.pages++;
        if (b->zero[i]) {
            g->st.zero_pages++;
            continue;
        }
        if ((rc = pm_push(own, first + i, b->ref[i])) != 0)
            return rc;
    }
    g->done += b->len;
    report(g, 0);
    return 0;
}

/* Ingests pages [first, last) of a, all inside one data extent, pushing
** non-zero pages to own. A pipeline of two batches: while batch k is
** compressed, batch k+1 is read, hashed and looked up; then batch k is
** appended to its chunk. Lookups of k+1 need only the hashes claimed by
** k (np_add in lookup), not their locations, so the halves are
** independent. A batch with nothing to compress is followed by the
** plain steps, with hashing spread over all threads. */
static int ingest_range(struct ingest *g, struct art *a, uint64_t first, uint64_t last, pm_map *own)
{
    struct batch *cur = NULL;
    uint64_t cur_first = 0;
    int which = 0, rc = 0;
    while (rc == 0 && (first < last || cur)) {
        uint64_t n = last - first < BATCH_PAGES ? last - first : BATCH_PAGES;
        struct batch *next = n ? g->b[which] : NULL;
        if (cur && cur->nblocks && next && par_threads(g->par) > 1) {
            struct step x = {g, a, next, cur, g->buf[which], first, n, 0, 0};
            par_run(g->par, step_part, &x, (size_t)par_threads(g->par));
            rc = x.rc;
        } else {
            if (cur && cur->nblocks) {
                struct cpart cp = {cur, g->cctx};
                par_run(g->par, compress_part, &cp, cur->nblocks);
            }
            if (next)
                rc = read_batch(g, a, next, g->buf[which], first, n, 1);
        }
        if (rc == 0 && cur)
            rc = finish_batch(g, cur, cur_first, own);
        cur = next;
        cur_first = first;
        first += n;
        which ^= 1;
    }
    return rc;
}

static void hints_free(struct hints *h)
{
    if (h) {
        free(h->v);
        free(h);
    }
}

/* Loads the hints of a (see struct hints); a damaged row only means no
** hints: the page index lookups still give the right answer. */
static int hints_load(struct ingest *g, struct art *a)
{
    sqlite3_stmt *st;
    pm_map pm = {0};
    int64_t pmap;
    struct hints *h = calloc(1, sizeof *h);
    if (!h)
        return fks__err(FKS_ENOMEM, "out of memory");
    int rc = map_of_artifact(&pmap, g->s->db, a->parent_art);
    if (rc == 0)
        rc = map_load(&pm, g->s->db, pmap);
    if (rc == FKS_ECORRUPT) {         /* no hints; the lookups still answer */
        rc = 0;
        pm.n = 0;
    }
    if (rc || (rc = cat_prepare(g->s->db, &st, "SELECT id, hash FROM page WHERE id BETWEEN ?1 AND ?2 ORDER BY id")) != 0) {
        free(h);
        pm_free(&pm);
        return rc;
    }
    int ok = 1;
    for (size_t i = 0; i < pm.n && rc == 0 && ok; i++) {
        int src;
        uint64_t k = 0;
        sqlite3_bind_int64(st, 1, pm.r[i].page);
        sqlite3_bind_int64(st, 2, pm.r[i].page + (int64_t)pm.r[i].npages - 1);
        while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
            if (sqlite3_column_bytes(st, 1) != 16 || sqlite3_column_int64(st, 0) != pm.r[i].page + (int64_t)k) {
                ok = 0;
                break;
            }
            if (h->n == h->alloc) {
                size_t na = h->alloc ? h->alloc * 2 : 4096;
                struct hint *nv = realloc(h->v, na * sizeof *nv);
                if (!nv) {
                    rc = fks__err(FKS_ENOMEM, "out of memory (parent page hints)");
                    break;
                }
                h->v = nv;
                h->alloc = na;
            }
            struct hint *e = &h->v[h->n++];
            e->pgno = pm.r[i].pgno + k;
            e->id = sqlite3_column_int64(st, 0);
            memcpy(e->hash, sqlite3_column_blob(st, 1), 16);
            k++;
        }
        sqlite3_reset(st);
        if (rc == 0 && ok && src != SQLITE_DONE)
            rc = cat_err(g->s->db, src, "catalog: read the parent's page hashes");
    }
    sqlite3_finalize(st);
    pm_free(&pm);
    if (rc || !ok || h->n == 0) {
        hints_free(h);
        return rc;
    }
    a->hints = h;
    return 0;
}

static int ingest_art(struct ingest *g, struct art *a)
{
    uint64_t npages = (a->size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE;
    pm_map own = {0}, cover = {0};
    int rc = 0;
    uint64_t pos = 0;

    if (a->parent_art && !a->in->diff && (rc = hints_load(g, a)) != 0)
        return rc;
    while (pos < npages) {
        off_t d = lseek(a->fd, (off_t)(pos * FKS_PAGE_SIZE), SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            break;                                  /* only a hole left */
        uint64_t first, last;
        if (d < 0) {
            if (errno != EINVAL && errno != EOPNOTSUPP) {
                rc = fks__errno(FKS_EIO, errno, "seek in %s", a->in->path);
                goto out;
            }
            first = pos, last = npages;             /* no hole support: all data */
        } else {
            off_t h = lseek(a->fd, d, SEEK_HOLE);
            if (h < 0 || h <= d) {
                rc = fks__errno(FKS_EIO, h < 0 ? errno : EIO, "seek in %s", a->in->path);
                goto out;
            }
            first = (uint64_t)d / FKS_PAGE_SIZE;
            last = ((uint64_t)h + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE;
            if (last > npages)
                last = npages;
            if (first < pos)
                first = pos;
        }
        g->done += (first - pos) * FKS_PAGE_SIZE;   /* the hole before it */
        if (a->in->diff && (rc = pm_push_run(&cover, first, last - first, 0)) != 0)
            goto out;
        if ((rc = ingest_range(g, a, first, last, &own)) != 0)
            goto out;
        pos = last;
    }
    if (a->in->diff) {
        /* The delta: the cover as zeros, the pages stored or found over it
        ** (a dirtied page that is all zeros stays a zero run). */
        pm_free(&a->map);
        if ((rc = pm_apply(&a->map, &cover, &own, 0)) != 0)
            goto out;
    } else {
        a->map = own;
        own = (pm_map){0};
    }
out:
    hints_free(a->hints);
    a->hints = NULL;
    pm_free(&own);
    pm_free(&cover);
    if (rc)
        fks__errctx(rc, "artifact %s (%s)", a->in->name, a->in->path);
    return rc;
}

/* ------------------------------------------------------------- commit */

static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        return cat_err(db, src, what);
    return 0;
}

/* The highest page id there is (0 for none): it moves whenever pages are
** added, so an ingest can tell whether its lookups may be stale. */
static int top_page(sqlite3 *db, int64_t *top)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "SELECT coalesce(max(id), 0) FROM page");
    if (rc)
        return rc;
    int s = sqlite3_step(st);
    *top = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (s != SQLITE_ROW)
        rc = cat_err(db, s, "catalog: read page index");
    sqlite3_finalize(st);
    return rc;
}

/* Every existing page a map names must still be there (see design 4). */
static int check_refs(struct ingest *g)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(g->s->db, &st, "SELECT count(*) FROM page WHERE id BETWEEN ?1 AND ?2");
    for (size_t i = 0; i < g->n && rc == 0; i++) {
        const pm_map *m = &g->arts[i].map;
        for (size_t j = 0; j < m->n && rc == 0; j++) {
            if (m->r[j].page >= PM_NEW || m->r[j].page == 0)
                continue;
            sqlite3_bind_int64(st, 1, m->r[j].page);
            sqlite3_bind_int64(st, 2, m->r[j].page + (int64_t)m->r[j].npages - 1);
            if (sqlite3_step(st) != SQLITE_ROW)
                rc = cat_err(g->s->db, sqlite3_errcode(g->s->db), "catalog: check pages");
            else if ((uint64_t)sqlite3_column_int64(st, 0) != m->r[j].npages)
                rc = RETRY_GC;
            sqlite3_reset(st);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
    if (v <= 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* Appends to a the hashes of pages pgno .. pgno+npages-1, which hold the
** catalog pages page .. page+npages-1 (rows this transaction may have
** just inserted). */
static int push_hashes(sqlite3_stmt *st, mf_artifact *a, uint64_t pgno, uint64_t npages, int64_t page)
{
    int rc = 0, src;
    uint64_t k = 0;
    sqlite3_bind_int64(st, 1, page);
    sqlite3_bind_int64(st, 2, page + (int64_t)npages - 1);
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 0) != page + (int64_t)k || sqlite3_column_bytes(st, 1) != 16)
            break;
        rc = mf_push(a, pgno + k, sqlite3_column_blob(st, 1), 0);
        k++;
    }
    if (rc == 0 && k != npages)
        rc = src == SQLITE_ROW || src == SQLITE_DONE
             ? fks__err(FKS_ECORRUPT, "page %lld of %s's map has no index row", (long long)page + (long long)k,
                        a->name)
             : cat_err(sqlite3_db_handle(st), src, "catalog: read page hashes");
    sqlite3_reset(st);
    return rc;
}

/* Runs as the public fks_run, for fks_runs_diff. */
static fks_run *as_runs(const pm_map *m)
{
    fks_run *v = malloc((m->n + 1) * sizeof *v);
    for (size_t i = 0; v && i < m->n; i++)
        v[i] = (fks_run){m->r[i].pgno, m->r[i].npages, m->r[i].page};
    return v;
}

/* What commit stored for one artifact: its map node, its complete map
** when known, and its delta on the parent's when it has one. */
struct stored {
    int64_t pmap;
    pm_map full, delta;
    int has_full, has_delta;
};

/* delta = the pages where full differs from parent (zeros where full has
** none). */
static int delta_of(pm_map *delta, const pm_map *parent, const pm_map *full)
{
    fks_run *ra = as_runs(parent), *rb = as_runs(full);
    fks_range *dr = NULL;
    size_t nd = 0;
    uint64_t pages = 0;
    pm_map z = {0}, clip = {0};
    int rc = ra && rb ? fks_runs_diff(&dr, &nd, &pages, ra, parent->n, rb, full->n)
                      : fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < nd && rc == 0; i++)
        rc = pm_push_run(&z, dr[i].pgno, dr[i].npages, 0);
    if (rc == 0)
        rc = pm_restrict(&clip, full, &z);
    if (rc == 0)
        rc = pm_apply(delta, &z, &clip, 0);
    free(ra);
    free(rb);
    free(dr);
    pm_free(&z);
    pm_free(&clip);
    return rc;
}

/* Stores artifact a's map, out (a Full's complete map or a Diff's delta,
** page ids final), as a node (map.c). A Full whose parent has an artifact
** of the same size is stored as a delta on it when that is the smaller. */
static int store_map(struct stored *r, struct ingest *g, const struct art *a, pm_map *out)
{
    sqlite3 *db = g->s->db;
    uint64_t npages = (a->size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE;
    int64_t pp = 0;
    int rc = a->parent_art ? map_of_artifact(&pp, db, a->parent_art) : 0;
    if (rc)
        return rc;
    if (a->in->diff) {
        r->delta = *out;
        *out = (pm_map){0};
        r->has_delta = 1;
        return map_put(&r->pmap, db, pp, &r->delta, npages);
    }
    r->full = *out;
    *out = (pm_map){0};
    r->has_full = 1;
    if (pp && a->parent_size == a->size) {
        pm_map parent = {0};
        if ((rc = map_load(&parent, db, pp)) == 0)
            rc = delta_of(&r->delta, &parent, &r->full);
        pm_free(&parent);
        if (rc)
            return rc;
        if (r->delta.n * 2 < r->full.n + 2) {
            r->has_delta = 1;
            return map_put(&r->pmap, db, pp, &r->delta, npages);
        }
        pm_free(&r->delta);
    }
    return map_put(&r->pmap, db, 0, &r->full, npages);
}

/* The manifest of the snapshot being committed (manifest.c). A Diff
** artifact whose parent has a manifest lists only its delta's pages;
** anything else lists its whole map, so that a Full snapshot is a point
** recover can always start again from. */
static int build_manifest(manifest *m, struct ingest *g, int64_t snap, int64_t created_ms, int64_t added,
                          struct stored *sv)
{
    const fks_ingest_opts *o = g->o;
    sqlite3_stmt *st = NULL;
    int rc;

    m->id = snap;
    m->parent_id = g->parent_id;
    m->created_ms = created_ms;
    m->stored_bytes = (int64_t)g->st.stored_bytes;
    m->new_pages = added;
    m->pause_ms = o->pause_ms > 0 ? o->pause_ms : -1;
    m->snapshot_ms = o->snapshot_ms > 0 ? o->snapshot_ms : -1;
    m->ingest_ms = -1;
    m->diff_bytes = o->diff_bytes > 0 ? o->diff_bytes : -1;
    snprintf(m->tag, sizeof m->tag, "%s", o->tag);
    int parent_mf = g->parent_id && manifest_exists(g->s->dir, g->parent_id);
    if ((rc = cat_prepare(g->s->db, &st, "SELECT id, hash FROM page WHERE id BETWEEN ?1 AND ?2 ORDER BY id")) != 0)
        return rc;
    for (size_t i = 0; i < g->n && rc == 0; i++) {
        const struct art *a = &g->arts[i];
        struct stored *r = &sv[i];
        int delta = a->in->diff && parent_mf;
        mf_artifact *ma;
        if ((rc = manifest_add_artifact(&ma, m, a->in->name, a->size, delta)) != 0)
            break;
        if (!delta && !r->has_full) {
            if ((rc = map_load(&r->full, g->s->db, r->pmap)) != 0)
                break;
            r->has_full = 1;
        }
        const pm_map *mm = delta ? &r->delta : &r->full;
        for (size_t j = 0; j < mm->n && rc == 0; j++) {
            const pm_run *x = &mm->r[j];
            if (x->page)
                rc = push_hashes(st, ma, x->pgno, x->npages, x->page);
            for (uint64_t k = 0; !x->page && k < x->npages && rc == 0; k++)
                rc = mf_push(ma, x->pgno + k, NULL, 1);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* commit, step 1: the tag is still free, the parent still the one read at
** the start, and the pages found at the start still stored (check_refs, if
** a gc ran meanwhile). */
static int commit_check_names(struct ingest *g)
{
    sqlite3 *db = g->s->db;
    const fks_ingest_opts *o = g->o;
    int64_t id, gen = 0;
    int rc;

    if ((rc = cat_snapshot(&id, NULL, db, o->tag, 0)) != 0)
        return rc;
    if (id)
        return fks__err(FKS_EEXIST, "tag %s already exists", o->tag);
    if (o->parent) {
        if ((rc = cat_snapshot(&id, NULL, db, o->parent, 0)) != 0)
            return rc;
        if (id != g->parent_id)
            return fks__err(FKS_ENOTFOUND, "parent %s was removed while %s was being ingested", o->parent, o->tag);
    }
    if ((rc = cat_meta_get(db, "gc_generation", &gen)) != 0)
        return rc;
    return gen != g->gc_gen ? check_refs(g) : 0;
}

/* commit, step 2: page ids for the new pages. final[k] gets the id of the
** k-th new page (np), *added how many rows were inserted. New pages get
** consecutive ids in the order they were stored; block rows follow them
** (pidx_blocks). If pages were added since the first lookup, a concurrent
** ingest may have stored one of ours first: then each is looked up again,
** and the existing row is used. */
static int commit_page_ids(int64_t *final, uint64_t *added, struct ingest *g)
{
    sqlite3 *db = g->s->db;
    sqlite3_stmt *st = NULL;
    int64_t next = 0, top;
    int rc;

    if ((rc = cat_meta_get(db, "next_page_id", &next)) != 0)
        return rc;
    if (next <= 0) {
        if ((rc = cat_prepare(db, &st, "SELECT coalesce(max(id), 0) + 1 FROM page")) != 0)
            return rc;
        next = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
        sqlite3_finalize(st);
    }
    if ((rc = top_page(db, &top)) != 0 || (rc = pidx_begin(g->lookup)) != 0)
        return rc;
    struct pidx_blocks blocks = {.x = g->lookup};
    *added = 0;
    for (size_t k = 0; k < g->np.n && rc == 0; k++) {
        final[k] = 0;
        if (top != g->top_page && (rc = pidx_find(g->lookup, g->np.hash[k], &final[k])) != 0)
            break;
        if (final[k])
            continue;
        if ((rc = pidx_add_page(g->lookup, next, g->np.hash[k], g->np.rlen[k])) != 0 ||
            (rc = pidx_blocks_push(&blocks, next, g->np.chunk[k], g->np.off[k], g->np.len[k], g->np.slot[k])) != 0)
            break;
        final[k] = next++;
        (*added)++;
    }
    if (rc == 0)
        rc = pidx_blocks_flush(&blocks);
    return rc ? rc : cat_meta_set(db, "next_page_id", next);
}

/* commit, step 3: the snapshot row; *snap its id. Snapshot ids are never
** reused (manifests are named by them, and a removed snapshot's manifest
** may stay as a tombstone): the next id is kept in meta, above every id
** ever given. */
static int commit_snapshot_row(int64_t *snap, struct ingest *g, int64_t created_ms, uint64_t added)
{
    sqlite3 *db = g->s->db;
    const fks_ingest_opts *o = g->o;
    sqlite3_stmt *st = NULL;
    int rc, src;

    *snap = 0;
    if ((rc = cat_meta_get(db, "next_snapshot_id", snap)) != 0 ||
        (rc = cat_prepare(db, &st, "SELECT coalesce(max(id), 0) + 1 FROM snapshot")) != 0)
        return rc;
    if ((src = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return cat_err(db, src, "catalog: next snapshot id");
    }
    if (sqlite3_column_int64(st, 0) > *snap)
        *snap = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if ((rc = cat_meta_set(db, "next_snapshot_id", *snap + 1)) != 0 ||
        (rc = cat_prepare(db, &st, "INSERT INTO snapshot(tag, parent_id, created_ms, stored_bytes, new_pages, "
                          "pause_ms, snapshot_ms, diff_bytes, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")) != 0)
        return rc;
    sqlite3_bind_text(st, 1, o->tag, -1, SQLITE_STATIC);
    if (g->parent_id)
        sqlite3_bind_int64(st, 2, g->parent_id);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, created_ms);
    sqlite3_bind_int64(st, 9, *snap);
    sqlite3_bind_int64(st, 4, (int64_t)g->st.stored_bytes);
    sqlite3_bind_int64(st, 5, (int64_t)added);
    bind_opt(st, 6, o->pause_ms);
    bind_opt(st, 7, o->snapshot_ms);
    bind_opt(st, 8, o->diff_bytes);
    rc = step_done(db, st, "catalog: insert snapshot");
    sqlite3_finalize(st);
    return rc;
}

/* commit, step 4: each artifact's page map with the new pages' ids
** (PM_NEW references resolved through final, runs re-coalesced, as ids
** may now join), stored (sv[i]), and its artifact row. */
static int commit_artifacts(struct stored *sv, struct ingest *g, int64_t snap, const int64_t *final)
{
    sqlite3 *db = g->s->db;
    sqlite3_stmt *st = NULL;
    pm_map out = {0};
    int rc;

    if ((rc = cat_prepare(db, &st, "INSERT INTO artifact(snapshot_id, name, size, pmap_id) VALUES (?1, ?2, ?3, ?4)")) != 0)
        return rc;
    for (size_t i = 0; i < g->n && rc == 0; i++) {
        struct art *a = &g->arts[i];
        pm_free(&out);
        memset(&out, 0, sizeof out);
        for (size_t j = 0; j < a->map.n && rc == 0; j++) {
            pm_run *r = &a->map.r[j];
            if (r->page < PM_NEW) {
                rc = pm_push_run(&out, r->pgno, r->npages, r->page);
                continue;
            }
            for (uint64_t p = 0; p < r->npages && rc == 0; p++)
                rc = pm_push(&out, r->pgno + p, final[r->page - PM_NEW + (int64_t)p]);
        }
        if (rc || (rc = store_map(&sv[i], g, a, &out)) != 0)
            break;
        sqlite3_bind_int64(st, 1, snap);
        sqlite3_bind_text(st, 2, a->in->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)a->size);
        sqlite3_bind_int64(st, 4, sv[i].pmap);
        rc = step_done(db, st, "catalog: insert artifact");
    }
    pm_free(&out);
    sqlite3_finalize(st);
    return rc;
}

/* Makes the ingest a snapshot: chunk data synced first, then one catalog
** transaction (the steps above), the manifest durable before the commit
** that names it (removed again if the commit fails). */
static int commit(struct ingest *g)
{
    fks_store *s = g->s;
    int64_t *final = NULL, snap = 0, created_ms = fks__wall_ms();
    struct stored *sv = NULL;
    manifest mf = {0};
    uint64_t added = 0;
    int mf_written = 0;
    int rc;

    if ((rc = chunk_writer_sync(g->w)) != 0)      /* data first ... */
        return rc;
    if ((rc = cat_begin(s)) != 0)                 /* ... then the catalog */
        return rc;
    if (!(final = malloc((g->np.n + 1) * sizeof *final)) || !(sv = calloc(g->n + 1, sizeof *sv)))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    if (rc == 0 && (rc = commit_check_names(g)) == 0 && (rc = commit_page_ids(final, &added, g)) == 0 &&
        (rc = commit_snapshot_row(&snap, g, created_ms, added)) == 0 && (rc = commit_artifacts(sv, g, snap, final)) == 0)
        rc = chunk_writer_commit(g->w);
    /* The manifest, durable before the row that makes it a snapshot. */
    if (rc == 0 && (rc = build_manifest(&mf, g, snap, created_ms, (int64_t)added, sv)) == 0 &&
        (rc = manifest_write(s->dir, &mf)) == 0)
        mf_written = 1;
    if (rc == 0)
        g->st.new_pages = added;
    free(final);
    for (size_t i = 0; sv && i < g->n; i++) {
        pm_free(&sv[i].full);
        pm_free(&sv[i].delta);
    }
    free(sv);
    pidx_end(g->lookup);
    rc = cat_end(s, rc);
    if (rc && mf_written) {           /* not committed: nobody names it */
        char p[PATH_MAX];
        if (manifest_path(p, sizeof p, s->dir, mf.id, ".manifest") == 0)
            unlink(p);
    }
    manifest_clear(&mf);
    return rc;
}

/* ------------------------------------------------------------- driver */

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" :
           S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" : S_ISLNK(m) ? "a symbolic link" :
           "a special file";
}

/* Inputs are read by offset up to their size (and again if the ingest
** starts over), so the size fstat reports must be the bytes there are.
** Files of the kernel's pseudo file systems are not like that (procfs
** reports 0 bytes, sysfs 4096, whatever they hold) and are refused; any
** other file with bytes past its size (it grows, or lies) too, rather
** than stored short. */
static int check_size(struct art *a)
{
    struct statfs fs;
    if (fstatfs(a->fd, &fs) == 0 && (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC ||
                                     fs.f_type == DEBUGFS_MAGIC || fs.f_type == CGROUP2_SUPER_MAGIC ||
                                     fs.f_type == CGROUP_SUPER_MAGIC))
        return fks__err(FKS_EINVAL, "%s file %s is on a kernel pseudo file system (proc, sys, ...), whose "
                        "file sizes are not their contents: copy it to a regular file first", a->in->name,
                        a->in->path);
    char probe;
    ssize_t n;
    while ((n = pread(a->fd, &probe, 1, (off_t)a->size)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return fks__errno(FKS_EIO, errno, "read %s", a->in->path);
    if (n > 0)
        return fks__err(FKS_EINVAL, "%s file %s has bytes past the %llu bytes its size says (is it still "
                        "being written?): copy it to a regular file first", a->in->name, a->in->path,
                        (unsigned long long)a->size);
    return 0;
}

static int open_inputs(struct ingest *g)
{
    const fks_ingest_opts *o = g->o;
    fks_store *s = g->s;
    int rc;

    for (size_t i = 0; i < g->n; i++) {
        struct art *a = &g->arts[i];
        a->in = &o->artifacts[i];
        a->fd = -1;
        if ((rc = fks_check_name(a->in->name)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->artifacts[j].name, a->in->name) == 0)
                return fks__err(FKS_EINVAL, "artifact %s given twice", a->in->name);
        /* O_NONBLOCK: opening a FIFO must not wait for a writer; the
        ** type check below refuses it. Regular files ignore the flag. */
        a->fd = open(a->in->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (o->no_follow ? O_NOFOLLOW : 0));
        if (a->fd < 0 && errno == ELOOP && o->no_follow)
            return fks__err(FKS_EINVAL, "%s file %s is a symbolic link (refused)", a->in->name, a->in->path);
        struct stat sb;
        /* A socket cannot be opened (ENXIO): bad input, not an I/O error. */
        if (a->fd < 0 && (errno == ENXIO || errno == EOPNOTSUPP) && stat(a->in->path, &sb) == 0 &&
            !S_ISREG(sb.st_mode))
            return fks__err(FKS_EINVAL, "%s file %s is %s, not a regular file", a->in->name, a->in->path,
                            file_kind(sb.st_mode));
        if (a->fd < 0)
            return fks__errno(errno == ENOENT ? FKS_ENOTFOUND : FKS_EIO, errno, "%s file %s", a->in->name,
                              a->in->path);
        if (fstat(a->fd, &sb) != 0)
            return fks__errno(FKS_EIO, errno, "stat %s", a->in->path);
        if (!S_ISREG(sb.st_mode))
            return fks__err(FKS_EINVAL, "%s file %s is %s, not a regular file", a->in->name, a->in->path,
                            file_kind(sb.st_mode));
        a->size = (uint64_t)sb.st_size;
        if ((rc = check_size(a)) != 0)
            return rc;
        int is_memory = strcmp(a->in->name, "memory") == 0;
        if ((is_memory || a->in->diff) && a->size % FKS_PAGE_SIZE != 0)
            return fks__err(FKS_EINVAL, "%s file %s is %llu bytes, not a multiple of the %d-byte page "
                            "size (truncated?)", a->in->name, a->in->path, (unsigned long long)a->size,
                            FKS_PAGE_SIZE);
        g->total += a->size;
        if (a->in->diff && !o->parent)
            return fks__err(FKS_EINVAL, "%s file %s is a diff: a diff needs a parent snapshot", a->in->name,
                            a->in->path);
        if (!o->parent)
            continue;
        /* The parent's artifact of the same name: a Diff's base, or a Full
        ** image's lookup hints (struct hints), when there is one. */
        sqlite3_stmt *st;
        if ((rc = cat_prepare(s->db, &st, "SELECT id, size FROM artifact WHERE snapshot_id = ?1 AND name = ?2")) != 0)
            return rc;
        sqlite3_bind_int64(st, 1, g->parent_id);
        sqlite3_bind_text(st, 2, a->in->name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            a->parent_art = sqlite3_column_int64(st, 0);
            a->parent_size = (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        if (!a->in->diff)
            continue;
        if (!a->parent_art)
            return fks__err(FKS_ENOTFOUND, "parent %s has no %s artifact to apply the diff %s to",
                            o->parent, a->in->name, a->in->path);
        if (a->parent_size != a->size)
            return fks__err(FKS_EINVAL, "diff %s is %llu bytes but the parent %s's %s is %llu bytes: "
                            "a diff must have its parent's logical size", a->in->path,
                            (unsigned long long)a->size, o->parent, a->in->name,
                            (unsigned long long)a->parent_size);
    }
    return 0;
}

static void reset_attempt(struct ingest *g)
{
    for (size_t i = 0; i < g->n; i++) {
        pm_free(&g->arts[i].map);
    }
    np_free(&g->np);
    memset(&g->st, 0, sizeof g->st);
    g->done = 0;
    chunk_writer_free(g->w);
    g->w = NULL;
}

/* The request checked against the store: a new tag, a parent that exists
** (its id in g->parent_id). */
static int ingest_check(struct ingest *g)
{
    const fks_ingest_opts *o = g->o;
    int64_t id;
    int rc;
    if (g->s->readonly)
        return fks__err(FKS_EINVAL, "store opened read-only");
    if ((rc = fks_check_tag(o->tag)) != 0)
        return rc;
    if (o->parent && (rc = fks_check_tag(o->parent)) != 0)
        return fks__errctx(rc, "parent");
    if (g->n == 0)
        return fks__err(FKS_EINVAL, "nothing to ingest: give at least one file");
    if ((rc = cat_snapshot(&id, NULL, g->s->db, o->tag, 0)) != 0)
        return rc;
    if (id)
        return fks__err(FKS_EEXIST, "tag %s already exists", o->tag);
    if (o->parent) {
        if ((rc = cat_snapshot(&g->parent_id, NULL, g->s->db, o->parent, 0)) != 0)
            return rc;
        if (!g->parent_id)
            return fks__err(FKS_ENOTFOUND, "parent snapshot %s not found", o->parent);
    }
    return 0;
}

/* Buffers, threads and one compression context per thread. */
static int ingest_setup(struct ingest *g)
{
    int rc;
    g->arts = calloc(g->n, sizeof *g->arts);
    g->buf[0] = malloc(BATCH_PAGES * FKS_PAGE_SIZE);
    g->buf[1] = malloc(BATCH_PAGES * FKS_PAGE_SIZE);
    g->b[0] = malloc(sizeof *g->b[0]);
    g->b[1] = malloc(sizeof *g->b[1]);
    for (size_t i = 0; g->arts && i < g->n; i++)
        g->arts[i].fd = -1;            /* before any return: ingest_free closes fds >= 0 */
    if (!g->arts || !g->buf[0] || !g->buf[1] || !g->b[0] || !g->b[1])
        return fks__err(FKS_ENOMEM, "out of memory");
    if ((rc = par_new(&g->par, 0)) != 0)
        return rc;
    if (!(g->cctx = calloc((size_t)par_threads(g->par), sizeof *g->cctx)))
        return fks__err(FKS_ENOMEM, "out of memory");
    for (int i = 0; i < par_threads(g->par); i++)
        if (!(g->cctx[i] = ZSTD_createCCtx()))
            return fks__err(FKS_ENOMEM, "out of memory");
    return 0;
}

/* Reads every artifact and commits, again from the start (at most
** MAX_ATTEMPTS times) when a concurrent gc removed a page it found. */
static int ingest_attempts(struct ingest *g)
{
    for (int attempt = 1;; attempt++) {
        int rc;
        if ((rc = cat_meta_get(g->s->db, "gc_generation", &g->gc_gen)) != 0 ||
            (rc = chunk_writer_new(&g->w, g->s)) != 0)
            return rc;
        for (size_t i = 0; i < g->n && rc == 0; i++)
            rc = ingest_art(g, &g->arts[i]);
        if (rc == 0)
            rc = commit(g);
        if (rc != RETRY_GC)
            return rc;
        if (attempt == MAX_ATTEMPTS)
            return fks__err(FKS_ELOCKED, "ingest %s: pages it found were removed by a concurrent gc "
                            "%d times; try again", g->o->tag, attempt);
        reset_attempt(g);
    }
}

static void ingest_free(struct ingest *g)
{
    pidx_close(g->lookup);
    chunk_writer_free(g->w);
    for (size_t i = 0; g->arts && i < g->n; i++) {
        if (g->arts[i].fd >= 0)
            close(g->arts[i].fd);
        pm_free(&g->arts[i].map);
    }
    np_free(&g->np);
    free(g->arts);
    free(g->buf[0]);
    free(g->buf[1]);
    free(g->b[0]);
    free(g->b[1]);
    for (int i = 0; g->cctx && i < par_threads(g->par); i++)
        ZSTD_freeCCtx(g->cctx[i]);
    free(g->cctx);
    par_free(g->par);
}

int fks_ingest(fks_ingest_stats *stats, fks_store *s, const fks_ingest_opts *o)
{
    struct ingest g = {0};
    int rc;
    double t0 = fks__now();

    g.s = s;
    g.o = o;
    g.n = o->n_artifacts;
    if ((rc = ingest_check(&g)) != 0)
        return rc;
    if ((rc = ingest_setup(&g)) != 0 || (rc = open_inputs(&g)) != 0)
        goto out;
    fks__progress_init(&g.prog, o->progress, o->progress_arg, g.total);
    if ((rc = pidx_open(&g.lookup, s->db)) != 0 || (rc = top_page(s->db, &g.top_page)) != 0 ||
        (rc = ingest_attempts(&g)) != 0)
        goto out;
    report(&g, 1);
    for (size_t i = 0; i < g.n; i++)
        g.st.logical_bytes += g.arts[i].size;
    g.st.seconds = fks__now() - t0;
    if (stats)
        *stats = g.st;
    /* Leave a preallocated chunk ready for the next ingest (outside any
    ** pause window that the caller might be timing). */
    chunk_writer_free(g.w);
    g.w = NULL;
    (void)chunk_prealloc_spare(s);   /* an optimisation: the ingest is committed */
out:
    if (rc && rc != FKS_EEXIST && rc != FKS_ENOTFOUND && rc != FKS_EINVAL)
        fks__errctx(rc, "ingest %s", o->tag);
    ingest_free(&g);
    return rc;
}

int fks_set_ingest_ms(fks_store *s, const char *tag, int64_t ingest_ms)
{
    int rc = cat_begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if ((rc = cat_prepare(s->db, &st, "UPDATE snapshot SET ingest_ms = ?2 WHERE tag = ?1")) == 0) {
        sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, ingest_ms);
        rc = step_done(s->db, st, "catalog: record ingest time");
        if (rc == 0 && sqlite3_changes(s->db) == 0)
            rc = cat_not_found(tag);
        sqlite3_finalize(st);
    }
    return cat_end(s, rc);
}
