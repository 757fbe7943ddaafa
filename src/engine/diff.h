/*
** diff.h: comparing page maps, for fks_diff and stats.c (see diff.c).
*/
#ifndef FKS_DIFF_H
#define FKS_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "forkstore.h"
#include "pmap.h"

/* The state of a stretch of pages in diff_merge: zero (a hole) in both
** maps, the same page in both, or a different one (or a hole in one). */
enum { DIFF_ZERO, DIFF_SAME, DIFF_DIFF };

/* Called for each stretch [pgno, pgno + npages) with its state; nonzero
** stops the merge and is returned. */
typedef int (*diff_seg_fn)(void *arg, uint64_t pgno, uint64_t npages, int state);

/* FKS_EINVAL (naming run i of map `which`, "A", "B" or "") unless r[0..n)
** are non-empty runs in page order that neither overlap nor wrap. */
int diff_check_runs(const fks_run *r, size_t n, const char *which);
/* Checks both maps, then calls fn for every stretch of pages from 0 to
** the end of the longer map, in order (diff.c design 1). */
int diff_merge(const fks_run *a, size_t na, const fks_run *b, size_t nb, diff_seg_fn fn, void *arg);
/* Bytes of pages [pgno, pgno + npages) of a file of size bytes: the last
** page of a file may be short, and pages past its end have none. */
uint64_t diff_range_bytes(uint64_t pgno, uint64_t npages, uint64_t size);

/* An artifact of a snapshot: its id, name and logical size. */
struct diff_art {
    int64_t id;
    char name[FKS_NAME_MAX + 1];
    uint64_t size;
};
/* The artifacts of snapshot snap_id, by name. Caller frees *out.
** FKS_ECORRUPT if a row is damaged. */
int diff_arts_load(struct diff_art **out, size_t *n, fks_store *s, int64_t snap_id);

/* A map as the public type: a buffer of runs, reused from load to load
** (caller frees v). */
struct diff_runs {
    fks_run *v;
    size_t n, alloc;
};
/* Replaces r's contents with m's runs. */
int diff_runs_set(struct diff_runs *r, const pm_map *m);
/* Replaces r's contents with artifact art_id's complete map (map.c). */
int diff_runs_load(struct diff_runs *r, fks_store *s, int64_t art_id);

#endif
