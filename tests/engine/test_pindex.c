/* test_pindex.c: the two-tier page index (src/engine/pindex.c). Pages added to
** page_new are found; gc's pack moves them into page_idx buckets and they
** are still found, with their ids; hashes that share the packed 44 bits
** of another page's are told apart by the confirming read; dead pages
** are dropped from both tiers; a pack that grows the bucket bits (a
** split, forced here by a small fill) keeps every entry; absent hashes
** are absent throughout; damaged bucket blobs are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "catalog.h"
#include "forkstore.h"
#include "pindex.h"

#define N 6000

static uint8_t hashes[2 * N][16];
static uint64_t rs = 88172645463325252ull;

static uint64_t rnd(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return rs;
}

static void rnd_hash(uint8_t h[16])
{
    uint64_t a = rnd(), b = rnd();
    memcpy(h, &a, 8);
    memcpy(h + 8, &b, 8);
}

static sqlite3 *new_db(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(cat_create_schema(db), 0);
    return db;
}

static void add(sqlite3 *db, int64_t first, int64_t n)
{
    pidx *x;
    assert_int_equal(pidx_open(&x, db), 0);
    assert_int_equal(cat_exec(db, "BEGIN"), 0);
    assert_int_equal(pidx_begin(x), 0);
    for (int64_t i = first; i < first + n; i++)
        assert_int_equal(pidx_add_page(x, i + 1, hashes[i], 4096), 0);
    assert_int_equal(cat_exec(db, "COMMIT"), 0);
    pidx_close(x);
}

/* Every page in [0, n) is found with its id unless dead[i]; random
** hashes are not found. */
static void check(sqlite3 *db, int64_t n, const uint8_t *dead)
{
    pidx *x;
    assert_int_equal(pidx_open(&x, db), 0);
    assert_int_equal(cat_exec(db, "BEGIN"), 0);
    assert_int_equal(pidx_begin(x), 0);
    for (int64_t i = 0; i < n; i++) {
        int64_t id = -1;
        assert_int_equal(pidx_find(x, hashes[i], &id), 0);
        if (dead && dead[i])
            assert_int_equal(id, 0);
        else
            assert_int_equal(id, i + 1);
    }
    for (int i = 0; i < 200; i++) {
        uint8_t h[16];
        int64_t id = -1;
        rnd_hash(h);
        assert_int_equal(pidx_find(x, h, &id), 0);
        assert_int_equal(id, 0);
    }
    pidx_end(x);
    assert_int_equal(cat_exec(db, "COMMIT"), 0);
    pidx_close(x);
}

static int64_t one(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void pack(sqlite3 *db, const uint8_t *live, int64_t next, const uint64_t *dead, size_t ndead,
                 uint64_t want_packed, uint64_t want_dropped)
{
    uint64_t packed, dropped;
    assert_int_equal(cat_exec(db, "BEGIN"), 0);
    assert_int_equal(pidx_pack(db, live, next, dead, ndead, &packed, &dropped), 0);
    assert_int_equal(cat_exec(db, "COMMIT"), 0);
    assert_int_equal(packed, want_packed);
    assert_int_equal(dropped, want_dropped);
    assert_int_equal(one(db, "SELECT count(*) FROM page_new"), 0);
}

static void test_tiers(void **state)
{
    (void)state;
    sqlite3 *db = new_db();
    for (int i = 0; i < 2 * N; i++)
        rnd_hash(hashes[i]);
    /* pages N/2 .. N/2+99 share the 44 packed bits (and more) of page i-N/2
    ** but differ in their last byte: only the confirming read tells */
    for (int i = N / 2; i < N / 2 + 100; i++) {
        memcpy(hashes[i], hashes[i - N / 2], 16);
        hashes[i][15] ^= 0x5a;
    }
    add(db, 0, N);
    check(db, N, NULL);
    pack(db, NULL, 0, NULL, 0, N, 0);
    assert_int_equal(one(db, "SELECT value FROM meta WHERE key = 'idx_count'"), N);
    assert_int_equal(one(db, "SELECT value FROM meta WHERE key = 'idx_bits'"), PIDX_BITS_MIN);
    check(db, N, NULL);

    /* more pages, then a pack that must split (fill 1: bits grow until
    ** every bucket averages one entry) while a tenth of the pages die */
    add(db, N, N);
    uint8_t *live = calloc(2 * N / 8 + 2, 1), *dead = calloc(2 * N, 1);
    uint64_t *pre = malloc(2 * N * sizeof *pre);
    size_t ndead = 0;
    assert_non_null(live);
    assert_non_null(dead);
    assert_non_null(pre);
    for (int64_t i = 0; i < 2 * N; i++) {
        int64_t id = i + 1;
        if (rnd() % 10 == 0) {
            dead[i] = 1;
            pre[ndead++] = pidx_prefix(hashes[i]);
            char sql[128];
            snprintf(sql, sizeof sql, "DELETE FROM page WHERE id = %lld", (long long)id);
            assert_int_equal(cat_exec(db, sql), 0);
        } else {
            live[id >> 3] |= (uint8_t)(1u << (id & 7));
        }
    }
    /* gc deletes the dead pages' page_new rows with them */
    assert_int_equal(cat_exec(db, "DELETE FROM page_new WHERE id NOT IN (SELECT id FROM page)"), 0);
    uint64_t dead_old = 0, dead_new = 0;
    for (size_t i = 0; i < 2 * N; i++)
        if (dead[i])
            i < N ? dead_old++ : dead_new++;
    pidx_set_fill(1);
    pack(db, live, 2 * N + 1, pre, ndead, N - dead_new, dead_old);
    pidx_set_fill(0);
    assert_true(one(db, "SELECT value FROM meta WHERE key = 'idx_bits'") > PIDX_BITS_MIN);
    assert_int_equal(one(db, "SELECT value FROM meta WHERE key = 'idx_count'"), (int64_t)(2 * N - ndead));
    assert_int_equal(one(db, "SELECT sum(length(ents)) / 9 FROM page_idx"), (int64_t)(2 * N - ndead));
    check(db, 2 * N, dead);

    /* a damaged bucket is refused, not read as absent */
    assert_int_equal(cat_exec(db, "UPDATE page_idx SET ents = x'0102' WHERE bucket = (SELECT max(bucket) FROM page_idx)"), 0);
    pidx *x;
    int hit = 0;
    assert_int_equal(pidx_open(&x, db), 0);
    assert_int_equal(pidx_begin(x), 0);
    for (int i = 0; i < 2 * N; i++) {
        int64_t id;
        int rc = pidx_find(x, hashes[i], &id);
        if (rc) {
            assert_int_equal(rc, FKS_ECORRUPT);
            hit = 1;
        }
    }
    pidx_close(x);
    assert_true(hit);
    free(live);
    free(dead);
    free(pre);
    sqlite3_close(db);
}

/* Buckets of more than the 64-entry window: 400,000 random pages (about
** 98 a bucket), plus 400 crowded into one bucket with keys in a narrow
** range, so the guess of where a key sits misses and the search goes on
** outside the window. Every page is found, no absent hash is. */
#define NW 400000
static void test_window(void **state)
{
    (void)state;
    static uint8_t (*h)[16];
    h = malloc((size_t)NW * 16 + 400 * 16);
    assert_non_null(h);
    sqlite3 *db = new_db();
    for (int i = 0; i < NW; i++)
        rnd_hash(h[i]);
    for (int i = NW; i < NW + 400; i++) {       /* bucket 0x007, keys < 2^12 */
        rnd_hash(h[i]);
        h[i][0] = 0x00, h[i][1] = 0x70 | (h[i][1] & 0x00), h[i][2] = 0, h[i][3] = 0, h[i][4] &= 0x0f;
    }
    pidx *x;
    assert_int_equal(pidx_open(&x, db), 0);
    assert_int_equal(cat_exec(db, "BEGIN"), 0);
    assert_int_equal(pidx_begin(x), 0);
    for (int i = 0; i < NW + 400; i++)
        assert_int_equal(pidx_add_page(x, i + 1, h[i], 4096), 0);
    pidx_end(x);
    assert_int_equal(cat_exec(db, "COMMIT"), 0);
    uint64_t packed, dropped;
    assert_int_equal(cat_exec(db, "BEGIN"), 0);
    assert_int_equal(pidx_pack(db, NULL, 0, NULL, 0, &packed, &dropped), 0);
    assert_int_equal(cat_exec(db, "COMMIT"), 0);
    assert_int_equal(packed, NW + 400);
    assert_int_equal(one(db, "SELECT value FROM meta WHERE key = 'idx_bits'"), PIDX_BITS_MIN);
    assert_true(one(db, "SELECT max(length(ents)) / 9 FROM page_idx") > 400);
    assert_int_equal(cat_exec(db, "BEGIN"), 0);
    assert_int_equal(pidx_begin(x), 0);
    for (int i = 0; i < NW + 400; i++) {
        int64_t id = -1;
        assert_int_equal(pidx_find(x, h[i], &id), 0);
        assert_int_equal(id, i + 1);
    }
    for (int i = 0; i < 2000; i++) {
        uint8_t a[16];
        int64_t id = -1;
        rnd_hash(a);
        if (i % 2) {                            /* near the crowd */
            memcpy(a, h[NW + (i % 400)], 16);
            a[15] ^= 0x80;
        }
        assert_int_equal(pidx_find(x, a, &id), 0);
        assert_int_equal(id, 0);
    }
    pidx_end(x);
    assert_int_equal(cat_exec(db, "COMMIT"), 0);
    pidx_close(x);
    sqlite3_close(db);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tiers), cmocka_unit_test(test_window)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
