/*
** pmap.h: page maps in memory: sorted, run-length encoded lists of which
** page each page number of an artifact holds. See pmap.c.
*/
#ifndef FKS_PMAP_H
#define FKS_PMAP_H

#include <stddef.h>
#include <stdint.h>

/* Page references: a catalog page id (1 .. PM_NEW-1), or PM_NEW + k for
** the k-th page stored by the ingest in progress (its id is known only at
** commit). Zero pages are not listed. */
#define PM_NEW ((int64_t)1 << 62)

typedef struct pm_run {
    uint64_t pgno;
    uint64_t npages;
    int64_t page;     /* page of pgno; pgno + i holds page + i */
} pm_run;

typedef struct pm_map {
    pm_run *r;
    size_t n, alloc;
} pm_map;

void pm_free(pm_map *m);
/* Makes room for n runs in all (one allocation instead of doublings). */
int pm_reserve(pm_map *m, size_t n);
/* Appends page number pgno holding page (pgno above every listed one);
** extends the last run when both continue it. */
int pm_push(pm_map *m, uint64_t pgno, int64_t page);
/* Appends a whole run (same ordering rule), coalescing. */
int pm_push_run(pm_map *m, uint64_t pgno, uint64_t npages, int64_t page);
/* Checks a map is well formed for an artifact of npages_total pages:
** runs sorted, non-overlapping, inside the artifact, page ids positive and
** the run not wrapping. FKS_ECORRUPT with a message otherwise. */
int pm_check(const pm_map *m, uint64_t npages_total);

/* Deltas. A delta is a map whose runs may name page 0: "these pages are
** zeros", hiding what a base holds there. pm_apply builds out = base with
** every range a run of delta covers replaced by that run (runs of page 0
** dropped when drop_zero, i.e. when out is a complete map, kept when out
** is itself a delta). base and delta sorted; out empty on entry. */
int pm_apply(pm_map *out, const pm_map *base, const pm_map *delta, int drop_zero);
/* pm_check for a delta: page 0 allowed. */
int pm_check_delta(const pm_map *m, uint64_t npages_total);
/* out = the parts of m's runs inside the ranges of want (page ids of want
** ignored). Both sorted; out empty on entry. */
int pm_restrict(pm_map *out, const pm_map *m, const pm_map *want);
/* Index of the run of m (sorted) that covers pgno, or PM_NONE. */
#define PM_NONE ((size_t)-1)
size_t pm_find(const pm_map *m, uint64_t pgno);
/* Pages of m's runs that are not page 0. */
uint64_t pm_pages(const pm_map *m);

#endif
