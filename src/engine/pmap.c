/*
** pmap.c: page maps in memory.
**
** A map lists the non-zero pages of one artifact as runs (pgno, npages,
** page): pages pgno .. pgno+npages-1 hold pages page .. page+npages-1.
** The catalog stores these runs (table pmap_run). Runs are kept
** sorted and maximal: pm_push merges a page into the previous run when
** both its number and its page id continue it, so an image ingested in
** one pass, whose new pages get consecutive ids, costs one run per
** stretch between zero pages and duplicates.
**
** A delta is a map whose runs may name page 0 ("zeros here"). A Diff
** ingest builds its delta with pm_apply(): its data extents (the "cover")
** as zeros, its own pages over them. pm_apply also lays a delta over a
** base (map.c reads a map that way) and merges deltas. The catalog keeps
** maps as shared nodes of such runs (map.c).
*/
#include "pmap.h"

#include <stdlib.h>

#include "util.h"

void pm_free(pm_map *m)
{
    free(m->r);
    m->r = NULL;
    m->n = m->alloc = 0;
}

int pm_reserve(pm_map *m, size_t n)
{
    if (n <= m->alloc)
        return 0;
    pm_run *nr = realloc(m->r, n * sizeof *nr);
    if (!nr)
        return fks__err(FKS_ENOMEM, "out of memory (page map of %zu runs)", n);
    m->r = nr;
    m->alloc = n;
    return 0;
}

int pm_push_run(pm_map *m, uint64_t pgno, uint64_t npages, int64_t page)
{
    if (npages == 0)
        return 0;
    if (m->n > 0) {
        pm_run *l = &m->r[m->n - 1];
        if (l->pgno + l->npages == pgno &&
            (l->page == 0 ? page == 0 : l->page + (int64_t)l->npages == page) &&
            (l->page >= PM_NEW) == (page >= PM_NEW)) {
            l->npages += npages;
            return 0;
        }
    }
    if (m->n == m->alloc) {
        size_t na = m->alloc ? m->alloc * 2 : 256;
        pm_run *nr = realloc(m->r, na * sizeof *nr);
        if (!nr)
            return fks__err(FKS_ENOMEM, "out of memory (page map of %zu runs)", m->n);
        m->r = nr;
        m->alloc = na;
    }
    m->r[m->n++] = (pm_run){pgno, npages, page};
    return 0;
}

int pm_push(pm_map *m, uint64_t pgno, int64_t page)
{
    return pm_push_run(m, pgno, 1, page);
}

int pm_apply(pm_map *out, const pm_map *base, const pm_map *delta, int drop_zero)
{
    size_t di = 0;
    /* each delta run splits at most one base run in two */
    int rc = pm_reserve(out, out->n + base->n + 2 * delta->n + 1);
    /* Walk base runs; delta runs are emitted in order as they come, and
    ** base pieces outside every delta run are kept. */
    for (size_t bi = 0; bi < base->n && rc == 0; bi++) {
        uint64_t a = base->r[bi].pgno, end = a + base->r[bi].npages;
        while (a < end && rc == 0) {
            /* delta runs that end at or before a: emit */
            while (di < delta->n && delta->r[di].pgno + delta->r[di].npages <= a && rc == 0) {
                if (!(drop_zero && delta->r[di].page == 0))
                    rc = pm_push_run(out, delta->r[di].pgno, delta->r[di].npages, delta->r[di].page);
                di++;
            }
            if (rc)
                break;
            if (di < delta->n && delta->r[di].pgno <= a) {
                /* a is inside delta run di: skip the base to its end */
                a = delta->r[di].pgno + delta->r[di].npages;
                continue;
            }
            uint64_t stop = end;
            if (di < delta->n && delta->r[di].pgno < stop)
                stop = delta->r[di].pgno;
            rc = pm_push_run(out, a, stop - a, base->r[bi].page == 0 ? 0
                                                 : base->r[bi].page + (int64_t)(a - base->r[bi].pgno));
            a = stop;
        }
    }
    for (; di < delta->n && rc == 0; di++)
        if (!(drop_zero && delta->r[di].page == 0))
            rc = pm_push_run(out, delta->r[di].pgno, delta->r[di].npages, delta->r[di].page);
    return rc;
}

int pm_restrict(pm_map *out, const pm_map *m, const pm_map *want)
{
    size_t i = 0, j = 0;
    int rc = 0;
    while (i < m->n && j < want->n && rc == 0) {
        const pm_run *a = &m->r[i], *w = &want->r[j];
        uint64_t lo = a->pgno > w->pgno ? a->pgno : w->pgno;
        uint64_t ae = a->pgno + a->npages, we = w->pgno + w->npages, hi = ae < we ? ae : we;
        if (lo < hi)
            rc = pm_push_run(out, lo, hi - lo, a->page == 0 ? 0 : a->page + (int64_t)(lo - a->pgno));
        if (ae <= we)
            i++;
        else
            j++;
    }
    return rc;
}

size_t pm_find(const pm_map *m, uint64_t pgno)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->r[mid].pgno + m->r[mid].npages <= pgno)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->r[lo].pgno <= pgno ? lo : PM_NONE;
}

uint64_t pm_pages(const pm_map *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->r[i].page != 0)
            n += m->r[i].npages;
    return n;
}

static int check(const pm_map *m, uint64_t npages_total, int delta);

int pm_check(const pm_map *m, uint64_t npages_total)
{
    return check(m, npages_total, 0);
}

int pm_check_delta(const pm_map *m, uint64_t npages_total)
{
    return check(m, npages_total, 1);
}

static int check(const pm_map *m, uint64_t npages_total, int delta)
{
    uint64_t next = 0;
    for (size_t i = 0; i < m->n; i++) {
        const pm_run *r = &m->r[i];
        if (r->npages == 0 || r->pgno < next || r->pgno > npages_total ||
            r->npages > npages_total - r->pgno)
            return fks__err(FKS_ECORRUPT, "page map damaged: run %zu (pages %llu+%llu) is out of "
                            "order or past the end (%llu pages)", i, (unsigned long long)r->pgno,
                            (unsigned long long)r->npages, (unsigned long long)npages_total);
        /* ids page .. page+npages-1 all in 1 .. PM_NEW-1; no overflow */
        if (delta && r->page == 0) {
            next = r->pgno + r->npages;
            continue;
        }
        if (r->page <= 0 || r->page >= PM_NEW || r->npages > (uint64_t)(PM_NEW - r->page))
            return fks__err(FKS_ECORRUPT, "page map damaged: run %zu names page id %lld", i,
                            (long long)r->page);
        next = r->pgno + r->npages;
    }
    return 0;
}
