/*
** gc.c: garbage collection: unreferenced pages, chunk compaction, stray
** files, catalog free pages.
**
** Design
**  1. One gc at a time: flock(DIR/gc.lock, LOCK_EX|LOCK_NB); a second gc
**     fails at once with FKS_ELOCKED.
**  2. Sweep. Under the writer lock, in one transaction: fold the page
**     map nodes of removed snapshots into the nodes built on them and
**     delete unused nodes (map.c, design 4); mark every page id that some
**     run references (a bitmap over 1 .. next_page_id); delete the page
**     rows in the unmarked id ranges (rowid range reads: the work is the
**     map rows and the dead pages, not the whole index) and bump
**     meta.gc_generation.
**     Holding the writer lock means no ingest can commit a new reference
**     between the marking and the deleting.
**  3. The race with ingest (an ingest looked a page up, found it, and
**     will commit a reference after this sweep deleted it) is closed on
**     the ingest side: its commit sees gc_generation moved and checks
**     that every page it references still exists, starting over if one
**     is gone (ingest.c, design 4). Page ids are never reused, so "id
**     exists" means "same bytes". A sweep only deletes rows: the bytes
**     stay in their chunk until compaction, which copies only live pages.
**  4. Compaction by the store's dead share (restic's --max-unused): dead
**     bytes are a chunk's used bytes that no block row names (records of
**     pages the sweep deleted, leftovers of killed writers). Chunks with
**     nothing live go first (no copy), then those with the most dead
**     bytes, until the dead share of the used bytes left is at most
**     max_unused (default 5%). With live_threshold set instead, every
**     chunk less live than that share goes (the rule before). Each: take
**     the chunk's flock (so no ingest is appending to it; a locked chunk
**     is skipped), copy its live records into other chunks, fdatasync,
**     then in one transaction point those pages at their new places and
**     delete the chunk row; only after that commit unlink the file.
**     A restore that already read the old location either has the file
**     mapped (unlink does not disturb it) or retries with a fresh lookup
**     (restore.c, design 4). A crash after the commit leaves a stray
**     file, removed by step 5 of the next gc.
**  5. Strays: files in chunks/ that no chunk row names (a crash between
**     creating a chunk and committing it, or between a compaction commit
**     and its unlink) are deleted when their flock can be taken, i.e. no
**     live process is still creating them.
**  4b. Empty chunks (no committed record, no page), left by an ingest that
**     failed or was killed after creating them, are deleted with their
**     files (empties()), keeping one spare. Compaction takes the chunks
**     with least live data first, so those with none (no copy needed)
**     free space before anything needs room; on a full disk a copy that
**     runs out of space stops compaction, not gc.
**  4c. The reserve (DIR/reserve, store.c) is deleted before the sweep and
**     made again at the end: on a full disk it is the room gc needs to
**     commit its transactions and WAL.
**  6. Finally PRAGMA incremental_vacuum gives free catalog pages back to
**     the file system and the WAL is checkpointed and truncated, both
**     under the writer lock.
**  7. Recompression (fks_compact, forkctl compact). Ingest writes zstd
**     level 1; compact rewrites chunks at a higher level, oldest first,
**     under gc.lock (design 1), each by compact_one as in design 4: its
**     flock taken (a chunk a writer holds, or whose used moved since it
**     was listed, waits for the next run), every live page decoded and
**     checked, re-blocked in its old order, encoded at the level and
**     appended, synced, then one transaction moves the block rows and
**     deletes the chunk row, then the file goes. Its one writer appends
**     only to chunks it creates itself, so nothing it wrote lands in a
**     chunk it has still to rewrite. Which chunks: a chunk is rewritten
**     when PROBE_BLOCKS of its records, spread over it, shrink by
**     min_gain at the level (probe()); records already at that level do
**     not, so nothing on disk says what was done and a second run costs
**     the probes only (no format change: a zstd frame needs no level to
**     decode). meta.compact_level keeps the level: compact_one moves
**     blocks at it for gc too (move_level), so a gc does not undo it.
**     At the end the room after the last record it wrote is given back
**     (chunk_writer_trim: cap = used, then the file truncated) if another
**     chunk keeps room for the next ingest. A kill before a commit leaves
**     bytes past some chunk's used (free space) or empty chunks (design
**     4b), after it a stray (design 5).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "chunk.h"
#include "lease.h"
#include "manifest.h"
#include "map.h"
#include "pindex.h"
#include "store.h"
#include "util.h"

static uint64_t file_alloc(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Allocated bytes of chunk files and catalog files. */
static uint64_t disk_usage(fks_store *s)
{
    char p[PATH_MAX];
    uint64_t total = 0;
    const char *cat[] = {"catalog.db", "catalog.db-wal", "catalog.db-shm"};
    for (int i = 0; i < 3; i++)
        if (fks__path(p, sizeof p, "%s/%s", s->dir, cat[i]) == 0)
            total += file_alloc(p);
    DIR *d = opendir(s->chunkdir);
    if (!d)
        return total;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && fks__path(p, sizeof p, "%s/%s", s->chunkdir, e->d_name) == 0)
            total += file_alloc(p);
    closedir(d);
    return total;
}

/* The sweep's state: the live marks, the dead found so far, and its
** statements. */
struct sweep {
    sqlite3 *db;
    const fks_gc_opts *o;
    fks_gc_report *r;
    uint8_t *mark;                 /* bit id: page id is live */
    int64_t next;                  /* ids are below it */
    struct dead {
        int64_t id;
        uint64_t prefix;
    } *dead;
    size_t ndead, adead;
    int64_t *gone;                 /* block rows none of whose pages is left */
    size_t ngone, agone;
    sqlite3_stmt *st, *del, *delnew, *blk, *left, *delblk;
};

static int marked(const struct sweep *x, int64_t id)
{
    return (x->mark[id >> 3] >> (id & 7)) & 1;
}

/* Step 1: every page id that a page map or a lease names is marked. Maps
** first: the nodes of removed snapshots are folded into the nodes built on
** them and unused ones deleted (map.c design 4), so that every run left is
** seen by some snapshot; then pages a page server may still serve stay
** (lease.c). */
static int sweep_mark(fks_store *s, struct sweep *x)
{
    sqlite3 *db = x->db;
    sqlite3_stmt *st = NULL;
    int64_t maxid = 0;
    int rc, src;
    if ((rc = cat_meta_get(db, "next_page_id", &x->next)) != 0 ||
        (rc = cat_prepare(db, &st, "SELECT coalesce(max(id), 0) FROM page")) != 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        maxid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (x->next <= maxid)
        x->next = maxid + 1;
    if (!(x->mark = calloc((size_t)(x->next / 8 + 1), 1)))
        return fks__err(FKS_ENOMEM, "out of memory (%lld pages)", (long long)x->next);
    if (!x->o->dry_run && ((rc = map_dissolve(db, &x->r->maps_folded)) != 0 || (rc = map_sweep(db, NULL)) != 0))
        return rc;
    if ((rc = cat_prepare(db, &st, "SELECT page_id, npages FROM pmap_run WHERE page_id > 0")) != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t a = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1), next = x->next;
        int64_t end = a <= 0 || n <= 0 ? a : n > next - a ? next : a + n;     /* damage cannot overflow it */
        for (int64_t id = a; id < end; id++)
            if (id > 0)
                x->mark[id >> 3] |= (uint8_t)(1u << (id & 7));
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return cat_err(db, src, "catalog: read page maps");
    uint64_t n_leases = 0;
    return lease_mark_live(s, x->mark, x->next, x->o->dry_run, &n_leases);
}

/* Step 2a: the page rows of the unmarked ids lo .. hi (page ids are
** rowids: a range is one seek, so the work is the dead pages, not the
** index), each deleted with its page_new entry. */
static int sweep_pages(struct sweep *x, int64_t lo, int64_t hi)
{
    int rc = 0, src;
    sqlite3_bind_int64(x->st, 1, lo);
    sqlite3_bind_int64(x->st, 2, hi);
    while (rc == 0 && (src = sqlite3_step(x->st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(x->st, 0);
        if (sqlite3_column_bytes(x->st, 1) != 16) {
            rc = fks__err(FKS_ECORRUPT, "page %lld has a damaged hash", (long long)id);
            break;
        }
        if ((rc = fks__grow(&x->dead, &x->adead, x->ndead, sizeof *x->dead)) != 0)
            break;
        x->dead[x->ndead].id = id;
        x->dead[x->ndead++].prefix = pidx_prefix(sqlite3_column_blob(x->st, 1));
        x->r->pages_freed++;
        if (x->o->dry_run)
            continue;
        sqlite3_bind_int64(x->del, 1, id);
        sqlite3_bind_blob(x->delnew, 1, sqlite3_column_blob(x->st, 1), 16, SQLITE_TRANSIENT);
        int d = sqlite3_step(x->del), d2 = d == SQLITE_DONE ? sqlite3_step(x->delnew) : d;
        sqlite3_reset(x->del);
        sqlite3_reset(x->delnew);
        if (d2 != SQLITE_DONE)
            rc = cat_err(x->db, d2, "catalog: delete page");
    }
    sqlite3_reset(x->st);
    return rc == 0 && src != SQLITE_DONE ? cat_err(x->db, src, "catalog: scan pages") : rc;
}

/* Step 2b: the block rows over lo .. hi, whose dead pages are those from
** first_dead on: a block's bytes count freed by the share of its pages
** that died; a block none of whose pages is left goes on the gone list. */
static int sweep_blocks(struct sweep *x, int64_t lo, int64_t hi, size_t first_dead)
{
    int rc = 0, src;
    size_t k = first_dead;
    sqlite3_bind_int64(x->blk, 1, lo);
    sqlite3_bind_int64(x->blk, 2, hi);
    while (rc == 0 && (src = sqlite3_step(x->blk)) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(x->blk, 0), bn = sqlite3_column_int64(x->blk, 1);
        int64_t blen = sqlite3_column_int64(x->blk, 2), died = 0;
        while (k < x->ndead && x->dead[k].id < b)
            k++;
        while (k < x->ndead && x->dead[k].id < b + bn)
            k++, died++;
        if (bn > 0)
            x->r->page_bytes_freed += (uint64_t)(blen * died / bn);
        if (x->o->dry_run || !died)
            continue;
        sqlite3_bind_int64(x->left, 1, b);
        sqlite3_bind_int64(x->left, 2, b + bn - 1);
        int l = sqlite3_step(x->left);
        int64_t remain = l == SQLITE_ROW ? sqlite3_column_int64(x->left, 0) : -1;
        sqlite3_reset(x->left);
        if (remain < 0)
            rc = cat_err(x->db, l, "catalog: count block pages");
        else if (remain == 0 && (rc = fks__grow(&x->gone, &x->agone, x->ngone, sizeof *x->gone)) == 0)
            x->gone[x->ngone++] = b;
    }
    sqlite3_reset(x->blk);
    return rc == 0 && src != SQLITE_DONE ? cat_err(x->db, src, "catalog: scan blocks") : rc;
}

/* Step 3: the emptied block rows go (no read is open on block now), then
** the packed index drops the dead pages' entries. */
static int sweep_finish(struct sweep *x)
{
    int rc = 0;
    for (size_t g = 0; g < x->ngone && rc == 0; g++) {
        sqlite3_bind_int64(x->delblk, 1, x->gone[g]);
        rc = cat_done(x->db, sqlite3_step(x->delblk), "catalog: delete block");
        sqlite3_reset(x->delblk);
    }
    if (rc || x->o->dry_run)
        return rc;
    uint64_t *pre = malloc((x->ndead + 1) * sizeof *pre), packed, dropped;
    if (!pre)
        return fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < x->ndead; i++)
        pre[i] = x->dead[i].prefix;
    rc = pidx_pack(x->db, x->mark, x->next, pre, x->ndead, &packed, &dropped);
    free(pre);
    return rc;
}

/* Design 2: in one transaction, the pages no map or lease names are
** deleted with the block rows they empty. */
static int sweep(fks_store *s, const fks_gc_opts *o, fks_gc_report *r)
{
    sqlite3 *db = s->db;
    struct sweep x = {.db = db, .o = o, .r = r};
    int64_t gen = 0;
    int rc = cat_begin(s);
    if (rc)
        return rc;
    if ((rc = cat_meta_get(db, "gc_generation", &gen)) != 0 || (rc = sweep_mark(s, &x)) != 0)
        goto out;
    if ((rc = cat_prepare(db, &x.st, "SELECT id, hash FROM page WHERE id BETWEEN ?1 AND ?2")) != 0 ||
        (rc = cat_prepare(db, &x.del, "DELETE FROM page WHERE id = ?1")) != 0 ||
        (rc = cat_prepare(db, &x.delnew, "DELETE FROM page_new WHERE hash = ?1")) != 0 ||
        (rc = cat_prepare(db, &x.blk, "SELECT id, n, len FROM block WHERE id >= "
                                      "coalesce((SELECT max(id) FROM block WHERE id <= ?1), ?1) AND id <= ?2 ORDER BY id")) != 0 ||
        (rc = cat_prepare(db, &x.left, "SELECT count(*) FROM page WHERE id BETWEEN ?1 AND ?2")) != 0 ||
        (rc = cat_prepare(db, &x.delblk, "DELETE FROM block WHERE id = ?1")) != 0)
        goto out;
    for (int64_t lo = 1; lo < x.next && rc == 0;) {
        if (x.mark[lo >> 3] == 0xff && (lo & 7) == 0) {    /* a byte of live ids */
            lo += 8;
            continue;
        }
        if (marked(&x, lo)) {
            lo++;
            continue;
        }
        int64_t hi = lo;                                   /* a range of dead ids */
        while (hi + 1 < x.next && !marked(&x, hi + 1))
            hi++;
        size_t first_dead = x.ndead;
        if ((rc = sweep_pages(&x, lo, hi)) == 0)
            rc = sweep_blocks(&x, lo, hi, first_dead);
        lo = hi + 1;
    }
    if (rc == 0)
        rc = sweep_finish(&x);
    if (rc == 0 && r->pages_freed && !o->dry_run)
        rc = cat_meta_set(db, "gc_generation", gen + 1);
    if (rc == 0 && !o->dry_run)
        rc = cat_meta_set(db, "next_page_id", x.next);
out:
    sqlite3_finalize(x.st);
    sqlite3_finalize(x.del);
    sqlite3_finalize(x.blk);
    sqlite3_finalize(x.delnew);
    sqlite3_finalize(x.left);
    sqlite3_finalize(x.delblk);
    free(x.mark);
    free(x.dead);
    free(x.gone);
    return cat_end(s, rc);   /* a dry run changed nothing: an empty commit */
}

struct cand {
    int64_t id;
    uint64_t used, live;
};

struct crow {                      /* a block row of a chunk to compact */
    int64_t chunk, id, n, off, len, slot0;
};

static int cmp_crow(const void *a, const void *b)
{
    const struct crow *x = a, *y = b;
    if (x->chunk != y->chunk)
        return x->chunk < y->chunk ? -1 : 1;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return (x->slot0 > y->slot0) - (x->slot0 < y->slot0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

#define COMPACT_BATCH 64

/* The block rows of the chunks ids[0..n-1] (sorted), in one pass over
** table block (it has no index by chunk: 3 bytes a page saved), sorted by
** (chunk, off, slot0). */
static int chunk_rows(sqlite3 *db, const int64_t *ids, size_t n, struct crow **out, size_t *nout)
{
    sqlite3_stmt *st;
    size_t alloc = 0;
    *out = NULL;
    *nout = 0;
    int rc = cat_prepare(db, &st, "SELECT chunk_id, id, n, off, len, slot0 FROM block");
    if (rc)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ch = sqlite3_column_int64(st, 0);
        if (!bsearch(&ch, ids, n, sizeof *ids, cmp_i64))
            continue;
        if ((rc = fks__grow(out, &alloc, *nout, sizeof **out)) != 0)
            break;
        struct crow *w = &(*out)[(*nout)++];
        *w = (struct crow){ch, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                           sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5)};
    }
    if (rc == 0)
        rc = cat_done(db, src, "catalog: read block rows");
    sqlite3_finalize(st);
    if (rc == 0 && *nout)
        qsort(*out, *nout, sizeof **out, cmp_crow);
    return rc;
}

/* chunk.used now (-1 if the row is gone). */
static int chunk_used(sqlite3 *db, int64_t id, int64_t *used)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "SELECT used FROM chunk WHERE id = ?1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    *used = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    rc = src == SQLITE_ROW ? 0 : cat_done(db, src, "catalog: read chunk");
    sqlite3_finalize(st);
    return rc;
}

/* The chunks with records, by sql (CANDS_SQL: id, used, live bytes),
** leaving out rows whose live bytes exceed their used ones (damage:
** nothing to gain). */
#define CANDS_SQL(order)                                                                              \
    "SELECT c.id, c.used, coalesce(b.live, 0) FROM chunk c LEFT JOIN "                                \
    " (SELECT chunk_id, sum(len) AS live FROM (SELECT DISTINCT chunk_id, off, len FROM block) GROUP BY chunk_id) b " \
    " ON b.chunk_id = c.id WHERE c.used > " CHUNK_HDR_SQL " ORDER BY " order

static int cands_read(sqlite3 *db, const char *sql, struct cand **out, size_t *nout)
{
    sqlite3_stmt *st;
    size_t alloc = 0;
    int rc = cat_prepare(db, &st, sql), src;
    *out = NULL;
    *nout = 0;
    if (rc)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct cand x = {sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
                         (uint64_t)sqlite3_column_int64(st, 2)};
        if (x.used < CHUNK_HDR_SIZE + x.live)
            continue;
        if ((rc = fks__grow(out, &alloc, *nout, sizeof **out)) != 0)
            break;
        (*out)[(*nout)++] = x;
    }
    if (rc == 0)
        rc = cat_done(db, src, "catalog: read chunk usage");
    sqlite3_finalize(st);
    if (rc) {
        free(*out);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

/* Progress over candidates: the bytes they use, added as each is done. */
static void cands_progress(fks__progress *pg, fks_progress_fn fn, void *arg, const struct cand *c, size_t n)
{
    fks__progress_init(pg, fn, arg, 0);
    for (size_t i = 0; i < n; i++)
        fks__progress_total(pg, c[i].used - CHUNK_HDR_SIZE);
}

/* --max-duration: past max_seconds (> 0) since t0, *stopped is set. */
static int out_of_time(double max_seconds, double t0, int *stopped)
{
    if (max_seconds <= 0 || fks__now() - t0 <= max_seconds)
        return 0;
    *stopped = 1;
    return 1;
}

/* Block rows are read for a batch of candidates at a time, before their
** flocks are taken: a chunk whose used bytes moved since the candidates
** were listed (a writer committed records to it) is left for the next
** run (chunk_take), so the rows read are all the chunk's rows. */
struct batch {
    struct crow *rows;
    size_t n;
};

/* The rows of candidates i .. i+COMPACT_BATCH-1 that hold live data. */
static int batch_read(sqlite3 *db, const struct cand *c, size_t n, size_t i, struct batch *b)
{
    int64_t ids[COMPACT_BATCH];
    size_t k = 0;
    for (size_t j = i; j < n && j < i + COMPACT_BATCH; j++)
        if (c[j].live > 0)
            ids[k++] = c[j].id;
    free(b->rows);
    b->rows = NULL;
    b->n = 0;
    if (k == 0)
        return 0;
    qsort(ids, k, sizeof *ids, cmp_i64);
    return chunk_rows(db, ids, k, &b->rows, &b->n);
}

/* Chunk id's rows in b: rows[*r0 .. *r1 - 1]. */
static void batch_find(const struct batch *b, int64_t id, size_t *r0, size_t *r1)
{
    size_t i = 0, j;
    while (i < b->n && b->rows[i].chunk < id)
        i++;
    for (j = i; j < b->n && b->rows[j].chunk == id; j++)
        ;
    *r0 = i;
    *r1 = j;
}

/* Takes candidate c for a rewrite: its file open and flocked in *fd, its
** used bytes what they were when listed. *fd = -1: not now (the file is
** missing, which verify reports; a writer holds it; or it was written to
** since). */
static int chunk_take(fks_store *s, const struct cand *c, int *fd)
{
    char p[PATH_MAX];
    int64_t used;
    int rc;
    *fd = -1;
    if ((rc = chunk_path(p, sizeof p, s, c->id)) != 0)
        return rc;
    int f = open(p, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0)
        return 0;
    if (flock(f, LOCK_EX | LOCK_NB) != 0 || (rc = chunk_used(s->db, c->id, &used)) != 0 ||
        used != (int64_t)c->used) {
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}

/* After a gc or compact: free catalog pages go back to the file system,
** the WAL is truncated, and a spare chunk is made for the next ingest
** (best effort). */
static int tidy(fks_store *s)
{
    int rc = cat_begin(s);
    if (rc)
        return rc;
    rc = cat_end(s, cat_exec(s->db, "PRAGMA incremental_vacuum"));
    if (rc == 0)
        rc = cat_checkpoint(s, 1);
    if (rc == 0)
        (void)chunk_prealloc_spare(s);
    return rc;
}

/* Tests: FKS_TEST_COMPACT_KILL=POINT[:N] SIGKILLs this process at POINT
** ("synced": new records durable, catalog not switched; "committed":
** switched, old file not yet removed) of the Nth chunk rewritten (1). */
static void test_kill(const char *point)
{
    static int seen;
    const char *t = getenv("FKS_TEST_COMPACT_KILL");
    size_t n = strlen(point);
    if (!t || strncmp(t, point, n) != 0 || (t[n] != '\0' && t[n] != ':'))
        return;
    long want = t[n] == ':' ? strtol(t + n + 1, NULL, 10) : 1;
    if (++seen >= want)
        raise(SIGKILL);
}

struct moved {
    int64_t id, chunk;
    uint64_t off;           /* before the copy: old place; after: new */
    uint32_t len, slot, rlen;
    uint8_t hash[16];
};

/* The pages of a chunk to move: struct moved per live page of its block
** rows (rows, in record order), and those rows' ids (old). */
struct moving {
    struct moved *mv;
    size_t n, alloc;
    int64_t *old;
    size_t nold, aold;
};

static void moving_free(struct moving *m)
{
    free(m->mv);
    free(m->old);
}

/* Step 1: the live pages of chunk c's block rows, read into memory first:
** appending may create a chunk, a write transaction, which must not start
** while a read statement is open on the same connection. */
static int compact_list(sqlite3 *db, const struct cand *c, const struct crow *rows, size_t nrows,
                        struct moving *m)
{
    sqlite3_stmt *pg = NULL;
    int rc = cat_prepare(db, &pg, "SELECT id, coalesce(rlen, 4096), hash FROM page WHERE id BETWEEN ?1 AND ?2 "
                         "ORDER BY id");
    for (size_t ri = 0; ri < nrows && rc == 0; ri++) {
        int64_t b = rows[ri].id, rn = rows[ri].n, boff = rows[ri].off, reclen = rows[ri].len, slot0 = rows[ri].slot0;
        if (rn <= 0 || rn > 8 || slot0 < 0 || slot0 + rn > 8 || boff < 0 || reclen <= 0 || reclen > UINT32_MAX) {
            rc = fks__err(FKS_ECORRUPT, "block %lld of chunk %lld is damaged", (long long)b, (long long)c->id);
            break;
        }
        if ((rc = fks__grow(&m->old, &m->aold, m->nold, sizeof *m->old)) != 0)
            break;
        m->old[m->nold++] = b;
        sqlite3_bind_int64(pg, 1, b);
        sqlite3_bind_int64(pg, 2, b + rn - 1);
        int ps;
        while (rc == 0 && (ps = sqlite3_step(pg)) == SQLITE_ROW) {
            if (sqlite3_column_bytes(pg, 2) != 16) {
                rc = fks__err(FKS_ECORRUPT, "page %lld has a bad hash", (long long)sqlite3_column_int64(pg, 0));
                break;
            }
            if ((rc = fks__grow(&m->mv, &m->alloc, m->n, sizeof *m->mv)) != 0)
                break;
            struct moved *v = &m->mv[m->n++];
            v->id = sqlite3_column_int64(pg, 0);
            v->off = (uint64_t)boff;
            v->len = (uint32_t)reclen;
            v->slot = (uint32_t)(slot0 + v->id - b);
            v->rlen = (uint32_t)sqlite3_column_int64(pg, 1);
            memcpy(v->hash, sqlite3_column_blob(pg, 2), 16);
        }
        sqlite3_reset(pg);
        if (rc == 0 && ps != SQLITE_DONE)
            rc = cat_err(db, ps, "catalog: read chunk pages");
    }
    sqlite3_finalize(pg);
    return rc;
}

/* Step 2: every page decoded (and so checked: damage is never copied
** along), re-blocked in its old order and appended through w; each
** struct moved then names its new place. */
static int compact_copy(chunk_reader *rd, chunk_writer *w, int level, int64_t chunk_id, struct moving *m,
                        fks_gc_report *r)
{
    uint8_t raw[CHUNK_BLOCK_MAX], payload[CHUNK_BLOCK_MAX], hash[CHUNK_BLOCK_PAGES][16];
    uint32_t rlen[CHUNK_BLOCK_PAGES], bn = 0, blen = 0;
    struct moved *mv = m->mv;
    size_t n = m->n;
    int rc = 0;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (!cctx)
        return fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i <= n && rc == 0; i++) {
        if (i < n) {
            if ((rc = chunk_read(rd, chunk_id, mv[i].off, mv[i].len, mv[i].slot, mv[i].rlen, mv[i].hash,
                                 raw + blen)) != 0)
                break;
            rlen[bn] = mv[i].rlen;
            memcpy(hash[bn], mv[i].hash, 16);
            mv[i].slot = bn++;
            blen += mv[i].rlen;
        }
        if (bn == CHUNK_BLOCK_PAGES || (i == n && bn > 0)) {
            uint32_t clen, len;
            int codec;
            int64_t chunk;
            uint64_t off;
            size_t first = (i == n ? n : i + 1) - bn;
            if ((rc = chunk_compress_level(cctx, level, raw, blen, payload, &clen, &codec)) != 0 ||
                (rc = chunk_append(w, bn, rlen, (const uint8_t (*)[16])hash, payload, clen, codec,
                                   &chunk, &off, &len)) != 0)
                break;
            for (size_t k = first; k < first + bn; k++) {
                mv[k].chunk = chunk;
                mv[k].off = off;
                mv[k].len = len;
            }
            r->bytes_copied += len;
            bn = blen = 0;
        }
    }
    ZSTD_freeCCtx(cctx);
    return rc;
}

/* Step 3, in the caller's transaction: the old block rows go, the new ones
** come, the chunk row goes. */
static int compact_switch(sqlite3 *db, int64_t chunk_id, const struct moving *m)
{
    sqlite3_stmt *st = NULL;
    int rc = cat_prepare(db, &st, "DELETE FROM block WHERE id = ?1 AND chunk_id = ?2");
    for (size_t i = 0; i < m->nold && rc == 0; i++) {
        sqlite3_bind_int64(st, 1, m->old[i]);
        sqlite3_bind_int64(st, 2, chunk_id);
        rc = cat_done(db, sqlite3_step(st), "catalog: move block");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    pidx *x = NULL;
    if (rc == 0)
        rc = pidx_open(&x, db);
    struct pidx_blocks nb = {.x = x};
    for (size_t i = 0; i < m->n && rc == 0; i++)
        rc = pidx_blocks_push(&nb, m->mv[i].id, m->mv[i].chunk, m->mv[i].off, m->mv[i].len, m->mv[i].slot);
    if (rc == 0)
        rc = pidx_blocks_flush(&nb);
    pidx_close(x);
    if (rc == 0 && (rc = cat_prepare(db, &st, "DELETE FROM chunk WHERE id = ?1")) == 0) {
        sqlite3_bind_int64(st, 1, chunk_id);
        rc = cat_done(db, sqlite3_step(st), "catalog: delete chunk");
        sqlite3_finalize(st);
    }
    return rc;
}

/* Compacts one chunk whose flock the caller holds (design 4): its live
** pages listed, copied and synced, then one transaction switches the
** catalog to the copies, and only then is the file deleted. */
static int compact_one(fks_store *s, const struct cand *c, const struct crow *rows, size_t nrows, int level,
                       chunk_writer *shared, fks_gc_report *r)
{
    chunk_writer *w = shared;
    chunk_reader *rd = NULL;
    struct moving m = {0};
    int rc;

    if ((!w && (rc = chunk_writer_new(&w, s)) != 0) || (rc = chunk_reader_new(&rd, s)) != 0 ||
        (rc = compact_list(s->db, c, rows, nrows, &m)) != 0 ||
        (rc = compact_copy(rd, w, level, c->id, &m, r)) != 0)
        goto out;
    if ((rc = chunk_writer_sync(w)) != 0)           /* copies durable ... */
        goto out;
    test_kill("synced");
    if ((rc = cat_begin(s)) != 0)                   /* ... then the switch */
        goto out;
    rc = compact_switch(s->db, c->id, &m);
    if (rc == 0)
        rc = chunk_writer_commit(w);
    if ((rc = cat_end(s, rc)) != 0)
        goto out;
    test_kill("committed");
    char p[PATH_MAX];                               /* and only then the file */
    if (chunk_path(p, sizeof p, s, c->id) == 0 && unlink(p) == 0)
        r->chunks_deleted++;
    if (m.n)
        r->chunks_rewritten++;
out:
    if (w != shared)
        chunk_writer_free(w);
    chunk_reader_free(rd);
    moving_free(&m);
    if (rc)
        fks__errctx(rc, "compact chunk %08llx", (unsigned long long)c->id);
    return rc;
}

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    uint64_t dx = x->used - CHUNK_HDR_SIZE - x->live, dy = y->used - CHUNK_HDR_SIZE - y->live;
    if ((x->live == 0) != (y->live == 0))      /* nothing to copy: first */
        return x->live == 0 ? -1 : 1;
    if (dx != dy)                              /* then the most dead bytes */
        return dx > dy ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The level blocks are re-encoded at when they move: the last level
** forkctl compact used (meta.compact_level), so that a gc does not undo
** it; ingest's level before any compact. */
static int move_level(fks_store *s, int *level)
{
    int64_t lv = CHUNK_ZSTD_LEVEL;
    int rc = cat_meta_get(s->db, "compact_level", &lv);
    *level = lv >= 1 && lv <= ZSTD_maxCLevel() ? (int)lv : CHUNK_ZSTD_LEVEL;
    return rc;
}

/* The chunks gc compacts (design 4), least live first: with a threshold,
** those less than it live; by default, those with nothing live, then the
** ones with the most dead bytes until what stays dead is at most target
** of what stays used. */
static int compact_cands(sqlite3 *db, const fks_gc_opts *o, struct cand **out, size_t *nout)
{
    double thr = o->live_threshold, target = o->max_unused > 0 ? o->max_unused : 0.05;
    struct cand *c;
    size_t n, k = 0;
    uint64_t total = 0, dead = 0;
    int rc = cands_read(db, CANDS_SQL("coalesce(b.live, 0), c.id"), &c, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        total += c[i].used - CHUNK_HDR_SIZE;
        dead += c[i].used - CHUNK_HDR_SIZE - c[i].live;
        if (c[i].used - CHUNK_HDR_SIZE == c[i].live ||
            (thr > 0 && (double)c[i].live >= thr * (double)(c[i].used - CHUNK_HDR_SIZE)))
            continue;
        c[k++] = c[i];
    }
    n = k;
    if (thr <= 0) {
        if (n)
            qsort(c, n, sizeof *c, cmp_cand);
        for (k = 0; k < n; k++) {
            if (c[k].live > 0 && (double)dead <= target * (double)total)
                break;
            uint64_t d = c[k].used - CHUNK_HDR_SIZE - c[k].live;
            dead -= d;
            total -= d;
        }
        n = k;
    }
    *out = c;
    *nout = n;
    return 0;
}

static int compact(fks_store *s, const fks_gc_opts *o, fks_gc_report *r, double t0)
{
    struct cand *c = NULL;
    struct batch b = {0};
    size_t n = 0;
    int level;
    int rc = move_level(s, &level);
    if (rc || (rc = compact_cands(s->db, o, &c, &n)) != 0)
        return rc;
    fks__progress pg;
    cands_progress(&pg, o->progress, o->progress_arg, c, n);
    for (size_t i = 0; i < n && rc == 0; fks__progress_add(&pg, c[i].used - CHUNK_HDR_SIZE), i++) {
        if (out_of_time(o->max_seconds, t0, &r->stopped_early))
            break;
        if (o->dry_run) {
            r->chunks_rewritten += c[i].live > 0;
            r->chunks_deleted++;
            continue;
        }
        if (i % COMPACT_BATCH == 0 && (rc = batch_read(s->db, c, n, i, &b)) != 0)
            break;
        size_t r0, r1;
        int fd;
        batch_find(&b, c[i].id, &r0, &r1);
        if ((rc = chunk_take(s, &c[i], &fd)) != 0 || fd < 0)
            continue;
        rc = compact_one(s, &c[i], b.rows + r0, r1 - r0, level, NULL, r);
        close(fd);
        if (rc == FKS_ENOSPC && (r->chunks_deleted || r->pages_freed)) {
            /* Chunks with nothing live went first and freed what they
            ** could; copying needs room the disk does not have. */
            r->stopped_early = 1;
            rc = 0;
            break;
        }
    }
    if (rc == 0)
        fks__progress_end(&pg);
    free(b.rows);
    free(c);
    return rc;
}

/* Deletes files in chunks/ that no chunk row names and nobody locks, and
** only those whose id was handed out (below meta.next_chunk_id, chunk.c
** design 7): a chunk file the catalog never knew of is not ours to
** delete. A catalog that names no chunk at all beside chunk files is
** refused outright: it is the wrong catalog, not a store full of strays. */
static int strays(fks_store *s, const fks_gc_opts *o, fks_gc_report *r)
{
    int64_t next = -1, nrows = 0;
    sqlite3_stmt *st;
    int rc = cat_meta_get(s->db, "next_chunk_id", &next);
    if (rc == 0 && (rc = cat_prepare(s->db, &st, "SELECT count(*) FROM chunk")) == 0) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            nrows = sqlite3_column_int64(st, 0);
        else
            rc = cat_err(s->db, src, "catalog: count chunks");
        sqlite3_finalize(st);
    }
    if (rc)
        return rc;
    int nfiles = store_count_chunk_files(s);
    if (nrows == 0 && next < 0 && nfiles > 0)
        return fks__err(FKS_ECORRUPT, "catalog %s/catalog.db names no chunk, but %s holds %d chunk files: "
                        "this is not their catalog; refusing to delete them", s->dir, s->chunkdir, nfiles);
    DIR *d = opendir(s->chunkdir);
    if (!d)
        return fks__errno(FKS_EIO, errno, "open %s", s->chunkdir);
    rc = cat_prepare(s->db, &st, "SELECT 1 FROM chunk WHERE id = ?1");
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (nm[0] == '.')
            continue;
        int64_t id = 0;
        int named = chunk_file_parse(nm, &id);
        if (named) {
            if (next >= 0 && id >= next)
                continue;        /* never handed out: verify reports it */
            sqlite3_bind_int64(st, 1, id);
            int known = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_reset(st);
            if (known)
                continue;
        } else if (strncmp(nm, "tmp.", 4) != 0) {
            continue;            /* not ours: leave it */
        }
        char p[PATH_MAX];
        if (fks__path(p, sizeof p, "%s/%s", s->chunkdir, nm) != 0)
            continue;
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            /* Re-check under the lock: a chunk committed just now. */
            int known = 0;
            if (named) {
                sqlite3_bind_int64(st, 1, id);
                known = sqlite3_step(st) == SQLITE_ROW;
                sqlite3_reset(st);
            }
            if (!known) {
                r->strays_deleted++;
                if (!o->dry_run)
                    unlink(p);
            }
        }
        close(fd);
    }
    sqlite3_finalize(st);
    closedir(d);
    return rc;
}

/* Empty chunks: rows with no committed record (used = the header) that no
** page names, left by an ingest that failed or was killed after creating
** them. Each is deleted with its file while gc holds its flock (a writer
** appending to it holds that lock, so it is skipped), the rows in one
** transaction under the writer lock that re-reads which are still empty,
** the files after the commit. One is kept as the next ingest's spare when
** no other chunk has a quarter of its room free. */
#define EMPTY_BATCH 256
static int empties(fks_store *s, const fks_gc_opts *o, fks_gc_report *r)
{
    static const char *q = "SELECT id FROM chunk WHERE used <= " CHUNK_HDR_SQL " AND id NOT IN "
                           "(SELECT DISTINCT chunk_id FROM block) ORDER BY id";
    sqlite3_stmt *st = NULL;
    int64_t *ids = NULL, keep = 0, roomy = 0;
    size_t n = 0, alloc = 0;
    int rc = cat_prepare(s->db, &st, "SELECT count(*) FROM chunk WHERE used > " CHUNK_HDR_SQL
                                     " AND cap - used >= cap / 4");
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        roomy = sqlite3_column_int64(st, 0);
    else
        rc = cat_err(s->db, src, "catalog: chunks with room");
    sqlite3_finalize(st);
    st = NULL;
    if (rc || (rc = cat_prepare(s->db, &st, q)) != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (!roomy && !keep) {
            keep = id;
            continue;
        }
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            int64_t *ni = realloc(ids, alloc * sizeof *ni);
            if (!ni) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            ids = ni;
        }
        ids[n++] = id;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list empty chunks");
    sqlite3_finalize(st);
    st = NULL;
    if (o->dry_run) {
        r->chunks_deleted += n;
        n = 0;
    }
    for (size_t b = 0; rc == 0 && b < n; b += EMPTY_BATCH) {
        size_t m = n - b < EMPTY_BATCH ? n - b : EMPTY_BATCH;
        int fds[EMPTY_BATCH], held[EMPTY_BATCH], gone[EMPTY_BATCH];
        for (size_t i = 0; i < m; i++) {
            char p[PATH_MAX];
            fds[i] = -1;
            held[i] = gone[i] = 0;
            if (chunk_path(p, sizeof p, s, ids[b + i]) != 0)
                continue;
            /* No file: the row alone goes. A file: only if nobody holds it. */
            int e = store_open_file(s, p, O_RDWR, "chunk file", &fds[i]);
            held[i] = e == FKS_ENOTFOUND || (e == 0 && flock(fds[i], LOCK_EX | LOCK_NB) == 0);
        }
        if ((rc = cat_begin(s)) == 0) {
            sqlite3_stmt *del = NULL;
            if ((rc = cat_prepare(s->db, &st, q)) == 0 &&
                (rc = cat_prepare(s->db, &del, "DELETE FROM chunk WHERE id = ?1")) == 0) {
                while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
                    int64_t id = sqlite3_column_int64(st, 0);
                    for (size_t i = 0; i < m; i++)
                        if (ids[b + i] == id && held[i]) {
                            sqlite3_bind_int64(del, 1, id);
                            if ((src = sqlite3_step(del)) != SQLITE_DONE)
                                rc = cat_err(s->db, src, "catalog: delete empty chunk");
                            sqlite3_reset(del);
                            gone[i] = rc == 0;
                        }
                }
                if (rc == 0 && src != SQLITE_DONE)
                    rc = cat_err(s->db, src, "catalog: list empty chunks");
            }
            sqlite3_finalize(st);
            sqlite3_finalize(del);
            st = NULL;
            rc = cat_end(s, rc);
        }
        for (size_t i = 0; i < m; i++) {
            char p[PATH_MAX];
            if (rc == 0 && gone[i] && chunk_path(p, sizeof p, s, ids[b + i]) == 0) {
                if (fds[i] >= 0)
                    (void)unlink(p);      /* after the commit: a crash leaves a stray */
                r->chunks_deleted++;
            }
            if (fds[i] >= 0)
                close(fds[i]);
        }
    }
    free(ids);
    return rc;
}

/* Design 1: DIR/gc.lock, held by gc and by compact; *fd holds it. */
static int gc_lock(fks_store *s, int *fd, const char *busy)
{
    char p[PATH_MAX];
    int rc = fks__path(p, sizeof p, "%s/gc.lock", s->dir);
    if (rc)
        return rc;
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return fks__errno(FKS_EIO, errno, "open %s", p);
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        close(*fd);
        *fd = -1;
        return fks__err(FKS_ELOCKED, "%s on %s (it holds %s); nothing to do", busy, s->dir, p);
    }
    return 0;
}

int fks_gc(fks_gc_report *rep, fks_store *s, const fks_gc_opts *o)
{
    fks_gc_report r = {0};
    fks_gc_opts def = {0};
    double t0 = fks__now();
    int fd = -1, rc;

    if (!o)
        o = &def;
    if (s->readonly)
        return fks__err(FKS_EINVAL, "store opened read-only");
    if ((rc = gc_lock(s, &fd, "another gc is running (or a compact)")) != 0)
        return rc;
    r.disk_bytes_before = disk_usage(s);
    /* On a full disk the reserve is the room the commits below need. */
    if (!o->dry_run)
        store_reserve_release(s);
    if ((rc = sweep(s, o, &r)) != 0)
        goto out;
    /* Strays before compaction: a compaction leaves none of its own. */
    if ((rc = strays(s, o, &r)) != 0)
        goto out;
    if ((rc = empties(s, o, &r)) != 0)
        goto out;
    /* Manifests never committed, tombstones nobody needs (manifest.c). */
    if ((rc = manifest_sweep(s, o->dry_run, NULL)) != 0)
        goto out;
    if ((rc = compact(s, o, &r, t0)) != 0)
        goto out;
    if (!o->dry_run)
        rc = tidy(s);
out:
    if (!o->dry_run) {
        /* best effort: the next gc tries again; gc's own error, not the
        ** reserve's, is the one to report */
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", fks_errmsg());
        if (store_reserve_make(s) != 0 && rc != 0)
            fks__err(rc, "%s", keep);
    }
    r.disk_bytes_after = disk_usage(s);
    r.seconds = fks__now() - t0;
    close(fd);
    if (rep)
        *rep = r;
    return rc;
}

/* ---------------------------------------------------------------- compact */

#define PROBE_BLOCKS 4

/* Of a chunk's block rows (sorted by offset), up to PROBE_BLOCKS records
** spread over the chunk, each re-encoded at level: the chunk is worth
** rewriting if they shrink by min_gain. Records compact already wrote at
** this level do not, so a second compact skips them (design 7). */
static int probe(chunk_reader *rd, ZSTD_CCtx *cctx, int level, const struct cand *c, const struct crow *rows,
                 size_t nrows, double min_gain, int *worth)
{
    uint64_t now = 0, then = 0;
    int64_t last = -1;
    size_t nrec = 0;
    *worth = 0;
    for (size_t i = 0; i < nrows; i++)
        if (rows[i].off != last)
            nrec++, last = rows[i].off;
    size_t step = nrec > PROBE_BLOCKS ? nrec / PROBE_BLOCKS : 1, k = 0, taken = 0;
    last = -1;
    for (size_t i = 0; i < nrows && taken < PROBE_BLOCKS; i++) {
        if (rows[i].off == last)
            continue;
        last = rows[i].off;
        if (k++ % step != 0)
            continue;
        if (rows[i].off < 0 || rows[i].len <= 0 || rows[i].len > UINT32_MAX)
            return fks__err(FKS_ECORRUPT, "block %lld of chunk %lld is damaged", (long long)rows[i].id,
                            (long long)c->id);
        uint32_t a, b;
        int rc = chunk_probe(rd, cctx, level, c->id, (uint64_t)rows[i].off, (uint32_t)rows[i].len, &a, &b);
        if (rc)
            return rc;
        now += a;
        then += b;
        taken++;
    }
    *worth = taken > 0 && (double)then <= (1.0 - min_gain) * (double)now;
    return 0;
}

/* fks_compact's pass over the chunks with live data, oldest first (the
** coldest pages, written by ingest at its level), through one writer. */
static int recompress(fks_store *s, const fks_compact_opts *o, int level, double t0, chunk_reader *rd,
                      chunk_writer *w, ZSTD_CCtx *cctx, fks_compact_report *r)
{
    double min_gain = o->min_gain > 0 ? o->min_gain : 0.01;
    struct cand *c = NULL;
    struct batch b = {0};
    size_t n = 0, k = 0;
    int rc = cands_read(s->db, CANDS_SQL("c.id"), &c, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (c[i].live > 0)
            c[k++] = c[i];
    n = k;
    fks__progress pg;
    cands_progress(&pg, o->progress, o->progress_arg, c, n);
    for (size_t i = 0; i < n && rc == 0; fks__progress_add(&pg, c[i].used - CHUNK_HDR_SIZE), i++) {
        if (out_of_time(o->max_seconds, t0, &r->stopped_early))
            break;
        if (i % COMPACT_BATCH == 0 && (rc = batch_read(s->db, c, n, i, &b)) != 0)
            break;
        size_t r0, r1;
        int fd, worth = 0;
        batch_find(&b, c[i].id, &r0, &r1);
        r->chunks_seen++;
        if ((rc = chunk_take(s, &c[i], &fd)) != 0 || fd < 0) {
            r->chunks_busy++;    /* missing, being written to, or since it was listed */
            continue;
        }
        if ((rc = probe(rd, cctx, level, &c[i], b.rows + r0, r1 - r0, min_gain, &worth)) != 0 || !worth) {
            close(fd);
            r->chunks_dense += rc == 0;
            continue;
        }
        fks_gc_report gr = {0};
        rc = compact_one(s, &c[i], b.rows + r0, r1 - r0, level, w, &gr);
        close(fd);
        chunk_reader_reset(rd);
        if (rc == FKS_ENOSPC) {      /* the chunks done so far stay done */
            r->stopped_early = 1;
            rc = 0;
            break;
        }
        if (rc == 0) {
            r->chunks_recompressed++;
            r->bytes_before += c[i].used - CHUNK_HDR_SIZE;
            r->bytes_after += gr.bytes_copied;
        }
    }
    if (rc == 0)
        fks__progress_end(&pg);
    free(b.rows);
    free(c);
    return rc;
}

int fks_compact(fks_compact_report *rep, fks_store *s, const fks_compact_opts *o)
{
    fks_compact_report r = {0};
    fks_compact_opts def = {0};
    double t0 = fks__now();
    int fd = -1, rc, level;
    chunk_reader *rd = NULL;
    chunk_writer *w = NULL;     /* one for the run, new chunks only */
    ZSTD_CCtx *cctx = NULL;

    if (!o)
        o = &def;
    level = o->level ? o->level : FKS_COMPACT_LEVEL;
    if (s->readonly)
        return fks__err(FKS_EINVAL, "store opened read-only");
    if (level < 1 || level > ZSTD_maxCLevel())
        return fks__err(FKS_EINVAL, "zstd level %d out of range (1 .. %d)", level, ZSTD_maxCLevel());
    if ((rc = gc_lock(s, &fd, "a gc or another compact is running")) != 0)
        return rc;
    r.disk_bytes_before = disk_usage(s);
    /* The level first: a gc from now on moves blocks at it (move_level). */
    if ((rc = cat_begin(s)) != 0 || (rc = cat_end(s, cat_meta_set(s->db, "compact_level", level))) != 0)
        goto out;
    if (!(cctx = ZSTD_createCCtx())) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = chunk_reader_new(&rd, s)) != 0 || (rc = chunk_writer_new(&w, s)) != 0)
        goto out;
    chunk_writer_fresh(w);
    rc = recompress(s, o, level, t0, rd, w, cctx, &r);
    if (rc == 0 && r.chunks_recompressed)
        rc = chunk_writer_trim(w);  /* the room after the last record it wrote */
    chunk_writer_free(w);          /* its chunks' locks go */
    w = NULL;
    if (rc == 0)              /* and the WAL, up to 16 MiB (catalog.c design 3) */
        rc = tidy(s);
out:
    chunk_reader_free(rd);
    chunk_writer_free(w);
    ZSTD_freeCCtx(cctx);
    r.disk_bytes_after = disk_usage(s);
    r.seconds = fks__now() - t0;
    close(fd);
    if (rep)
        *rep = r;
    return rc;
}
