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
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "chunk.h"
#include "map.h"
#include "store.h"
#include "util.h"

#define POOL 8

struct fks_image {
    fks_store *s;
    fks_image_info info;
    pm_map map;
    fks_run *runs;               /* the map as the public type */
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

/* Reads stored page id into out (4096 bytes, zero padded). */
static int read_page(fks_image *im, chunk_reader *cr, int64_t id, uint8_t *out, uint32_t *len)
{
    struct cat_page p;
    int rc = locate(&p, im, id);
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
    for (uint64_t i = 0; i < npages && rc == 0; i++, out += FKS_PAGE_SIZE) {
        int64_t id = page_of(im, pgno + i);
        if (id == 0) {
            memset(out, 0, FKS_PAGE_SIZE);
            zeros++;
        } else if ((rc = read_page(im, cr, id, out, NULL)) == 0) {
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
    return cat_page_find(page_id, s->db, hash);
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
