/*
** prune.c: retention rules, like restic's forget.
**
** Snapshots are grouped by lineage root (a root and all its descendants),
** the groups taken once, before anything is removed. In each group a
** snapshot is kept if any rule keeps it: --keep-last N (the N most recent
** of the group), --keep-within D (created at most D ago), --keep-tag GLOB
** (fnmatch on the tag). The rest are removed oldest first, as by fks_rmi,
** all in ONE write transaction (lineage_rmi_batch): children of a removed
** snapshot stay restorable and take its parent as theirs, and a prune
** killed half way leaves the store as it was before (SQLite's commit is
** atomic; the manifests are tombstoned only after it). At least one rule
** is required, so a mistyped command never empties a store.
**
** Cost: O(n log n) for n snapshots, plus the removed snapshots' rows and
** one map sweep for all of them (one commit, not one per removal).
*/
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "forkstore.h"
#include "lineage.h"
#include "util.h"

#define NONE ((size_t)-1)

struct tagidx {
    const char *tag;
    size_t idx;
};

static int by_tag(const void *x, const void *y)
{
    return strcmp(((const struct tagidx *)x)->tag, ((const struct tagidx *)y)->tag);
}

/* root[i] = index of the lineage root of v[i]. parent[] holds each
** snapshot's parent index or NONE. A cycle (a damaged catalog) ends the
** walk at the node where it closes. */
static void find_roots(size_t *root, const size_t *parent, size_t n)
{
    for (size_t i = 0; i < n; i++)
        root[i] = NONE;
    for (size_t i = 0; i < n; i++) {
        size_t k = i, hops = 0;
        while (root[k] == NONE && parent[k] != NONE && hops++ < n)
            k = parent[k];
        size_t r = root[k] != NONE ? root[k] : k;
        for (k = i; root[k] == NONE; k = parent[k] == NONE ? k : parent[k]) {
            root[k] = r;
            if (parent[k] == NONE)
                break;
        }
    }
}

int fks_prune(fks_prune_result *res, fks_store *s, const fks_prune_opts *o)
{
    fks_snapinfo *v = NULL;
    struct tagidx *order = NULL;
    size_t n = 0, *parent = NULL, *root = NULL, *seen = NULL;
    char *keep = NULL, *gone = NULL;
    const char **tags = NULL;
    int rc;
    memset(res, 0, sizeof *res);
    if (o->keep_last <= 0 && o->keep_within_ms <= 0 && o->n_keep_tags == 0)
        return fks__err(FKS_EINVAL, "prune needs at least one rule (--keep-last, --keep-within, --keep-tag)");
    if ((rc = fks_list(&v, &n, s)) != 0)   /* most recent first */
        return rc;
    order = calloc(n + 1, sizeof *order);
    parent = calloc(n + 1, sizeof *parent);
    root = calloc(n + 1, sizeof *root);
    seen = calloc(n + 1, sizeof *seen);
    keep = calloc(n + 1, 1);
    res->removed = calloc(n + 1, sizeof *res->removed);
    if (!order || !parent || !root || !seen || !keep || !res->removed) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (struct tagidx){v[i].tag, i};
    qsort(order, n, sizeof *order, by_tag);
    for (size_t i = 0; i < n; i++) {
        struct tagidx key = {v[i].parent, 0};
        const struct tagidx *p = v[i].parent[0] ? bsearch(&key, order, n, sizeof *order, by_tag) : NULL;
        parent[i] = p ? p->idx : NONE;
    }
    find_roots(root, parent, n);

    int64_t now = fks__wall_ms();
    for (size_t i = 0; i < n; i++) {        /* most recent first: seen = rank in group */
        if (o->keep_last > 0 && seen[root[i]]++ < (size_t)o->keep_last)
            keep[i] = 1;
        if (o->keep_within_ms > 0 && now - v[i].created_ms <= o->keep_within_ms)
            keep[i] = 1;
        for (size_t t = 0; t < o->n_keep_tags && !keep[i]; t++)
            if (fnmatch(o->keep_tags[t], v[i].tag, 0) == 0)
                keep[i] = 1;
    }
    size_t nrm = 0;
    for (size_t i = n; i-- > 0;) {          /* oldest first */
        if (keep[i])
            res->n_kept++;
        else
            order[nrm++].tag = v[i].tag;    /* order is no longer needed */
    }
    if (!(tags = calloc(nrm + 1, sizeof *tags)) || !(gone = calloc(nrm + 1, 1))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nrm; i++)
        tags[i] = order[i].tag;
    if (!o->dry_run && (rc = lineage_rmi_batch(s, tags, nrm, gone)) != 0)
        goto out;                           /* nothing was removed */
    for (size_t i = 0; i < nrm; i++) {
        if (gone[i])                        /* gone already: another rmi won */
            continue;
        if (!(res->removed[res->n_removed] = strdup(tags[i]))) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            goto out;
        }
        res->n_removed++;
    }
out:
    free(tags);
    free(gone);
    free(order);
    free(parent);
    free(root);
    free(seen);
    free(keep);
    free(v);
    return rc;
}

void fks_prune_result_free(fks_prune_result *r)
{
    fks_prune_result_clear(r);
}

void fks_prune_result_clear(fks_prune_result *r)
{
    if (!r)
        return;
    fks__lines_free(r->removed, r->n_removed);
    r->removed = NULL;
    r->n_removed = 0;
}
