/* test_image.c: page-level access (fks_image_*, fks_page_*). An image of
** random, repeated and zero pages with a short tail is ingested as a root
** and as a child; every page read through an image handle, one by
** one and in ranges, equals the file's bytes; ids agree with content
** (equal bytes, equal id); hashes find the same ids; reads past the end
** are refused; the counters count. */
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
#define NP 300
#define TAIL 1000                      /* bytes of the short last page */
#define SIZE ((NP - 1) * PG + TAIL)

static char dir[256], tmp[256];
static unsigned rs = 7;

static unsigned rnd(void)
{
    rs = rs * 1103515245u + 12345u;
    return rs >> 8;
}

static void put(const char *path, const uint8_t *img, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)len), 0);
    for (size_t p = 0; p * PG < len; p++) {
        size_t n = len - p * PG < PG ? len - p * PG : PG;
        assert_int_equal(pwrite(fd, img + p * PG, n, (off_t)(p * PG)), (ssize_t)n);
    }
    close(fd);
}

static void check_image(fks_store *s, const char *tag, const uint8_t *img)
{
    fks_image *im;
    assert_int_equal(fks_image_open(&im, s, tag, "disk"), 0);
    fks_image_info info;
    fks_image_info_get(&info, im);
    assert_int_equal(info.size, SIZE);
    assert_int_equal(info.npages, NP);
    uint8_t *buf = malloc((size_t)NP * PG);
    assert_non_null(buf);
    uint64_t nonzero = 0;
    for (uint64_t p = 0; p < NP; p++) {
        uint8_t page[PG];
        assert_int_equal(fks_image_read(im, p, 1, page), 0);
        size_t n = p == NP - 1 ? TAIL : PG;
        assert_memory_equal(page, img + p * PG, n);
        for (size_t k = n; k < PG; k++)
            assert_int_equal(page[k], 0);
        int zero = 1;
        for (size_t k = 0; k < n && zero; k++)
            zero = img[p * PG + k] == 0;
        int64_t id;
        uint8_t h[16];
        assert_int_equal(fks_image_page(&id, h, im, p), 0);
        assert_int_equal(id == 0, zero);
        if (!zero) {
            nonzero++;
            int64_t found;
            assert_int_equal(fks_page_find(&found, s, h), 0);
            assert_int_equal(found, id);
            uint32_t len;
            assert_int_equal(fks_page_read(page, &len, s, id), 0);
            assert_int_equal(len, n);
            assert_memory_equal(page, img + p * PG, n);
        }
    }
    assert_int_equal(info.stored_pages, nonzero);
    assert_int_equal(fks_image_read(im, 0, NP, buf), 0);
    assert_memory_equal(buf, img, SIZE);
    assert_int_equal(fks_image_read(im, NP - 1, 2, buf), FKS_EINVAL);
    fks_image_stats st;
    fks_image_stats_get(&st, im);
    assert_int_equal(st.pages_read, 2 * nonzero);
    assert_int_equal(st.zero_pages, 2 * (NP - nonzero));
    assert_true(st.blocks_decoded > 0 && st.bytes_decoded >= st.blocks_decoded);
    size_t nr;
    const fks_run *r = fks_image_runs(im, &nr);
    uint64_t covered = 0;
    for (size_t i = 0; i < nr; i++)
        covered += r[i].npages;
    assert_int_equal(covered, nonzero);
    free(buf);
    fks_image_close(im);
}

static void test_image(void **state)
{
    (void)state;
    uint8_t *img = calloc(NP, PG);
    assert_non_null(img);
    for (int p = 0; p < NP; p++) {
        int kind = (int)(rnd() % 4);
        if (kind == 1)
            for (int k = 0; k < PG; k++)
                img[p * PG + k] = (uint8_t)rnd();
        else if (kind == 2)
            memset(img + p * PG, 'r', PG);     /* repeated: one page id */
    }
    memset(img + (NP - 1) * PG, 't', TAIL);
    fks_store *s;
    assert_int_equal(fks_init(dir, 0), 0);
    assert_int_equal(fks_open(&s, dir, 0), 0);
    put(tmp, img, SIZE);
    fks_artifact_in a[] = {{"disk", tmp, 0}};
    fks_ingest_opts o = {.tag = "root", .artifacts = a, .n_artifacts = 1};
    int irc = fks_ingest(NULL, s, &o);
    if (irc)
        fprintf(stderr, "ingest: %s\n", fks_errmsg());
    assert_int_equal(irc, 0);
    check_image(s, "root", img);
    /* A child: some pages rewritten, one zeroed, the tail kept. */
    for (int i = 0; i < 40; i++) {
        int p = (int)(rnd() % (NP - 1));
        if (i == 0)
            memset(img + p * PG, 0, PG);
        else
            for (int k = 0; k < PG; k++)
                img[p * PG + k] = (uint8_t)rnd();
    }
    put(tmp, img, SIZE);
    fks_artifact_in d[] = {{"disk", tmp, 0}};
    fks_ingest_opts od = {.tag = "child", .parent = "root", .artifacts = d, .n_artifacts = 1};
    assert_int_equal(fks_ingest(NULL, s, &od), 0);
    check_image(s, "child", img);
    fks_image *im;
    assert_int_equal(fks_image_open(&im, s, "nope", "disk"), FKS_ENOTFOUND);
    assert_int_equal(fks_image_open(&im, s, "root", "memory"), FKS_ENOTFOUND);
    uint8_t h[16] = {1};
    int64_t id;
    assert_int_equal(fks_page_find(&id, s, h), FKS_ENOTFOUND);
    fks_close(s);
    free(img);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/fks-image-%d", (int)getpid());
    snprintf(tmp, sizeof tmp, "/tmp/fks-image-%d.mem", (int)getpid());
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_image)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, tmp);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
