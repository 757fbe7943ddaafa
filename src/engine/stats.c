/*
** stats.c: numbers about snapshots and the store. (Which pages differ
** between two snapshots is diff.c; its linear merge counts here the bytes
** a snapshot shares with its parent.)
**
** Design
**  1. Everything is computed from the page maps' runs, never page by page,
**     so the cost follows the number of runs, not the size of the images.
**     The definitions are those of the views in migrations/0003_views.sql
**     (tests/cli/t_info.sh checks that both agree).
**  2. Two maps are compared by diff.c's linear merge (diff_merge), in
**     O(runs of A + runs of B).
**  3. Unique and unreferenced pages are page-id interval arithmetic: runs
**     become id intervals [page_id, page_id + npages), sorted and merged
**     (a union), then subtracted one from another. The stored bytes of an
**     id interval come from one rowid range scan of page.
**  4. Each public function reads inside one read transaction: a
**     concurrent ingest or gc cannot make the numbers disagree.
**  5. Shared with the parent: a Diff's map is a delta on a node of its
**     parent's chain, and outside the ranges of the deltas above the
**     node both chains share, the two maps are that node's, the same
**     (map_pair). So only those ranges are compared, and every other
**     non-zero page counts as shared: the work is the deltas, not the
**     parent's whole map. Maps that share no node (a Full ingest with a
**     parent, a node written complete) are compared whole.
*/
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "chunk.h"
#include "diff.h"
#include "map.h"
#include "store.h"
#include "util.h"

#define PAGE FKS_PAGE_SIZE

/* ---- catalog reads ---- */

/* One row of integer columns; ?1, if the statement has it, is bind. */
static int one_row(int64_t *vals, int n, fks_store *s, const char *sql, int64_t bind)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, bind);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        for (int i = 0; i < n; i++)
            vals[i] = sqlite3_column_int64(st, i);
    } else {
        rc = cat_err(s->db, src, "catalog: read statistics");
    }
    sqlite3_finalize(st);
    return rc;
}

/* A tag given by the user: checked, then found (FKS_ENOTFOUND if absent). */
static int snap_lookup(int64_t *id, int64_t *parent_id, fks_store *s, const char *tag)
{
    int rc = fks_check_tag(tag);
    return rc ? rc : cat_snapshot(id, parent_id, s->db, tag, 1);
}

/* ---- page-id intervals ---- */

struct ivl {
    int64_t lo, hi;   /* page ids [lo, hi) */
};

struct ivls {
    struct ivl *v;
    size_t n, alloc;
};

static int ivls_push(struct ivls *l, int64_t lo, int64_t hi)
{
    if (l->n == l->alloc) {
        size_t na = l->alloc ? 2 * l->alloc : 1024;
        struct ivl *nv = realloc(l->v, na * sizeof *nv);
        if (!nv)
            return fks__err(FKS_ENOMEM, "out of memory");
        l->v = nv;
        l->alloc = na;
    }
    l->v[l->n++] = (struct ivl){lo, hi};
    return 0;
}

static int ivl_cmp(const void *x, const void *y)
{
    const struct ivl *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Sorts and merges l in place into disjoint, non-adjacent intervals. */
static void ivls_union(struct ivls *l)
{
    if (l->n == 0)
        return;
    qsort(l->v, l->n, sizeof *l->v, ivl_cmp);
    size_t k = 0;
    for (size_t i = 1; i < l->n; i++) {
        if (l->v[i].lo <= l->v[k].hi) {
            if (l->v[i].hi > l->v[k].hi)
                l->v[k].hi = l->v[i].hi;
        } else {
            l->v[++k] = l->v[i];
        }
    }
    l->n = k + 1;
}

/* out = a minus b; a and b are unions (ivls_union). */
static int ivls_subtract(struct ivls *out, const struct ivls *a, const struct ivls *b)
{
    size_t j = 0;
    int rc = 0;
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        int64_t cur = a->v[i].lo, hi = a->v[i].hi;
        while (j < b->n && b->v[j].hi <= cur)
            j++;
        for (size_t k = j; k < b->n && b->v[k].lo < hi && cur < hi && rc == 0; k++) {
            if (b->v[k].lo > cur)
                rc = ivls_push(out, cur, b->v[k].lo);
            if (b->v[k].hi > cur)
                cur = b->v[k].hi;
        }
        if (rc == 0 && cur < hi)
            rc = ivls_push(out, cur, hi);
    }
    return rc;
}

static uint64_t ivls_len(const struct ivls *l)
{
    uint64_t t = 0;
    for (size_t i = 0; i < l->n; i++)
        t += (uint64_t)(l->v[i].hi - l->v[i].lo);
    return t;
}

/* Appends the page-id intervals of the runs sql selects (page_id, npages;
** ?1, if there, bound to bind). */
static int ivls_load(struct ivls *l, fks_store *s, const char *sql, int64_t bind)
{
    sqlite3_stmt *st;
    int src, rc = cat_prepare(s->db, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, bind);
    while ((src = sqlite3_step(st)) == SQLITE_ROW && rc == 0) {
        int64_t id = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
        if (id <= 0 || n <= 0 || id > INT64_MAX - n)
            rc = fks__err(FKS_ECORRUPT, "catalog damaged: a page map run names page ids %lld+%lld",
                          (long long)id, (long long)n);
        else
            rc = ivls_push(l, id, id + n);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: read page maps");
    sqlite3_finalize(st);
    return rc;
}

/* The page rows in the intervals of l and their stored bytes. */
static int ivls_stored(uint64_t *rows, uint64_t *bytes, fks_store *s, const struct ivls *l)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st, "SELECT (SELECT count(*) FROM page WHERE id >= ?1 AND id < ?2), "
                                   "(SELECT coalesce(sum(len), 0) FROM (SELECT max(len) AS len FROM block WHERE id >= "
                                   "coalesce((SELECT max(id) FROM block WHERE id <= ?1), ?1) AND id < ?2 AND id + n > ?1 "
                                   "GROUP BY chunk_id, off))");
    *rows = *bytes = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        sqlite3_bind_int64(st, 1, l->v[i].lo);
        sqlite3_bind_int64(st, 2, l->v[i].hi);
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            rc = cat_err(s->db, src, "catalog: read page index");
            break;
        }
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 0);
        *rows += n;
        *bytes += (uint64_t)sqlite3_column_int64(st, 1);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- fks_snap_stats_get ---- */

/* Is pgno covered by some run of every map in deps[0 .. nd-1]? */
static int hidden_by_all(const pm_map *deps, size_t nd, uint64_t pgno)
{
    for (size_t i = 0; i < nd; i++)
        if (pm_find(&deps[i], pgno) == PM_NONE)
            return 0;
    return 1;
}

/* unique_load's state: the node being read and the maps built on it. */
struct uniq {
    fks_store *s;
    sqlite3_stmt *deps;
    pm_map own, *dm;          /* the node's runs; dm[0 .. nd): its dependants' */
    size_t nd, da;
    struct ivls cand_all, exposed;
};

/* The maps of the nodes built on node x, in q->dm, the last node's freed. */
static int unique_deps(struct uniq *q, int64_t x, uint64_t npages)
{
    int rc = 0, ds;
    for (size_t i = 0; i < q->nd; i++)
        pm_free(&q->dm[i]);
    q->nd = 0;
    sqlite3_bind_int64(q->deps, 1, x);
    while (rc == 0 && (ds = sqlite3_step(q->deps)) == SQLITE_ROW) {
        if (q->nd == q->da) {
            size_t na = q->da ? 2 * q->da : 4;
            pm_map *nv = realloc(q->dm, na * sizeof *nv);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            q->dm = nv;
            q->da = na;
        }
        q->dm[q->nd] = (pm_map){0};
        rc = map_delta_load(&q->dm[q->nd++], q->s->db, sqlite3_column_int64(q->deps, 0), npages);
    }
    sqlite3_reset(q->deps);
    if (rc == 0 && ds != SQLITE_DONE)
        rc = cat_err(q->s->db, ds, "catalog: read page maps");
    return rc;
}

/* One of the snapshot's nodes, x: its runs' pages that every dependant
** hides go to cand_all, the others to exposed. */
static int unique_node(struct uniq *q, int64_t x)
{
    struct map_row row;
    int rc;
    if ((rc = map_row_get(&row, q->s->db, x)) != 0)
        return rc;
    q->own.n = 0;
    if ((rc = map_delta_load(&q->own, q->s->db, x, row.npages)) != 0 || (rc = unique_deps(q, x, row.npages)) != 0)
        return rc;
    /* A page the image holds twice must be hidden at both places. */
    for (size_t i = 0; i < q->own.n && rc == 0; i++) {
        const pm_run *r = &q->own.r[i];
        if (r->page == 0)
            continue;
        if (!q->nd) {
            rc = ivls_push(&q->cand_all, r->page, r->page + (int64_t)r->npages);
            continue;
        }
        for (uint64_t k = 0; k < r->npages && rc == 0; k++)
            rc = ivls_push(hidden_by_all(q->dm, q->nd, r->pgno + k) ? &q->cand_all : &q->exposed,
                           r->page + (int64_t)k, r->page + (int64_t)k + 1);
    }
    return rc;
}

/* Every other node's runs (all, bound to snap), once: what they name of
** the candidates, into other. */
static int unique_others(struct ivls *other, fks_store *s, sqlite3_stmt *all, int64_t snap, const struct ivls *cand)
{
    int rc = 0, src;
    sqlite3_bind_int64(all, 1, snap);
    while (rc == 0 && (src = sqlite3_step(all)) == SQLITE_ROW) {
        int64_t lo = sqlite3_column_int64(all, 0), n = sqlite3_column_int64(all, 1);
        if (n <= 0 || lo > INT64_MAX - n) {
            rc = fks__err(FKS_ECORRUPT, "catalog damaged: a page map run names page ids %lld+%lld",
                          (long long)lo, (long long)n);
            break;
        }
        int64_t hi = lo + n;
        size_t a = 0, b = cand->n;          /* first candidate ending after lo */
        while (a < b) {
            size_t m = a + (b - a) / 2;
            if (cand->v[m].hi <= lo)
                a = m + 1;
            else
                b = m;
        }
        for (; a < cand->n && cand->v[a].lo < hi && rc == 0; a++)
            rc = ivls_push(other, cand->v[a].lo > lo ? cand->v[a].lo : lo, cand->v[a].hi < hi ? cand->v[a].hi : hi);
    }
    if (rc == 0)
        rc = cat_done(s->db, src, "catalog: read page maps");
    return rc;
}

/* The pages that only snapshot snap uses, as page-id intervals: pages of
** its own map nodes' runs that every node built on its node hides (so that
** rmi and gc, which folds the node into those, free them) and that no run
** of any other node names. The last part reads every node's runs once
** (the catalog's maps, not the snapshots' pages), hence `info --unique`.
** A page only a removed snapshot's node still names, before gc folds it,
** counts as used elsewhere: the figure is exact after gc, never too high. */
static int unique_load(struct ivls *u, fks_store *s, int64_t snap)
{
    struct uniq q = {.s = s};
    sqlite3_stmt *nodes = NULL, *all = NULL;
    struct ivls cand = {0}, other = {0};
    int rc = cat_prepare(s->db, &nodes, "SELECT pmap_id FROM artifact WHERE snapshot_id = ?1");
    if (rc == 0)
        rc = cat_prepare(s->db, &q.deps, "SELECT id FROM pmap WHERE base_id = ?1");
    if (rc == 0)
        rc = cat_prepare(s->db, &all, "SELECT page_id, npages FROM pmap_run WHERE page_id > 0 AND pmap_id NOT IN "
                                      "(SELECT pmap_id FROM artifact WHERE snapshot_id = ?1)");
    if (rc == 0)
        sqlite3_bind_int64(nodes, 1, snap);
    int src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(nodes)) == SQLITE_ROW)
        rc = unique_node(&q, sqlite3_column_int64(nodes, 0));
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list artifacts");
    if (rc == 0) {
        ivls_union(&q.cand_all);
        ivls_union(&q.exposed);
        rc = ivls_subtract(&cand, &q.cand_all, &q.exposed);
    }
    if (rc == 0 && cand.n)
        rc = unique_others(&other, s, all, snap, &cand);
    if (rc == 0) {
        ivls_union(&other);
        rc = ivls_subtract(u, &cand, &other);
    }
    sqlite3_finalize(nodes);
    sqlite3_finalize(q.deps);
    sqlite3_finalize(all);
    pm_free(&q.own);
    for (size_t i = 0; i < q.nd; i++)
        pm_free(&q.dm[i]);
    free(q.dm);
    free(q.cand_all.v);
    free(q.exposed.v);
    free(cand.v);
    free(other.v);
    return rc;
}

struct shared {
    uint64_t size, bytes;
};

static int shared_seg(void *arg, uint64_t pgno, uint64_t npages, int state)
{
    struct shared *sh = arg;
    if (state == DIFF_SAME)
        sh->bytes += diff_range_bytes(pgno, npages, sh->size);
    return 0;
}

int fks_snap_stats_get(fks_snap_stats **out, fks_store *s, const char *tag)
{
    return fks_snap_stats_get_ex(out, s, tag, FKS_STATS_UNIQUE | FKS_STATS_RUNS);
}

/* fks_snap_stats_get_ex's state: the request and the run buffers every
** artifact reuses. */
struct sstat {
    fks_store *s;
    const char *tag;
    int have_mine;                       /* FKS_STATS_RUNS: the whole maps read */
    struct diff_runs mine, theirs, pu;
    pm_map ua, ub;
};

/* Artifact a's page map checked against its size, into *x, and its
** non-zero bytes: from its runs, or from the node's page count. */
static int art_nonzero(int64_t *x, struct sstat *q, fks_artifact_stats *a, int64_t art_id)
{
    fks_store *s = q->s;
    struct map_row row;
    uint64_t npages = (a->size + PAGE - 1) / PAGE;
    int rc;
    if ((rc = map_of_artifact(x, s->db, art_id)) != 0 || (rc = map_row_get(&row, s->db, *x)) != 0)
        return rc;
    if (row.npages != npages)
        return fks__err(FKS_ECORRUPT, "snapshot %s, artifact %s: its page map is for another size", q->tag, a->name);
    if (q->have_mine) {            /* the whole map: its runs, and exact bytes */
        if ((rc = diff_runs_load(&q->mine, s, art_id)) != 0 || (rc = diff_check_runs(q->mine.v, q->mine.n, "")) != 0) {
            if (rc == FKS_EINVAL)
                rc = fks__errctx(FKS_ECORRUPT, "snapshot %s, artifact %s: catalog damaged", q->tag, a->name);
            return rc;
        }
        a->runs = q->mine.n;
        for (size_t k = 0; k < q->mine.n; k++)
            a->nonzero_bytes += diff_range_bytes(q->mine.v[k].pgno, q->mine.v[k].npages, a->size);
        return 0;
    }
    /* The node's page count (map.c checks it on every full read);
    ** a short last page counts its bytes only. */
    a->nonzero_bytes = row.pages * PAGE;
    if (a->size % PAGE && row.pages) {
        pm_map want = {0}, got = {0};
        if ((rc = pm_push_run(&want, npages - 1, 1, 0)) == 0)
            rc = map_restrict(&got, s->db, *x, &want);
        if (rc == 0 && got.n)
            a->nonzero_bytes -= PAGE - a->size % PAGE;
        pm_free(&want);
        pm_free(&got);
    }
    return rc;
}

/* The bytes artifact a (map x) shares with its parent's namesake
** (artifact parent_art), added to *shared. */
static int art_shared(uint64_t *shared, struct sstat *q, const fks_artifact_stats *a, int64_t x, int64_t art_id,
                      int64_t parent_art)
{
    fks_store *s = q->s;
    struct shared sh = {a->size, 0};
    int64_t y;
    int found = 0;
    /* Design 5: where the maps may differ, from the deltas; else
    ** both whole maps. */
    int rc = map_of_artifact(&y, s->db, parent_art);
    if (rc == 0)
        rc = map_pair(&q->ua, &q->ub, &found, s->db, x, y);
    if (rc == 0 && found) {
        uint64_t in_u = 0;
        for (size_t k = 0; k < q->ua.n; k++)
            in_u += diff_range_bytes(q->ua.r[k].pgno, q->ua.r[k].npages, a->size);
        sh.bytes = a->nonzero_bytes - (in_u < a->nonzero_bytes ? in_u : a->nonzero_bytes);
        if ((rc = diff_runs_set(&q->theirs, &q->ua)) == 0 && (rc = diff_runs_set(&q->pu, &q->ub)) == 0)
            rc = diff_merge(q->theirs.v, q->theirs.n, q->pu.v, q->pu.n, shared_seg, &sh);
    } else if (rc == 0 && (q->have_mine || (rc = diff_runs_load(&q->mine, s, art_id)) == 0) &&
               (rc = diff_runs_load(&q->theirs, s, parent_art)) == 0) {
        rc = diff_merge(q->mine.v, q->mine.n, q->theirs.v, q->theirs.n, shared_seg, &sh);
    }
    *shared += sh.bytes;
    return rc;
}

/* Each artifact's figures (parts: the parent's artifacts, by name), and
** their sums. */
static int stats_artifacts(fks_snap_stats *r, struct sstat *q, const struct diff_art *arts, size_t n,
                           const struct diff_art *parts, size_t np)
{
    int rc;
    for (size_t i = 0, j = 0; i < n; i++) {
        fks_artifact_stats *a = &r->artifacts[r->n_artifacts++];
        snprintf(a->name, sizeof a->name, "%s", arts[i].name);
        a->size = arts[i].size;
        int64_t x = 0;
        if ((rc = art_nonzero(&x, q, a, arts[i].id)) != 0)
            return rc;
        r->logical_bytes += a->size;
        r->nonzero_bytes += a->nonzero_bytes;
        while (j < np && strcmp(parts[j].name, a->name) < 0)
            j++;
        if (j < np && strcmp(parts[j].name, a->name) == 0 &&
            (rc = art_shared(&r->shared_with_parent_bytes, q, a, x, arts[i].id, parts[j].id)) != 0) {
            if (rc == FKS_EINVAL)
                rc = fks__errctx(FKS_ECORRUPT, "snapshot %s, artifact %s: catalog damaged", q->tag, a->name);
            return rc;
        }
    }
    return 0;
}

/* The snapshot's unique pages and their stored bytes, if asked for. */
static int stats_unique(fks_snap_stats *r, fks_store *s, int64_t id)
{
    struct ivls uniq = {0};
    uint64_t rows;
    int rc = 0;
    if (r->unique_known && (rc = unique_load(&uniq, s, id)) != 0)
        goto out;
    ivls_union(&uniq);
    if ((rc = ivls_stored(&rows, &r->unique_stored_bytes, s, &uniq)) != 0)
        goto out;
    r->unique_pages = ivls_len(&uniq);
    r->unique_bytes = r->unique_pages * PAGE;
out:
    free(uniq.v);
    return rc;
}

int fks_snap_stats_get_ex(fks_snap_stats **out, fks_store *s, const char *tag, int flags)
{
    struct sstat q = {.s = s, .tag = tag, .have_mine = (flags & FKS_STATS_RUNS) != 0};
    fks_snap_stats *r = NULL;
    struct diff_art *arts = NULL, *parts = NULL;
    size_t n = 0, np = 0;
    int64_t id = 0, parent = 0, stored = 0;
    *out = NULL;
    int rc = cat_read_begin(s->db);
    if (rc)
        return rc;
    if ((rc = snap_lookup(&id, &parent, s, tag)) ||
        (rc = one_row(&stored, 1, s, "SELECT stored_bytes FROM snapshot WHERE id = ?1", id)) ||
        (rc = diff_arts_load(&arts, &n, s, id)) || (parent && (rc = diff_arts_load(&parts, &np, s, parent))))
        goto out;
    if (!(r = calloc(1, sizeof *r)) || !(r->artifacts = calloc(n + 1, sizeof *r->artifacts))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    r->stored_bytes = (uint64_t)stored;
    if ((rc = stats_artifacts(r, &q, arts, n, parts, np)) != 0)
        goto out;
    r->runs_known = (flags & FKS_STATS_RUNS) != 0;
    r->unique_known = (flags & FKS_STATS_UNIQUE) != 0;
    rc = stats_unique(r, s, id);
out:
    rc = cat_read_finish(s->db, rc);
    free(arts);
    free(parts);
    free(q.mine.v);
    free(q.theirs.v);
    free(q.pu.v);
    pm_free(&q.ua);
    pm_free(&q.ub);
    if (rc) {
        fks_snap_stats_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void fks_snap_stats_free(fks_snap_stats *st)
{
    if (!st)
        return;
    free(st->artifacts);
    free(st);
}

/* ---- fks_store_stats_get ---- */

static uint64_t alloc_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_blocks * 512 : 0;
}

static int disk_bytes(fks_store_stats *o, fks_store *s)
{
    char p[PATH_MAX];
    int rc = 0;
    const char *cat[] = {"catalog.db", "catalog.db-wal"};
    for (int i = 0; i < 2 && rc == 0; i++)
        if ((rc = fks__path(p, sizeof p, "%s/%s", s->dir, cat[i])) == 0)
            o->catalog_disk_bytes += alloc_bytes(p);
    DIR *d = rc ? NULL : opendir(s->chunkdir);
    if (!d)
        return rc ? rc : fks__errno(FKS_EIO, errno, "open %s", s->chunkdir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0)
        if (e->d_name[0] != '.' && (rc = fks__path(p, sizeof p, "%s/%s", s->chunkdir, e->d_name)) == 0)
            o->chunk_disk_bytes += alloc_bytes(p);
    closedir(d);
    return rc;
}

int fks_store_stats_get(fks_store_stats *o, fks_store *s)
{
    struct ivls ids = {0};
    int64_t v[10] = {0};
    memset(o, 0, sizeof *o);
    int rc = cat_read_begin(s->db);
    if (rc)
        return rc;
    rc = one_row(v, 10, s,
        "SELECT (SELECT count(*) FROM snapshot), (SELECT count(*) FROM artifact), "
        " (SELECT count(*) FROM pmap_run), (SELECT count(*) FROM chunk), "
        " (SELECT coalesce(sum(size), 0) FROM artifact), "
        " (SELECT coalesce(sum((size + 4095) / 4096), 0) FROM artifact), "
        " (SELECT coalesce(sum(p.pages), 0) FROM artifact a JOIN pmap p ON p.id = a.pmap_id), "
        " (SELECT count(*) FROM page), "
        " (SELECT coalesce(sum(len), 0) FROM (SELECT max(len) AS len FROM block GROUP BY chunk_id, off)), "
        " (SELECT coalesce(sum(used), 0) FROM chunk)", 0);
    if (rc)
        goto out;
    o->snapshots = (uint64_t)v[0];
    o->artifacts = (uint64_t)v[1];
    o->runs = (uint64_t)v[2];
    o->chunks = (uint64_t)v[3];
    o->logical_bytes = (uint64_t)v[4];
    o->logical_pages = (uint64_t)v[5];
    o->page_refs = (uint64_t)v[6];
    o->pages = (uint64_t)v[7];
    o->stored_bytes = (uint64_t)v[8];
    o->chunk_used_bytes = (uint64_t)v[9];
    if ((rc = ivls_load(&ids, s, "SELECT page_id, npages FROM pmap_run WHERE page_id > 0", 0)) != 0)
        goto out;
    ivls_union(&ids);
    uint64_t live = 0;
    if ((rc = ivls_stored(&o->referenced_pages, &live, s, &ids)) != 0)
        goto out;
    o->reclaimable_bytes = o->stored_bytes > live ? o->stored_bytes - live : 0;
    /* dead: record bytes past the chunk headers that no block row names */
    uint64_t recs = o->chunk_used_bytes > o->chunks * CHUNK_HDR_SIZE ? o->chunk_used_bytes - o->chunks * CHUNK_HDR_SIZE : 0;
    o->dead_bytes = recs > o->stored_bytes ? recs - o->stored_bytes : 0;
    o->dead_share = recs ? (double)o->dead_bytes / (double)recs : 0;
out:
    rc = cat_read_finish(s->db, rc);
    free(ids.v);
    if (rc == 0)
        rc = disk_bytes(o, s);
    if (rc)
        return rc;
    if (o->referenced_pages)
        o->dedup_ratio = (double)o->page_refs / (double)o->referenced_pages;
    if (o->stored_bytes)
        o->compression_ratio = (double)o->pages * PAGE / (double)o->stored_bytes;
    if (o->logical_pages)
        o->zero_page_share = (double)(o->logical_pages - (o->page_refs < o->logical_pages ? o->page_refs
                                                           : o->logical_pages)) / (double)o->logical_pages;
    return 0;
}
