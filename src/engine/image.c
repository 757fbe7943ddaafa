/*
** image.c: one artifact of a snapshot, opened for random reads page by
** page (fks_image_*), and single pages by hash or id (fks_page_*).
**
** Design
**  1. fks_image_open reads the artifact's complete page map once, in one
**     read transaction (map_load_artifact), and keeps it sorted by pgno: a
**     page's id is a binary search away, with no catalog access.
**  2. A stored page's location is read from the catalog when it is first
**     needed (cat_page_get) and not kept: the reads of a page server are
**     sparse, and a location kept could be one a gc has since moved.
**  3. Threads share one handle. The catalog connection is used under the
**     handle's mutex; decoding is not: each read borrows a chunk reader
**     from a small pool (chunk readers keep the last blocks decoded, so
**     neighbouring pages of one block cost one decode).
**  4. A read that fails because the chunk file is gone or holds other
**     bytes (a concurrent gc compacted it) is retried once with the
**     location read afresh; a second failure is the error.
**  5. fks_image_preload trades design 2 for speed: it reads the location
**     of every stored page of the map once (one read transaction, one
**     range query per run) into an array indexed like the map (run i's
**     pages from base[i] on), and reads then touch the catalog only for
**     design 4's retry. For a page server, whose lease keeps the pages
**     (a gc may still move them: design 4 covers that). The array is
**     written before any read and never after, so readers take no lock.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "chunk.h"
#include "map.h"
#include "pindex.h"
#include "store.h"
#include "util.h"

#define POOL 8

struct fks_image {
    fks_store *s;
    fks_image_info info;
    pm_map map;
    fks_run *runs;               /* the map as the public type */
    struct cat_page *loc;        /* design 5: NULL until preloaded */
    uint64_t *base;              /* loc index of run i's first page */
    pthread_mutex_t mu;          /* guards the catalog, the pool and st */
    chunk_reader *pool[POOL];
    int npool;
    fks_image_stats st;
    uint64_t gone_blocks, gone_bytes;   /* counts of readers freed */
};

static void image_free(fks_image *im)
{
    for (int i = 0; i < im->npool; i++)
        chunk_reader_free(im->pool[i]);
    pm_free(&im->map);
    free(im->runs);
    free(im->loc);
    free(im->base);
    pthread_mutex_destroy(&im->mu);
    free(im);
}

int fks_image_open(fks_image **out, fks_store *s, const char *tag, const char *artifact)
{
    *out = NULL;
    fks_image *im = calloc(1, sizeof *im);
    if (!im)
        return fks__err(FKS_ENOMEM, "out of memory");
    pthread_mutex_init(&im->mu, NULL);
    im->s = s;
    int64_t snap = 0, art = 0;
    uint64_t size = 0;
    int rc = cat_read_begin(s->db);
    if (rc == 0) {
        if ((rc = cat_snapshot(&snap, NULL, s->db, tag, 1)) == 0 &&
            (rc = cat_artifact_get(&art, &size, s->db, snap, artifact)) == 0)
            rc = map_load_artifact(&im->map, s->db, art, (size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE);
        int rc2 = cat_read_end(s->db);
        if (rc == 0)
            rc = rc2;
    }
    if (rc == 0) {
        im->runs = malloc((im->map.n + 1) * sizeof *im->runs);
        if (!im->runs)
            rc = fks__err(FKS_ENOMEM, "out of memory (page map of %zu runs)", im->map.n);
    }
    if (rc || !im->runs) {
        image_free(im);
        return fks__errctx(rc, "snapshot %s, %s", tag, artifact);
    }
    im->info.snapshot_id = snap;
    im->info.size = size;
    im->info.npages = (size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE;
    for (size_t i = 0; i < im->map.n; i++) {
        const pm_run *r = &im->map.r[i];
        im->runs[i] = (fks_run){r->pgno, r->npages, r->page};
        im->info.stored_pages += r->npages;
    }
    *out = im;
    return 0;
}

void fks_image_close(fks_image *im)
{
    if (im)
        image_free(im);
}

void fks_image_info_get(fks_image_info *out, const fks_image *im)
{
    *out = im->info;
}

const fks_run *fks_image_runs(const fks_image *im, size_t *n)
{
    *n = im->map.n;
    return im->runs;
}

/* Page id held by pgno, 0 for a zero page. */
static int64_t page_of(const fks_image *im, uint64_t pgno)
{
    size_t i = pm_find(&im->map, pgno);
    return i == PM_NONE ? 0 : im->map.r[i].page + (int64_t)(pgno - im->map.r[i].pgno);
}

static int locate(struct cat_page *p, fks_image *im, int64_t id)
{
    pthread_mutex_lock(&im->mu);
    int rc = cat_page_get(p, im->s->db, id);
    pthread_mutex_unlock(&im->mu);
    return rc == FKS_ENOTFOUND ? fks__err(FKS_ECORRUPT, "page %lld is missing from the page index",
                                          (long long)id)
                               : rc;
}

static int borrow(chunk_reader **cr, fks_image *im)
{
    pthread_mutex_lock(&im->mu);
    *cr = im->npool ? im->pool[--im->npool] : NULL;
    pthread_mutex_unlock(&im->mu);
    return *cr ? 0 : chunk_reader_new(cr, im->s);
}

static void give_back(fks_image *im, chunk_reader *cr, uint64_t pages, uint64_t zeros)
{
    uint64_t b, n;
    chunk_reader_counts(cr, &b, &n);
    pthread_mutex_lock(&im->mu);
    im->st.pages_read += pages;
    im->st.zero_pages += zeros;
    if (im->npool < POOL) {
        im->pool[im->npool++] = cr;
        cr = NULL;
    } else {
        im->gone_blocks += b;
        im->gone_bytes += n;
    }
    pthread_mutex_unlock(&im->mu);
    chunk_reader_free(cr);
}

/* Reads stored page id into out (4096 bytes, zero padded); pre: its
** preloaded location (design 5) or NULL. */
static int read_page(fks_image *im, chunk_reader *cr, int64_t id, const struct cat_page *pre, uint8_t *out,
                     uint32_t *len)
{
    struct cat_page p;
    int rc = 0;
    if (pre)
        p = *pre;
    else
        rc = locate(&p, im, id);
    if (rc == 0) {
        rc = chunk_read(cr, p.chunk_id, p.off, p.len, p.slot, p.rlen, p.hash, out);
        if (rc == FKS_ENOTFOUND || rc == FKS_ECORRUPT) {      /* design 4 */
            chunk_reader_reset(cr);
            if ((rc = locate(&p, im, id)) == 0)
                rc = chunk_read(cr, p.chunk_id, p.off, p.len, p.slot, p.rlen, p.hash, out);
        }
    }
    if (rc == 0) {
        memset(out + p.rlen, 0, FKS_PAGE_SIZE - p.rlen);
        if (len)
            *len = p.rlen;
    }
    return rc;
}

int fks_image_read(fks_image *im, uint64_t pgno, uint64_t npages, void *buf)
{
    if (pgno > im->info.npages || npages > im->info.npages - pgno)
        return fks__err(FKS_EINVAL, "pages %llu+%llu are outside the image (%llu pages)",
                        (unsigned long long)pgno, (unsigned long long)npages,
                        (unsigned long long)im->info.npages);
    chunk_reader *cr;
    int rc = borrow(&cr, im);
    if (rc)
        return rc;
    uint64_t pages = 0, zeros = 0;
    uint8_t *out = buf;
    size_t ri = PM_NONE;
    for (uint64_t i = 0; i < npages && rc == 0; i++, out += FKS_PAGE_SIZE) {
        uint64_t pg = pgno + i;
        const pm_run *r = ri != PM_NONE ? &im->map.r[ri] : NULL;
        if (!r || pg < r->pgno || pg - r->pgno >= r->npages) {   /* the next run, mostly */
            if (r && ri + 1 < im->map.n && pg >= im->map.r[ri + 1].pgno &&
                pg - im->map.r[ri + 1].pgno < im->map.r[ri + 1].npages)
                ri++;
            else
                ri = pm_find(&im->map, pg);
            r = ri != PM_NONE ? &im->map.r[ri] : NULL;
        }
        int64_t id = r ? r->page + (int64_t)(pg - r->pgno) : 0;
        const struct cat_page *pre = r && im->loc ? &im->loc[im->base[ri] + (pg - r->pgno)] : NULL;
        if (id == 0) {
            memset(out, 0, FKS_PAGE_SIZE);
            zeros++;
        } else if ((rc = read_page(im, cr, id, pre, out, NULL)) == 0) {
            pages++;
        } else {
            fks__errctx(rc, "page %llu", (unsigned long long)pgno + (unsigned long long)i);
        }
    }
    give_back(im, cr, pages, zeros);
    return rc;
}

int fks_image_page(int64_t *page_id, uint8_t *hash, fks_image *im, uint64_t pgno)
{
    if (pgno >= im->info.npages)
        return fks__err(FKS_EINVAL, "page %llu is outside the image (%llu pages)", (unsigned long long)pgno,
                        (unsigned long long)im->info.npages);
    *page_id = page_of(im, pgno);
    if (*page_id == 0 || !hash)
        return 0;
    struct cat_page p;
    int rc = locate(&p, im, *page_id);
    if (rc == 0)
        memcpy(hash, p.hash, 16);
    return rc;
}

typedef struct preload_arg {
    struct cat_page *loc;
    uint64_t k;
} preload_arg;

static int preload_one(void *arg, const struct cat_page *p)
{
    preload_arg *a = arg;
    a->loc[a->k++] = *p;
    return 0;
}

int fks_image_preload(fks_image *im)
{
    if (im->loc)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < im->map.n; i++)
        total += im->map.r[i].npages;
    struct cat_page *loc = malloc((total ? total : 1) * sizeof *loc);
    uint64_t *base = malloc((im->map.n + 1) * sizeof *base);
    if (!loc || !base) {
        free(loc);
        free(base);
        return fks__err(FKS_ENOMEM, "out of memory (locations of %llu pages)", (unsigned long long)total);
    }
    preload_arg a = {loc, 0};
    pthread_mutex_lock(&im->mu);
    cat_pages q;
    int rc = cat_read_begin(im->s->db);
    if (rc == 0) {
        if ((rc = cat_pages_open(&q, im->s->db)) == 0) {
            for (size_t i = 0; i < im->map.n && rc == 0; i++) {
                base[i] = a.k;
                rc = cat_pages_range(&q, im->map.r[i].page, im->map.r[i].npages, preload_one, &a);
            }
            cat_pages_close(&q);
        }
        int rc2 = cat_read_end(im->s->db);
        if (rc == 0)
            rc = rc2;
    }
    if (rc == 0) {
        im->loc = loc, im->base = base;
        loc = NULL, base = NULL;
    }
    pthread_mutex_unlock(&im->mu);
    free(loc);
    free(base);
    return rc ? fks__errctx(rc, "snapshot %lld: page locations", (long long)im->info.snapshot_id) : 0;
}

void fks_image_stats_get(fks_image_stats *out, fks_image *im)
{
    pthread_mutex_lock(&im->mu);
    *out = im->st;
    out->blocks_decoded = im->gone_blocks;
    out->bytes_decoded = im->gone_bytes;
    for (int i = 0; i < im->npool; i++) {
        uint64_t b, n;
        chunk_reader_counts(im->pool[i], &b, &n);
        out->blocks_decoded += b;
        out->bytes_decoded += n;
    }
    pthread_mutex_unlock(&im->mu);
}

int fks_page_find(int64_t *page_id, fks_store *s, const uint8_t hash[16])
{
    return pidx_lookup(page_id, s->db, hash);
}

int fks_page_find_many(int64_t *ids, fks_store *s, const uint8_t (*hashes)[16], size_t n)
{
    return pidx_lookup_many(ids, s->db, hashes, n);
}

int fks_page_read(void *buf, uint32_t *len, fks_store *s, int64_t page_id)
{
    chunk_reader *cr;
    int rc = chunk_reader_new(&cr, s);
    if (rc)
        return rc;
    struct cat_page p;
    if ((rc = cat_page_get(&p, s->db, page_id)) == 0 &&
        (rc = chunk_read(cr, p.chunk_id, p.off, p.len, p.slot, p.rlen, p.hash, buf)) == 0) {
        memset((uint8_t *)buf + p.rlen, 0, FKS_PAGE_SIZE - p.rlen);
        if (len)
            *len = p.rlen;
    }
    chunk_reader_free(cr);
    return rc;
}
