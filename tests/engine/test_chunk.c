/* test_chunk.c: the chunk file format: headers and records round-trip,
** and every kind of damage is reported, never decoded into wrong bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <xxhash.h>
#include <zstd.h>

#include "chunk.h"
#include "util.h"

static void test_header_roundtrip(void **state)
{
    (void)state;
    uint8_t b[CHUNK_HDR_SIZE];
    chunk_hdr h = {CHUNK_VERSION, 42, 16u << 20, 1700000000000}, g;
    chunk_format_hdr(b, &h);
    assert_int_equal(chunk_parse_hdr(&g, b, sizeof b), 0);
    assert_int_equal(g.id, 42);
    assert_int_equal(g.cap, 16u << 20);
    for (size_t i = 0; i < 64; i++) {         /* every flipped byte is caught */
        b[i] ^= 0x40;
        assert_int_equal(chunk_parse_hdr(&g, b, sizeof b), FKS_ECORRUPT);
        b[i] ^= 0x40;
    }
    assert_int_equal(chunk_parse_hdr(&g, b, 10), FKS_ECORRUPT);
}

/* Builds a block record of n pages as chunk_append does. */
static size_t make_record(uint8_t *out, const uint8_t *pages, const uint32_t *rlen, uint32_t n, ZSTD_CCtx *c)
{
    uint8_t raw[CHUNK_BLOCK_MAX], payload[CHUNK_BLOCK_MAX], h[CHUNK_BLOCK_PAGES][16];
    uint32_t clen, len = 0;
    int codec;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(raw + len, pages + i * 4096, rlen[i]);
        fks__hash(h[i], pages + i * 4096, rlen[i]);
        len += rlen[i];
    }
    assert_int_equal(chunk_compress(c, raw, len, payload, &clen, &codec), 0);
    chunk_format_rec(out, n, codec, clen, rlen, (const uint8_t (*)[16])h);
    memcpy(out + CHUNK_REC_HDR(n), payload, clen);
    return CHUNK_REC_HDR(n) + clen;
}

static void test_record_roundtrip_and_damage(void **state)
{
    (void)state;
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_DCtx *d = ZSTD_createDCtx();
    static uint8_t pages[CHUNK_BLOCK_MAX], rec[CHUNK_BLOCK_MAX + 512], out[CHUNK_BLOCK_MAX];
    for (int kind = 0; kind < 3; kind++) {
        uint32_t n = kind == 2 ? 3 : CHUNK_BLOCK_PAGES, rlen[CHUNK_BLOCK_PAGES];
        for (uint32_t i = 0; i < n; i++)
            rlen[i] = kind == 2 && i == n - 1 ? 1000 : 4096;   /* a file's short tail */
        for (size_t i = 0; i < sizeof pages; i++)               /* text-like or random */
            pages[i] = kind == 0 ? (uint8_t)("forkstore "[i % 10]) : (uint8_t)rand();
        size_t len = make_record(rec, pages, rlen, n, c);
        chunk_rec r;
        assert_int_equal(chunk_parse_rec(&r, rec, len), 0);
        assert_int_equal(r.npages, n);
        assert_int_equal(r.len, len);
        if (kind == 0)
            assert_int_equal(r.codec, CHUNK_CODEC_ZSTD);
        if (kind == 1)
            assert_int_equal(r.codec, CHUNK_CODEC_RAW);
        assert_int_equal(chunk_decode(d, &r, rec + CHUNK_REC_HDR(n), out, "t"), 0);
        for (uint32_t i = 0; i < n; i++)
            assert_memory_equal(out + r.start[i], pages + i * 4096, rlen[i]);
        /* Truncated: the payload would run past the end. */
        assert_int_equal(chunk_parse_rec(&r, rec, len - 1), FKS_ECORRUPT);
        /* Each flipped payload byte: decode fails or a page hash does. */
        for (size_t i = CHUNK_REC_HDR(n); i < len; i += 97) {
            rec[i] ^= 1;
            assert_int_equal(chunk_parse_rec(&r, rec, len), 0);
            assert_int_equal(chunk_decode(d, &r, rec + CHUNK_REC_HDR(n), out, "t"), FKS_ECORRUPT);
            rec[i] ^= 1;
        }
        /* Flipped header bytes are caught by the header check. */
        for (size_t i = 0; i < CHUNK_REC_HDR(n); i++) {
            rec[i] ^= 0x10;
            assert_int_equal(chunk_parse_rec(&r, rec, len), FKS_ECORRUPT);
            rec[i] ^= 0x10;
        }
    }
    uint8_t zeros[64] = {0};
    chunk_rec r;
    assert_int_equal(chunk_parse_rec(&r, zeros, sizeof zeros), 1);   /* free space */
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
}

/* A block encoded at a higher level decodes with the same decoder (the
** frame does not say its level); level 15 beats level 1 on text. */
static void test_levels_decode_alike(void **state)
{
    (void)state;
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_DCtx *d = ZSTD_createDCtx();
    static uint8_t pages[CHUNK_BLOCK_MAX], payload[CHUNK_BLOCK_MAX], out[CHUNK_BLOCK_MAX];
    static uint8_t rec[CHUNK_REC_HDR(CHUNK_BLOCK_PAGES)];
    uint32_t rlen[CHUNK_BLOCK_PAGES], size1 = 0;
    uint8_t h[CHUNK_BLOCK_PAGES][16];
    srand(7);
    for (size_t i = 0; i < sizeof pages; i++)       /* text with some noise */
        pages[i] = i % 13 == 0 ? (uint8_t)rand() : (uint8_t)("guest memory pages "[(i / 7) % 19]);
    for (uint32_t i = 0; i < CHUNK_BLOCK_PAGES; i++) {
        rlen[i] = 4096;
        fks__hash(h[i], pages + i * 4096, 4096);
    }
    int levels[] = {1, 9, 15, 19};
    for (size_t k = 0; k < sizeof levels / sizeof *levels; k++) {
        uint32_t clen;
        int codec;
        assert_int_equal(chunk_compress_level(c, levels[k], pages, sizeof pages, payload, &clen, &codec), 0);
        assert_int_equal(codec, CHUNK_CODEC_ZSTD);
        if (k == 0)
            size1 = clen;
        if (levels[k] == 15)            /* compact's default */
            assert_true(clen < size1);
        chunk_format_rec(rec, CHUNK_BLOCK_PAGES, codec, clen, rlen, (const uint8_t (*)[16])h);
        chunk_rec r;
        static uint8_t whole[sizeof rec + CHUNK_BLOCK_MAX];
        memcpy(whole, rec, sizeof rec);
        memcpy(whole + sizeof rec, payload, clen);
        assert_int_equal(chunk_parse_rec(&r, whole, sizeof rec + clen), 0);
        memset(out, 0, sizeof out);
        assert_int_equal(chunk_decode(d, &r, whole + sizeof rec, out, "t"), 0);
        assert_memory_equal(out, pages, sizeof pages);
    }
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_record_roundtrip_and_damage),
        cmocka_unit_test(test_levels_decode_alike),
    };
    return cmocka_run_group_tests_name("chunk", tests, NULL, NULL);
}
