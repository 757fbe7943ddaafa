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

/* Builds a record as chunk_append does (through the public pieces). */
static size_t make_record(uint8_t *out, const uint8_t *page, uint32_t rlen, ZSTD_CCtx *c)
{
    uint8_t payload[4096], h[16];
    uint32_t clen;
    int codec;
    assert_int_equal(chunk_compress(c, page, rlen, payload, &clen, &codec), 0);
    fks__hash(h, page, rlen);
    fks__put32(out, CHUNK_REC_MAGIC);
    fks__put32(out + 4, clen);
    out[8] = (uint8_t)rlen;
    out[9] = (uint8_t)(rlen >> 8);
    out[10] = (uint8_t)codec;
    out[11] = 0;
    memcpy(out + 12, h, 16);
    fks__put32(out + 28, (uint32_t)XXH3_64bits(out, 28));
    memcpy(out + 32, payload, clen);
    return 32 + clen;
}

static void test_record_roundtrip_and_damage(void **state)
{
    (void)state;
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_DCtx *d = ZSTD_createDCtx();
    uint8_t page[4096], rec[4096 + 64], out[4096];
    for (int kind = 0; kind < 3; kind++) {
        uint32_t rlen = kind == 2 ? 1000 : 4096;
        for (size_t i = 0; i < sizeof page; i++)   /* text-like or random */
            page[i] = kind == 0 ? (uint8_t)("forkstore "[i % 10]) : (uint8_t)rand();
        size_t n = make_record(rec, page, rlen, c);
        chunk_rec r;
        assert_int_equal(chunk_parse_rec(&r, rec, n), 0);
        assert_int_equal(r.rlen, rlen);
        if (kind == 0)
            assert_int_equal(r.codec, CHUNK_CODEC_ZSTD);
        if (kind == 1)
            assert_int_equal(r.codec, CHUNK_CODEC_RAW);
        assert_int_equal(chunk_decode(d, &r, rec + 32, out, "t"), 0);
        assert_memory_equal(out, page, rlen);
        /* Truncated: the payload would run past the end. */
        assert_int_equal(chunk_parse_rec(&r, rec, n - 1), FKS_ECORRUPT);
        /* Each flipped payload byte: decode fails or the hash does. */
        for (size_t i = 32; i < n; i += 7) {
            rec[i] ^= 1;
            assert_int_equal(chunk_parse_rec(&r, rec, n), 0);
            assert_int_equal(chunk_decode(d, &r, rec + 32, out, "t"), FKS_ECORRUPT);
            rec[i] ^= 1;
        }
        /* Flipped header bytes are caught by the header check. */
        for (size_t i = 0; i < 32; i++) {
            rec[i] ^= 0x10;
            assert_int_equal(chunk_parse_rec(&r, rec, n), FKS_ECORRUPT);
            rec[i] ^= 0x10;
        }
    }
    uint8_t zeros[64] = {0};
    chunk_rec r;
    assert_int_equal(chunk_parse_rec(&r, zeros, sizeof zeros), 1);   /* free space */
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_record_roundtrip_and_damage),
    };
    return cmocka_run_group_tests_name("chunk", tests, NULL, NULL);
}
