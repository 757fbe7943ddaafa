/* test_lease.c: what lazy restore keeps in the catalog (lease.c). A lease
** on a snapshot's pages keeps them through rmi + gc and an image opened
** before the rmi still reads them; releasing it lets gc free them; a lease
** of a process that is gone lives until it expires. Working sets: put and
** get, a child gets its nearest ancestor's, a damaged blob is refused. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "forkstore.h"

#define PG 4096
#define NP 64

static char dir[256], mem[256], vm[256];

static void put(const char *path, size_t np, unsigned seed)
{
    uint8_t *b = calloc(np, PG);
    assert_non_null(b);
    for (size_t i = 0; i < np * PG; i++)
        b[i] = (uint8_t)((i / PG) % 3 ? (seed = seed * 1103515245u + 12345u) >> 16 : 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, np * PG), (ssize_t)(np * PG));
    close(fd);
    free(b);
}

static void ingest(fks_store *s, const char *tag, const char *parent, unsigned seed)
{
    put(mem, NP, seed);
    put(vm, 1, seed + 1);
    fks_artifact_in a[] = {{"memory", mem, 0}, {"vmstate", vm, 0}};
    fks_ingest_opts o = {.tag = tag, .parent = parent, .artifacts = a, .n_artifacts = 2};
    assert_int_equal(fks_ingest(NULL, s, &o), 0);
}

static uint64_t gc_freed(fks_store *s)
{
    fks_gc_report r;
    fks_gc_opts o = {0};
    assert_int_equal(fks_gc(&r, s, &o), 0);
    return r.pages_freed;
}

static int count_row(void *arg, int ncol, const char *const *names, const char *const *values, const int *types)
{
    (void)ncol, (void)names, (void)types;
    *(long *)arg = atol(values[0]);
    return 0;
}

static long count(fks_store *s, const char *sql)
{
    long n = -1;
    assert_int_equal(fks_sql(s, sql, count_row, &n), 0);
    return n;
}

static void test_lease(void **state)
{
    (void)state;
    assert_int_equal(fks_init(dir, 1 << 20), 0);
    fks_store *s;
    assert_int_equal(fks_open(&s, dir, 0), 0);
    ingest(s, "a", NULL, 1);
    fks_image *im;
    assert_int_equal(fks_image_open(&im, s, "a", "memory"), 0);
    uint8_t *before = malloc((size_t)NP * PG), *after = malloc((size_t)NP * PG);
    assert_non_null(before);
    assert_non_null(after);
    assert_int_equal(fks_image_read(im, 0, NP, before), 0);
    size_t nruns;
    const fks_run *runs = fks_image_runs(im, &nruns);
    fks_lease *l;
    assert_int_equal(fks_lease_take(&l, s, "a", runs, nruns, 60), 0);
    assert_true(fks_lease_id(l) > 0);
    assert_int_equal(count(s, "SELECT count(*) FROM lease"), 1);
    assert_int_equal(fks_lease_renew(l), 0);
    /* rmi + gc: the leased pages stay and still read back */
    assert_int_equal(fks_rmi(s, "a", 0), 0);
    assert_int_equal(gc_freed(s), 0);
    assert_int_equal(fks_image_read(im, 0, NP, after), 0);
    assert_memory_equal(before, after, (size_t)NP * PG);
    /* released: gc frees them */
    assert_int_equal(fks_lease_release(l), 0);
    assert_int_equal(count(s, "SELECT count(*) FROM lease"), 0);
    assert_true(gc_freed(s) > 0);
    fks_image_close(im);

    /* a lease whose holder is gone (another pid, another start time) lives
    ** until it expires, then gc deletes it */
    ingest(s, "b", NULL, 2);
    assert_int_equal(fks_image_open(&im, s, "b", "memory"), 0);
    runs = fks_image_runs(im, &nruns);
    assert_int_equal(fks_lease_take(&l, s, "b", runs, nruns, 1), 0);
    fks_image_close(im);
    fks_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sqlite3 %s/catalog.db \"UPDATE lease SET pid = 999999999, start_time = -5\"", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(fks_open(&s, dir, 0), 0);
    assert_int_equal(fks_rmi(s, "b", 0), 0);
    assert_int_equal(gc_freed(s), 0);
    assert_int_equal(count(s, "SELECT count(*) FROM lease"), 1);
    usleep(1200 * 1000);
    assert_true(gc_freed(s) > 0);
    assert_int_equal(count(s, "SELECT count(*) FROM lease"), 0);
    /* its holder's release finds it gone: not an error worth failing on */
    fks_lease_release(l);
    free(before);
    free(after);
    fks_close(s);
}

static void test_working_set(void **state)
{
    (void)state;
    fks_store *s;
    assert_int_equal(fks_open(&s, dir, 0), 0);
    ingest(s, "p", NULL, 3);
    ingest(s, "c", "p", 4);
    uint64_t *ws;
    size_t n;
    char from[129];
    assert_int_equal(fks_working_set_get(&ws, &n, from, sizeof from, s, "c"), 0);
    assert_null(ws);
    assert_int_equal(n, 0);
    uint64_t pages[] = {5, 1, 63, 2};
    assert_int_equal(fks_working_set_put(s, "p", pages, 4), 0);
    assert_int_equal(fks_working_set_get(&ws, &n, from, sizeof from, s, "c"), 0);   /* the parent's */
    assert_int_equal(n, 4);
    assert_memory_equal(ws, pages, sizeof pages);
    assert_string_equal(from, "p");
    free(ws);
    uint64_t mine[] = {7};
    assert_int_equal(fks_working_set_put(s, "c", mine, 1), 0);
    assert_int_equal(fks_working_set_get(&ws, &n, from, sizeof from, s, "c"), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ws[0], 7);
    assert_string_equal(from, "c");
    free(ws);
    assert_int_equal(fks_working_set_put(s, "nope", mine, 1), FKS_ENOTFOUND);
    fks_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sqlite3 %s/catalog.db \"UPDATE working_set SET npages = 3\"", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(fks_open(&s, dir, 0), 0);
    assert_int_equal(fks_working_set_get(&ws, &n, from, sizeof from, s, "c"), FKS_ECORRUPT);
    assert_null(ws);
    fks_close(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/fks-lease-%d", (int)getpid());
    snprintf(mem, sizeof mem, "/tmp/fks-lease-%d.mem", (int)getpid());
    snprintf(vm, sizeof vm, "/tmp/fks-lease-%d.vm", (int)getpid());
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_lease), cmocka_unit_test(test_working_set)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[900];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", dir, mem, vm);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
