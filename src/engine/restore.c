/*
** restore.c: rebuilding a snapshot's files from its page maps.
**
** Design
**  1. One read transaction gives a consistent view of the snapshot: its
**     artifacts and, per artifact, its complete page map (map.c: the
**     deltas of at most log2(depth) + 1 nodes merged), then the page
**     index, read slice by slice while the threads decode (design 5).
**     The work is nearly the same at any chain depth.
**  2. The output directory is opened once and every name below is taken
**     relative to it (openat, renameat2, unlinkat), so swapping the path
**     for a symbolic link mid-restore cannot move a file elsewhere or
**     strand a temporary one. Each output file is created under a unique
**     temporary name there (O_EXCL | O_NOFOLLOW, so a planted symlink
**     cannot redirect it), truncated to the logical size (every page a hole),
**     and only non-zero pages are written, in runs of contiguous pages
**     (design 5). The files are renamed into place at the end, all or nothing
**     (place_files): with RENAME_NOREPLACE, or with FKS_RESTORE_FORCE by
**     RENAME_EXCHANGE so a replaced file can be put back if a later rename
**     fails. On failure the temporary files are removed.
**  3. Every page is decoded and checked against its hash (chunk_decode),
**     and its catalog row against the record (chunk_check_page); a
**     mismatch is an error naming the snapshot, artifact and page.
**  4. A concurrent gc may compact a chunk: the page moves to a new chunk
**     and the old file is deleted after the catalog switches. A read that
**     fails because the file is gone (or holds something else) is retried
**     once with the page's location read afresh on a second connection.
**     Threads never report errors: a row they cannot restore (read,
**     decode, catalog mismatch, write) is marked and left to a serial pass
**     that retries it so, and whose error names the page.
**  5. Work split. The rows of a window (page order) are cut into slices,
**     contiguous ranges of the file, SLICES_PER_THREAD per thread, which
**     the threads take in turn as they finish the last: slices cost
**     unequal time (zero runs, random or text pages), and with one range
**     per thread one of two threads idled for up to a third of the
**     restore. Thread 0 first reads the locations of every slice in order
**     (fill_slices: a slice's rows sorted by page id, one scan of the
**     index per stretch of close ids) and signals each; a thread waits
**     only for the slice it takes, so the serial read of the index (8-12%
**     of a restore) overlaps decoding. A thread sorts its slice's rows by
**     block once (so the rows of any block are found together), then
**     walks the slice in spans of SPAN_PAGES pages: it decodes the
**     span's blocks, in block order, into a staging buffer indexed by page
**     (records close together in a chunk file come in one pread; a block
**     that is exactly a run of the span's pages, as every block of an
**     image stored in one go, is decoded straight into place), then writes
**     the span's runs of contiguous pages with one pwrite each. So that a
**     block is decoded about once per slice, not once per span naming it:
**      - a block more of whose rows lie in later spans than in this one
**        (most of a base block, one page of which an earlier place took
**        back) is left to the last of them, which then writes the rows
**        left behind page by page (ROW_DEFER);
**      - the pages that later spans want of a block decoded here go to a
**        stash while it has room (a block across the span's end);
**      - the pages of a block that many places share (a page common to
**        the image) stay in a small cache by page id.
**     On the bench chains this decodes 1.0-1.16 times the blocks of a
**     block-order restore, in about as many pwrites as the file has data
**     extents.
**  6. One writer at a time (a mutex around the pwrites): threads writing
**     one file at once contend on its inode lock, and measured on a
**     restore the kernel's copies into the page cache then cost several
**     times more; with the mutex one thread writes while the others decode.
**     Memory: the window's rows (72 bytes each with their block order,
**     at most WINDOW_ROWS) and per thread about 2 MiB of buffers, plus the
**     stash and the cache (4 MiB each at most) as far as they are used.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "chunk.h"
#include "map.h"
#include "par.h"
#include "store.h"
#include "util.h"

#define WINDOW_ROWS (1u << 19)     /* rows per window: 2 GiB of guest, 32 MiB */
#define SPAN_PAGES 256             /* a thread's staging buffer: 1 MiB of the file */
#define STASH_PAGES 1024           /* a thread's pages decoded ahead of their span */
#define HOT_PAGES 1024             /* a thread's cache of pages many places share */
#define READ_MAX (1u << 20)        /* one pread of back-to-back records, at most */
#define READ_GAP (16u << 10)       /* records this close are read together */
#define SLICES_PER_THREAD 8        /* a window's slices, per thread (design 5) */
#define SLICE_MIN_ROWS 1024        /* a slice's rows, at least: 4 MiB of data */
#define MAX_SLICES (PAR_MAX_THREADS * SLICES_PER_THREAD)

/* A row's state. DEFER: its span left it to a later span that wants its
** block more (design 5); that span writes it on its own (DONE). */
enum { ROW_TODO, ROW_FAILED, ROW_DEFER, ROW_DONE };

/* One non-zero page to restore: where it goes, where its bytes are. */
struct row {
    uint64_t pgno;
    int64_t id, chunk;
    uint64_t off;
    uint32_t len, rlen;
    uint16_t slot;
    uint16_t state;               /* ROW_*, set by the thread that owns the row */
    uint32_t stash;               /* its page is in stash slot stash - 1; 0: not */
    uint8_t hash[16];
};

/* A thread's buffers. */
struct tbuf {
    uint8_t *stage;               /* SPAN_PAGES pages: the file from page base on */
    uint8_t *stash;               /* STASH_PAGES pages for later spans */
    uint32_t *free;               /* free stash slots, a stack of nfree */
    size_t nfree;
    uint8_t *hot;                 /* HOT_PAGES pages, direct-mapped by page id */
    int64_t *hot_id;              /* the page id each holds, 0: none */
    uint8_t *rbuf;                /* READ_MAX bytes of chunk file */
    uint8_t *scratch;             /* one decoded block */
    uint32_t *ord;                /* SPAN_PAGES row numbers, in block order */
    size_t lo, hi;                /* the slice being restored: rows lo .. hi-1 */
};

struct restore {
    fks_store *s;
    const char *tag;
    chunk_reader *cr;             /* serial retries */
    chunk_reader **crs;           /* one per thread */
    sqlite3 *fresh;               /* second connection for retries */
    par *par;
    struct row *rows;             /* the current window, WINDOW_ROWS */
    size_t nrows;
    uint32_t *all, *inv;          /* per slice: its rows in block order; row -> place there */
    struct tbuf *tb;              /* per thread */
    pthread_mutex_t wmu;          /* one writer at a time (design 6) */
    /* the window's locations, read slice by slice by thread 0 (design 5) */
    cat_pages *pr;
    uint64_t npages;              /* of the artifact */
    pthread_mutex_t fmu;
    pthread_cond_t fcv;           /* signalled as filled grows or fill_rc is set */
    size_t filled;                /* slices 0 .. filled-1 have their locations */
    int fill_rc;                  /* the error that stopped the reading */
    fks_restore_stats st;
    fks__progress prog;           /* of done out of total (util.h) */
    uint64_t done, total;
    /* the artifact being written */
    const char *name, *path;
    int fd;
    uint64_t size;
    size_t cut[MAX_SLICES + 1];   /* slice k is rows cut[k] .. cut[k+1]-1 */
    size_t nslices;
    _Atomic size_t next;          /* the next slice a thread takes */
};

const char *fks_artifact_filename(const char *name)
{
    return strcmp(name, "memory") == 0 ? "memory.bin" : name;
}

/* Re-reads page id's location on a fresh connection and tries again. */
static int retry_read(struct restore *r, int64_t id, uint8_t *out)
{
    int rc = 0;
    char p[PATH_MAX];
    if (!r->fresh) {
        if ((rc = fks__path(p, sizeof p, "%s/catalog.db", r->s->dir)) != 0 ||
            (rc = cat_open(&r->fresh, p, 1)) != 0)
            return rc;
    }
    struct cat_page pg;
    if ((rc = cat_page_get(&pg, r->fresh, id)) != 0)
        return rc == FKS_ENOTFOUND ? fks__err(FKS_ECORRUPT, "page %lld is missing from the page index", (long long)id)
                                   : rc;
    chunk_reader_reset(r->cr);
    return chunk_read(r->cr, pg.chunk_id, pg.off, pg.len, pg.slot, pg.rlen, pg.hash, out);
}

/* Bytes of page pgno inside a file of size bytes. */
static size_t page_bytes(uint64_t pgno, uint64_t size)
{
    uint64_t end = (pgno + 1) * FKS_PAGE_SIZE;
    return (size_t)((end > size ? size : end) - pgno * FKS_PAGE_SIZE);
}

static int by_block(const void *a, const void *b, void *arg)
{
    const struct row *rows = arg, *x = &rows[*(const uint32_t *)a], *y = &rows[*(const uint32_t *)b];
    if (x->chunk != y->chunk)
        return x->chunk < y->chunk ? -1 : 1;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return (x->pgno > y->pgno) - (x->pgno < y->pgno);
}

static int same_block(const struct row *x, const struct row *y)
{
    return x->chunk == y->chunk && x->off == y->off;
}

/* Writes n bytes at page p0 of the output, one writer at a time: threads
** writing one file at once contend on its inode lock and copy slower. */
static int write_pages(struct restore *r, const uint8_t *buf, uint64_t p0, size_t n)
{
    pthread_mutex_lock(&r->wmu);
    int rc = fks__pwrite_full(r->fd, buf, n, (off_t)(p0 * FKS_PAGE_SIZE), r->path);
    pthread_mutex_unlock(&r->wmu);
    return rc;
}

static size_t hot_slot(int64_t id)
{
    return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ull) >> 54) % HOT_PAGES;
}

/* The rows of the block of row x in thread tid's slice: all[*g0 .. *g1). */
static void block_rows(const struct restore *r, int tid, uint32_t x, size_t *g0, size_t *g1)
{
    const struct row *w = &r->rows[x];
    const struct tbuf *tb = &r->tb[tid];
    size_t a = r->inv[x], b = a + 1;
    while (a > tb->lo && same_block(&r->rows[r->all[a - 1]], w))
        a--;
    while (b < tb->hi && same_block(&r->rows[r->all[b]], w))
        b++;
    *g0 = a;
    *g1 = b;
}

/* Decodes the rows ord[0 .. n) of one block (same chunk and offset) of
** the span from row i on (page base at stage[0]), its record held at p.
** A block whose pages are exactly these rows, in slot order at
** consecutive page numbers (every block of an image stored in one go), is
** decoded straight into place; any other into scratch, then the pages
** wanted are copied. Rows of earlier spans that left the block to this
** one are written now, page by page; rows of later spans get their page
** into the stash while it has room. A row whose page cannot be had is
** marked failed. */
static void decode_block(struct restore *r, int tid, const uint32_t *ord, size_t n, const uint8_t *p,
                         uint64_t base, size_t span_lo, size_t span_end)
{
    struct tbuf *tb = &r->tb[tid];
    struct row *w0 = &r->rows[ord[0]];
    chunk_rec rec;
    size_t k, bad = 0;
    size_t g0, g1;
    block_rows(r, tid, ord[0], &g0, &g1);
    int ok = chunk_parse_at(&rec, w0->chunk, w0->off, p, w0->len) == 0;
    int direct = ok && n == rec.npages;
    for (k = 0; k < n && ok; k++) {
        struct row *w = &r->rows[ord[k]];
        if (chunk_check_page(&rec, w->chunk, w->off, w->len, w->slot, w->rlen, w->hash) != 0)
            w->state = ROW_FAILED, bad++;
        else if (w->slot != k || w->pgno != w0->pgno + k || rec.start[k] != k * FKS_PAGE_SIZE)
            direct = 0;
    }
    uint8_t *out = direct && !bad ? tb->stage + (w0->pgno - base) * FKS_PAGE_SIZE : tb->scratch;
    if (ok && chunk_decode_block(r->crs[tid], w0->chunk, w0->off, &rec, p, out) != 0)
        ok = 0;
    if (!ok) {
        for (k = 0; k < n; k++)
            r->rows[ord[k]].state = ROW_FAILED;
        return;
    }
    if (out == tb->scratch)
        for (k = 0; k < n; k++) {
            struct row *w = &r->rows[ord[k]];
            if (w->state == ROW_TODO)
                memcpy(tb->stage + (w->pgno - base) * FKS_PAGE_SIZE, out + rec.start[w->slot], w->rlen);
        }
    int hot = g1 - g0 > 2 * CHUNK_BLOCK_PAGES;   /* many places share it: keep its pages */
    if (hot)
        for (k = 0; k < n; k++) {
            const struct row *w = &r->rows[ord[k]];
            size_t h = hot_slot(w->id);
            if (w->state == ROW_TODO) {
                memcpy(tb->hot + h * FKS_PAGE_SIZE, out + rec.start[w->slot], w->rlen);
                tb->hot_id[h] = w->id;
            }
        }
    for (size_t g = g0; g < g1; g++) {
        struct row *w = &r->rows[r->all[g]];
        if (r->all[g] < span_lo && w->state == ROW_DEFER) {
            const uint8_t *pg = out + rec.start[w->slot];
            w->state = chunk_check_page(&rec, w->chunk, w->off, w->len, w->slot, w->rlen, w->hash) == 0 &&
                       write_pages(r, pg, w->pgno, page_bytes(w->pgno, r->size)) == 0 ? ROW_DONE : ROW_FAILED;
        } else if (r->all[g] >= span_end && w->state == ROW_TODO && !w->stash && tb->nfree && !hot &&
                   chunk_check_page(&rec, w->chunk, w->off, w->len, w->slot, w->rlen, w->hash) == 0) {
            uint32_t slot = tb->free[--tb->nfree];
            memcpy(tb->stash + (size_t)slot * FKS_PAGE_SIZE, out + rec.start[w->slot], w->rlen);
            w->stash = slot + 1;
        }   /* else a later span decodes the block again (or finds the mismatch) */
    }
}

/* Rows i .. j-1 of the span that need decoding, into ord in block
** order (their count returned); pages stashed for them or in the cache
** go straight to the stage. */
static size_t span_collect(struct restore *r, int tid, size_t i, size_t j, uint64_t base)
{
    struct tbuf *tb = &r->tb[tid];
    size_t n = 0;
    int sorted = 1;
    for (size_t k = i; k < j; k++) {
        struct row *w = &r->rows[k];
        if (w->stash) {
            memcpy(tb->stage + (w->pgno - base) * FKS_PAGE_SIZE, tb->stash + (size_t)(w->stash - 1) * FKS_PAGE_SIZE,
                   w->rlen);
            tb->free[tb->nfree++] = w->stash - 1;
            w->stash = 0;
            continue;
        }
        if (w->state != ROW_TODO)
            continue;
        size_t h = hot_slot(w->id);
        if (tb->hot_id[h] == w->id) {    /* decoded and checked before, same page */
            memcpy(tb->stage + (w->pgno - base) * FKS_PAGE_SIZE, tb->hot + h * FKS_PAGE_SIZE, w->rlen);
            continue;
        }
        tb->ord[n] = (uint32_t)k;
        if (n && by_block(&tb->ord[n - 1], &tb->ord[n], r->rows) > 0)
            sorted = 0;
        n++;
    }
    if (!sorted)
        qsort_r(tb->ord, n, sizeof *tb->ord, by_block, r->rows);
    return n;
}

/* A block more of whose rows lie in later spans (after row j) than in
** this one is left to them (each block is decoded once, and the stash
** holds the few pages that go to later places, not most of a block),
** unless many places share it (a page common to the image): such a block
** is decoded where it is wanted, its later pages stashed while there is
** room. Returns how many of ord's n rows stay to decode here. */
static size_t span_defer(struct restore *r, int tid, size_t j, size_t n)
{
    struct tbuf *tb = &r->tb[tid];
    size_t kept = 0, k, m;
    for (k = 0; k < n; k = m) {
        const struct row *f = &r->rows[tb->ord[k]];
        for (m = k + 1; m < n && same_block(&r->rows[tb->ord[m]], f); m++)
            ;
        size_t g0, g1, later = 0;
        block_rows(r, tid, tb->ord[k], &g0, &g1);
        for (size_t g = g0; g < g1; g++)
            later += r->all[g] >= j && r->rows[r->all[g]].state == ROW_TODO && !r->rows[r->all[g]].stash;
        for (size_t q = k; q < m; q++) {
            if (later > m - k && g1 - g0 <= 2 * CHUNK_BLOCK_PAGES)
                r->rows[tb->ord[q]].state = ROW_DEFER;
            else
                tb->ord[kept++] = tb->ord[q];
        }
    }
    return kept;
}

/* Decodes ord's n rows block by block, records near each other in a
** chunk file read with one pread. */
static void span_decode(struct restore *r, int tid, size_t i, size_t j, uint64_t base, size_t n)
{
    struct tbuf *tb = &r->tb[tid];
    for (size_t k = 0, m; k < n; k = m) {
        const struct row *f = &r->rows[tb->ord[k]];
        uint64_t start = f->off, end = f->off + f->len;
        for (m = k + 1; m < n; m++) {
            const struct row *w = &r->rows[tb->ord[m]];
            if (w->chunk != f->chunk || w->off > end + READ_GAP || w->off + w->len - start > READ_MAX)
                break;
            if (w->off + w->len > end)
                end = w->off + w->len;
        }
        if (end - start > READ_MAX || chunk_pread(r->crs[tid], f->chunk, start, end - start, tb->rbuf) != 0) {
            for (size_t q = k; q < m; q++)
                r->rows[tb->ord[q]].state = ROW_FAILED;
            continue;
        }
        for (size_t b = k, e; b < m; b = e) {
            const struct row *w = &r->rows[tb->ord[b]];
            for (e = b + 1; e < m && r->rows[tb->ord[e]].off == w->off; e++)
                ;
            decode_block(r, tid, tb->ord + b, e - b, tb->rbuf + (w->off - start), base, i, j);
        }
    }
}

/* Writes the span's runs of contiguous pages, one pwrite each. A run
** that cannot be written is left to the serial pass, which names the
** page; a failed row's page is written too (as zeros: its stage page was
** never filled) and rewritten or refused by that pass. */
static void span_write(struct restore *r, int tid, size_t i, size_t j, uint64_t base)
{
    struct tbuf *tb = &r->tb[tid];
    for (size_t k = i, m; k < j; k = m) {
        if (r->rows[k].state == ROW_DEFER) {
            m = k + 1;
            continue;
        }
        for (m = k + 1; m < j && r->rows[m].pgno == r->rows[m - 1].pgno + 1 && r->rows[m].state != ROW_DEFER; m++)
            ;
        uint64_t p0 = r->rows[k].pgno;
        for (size_t q = k; q < m; q++)
            if (r->rows[q].state == ROW_FAILED)
                memset(tb->stage + (r->rows[q].pgno - base) * FKS_PAGE_SIZE, 0, FKS_PAGE_SIZE);
        size_t bytes = (m - k - 1) * FKS_PAGE_SIZE + page_bytes(r->rows[m - 1].pgno, r->size);
        if (write_pages(r, tb->stage + (p0 - base) * FKS_PAGE_SIZE, p0, bytes) != 0)
            for (size_t q = k; q < m; q++)
                r->rows[q].state = ROW_FAILED;
    }
}

/* Restores rows i .. j-1 (page numbers base .. base + SPAN_PAGES - 1). */
static void restore_span(struct restore *r, int tid, size_t i, size_t j)
{
    uint64_t base = r->rows[i].pgno;
    size_t n = span_collect(r, tid, i, j, base);
    n = span_defer(r, tid, j, n);
    span_decode(r, tid, i, j, base, n);
    span_write(r, tid, i, j, base);
}

/* Thread tid restores the rows of one slice, tb->lo .. tb->hi-1, a
** contiguous range of the file, span by span, after putting them in block
** order (all, inv) so that decode_block finds a block's rows in later
** spans. */
static void restore_slice(struct restore *r, int tid)
{
    struct tbuf *tb = &r->tb[tid];
    size_t i = tb->lo, end = tb->hi;
    int sorted = 1;
    for (size_t k = i; k < end; k++) {
        r->all[k] = (uint32_t)k;
        if (k > i && sorted && by_block(&r->all[k - 1], &r->all[k], r->rows) > 0)
            sorted = 0;
    }
    if (!sorted)
        qsort_r(r->all + i, end - i, sizeof *r->all, by_block, r->rows);
    for (size_t k = i; k < end; k++)
        r->inv[r->all[k]] = (uint32_t)k;
    tb->nfree = STASH_PAGES;
    for (size_t k = 0; k < STASH_PAGES; k++)
        tb->free[k] = (uint32_t)(STASH_PAGES - 1 - k);
    while (i < end) {
        size_t j = i + 1;
        while (j < end && r->rows[j].pgno - r->rows[i].pgno < SPAN_PAGES)
            j++;
        restore_span(r, tid, i, j);
        i = j;
    }
}

static int fill_slice(struct restore *r, size_t lo, size_t hi);

/* Thread 0 reads the slices' locations in order, and signals each; a
** thread waits for the slice it takes, so decoding starts once the first
** slice is read, not the whole window. */
static void fill_slices(struct restore *r)
{
    for (size_t k = 0; k < r->nslices; k++) {
        int rc = fill_slice(r, r->cut[k], r->cut[k + 1]);
        pthread_mutex_lock(&r->fmu);
        if (rc)
            r->fill_rc = rc;
        else
            r->filled = k + 1;
        pthread_cond_broadcast(&r->fcv);
        pthread_mutex_unlock(&r->fmu);
        if (rc)
            return;
    }
}

/* Waits until slice k has its locations: 1, or 0 if reading stopped. */
static int slice_ready(struct restore *r, size_t k)
{
    pthread_mutex_lock(&r->fmu);
    while (r->filled <= k && r->fill_rc == 0)
        pthread_cond_wait(&r->fcv, &r->fmu);
    int ok = r->filled > k;
    pthread_mutex_unlock(&r->fmu);
    return ok;
}

/* Each thread takes the next slice until none is left: slices cost
** unequal time (holes, compressible or random pages), and a thread that
** finishes early takes more instead of idling. Thread 0 first reads the
** locations of every slice (fill_slices). */
static void restore_part(void *arg, int tid, size_t lo, size_t hi)
{
    struct restore *r = arg;
    struct tbuf *tb = &r->tb[tid];
    (void)lo, (void)hi;
    size_t k;
    if (tid == 0)
        fill_slices(r);
    while ((k = atomic_fetch_add(&r->next, 1)) < r->nslices && slice_ready(r, k)) {
        tb->lo = r->cut[k];
        tb->hi = r->cut[k + 1];
        restore_slice(r, tid);
    }
}

/* Reads the locations of the window's rows and restores them; empties
** the window. */
static int flush_window(struct restore *r)
{
    if (r->nrows == 0)
        return 0;
    /* Slices of the file (the rows are in page order), taken by the
    ** threads in turn: SLICES_PER_THREAD per thread, of SLICE_MIN_ROWS at
    ** least, one at least per thread. */
    int nt = par_threads(r->par);
    size_t ns = r->nrows / SLICE_MIN_ROWS;
    if (ns > (size_t)nt * SLICES_PER_THREAD)
        ns = (size_t)nt * SLICES_PER_THREAD;
    if (ns < (size_t)nt)
        ns = (size_t)nt;
    if (ns == 0)                  /* par_threads is at least 1; said for the analyzers */
        ns = 1;
    for (size_t k = 0; k <= ns; k++)
        r->cut[k] = r->nrows * k / ns;
    r->nslices = ns;
    r->filled = 0;
    r->fill_rc = 0;
    atomic_store(&r->next, 0);
    par_run(r->par, restore_part, r, (size_t)nt);
    if (r->fill_rc) {
        r->nrows = 0;
        return r->fill_rc;
    }
    /* Rows a thread could not restore: one by one, re-reading a page's
    ** location if a concurrent compaction moved it (design 4), so that the
    ** error, if any, names the page. */
    int rc = 0;
    uint8_t *page = r->tb[0].scratch;
    for (size_t i = 0; i < r->nrows && rc == 0; i++) {
        const struct row *w = &r->rows[i];
        if (w->state != ROW_FAILED && w->state != ROW_DEFER)
            continue;
        rc = chunk_read(r->cr, w->chunk, w->off, w->len, w->slot, w->rlen, w->hash, page);
        if (rc == FKS_ENOTFOUND || rc == FKS_ECORRUPT)
            rc = retry_read(r, w->id, page);
        if (rc == 0)
            rc = fks__pwrite_full(r->fd, page, page_bytes(w->pgno, r->size), (off_t)(w->pgno * FKS_PAGE_SIZE),
                                  r->path);
        if (rc)
            fks__errctx(rc, "snapshot %s, %s page %llu (page id %lld)", r->tag, r->name,
                        (unsigned long long)w->pgno, (long long)w->id);
    }
    for (size_t i = 0; i < r->nrows; i++)
        r->st.written_bytes += page_bytes(r->rows[i].pgno, r->size);
    r->st.pages += r->nrows;
    r->nrows = 0;
    return rc;
}

/* Filling a window (design 1): its rows are laid out by page number from
** the map's runs (pgno and page id known), then their locations are read
** slice by slice in page-id order, one scan of the page index for each
** stretch of ids no more than SCAN_GAP apart, instead of two range queries
** per run (a Diff chain's map has tens of thousands of runs). */
struct fill {
    struct restore *r;
    const uint32_t *idx;         /* a slice's rows in page-id order */
    size_t j, n;                 /* idx[j] is the next row to fill */
    uint64_t npages;             /* of the artifact */
};

static int fill_missing(const struct fill *x)
{
    return fks__err(FKS_ECORRUPT, "page %lld is missing from the page index",
                    (long long)x->r->rows[x->idx[x->j]].id);
}

/* A page of the scanned range that no row of the window names (an id
** below the next one wanted) is skipped unread. */
static int fill_want(void *arg, int64_t id)
{
    const struct fill *x = arg;
    return x->j < x->n && x->r->rows[x->idx[x->j]].id <= id;
}

/* One page of the index: into every row of the window that names it. */
static int fill_row(void *arg, const struct cat_page *p)
{
    struct fill *x = arg;
    struct restore *r = x->r;
    if (x->j < x->n && r->rows[x->idx[x->j]].id < p->id)
        return fill_missing(x);
    for (; x->j < x->n && r->rows[x->idx[x->j]].id == p->id; x->j++) {
        struct row *w = &r->rows[x->idx[x->j]];
        uint64_t pgno = w->pgno;
        if (pgno == x->npages - 1 ? (uint64_t)p->rlen != r->size - pgno * FKS_PAGE_SIZE : p->rlen != FKS_PAGE_SIZE)
            return fks__err(FKS_ECORRUPT, "page map of %s/%s is damaged at page %llu (page length)", r->tag,
                            r->name, (unsigned long long)pgno);
        w->chunk = p->chunk_id;
        w->off = p->off;
        w->len = p->len;
        w->slot = (uint16_t)p->slot;
        w->rlen = p->rlen;
        memcpy(w->hash, p->hash, 16);
    }
    return 0;
}

static int by_id(const void *a, const void *b, void *arg)
{
    const struct row *rows = arg, *x = &rows[*(const uint32_t *)a], *y = &rows[*(const uint32_t *)b];
    return (x->id > y->id) - (x->id < y->id);
}

#define SCAN_GAP 32                /* ids this close are read in one scan */

/* Reads the locations of the window's rows lo .. hi-1 (laid out by
** add_run), one slice: their part of all[] holds them in page-id order
** until the slice is restored (restore_slice sorts it by block then). */
static int fill_slice(struct restore *r, size_t lo, size_t hi)
{
    uint32_t *idx = r->all + lo;
    size_t n = hi - lo, k;
    int sorted = 1;
    for (k = 0; k < n; k++) {
        idx[k] = (uint32_t)(lo + k);
        if (k && sorted && r->rows[lo + k].id < r->rows[lo + k - 1].id)
            sorted = 0;
    }
    if (!sorted)
        qsort_r(idx, n, sizeof *idx, by_id, r->rows);
    cat_pages *pr = r->pr;
    struct fill x = {r, idx, 0, n, r->npages};
    int rc = 0;
    while (rc == 0 && x.j < n) {
        int64_t first = r->rows[idx[x.j]].id, last = first;
        for (k = x.j + 1; k < n && r->rows[idx[k]].id <= last + SCAN_GAP; k++)
            last = r->rows[idx[k]].id;
        rc = cat_pages_scan(pr, first, last, fill_want, fill_row, &x);
        if (rc == 0 && x.j < k)
            rc = fill_missing(&x);
    }
    return rc;
}

/* Puts pages pgno .. pgno+n-1, holding page ids id .., into the window. */
static void add_run(struct restore *r, uint64_t pgno, int64_t id, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct row *w = &r->rows[r->nrows++];
        memset(w, 0, sizeof *w);
        w->pgno = pgno + k;
        w->id = id + (int64_t)k;
        w->state = ROW_TODO;
    }
}

/* The artifact's complete map (map.c: at most log2(depth) + 1 nodes
** read), cut into windows of WINDOW_ROWS pages in page-number order. */
static int restore_art(struct restore *r, int64_t art, const char *name, uint64_t size, int fd,
                       const char *path)
{
    pm_map m = {0};
    cat_pages pr = {0};
    uint64_t npages = (size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE, done0 = r->done;
    r->name = name;
    r->path = path;
    r->fd = fd;
    r->size = size;
    r->nrows = 0;
    r->pr = &pr;
    r->npages = npages;
    int rc = map_load_artifact(&m, r->s->db, art, npages);
    if (rc == 0)
        rc = cat_pages_open(&pr, r->s->db);
    for (size_t i = 0; i < m.n && rc == 0; i++) {
        uint64_t pgno = m.r[i].pgno, left = m.r[i].npages;
        int64_t id = m.r[i].page;
        while (left && rc == 0) {
            size_t take = WINDOW_ROWS - r->nrows;
            if (take > left)
                take = (size_t)left;
            add_run(r, pgno, id, take);
            pgno += take, id += (int64_t)take, left -= take;
            if (r->nrows == WINDOW_ROWS && (rc = flush_window(r)) == 0) {
                r->done = done0 + pgno * FKS_PAGE_SIZE;
                fks__progress_set(&r->prog, r->done);
            }
        }
    }
    if (rc == 0)
        rc = flush_window(r);
    r->nrows = 0;
    r->done = done0 + size;
    cat_pages_close(&pr);
    r->pr = NULL;                 /* pr lives only as long as this call */
    pm_free(&m);
    if (rc)
        fks__errctx(rc, "snapshot %s, %s", r->tag, name);
    return rc;
}

struct outfile {
    int64_t art;
    char name[65];
    uint64_t size;
    const char *fname;      /* final name inside the output directory */
    char tname[96];         /* temporary name there, "" once none of ours */
    char final[PATH_MAX];   /* outdir/fname and outdir/tname, for messages */
    char tmp[PATH_MAX];
    int fd;
    int swapped;            /* the file that was at final is now at tmp */
};

/* Creates f's temporary file in the output directory dfd: a new name
** (O_EXCL, O_NOFOLLOW: nothing planted there is followed or reused). */
static int make_temp(struct outfile *f, int dfd, const char *outdir)
{
    static _Atomic unsigned seq;
    for (int tries = 0; tries < 100; tries++) {
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t r = ((uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20) *
                     0x9e3779b97f4a7c15ull + seq++ * 0xbf58476d1ce4e5b9ull;
        char sfx[7];
        for (int k = 0; k < 6; k++, r /= 62)
            sfx[k] = al[r % 62];
        sfx[6] = 0;
        int rc = fks__path(f->tname, sizeof f->tname, ".%s.%s", f->fname, sfx);
        if (rc == 0)
            rc = fks__path(f->tmp, sizeof f->tmp, "%s/%s", outdir, f->tname);
        if (rc) {
            f->tname[0] = 0;
            return rc;
        }
        f->fd = openat(dfd, f->tname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f->fd >= 0)
            return 0;
        if (errno != EEXIST) {
            rc = fks__errno(FKS_EIO, errno, "create %s", f->tmp);
            f->tname[0] = 0;
            return rc;
        }
    }
    f->tname[0] = 0;
    return fks__err(FKS_EIO, "create a temporary file in %s: every name tried exists", outdir);
}

/* Moves every temporary file to its final name, all or nothing. Without
** force, a name that exists is an error (RENAME_NOREPLACE). With force, an
** existing file is swapped out (RENAME_EXCHANGE) so it can be put back;
** it is unlinked only once every file is in place. If a rename fails, the
** files already placed are taken back, newest first: swapped ones are
** exchanged back, new ones unlinked (only while the name still holds our
** inode). On return f[i].tname[0] is 0 for every file whose temporary
** name no longer holds a file of ours. Every name is taken relative to the
** output directory opened once (dfd): a directory swapped for a symbolic
** link meanwhile cannot send a rename or an unlink elsewhere. */
static int place_files(struct outfile *f, size_t n, int force, int dfd)
{
    size_t i;
    int rc = 0;
    for (i = 0; i < n; i++) {
        int r = -1, e = ENOENT;
        if (force) {
            r = renameat2(dfd, f[i].tname, dfd, f[i].fname, RENAME_EXCHANGE);
            e = errno;
            if (r == 0)
                f[i].swapped = 1;
            else if (e == EINVAL)      /* no RENAME_EXCHANGE here: replace, not undoable */
                r = renameat(dfd, f[i].tname, dfd, f[i].fname), e = errno;
        }
        if (r != 0 && e == ENOENT)
            r = renameat2(dfd, f[i].tname, dfd, f[i].fname, RENAME_NOREPLACE), e = errno;
        if (r != 0) {
            rc = e == EEXIST ? fks__err(FKS_EEXIST, "%s already exists", f[i].final)
                             : fks__errno(FKS_EIO, e, "rename %s to %s", f[i].tmp, f[i].final);
            break;
        }
    }
    if (rc == 0) {
        for (i = 0; i < n; i++) {
            if (f[i].swapped)
                (void)unlinkat(dfd, f[i].tname, 0);   /* the replaced file; best effort */
            f[i].tname[0] = 0;
        }
        return 0;
    }
    while (i-- > 0) {
        if (f[i].swapped) {
            if (renameat2(dfd, f[i].tname, dfd, f[i].fname, RENAME_EXCHANGE) != 0)
                f[i].tname[0] = 0;           /* tmp still holds the old file: keep it */
            continue;
        }
        struct stat ours, there;
        if (fstat(f[i].fd, &ours) == 0 && fstatat(dfd, f[i].fname, &there, AT_SYMLINK_NOFOLLOW) == 0 &&
            ours.st_dev == there.st_dev && ours.st_ino == there.st_ino)
            (void)unlinkat(dfd, f[i].fname, 0);
        f[i].tname[0] = 0;
    }
    return fks__errctx(rc, "nothing was restored");
}

/* The snapshot's artifacts, by name, into *f (n of them); their sizes
** are the progress total. */
static int list_outputs(struct restore *r, struct outfile **f, size_t *n)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(r->s->db, &st, "SELECT a.id, a.name, a.size FROM artifact a JOIN snapshot s "
                         "ON s.id = a.snapshot_id WHERE s.tag = ?1 ORDER BY a.name");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, r->tag, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct outfile *nf = realloc(*f, (*n + 1) * sizeof **f);
        if (!nf) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            break;
        }
        *f = nf;
        struct outfile *o = &nf[(*n)++];
        memset(o, 0, sizeof *o);
        o->fd = -1;
        o->art = sqlite3_column_int64(st, 0);
        const char *nm = (const char *)sqlite3_column_text(st, 1);
        int64_t sz = sqlite3_column_int64(st, 2);
        /* A name is checked whole (fks_check_name below), never truncated first. */
        if (!nm || strlen(nm) >= sizeof o->name || sqlite3_column_type(st, 2) != SQLITE_INTEGER || sz < 0) {
            rc = fks__err(FKS_ECORRUPT, "catalog names an artifact of %s badly (name or size damaged)", r->tag);
            break;
        }
        memcpy(o->name, nm, strlen(nm) + 1);
        o->size = (uint64_t)sz;
        r->total += o->size;
        fks__progress_total(&r->prog, o->size);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(r->s->db, src, "catalog: list the artifacts");
    sqlite3_finalize(st);
    if (rc == 0 && *n == 0)
        rc = cat_not_found(r->tag);
    return rc;
}

/* Checks every output name before anything is written: a valid name,
** and nothing in its place unless force (and then not a directory). */
static int check_outputs(struct outfile *f, size_t n, const char *tag, const char *outdir, int dfd, int force)
{
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        int rc;
        if (fks_check_name(f[i].name) != 0)
            return fks__errctx(FKS_ECORRUPT, "catalog names an artifact of %s badly", tag);
        f[i].fname = fks_artifact_filename(f[i].name);
        if ((rc = fks__path(f[i].final, sizeof f[i].final, "%s/%s", outdir, f[i].fname)) != 0)
            return rc;
        int there = fstatat(dfd, f[i].fname, &sb, AT_SYMLINK_NOFOLLOW) == 0;
        if (there && !force)
            return fks__err(FKS_EEXIST, "%s already exists", f[i].final);
        if (there && S_ISDIR(sb.st_mode))
            return fks__err(FKS_EEXIST, "%s is a directory (only files are replaced)", f[i].final);
    }
    return 0;
}

/* The window, the thread pool and each thread's buffers and reader. */
static int setup(struct restore *r)
{
    int rc;
    if ((rc = chunk_reader_new(&r->cr, r->s)) != 0 || (rc = par_new(&r->par, 0)) != 0)
        return rc;
    int nt = par_threads(r->par);
    r->rows = malloc(WINDOW_ROWS * sizeof *r->rows);
    r->all = malloc(WINDOW_ROWS * sizeof *r->all);
    r->inv = malloc(WINDOW_ROWS * sizeof *r->inv);
    r->tb = calloc((size_t)nt, sizeof *r->tb);
    r->crs = calloc((size_t)nt, sizeof *r->crs);
    if (!r->rows || !r->all || !r->inv || !r->tb || !r->crs)
        return fks__err(FKS_ENOMEM, "out of memory");
    for (int t = 0; t < nt; t++) {
        struct tbuf *b = &r->tb[t];
        if (!(b->stage = malloc(SPAN_PAGES * FKS_PAGE_SIZE)) || !(b->rbuf = malloc(READ_MAX)) ||
            !(b->scratch = malloc(CHUNK_BLOCK_MAX)) || !(b->ord = malloc(SPAN_PAGES * sizeof *b->ord)) ||
            !(b->stash = malloc(STASH_PAGES * FKS_PAGE_SIZE)) || !(b->free = malloc(STASH_PAGES * sizeof *b->free)) ||
            !(b->hot = malloc(HOT_PAGES * FKS_PAGE_SIZE)) || !(b->hot_id = calloc(HOT_PAGES, sizeof *b->hot_id)))
            return fks__err(FKS_ENOMEM, "out of memory");
        if ((rc = chunk_reader_new(&r->crs[t], r->s)) != 0)
            return rc;
    }
    return 0;
}

static void teardown(struct restore *r)
{
    free(r->rows);
    free(r->all);
    free(r->inv);
    for (int t = 0; r->tb && t < par_threads(r->par); t++) {
        struct tbuf *b = &r->tb[t];
        free(b->stage);
        free(b->rbuf);
        free(b->scratch);
        free(b->ord);
        free(b->stash);
        free(b->free);
        free(b->hot);
        free(b->hot_id);
    }
    free(r->tb);
    if (r->crs)
        for (int t = 0; t < par_threads(r->par); t++)
            chunk_reader_free(r->crs[t]);
    free(r->crs);
    par_free(r->par);
    chunk_reader_free(r->cr);
    sqlite3_close(r->fresh);
}

/* Each file under its temporary name: created, sized (all holes), its
** pages written, synced if asked. */
static int write_outputs(struct restore *r, struct outfile *f, size_t n, const char *outdir, int dfd, int flags)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((rc = make_temp(&f[i], dfd, outdir)) != 0)
            break;
        if (ftruncate(f[i].fd, (off_t)f[i].size) != 0) {
            rc = fks__errno(FKS_EIO, errno, "size %s to %llu bytes", f[i].tmp, (unsigned long long)f[i].size);
            break;
        }
        rc = restore_art(r, f[i].art, f[i].name, f[i].size, f[i].fd, f[i].tmp);
        if (rc == 0 && (flags & FKS_RESTORE_SYNC) && fsync(f[i].fd) != 0)
            rc = fks__errno(FKS_EIO, errno, "fsync %s", f[i].tmp);
        r->st.logical_bytes += f[i].size;
    }
    return rc;
}

int fks_restore(fks_restore_stats *stats, fks_store *s, const char *tag, const char *outdir,
                int flags, fks_progress_fn progress, void *progress_arg)
{
    struct restore r = {0};
    struct outfile *f = NULL;
    size_t n = 0;
    int rc, in_txn = 0, dfd = -1;
    double t0 = fks__now();

    r.s = s;
    r.tag = tag;
    r.wmu = r.fmu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    r.fcv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    fks__progress_init(&r.prog, progress, progress_arg, 0);
    if ((rc = fks_check_tag(tag)) != 0)
        return rc;
    if ((rc = fks__mkdir_p(outdir, 0700)) != 0)
        return fks__errctx(rc, "output directory");
    /* Every file operation below is relative to this descriptor (design 2). */
    if ((dfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return errno == ENOTDIR ? fks__err(FKS_EINVAL, "output %s is not a directory", outdir)
                                : fks__errno(FKS_EIO, errno, "open output directory %s", outdir);
    if ((rc = cat_exec(s->db, "BEGIN")) != 0)
        goto out;
    in_txn = 1;
    if ((rc = list_outputs(&r, &f, &n)) != 0 ||
        (rc = check_outputs(f, n, tag, outdir, dfd, flags & FKS_RESTORE_FORCE)) != 0 ||
        (rc = setup(&r)) != 0)
        goto out;
    rc = write_outputs(&r, f, n, outdir, dfd, flags);
    cat_exec(s->db, "COMMIT");
    in_txn = 0;
    if (rc == 0)
        rc = place_files(f, n, flags & FKS_RESTORE_FORCE, dfd);
    if (rc == 0 && (flags & FKS_RESTORE_SYNC) && fsync(dfd) != 0)
        rc = fks__errno(FKS_EIO, errno, "fsync directory %s", outdir);
    if (rc == 0)
        fks__progress_end(&r.prog);
out:
    if (in_txn)
        cat_exec(s->db, "COMMIT");
    for (size_t i = 0; i < n; i++) {     /* on failure no temporary file stays */
        if (rc && f[i].tname[0] && f[i].fd >= 0)
            (void)unlinkat(dfd, f[i].tname, 0);
        if (f[i].fd >= 0)
            close(f[i].fd);
    }
    if (dfd >= 0)
        close(dfd);
    free(f);
    teardown(&r);
    r.st.seconds = fks__now() - t0;
    if (rc == 0 && stats)
        *stats = r.st;
    return rc;
}
