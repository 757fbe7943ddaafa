/* test_roundtrip.c: randomized chains through the public API. For chains
** of depth 1 to 50 with random sparse diffs (extents at the start and the
** end, single pages, dirtied-zero pages written as data, pages reverted to
** earlier contents, rewritten-identical pages), every snapshot restores
** byte-identical to the image it came from; removing middle snapshots
** keeps every other one exact; restored files have holes for zero pages.
** The expected images are kept in memory and compared byte for byte. */
#include <fcntl.h>
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

static char tmpdir[256];
static unsigned rnd_state = 12345;

static unsigned rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

static void fill_page(uint8_t *p, int kind)
{
    switch (kind) {
    case 0: memset(p, 0, PG); break;
    case 1: for (int i = 0; i < PG; i++) p[i] = (uint8_t)rnd(); break;
    default: for (int i = 0; i < PG; i++) p[i] = (uint8_t)("abc def ghi "[(i + (int)rnd() % 3) % 12]); break;
    }
}

static void write_full(const char *path, const uint8_t *img, size_t npages, int sparse)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(npages * PG)), 0);
    for (size_t i = 0; i < npages; i++) {
        int zero = 1;
        for (int k = 0; k < PG && zero; k++)
            zero = img[i * PG + k] == 0;
        if (sparse && zero)
            continue;
        assert_int_equal(pwrite(fd, img + i * PG, PG, (off_t)(i * PG)), PG);
    }
    close(fd);
}

static void write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static void check_restore(fks_store *s, const char *tag, const uint8_t *img, size_t npages,
                          const uint8_t *vm, size_t vmlen)
{
    char out[512], p[600];
    snprintf(out, sizeof out, "%s/out-%s", tmpdir, tag);
    int rc = fks_restore(NULL, s, tag, out, FKS_RESTORE_FORCE, NULL, NULL);
    if (rc)
        fail_msg("restore %s: %s", tag, fks_errmsg());
    snprintf(p, sizeof p, "%s/memory.bin", out);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    assert_int_equal(st.st_size, npages * PG);
    uint8_t *got = malloc(npages * PG);
    assert_int_equal(pread(fd, got, npages * PG, 0), (ssize_t)(npages * PG));
    if (memcmp(got, img, npages * PG) != 0)
        fail_msg("snapshot %s: restored memory differs", tag);
    /* Zero pages are holes: allocation is at most the non-zero pages. */
    size_t nz = 0;
    for (size_t i = 0; i < npages; i++) {
        int zero = 1;
        for (int k = 0; k < PG && zero; k++)
            zero = img[i * PG + k] == 0;
        nz += !zero;
    }
    assert_true((size_t)st.st_blocks * 512 <= nz * PG + 64 * 1024);
    close(fd);
    free(got);
    snprintf(p, sizeof p, "%s/vmstate", out);
    fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t *v = malloc(vmlen + 1);
    assert_int_equal(read(fd, v, vmlen + 1), (ssize_t)vmlen);
    assert_memory_equal(v, vm, vmlen);
    free(v);
    close(fd);
}

/* One chain of the given depth; returns after checking every snapshot. */
static void run_chain(int depth, size_t npages, int sparse_full)
{
    char dir[300], p[400], vp[400], tag[32], parent[32];
    snprintf(dir, sizeof dir, "%s/store-%d", tmpdir, depth);
    if (fks_init(dir, 1 << 20) != 0)
        fail_msg("init: %s", fks_errmsg());
    fks_store *s;
    assert_int_equal(fks_open(&s, dir, 0), 0);
    size_t bytes = npages * PG;
    uint8_t **img = calloc((size_t)depth + 1, sizeof *img);
    size_t vmlen = 20000 + rnd() % 3000;          /* never a page multiple */
    uint8_t *vm = malloc(vmlen);
    for (size_t i = 0; i < vmlen; i++)
        vm[i] = (uint8_t)rnd();
    snprintf(vp, sizeof vp, "%s/vmstate", tmpdir);
    write_file(vp, vm, vmlen);

    img[0] = malloc(bytes);
    for (size_t i = 0; i < npages; i++)
        fill_page(img[0] + i * PG, (int)(rnd() % 3));
    snprintf(p, sizeof p, "%s/full", tmpdir);
    write_full(p, img[0], npages, sparse_full);
    fks_artifact_in a0[] = {{"memory", p, 0}, {"vmstate", vp, 0}};
    fks_ingest_opts o = {.tag = "s0", .artifacts = a0, .n_artifacts = 2, .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
    if (fks_ingest(NULL, s, &o) != 0)
        fail_msg("ingest s0: %s", fks_errmsg());

    for (int d = 1; d <= depth; d++) {
        img[d] = malloc(bytes);
        memcpy(img[d], img[d - 1], bytes);
        snprintf(p, sizeof p, "%s/diff", tmpdir);
        unlink(p);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
        int next = (int)(rnd() % 6) + 1;
        for (int e = 0; e < next; e++) {
            size_t start = rnd() % npages, len = 1 + rnd() % 9;
            if (e == 0 && d % 3 == 0)
                start = 0;                         /* extent at the start */
            if (e == 1 && d % 4 == 0)
                start = npages - 1;                /* ... and at the end */
            if (start + len > npages)
                len = npages - start;
            for (size_t k = start; k < start + len; k++) {
                uint8_t *pg = img[d] + k * PG;
                int what = (int)(rnd() % 10);
                if (what == 0)
                    memset(pg, 0, PG);             /* dirtied to zero */
                else if (what == 1 && d > 1)        /* reverted to older content */
                    memcpy(pg, img[rnd() % (unsigned)d] + (rnd() % npages) * PG, PG);
                else if (what == 2)
                    ;                              /* rewritten identical */
                else
                    fill_page(pg, 1 + (int)(rnd() % 2));
                assert_int_equal(pwrite(fd, pg, PG, (off_t)(k * PG)), PG);  /* data, even zeros */
            }
        }
        close(fd);
        snprintf(tag, sizeof tag, "s%d", d);
        snprintf(parent, sizeof parent, "s%d", d - 1);
        fks_artifact_in a[] = {{"memory", p, 1}, {"vmstate", vp, 0}};
        fks_ingest_opts od = {.tag = tag, .parent = parent, .artifacts = a, .n_artifacts = 2,
                              .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
        if (fks_ingest(NULL, s, &od) != 0)
            fail_msg("ingest %s: %s", tag, fks_errmsg());
    }
    for (int d = 0; d <= depth; d++) {
        snprintf(tag, sizeof tag, "s%d", d);
        check_restore(s, tag, img[d], npages, vm, vmlen);
    }
    /* Remove every third middle snapshot; the rest stay exact. */
    for (int d = 1; d < depth; d += 3) {
        snprintf(tag, sizeof tag, "s%d", d);
        assert_int_equal(fks_rmi(s, tag, 0), 0);
    }
    fks_gc_report gr;
    if (fks_gc(&gr, s, NULL) != 0)
        fail_msg("gc: %s", fks_errmsg());
    for (int d = 0; d <= depth; d++) {
        if (d >= 1 && d < depth && (d - 1) % 3 == 0)
            continue;
        snprintf(tag, sizeof tag, "s%d", d);
        check_restore(s, tag, img[d], npages, vm, vmlen);
    }
    fks_verify_report *vr;
    assert_int_equal(fks_verify(&vr, s, 100, NULL, NULL), 0);
    for (size_t i = 0; i < vr->n_problems; i++)
        fprintf(stderr, "verify: %s\n", vr->problems[i]);
    assert_int_equal(vr->n_problems, 0);
    fks_verify_free(vr);
    for (int d = 0; d <= depth; d++)
        free(img[d]);
    free(img);
    free(vm);
    fks_close(s);
}

static void test_depths(void **state)
{
    (void)state;
    int depths[] = {1, 2, 5, 13, 50};
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++)
        run_chain(depths[i], 64 + rnd() % 200, (int)(i % 2));
}

/* no_follow (set by import-forkd): an input whose last path component is
** a symbolic link is refused with a message naming it, and the failed
** ingest leaves nothing behind (the tag is still free). */
static void test_no_follow(void **state)
{
    (void)state;
    char dir[300], p[400], link[400];
    snprintf(dir, sizeof dir, "%s/store-nofollow", tmpdir);
    if (fks_init(dir, 1 << 20) != 0)
        fail_msg("init: %s", fks_errmsg());
    fks_store *s;
    assert_int_equal(fks_open(&s, dir, 0), 0);
    uint8_t img[4 * PG];
    for (size_t i = 0; i < 4; i++)
        fill_page(img + i * PG, 1);
    snprintf(p, sizeof p, "%s/nf.full", tmpdir);
    snprintf(link, sizeof link, "%s/nf.link", tmpdir);
    write_full(p, img, 4, 0);
    assert_int_equal(symlink(p, link), 0);

    fks_artifact_in a[] = {{"memory", link, 0}};
    fks_ingest_opts o = {.tag = "nf", .artifacts = a, .n_artifacts = 1, .pause_ms = -1, .snapshot_ms = -1,
                         .diff_bytes = -1, .no_follow = 1};
    assert_int_equal(fks_ingest(NULL, s, &o), FKS_EINVAL);
    if (!strstr(fks_errmsg(), "symbolic link") || !strstr(fks_errmsg(), link))
        fail_msg("message '%s' does not name the symbolic link", fks_errmsg());
    o.no_follow = 0;                          /* an operator's own path may be a link */
    if (fks_ingest(NULL, s, &o) != 0)
        fail_msg("ingest through the link without no_follow: %s", fks_errmsg());
    fks_close(s);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/fks-rt-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_depths), cmocka_unit_test(test_no_follow)};
    int rc = cmocka_run_group_tests_name("roundtrip", tests, NULL, NULL);
    if (rc == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return rc;
}
