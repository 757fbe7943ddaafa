/* test_stats.c: fks_runs_diff, the linear merge of two page maps, against a
** brute-force page-by-page model; and its refusal of malformed maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "forkstore.h"

enum { N = 400 };

/* A random map over N pages: zero pages, runs of consecutive ids, jumps;
** ids drawn from a small range so two maps often agree. Writes the page ->
** id model (0 = zero page) into ids. */
static size_t random_map(fks_run *r, int64_t *ids, const int64_t *like)
{
    size_t n = 0;
    memset(ids, 0, N * sizeof *ids);
    for (uint64_t p = 0; p < N; p++) {
        int k = rand() % 10;
        int64_t id;
        if (k < 3)
            continue;                              /* zero page */
        else if (like && k < 7 && like[p])
            id = like[p];                          /* same page as the other map */
        else
            id = 1 + rand() % 600;
        ids[p] = id;
        if (n && r[n - 1].pgno + r[n - 1].npages == p && r[n - 1].page_id + (int64_t)r[n - 1].npages == id)
            r[n - 1].npages++;
        else
            r[n++] = (fks_run){p, 1, id};
    }
    return n;
}

static void test_diff_random(void **state)
{
    (void)state;
    srand(11);
    for (int iter = 0; iter < 3000; iter++) {
        fks_run a[N], b[N];
        int64_t ia[N], ib[N];
        size_t na = random_map(a, ia, NULL);
        size_t nb = random_map(b, ib, ia);
        if (iter % 7 == 0)
            nb = 0, memset(ib, 0, sizeof ib);      /* one side empty */
        fks_range *out;
        size_t n;
        uint64_t pages;
        assert_int_equal(fks_runs_diff(&out, &n, &pages, a, na, b, nb), 0);
        /* Expand the answer and compare with the model, page by page. */
        char want[N] = {0}, got[N] = {0};
        uint64_t nwant = 0;
        for (int p = 0; p < N; p++)
            nwant += want[p] = ia[p] != ib[p];
        for (size_t i = 0; i < n; i++) {
            assert_true(out[i].npages > 0);
            if (i)   /* sorted, and merged: never touching */
                assert_true(out[i].pgno > out[i - 1].pgno + out[i - 1].npages);
            for (uint64_t k = 0; k < out[i].npages; k++) {
                assert_true(out[i].pgno + k < N);
                got[out[i].pgno + k] = 1;
            }
        }
        assert_memory_equal(got, want, N);
        assert_int_equal(pages, nwant);
        free(out);
    }
}

static void test_diff_edges(void **state)
{
    (void)state;
    fks_range *out;
    size_t n;
    uint64_t pages;
    assert_int_equal(fks_runs_diff(&out, &n, &pages, NULL, 0, NULL, 0), 0);
    assert_null(out);
    assert_int_equal(n, 0);
    assert_int_equal(pages, 0);
    /* Same pages on the same diagonal, split differently: no difference. */
    fks_run a[] = {{0, 10, 100}}, b[] = {{0, 4, 100}, {4, 6, 104}};
    assert_int_equal(fks_runs_diff(&out, &n, &pages, a, 1, b, 2), 0);
    assert_int_equal(n, 0);
    /* One page shifted: ids 100..109 at 0..9 against 101..110 at 0..9. */
    fks_run c[] = {{0, 10, 101}};
    assert_int_equal(fks_runs_diff(&out, &n, &pages, a, 1, c, 1), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].pgno, 0);
    assert_int_equal(out[0].npages, 10);
    free(out);
    /* Far page numbers (a 64 GiB image) cost nothing. */
    fks_run d[] = {{1ull << 24, 1, 7}}, e[] = {{(1ull << 24) + 1, 2, 8}};
    assert_int_equal(fks_runs_diff(&out, &n, &pages, d, 1, e, 1), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].pgno, 1ull << 24);
    assert_int_equal(out[0].npages, 3);
    assert_int_equal(pages, 3);
    free(out);
}

static void test_diff_refuses_bad_maps(void **state)
{
    (void)state;
    fks_range *out = (fks_range *)1;
    size_t n = 1;
    uint64_t pages = 1;
    fks_run unsorted[] = {{10, 2, 1}, {5, 1, 9}}, overlap[] = {{0, 4, 1}, {3, 1, 9}},
            empty[] = {{0, 0, 1}}, badid[] = {{0, 1, 0}}, wrap[] = {{UINT64_MAX - 1, 4, 1}};
    assert_int_equal(fks_runs_diff(&out, &n, &pages, unsorted, 2, NULL, 0), FKS_EINVAL);
    assert_null(out);
    assert_int_equal(n, 0);
    assert_non_null(strstr(fks_errmsg(), "out of order"));
    assert_int_equal(fks_runs_diff(&out, &n, &pages, NULL, 0, overlap, 2), FKS_EINVAL);
    assert_int_equal(fks_runs_diff(&out, &n, &pages, empty, 1, NULL, 0), FKS_EINVAL);
    assert_int_equal(fks_runs_diff(&out, &n, &pages, badid, 1, NULL, 0), FKS_EINVAL);
    assert_int_equal(fks_runs_diff(&out, &n, &pages, wrap, 1, NULL, 0), FKS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_random),
        cmocka_unit_test(test_diff_edges),
        cmocka_unit_test(test_diff_refuses_bad_maps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
