/*
** restore.c: rebuilding a snapshot's files from its page maps.
**
** Design
**  1. One read transaction gives a consistent view of the snapshot: its
**     artifacts and, per artifact, one query joining its runs with the
**     page index in page-number order. Maps are complete (see pmap.c), so
**     the work is the same at any chain depth.
**  2. Each output file is created under a unique temporary name in the
**     output directory (mkostemp: O_EXCL, so a planted symlink cannot
**     redirect it), truncated to the logical size (every page a hole),
**     and only non-zero pages are written, in batches of contiguous
**     pages. It is renamed into place at the end; with --force over an
**     existing file, otherwise with RENAME_NOREPLACE. On failure the
**     temporary file is removed.
**  3. Every page is decoded and checked against its hash (chunk_read);
**     a mismatch is an error naming the snapshot, artifact and page.
**  4. A concurrent gc may compact a chunk: the page moves to a new chunk
**     and the old file is deleted after the catalog switches. A read that
**     fails because the file is gone (or holds something else) is retried
**     once with the page's location read afresh on a second connection.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "chunk.h"
#include "par.h"
#include "store.h"
#include "util.h"

#define WBATCH_PAGES 2048          /* 8 MiB decoded per batch */

struct restore {
    fks_store *s;
    const char *tag;
    chunk_reader *cr;
    sqlite3 *fresh;               /* second connection for retries */
    par *par;
    struct rbatch *batch;
    uint8_t *buf;
    fks_restore_stats st;
    fks_progress_fn progress;
    void *progress_arg;
    uint64_t done, total;
    double last;
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
    sqlite3_stmt *st;
    if ((rc = cat_prepare(r->fresh, &st, "SELECT chunk_id, off, len, slot, coalesce(rlen, 4096), hash FROM page WHERE id = ?1")) != 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 5) == 16) {
        chunk_reader_reset(r->cr);
        rc = chunk_read(r->cr, sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
                        (uint32_t)sqlite3_column_int64(st, 2), (uint32_t)sqlite3_column_int64(st, 3),
                        (uint32_t)sqlite3_column_int64(st, 4), sqlite3_column_blob(st, 5), out);
    } else {
        rc = fks__err(FKS_ECORRUPT, "page %lld is missing from the page index", (long long)id);
    }
    sqlite3_finalize(st);
    return rc;
}

/* A batch of pages to decode: rows read from the catalog (serial), then
** decoded and checked in parallel, then written (serial). */
struct rbatch {
    size_t n;
    uint64_t pgno[WBATCH_PAGES];
    int64_t id[WBATCH_PAGES], chunk[WBATCH_PAGES];
    uint64_t off[WBATCH_PAGES];
    uint32_t len[WBATCH_PAGES], slot[WBATCH_PAGES], rlen[WBATCH_PAGES];
    uint8_t hash[WBATCH_PAGES][16];
    int err[WBATCH_PAGES];
    chunk_reader **cr;                          /* one per thread */
    uint8_t *out;                               /* page i at out + i * 4096 */
    int fd;                                     /* the output file */
    uint64_t size;
    const char *path;
    int written[64];                            /* per thread: slice written */
    size_t lo[64], hi[64];
};

/* Writes pages [lo, hi) of the batch as runs of contiguous page numbers. */
static int write_pages(struct rbatch *b, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi;) {
        size_t j = i + 1;
        while (j < hi && b->pgno[j] == b->pgno[j - 1] + 1)
            j++;
        uint64_t start = b->pgno[i] * FKS_PAGE_SIZE, end = (b->pgno[j - 1] + 1) * FKS_PAGE_SIZE;
        if (end > b->size)
            end = b->size;
        int rc = fks__pwrite_full(b->fd, b->out + i * FKS_PAGE_SIZE, (size_t)(end - start), (off_t)start, b->path);
        if (rc)
            return rc;
        i = j;
    }
    return 0;
}

/* Each thread decodes and checks its slice, then writes it if all went
** well; errors are left for the serial pass (messages are per thread). */
static void decode_part(void *arg, int tid, size_t lo, size_t hi)
{
    struct rbatch *b = arg;
    int bad = 0;
    for (size_t i = lo; i < hi; i++) {
        b->err[i] = chunk_read(b->cr[tid], b->chunk[i], b->off[i], b->len[i], b->slot[i], b->rlen[i],
                               b->hash[i], b->out + i * FKS_PAGE_SIZE);
        bad |= b->err[i] != 0;
    }
    b->written[tid] = !bad && write_pages(b, lo, hi) == 0;
    b->lo[tid] = lo;
    b->hi[tid] = hi;
}

/* Decodes the batch and writes it as runs of contiguous pages. */
static int flush_batch(struct restore *r, struct rbatch *b, const char *name, uint64_t size, int fd,
                       const char *path)
{
    if (b->n == 0)
        return 0;
    b->fd = fd;
    b->size = size;
    b->path = path;
    int nt = par_threads(r->par);
    for (int t = 0; t < nt; t++)
        b->written[t] = 1, b->lo[t] = b->hi[t] = 0;
    par_run(r->par, decode_part, b, b->n);
    int rc = 0;
    for (int t = 0; t < nt && rc == 0; t++) {
        if (b->written[t])
            continue;
        /* Re-read serially to report the error or retry after a concurrent
        ** compaction moved the page (restore design 4), then write. */
        for (size_t i = b->lo[t]; i < b->hi[t] && rc == 0; i++) {
            if (!b->err[i])
                continue;
            rc = chunk_read(r->cr, b->chunk[i], b->off[i], b->len[i], b->slot[i], b->rlen[i], b->hash[i],
                            b->out + i * FKS_PAGE_SIZE);
            if (rc == FKS_ENOTFOUND || rc == FKS_ECORRUPT)
                rc = retry_read(r, b->id[i], b->out + i * FKS_PAGE_SIZE);
            if (rc)
                fks__errctx(rc, "snapshot %s, %s page %llu (page id %lld)", r->tag, name,
                            (unsigned long long)b->pgno[i], (long long)b->id[i]);
        }
        if (rc == 0)
            rc = write_pages(b, b->lo[t], b->hi[t]);
    }
    for (size_t i = 0; i < b->n; i++) {
        uint64_t end = (b->pgno[i] + 1) * FKS_PAGE_SIZE;
        r->st.written_bytes += (end > size ? size : end) - b->pgno[i] * FKS_PAGE_SIZE;
    }
    r->st.pages += b->n;
    b->n = 0;
    return rc;
}

static int restore_art(struct restore *r, int64_t art, const char *name, uint64_t size, int fd,
                       const char *path)
{
    sqlite3_stmt *st;
    struct rbatch *b = r->batch;
    int rc = cat_prepare(r->s->db, &st,
        "SELECT r.pgno + (p.id - r.page_id), p.id, p.chunk_id, p.off, p.len, coalesce(p.rlen, 4096), p.hash, p.slot "
        "FROM run r JOIN page p ON p.id BETWEEN r.page_id AND r.page_id + r.npages - 1 "
        "WHERE r.artifact_id = ?1 ORDER BY r.pgno, p.id");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, art);
    uint64_t npages = (size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE, expect_next = 0, want = 0;
    int src;
    b->n = 0;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t pgno = (uint64_t)sqlite3_column_int64(st, 0);
        uint32_t rlen = (uint32_t)sqlite3_column_int64(st, 5);
        if (pgno >= npages || pgno < expect_next || sqlite3_column_bytes(st, 6) != 16 ||
            (pgno == npages - 1 ? rlen != size - pgno * FKS_PAGE_SIZE : rlen != FKS_PAGE_SIZE)) {
            rc = fks__err(FKS_ECORRUPT, "page map of %s/%s is damaged at page %llu", r->tag, name,
                          (unsigned long long)pgno);
            break;
        }
        size_t i = b->n++;
        b->pgno[i] = pgno;
        b->id[i] = sqlite3_column_int64(st, 1);
        b->chunk[i] = sqlite3_column_int64(st, 2);
        b->off[i] = (uint64_t)sqlite3_column_int64(st, 3);
        b->len[i] = (uint32_t)sqlite3_column_int64(st, 4);
        b->slot[i] = (uint32_t)sqlite3_column_int64(st, 7);
        b->rlen[i] = rlen;
        memcpy(b->hash[i], sqlite3_column_blob(st, 6), 16);
        expect_next = pgno + 1;
        want++;
        if (b->n == WBATCH_PAGES)
            rc = flush_batch(r, b, name, size, fd, path);
        r->done = pgno * FKS_PAGE_SIZE;
        if (r->progress && fks__now() - r->last > 0.1) {
            r->last = fks__now();
            r->progress(r->progress_arg, r->done, r->total);
        }
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(r->s->db, src, "catalog: read page map");
    if (rc == 0)
        rc = flush_batch(r, b, name, size, fd, path);
    sqlite3_finalize(st);
    /* Every page the runs promise must have come back from the join. */
    if (rc == 0) {
        uint64_t promised = 0;
        if ((rc = cat_prepare(r->s->db, &st, "SELECT coalesce(sum(npages), 0) FROM run WHERE artifact_id = ?1")) == 0) {
            sqlite3_bind_int64(st, 1, art);
            if (sqlite3_step(st) == SQLITE_ROW)
                promised = (uint64_t)sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
        if (rc == 0 && promised != want)
            rc = fks__err(FKS_ECORRUPT, "snapshot %s, %s: the page map names %llu pages but only %llu "
                          "are in the page index (pages missing)", r->tag, name,
                          (unsigned long long)promised, (unsigned long long)want);
    }
    return rc;
}

struct outfile {
    int64_t art;
    char name[65];
    uint64_t size;
    char final[PATH_MAX];
    char tmp[PATH_MAX];
    int fd;
};

int fks_restore(fks_restore_stats *stats, fks_store *s, const char *tag, const char *outdir,
                int flags, fks_progress_fn progress, void *progress_arg)
{
    struct restore r = {0};
    struct outfile *f = NULL;
    size_t n = 0;
    int rc, in_txn = 0;
    double t0 = fks__now();

    r.s = s;
    r.tag = tag;
    r.progress = progress;
    r.progress_arg = progress_arg;
    if ((rc = fks_check_tag(tag)) != 0)
        return rc;
    if ((rc = fks__mkdir_p(outdir, 0700)) != 0)
        return fks__errctx(rc, "output directory");
    struct stat sb;
    if (stat(outdir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return fks__err(FKS_EINVAL, "output %s is not a directory", outdir);
    if ((rc = cat_exec(s->db, "BEGIN")) != 0)
        return rc;
    in_txn = 1;
    sqlite3_stmt *st;
    if ((rc = cat_prepare(s->db, &st, "SELECT a.id, a.name, a.size FROM artifact a JOIN snapshot s "
                          "ON s.id = a.snapshot_id WHERE s.tag = ?1 ORDER BY a.name")) != 0)
        goto out;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct outfile *nf = realloc(f, (n + 1) * sizeof *f);
        if (!nf) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            break;
        }
        f = nf;
        struct outfile *o = &f[n++];
        memset(o, 0, sizeof *o);
        o->fd = -1;
        o->art = sqlite3_column_int64(st, 0);
        snprintf(o->name, sizeof o->name, "%s", (const char *)sqlite3_column_text(st, 1));
        o->size = (uint64_t)sqlite3_column_int64(st, 2);
        r.total += o->size;
    }
    sqlite3_finalize(st);
    if (rc)
        goto out;
    if (n == 0) {
        rc = fks__err(FKS_ENOTFOUND, "snapshot %s not found (see `forkctl images`)", tag);
        goto out;
    }
    /* Check every name before writing anything. */
    for (size_t i = 0; i < n; i++) {
        if ((rc = fks_check_name(f[i].name)) != 0) {
            fks__errctx(FKS_ECORRUPT, "catalog names an artifact of %s badly", tag);
            rc = FKS_ECORRUPT;
            goto out;
        }
        if ((rc = fks__path(f[i].final, sizeof f[i].final, "%s/%s", outdir,
                            fks_artifact_filename(f[i].name))) != 0 ||
            (rc = fks__path(f[i].tmp, sizeof f[i].tmp, "%s/.%s.XXXXXX", outdir,
                            fks_artifact_filename(f[i].name))) != 0)
            goto out;
        if (!(flags & FKS_RESTORE_FORCE) && lstat(f[i].final, &sb) == 0) {
            rc = fks__err(FKS_EEXIST, "%s already exists (use --force to replace it)", f[i].final);
            goto out;
        }
    }
    if ((rc = chunk_reader_new(&r.cr, s)) != 0 || (rc = par_new(&r.par, 0)) != 0)
        goto out;
    r.buf = malloc(WBATCH_PAGES * FKS_PAGE_SIZE);
    r.batch = calloc(1, sizeof *r.batch);
    if (!r.buf || !r.batch || !(r.batch->cr = calloc((size_t)par_threads(r.par), sizeof *r.batch->cr))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    r.batch->out = r.buf;
    for (int t = 0; t < par_threads(r.par); t++)
        if ((rc = chunk_reader_new(&r.batch->cr[t], s)) != 0)
            goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        f[i].fd = mkostemp(f[i].tmp, O_CLOEXEC);
        if (f[i].fd < 0) {
            rc = fks__errno(FKS_EIO, errno, "create %s", f[i].tmp);
            f[i].tmp[0] = 0;
            break;
        }
        if (fchmod(f[i].fd, 0600) != 0 || ftruncate(f[i].fd, (off_t)f[i].size) != 0) {
            rc = fks__errno(FKS_EIO, errno, "size %s to %llu bytes", f[i].tmp, (unsigned long long)f[i].size);
            break;
        }
        rc = restore_art(&r, f[i].art, f[i].name, f[i].size, f[i].fd, f[i].tmp);
        if (rc == 0 && (flags & FKS_RESTORE_SYNC) && fsync(f[i].fd) != 0)
            rc = fks__errno(FKS_EIO, errno, "fsync %s", f[i].tmp);
        r.st.logical_bytes += f[i].size;
    }
    cat_exec(s->db, "COMMIT");
    in_txn = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned rflags = (flags & FKS_RESTORE_FORCE) ? 0 : RENAME_NOREPLACE;
        if (renameat2(AT_FDCWD, f[i].tmp, AT_FDCWD, f[i].final, rflags) != 0) {
            rc = errno == EEXIST ? fks__err(FKS_EEXIST, "%s already exists (use --force to replace it)", f[i].final)
                                 : fks__errno(FKS_EIO, errno, "rename %s to %s", f[i].tmp, f[i].final);
            break;
        }
        f[i].tmp[0] = 0;
    }
    if (rc == 0 && (flags & FKS_RESTORE_SYNC))
        rc = fks__fsync_dir(outdir);
    if (rc == 0 && progress)
        progress(progress_arg, r.total, r.total);
out:
    if (in_txn)
        cat_exec(s->db, "COMMIT");
    for (size_t i = 0; i < n; i++) {
        if (f[i].fd >= 0)
            close(f[i].fd);
        if (rc && f[i].tmp[0] && f[i].fd >= 0)
            unlink(f[i].tmp);
    }
    free(f);
    free(r.buf);
    if (r.batch && r.batch->cr) {
        for (int t = 0; t < par_threads(r.par); t++)
            chunk_reader_free(r.batch->cr[t]);
        free(r.batch->cr);
    }
    free(r.batch);
    par_free(r.par);
    chunk_reader_free(r.cr);
    sqlite3_close(r.fresh);
    r.st.seconds = fks__now() - t0;
    if (rc == 0 && stats)
        *stats = r.st;
    return rc;
}
