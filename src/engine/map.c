/*
** map.c: page maps in the catalog.
**
** Design
**  1. A page map says which page each page number of an artifact holds.
**     It is stored as a node of table pmap plus its runs in pmap_run. A
**     node is either complete (base_id NULL: its runs are the whole map;
**     a page number no run covers is a zero page) or a delta on a base
**     node (its runs replace the base's at the page numbers they cover;
**     a run with page_id 0 says "zeros here"). The map of a node is its
**     runs over the map of its base, recursively. Nodes are immutable
**     once written and shared: an artifact names one node (artifact.
**     pmap_id), and any number of nodes may be built on one base.
**  2. Skip chain. A node has a seq: 0 for a complete node, else its
**     parent's seq + 1, where the parent is the map it was derived from
**     (the parent snapshot's artifact). A new node of seq n is stored as
**     a delta not on its parent but on the ancestor of seq n - lowbit(n)
**     (the lowest set bit of n cleared), and its runs are its own
**     changes merged with those of the nodes between (the parent, the
**     parent's base, ... down to that ancestor: exactly the nodes of
**     the parent's chain with a higher seq). So:
**       - reading a map visits popcount(n) <= log2(n) + 1 nodes: restore
**         of a snapshot 2000 Diffs deep reads 7 deltas and one complete
**         map, not 2000;
**       - a node of seq n holds the changes of lowbit(n) consecutive
**         Diffs; averaged over a chain that is (log2(n) / 2 + 1) times
**         one Diff's changes. A node whose delta would exceed a quarter
**         of the map is written complete instead (seq 0: its line starts
**         again), so the deltas read for any map add up to at most about
**         half of it;
**       - a Diff never copies its parent's map: the catalog grows with
**         the pages that changed, not with the image's size.
**     This is the skip list / Fenwick-tree layout of version stores.
**  3. Counting. pmap.refs counts the artifacts that name a node and the
**     nodes built on it, kept by triggers on artifact and pmap
**     (migrations/0005), so no code path can forget it. A node at refs
**     0 is deleted by map_sweep (rmi, gc), which then releases its base;
**     the work is the deleted nodes' rows.
**  4. A node whose snapshot was removed but which is still a base keeps
**     its runs, and so pages that its descendants may all have replaced.
**     gc first folds such nodes into the nodes built on them
**     (map_dissolve): each of those becomes its own runs over the
**     folded node's, based where the folded node was. Then every
**     remaining run is visible in some snapshot, and marking the pages
**     that runs name (gc.c) finds exactly the live pages.
**  5. Rows are checked as they are read: runs in order, inside the
**     artifact, page ids in range (pm_check_delta); a node's seq, base
**     and size agree with its base's. A damaged map is FKS_ECORRUPT,
**     never a map with holes.
**
** Byte layout: none of its own; the tables are in migrations/0005 and
** schema/catalog.sql.
*/
#include "map.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "util.h"

#define MAX_CHAIN 64        /* popcount bound: 2^64 Diffs deep */

static int col_int(sqlite3_stmt *st, int c)
{
    return sqlite3_column_type(st, c) == SQLITE_INTEGER;
}

int map_row_get(struct map_row *r, sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st;
    *r = (struct map_row){0};
    int rc = cat_prepare(db, &st, "SELECT coalesce(base_id, 0), seq, npages, pages, refs FROM pmap WHERE id = ?1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        int ok = 1;
        for (int c = 0; c < 5; c++)
            ok &= col_int(st, c);
        *r = (struct map_row){id, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                              (uint64_t)sqlite3_column_int64(st, 2), (uint64_t)sqlite3_column_int64(st, 3),
                              sqlite3_column_int64(st, 4)};
        if (!ok || r->base_id < 0 || r->seq < 0 || (r->seq == 0) != (r->base_id == 0) ||
            sqlite3_column_int64(st, 2) < 0 || sqlite3_column_int64(st, 3) < 0 || r->pages > r->npages)
            rc = fks__err(FKS_ECORRUPT, "page map %lld: its row is damaged", (long long)id);
    } else if (s == SQLITE_DONE) {
        rc = fks__err(FKS_ECORRUPT, "page map %lld is missing from the catalog", (long long)id);
    } else {
        rc = cat_err(db, s, "catalog: read page map");
    }
    sqlite3_finalize(st);
    return rc;
}

int map_of_artifact(int64_t *id, sqlite3 *db, int64_t art)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "SELECT pmap_id FROM artifact WHERE id = ?1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, art);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && col_int(st, 0) && sqlite3_column_int64(st, 0) > 0)
        *id = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_ROW || s == SQLITE_DONE)
        rc = fks__err(FKS_ECORRUPT, "artifact %lld has no page map", (long long)art);
    else
        rc = cat_err(db, s, "catalog: read artifact");
    sqlite3_finalize(st);
    return rc;
}

/* Appends the runs of node id that overlap [a, b) (all of them when
** b == 0) to m, clipped to [a, b). */
static int runs_read(pm_map *m, sqlite3_stmt *st, int64_t id, uint64_t a, uint64_t b)
{
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_bind_parameter_count(st) == 3) {          /* a range read */
        sqlite3_bind_int64(st, 2, (int64_t)a);
        sqlite3_bind_int64(st, 3, b ? (int64_t)b : INT64_MAX);
    }
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t pg = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1), page = sqlite3_column_int64(st, 2);
        if (!col_int(st, 0) || !col_int(st, 1) || !col_int(st, 2) || pg < 0 || n <= 0 || page < 0 ||
            (uint64_t)n > UINT64_MAX - (uint64_t)pg) {
            rc = fks__err(FKS_ECORRUPT, "page map %lld damaged: a run is not three integers in range",
                          (long long)id);
            break;
        }
        uint64_t lo = (uint64_t)pg, hi = lo + (uint64_t)n;
        if (b) {
            if (hi <= a || lo >= b)
                continue;
            if (lo < a) {
                if (page)
                    page += (int64_t)(a - lo);
                lo = a;
            }
            if (hi > b)
                hi = b;
        }
        /* pm_push_run merges; an out-of-order run is caught by the check */
        if (m->n && lo < m->r[m->n - 1].pgno + m->r[m->n - 1].npages) {
            rc = fks__err(FKS_ECORRUPT, "page map %lld damaged: runs overlap", (long long)id);
            break;
        }
        rc = pm_push_run(m, lo, hi - lo, page);
    }
    sqlite3_reset(st);
    if (rc == 0 && s != SQLITE_DONE)
        rc = cat_err(sqlite3_db_handle(st), s, "catalog: read page map");
    return rc;
}

/* Runs overlapping [?2, ?3): those starting in it, and the one before. */
#define RUNS_SQL "SELECT pgno, npages, page_id FROM pmap_run WHERE pmap_id = ?1 AND pgno < ?3 AND " \
                 "pgno >= coalesce((SELECT max(pgno) FROM pmap_run WHERE pmap_id = ?1 AND pgno <= ?2), 0) " \
                 "ORDER BY pgno"

int map_delta_load(pm_map *m, sqlite3 *db, int64_t id, uint64_t npages)
{
    sqlite3_stmt *st;
    /* every row of the node, whatever its numbers: a damaged one (a
    ** negative pgno) must be seen and refused, not skipped */
    int rc = cat_prepare(db, &st, "SELECT pgno, npages, page_id FROM pmap_run WHERE pmap_id = ?1 ORDER BY pgno");
    if (rc)
        return rc;
    rc = runs_read(m, st, id, 0, 0);
    sqlite3_finalize(st);
    if (rc == 0)
        rc = pm_check_delta(m, npages);
    return rc ? fks__errctx(rc, "page map %lld", (long long)id) : 0;
}

/* The chain of node id: v[0] = id, v[k] = base of v[k-1], to a complete
** node; rows checked to agree. */
static int chain_get(struct map_row *v, int *n, sqlite3 *db, int64_t id)
{
    int rc = 0;
    *n = 0;
    for (int64_t cur = id; cur && rc == 0;) {
        if (*n == MAX_CHAIN)
            return fks__err(FKS_ECORRUPT, "page map %lld: its chain of bases is longer than %d (a cycle?)",
                            (long long)id, MAX_CHAIN);
        if ((rc = map_row_get(&v[*n], db, cur)) != 0)
            break;
        if (*n && (v[*n].npages != v[0].npages || v[*n].seq >= v[*n - 1].seq))
            rc = fks__err(FKS_ECORRUPT, "page map %lld: base %lld does not fit it (size or order)",
                          (long long)v[*n - 1].id, (long long)cur);
        cur = v[*n].base_id;
        (*n)++;
    }
    return rc;
}

/* acc (empty on entry) = the deltas of v[k-1] .. v[0] merged into one,
** farthest first: what v[0]'s map changes of v[k]'s. */
static int deltas_merge(pm_map *acc, sqlite3 *db, const struct map_row *v, int k)
{
    pm_map d = {0}, next = {0};
    int rc = 0;
    for (int j = k - 1; j >= 0 && rc == 0; j--) {
        d.n = 0;
        next.n = 0;
        if ((rc = map_delta_load(&d, db, v[j].id, v[j].npages)) == 0 && (rc = pm_apply(&next, acc, &d, 0)) == 0) {
            pm_map t = *acc;
            *acc = next;
            next = t;
        }
    }
    pm_free(&d);
    pm_free(&next);
    return rc;
}

int map_load(pm_map *m, sqlite3 *db, int64_t id)
{
    struct map_row v[MAX_CHAIN] = {{0}};
    int n = 0, rc = chain_get(v, &n, db, id);
    pm_map full = {0}, acc = {0}, d = {0}, next = {0}, out = {0};
    if (rc == 0 && n == 0)
        rc = fks__err(FKS_ECORRUPT, "page map %lld: no chain", (long long)id);
    /* The deltas merged first, farthest to nearest (they are small), then
    ** laid over the complete node once: the work is the complete map plus
    ** the deltas, not the complete map once per level. */
    if (rc == 0)
        rc = deltas_merge(&acc, db, v, n - 1);
    if (rc == 0 && n > 0)
        rc = map_delta_load(&full, db, v[n - 1].id, v[n - 1].npages);
    for (size_t i = 0; rc == 0 && i < full.n; i++)
        if (full.r[i].page == 0)
            rc = fks__err(FKS_ECORRUPT, "page map %lld: a complete map names page 0", (long long)v[n - 1].id);
    if (rc == 0)
        rc = pm_apply(&out, &full, &acc, 1);
    pm_free(&full);
    pm_free(&acc);
    pm_free(&d);
    pm_free(&next);
    if (rc == 0 && pm_pages(&out) != v[0].pages)
        rc = fks__err(FKS_ECORRUPT, "page map %lld: it holds %llu pages, its row says %llu", (long long)id,
                      (unsigned long long)pm_pages(&out), (unsigned long long)v[0].pages);
    if (rc) {
        pm_free(&out);
        return rc;
    }
    pm_free(m);
    *m = out;
    return 0;
}

static int by_pgno(const void *a, const void *b)
{
    const pm_run *x = a, *y = b;
    return (x->pgno > y->pgno) - (x->pgno < y->pgno);
}

int map_restrict(pm_map *m, sqlite3 *db, int64_t id, const pm_map *want)
{
    struct map_row v[MAX_CHAIN] = {{0}};
    int n, rc = chain_get(v, &n, db, id);
    sqlite3_stmt *st = NULL;
    pm_map pend = {0}, left = {0}, got = {0}, hits = {0};
    if (rc == 0)
        rc = cat_prepare(db, &st, RUNS_SQL);
    for (size_t i = 0; i < want->n && rc == 0; i++)
        rc = pm_push_run(&pend, want->r[i].pgno, want->r[i].npages, 0);
    /* Level by level: what a level covers of the pending ranges is decided
    ** there; the rest is asked of the level below. */
    for (int k = 0; k < n && rc == 0 && pend.n; k++) {
        left.n = 0;
        for (size_t i = 0; i < pend.n && rc == 0; i++) {
            uint64_t a = pend.r[i].pgno, b = a + pend.r[i].npages;
            hits.n = 0;
            if ((rc = runs_read(&hits, st, v[k].id, a, b)) != 0)
                break;
            uint64_t pos = a;
            for (size_t j = 0; j < hits.n && rc == 0; j++) {
                if (hits.r[j].pgno > pos)
                    rc = pm_push_run(&left, pos, hits.r[j].pgno - pos, 0);
                if (rc == 0 && hits.r[j].page)
                    rc = pm_push_run(&got, hits.r[j].pgno, hits.r[j].npages, hits.r[j].page);
                pos = hits.r[j].pgno + hits.r[j].npages;
            }
            if (rc == 0 && pos < b)
                rc = pm_push_run(&left, pos, b - pos, 0);
        }
        pm_map t = pend;
        pend = left;
        left = t;
    }
    sqlite3_finalize(st);
    pm_free(&pend);
    pm_free(&left);
    pm_free(&hits);
    if (rc) {
        pm_free(&got);
        return rc;
    }
    /* Found level by level, so not in order: sort and coalesce. */
    if (got.n > 1)
        qsort(got.r, got.n, sizeof *got.r, by_pgno);
    m->n = 0;
    for (size_t i = 0; i < got.n && rc == 0; i++)
        rc = pm_push_run(m, got.r[i].pgno, got.r[i].npages, got.r[i].page);
    pm_free(&got);
    return rc;
}

/* out (empty on entry) = the page ranges of a's runs that no run of b
** covers, as runs of page 0. Both sorted. */
static int ranges_minus(pm_map *out, const pm_map *a, const pm_map *b)
{
    size_t j = 0;
    int rc = 0;
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        uint64_t cur = a->r[i].pgno, end = cur + a->r[i].npages;
        while (j < b->n && b->r[j].pgno + b->r[j].npages <= cur)
            j++;
        for (size_t k = j; k < b->n && b->r[k].pgno < end && cur < end && rc == 0; k++) {
            if (b->r[k].pgno > cur)
                rc = pm_push_run(out, cur, b->r[k].pgno - cur, 0);
            if (b->r[k].pgno + b->r[k].npages > cur)
                cur = b->r[k].pgno + b->r[k].npages;
        }
        if (rc == 0 && cur < end)
            rc = pm_push_run(out, cur, end - cur, 0);
    }
    return rc;
}

int map_pair(pm_map *ua, pm_map *ub, int *found, sqlite3 *db, int64_t a, int64_t b)
{
    struct map_row va[MAX_CHAIN] = {{0}}, vb[MAX_CHAIN] = {{0}};
    int na = 0, nb = 0, ia = -1, ib = -1, rc = chain_get(va, &na, db, a);
    pm_map da = {0}, db_ = {0}, ra = {0}, rb = {0}, want = {0}, xw = {0};
    *found = 0;
    if (rc == 0)
        rc = chain_get(vb, &nb, db, b);
    /* The node nearest to a that is on both chains: chains end in a
    ** complete node, so what they share is a tail of each. */
    for (int i = 0; rc == 0 && i < na && ia < 0; i++)
        for (int j = 0; j < nb; j++)
            if (va[i].id == vb[j].id) {
                ia = i;
                ib = j;
                break;
            }
    if (rc || ia < 0)
        return rc;
    /* Both maps are node x's but where their deltas above x run. */
    if ((rc = deltas_merge(&da, db, va, ia)) == 0 && (rc = deltas_merge(&db_, db, vb, ib)) == 0) {
        for (size_t i = 0; i < da.n && rc == 0; i++)
            rc = pm_push_run(&ra, da.r[i].pgno, da.r[i].npages, 0);
        for (size_t i = 0; i < db_.n && rc == 0; i++)
            rc = pm_push_run(&rb, db_.r[i].pgno, db_.r[i].npages, 0);
    }
    /* Where only one side's deltas run, the other side is x: x is read
    ** there only (a child's own diff, for a child and its parent). */
    if (rc == 0 && (rc = ranges_minus(&want, &ra, &rb)) == 0 && (rc = ranges_minus(&want, &rb, &ra)) == 0 &&
        want.n > 1)
        qsort(want.r, want.n, sizeof *want.r, by_pgno);
    if (rc == 0 && want.n) {
        pm_map w = {0};         /* the two halves, sorted: coalesced again */
        for (size_t i = 0; i < want.n && rc == 0; i++)
            rc = pm_push_run(&w, want.r[i].pgno, want.r[i].npages, 0);
        if (rc == 0)
            rc = map_restrict(&xw, db, va[ia].id, &w);
        pm_free(&w);
    }
    if (rc == 0) {
        ua->n = ub->n = 0;
        if ((rc = pm_apply(ua, &xw, &da, 1)) == 0 && (rc = pm_apply(ub, &xw, &db_, 1)) == 0)
            *found = 1;
    }
    pm_free(&da);
    pm_free(&db_);
    pm_free(&ra);
    pm_free(&rb);
    pm_free(&want);
    pm_free(&xw);
    return rc;
}

static int insert_runs(sqlite3 *db, int64_t id, const pm_map *m, int drop_zero)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "INSERT INTO pmap_run(pmap_id, pgno, npages, page_id) VALUES (?1, ?2, ?3, ?4)");
    for (size_t i = 0; i < m->n && rc == 0; i++) {
        if (drop_zero && m->r[i].page == 0)
            continue;
        for (uint64_t k = 0; k < m->r[i].npages && rc == 0; k += MAP_RUN_MAX) {
            uint64_t n = m->r[i].npages - k < MAP_RUN_MAX ? m->r[i].npages - k : MAP_RUN_MAX;
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, (int64_t)(m->r[i].pgno + k));
            sqlite3_bind_int64(st, 3, (int64_t)n);
            sqlite3_bind_int64(st, 4, m->r[i].page ? m->r[i].page + (int64_t)k : 0);
            int s = sqlite3_step(st);
            sqlite3_reset(st);
            if (s != SQLITE_DONE)
                rc = cat_err(db, s, "catalog: insert page map");
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int insert_node(int64_t *id, sqlite3 *db, int64_t base, int64_t seq, uint64_t npages, uint64_t pages)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "INSERT INTO pmap(base_id, seq, npages, pages, refs) VALUES (?1, ?2, ?3, ?4, 0)");
    if (rc)
        return rc;
    if (base)
        sqlite3_bind_int64(st, 1, base);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, (int64_t)npages);
    sqlite3_bind_int64(st, 4, (int64_t)pages);
    int s = sqlite3_step(st);
    if (s != SQLITE_DONE)
        rc = cat_err(db, s, "catalog: insert page map");
    else
        *id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    /* Its chain (pmap_chain, for the views): itself, then its base's. */
    if (rc == 0 && (rc = cat_prepare(db, &st, "INSERT INTO pmap_chain(pmap_id, level, node_id) SELECT ?1, 0, ?1 "
                                              "UNION ALL SELECT ?1, level + 1, node_id FROM pmap_chain "
                                              "WHERE pmap_id = ?2")) == 0) {
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int64(st, 2, base);
        if ((s = sqlite3_step(st)) != SQLITE_DONE)
            rc = cat_err(db, s, "catalog: insert page map chain");
        sqlite3_finalize(st);
    }
    return rc;
}

int map_put(int64_t *id, sqlite3 *db, int64_t parent, const pm_map *own, uint64_t npages)
{
    if (!parent) {
        int rc = insert_node(id, db, 0, 0, npages, pm_pages(own));
        return rc ? rc : insert_runs(db, *id, own, 1);
    }
    struct map_row v[MAX_CHAIN] = {{0}};
    int n, rc = chain_get(v, &n, db, parent);
    if (rc)
        return rc;
    if (v[0].npages != npages)
        return fks__err(FKS_EINVAL, "a Diff must have its parent's size (%llu pages, not %llu)",
                        (unsigned long long)v[0].npages, (unsigned long long)npages);
    int64_t seq = v[0].seq + 1, target = seq - (seq & -seq);
    int k = 0;                       /* v[0 .. k-1] are merged into the new node */
    while (k < n && v[k].seq > target)
        k++;
    /* Merge the deltas between, farthest first, then own on top. A node
    ** that ends the chain (k == n: the parent's line has no node at or
    ** below target, as after a fold) makes the new node complete. */
    pm_map acc = {0}, d = {0}, next = {0}, before = {0};
    for (int j = k - 1; j >= 0 && rc == 0; j--) {
        d.n = 0;
        next.n = 0;
        if ((rc = map_delta_load(&d, db, v[j].id, npages)) == 0 && (rc = pm_apply(&next, &acc, &d, 0)) == 0) {
            pm_map t = acc;
            acc = next;
            next = t;
        }
    }
    /* The new map's page count: the parent's, minus what it held where
    ** own writes, plus what own writes. */
    if (rc == 0)
        rc = map_restrict(&before, db, parent, own);
    if (rc == 0) {
        next.n = 0;
        rc = pm_apply(&next, &acc, own, k == n);
    }
    int64_t base = k < n ? v[k].id : 0;
    uint64_t pages = v[0].pages - pm_pages(&before) + pm_pages(own);
    if (rc == 0 && pages > npages)
        rc = fks__err(FKS_ECORRUPT, "page map %lld: its page count is damaged", (long long)parent);
    /* A delta that has grown to a quarter of the map (a node of a high
    ** seq holds many Diffs' changes) is stored as a complete map instead,
    ** and its line starts again at seq 0 (design 2): reading a map then
    ** reads at most about 1.5 times the map's own runs, at any depth. */
    if (rc == 0 && base && next.n * 4 > v[0].pages + 64) {
        pm_map full = {0};
        if ((rc = map_load(&full, db, parent)) == 0) {
            next.n = 0;
            rc = pm_apply(&next, &full, own, 1);
        }
        pm_free(&full);
        base = 0;
    }
    if (rc == 0)
        rc = insert_node(id, db, base, base ? seq : 0, npages, pages);
    if (rc == 0)
        rc = insert_runs(db, *id, &next, !base);
    pm_free(&acc);
    pm_free(&d);
    pm_free(&next);
    pm_free(&before);
    return rc;
}

int map_sweep(sqlite3 *db, uint64_t *freed)
{
    sqlite3_stmt *sel = NULL, *del = NULL;
    uint64_t n = 0;
    int rc = cat_prepare(db, &sel, "SELECT id FROM pmap WHERE refs <= 0 LIMIT 256");
    if (rc == 0)
        rc = cat_prepare(db, &del, "DELETE FROM pmap WHERE id = ?1");
    /* Deleting a node releases its base (trigger), which may then be
    ** selected in the next round. */
    for (int more = 1; more && rc == 0;) {
        int64_t ids[256];
        int k = 0, s;
        while (k < 256 && (s = sqlite3_step(sel)) == SQLITE_ROW)
            ids[k++] = sqlite3_column_int64(sel, 0);
        sqlite3_reset(sel);
        if (k < 256 && s != SQLITE_DONE) {
            rc = cat_err(db, s, "catalog: find unused page maps");
            break;
        }
        more = k > 0;
        for (int i = 0; i < k && rc == 0; i++) {
            sqlite3_bind_int64(del, 1, ids[i]);
            if ((s = sqlite3_step(del)) != SQLITE_DONE)
                rc = cat_err(db, s, "catalog: delete page map");
            sqlite3_reset(del);
            n++;
        }
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    if (freed)
        *freed = n;
    return rc;
}

/* Folds node x (no artifact names it) into node y built on it. */
static int fold(sqlite3 *db, const struct map_row *x, const struct map_row *y)
{
    pm_map dx = {0}, dy = {0}, out = {0};
    int rc = map_delta_load(&dx, db, x->id, x->npages);
    if (rc == 0)
        rc = map_delta_load(&dy, db, y->id, y->npages);
    if (rc == 0)
        rc = pm_apply(&out, &dx, &dy, x->base_id == 0);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && (rc = cat_prepare(db, &st, "DELETE FROM pmap_run WHERE pmap_id = ?1")) == 0) {
        sqlite3_bind_int64(st, 1, y->id);
        int s = sqlite3_step(st);
        if (s != SQLITE_DONE)
            rc = cat_err(db, s, "catalog: fold page map");
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == 0)
        rc = insert_runs(db, y->id, &out, x->base_id == 0);
    if (rc == 0 && (rc = cat_prepare(db, &st, "UPDATE pmap SET base_id = ?2, seq = ?3 WHERE id = ?1")) == 0) {
        sqlite3_bind_int64(st, 1, y->id);
        if (x->base_id)
            sqlite3_bind_int64(st, 2, x->base_id);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, x->base_id ? y->seq : 0);
        int s = sqlite3_step(st);
        if (s != SQLITE_DONE)
            rc = cat_err(db, s, "catalog: fold page map");
        sqlite3_finalize(st);
        st = NULL;
    }
    /* x leaves the chains of y and of every node built on y. */
    if (rc == 0 && (rc = cat_prepare(db, &st, "DELETE FROM pmap_chain WHERE node_id = ?1 AND pmap_id IN "
                                              "(SELECT pmap_id FROM pmap_chain WHERE node_id = ?2)")) == 0) {
        sqlite3_bind_int64(st, 1, x->id);
        sqlite3_bind_int64(st, 2, y->id);
        int s = sqlite3_step(st);
        if (s != SQLITE_DONE)
            rc = cat_err(db, s, "catalog: fold page map chain");
        sqlite3_finalize(st);
    }
    pm_free(&dx);
    pm_free(&dy);
    pm_free(&out);
    return rc;
}

int map_dissolve(sqlite3 *db, uint64_t *folded)
{
    sqlite3_stmt *orph = NULL, *deps = NULL;
    uint64_t n = 0;
    int rc = cat_prepare(db, &orph, "SELECT p.id FROM pmap p WHERE p.refs > 0 AND NOT EXISTS "
                                    "(SELECT 1 FROM artifact a WHERE a.pmap_id = p.id) AND EXISTS "
                                    "(SELECT 1 FROM pmap c WHERE c.base_id = p.id) LIMIT 1");
    if (rc == 0)
        rc = cat_prepare(db, &deps, "SELECT id FROM pmap WHERE base_id = ?1 LIMIT 1");
    /* One fold at a time: each changes what the next query sees. Every
    ** fold removes one (x, y) edge, so this ends. A node no artifact names
    ** and nothing is built on stays for map_sweep (refs 0) or for whoever
    ** else holds it. */
    while (rc == 0) {
        int s = sqlite3_step(orph);
        if (s != SQLITE_ROW) {
            sqlite3_reset(orph);
            if (s != SQLITE_DONE)
                rc = cat_err(db, s, "catalog: find unnamed page maps");
            break;
        }
        int64_t x = sqlite3_column_int64(orph, 0);
        sqlite3_reset(orph);
        sqlite3_bind_int64(deps, 1, x);
        s = sqlite3_step(deps);
        int64_t y = s == SQLITE_ROW ? sqlite3_column_int64(deps, 0) : 0;
        sqlite3_reset(deps);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            rc = cat_err(db, s, "catalog: find page maps built on another");
            break;
        }
        struct map_row rx, ry;
        if (!y)                   /* the query said there was one */
            break;
        if ((rc = map_row_get(&rx, db, x)) == 0 && (rc = map_row_get(&ry, db, y)) == 0 &&
            (rc = fold(db, &rx, &ry)) == 0)
            n++;
        if (rc == 0)
            rc = map_sweep(db, NULL);
    }
    sqlite3_finalize(orph);
    sqlite3_finalize(deps);
    if (folded)
        *folded = n;
    return rc;
}

int map_load_artifact(pm_map *m, sqlite3 *db, int64_t art, uint64_t npages)
{
    int64_t id = 0;
    struct map_row r = {0};
    int rc = map_of_artifact(&id, db, art);
    if (rc == 0 && (rc = map_row_get(&r, db, id)) == 0 && r.npages != npages)
        rc = fks__err(FKS_ECORRUPT, "page map %lld is for %llu pages, its artifact has %llu", (long long)id,
                      (unsigned long long)r.npages, (unsigned long long)npages);
    if (rc == 0)
        rc = map_load(m, db, id);
    if (rc == 0)
        rc = pm_check(m, npages);
    return rc;
}
