/* test_threads.c: the thread rule of forkstore.h, tested. Several threads
** of one process, each with its own fks_open() handle on one store, run
** ingest (their own chains: a root and Diffs on it, pages shared between
** the threads and pages of their own), restore and stats at the same
** time, and a gc thread runs beside them; every snapshot then restores
** byte-identically and verify finds nothing wrong. fks_errmsg() is per
** thread: a failure provoked in one thread does not show in another's
** message. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "forkstore.h"

#define PG 4096
#define NPAGES 512        /* 2 MiB images */
#define THREADS 4
#define DEPTH 4

static char tmpdir[256], store[300];

typedef struct job {
    int k;
    char err[1200];
    uint8_t *img;        /* the current image, NPAGES pages */
} job;

/* Page i of thread k's image at step d: shared between threads for i
** below NPAGES / 2 (the same bytes in every thread), else its own; one in
** four pages zero. */
static void fill(uint8_t *p, int k, int d, size_t i)
{
    if (i % 4 == 3) {
        memset(p, 0, PG);
        return;
    }
    unsigned seed = (unsigned)(i * 2654435761u) ^ (unsigned)(d * 40503u) ^ (i < NPAGES / 2 ? 0u : (unsigned)(k + 1) * 97u);
    for (int b = 0; b < PG; b++) {
        seed = seed * 1103515245u + 12345u;
        p[b] = (uint8_t)("forkstore pages "[(seed >> 16) % 16] + (b % 7 == 0 ? (seed >> 24) : 0));
    }
}

static int write_at(const char *path, const uint8_t *buf, size_t npages, const uint8_t *mask)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)npages * PG) != 0)
        return -1;
    for (size_t i = 0; i < npages; i++)
        if (!mask || mask[i])
            if (pwrite(fd, buf + i * PG, PG, (off_t)(i * PG)) != PG)
                return -1;
    return close(fd);
}

static int same_file(const char *path, const uint8_t *want, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    uint8_t *got = malloc(len + 1);
    ssize_t n = read(fd, got, len + 1);
    close(fd);
    int ok = n == (ssize_t)len && memcmp(got, want, len) == 0;
    free(got);
    return ok;
}

static void *worker(void *arg)
{
    job *j = arg;
    fks_store *s = NULL;
    char path[1024], tag[64], parent[64], out[700];
    int rc = fks_open(&s, store, 0);
    if (rc) {
        snprintf(j->err, sizeof j->err, "open: %s", fks_errmsg());
        return NULL;
    }
    j->img = calloc(NPAGES, PG);
    uint8_t mask[NPAGES];
    for (int d = 0; d < DEPTH && !j->err[0]; d++) {
        memset(mask, 0, sizeof mask);
        for (size_t i = 0; i < NPAGES; i++)
            if (d == 0 || (i + (size_t)d) % 5 == 0) {      /* a Diff rewrites a fifth */
                fill(j->img + i * PG, j->k, d, i);
                mask[i] = 1;
            }
        snprintf(path, sizeof path, "%s/in-%d-%d", tmpdir, j->k, d);
        if (write_at(path, j->img, NPAGES, d ? mask : NULL) != 0) {
            snprintf(j->err, sizeof j->err, "write %s", path);
            break;
        }
        snprintf(tag, sizeof tag, "t%d-%d", j->k, d);
        fks_artifact_in a = {"memory", path, d > 0};
        fks_ingest_opts o = {.tag = tag, .parent = d ? parent : NULL, .artifacts = &a, .n_artifacts = 1};
        if ((rc = fks_ingest(NULL, s, &o)) != 0) {
            snprintf(j->err, sizeof j->err, "ingest %s: %s", tag, fks_errmsg());
            break;
        }
        snprintf(out, sizeof out, "%s/out-%d-%d", tmpdir, j->k, d);
        if ((rc = fks_restore(NULL, s, tag, out, 0, NULL, NULL)) != 0) {
            snprintf(j->err, sizeof j->err, "restore %s: %s", tag, fks_errmsg());
            break;
        }
        snprintf(path, sizeof path, "%s/memory.bin", out);
        if (!same_file(path, j->img, (size_t)NPAGES * PG))
            snprintf(j->err, sizeof j->err, "%s restores to other bytes", tag);
        fks_store_stats st;
        if (fks_store_stats_get(&st, s) != 0)
            snprintf(j->err, sizeof j->err, "stats: %s", fks_errmsg());
        /* fks_errmsg is per thread: provoke a failure here, check it
        ** names this thread's tag, after the others ran theirs. */
        char missing[64];
        snprintf(missing, sizeof missing, "missing-of-%d", j->k);
        if (fks_restore(NULL, s, missing, out, 0, NULL, NULL) != FKS_ENOTFOUND)
            snprintf(j->err, sizeof j->err, "restore of %s did not fail", missing);
        usleep(1000);
        if (!strstr(fks_errmsg(), missing))
            snprintf(j->err, sizeof j->err, "errmsg is not this thread's: %s", fks_errmsg());
        snprintf(parent, sizeof parent, "%s", tag);
    }
    fks_close(s);
    return NULL;
}

static void *gc_thread(void *arg)
{
    job *j = arg;
    fks_store *s = NULL;
    if (fks_open(&s, store, 0) != 0) {
        snprintf(j->err, sizeof j->err, "gc open: %s", fks_errmsg());
        return NULL;
    }
    for (int i = 0; i < 5; i++) {
        fks_gc_report r;
        fks_gc_opts o = {0};
        int rc = fks_gc(&r, s, &o);
        if (rc != 0 && rc != FKS_ELOCKED) {
            snprintf(j->err, sizeof j->err, "gc: %s", fks_errmsg());
            break;
        }
        usleep(20000);
    }
    fks_close(s);
    return NULL;
}

static void test_threads_one_handle_each(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fks-threads.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(store, sizeof store, "%s/store", tmpdir);
    assert_int_equal(fks_init(store, 1 << 20), 0);

    job jobs[THREADS + 1];
    pthread_t th[THREADS + 1];
    memset(jobs, 0, sizeof jobs);
    for (int k = 0; k < THREADS; k++) {
        jobs[k].k = k;
        assert_int_equal(pthread_create(&th[k], NULL, worker, &jobs[k]), 0);
    }
    assert_int_equal(pthread_create(&th[THREADS], NULL, gc_thread, &jobs[THREADS]), 0);
    for (int k = 0; k <= THREADS; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k <= THREADS; k++) {
        if (jobs[k].err[0])
            fail_msg("thread %d: %s", k, jobs[k].err);
    }

    /* Afterwards, from this thread: every snapshot is there, the last of
    ** each chain restores to the thread's final image, verify is clean,
    ** and the shared half of the pages was stored once, not per thread. */
    fks_store *s;
    assert_int_equal(fks_open(&s, store, 0), 0);
    fks_snapinfo *list;
    size_t n;
    assert_int_equal(fks_list(&list, &n, s), 0);
    free(list);
    assert_int_equal(n, THREADS * DEPTH);
    for (int k = 0; k < THREADS; k++) {
        char tag[64], out[600], path[700];
        snprintf(tag, sizeof tag, "t%d-%d", k, DEPTH - 1);
        snprintf(out, sizeof out, "%s/final-%d", tmpdir, k);
        assert_int_equal(fks_restore(NULL, s, tag, out, 0, NULL, NULL), 0);
        snprintf(path, sizeof path, "%s/memory.bin", out);
        assert_true(same_file(path, jobs[k].img, (size_t)NPAGES * PG));
        free(jobs[k].img);
    }
    fks_verify_report *v;
    assert_int_equal(fks_verify(&v, s, 100, NULL, NULL), 0);
    assert_int_equal(v->n_problems, 0);
    assert_int_equal(v->bad_pages + v->missing_pages, 0);
    fks_verify_free(v);
    fks_store_stats st;
    assert_int_equal(fks_store_stats_get(&st, s), 0);
    /* Distinct non-zero pages: the roots' shared half once, each thread's
    ** own half, and each Diff's fifth (shared or own alike). */
    uint64_t nz_half = 0;
    for (size_t i = 0; i < NPAGES / 2; i++)
        nz_half += i % 4 != 3;
    assert_true(st.pages < nz_half * (THREADS + 1) + (uint64_t)THREADS * (DEPTH - 1) * NPAGES / 5 + 64);
    fks_close(s);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_one_handle_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
