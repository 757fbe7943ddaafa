/* test_util.c: tag and name validation, the error message, hashing, the
** progress reporter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "util.h"

static void test_tags(void **state)
{
    (void)state;
    const char *good[] = {"a", "s00", "v1.2+build_3-x", "A.b"};
    const char *bad[] = {"", ".hidden", "-opt", "a/b", "../x", "/abs", "sp ace", "t\n", "é"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(fks_check_tag(good[i]), 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(fks_check_tag(bad[i]), FKS_EINVAL);
        assert_non_null(strstr(fks_errmsg(), "[A-Za-z0-9._+-]"));
    }
    char longt[130];
    memset(longt, 'a', 129);
    longt[129] = 0;
    assert_int_equal(fks_check_tag(longt), FKS_EINVAL);
    longt[128] = 0;
    assert_int_equal(fks_check_tag(longt), 0);
    longt[65] = 0;
    assert_int_equal(fks_check_name(longt), FKS_EINVAL);
}

static void test_errctx(void **state)
{
    (void)state;
    fks__err(FKS_EIO, "read %s", "x");
    fks__errctx(FKS_EIO, "ingest %s", "t1");
    assert_string_equal(fks_errmsg(), "ingest t1: read x");
}

static void test_zero_and_hash(void **state)
{
    (void)state;
    uint8_t p[4096] = {0};
    assert_true(fks__is_zero(p, sizeof p));
    p[4095] = 1;
    assert_false(fks__is_zero(p, sizeof p));
    p[4095] = 0;
    p[3] = 1;
    assert_false(fks__is_zero(p, sizeof p));
    uint8_t a[16], b[16];
    fks__hash(a, p, sizeof p);
    p[3] = 2;
    fks__hash(b, p, sizeof p);
    assert_memory_not_equal(a, b, 16);
    char hex[33];
    fks__hex16(hex, a);
    assert_int_equal(strlen(hex), 32);
}

static void test_esc(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(fks__esc(out, sizeof out, "a\nb\x1b[2J\t\x7f", 100), 9);
    assert_string_equal(out, "a\\nb\\x1b[2J\\t\\x7f");
    /* cut to fit: never a half escape, always NUL-terminated */
    assert_int_equal(fks__esc(out, 4, "ab\ncd", 100), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(fks__esc(out, sizeof out, "abcdef", 3), 3);
    assert_string_equal(out, "abc");
    /* a bad tag's message shows it escaped */
    assert_int_equal(fks_check_tag("x\ny"), FKS_EINVAL);
    assert_non_null(strstr(fks_errmsg(), "'x\\ny'"));
    assert_null(strchr(fks_errmsg(), '\n'));
}

struct calls {
    uint64_t done[16], total[16];
    int n;
};

static void record(void *arg, uint64_t done, uint64_t total)
{
    struct calls *c = arg;
    assert_true(c->n < 16);
    c->done[c->n] = done;
    c->total[c->n++] = total;
}

static void nap(void)
{
    struct timespec ts = {0, (long)(FKS__PROGRESS_S * 1e9) + 10000000};
    nanosleep(&ts, NULL);
}

static void test_progress(void **state)
{
    (void)state;
    struct calls c = {0};
    fks__progress p;
    fks__progress_init(&p, record, &c, 10);
    fks__progress_add(&p, 4);           /* too soon after init: no call */
    assert_int_equal(c.n, 0);
    nap();
    fks__progress_add(&p, 4);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.done[0], 8);
    assert_int_equal(c.total[0], 10);
    fks__progress_add(&p, 1);           /* throttled */
    assert_int_equal(c.n, 1);
    nap();
    fks__progress_set(&p, 3);           /* a restart: below what was shown */
    assert_int_equal(c.n, 1);
    nap();
    fks__progress_set(&p, 12);          /* past the estimate: below total until the end */
    assert_int_equal(c.n, 2);
    assert_int_equal(c.done[1], 9);
    assert_int_equal(c.total[1], 10);
    nap();
    fks__progress_add(&p, 1);           /* nothing new to show */
    assert_int_equal(c.n, 2);
    fks__progress_end(&p);              /* the final call, with the count */
    assert_int_equal(c.n, 3);
    assert_int_equal(c.done[2], 13);
    assert_int_equal(c.total[2], 13);
    fks__progress_end(&p);              /* once */
    nap();
    fks__progress_add(&p, 100);
    assert_int_equal(c.n, 3);
    /* An operation with nothing to do still ends with done == total. */
    struct calls z = {0};
    fks__progress_init(&p, record, &z, 0);
    fks__progress_total(&p, 0);
    fks__progress_end(&p);
    assert_int_equal(z.n, 1);
    assert_int_equal(z.done[0], 0);
    assert_int_equal(z.total[0], 0);
    /* No callback: counts only. */
    fks__progress_init(&p, NULL, NULL, 5);
    fks__progress_add(&p, 5);
    fks__progress_end(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_errctx),
        cmocka_unit_test(test_zero_and_hash),
        cmocka_unit_test(test_esc),
        cmocka_unit_test(test_progress),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
