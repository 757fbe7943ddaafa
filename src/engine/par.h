/*
** par.h: a small fork-join helper: run fn over [0, n) split across the
** calling thread and a few persistent workers. See par.c.
*/
#ifndef FKS_PAR_H
#define FKS_PAR_H

#include <stddef.h>

typedef struct par par;
/* fn(arg, tid, lo, hi) handles items lo .. hi-1; tid in [0, par_threads). */
typedef void (*par_fn)(void *arg, int tid, size_t lo, size_t hi);

/* The most threads a par runs (the caller included): $FORKSTORE_THREADS
** may ask for 1 .. PAR_MAX_THREADS, and callers size per-thread arrays
** with it (par_threads(p) <= PAR_MAX_THREADS). */
#define PAR_MAX_THREADS 64

/* Up to max_threads threads in all (the caller counts as one; at most
** PAR_MAX_THREADS); 0 means one per online CPU, capped at 8;
** $FORKSTORE_THREADS overrides. */
int par_new(par **out, int max_threads);
void par_free(par *p);
int par_threads(const par *p);
/* Runs fn over [0, n) and returns when every part is done. */
void par_run(par *p, par_fn fn, void *arg, size_t n);

#endif
