/*
** fuzz_chunk.c: the chunk file parsers (chunk_parse_hdr, chunk_parse_rec,
** chunk_decode) fed arbitrary bytes.
**
** Input: one flags byte, then a chunk file image. Header and record
** checks are XXH3 sums a fuzzer cannot guess, so flag bits ask the target
** to recompute them in its copy before parsing (bit 0: file header,
** bit 1: every record header), as a writer would; without them the
** rejection paths run.
**
** Oracle: no memory error (ASan: every buffer is malloc'ed at its exact
** size), and for every record the parser accepts: n in 1..8, each page
** length in 1..4096, start offsets consecutive, rawlen their sum, the
** payload inside the file, len = header + payload, raw payloads as long
** as their pages; chunk_format_rec reproduces the header bytes; when
** chunk_decode accepts the payload every page matches its hash, computed
** here independently.
*/
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "chunk.h"
#include "forkstore.h"
#include "fuzz.h"

static ZSTD_DCtx *dctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dctx = ZSTD_createDCtx();
    return 0;
}

static void fix_check(uint8_t *p, size_t hdrlen)
{
    uint32_t c = (uint32_t)XXH3_64bits(p, hdrlen - 4);
    p[hdrlen - 4] = (uint8_t)c;
    p[hdrlen - 3] = (uint8_t)(c >> 8);
    p[hdrlen - 2] = (uint8_t)(c >> 16);
    p[hdrlen - 1] = (uint8_t)(c >> 24);
}

static void check_rec(const chunk_rec *r, const uint8_t *p, size_t avail)
{
    FUZZ_ASSERT(r->npages >= 1 && r->npages <= CHUNK_BLOCK_PAGES, "npages %u", r->npages);
    size_t h = CHUNK_REC_HDR(r->npages);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < r->npages; i++) {
        FUZZ_ASSERT(r->rlen[i] >= 1 && r->rlen[i] <= FKS_PAGE_SIZE, "rlen[%u] = %u", i, r->rlen[i]);
        FUZZ_ASSERT(r->start[i] == sum, "start[%u] = %u, expected %u", i, r->start[i], sum);
        sum += r->rlen[i];
    }
    FUZZ_ASSERT(r->rawlen == sum && sum <= CHUNK_BLOCK_MAX, "rawlen %u, sum %u", r->rawlen, sum);
    FUZZ_ASSERT(r->codec == CHUNK_CODEC_RAW || r->codec == CHUNK_CODEC_ZSTD, "codec %d", r->codec);
    FUZZ_ASSERT(r->clen >= 1 && r->clen <= CHUNK_BLOCK_MAX, "clen %u", r->clen);
    FUZZ_ASSERT(r->codec != CHUNK_CODEC_RAW || r->clen == r->rawlen, "raw clen %u != %u", r->clen, r->rawlen);
    FUZZ_ASSERT(h + r->clen <= avail, "record (%zu + %u) past the end (%zu)", h, r->clen, avail);
    FUZZ_ASSERT(r->len == h + r->clen, "len %u", r->len);
    /* The writer's formatter gives back the same header. */
    uint8_t again[CHUNK_REC_HDR(CHUNK_BLOCK_PAGES)];
    chunk_format_rec(again, r->npages, r->codec, r->clen, r->rlen, (const uint8_t (*)[16])r->hash);
    /* (bytes 10-11 are reserved and not parsed; the check covers them) */
    FUZZ_ASSERT(memcmp(again, p, 10) == 0 && memcmp(again + 12, p + 12, h - 16) == 0,
                "chunk_format_rec does not reproduce the parsed header");
}

static void decode_rec(const chunk_rec *r, const uint8_t *payload)
{
    /* Exact-size buffers: any write past rawlen or read past clen is an
    ** ASan report. */
    uint8_t *in = malloc(r->clen), *out = malloc(r->rawlen);
    FUZZ_ASSERT(in && out, "out of memory");
    memcpy(in, payload, r->clen);
    if (chunk_decode(dctx, r, in, out, "fuzz") == 0) {
        for (uint32_t i = 0; i < r->npages; i++) {
            XXH128_canonical_t c;
            XXH128_canonicalFromHash(&c, XXH3_128bits(out + r->start[i], r->rlen[i]));
            FUZZ_ASSERT(memcmp(c.digest, r->hash[i], 16) == 0, "decoded page %u does not match its hash", i);
        }
    } else {
        FUZZ_ASSERT(fks_errmsg()[0], "chunk_decode failed without a message");
    }
    free(in);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    FUZZ_ASSERT(p, "out of memory");
    memcpy(p, data + 1, n);

    chunk_hdr hdr;
    if ((flags & 1) && n >= CHUNK_HDR_SIZE)
        fix_check(p, CHUNK_HDR_SIZE);
    int rc = chunk_parse_hdr(&hdr, p, n);
    if (rc == 0) {
        FUZZ_ASSERT(n >= CHUNK_HDR_SIZE && memcmp(p, CHUNK_MAGIC, 8) == 0 && hdr.version == CHUNK_VERSION,
                    "chunk_parse_hdr accepted a bad header");
        uint8_t again[CHUNK_HDR_SIZE];
        chunk_format_hdr(again, &hdr);
        /* Reserved bytes 40..59 are not part of the parsed header. */
        FUZZ_ASSERT(memcmp(again, p, 40) == 0, "chunk_format_hdr does not reproduce the header");
    } else {
        FUZZ_ASSERT(rc == FKS_ECORRUPT && fks_errmsg()[0], "chunk_parse_hdr: rc %d", rc);
    }

    /* Walk the records as a scan of the file would: from the end of the
    ** header (or from 0 when the file is shorter), stop at free space or
    ** the first damaged record. */
    size_t off = n >= CHUNK_HDR_SIZE ? CHUNK_HDR_SIZE : 0;
    for (int k = 0; k < 64 && off < n; k++) {
        size_t avail = n - off;
        uint8_t *q = p + off;
        if ((flags & 2) && avail >= 16) {
            uint32_t np = q[8];
            if (np >= 1 && np <= CHUNK_BLOCK_PAGES && avail >= CHUNK_REC_HDR(np))
                fix_check(q, CHUNK_REC_HDR(np));
        }
        /* The parser may read only avail bytes: give it an exact copy. */
        uint8_t *rec = malloc(avail);
        FUZZ_ASSERT(rec, "out of memory");
        memcpy(rec, q, avail);
        chunk_rec r;
        memset(&r, 0xa5, sizeof r);
        rc = chunk_parse_rec(&r, rec, avail);
        if (rc == 0) {
            check_rec(&r, rec, avail);
            decode_rec(&r, rec + CHUNK_REC_HDR(r.npages));
            off += r.len;
        } else {
            FUZZ_ASSERT(rc == 1 || (rc == FKS_ECORRUPT && fks_errmsg()[0]), "chunk_parse_rec: rc %d", rc);
            for (size_t i = 0; rc == 1 && i < avail && i < 16; i++)
                FUZZ_ASSERT(rec[i] == 0, "free space reported where byte %zu is not zero", i);
            free(rec);
            break;
        }
        free(rec);
    }
    free(p);
    return 0;
}
