/* test_manifest.c: the manifest byte format (round trip; every flipped
** byte and every truncation refused), and fks_recover through the public
** API: branch timings, stored bytes, lineage and bytes survive a deleted
** catalog. */
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
#include "manifest.h"
#include "util.h"

static void sample(manifest *m)
{
    memset(m, 0, sizeof *m);
    m->id = 7;
    m->parent_id = 3;
    m->created_ms = 1796000000000;
    m->stored_bytes = 12345;
    m->new_pages = 9;
    m->pause_ms = 6;
    m->snapshot_ms = 4;
    m->ingest_ms = -1;
    m->diff_bytes = 1 << 20;
    snprintf(m->tag, sizeof m->tag, "agent-1");
    mf_artifact *a;
    uint8_t h[16];
    assert_int_equal(manifest_add_artifact(&a, m, "memory", 64 * 4096, 1), 0);
    for (uint64_t p = 0; p < 64; p += 1 + p % 3) {
        memset(h, (int)p + 1, sizeof h);
        assert_int_equal(mf_push(a, p, h, p % 5 == 0), 0);
    }
    assert_int_equal(manifest_add_artifact(&a, m, "vmstate", 5000, 0), 0);
    memset(h, 0xab, sizeof h);
    assert_int_equal(mf_push(a, 0, h, 0), 0);
    assert_int_equal(mf_push(a, 1, h, 0), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    manifest m, d;
    uint8_t *buf;
    size_t len;
    sample(&m);
    assert_int_equal(manifest_encode(&buf, &len, &m), 0);
    assert_int_equal(manifest_decode(&d, buf, len, "test"), 0);
    assert_int_equal(d.id, 7);
    assert_int_equal(d.parent_id, 3);
    assert_int_equal(d.pause_ms, 6);
    assert_int_equal(d.ingest_ms, -1);
    assert_string_equal(d.tag, "agent-1");
    assert_int_equal(d.n_art, 2);
    assert_true(manifest_is_delta(&d));
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(d.art[i].name, m.art[i].name);
        assert_int_equal(d.art[i].size, m.art[i].size);
        assert_int_equal(d.art[i].delta, m.art[i].delta);
        assert_int_equal(d.art[i].n, m.art[i].n);
        for (size_t j = 0; j < m.art[i].n; j++) {
            assert_int_equal(d.art[i].p[j].pgno, m.art[i].p[j].pgno);
            assert_int_equal(d.art[i].p[j].zero, m.art[i].p[j].zero);
            assert_memory_equal(d.art[i].p[j].hash, m.art[i].p[j].hash, 16);
        }
    }
    manifest_clear(&d);
    /* Any flipped byte, any truncation: refused, never misread. */
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x20;
        assert_int_equal(manifest_decode(&d, buf, len, "flip"), FKS_ECORRUPT);
        manifest_clear(&d);
        buf[i] ^= 0x20;
    }
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(manifest_decode(&d, buf, n, "cut"), FKS_ECORRUPT);
        manifest_clear(&d);
    }
    free(buf);
    manifest_clear(&m);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int same_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint8_t *b = malloc(n + 1);
    size_t got = fread(b, 1, n + 1, f);
    fclose(f);
    int ok = got == n && memcmp(b, p, n) == 0;
    free(b);
    return ok;
}

static void test_recover_api(void **state)
{
    (void)state;
    char dir[] = "/tmp/fks-test-manifest.XXXXXX", store[256], p[512];
    assert_non_null(mkdtemp(dir));
    snprintf(store, sizeof store, "%s/store", dir);
    enum { PAGES = 64 };
    uint8_t *mem = calloc(PAGES, 4096), *mem2 = malloc(PAGES * 4096), vm[3000];
    for (size_t i = 0; i < PAGES * 4096; i++)
        mem[i] = (i / 4096) % 4 == 0 ? 0 : (uint8_t)(rand() >> 3);
    memcpy(mem2, mem, PAGES * 4096);
    memset(mem2 + 5 * 4096, 0x5a, 4096);
    memset(mem2 + 6 * 4096, 0, 4096);                 /* a page that became zero */
    for (size_t i = 0; i < sizeof vm; i++)
        vm[i] = (uint8_t)i;
    snprintf(p, sizeof p, "%s/m0", dir);
    write_file(p, mem, PAGES * 4096);
    snprintf(p, sizeof p, "%s/m1", dir);
    write_file(p, mem2, PAGES * 4096);
    snprintf(p, sizeof p, "%s/vm", dir);
    write_file(p, vm, sizeof vm);

    assert_int_equal(fks_init(store, 0), 0);
    fks_store *s;
    assert_int_equal(fks_open(&s, store, 0), 0);
    char m0[512], m1[512], vmp[512];
    snprintf(m0, sizeof m0, "%s/m0", dir);
    snprintf(m1, sizeof m1, "%s/m1", dir);
    snprintf(vmp, sizeof vmp, "%s/vm", dir);
    fks_artifact_in a0[] = {{"memory", m0, 0}, {"vmstate", vmp, 0}};
    fks_ingest_opts o = {.tag = "root", .artifacts = a0, .n_artifacts = 2};
    assert_int_equal(fks_ingest(NULL, s, &o), 0);
    fks_artifact_in a1[] = {{"memory", m1, 0}, {"vmstate", vmp, 0}};
    fks_ingest_opts o1 = {.tag = "child", .parent = "root", .artifacts = a1, .n_artifacts = 2,
                          .pause_ms = 11, .snapshot_ms = 3, .diff_bytes = 8192};
    assert_int_equal(fks_ingest(NULL, s, &o1), 0);
    fks_snapinfo before;
    assert_int_equal(fks_get(&before, s, "child"), 0);
    fks_close(s);

    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/catalog.db%s", store, sfx[i]);
        unlink(p);
    }
    fks_recover_report *r;
    int rrc = fks_recover(&r, store, 0);
    if (rrc)
        fprintf(stderr, "recover: %s\n", fks_errmsg());
    assert_int_equal(rrc, 0);
    assert_int_equal(r->snapshots, 2);
    assert_int_equal(r->n_lost, 0);
    assert_int_equal(r->moved_aside[0], 0);
    fks_recover_free(r);

    assert_int_equal(fks_open(&s, store, 0), 0);
    fks_snapinfo after;
    assert_int_equal(fks_get(&after, s, "child"), 0);
    assert_string_equal(after.parent, "root");
    assert_int_equal(after.id, before.id);
    assert_int_equal(after.created_ms, before.created_ms);
    assert_int_equal(after.stored_bytes, before.stored_bytes);
    assert_int_equal(after.pause_ms, 11);
    assert_int_equal(after.snapshot_ms, 3);
    assert_int_equal(after.diff_bytes, 8192);
    snprintf(p, sizeof p, "%s/out", dir);
    assert_int_equal(fks_restore(NULL, s, "child", p, 0, NULL, NULL), 0);
    snprintf(p, sizeof p, "%s/out/memory.bin", dir);
    assert_true(same_file(p, mem2, PAGES * 4096));
    snprintf(p, sizeof p, "%s/out/vmstate", dir);
    assert_true(same_file(p, vm, sizeof vm));
    fks_close(s);
    /* A healthy catalog is refused without the flag. */
    assert_int_equal(fks_recover(&r, store, 0), FKS_EEXIST);
    assert_null(r);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(mem);
    free(mem2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_recover_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
