/*
** par.c: fork-join over persistent worker threads.
**
** Ingest and restore work in batches of a few hundred pages; each batch
** has a parallel step (hash + zero check, compression, decode + verify)
** between serial steps (catalog lookups, appends, writes). Workers are
** created once and woken per batch with a generation counter under one
** mutex; the caller takes part as thread 0, so with one CPU nothing is
** handed off at all. Items are split in equal contiguous slices: pages
** cost about the same, and contiguous slices keep each thread on its own
** cache lines.
*/
#include "par.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

struct par {
    int nthreads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;
    int pending;
    int quit;
    par_fn fn;
    void *arg;
    size_t n;
};

struct worker {
    par *p;
    int tid;
};

static void slice(const par *p, int tid, size_t *lo, size_t *hi)
{
    size_t n = p->n, k = (size_t)p->nthreads;
    *lo = n * (size_t)tid / k;
    *hi = n * (size_t)(tid + 1) / k;
}

static void *worker_main(void *a)
{
    struct worker w = *(struct worker *)a;
    par *p = w.p;
    free(a);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        size_t lo, hi;
        slice(p, w.tid, &lo, &hi);
        if (lo < hi)
            p->fn(p->arg, w.tid, lo, hi);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int par_new(par **out, int max_threads)
{
    assert(max_threads <= PAR_MAX_THREADS);
    par *p = calloc(1, sizeof *p);
    if (!p)
        return fks__err(FKS_ENOMEM, "out of memory");
    int n = max_threads;
    const char *e = getenv("FORKSTORE_THREADS");
    if (e && *e) {
        /* decimal digits only: no sign, blank, hex or trailing junk */
        long v = 0;
        size_t k = 0;
        for (; e[k] >= '0' && e[k] <= '9' && v <= PAR_MAX_THREADS; k++)
            v = v * 10 + (e[k] - '0');
        if (e[k] || v < 1 || v > PAR_MAX_THREADS) {
            char shown[64];
            fks__esc(shown, sizeof shown, e, 40);
            free(p);
            return fks__err(FKS_EINVAL, "FORKSTORE_THREADS='%s' is not a number of threads from 1 to %d "
                            "(unset it for one per CPU, at most 8)", shown, PAR_MAX_THREADS);
        }
        n = (int)v;
    }
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
        if (n > 8)
            n = 8;
    }
    p->nthreads = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->tids = calloc((size_t)n, sizeof *p->tids);
    if (!p->tids) {
        par_free(p);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    for (int i = 1; i < n; i++) {
        struct worker *w = malloc(sizeof *w);
        if (!w)
            break;
        *w = (struct worker){p, i};
        if (pthread_create(&p->tids[i], NULL, worker_main, w) != 0) {
            free(w);
            break;   /* fewer threads is fine */
        }
        p->nthreads++;
    }
    *out = p;
    return 0;
}

int par_threads(const par *p)
{
    return p->nthreads;
}

void par_run(par *p, par_fn fn, void *arg, size_t n)
{
    if (p->nthreads == 1 || n < 2) {
        if (n)
            fn(arg, 0, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->pending = p->nthreads - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    size_t lo, hi;
    slice(p, 0, &lo, &hi);
    if (lo < hi)
        fn(arg, 0, lo, hi);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void par_free(par *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nthreads; i++)
        pthread_join(p->tids[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->tids);
    free(p);
}
