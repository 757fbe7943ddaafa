/*
** recover.c: rebuilding a lost or damaged catalog from the files beside
** it (forkctl recover).
**
** The catalog is an index over two kinds of files that each carry what
** it says about them: chunk records carry their pages' hashes (chunk.c,
** design 6) and manifests carry each snapshot's tag, parent, files and
** page map by hash (manifest.c). Recovery never opens or migrates the
** old catalog as a store: it works from the directory alone.
**
** Steps, all under the store's writer lock (and gc.lock, so no gc runs):
**  1. Unless forced, a catalog that opens and passes quick_check is left
**     alone. Otherwise catalog.db (and -wal, -shm) is moved aside as
**     catalog.db.damaged-<unix ms> (the WAL as ...-wal, so SQLite can
**     still open the pair); if it can still be read, its snapshot list
**     says which snapshots the rebuild misses.
**  2. A new catalog is built from migrations/ under catalog.db.recover.
**  3. Chunk files in id order, records from offset 64 to the first that
**     does not parse: each record's header check and its pages' hashes
**     are verified by decoding it; a record that fails is skipped (its
**     pages are lost unless stored elsewhere). After a header that does
**     not parse, the scan resumes at the next offset holding a record
**     whose header checks; if none follows, the rest is the torn tail of
**     a write that never committed and becomes free space again. Either
**     way what is lost shows as the pages of the snapshots that need
**     them: damage no manifest cares about is listed, not fatal. A
**     chunk file whose file header is damaged is renamed *.damaged-<ms>
**     (gc leaves such names alone). Every distinct hash gets a page row,
**     first location wins; ids in scan order, so runs stay long.
**  4. Manifests in id order (a parent's id is below its children's):
**     deltas are applied onto their parent's map, tombstones included;
**     a snapshot whose maps name a hash no chunk record holds is not
**     inserted and is reported with its missing pages. A parent that is
**     a tombstone or was not recovered is replaced by the nearest
**     recovered ancestor, as rmi does.
**  5. meta: next_page_id, next_snapshot_id, next_chunk_id above every id seen,
**     chunk_size, a fresh gc_generation. Commit, WAL mode, rename into
**     place, fsync the directory.
**
** Memory: 24 bytes per indexed page (a hash table) plus the page maps of
** snapshots whose children are still to be processed.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "catalog.h"
#include "chunk.h"
#include "manifest.h"
#include "map.h"
#include "pindex.h"
#include "pmap.h"
#include "store.h"
#include "util.h"

#define MAX_RANGES_SHOWN 8

/* ------------------------------------------------------------- report */

static int add_line(char ***v, size_t *n, const char *fmt, ...) FKS_PRINTF(3, 4);
static int add_line(char ***v, size_t *n, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return fks__err(FKS_ENOMEM, "out of memory");
    *v = nv;
    if (!(nv[*n] = strdup(buf)))
        return fks__err(FKS_ENOMEM, "out of memory");
    (*n)++;
    return 0;
}

void fks_recover_free(fks_recover_report *r)
{
    if (!r)
        return;
    fks__lines_free(r->lost, r->n_lost);
    fks__lines_free(r->problems, r->n_problems);
    free(r);
}

/* --------------------------------------------------------- page table */

struct pent {
    uint8_t hash[16];
    int64_t id;
};

struct ptab {
    struct pent *v;
    size_t mask, n;
};

static size_t pt_bucket(const uint8_t h[16], size_t mask)
{
    return (size_t)fks__get64(h + 8) & mask;
}

static int64_t pt_find(const struct ptab *t, const uint8_t h[16])
{
    if (!t->v)
        return 0;
    for (size_t b = pt_bucket(h, t->mask);; b = (b + 1) & t->mask) {
        if (t->v[b].id == 0)
            return 0;
        if (memcmp(t->v[b].hash, h, 16) == 0)
            return t->v[b].id;
    }
}

static int pt_add(struct ptab *t, const uint8_t h[16], int64_t id)
{
    if (!t->v || 2 * (t->n + 1) > t->mask + 1) {
        size_t nm = t->v ? 2 * (t->mask + 1) - 1 : 4095;
        struct pent *nv = calloc(nm + 1, sizeof *nv);
        if (!nv)
            return fks__err(FKS_ENOMEM, "out of memory (page table of %zu pages)", t->n);
        for (size_t i = 0; t->v && i <= t->mask; i++)
            if (t->v[i].id) {
                size_t b = pt_bucket(t->v[i].hash, nm);
                while (nv[b].id)
                    b = (b + 1) & nm;
                nv[b] = t->v[i];
            }
        free(t->v);
        t->v = nv;
        t->mask = nm;
    }
    size_t b = pt_bucket(h, t->mask);
    while (t->v[b].id)
        b = (b + 1) & t->mask;
    memcpy(t->v[b].hash, h, 16);
    t->v[b].id = id;
    t->n++;
    return 0;
}

/* ------------------------------------------------------------- state */

struct ent {
    int64_t id;
    char kind;                /* 'm' manifest, 'l' lost before, 'r' tombstone */
    int ok;                   /* decoded and maps resolved */
    int inserted;
    int refs;                 /* children whose deltas still need the maps */
    manifest m;
};

struct rec {
    const char *dir;
    sqlite3 *db;
    fks_recover_report *r;
    struct ptab pt;
    int64_t next_page;
    int64_t chunk_size;
    int64_t max_id;
    int64_t max_chunk;        /* the highest id any chunk file bears */
    struct ent *e;
    size_t ne;
    int64_t *old_ids;         /* the old catalog's snapshots, if it could be read */
    char **old_tags;
    size_t n_old;
    int64_t old_chunk_size, old_created;
};

static struct ent *find_ent(struct rec *x, int64_t id)
{
    size_t lo = 0, hi = x->ne;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->e[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->ne && x->e[lo].id == id ? &x->e[lo] : NULL;
}

static const char *old_tag(struct rec *x, int64_t id)
{
    for (size_t i = 0; i < x->n_old; i++)
        if (x->old_ids[i] == id)
            return x->old_tags[i];
    return NULL;
}

static int step(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    return src == SQLITE_DONE || src == SQLITE_ROW ? 0 : cat_err(db, src, what);
}

/* -------------------------------------------------------------- chunks */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The offset of the first record at or after from whose header checks
** (0: none before size), for resuming past damage. */
static int next_record(uint64_t *next, int fd, uint64_t from, uint64_t size)
{
    enum { WIN = 1 << 20, HDR = CHUNK_REC_HDR(CHUNK_BLOCK_PAGES) };
    uint8_t *b = malloc(WIN + HDR);
    int rc = 0;
    *next = 0;
    if (!b)
        return fks__err(FKS_ENOMEM, "out of memory");
    for (uint64_t pos = from; pos + 16 <= size && !*next;) {
        size_t want = size - pos < WIN + HDR ? (size_t)(size - pos) : WIN + HDR;
        ssize_t got = pread(fd, b, want, (off_t)pos);
        if (got < 16)
            break;
        size_t scan = (size_t)got > HDR && pos + (uint64_t)got < size ? (size_t)got - HDR : (size_t)got - 15;
        for (size_t i = 0; i < scan; i++) {
            chunk_rec r;
            if (fks__get32(b + i) == CHUNK_REC_MAGIC && chunk_parse_rec(&r, b + i, (size_t)(size - pos - i)) == 0) {
                *next = pos + i;
                break;
            }
        }
        pos += scan;
    }
    free(b);
    return rc;
}

/* One chunk file's scan (step 3): the shared buffers, where it is and what
** its header says. */
struct cscan {
    struct rec *x;
    int64_t id;
    sqlite3_stmt *ins_chunk;
    ZSTD_DCtx *dctx;
    uint8_t *rbuf, *out;
    struct pidx_blocks blocks;
    char p[PATH_MAX];
    char what[PATH_MAX + 64];            /* the record at off, for messages */
    int fd;                              /* -1: the file is skipped */
    chunk_hdr h;
    uint64_t size, off;
    int broken;                          /* a read failed: the tail is kept */
};

/* The chunk file opened and its header checked; one that does not open is
** listed and skipped (fd stays -1), one whose header is damaged is moved
** aside as *.damaged-<ms>. */
static int scan_open(struct cscan *c)
{
    struct rec *x = c->x;
    char aside[PATH_MAX], nm[32];
    uint8_t hb[CHUNK_HDR_SIZE];
    struct stat st;
    int rc = chunk_file_name(nm, sizeof nm, c->id);
    if (rc || (rc = fks__path(c->p, sizeof c->p, "%s/chunks/%s", x->dir, nm)) != 0)
        return rc;
    int fd = open(c->p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return add_line(&x->r->problems, &x->r->n_problems, "chunk file %s: %s (skipped)", c->p, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || pread(fd, hb, sizeof hb, 0) != (ssize_t)sizeof hb ||
        chunk_parse_hdr(&c->h, hb, sizeof hb) != 0 || c->h.id != (uint64_t)c->id || c->h.cap < CHUNK_HDR_SIZE) {
        close(fd);
        x->r->chunks_bad++;
        if ((rc = fks__path(aside, sizeof aside, "%s.damaged-%lld", c->p, (long long)fks__wall_ms())) != 0)
            return rc;
        if (rename(c->p, aside) != 0)
            return add_line(&x->r->problems, &x->r->n_problems,
                            "chunk file %s: not a chunk file or its header is damaged; could not move it aside: %s",
                            c->p, strerror(errno));
        return add_line(&x->r->problems, &x->r->n_problems,
                        "chunk file %s: not a chunk file or its header is damaged: moved to %s, its pages are "
                        "not indexed", c->p, aside);
    }
    x->r->chunks++;
    c->fd = fd;
    c->size = (uint64_t)st.st_size;
    c->off = CHUNK_HDR_SIZE;
    return 0;
}

/* A record header at off that does not parse (why): the scan goes on at
** the next record whose header checks (*more = 1), or, with none after
** it, stops at the torn tail of a write that never committed. */
static int scan_resync(struct cscan *c, int *more)
{
    struct rec *x = c->x;
    char why[512];
    snprintf(why, sizeof why, "%s", fks_errmsg());
    uint64_t next = 0;
    int rc;
    *more = 0;
    if ((rc = next_record(&next, c->fd, c->off + 1, c->size)) != 0)
        return rc;
    if (next) {
        /* Damage in the middle: skip to the next record that checks. */
        x->r->records_bad++;
        if ((rc = add_line(&x->r->problems, &x->r->n_problems,
                           "%s: %s: %llu bytes up to the next record (offset %llu) are not indexed", c->what, why,
                           (unsigned long long)(next - c->off), (unsigned long long)next)) != 0)
            return rc;
        c->off = next;
        *more = 1;
        return 0;
    }
    /* No record after it: the torn tail of a write that never
    ** committed (a killed ingest), free space again. */
    return add_line(&x->r->problems, &x->r->n_problems,
                    "%s: %s: no complete record from there to the end (an interrupted write; free space again)",
                    c->what, why);
}

/* A decoded record's pages indexed: every hash not seen before gets a
** page row and its place in a block row; the first location wins. */
static int scan_index(struct cscan *c, const chunk_rec *rec)
{
    struct rec *x = c->x;
    int rc = 0;
    x->r->records++;
    for (uint32_t i = 0; i < rec->npages && rc == 0; i++) {
        if (pt_find(&x->pt, rec->hash[i]))
            continue;                            /* stored twice: first one wins */
        int64_t pid = x->next_page++;
        if ((rc = pidx_add_page(c->blocks.x, pid, rec->hash[i], rec->rlen[i])) == 0 &&
            (rc = pidx_blocks_push(&c->blocks, pid, c->id, c->off, rec->len, i)) == 0 &&
            (rc = pt_add(&x->pt, rec->hash[i], pid)) == 0)
            x->r->pages++;
    }
    return rc;
}

/* The records from the file header to the first zeros, the end or a read
** that fails: each decoded (so its hashes are checked) and indexed, one
** that fails skipped, a header that does not parse resynced past. */
static int scan_records(struct cscan *c)
{
    struct rec *x = c->x;
    int rc = 0, more;
    while (c->off < c->size) {
        size_t want = c->size - c->off < CHUNK_REC_HDR(CHUNK_BLOCK_PAGES) ? (size_t)(c->size - c->off)
                                                                           : CHUNK_REC_HDR(CHUNK_BLOCK_PAGES);
        if (fks__pread_full(c->fd, c->rbuf, want, (off_t)c->off, c->p) != 0) {
            c->broken = 1;
            rc = add_line(&x->r->problems, &x->r->n_problems, "%s: %s: not indexed from offset %llu on", c->p,
                          fks_errmsg(), (unsigned long long)c->off);
            break;
        }
        chunk_rec rec;
        int prc = chunk_parse_rec(&rec, c->rbuf, (size_t)(c->size - c->off));
        if (prc == 1)
            break;                                   /* zeros: the end of the records */
        snprintf(c->what, sizeof c->what, "chunk %08llx offset %llu", (unsigned long long)c->id,
                 (unsigned long long)c->off);
        if (prc < 0) {
            if ((rc = scan_resync(c, &more)) != 0 || !more)
                break;
            continue;
        }
        if (fks__pread_full(c->fd, c->rbuf, rec.len, (off_t)c->off, c->p) != 0 ||
            chunk_decode(c->dctx, &rec, c->rbuf + CHUNK_REC_HDR(rec.npages), c->out, c->what) != 0) {
            x->r->records_bad++;
            if ((rc = add_line(&x->r->problems, &x->r->n_problems, "%s (%u pages not indexed)", fks_errmsg(),
                               rec.npages)) != 0)
                break;
            c->off += rec.len;
            continue;
        }
        if ((rc = scan_index(c, &rec)) != 0)
            break;
        c->off += rec.len;
    }
    return rc;
}

/* The chunk's row: its capacity, and as used the end of its records. */
static int scan_chunk_row(struct cscan *c)
{
    struct rec *x = c->x;
    /* A damaged tail is kept as it is: no writer appends past it. */
    uint64_t used = c->broken ? c->h.cap : c->off;
    if (used > c->h.cap)
        used = c->h.cap;
    sqlite3_bind_int64(c->ins_chunk, 1, c->id);
    sqlite3_bind_int64(c->ins_chunk, 2, (int64_t)c->h.cap);
    sqlite3_bind_int64(c->ins_chunk, 3, (int64_t)used);
    sqlite3_bind_int64(c->ins_chunk, 4, c->h.created_ms);
    int rc = step(x->db, c->ins_chunk, "recover: insert chunk");
    if (rc)
        return rc;
    if (c->id >= x->max_id) {
        x->max_id = c->id;
        x->chunk_size = (int64_t)c->h.cap;
    }
    return 0;
}

/* Step 3 for one chunk file: opened, its records indexed, its row. */
static int scan_chunk(struct rec *x, int64_t id, pidx *ins_page, sqlite3_stmt *ins_chunk,
                      ZSTD_DCtx *dctx, uint8_t *rbuf, uint8_t *out)
{
    struct cscan c = {.x = x, .id = id, .ins_chunk = ins_chunk, .dctx = dctx, .rbuf = rbuf, .out = out,
                      .blocks = {.x = ins_page}, .fd = -1};
    int rc = scan_open(&c);
    if (rc || c.fd < 0)
        return rc;
    rc = scan_records(&c);
    close(c.fd);
    if (rc == 0)
        rc = pidx_blocks_flush(&c.blocks);
    if (rc)
        return rc;
    return scan_chunk_row(&c);
}

static int scan_chunks(struct rec *x)
{
    char cdir[PATH_MAX];
    int64_t *ids = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *ins_chunk = NULL;
    pidx *ins_page = NULL;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    uint8_t *rbuf = malloc(CHUNK_REC_HDR(CHUNK_BLOCK_PAGES) + CHUNK_BLOCK_MAX), *out = malloc(CHUNK_BLOCK_MAX);
    int rc = fks__path(cdir, sizeof cdir, "%s/chunks", x->dir);
    if (!dctx || !rbuf || !out)
        rc = fks__err(FKS_ENOMEM, "out of memory");
    DIR *d = rc == 0 ? opendir(cdir) : NULL;
    if (rc == 0 && !d)
        rc = errno == ENOENT ? add_line(&x->r->problems, &x->r->n_problems, "%s is missing: no pages to index", cdir)
                             : fks__errno(FKS_EIO, errno, "open %s", cdir);
    struct dirent *e;
    while (d && rc == 0 && (e = readdir(d)) != NULL) {
        int64_t id;
        if (!chunk_file_parse(e->d_name, &id))
            continue;
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            int64_t *nv = realloc(ids, alloc * sizeof *nv);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            ids = nv;
        }
        ids[n++] = id;
    }
    if (d)
        closedir(d);
    if (n) {
        qsort(ids, n, sizeof *ids, cmp_i64);
        x->max_chunk = ids[n - 1];
    }
    if (rc == 0 && ((rc = pidx_open(&ins_page, x->db)) != 0 ||
                    (rc = cat_prepare(x->db, &ins_chunk, "INSERT INTO chunk(id, cap, used, created_ms) "
                                      "VALUES (?1, ?2, ?3, ?4)")) != 0))
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = scan_chunk(x, ids[i], ins_page, ins_chunk, dctx, rbuf, out);
out:
    pidx_close(ins_page);
    sqlite3_finalize(ins_chunk);
    ZSTD_freeDCtx(dctx);
    free(rbuf);
    free(out);
    free(ids);
    return rc;
}

/* ----------------------------------------------------------- manifests */

/* Applies a's delta onto base (full): a becomes a full map. */
static int apply_delta(mf_artifact *a, const mf_artifact *base)
{
    mf_artifact full = {0};
    size_t i = 0, j = 0;
    int rc = 0;
    snprintf(full.name, sizeof full.name, "%s", a->name);
    uint64_t npages = (a->size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE;
    while (rc == 0 && (i < base->n || j < a->n)) {
        if (j < a->n && (i >= base->n || a->p[j].pgno <= base->p[i].pgno)) {
            if (i < base->n && base->p[i].pgno == a->p[j].pgno)
                i++;
            if (!a->p[j].zero)
                rc = mf_push(&full, a->p[j].pgno, a->p[j].hash, 0);
            j++;
        } else {
            if (base->p[i].pgno < npages)
                rc = mf_push(&full, base->p[i].pgno, base->p[i].hash, 0);
            i++;
        }
    }
    if (rc) {
        free(full.p);
        return rc;
    }
    free(a->p);
    a->p = full.p;
    a->n = full.n;
    a->alloc = full.alloc;
    a->delta = 0;
    return 0;
}

static const char *ent_name(struct rec *x, const struct ent *e, char *buf, size_t len)
{
    char over[FKS_TAG_MAX + 1];
    int64_t when;
    const char *t = manifest_get_tag(over, &when, x->dir, e->id) == 0 ? over
                    : e->m.id ? e->m.tag : old_tag(x, e->id);
    if (t)
        snprintf(buf, len, "%s (id %lld)", t, (long long)e->id);
    else
        snprintf(buf, len, "snapshot id %lld", (long long)e->id);
    return buf;
}

/* Resolves e's deltas against its parent's (already resolved) maps. */
static int resolve(struct rec *x, struct ent *e)
{
    char nm[200];
    if (!manifest_is_delta(&e->m))
        return 1;
    struct ent *p = find_ent(x, e->m.parent_id);
    if (!p || !p->ok) {
        e->ok = 0;
        if (e->kind == 'r')
            return 0;                               /* a tombstone: said where it is needed */
        return add_line(&x->r->lost, &x->r->n_lost,
                        "%s: its page map is a delta against snapshot id %lld, whose manifest is %s",
                        ent_name(x, e, nm, sizeof nm), (long long)e->m.parent_id,
                        p ? "damaged or itself unresolvable" : "missing");
    }
    for (size_t i = 0; i < e->m.n_art; i++) {
        mf_artifact *a = &e->m.art[i];
        if (!a->delta)
            continue;
        const mf_artifact *b = NULL;
        for (size_t k = 0; k < p->m.n_art && !b; k++)
            if (strcmp(p->m.art[k].name, a->name) == 0)
                b = &p->m.art[k];
        if (!b) {
            e->ok = 0;
            return e->kind == 'r' ? 0 : add_line(&x->r->lost, &x->r->n_lost,
                "%s: artifact %s is a delta but its parent's manifest has no %s", ent_name(x, e, nm, sizeof nm),
                a->name, a->name);
        }
        int rc = apply_delta(a, b);
        if (rc)
            return rc;
    }
    return 1;
}

/* Lists the pages of e that no chunk record holds; 1 if there are none. */
static int check_pages(struct rec *x, struct ent *e)
{
    char msg[900], nm[200];
    size_t len = 0, shown = 0;
    uint64_t missing = 0;
    msg[0] = 0;
    for (size_t i = 0; i < e->m.n_art; i++) {
        const mf_artifact *a = &e->m.art[i];
        int named = 0;
        for (size_t j = 0; j < a->n; j++) {
            if (pt_find(&x->pt, a->p[j].hash))
                continue;
            size_t k = j;
            while (k + 1 < a->n && a->p[k + 1].pgno == a->p[k].pgno + 1 && !pt_find(&x->pt, a->p[k + 1].hash))
                k++;
            missing += k - j + 1;
            if (shown < MAX_RANGES_SHOWN && len < sizeof msg - 100) {
                len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s%s", shown ? ", " : "",
                                        named ? "" : a->name, named ? "" : " page ");
                len += (size_t)(k > j ? snprintf(msg + len, sizeof msg - len, "%llu-%llu",
                                                 (unsigned long long)a->p[j].pgno, (unsigned long long)a->p[k].pgno)
                                      : snprintf(msg + len, sizeof msg - len, "%llu",
                                                 (unsigned long long)a->p[j].pgno));
                named = 1;
                shown++;
            } else if (shown == MAX_RANGES_SHOWN) {
                len += (size_t)snprintf(msg + len, sizeof msg - len, ", ...");
                shown++;
            }
            j = k;
        }
    }
    if (!missing)
        return 1;
    x->r->pages_missing += missing;
    int rc = add_line(&x->r->lost, &x->r->n_lost, "%s: %llu pages missing from the chunk files: %s",
                      ent_name(x, e, nm, sizeof nm), (unsigned long long)missing, msg);
    return rc ? rc : 0;
}

static void bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* The tag e gets: its override's or its manifest's, the most recent
** claim winning a tag two snapshots claim. */
static int pick_tag(struct rec *x, struct ent *e, char *tag, int64_t *claim)
{
    int64_t when = 0;
    int rc = manifest_get_tag(tag, &when, x->dir, e->id);
    if (rc == 0) {
        *claim = when;
        return 0;
    }
    if (rc < 0 && (rc = add_line(&x->r->problems, &x->r->n_problems, "%s (its manifest's tag %s is used)",
                                 fks_errmsg(), e->m.tag)) != 0)
        return rc;
    snprintf(tag, 129, "%s", e->m.tag);
    *claim = e->m.created_ms;
    return 0;
}

/* The tag e is inserted with (tag: FKS_TAG_MAX + 1 bytes). Another
** recovered snapshot holds it: the most recent claim keeps it, the other
** gets a suffix (renamed in place if it is the one already inserted). */
static int claim_tag(char *tag, struct rec *x, struct ent *e, sqlite3_stmt *find_tag, int64_t *claims)
{
    int64_t claim;
    int rc = pick_tag(x, e, tag, &claim);
    if (rc)
        return rc;
    sqlite3_bind_text(find_tag, 1, tag, -1, SQLITE_TRANSIENT);
    int src = sqlite3_step(find_tag);
    int64_t other = src == SQLITE_ROW ? sqlite3_column_int64(find_tag, 0) : 0;
    sqlite3_reset(find_tag);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return cat_err(x->db, src, "recover: find tag");
    if (other) {
        struct ent *o = find_ent(x, other);
        int64_t oc = o ? claims[o - x->e] : 0;
        int64_t loser = claim > oc ? other : e->id;
        char dup[FKS_TAG_MAX + 1], orig[FKS_TAG_MAX + 1];
        snprintf(orig, sizeof orig, "%s", tag);
        snprintf(dup, sizeof dup, "%.100s.dup-%lld", tag, (long long)loser);
        if (loser == other) {
            sqlite3_stmt *up;
            if ((rc = cat_prepare(x->db, &up, "UPDATE snapshot SET tag = ?2 WHERE id = ?1")) != 0)
                return rc;
            sqlite3_bind_int64(up, 1, other);
            sqlite3_bind_text(up, 2, dup, -1, SQLITE_TRANSIENT);
            rc = step(x->db, up, "recover: rename duplicate tag");
            sqlite3_finalize(up);
            if (rc)
                return rc;
        } else {
            memcpy(tag, dup, sizeof dup);
        }
        if ((rc = add_line(&x->r->problems, &x->r->n_problems,
                           "two snapshots claim tag %.*s (ids %lld and %lld; a rename was interrupted): "
                           "the later claim keeps it, id %lld is now %s", FKS_TAG_MAX, orig, (long long)other,
                           (long long)e->id, (long long)loser, dup)) != 0)
            return rc;
    }
    claims[e - x->e] = claim;
    return 0;
}

/* The parent e is inserted under: the nearest recovered ancestor (a
** tombstone's or a lost snapshot's children take its parent, as rmi
** does); 0 for a root. */
static int recovered_parent(int64_t *out, struct rec *x, struct ent *e)
{
    char nm[200];
    int64_t parent = e->m.parent_id;
    int hops = 0, rc;
    while (parent > 0 && hops++ < 1000000) {
        struct ent *p = find_ent(x, parent);
        if (p && p->inserted)
            break;
        if (!p || (!p->ok && p->m.id == 0)) {
            if ((rc = add_line(&x->r->problems, &x->r->n_problems,
                               "%s: its ancestor id %lld has no readable manifest: recovered as a root",
                               ent_name(x, e, nm, sizeof nm), (long long)parent)) != 0)
                return rc;
            parent = 0;
            break;
        }
        if (p->kind != 'r' && (rc = add_line(&x->r->problems, &x->r->n_problems,
                               "%s: its parent %s was not recovered: it hangs from that one's parent",
                               ent_name(x, e, nm, sizeof nm), p->m.tag)) != 0)
            return rc;
        parent = p->m.parent_id;
    }
    *out = parent;
    return 0;
}

/* e's snapshot row, under tag and parent (0: none). */
static int insert_row(struct rec *x, struct ent *e, sqlite3_stmt *ins_snap, const char *tag, int64_t parent)
{
    sqlite3_bind_int64(ins_snap, 1, e->id);
    sqlite3_bind_text(ins_snap, 2, tag, -1, SQLITE_TRANSIENT);
    if (parent > 0)
        sqlite3_bind_int64(ins_snap, 3, parent);
    else
        sqlite3_bind_null(ins_snap, 3);
    sqlite3_bind_int64(ins_snap, 4, e->m.created_ms);
    sqlite3_bind_int64(ins_snap, 5, e->m.stored_bytes < 0 ? 0 : e->m.stored_bytes);
    sqlite3_bind_int64(ins_snap, 6, e->m.new_pages < 0 ? 0 : e->m.new_pages);
    bind_opt(ins_snap, 7, e->m.pause_ms);
    bind_opt(ins_snap, 8, e->m.snapshot_ms);
    bind_opt(ins_snap, 9, e->m.ingest_ms);
    bind_opt(ins_snap, 10, e->m.diff_bytes);
    return step(x->db, ins_snap, "recover: insert snapshot");
}

/* e's artifact rows, each with its page map by the recovered page ids. */
static int insert_artifacts(struct rec *x, struct ent *e, sqlite3_stmt *ins_art)
{
    int rc = 0;
    for (size_t i = 0; i < e->m.n_art && rc == 0; i++) {
        const mf_artifact *a = &e->m.art[i];
        /* Each recovered map is stored complete (map.c): a rebuilt
        ** catalog is correct first; the next maps are deltas again. */
        pm_map map = {0};
        int64_t pmap = 0;
        for (size_t j = 0; j < a->n && rc == 0; j++)
            rc = pm_push(&map, a->p[j].pgno, pt_find(&x->pt, a->p[j].hash));
        if (rc == 0)
            rc = map_put(&pmap, x->db, 0, &map, (a->size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE);
        pm_free(&map);
        if (rc)
            break;
        sqlite3_bind_int64(ins_art, 1, e->id);
        sqlite3_bind_text(ins_art, 2, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins_art, 3, (int64_t)a->size);
        sqlite3_bind_int64(ins_art, 4, pmap);
        rc = step(x->db, ins_art, "recover: insert artifact");
    }
    return rc;
}

/* Step 4 for one snapshot whose pages are all indexed: its tag, its
** parent, its row and its artifacts'. */
static int insert_snapshot(struct rec *x, struct ent *e, sqlite3_stmt *ins_snap, sqlite3_stmt *ins_art,
                           sqlite3_stmt *find_tag, int64_t *claims)
{
    char tag[FKS_TAG_MAX + 1];
    int64_t parent = 0;
    int rc;
    if ((rc = claim_tag(tag, x, e, find_tag, claims)) != 0 || (rc = recovered_parent(&parent, x, e)) != 0 ||
        (rc = insert_row(x, e, ins_snap, tag, parent)) != 0 || (rc = insert_artifacts(x, e, ins_art)) != 0)
        return rc;
    e->inserted = 1;
    x->r->snapshots++;
    return 0;
}

static void release(struct ent *e)
{
    if (e->refs <= 0 && e->ok) {
        for (size_t i = 0; i < e->m.n_art; i++) {
            free(e->m.art[i].p);
            e->m.art[i].p = NULL;
            e->m.art[i].n = e->m.art[i].alloc = 0;
        }
    }
}

static int load_manifests(struct rec *x)
{
    mf_entry *v = NULL;
    size_t n = 0;
    sqlite3_stmt *ins_snap = NULL, *ins_art = NULL, *find_tag = NULL;
    int64_t *claims = NULL;
    char nm[200];
    int rc = manifest_list(&v, &n, x->dir);
    if (rc)
        return rc;
    if (!(x->e = calloc(n + 1, sizeof *x->e)) || !(claims = calloc(n + 1, sizeof *claims))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].kind == 't' || (x->ne && x->e[x->ne - 1].id == v[i].id))
            continue;                     /* two files of one id: the first ('l', then 'm') */
        x->e[x->ne].id = v[i].id;
        x->e[x->ne++].kind = v[i].kind;
        if (v[i].id > x->max_id)
            x->max_id = v[i].id;
    }
    for (size_t i = 0; i < x->ne && rc == 0; i++) {
        struct ent *e = &x->e[i];
        int drc = manifest_read(&e->m, x->dir, e->id, manifest_suffix(e->kind));
        if (drc == 0) {
            e->ok = 1;
            x->r->manifests++;
            if (e->kind == 'r')
                x->r->tombstones++;
            struct ent *p = manifest_is_delta(&e->m) ? find_ent(x, e->m.parent_id) : NULL;
            if (p)
                p->refs++;
            continue;
        }
        if (drc == FKS_ENOMEM) {
            rc = drc;
            break;
        }
        x->r->manifests_bad++;
        manifest_clear(&e->m);
        rc = e->kind != 'r' ? add_line(&x->r->lost, &x->r->n_lost, "%s: %s", ent_name(x, e, nm, sizeof nm),
                                       fks_errmsg())
                            : add_line(&x->r->problems, &x->r->n_problems, "tombstone: %s", fks_errmsg());
    }
    if (rc || (rc = cat_prepare(x->db, &ins_snap, "INSERT INTO snapshot(id, tag, parent_id, created_ms, "
                                "stored_bytes, new_pages, pause_ms, snapshot_ms, ingest_ms, diff_bytes) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")) != 0 ||
        (rc = cat_prepare(x->db, &ins_art, "INSERT INTO artifact(snapshot_id, name, size, pmap_id) "
                          "VALUES (?1, ?2, ?3, ?4)")) != 0 ||
        (rc = cat_prepare(x->db, &find_tag, "SELECT id FROM snapshot WHERE tag = ?1")) != 0)
        goto out;
    for (size_t i = 0; i < x->ne && rc == 0; i++) {
        struct ent *e = &x->e[i];
        if (!e->ok)
            continue;
        int ok = resolve(x, e);
        struct ent *p = manifest_is_delta(&e->m) ? find_ent(x, e->m.parent_id) : NULL;
        if (ok < 0) {
            rc = ok;
            break;
        }
        if (p) {                          /* this child no longer needs its parent's maps */
            p->refs--;
            if (p->refs <= 0)
                release(p);
        }
        if (!e->ok)
            continue;
        if (e->kind != 'r') {
            int have = check_pages(x, e);
            if (have < 0) {
                rc = have;
                break;
            }
            if (have == 1 && (rc = insert_snapshot(x, e, ins_snap, ins_art, find_tag, claims)) != 0)
                break;
        }
        release(e);
    }
    /* The old catalog's snapshots that no manifest brought back. */
    for (size_t i = 0; i < x->n_old && rc == 0; i++) {
        struct ent *e = find_ent(x, x->old_ids[i]);
        if (!e)
            rc = add_line(&x->r->lost, &x->r->n_lost, "%s (id %lld): in the old catalog but it has no manifest "
                          "(ingested before manifests existed, or its manifest was deleted)", x->old_tags[i],
                          (long long)x->old_ids[i]);
    }
out:
    sqlite3_finalize(ins_snap);
    sqlite3_finalize(ins_art);
    sqlite3_finalize(find_tag);
    free(claims);
    free(v);
    return rc;
}

/* --------------------------------------------------------- the catalog */

/* Reads what it can of the old catalog at path: its snapshots and meta. */
static void read_old(struct rec *x, const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    cat_meta_get(db, "chunk_size", &x->old_chunk_size);
    cat_meta_get(db, "created_ms", &x->old_created);
    if (sqlite3_prepare_v2(db, "SELECT id, tag FROM snapshot ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        goto out;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t *ni = realloc(x->old_ids, (x->n_old + 1) * sizeof *ni);
        if (ni)
            x->old_ids = ni;
        char **nt = realloc(x->old_tags, (x->n_old + 1) * sizeof *nt);
        if (nt)
            x->old_tags = nt;
        const char *t = (const char *)sqlite3_column_text(st, 1);
        char *tag = strdup(t ? t : "?");
        if (!ni || !nt || !tag) {
            free(tag);
            break;
        }
        x->old_ids[x->n_old] = sqlite3_column_int64(st, 0);
        x->old_tags[x->n_old++] = tag;
        if (x->old_ids[x->n_old - 1] > x->max_id)
            x->max_id = x->old_ids[x->n_old - 1];
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* 1 if the catalog at path opens and passes quick_check. */
static int catalog_healthy(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ok = 0;
    if (cat_open(&db, path, 1) != 0)
        return 0;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0 && sqlite3_step(st) == SQLITE_DONE)
        ok = 1;
    sqlite3_finalize(st);
    st = NULL;
    if (ok && (sqlite3_prepare_v2(db, "SELECT count(*) FROM snapshot, (SELECT 1 FROM meta LIMIT 1)", -1, &st,
                                  NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW))
        ok = 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

/* Moves catalog.db and its -wal and -shm aside. */
static int move_aside(struct rec *x, char *aside, size_t len)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    char from[PATH_MAX], to[PATH_MAX];
    int64_t now = fks__wall_ms();
    int moved = 0, rc;
    aside[0] = 0;
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if ((rc = fks__path(from, sizeof from, "%s/catalog.db%s", x->dir, sfx[i])) != 0 ||
            (rc = fks__path(to, sizeof to, "%s/catalog.db.damaged-%lld%s", x->dir, (long long)now, sfx[i])) != 0)
            return rc;
        if (lstat(from, &st) != 0)
            continue;
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) != 0)
            return fks__errno(FKS_EIO, errno, "move %s aside to %s", from, to);
        if (i == 0)
            snprintf(aside, len, "%s", to);
        moved = 1;
    }
    return moved ? fks__fsync_dir(x->dir) : 0;
}

static int build(struct rec *x, const char *tmp)
{
    sqlite3 *db = NULL;
    int rc, src = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK) {
        rc = cat_err(db, src, tmp);
        sqlite3_close(db);
        return rc;
    }
    x->db = db;
    rc = cat_exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;");
    if (rc == 0)
        rc = cat_create_schema(db);
    /* A chunk's row goes in after its pages: foreign keys at COMMIT. */
    if (rc == 0)
        rc = cat_exec(db, "BEGIN; PRAGMA defer_foreign_keys = ON;");
    x->next_page = 1;
    if (rc == 0)
        rc = scan_chunks(x);
    if (rc == 0)
        rc = load_manifests(x);
    int64_t cs = x->old_chunk_size > 0 ? x->old_chunk_size : x->chunk_size > 0 ? x->chunk_size
                                                                               : FKS_DEFAULT_CHUNK_SIZE;
    if (rc == 0)
        rc = cat_meta_set(db, "chunk_size", cs);
    if (rc == 0)
        rc = cat_meta_set(db, "gc_generation", 1);
    if (rc == 0)
        rc = cat_meta_set(db, "created_ms", x->old_created > 0 ? x->old_created : fks__wall_ms());
    if (rc == 0)
        rc = cat_meta_set(db, "next_page_id", x->next_page);
    /* Above every chunk file, indexed or not: chunk.c never hands out an
    ** id a file bears, and gc takes files below the mark for strays. */
    if (rc == 0)
        rc = cat_meta_set(db, "next_chunk_id", x->max_chunk + 1);
    int64_t saved = 0;
    if (rc == 0 && manifest_get_next_id(&saved, x->dir) < 0)
        rc = add_line(&x->r->problems, &x->r->n_problems, "%s (ids are taken from the manifests)", fks_errmsg());
    if (rc == 0)
        rc = cat_meta_set(db, "next_snapshot_id", saved > x->max_id + 1 ? saved : x->max_id + 1);
    if (rc == 0)
        rc = cat_exec(db, "COMMIT");
    if (rc == 0)
        rc = cat_exec(db, "PRAGMA journal_mode = WAL");
    x->db = NULL;
    src = sqlite3_close(db);
    if (rc == 0 && src != SQLITE_OK)
        rc = fks__err(FKS_EIO, "close %s: %s", tmp, sqlite3_errstr(src));
    return rc;
}

/* The store's directory: one, ours, and writable by no one else. */
static int recover_check_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fks__err(FKS_ENOTFOUND, "store %s is not a directory", dir);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_uid != geteuid())
        return fks__err(FKS_EPERM, "store directory %s is writable by or belongs to another user; refusing to "
                        "rebuild its catalog from files others can change", dir);
    return 0;
}

/* The store's writer lock (*locked once held), then gc.lock (*gcfd), so
** neither a writer nor a gc runs during the rebuild. */
static int recover_lock(struct fks_store *lk, int *locked, int *gcfd, const char *dir)
{
    char p[PATH_MAX];
    int rc;
    if ((rc = fks__path(lk->dir, sizeof lk->dir, "%s", dir)) != 0 ||
        (rc = fks__path(lk->chunkdir, sizeof lk->chunkdir, "%s/chunks", dir)) != 0 ||
        (rc = fks__path(p, sizeof p, "%s/lock", dir)) != 0)
        return rc;
    if ((lk->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600)) < 0)
        return fks__errno(FKS_EIO, errno, "open %s", p);
    if ((rc = store_lock(lk)) != 0)
        return rc;
    *locked = 1;
    if ((rc = fks__path(p, sizeof p, "%s/gc.lock", dir)) != 0)
        return rc;
    *gcfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (*gcfd < 0 || flock(*gcfd, LOCK_EX | LOCK_NB) != 0)
        return *gcfd < 0 ? fks__errno(FKS_EIO, errno, "open %s", p)
                         : fks__err(FKS_ELOCKED, "a gc is running on %s (it holds %s): wait for it", dir, p);
    return 0;
}

/* Step 1: the catalog at p left alone if it is healthy and not forced;
** otherwise moved aside, and what it still says read. */
static int recover_aside(struct rec *x, const char *p, int flags)
{
    char aside[PATH_MAX] = "";
    struct stat st;
    int rc;
    if (lstat(p, &st) == 0 && !(flags & FKS_RECOVER_FORCE) && catalog_healthy(p))
        return fks__err(FKS_EEXIST, "the catalog %s opens and passes its checks: nothing to recover (to rebuild "
                        "it anyway, force it; the current one is kept beside it)", p);
    if ((rc = move_aside(x, aside, sizeof aside)) != 0)
        return rc;
    if (aside[0]) {
        read_old(x, aside);
        snprintf(x->r->moved_aside, sizeof x->r->moved_aside, "%s", aside);
    }
    return 0;
}

/* Steps 2 to 5: the new catalog built at tmp, renamed into place at p and
** the directory synced; tmp removed if it fails before the rename. */
static int recover_install(struct rec *x, const char *tmp, const char *p)
{
    int rc;
    unlink(tmp);
    if ((rc = build(x, tmp)) != 0) {
        unlink(tmp);
        return rc;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, p, RENAME_NOREPLACE) != 0) {
        rc = fks__errno(FKS_EIO, errno, "rename %s to %s", tmp, p);
        unlink(tmp);
        return rc;
    }
    return fks__fsync_dir(x->dir);
}

/* Each manifest renamed to what its snapshot became: manifests not
** brought back are kept for a later try (manifest.c, 7). */
static int recover_manifests(struct rec *x)
{
    char p[PATH_MAX];
    int renamed = 0;
    for (size_t i = 0; i < x->ne; i++) {
        struct ent *e = &x->e[i];
        char from[PATH_MAX], to[PATH_MAX];
        char want = (char)(e->kind == 'r' ? 'r' : e->inserted ? 'm' : 'l');
        if (want == e->kind || manifest_path(from, sizeof from, x->dir, e->id, manifest_suffix(e->kind)) != 0 ||
            manifest_path(to, sizeof to, x->dir, e->id, manifest_suffix(want)) != 0)
            continue;
        if (rename(from, to) == 0)
            renamed = 1;
    }
    if (renamed && fks__path(p, sizeof p, "%s/manifests", x->dir) == 0)
        return fks__fsync_dir(p);
    return 0;
}

/* What the rebuild held, the report aside. */
static void rec_free(struct rec *x)
{
    if (x->db)
        sqlite3_close(x->db);
    for (size_t i = 0; i < x->ne; i++)
        manifest_clear(&x->e[i].m);
    free(x->e);
    free(x->pt.v);
    for (size_t i = 0; i < x->n_old; i++)
        free(x->old_tags[i]);
    free(x->old_tags);
    free(x->old_ids);
}

int fks_recover(fks_recover_report **out, const char *dir, int flags)
{
    struct rec x = {0};
    struct fks_store lk = {0};
    char p[PATH_MAX], tmp[PATH_MAX];
    int gcfd = -1, locked = 0, rc;
    double t0 = fks__now();
    mode_t old_mask = umask(077);

    *out = NULL;
    lk.lockfd = -1;
    if (!(x.r = calloc(1, sizeof *x.r))) {
        umask(old_mask);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    x.dir = dir;
    if ((rc = recover_check_dir(dir)) != 0 || (rc = recover_lock(&lk, &locked, &gcfd, dir)) != 0)
        goto out;
    if ((rc = fks__path(p, sizeof p, "%s/catalog.db", dir)) != 0 ||
        (rc = fks__path(tmp, sizeof tmp, "%s/catalog.db.recover", dir)) != 0)
        goto out;
    if ((rc = recover_aside(&x, p, flags)) != 0 || (rc = recover_install(&x, tmp, p)) != 0)
        goto out;
    rc = recover_manifests(&x);
out:
    rec_free(&x);
    if (gcfd >= 0)
        close(gcfd);
    if (locked)
        store_unlock(&lk);
    if (lk.lockfd >= 0)
        close(lk.lockfd);
    umask(old_mask);
    x.r->seconds = fks__now() - t0;
    if (rc) {
        fks_recover_free(x.r);
        return rc;
    }
    *out = x.r;
    return 0;
}
