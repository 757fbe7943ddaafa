/*
** lineage.c: listing snapshots, walking chains, removing snapshots.
** (Read-only SQL for users is sql.c.)
**
** Removing a snapshot (rmi) is one transaction: its children are
** re-parented to its own parent and its rows (snapshot, artifacts, the
** page-map nodes nothing uses any more) go. A node a child's map is built
** on stays as its base (map.c design 4), so children stay restorable byte
** for byte without any rewriting. The pages only it referenced stay in
** the index until gc, but nothing reaches them. prune removes all its
** snapshots in one such transaction (lineage_rmi_batch): one commit and
** one map sweep, all or nothing.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineage.h"

#include "catalog.h"
#include "manifest.h"
#include "map.h"
#include "store.h"
#include "util.h"

#define SNAP_SELECT \
    "SELECT s.id, s.tag, coalesce(p.tag, ''), s.created_ms, " \
    " (SELECT coalesce(sum(size), 0) FROM artifact WHERE snapshot_id = s.id), " \
    " (SELECT coalesce(sum(size), 0) FROM artifact WHERE snapshot_id = s.id AND name = 'memory'), " \
    " s.stored_bytes, " \
    " EXISTS (SELECT 1 FROM artifact WHERE snapshot_id = s.id AND name = 'rootfs'), " \
    " coalesce(s.pause_ms, -1), coalesce(s.snapshot_ms, -1), coalesce(s.ingest_ms, -1), " \
    " coalesce(s.diff_bytes, -1), s.parent_id " \
    "FROM snapshot s LEFT JOIN snapshot p ON p.id = s.parent_id "

static void row_info(fks_snapinfo *i, sqlite3_stmt *st)
{
    memset(i, 0, sizeof *i);
    i->id = sqlite3_column_int64(st, 0);
    snprintf(i->tag, sizeof i->tag, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(i->parent, sizeof i->parent, "%s", (const char *)sqlite3_column_text(st, 2));
    i->created_ms = sqlite3_column_int64(st, 3);
    i->logical_bytes = (uint64_t)sqlite3_column_int64(st, 4);
    i->memory_bytes = (uint64_t)sqlite3_column_int64(st, 5);
    i->stored_bytes = (uint64_t)sqlite3_column_int64(st, 6);
    i->has_rootfs = sqlite3_column_int(st, 7);
    i->pause_ms = sqlite3_column_int64(st, 8);
    i->snapshot_ms = sqlite3_column_int64(st, 9);
    i->ingest_ms = sqlite3_column_int64(st, 10);
    i->diff_bytes = sqlite3_column_int64(st, 11);
}

/* ---- the lineage forest, walked in C ----
** Parent links come from the catalog, which a user (or damage) can
** change: a cycle must not make a command loop. Every walk loads all
** (id, parent_id) pairs once and computes each snapshot's depth in O(n),
** marking the snapshots on or below a cycle (depth -1); no walk takes more
** than n steps. A parent_id that names no snapshot counts as a root. */

#define NONE ((size_t)-1)

struct lin {
    size_t n;
    int64_t *id;          /* ascending */
    size_t *parent;       /* index of the parent, NONE for a root */
    int *depth;           /* ancestors; -1 on or below a cycle */
    char (*tag)[FKS_TAG_MAX + 1];
};

static void lin_free(struct lin *L)
{
    free(L->id);
    free(L->parent);
    free(L->depth);
    free(L->tag);
    memset(L, 0, sizeof *L);
}

static size_t lin_find(const struct lin *L, int64_t id)
{
    size_t lo = 0, hi = L->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (L->id[mid] < id)
            lo = mid + 1;
        else if (L->id[mid] > id)
            hi = mid;
        else
            return mid;
    }
    return NONE;
}

/* Depths of every snapshot, iteratively: walk up from each unknown one to
** a known one (or a root, or a snapshot already on this walk: a cycle),
** then assign on the way back. */
static int lin_depths(struct lin *L)
{
    unsigned char *state = calloc(L->n + 1, 1);    /* 0 new, 1 on the walk, 2 done */
    size_t *path = malloc((L->n + 1) * sizeof *path);
    if (!state || !path) {
        free(state);
        free(path);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < L->n; i++) {
        size_t np = 0, k = i;
        while (k != NONE && state[k] == 0) {
            state[k] = 1;
            path[np++] = k;
            k = L->parent[k];
        }
        /* The top of the walk is a root (depth 0), below a known snapshot,
        ** or on this walk again: a cycle, and everything on the walk is
        ** on or below it. */
        int cyc = k != NONE && (state[k] == 1 || L->depth[k] < 0);
        int d = k == NONE || cyc ? -1 : L->depth[k];
        while (np-- > 0) {
            size_t j = path[np];
            L->depth[j] = cyc ? -1 : ++d;
            state[j] = 2;
        }
    }
    free(state);
    free(path);
    return 0;
}

static int lin_load(struct lin *L, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    size_t alloc = 0;
    int rc = 0, src;
    int64_t *pid = NULL;
    memset(L, 0, sizeof *L);
    if ((rc = cat_prepare(db, &st, "SELECT id, coalesce(parent_id, 0), tag FROM snapshot ORDER BY id")) != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (L->n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            int64_t *ni = realloc(L->id, alloc * sizeof *ni), *np = ni ? realloc(pid, alloc * sizeof *np) : NULL;
            char (*nt)[FKS_TAG_MAX + 1] = np ? realloc(L->tag, alloc * sizeof *nt) : NULL;
            if (ni)
                L->id = ni;
            if (np)
                pid = np;
            if (nt)
                L->tag = nt;
            if (!ni || !np || !nt) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
        }
        const char *t = (const char *)sqlite3_column_text(st, 2);
        L->id[L->n] = sqlite3_column_int64(st, 0);
        pid[L->n] = sqlite3_column_int64(st, 1);
        snprintf(L->tag[L->n], sizeof L->tag[L->n], "%s", t ? t : "?");
        L->n++;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(db, src, "catalog: read the lineage");
    sqlite3_finalize(st);
    if (rc == 0) {
        L->parent = malloc((L->n + 1) * sizeof *L->parent);
        L->depth = malloc((L->n + 1) * sizeof *L->depth);
        if (!L->parent || !L->depth)
            rc = fks__err(FKS_ENOMEM, "out of memory");
        else {
            for (size_t i = 0; i < L->n; i++)
                L->parent[i] = pid[i] ? lin_find(L, pid[i]) : NONE;
            rc = lin_depths(L);
        }
    }
    free(pid);
    if (rc)
        lin_free(L);
    return rc;
}

/* FKS_ECORRUPT naming the cycle that snapshot i is on or below. */
static int lin_cycle_err(const struct lin *L, size_t i)
{
    size_t k = i, m = 0, j;
    for (size_t step = 0; step < L->n && L->parent[k] != NONE; step++)
        k = L->parent[k];           /* after n steps up, k is on the cycle */
    int on = 0;
    j = k;
    do {                            /* is i on it? then start the list at i */
        on |= j == i;
        m++;
        j = L->parent[j];
    } while (j != k && j != NONE && m <= L->n);
    if (on)
        k = i;
    char list[600];
    size_t len = 0, shown = 0;
    j = k;
    do {
        int w = snprintf(list + len, sizeof list - len, "%s -> ", L->tag[j]);
        if (w < 0 || (size_t)w >= sizeof list - len - 140)
            break;
        len += (size_t)w;
        shown++;
        j = L->parent[j];
    } while (j != k && j != NONE && shown < m);
    snprintf(list + len, sizeof list - len, "%s", shown < m ? "..." : L->tag[k]);
    if (on)
        return fks__err(FKS_ECORRUPT, "catalog damaged: snapshot %s is on a cycle of parent links (%s, "
                        "%zu snapshots)", L->tag[i], list, m);
    return fks__err(FKS_ECORRUPT, "catalog damaged: snapshot %s descends from a cycle of parent links "
                    "(%s, %zu snapshots)", L->tag[i], list, m);
}

int fks_check_lineage(size_t *n_bad, fks_store *s)
{
    struct lin L;
    int rc = lin_load(&L, s->db);
    if (rc)
        return rc;
    size_t bad = 0, first = NONE;
    for (size_t i = 0; i < L.n; i++)
        if (L.depth[i] < 0) {
            bad++;
            if (first == NONE)
                first = i;
        }
    if (n_bad)
        *n_bad = bad;
    if (first != NONE)
        rc = lin_cycle_err(&L, first);
    lin_free(&L);
    return rc;
}

int fks_lineage_bad(fks_store *s, int (*fn)(void *arg, const char *tag), void *arg)
{
    struct lin L;
    int rc = lin_load(&L, s->db);
    for (size_t i = 0; rc == 0 && i < L.n; i++)
        if (L.depth[i] < 0)
            rc = fn(arg, L.tag[i]);
    lin_free(&L);        /* zeroed by a failed lin_load: safe either way */
    return rc;
}

/* How query_infos finds each row's depth: from the whole lineage (a list
** of every snapshot needs it anyway), or by walking up from the rows
** (one snapshot, its children, its chain: the work is that chain, not
** the store). */
enum { DEPTH_ALL, DEPTH_GET, DEPTH_CHILDREN, DEPTH_CHAIN };

/* The depth of snapshot id by walking up its parent links (a parent_id
** that names no snapshot ends the walk, as in lin_load), at most bound
** steps: -1 if the walk has not ended by then (a cycle on or above it;
** bound is above every depth without one). */
static int walk_depth(int *depth, sqlite3 *db, int64_t id, int64_t bound)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "WITH RECURSIVE up(id, d) AS (SELECT ?1, 0 UNION ALL "
                                  "SELECT p.id, d + 1 FROM up JOIN snapshot s ON s.id = up.id "
                                  "JOIN snapshot p ON p.id = s.parent_id WHERE d < ?2) SELECT max(d) FROM up");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, bound);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        int64_t d = sqlite3_column_int64(st, 0);
        *depth = d >= bound || d > INT32_MAX ? -1 : (int)d;
    } else {
        rc = cat_err(db, src, "catalog: walk the lineage");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs sql (one optional text parameter; ?2, if there, is bound to a walk
** bound above every depth) and fills each row's depth as how says; rows
** are those of DEPTH_GET (at most one), DEPTH_CHILDREN (children of one
** snapshot) or DEPTH_CHAIN (a chain, topmost first). FKS_ECORRUPT if a
** row is on or below a cycle: the error (naming the cycle) comes from the
** whole lineage. All reads see one snapshot of the catalog. */
static int query_infos(fks_snapinfo **out, size_t *n, fks_store *s, const char *sql, const char *bind, int how)
{
    sqlite3_stmt *st = NULL;
    fks_snapinfo *v = NULL;
    size_t cnt = 0, alloc = 0, cyc = NONE;
    struct lin L = {0};
    int64_t bound = 0;
    int base = -2, cycle = 0;      /* DEPTH_CHILDREN / DEPTH_CHAIN: depth of the first row's parent / itself */
    int txn = sqlite3_get_autocommit(s->db);
    int rc = txn ? cat_exec(s->db, "BEGIN") : 0;
    if (rc)
        return rc;
    if (how == DEPTH_ALL) {
        if ((rc = lin_load(&L, s->db)) != 0)
            goto out;
        bound = (int64_t)L.n;
    } else {
        sqlite3_stmt *mx;
        if ((rc = cat_prepare(s->db, &mx, "SELECT coalesce(max(id), 0) + 1 FROM snapshot")) != 0)
            goto out;
        int ms = sqlite3_step(mx);
        if (ms == SQLITE_ROW)
            bound = sqlite3_column_int64(mx, 0);
        else
            rc = cat_err(s->db, ms, "catalog: list snapshots");
        sqlite3_finalize(mx);
        if (rc)
            goto out;
    }
    if ((rc = cat_prepare(s->db, &st, sql)) != 0)
        goto out;
    if (bind)
        sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, bound);    /* the walk bound */
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            fks_snapinfo *nv = realloc(v, alloc * sizeof *v);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        row_info(&v[cnt], st);
        int d = 0;
        if (how == DEPTH_ALL) {
            size_t j = lin_find(&L, v[cnt].id);
            if (j != NONE && L.depth[j] < 0)
                cyc = j;            /* the last one */
            d = j == NONE ? 0 : L.depth[j];
        } else if (how == DEPTH_GET || base == -2) {
            /* the row's own walk (children: the first child's, less one) */
            if ((rc = walk_depth(&d, s->db, v[cnt].id, bound)) != 0)
                break;
            base = d < 0 ? -1 : how == DEPTH_CHILDREN ? d - 1 : d;
        } else {
            d = base < 0 ? -1 : how == DEPTH_CHILDREN ? base + 1 : base + (int)cnt;
        }
        if (d < 0) {
            cycle = 1;
            break;
        }
        v[cnt++].depth = d;
    }
    if (rc == 0 && !cycle && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list snapshots");
    if (rc == 0 && cyc != NONE)
        rc = lin_cycle_err(&L, cyc);
out:
    sqlite3_finalize(st);
    lin_free(&L);
    if (txn)
        cat_exec(s->db, "COMMIT");
    if (rc == 0 && cycle) {
        /* A cycle: the whole lineage names it (and rejects the rows). */
        free(v);
        return query_infos(out, n, s, sql, bind, DEPTH_ALL);
    }
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int fks_list(fks_snapinfo **out, size_t *n, fks_store *s)
{
    return query_infos(out, n, s, SNAP_SELECT "ORDER BY s.created_ms DESC, s.id DESC", NULL, DEPTH_ALL);
}

int fks_children(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag)
{
    int64_t id;
    int rc = fks_check_tag(tag);
    if (rc || (rc = cat_snapshot(&id, NULL, s->db, tag, 1)) != 0)
        return rc;
    return query_infos(out, n, s, SNAP_SELECT "WHERE s.parent_id = (SELECT id FROM snapshot WHERE tag = ?1) "
                       "ORDER BY s.created_ms, s.id", tag, DEPTH_CHILDREN);
}

int fks_get(fks_snapinfo *out, fks_store *s, const char *tag)
{
    fks_snapinfo *v;
    size_t n;
    int rc = fks_check_tag(tag);
    if (rc || (rc = query_infos(&v, &n, s, SNAP_SELECT "WHERE s.tag = ?1", tag, DEPTH_GET)) != 0)
        return rc;
    if (n == 0) {
        free(v);
        return cat_not_found(tag);
    }
    *out = v[0];
    free(v);
    return 0;
}

/* SNAP_SELECT's columns without the artifact sums (0) and timings (-1). */
#define SNAP_SELECT_BRIEF \
    "SELECT s.id, s.tag, coalesce(p.tag, ''), s.created_ms, 0, 0, s.stored_bytes, 0, -1, -1, -1, -1, s.parent_id " \
    "FROM snapshot s LEFT JOIN snapshot p ON p.id = s.parent_id "

#define CHAIN_UP \
    "WITH RECURSIVE up(id, d) AS (SELECT id, 0 FROM snapshot WHERE tag = ?1 " \
    " UNION ALL SELECT s.parent_id, d + 1 FROM snapshot s JOIN up ON s.id = up.id " \
    " WHERE s.parent_id IS NOT NULL AND d < ?2) "

static int chain_of(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag, int brief)
{
    int rc = fks_check_tag(tag);
    if (rc || (rc = query_infos(out, n, s, brief ? CHAIN_UP SNAP_SELECT_BRIEF "JOIN up ON up.id = s.id ORDER BY up.d DESC"
                                                 : CHAIN_UP SNAP_SELECT "JOIN up ON up.id = s.id ORDER BY up.d DESC",
                                tag, DEPTH_CHAIN)) != 0)
        return rc;
    if (*n == 0) {
        free(*out);
        *out = NULL;
        return cat_not_found(tag);
    }
    return 0;
}

int fks_chain(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag)
{
    return chain_of(out, n, s, tag, 0);
}

int fks_chain_brief(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag)
{
    return chain_of(out, n, s, tag, 1);
}

static int exec_bind(sqlite3 *db, const char *sql, int64_t a, int64_t b)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = cat_err(db, src, "catalog: remove snapshot");
    sqlite3_finalize(st);
    return rc;
}

/* FKS_ECORRUPT if snapshot id is on or below a parent cycle: its subtree
** would have no end. */
static int check_not_cyclic(fks_store *s, int64_t id)
{
    struct lin L;
    int rc = lin_load(&L, s->db);
    if (rc)
        return rc;
    size_t j = lin_find(&L, id);
    if (j != NONE && L.depth[j] < 0)
        rc = lin_cycle_err(&L, j);
    lin_free(&L);
    return rc;
}

/* Removes snapshot id's rows (not its subtree): its children take its
** parent as theirs. A child never becomes its own parent nor a child of
** the removed snapshot (a damaged catalog's self-parent or 2-cycle is
** broken by removing one of its snapshots). The caller sweeps the maps. */
static int rmi_rows(sqlite3 *db, int64_t id, int64_t parent)
{
    int rc = exec_bind(db, "UPDATE snapshot SET parent_id = nullif(nullif(nullif(?2, 0), ?1), id) "
                       "WHERE parent_id = ?1", id, parent);
    return rc ? rc : exec_bind(db, "DELETE FROM snapshot WHERE id = ?1", id, 0);
}

/* One removal transaction (fks_rmi). */
static int rmi_once(fks_store *s, const char *tag, int cascade)
{
    int rc;
    if ((rc = cat_begin(s)) != 0)
        return rc;
    int64_t id = 0, parent = 0;
    if ((rc = cat_snapshot(&id, &parent, s->db, tag, 1)) != 0)
        return cat_end(s, rc);
    /* The ids removed, for their manifests once the removal committed. */
    int64_t *ids = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *st = NULL;
    if ((rc = cat_prepare(s->db, &st, cascade
            ? "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION SELECT s.id FROM snapshot s "
              "JOIN sub ON s.parent_id = sub.id) SELECT id FROM sub"
            : "SELECT ?1")) != 0)
        return cat_end(s, rc);
    sqlite3_bind_int64(st, 1, id);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            int64_t *nv = realloc(ids, alloc * sizeof *nv);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            ids = nv;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list snapshots to remove");
    sqlite3_finalize(st);
    if (rc == 0 && cascade) {
        /* UNION, not UNION ALL: even a cycle ends the recursion */
        if ((rc = check_not_cyclic(s, id)) == 0)
            rc = exec_bind(s->db,
                "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION SELECT s.id FROM snapshot s JOIN sub ON s.parent_id = sub.id) "
                "DELETE FROM snapshot WHERE id IN sub", id, 0);
    } else if (rc == 0) {
        rc = rmi_rows(s->db, id, parent);
    }
    /* Page maps nobody uses any more go with it (map.c design 3): the work
    ** is their rows; a map still under a child stays, gc folds it. */
    if (rc == 0)
        rc = map_sweep(s->db, NULL);
    /* Catalog first, then the manifests (deletion in reverse order): the
    ** children's manifests keep naming this one as their parent and may
    ** be deltas against it, so it stays as a tombstone (manifest.c). */
    if ((rc = cat_end(s, rc)) == 0)
        manifest_tombstone(s->dir, ids, n);
    free(ids);
    return rc;
}

int fks_rmi(fks_store *s, const char *tag, int cascade)
{
    int rc = fks_check_tag(tag);
    if (rc)
        return rc;
    /* On a full disk SQLite has no room for the WAL frames of the commit
    ** (rolled back: nothing changed): free the gc reserve and try once
    ** more, so that removing snapshots still works there. gc, which then
    ** frees their space, makes the reserve again. */
    if ((rc = rmi_once(s, tag, cascade)) == FKS_ENOSPC && store_reserve_use(s))
        rc = rmi_once(s, tag, cascade);
    return rc;
}

/* One transaction for the whole batch (lineage_rmi_batch). */
static int rmi_batch_once(fks_store *s, const char *const *tags, size_t n, char *gone)
{
    int64_t *ids = malloc((n + 1) * sizeof *ids);
    size_t k = 0;
    if (!ids)
        return fks__err(FKS_ENOMEM, "out of memory");
    int rc = cat_begin(s);
    if (rc) {
        free(ids);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        int64_t id = 0, parent = 0;
        gone[i] = 0;
        if ((rc = cat_snapshot(&id, &parent, s->db, tags[i], 0)) != 0)
            break;
        if (!id) {
            gone[i] = 1;        /* removed meanwhile: another rmi won */
            continue;
        }
        if ((rc = rmi_rows(s->db, id, parent)) == 0)
            ids[k++] = id;
    }
    /* One sweep for all: a map a later removal frees is swept with the
    ** rest, and the work is the deleted maps' rows (map.c design 3). */
    if (rc == 0)
        rc = map_sweep(s->db, NULL);
    if ((rc = cat_end(s, rc)) == 0)
        manifest_tombstone(s->dir, ids, k);
    free(ids);
    return rc;
}

int lineage_rmi_batch(fks_store *s, const char *const *tags, size_t n, char *gone)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = fks_check_tag(tags[i]);
    if (rc || n == 0)
        return rc;
    /* As fks_rmi: on a full disk, once more with the gc reserve's room. */
    if ((rc = rmi_batch_once(s, tags, n, gone)) == FKS_ENOSPC && store_reserve_use(s))
        rc = rmi_batch_once(s, tags, n, gone);
    return rc;
}
