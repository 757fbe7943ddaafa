/*
** diff.c: comparing page maps: which pages of two snapshots' files differ
** (fks_diff, fks_runs_diff), and the linear merge stats.c also uses to
** count the bytes a snapshot shares with its parent.
**
** Design
**  1. Two maps are compared by one linear merge (diff_merge): page
**     numbers are walked through both run lists at once, in stretches
**     where neither side starts or ends a run. In a stretch where both
**     sides lie in a run, their pages are all equal or all different:
**     equal exactly when the runs lie on the same diagonal page_id - pgno.
**     So each stretch is decided in O(1), and a diff costs O(runs of A +
**     runs of B), never a page-by-page walk.
**  2. Runs are checked before they are merged (diff_check_runs): empty,
**     out-of-order, overlapping or wrapping runs are FKS_EINVAL for a
**     caller's runs (fks_runs_diff), and fks_diff reports them as
**     FKS_ECORRUPT, since they came from the catalog.
**  3. fks_diff reads inside one read transaction, so a concurrent ingest
**     or gc cannot make its two sides disagree. Artifacts are paired by
**     name; one present on one side only differs wherever it has pages.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "diff.h"
#include "map.h"
#include "store.h"
#include "util.h"

#define PAGE FKS_PAGE_SIZE

int diff_check_runs(const fks_run *r, size_t n, const char *which)
{
    uint64_t next = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].npages == 0 || r[i].pgno < next || r[i].pgno + r[i].npages < r[i].pgno ||
            r[i].page_id <= 0 || r[i].npages > (uint64_t)(INT64_MAX - r[i].page_id))
            return fks__err(FKS_EINVAL, "page map%s%s: run %zu (pages %llu+%llu, page id %lld) is empty, "
                            "out of order, overlapping or wraps", which[0] ? " " : "", which, i, (unsigned long long)r[i].pgno,
                            (unsigned long long)r[i].npages, (long long)r[i].page_id);
        next = r[i].pgno + r[i].npages;
    }
    return 0;
}

int diff_merge(const fks_run *a, size_t na, const fks_run *b, size_t nb, diff_seg_fn fn, void *arg)
{
    int rc = diff_check_runs(a, na, "A");
    if (rc || (rc = diff_check_runs(b, nb, "B")) != 0)
        return rc;
    size_t i = 0, j = 0;
    uint64_t pos = 0;
    while (i < na || j < nb) {
        int ina = i < na && pos >= a[i].pgno, inb = j < nb && pos >= b[j].pgno;
        uint64_t ea = i == na ? UINT64_MAX : ina ? a[i].pgno + a[i].npages : a[i].pgno;
        uint64_t eb = j == nb ? UINT64_MAX : inb ? b[j].pgno + b[j].npages : b[j].pgno;
        uint64_t end = ea < eb ? ea : eb;
        int state = DIFF_ZERO;
        if (ina && inb)
            state = a[i].page_id + (int64_t)(pos - a[i].pgno) == b[j].page_id + (int64_t)(pos - b[j].pgno)
                    ? DIFF_SAME : DIFF_DIFF;
        else if (ina || inb)
            state = DIFF_DIFF;
        if (end > pos && (rc = fn(arg, pos, end - pos, state)) != 0)
            return rc;
        pos = end;
        if (ina && pos == ea)
            i++;
        if (inb && pos == eb)
            j++;
    }
    return 0;
}

uint64_t diff_range_bytes(uint64_t pgno, uint64_t npages, uint64_t size)
{
    if (pgno >= (size + PAGE - 1) / PAGE)
        return 0;
    uint64_t left = size - pgno * PAGE;
    return npages >= (left + PAGE - 1) / PAGE ? left : npages * PAGE;
}

/* ---- fks_runs_diff ---- */

struct ranges {
    fks_range *v;
    size_t n, alloc;
    uint64_t pages;
};

static int ranges_add(struct ranges *r, uint64_t pgno, uint64_t npages)
{
    r->pages += npages;
    if (r->n && r->v[r->n - 1].pgno + r->v[r->n - 1].npages == pgno) {
        r->v[r->n - 1].npages += npages;
        return 0;
    }
    if (r->n == r->alloc) {
        size_t na = r->alloc ? 2 * r->alloc : 16;
        fks_range *nv = realloc(r->v, na * sizeof *nv);
        if (!nv)
            return fks__err(FKS_ENOMEM, "out of memory");
        r->v = nv;
        r->alloc = na;
    }
    r->v[r->n++] = (fks_range){pgno, npages};
    return 0;
}

static int ranges_seg(void *arg, uint64_t pgno, uint64_t npages, int state)
{
    return state == DIFF_DIFF ? ranges_add(arg, pgno, npages) : 0;
}

int fks_runs_diff(fks_range **out, size_t *n, uint64_t *pages,
                  const fks_run *a, size_t na, const fks_run *b, size_t nb)
{
    struct ranges r = {0};
    int rc = diff_merge(a, na, b, nb, ranges_seg, &r);
    if (rc) {
        free(r.v);
        r = (struct ranges){0};
    }
    *out = r.v;
    *n = r.n;
    *pages = r.pages;
    return rc;
}

/* ---- the sides of a diff ---- */

int diff_arts_load(struct diff_art **out, size_t *n, fks_store *s, int64_t snap_id)
{
    sqlite3_stmt *st;
    struct diff_art *v = NULL;
    size_t cnt = 0, alloc = 0;
    int src, rc = cat_prepare(s->db, &st, "SELECT id, name, size FROM artifact WHERE snapshot_id = ?1 ORDER BY name");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, snap_id);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == alloc) {
            alloc = alloc ? 2 * alloc : 8;
            struct diff_art *nv = realloc(v, alloc * sizeof *nv);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                goto out;
            }
            v = nv;
        }
        const char *nm = (const char *)sqlite3_column_text(st, 1);
        int64_t sz = sqlite3_column_int64(st, 2);
        if (!nm || strlen(nm) >= sizeof v[cnt].name || sqlite3_column_type(st, 2) != SQLITE_INTEGER || sz < 0) {
            rc = fks__err(FKS_ECORRUPT, "catalog names an artifact badly (name or size damaged)");
            goto out;
        }
        v[cnt].id = sqlite3_column_int64(st, 0);
        memcpy(v[cnt].name, nm, strlen(nm) + 1);
        v[cnt].size = (uint64_t)sz;
        cnt++;
    }
    if (src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list artifacts");
out:
    sqlite3_finalize(st);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int diff_runs_set(struct diff_runs *r, const pm_map *m)
{
    r->n = 0;
    if (m->n >= r->alloc || !r->v) {
        fks_run *nv = realloc(r->v, (m->n + 1) * sizeof *nv);
        if (!nv)
            return fks__err(FKS_ENOMEM, "out of memory");
        r->v = nv;
        r->alloc = m->n + 1;
    }
    for (size_t i = 0; i < m->n; i++)
        r->v[r->n++] = (fks_run){m->r[i].pgno, m->r[i].npages, m->r[i].page};
    return 0;
}

int diff_runs_load(struct diff_runs *r, fks_store *s, int64_t art_id)
{
    pm_map m = {0};
    int64_t id;
    int rc = map_of_artifact(&id, s->db, art_id);
    if (rc == 0)
        rc = map_load(&m, s->db, id);
    r->n = 0;
    if (rc == 0)
        rc = diff_runs_set(r, &m);
    pm_free(&m);
    return rc;
}

/* ---- fks_diff ---- */

int fks_diff(fks_diff_report **out, fks_store *s, const char *tag_a, const char *tag_b)
{
    fks_diff_report *d = NULL;
    struct diff_art *aa = NULL, *ab = NULL;
    struct diff_runs ra = {0}, rb = {0};
    size_t na = 0, nb = 0;
    int64_t ida = 0, idb = 0;
    *out = NULL;
    int rc = cat_read_begin(s->db);
    if (rc)
        return rc;
    if ((rc = fks_check_tag(tag_a)) || (rc = cat_snapshot(&ida, NULL, s->db, tag_a, 1)) ||
        (rc = fks_check_tag(tag_b)) || (rc = cat_snapshot(&idb, NULL, s->db, tag_b, 1)) ||
        (rc = diff_arts_load(&aa, &na, s, ida)) || (rc = diff_arts_load(&ab, &nb, s, idb)))
        goto out;
    if (!(d = calloc(1, sizeof *d)) || !(d->artifacts = calloc(na + nb + 1, sizeof *d->artifacts))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0, j = 0; i < na || j < nb;) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(aa[i].name, ab[j].name);
        const struct diff_art *pa = c <= 0 ? &aa[i] : NULL, *pb = c >= 0 ? &ab[j] : NULL;
        const struct diff_art *named = c <= 0 ? &aa[i] : &ab[j];
        i += c <= 0;
        j += c >= 0;
        fks_diff_artifact *x = &d->artifacts[d->n++];
        snprintf(x->name, sizeof x->name, "%s", named->name);
        x->in_a = pa != NULL;
        x->in_b = pb != NULL;
        x->size_a = pa ? pa->size : 0;
        x->size_b = pb ? pb->size : 0;
        ra.n = rb.n = 0;
        if ((pa && (rc = diff_runs_load(&ra, s, pa->id))) || (pb && (rc = diff_runs_load(&rb, s, pb->id))))
            goto out;
        struct ranges r = {0};
        rc = diff_merge(ra.v, ra.n, rb.v, rb.n, ranges_seg, &r);
        x->ranges = r.v;
        x->n_ranges = r.n;
        x->pages = r.pages;
        if (rc) {
            if (rc == FKS_EINVAL)
                rc = fks__errctx(FKS_ECORRUPT, "diff %s %s, artifact %s: catalog damaged", tag_a, tag_b, x->name);
            goto out;
        }
        uint64_t size = x->size_a > x->size_b ? x->size_a : x->size_b;
        for (size_t k = 0; k < r.n; k++)
            x->bytes += diff_range_bytes(r.v[k].pgno, r.v[k].npages, size);
        d->pages += x->pages;
        d->bytes += x->bytes;
    }
out:
    rc = cat_read_finish(s->db, rc);
    free(aa);
    free(ab);
    free(ra.v);
    free(rb.v);
    if (rc) {
        fks_diff_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void fks_diff_free(fks_diff_report *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->artifacts[i].ranges);
    free(d->artifacts);
    free(d);
}

