/* test_pmap.c: page maps: coalescing, overlay against a brute-force model,
** and the checker that guards maps read from the catalog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pmap.h"

static void test_push_coalesces(void **state)
{
    (void)state;
    pm_map m = {0};
    for (uint64_t i = 0; i < 10; i++)
        assert_int_equal(pm_push(&m, i, 100 + (int64_t)i), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.r[0].npages, 10);
    assert_int_equal(pm_push(&m, 10, 500), 0);      /* id jumps: new run */
    assert_int_equal(pm_push(&m, 12, 501), 0);      /* page number jumps */
    assert_int_equal(m.n, 3);
    assert_int_equal(pm_push(&m, 13, PM_NEW), 0);   /* new pages never join old ids */
    assert_int_equal(m.n, 4);
    pm_free(&m);
}

/* Expands a map into page -> id (0 = zero page). */
static void expand(const pm_map *m, int64_t *out, uint64_t n)
{
    memset(out, 0, n * sizeof *out);
    for (size_t i = 0; i < m->n; i++)
        for (uint64_t k = 0; k < m->r[i].npages; k++)
            out[m->r[i].pgno + k] = m->r[i].page + (int64_t)k;
}

static void test_overlay_random(void **state)
{
    (void)state;
    srand(7);
    enum { N = 300 };
    for (int iter = 0; iter < 2000; iter++) {
        int64_t base_a[N], want[N], got[N];
        pm_map base = {0}, cover = {0}, diff = {0}, out = {0};
        int64_t next = 1;
        for (uint64_t p = 0; p < N; p++) {
            int r = rand() % 10;
            if (r < 3)
                continue;                          /* zero page */
            if (r < 5)
                next += rand() % 5;                /* id jump */
            assert_int_equal(pm_push(&base, p, next++), 0);
        }
        expand(&base, base_a, N);
        memcpy(want, base_a, sizeof want);
        /* Random cover extents; inside them random pages or zeros. */
        uint64_t p = (uint64_t)(rand() % 20);
        while (p < N) {
            uint64_t len = 1 + (uint64_t)(rand() % 12);
            if (p + len > N)
                len = N - p;
            assert_int_equal(pm_push_run(&cover, p, len, 0), 0);
            for (uint64_t k = p; k < p + len; k++) {
                if (rand() % 4 == 0) {
                    want[k] = 0;
                } else {
                    int64_t id = 10000 + (int64_t)k;
                    want[k] = id;
                    assert_int_equal(pm_push(&diff, k, id), 0);
                }
            }
            p += len + (uint64_t)(rand() % 30);
        }
        /* A Diff's delta: the cover as zeros, its pages over it (ingest.c);
        ** the child's map: the delta over the base (map.c). */
        pm_map delta = {0};
        assert_int_equal(pm_apply(&delta, &cover, &diff, 0), 0);
        assert_int_equal(pm_check_delta(&delta, N), 0);
        assert_int_equal(pm_apply(&out, &base, &delta, 1), 0);
        pm_free(&delta);
        assert_int_equal(pm_check(&out, N), 0);
        expand(&out, got, N);
        assert_memory_equal(got, want, sizeof want);
        /* Maximal runs: no two neighbours could have been merged. */
        for (size_t i = 1; i < out.n; i++)
            assert_false(out.r[i - 1].pgno + out.r[i - 1].npages == out.r[i].pgno &&
                         out.r[i - 1].page + (int64_t)out.r[i - 1].npages == out.r[i].page);
        pm_free(&base);
        pm_free(&cover);
        pm_free(&diff);
        pm_free(&out);
    }
}

static void test_check_rejects(void **state)
{
    (void)state;
    pm_map m = {0};
    assert_int_equal(pm_push_run(&m, 5, 10, 1), 0);
    assert_int_equal(pm_check(&m, 15), 0);
    assert_int_not_equal(pm_check(&m, 14), 0);      /* past the end */
    pm_run bad[] = {{5, 3, 1}, {6, 2, 9}};          /* overlapping */
    pm_map o = {bad, 2, 2};
    assert_int_not_equal(pm_check(&o, 100), 0);
    pm_run neg[] = {{0, 1, -4}};
    pm_map ng = {neg, 1, 1};
    assert_int_not_equal(pm_check(&ng, 100), 0);
    pm_run wrap[] = {{0, 4, PM_NEW - 2}};
    pm_map w = {wrap, 1, 1};
    assert_int_not_equal(pm_check(&w, 100), 0);
    pm_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_coalesces),
        cmocka_unit_test(test_overlay_random),
        cmocka_unit_test(test_check_rejects),
    };
    return cmocka_run_group_tests_name("pmap", tests, NULL, NULL);
}
