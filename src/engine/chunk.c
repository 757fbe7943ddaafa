/*
** chunk.c: chunk files, the only place page bytes live.
**
** Design
**  1. A chunk file is preallocated to its full capacity (posix_fallocate)
**     when created, so ingest appends into space the filesystem already
**     gave out: no block allocation, no file growth on the hot path.
**  2. Records are appended, never rewritten. The catalog's chunk.used is
**     the end of the committed records; bytes past it are free space or
**     leftovers of an ingest that died, and are overwritten by the next
**     writer.
**  3. One writer per chunk at a time: a writer holds flock(LOCK_EX) on
**     the chunk file for as long as it appends. gc uses the same lock to
**     tell a chunk in use (or a new file not yet in the catalog) from one
**     left behind by a crash.
**  4. Write order: records are written and fdatasync()ed before the
**     catalog transaction that names them commits (chunk_writer_sync
**     before chunk_writer_commit).
**  5. A record is a block of up to 8 pages stored by one ingest, in the
**     order it met them, compressed as one zstd frame. Dedup stays per
**     page (the catalog names page `slot` of the block at `off`); the
**     block only shares the frame, because zstd pays a fixed cost per
**     frame: on realistic guest memory 8-page frames compress 2.1x and
**     decode 1.6x faster than one frame per page, and 8% smaller
**     (tools/bench/limits). A restore reads pages in the order an ingest
**     stored them, so the blocks it decodes are mostly all needed.
**  5b. Ingest compresses at level 1 (CHUNK_ZSTD_LEVEL) to stay fast;
**     forkctl compact rewrites records at a higher level later (gc.c,
**     design 7) with chunk_compress_level, probing chunks first with
**     chunk_probe. A frame does not say its level and needs none to
**     decode: records of any level share the layout below and one chunk.
**     Frames at ingest's level keep their literals raw, not Huffman-coded
**     (ZSTD_c_literalCompressionMode). Measured on the bench chains
**     (synthetic, data-heavy, real guest; 12 images each, as Diffs):
**     records 4.3%, 0.7% and 4.1% larger, ingest 34%, 7% and 17% faster,
**     decoding 45-64% faster, which is most of a restore's CPU. It is one
**     of zstd's experimental parameters, so it is set only when the
**     library at run time has the major and minor version this was built
**     against; otherwise the frames are plain level 1. gc moves blocks at
**     ingest's level the same way; compact's higher levels keep Huffman
**     literals (at level 15 raw literals save no decoding time). Either
**     way a frame is a standard one that any zstd decoder reads.
**  6. Each record carries its pages' hashes, so the page index can be
**     rebuilt from the chunk files alone, and every read is checked
**     against the catalog and against the hash of the decoded bytes.
**  7. Chunk ids are never reused. chunk_create first reserves the id
**     (meta.next_chunk_id, bumped in a transaction of its own), then
**     creates, preallocates and syncs the file under a temporary name,
**     then, under the writer lock, inserts the row, renames the file to
**     its id (RENAME_NOREPLACE) and commits. A crash anywhere leaves at
**     most a file no row names, under an id nobody will ask for again:
**     the next ingest writes at once, and gc removes the stray. (A stray
**     bearing the reserved id, left by a version that did not reserve,
**     is taken over: removed under the writer lock if nobody locks it.)
**  8. Empty chunks (no committed record) that a failed or killed writer
**     left are chunk rows gc deletes with their files (gc.c, step 4).
**
** File name: chunks/<id>.chunk, the id as (at least) 8 lower-case hex
** digits. chunk_file_name writes it and chunk_file_parse, which takes
** exactly 8 digits, reads it back; no other code spells the format.
**
** File layout (little-endian):
**
**   offset  size  field
**   0       8     magic "FKSCHUNK"
**   8       4     version (1)
**   12      4     header size (64)
**   16      8     chunk id (= catalog chunk.id, = the file name)
**   24      8     capacity in bytes (the preallocated file size)
**   32      8     created, unix milliseconds
**   40      20    reserved, zero
**   60      4     check: low 32 bits of XXH3-64 of bytes 0..59
**   64      ...   records, back to back, then zeros to the end
**
** Record (block) layout, n = number of pages (1..8), H = 16 + 18n:
**
**   offset    size  field
**   0         4     magic 0x31424b46 ("FKB1")
**   4         4     payload length clen (1 .. 32768)
**   8         1     n
**   9         1     codec: 0 raw (clen == sum of rlen), 1 zstd frame
**   10        2     reserved, zero
**   12        18n   per page: rlen (2 bytes, 1..4096; short only for a
**                   file's tail), then its XXH3-128, canonical (16 bytes)
**   12+18n    4     check: low 32 bits of XXH3-64 of bytes 0 .. 12+18n-1
**   H         clen  payload: the n pages' bytes back to back, as one zstd
**                   frame (level 1 from ingest, higher from compact; no
**                   checksum: the page hashes cover it) or raw
*/
/* For ZSTD_c_literalCompressionMode (design 5b); only the value is used. */
#define ZSTD_STATIC_LINKING_ONLY
#include "chunk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd_errors.h>

#include "catalog.h"
#include "store.h"
#include "util.h"

#define WBUF_SIZE (1u << 20)
#define MIN_ROOM (64u << 10)   /* a chunk with less free space is full */

int chunk_file_name(char *buf, size_t len, int64_t id)
{
    return fks__path(buf, len, "%08llx" CHUNK_FILE_SUFFIX, (unsigned long long)id);
}

int chunk_file_parse(const char *name, int64_t *id)
{
    size_t sl = strlen(CHUNK_FILE_SUFFIX);
    if (strlen(name) != 8 + sl || strcmp(name + 8, CHUNK_FILE_SUFFIX) != 0 ||
        strspn(name, "0123456789abcdef") != 8)
        return 0;
    *id = (int64_t)strtoull(name, NULL, 16);
    return 1;
}

int chunk_path(char *buf, size_t len, const struct fks_store *s, int64_t id)
{
    char nm[32];
    int rc = chunk_file_name(nm, sizeof nm, id);
    return rc ? rc : fks__path(buf, len, "%s/%s", s->chunkdir, nm);
}

static uint32_t check32(const uint8_t *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n);
}

void chunk_format_hdr(uint8_t out[CHUNK_HDR_SIZE], const chunk_hdr *h)
{
    memset(out, 0, CHUNK_HDR_SIZE);
    memcpy(out, CHUNK_MAGIC, 8);
    fks__put32(out + 8, CHUNK_VERSION);
    fks__put32(out + 12, CHUNK_HDR_SIZE);
    fks__put64(out + 16, h->id);
    fks__put64(out + 24, h->cap);
    fks__put64(out + 32, (uint64_t)h->created_ms);
    fks__put32(out + 60, check32(out, 60));
}

int chunk_parse_hdr(chunk_hdr *h, const uint8_t *p, size_t n)
{
    memset(h, 0, sizeof *h);    /* defined on every path, failures included */
    if (n < CHUNK_HDR_SIZE)
        return fks__err(FKS_ECORRUPT, "chunk header truncated (%zu bytes)", n);
    if (memcmp(p, CHUNK_MAGIC, 8) != 0)
        return fks__err(FKS_ECORRUPT, "not a chunk file (bad magic)");
    if (fks__get32(p + 60) != check32(p, 60))
        return fks__err(FKS_ECORRUPT, "chunk header damaged (check mismatch)");
    h->version = fks__get32(p + 8);
    if (h->version != CHUNK_VERSION || fks__get32(p + 12) != CHUNK_HDR_SIZE)
        return fks__err(FKS_ECORRUPT, "chunk version %u not supported (this forkstore reads %d)",
                        h->version, CHUNK_VERSION);
    h->id = fks__get64(p + 16);
    h->cap = fks__get64(p + 24);
    h->created_ms = (int64_t)fks__get64(p + 32);
    return 0;
}

int chunk_parse_rec(chunk_rec *r, const uint8_t *p, size_t avail)
{
    if (avail < 16)
        return avail == 0 || fks__is_zero(p, avail) ? 1
               : fks__err(FKS_ECORRUPT, "record header truncated (%zu bytes left)", avail);
    uint32_t magic = fks__get32(p);
    if (magic != CHUNK_REC_MAGIC)
        return fks__is_zero(p, 16) ? 1 : fks__err(FKS_ECORRUPT, "bad record magic 0x%08x", magic);
    uint32_t n = p[8];
    if (n == 0 || n > CHUNK_BLOCK_PAGES)
        return fks__err(FKS_ECORRUPT, "record holds %u pages (1..%d allowed)", n, CHUNK_BLOCK_PAGES);
    size_t h = CHUNK_REC_HDR(n);
    if (avail < h)
        return fks__err(FKS_ECORRUPT, "record header truncated (%zu of %zu bytes)", avail, h);
    if (fks__get32(p + h - 4) != check32(p, h - 4))
        return fks__err(FKS_ECORRUPT, "record header damaged (check mismatch)");
    r->npages = n;
    r->clen = fks__get32(p + 4);
    r->codec = p[9];
    r->rawlen = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + 12 + 18 * i;
        r->rlen[i] = (uint32_t)e[0] | (uint32_t)e[1] << 8;
        if (r->rlen[i] == 0 || r->rlen[i] > FKS_PAGE_SIZE)
            return fks__err(FKS_ECORRUPT, "record page %u has length %u", i, r->rlen[i]);
        r->start[i] = r->rawlen;
        r->rawlen += r->rlen[i];
        memcpy(r->hash[i], e + 2, 16);
    }
    if (r->codec != CHUNK_CODEC_RAW && r->codec != CHUNK_CODEC_ZSTD)
        return fks__err(FKS_ECORRUPT, "unknown codec %d", r->codec);
    if (r->clen == 0 || r->clen > CHUNK_BLOCK_MAX || (r->codec == CHUNK_CODEC_RAW && r->clen != r->rawlen))
        return fks__err(FKS_ECORRUPT, "record payload length %u out of range", r->clen);
    if (r->clen > avail - h)
        return fks__err(FKS_ECORRUPT, "record payload runs past the end of the file");
    r->len = (uint32_t)h + r->clen;
    return 0;
}

void chunk_format_rec(uint8_t *out, uint32_t n, int codec, uint32_t clen, const uint32_t *rlen,
                      const uint8_t (*hash)[16])
{
    size_t h = CHUNK_REC_HDR(n);
    fks__put32(out, CHUNK_REC_MAGIC);
    fks__put32(out + 4, clen);
    out[8] = (uint8_t)n;
    out[9] = (uint8_t)codec;
    out[10] = out[11] = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = out + 12 + 18 * i;
        e[0] = (uint8_t)rlen[i];
        e[1] = (uint8_t)(rlen[i] >> 8);
        memcpy(e + 2, hash[i], 16);
    }
    fks__put32(out + h - 4, check32(out, h - 4));
}

/* Whether this libzstd takes ZSTD_c_literalCompressionMode as built. */
static int raw_literals_ok(void)
{
    return ZSTD_versionNumber() / 100 == ZSTD_VERSION_NUMBER / 100;
}

/* Compresses src into dst (srclen bytes: a frame that does not fit saves
** nothing, the record is then stored raw). */
static int compress(ZSTD_CCtx *cctx, int level, const void *src, size_t srclen, uint8_t *dst,
                    uint32_t *clen, int *codec)
{
    size_t cap = srclen > 1 ? srclen - 1 : 1, n;
    if (level == CHUNK_ZSTD_LEVEL && raw_literals_ok() &&
        !ZSTD_isError(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_literalCompressionMode, ZSTD_ps_disable)))
        n = ZSTD_compress2(cctx, dst, cap, src, srclen);
    else
        n = ZSTD_compressCCtx(cctx, dst, cap, src, srclen, level);
    if (!ZSTD_isError(n) && n < srclen) {
        *clen = (uint32_t)n;
        *codec = CHUNK_CODEC_ZSTD;
        return 0;
    }
    if (ZSTD_isError(n) && ZSTD_getErrorCode(n) != ZSTD_error_dstSize_tooSmall)
        return fks__err(FKS_ERR, "zstd: %s", ZSTD_getErrorName(n));
    memcpy(dst, src, srclen);
    *clen = (uint32_t)srclen;
    *codec = CHUNK_CODEC_RAW;
    return 0;
}

int chunk_compress(ZSTD_CCtx *cctx, const void *src, size_t srclen, uint8_t *dst,
                   uint32_t *clen, int *codec)
{
    return compress(cctx, CHUNK_ZSTD_LEVEL, src, srclen, dst, clen, codec);
}

int chunk_compress_level(ZSTD_CCtx *cctx, int level, const void *src, size_t srclen, uint8_t *dst,
                         uint32_t *clen, int *codec)
{
    return compress(cctx, level, src, srclen, dst, clen, codec);
}

int chunk_decode(ZSTD_DCtx *dctx, const chunk_rec *r, const uint8_t *payload, uint8_t *out,
                 const char *what)
{
    if (r->codec == CHUNK_CODEC_RAW) {
        memcpy(out, payload, r->rawlen);
    } else {
        size_t n = ZSTD_decompressDCtx(dctx, out, r->rawlen, payload, r->clen);
        if (ZSTD_isError(n))
            return fks__err(FKS_ECORRUPT, "%s: zstd frame damaged: %s", what, ZSTD_getErrorName(n));
        if (n != r->rawlen)
            return fks__err(FKS_ECORRUPT, "%s: decoded %zu bytes, expected %u", what, n, r->rawlen);
    }
    for (uint32_t i = 0; i < r->npages; i++) {
        uint8_t h[16];
        fks__hash(h, out + r->start[i], r->rlen[i]);
        if (memcmp(h, r->hash[i], 16) != 0)
            return fks__err(FKS_ECORRUPT, "%s: page %u of the block does not match its hash", what, i);
    }
    return 0;
}

/* ---------------------------------------------------------------- writer */

struct wchunk {
    int64_t id;
    int fd;
    uint64_t used;    /* end of records written so far (buffered or not) */
    uint64_t cap;
    int dirty;        /* written since the last sync */
};

struct chunk_writer {
    struct fks_store *s;
    struct wchunk *chunks;   /* every chunk this writer holds; last is current */
    size_t n, alloc;
    uint8_t *buf;            /* records not yet written to the current chunk */
    size_t buflen;
    uint64_t bufoff;         /* file offset of buf[0] */
    int fresh;               /* new chunks only (chunk_writer_fresh) */
};

int chunk_writer_new(chunk_writer **out, struct fks_store *s)
{
    chunk_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(WBUF_SIZE))) {
        free(w);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    w->s = s;
    *out = w;
    return 0;
}

void chunk_writer_free(chunk_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        close(w->chunks[i].fd);   /* drops the flock */
    free(w->chunks);
    free(w->buf);
    free(w);
}

static int flush_buf(chunk_writer *w)
{
    if (w->buflen == 0)
        return 0;
    struct wchunk *c = &w->chunks[w->n - 1];
    char what[64];
    snprintf(what, sizeof what, "chunk %08llx", (unsigned long long)c->id);
    int rc = fks__pwrite_full(c->fd, w->buf, w->buflen, (off_t)w->bufoff, what);
    if (rc)
        return rc;
    w->bufoff += w->buflen;
    w->buflen = 0;
    c->dirty = 1;
    return 0;
}

/* Reserves a chunk id in a transaction of its own, committed before any
** file bears the id: meta.next_chunk_id only grows, so an id that a crash
** left on a stray file (design 7) is never handed out again. */
static int reserve_id(struct fks_store *s, int64_t *idp)
{
    sqlite3_stmt *st;
    int64_t next = 1, maxid = 0;
    int rc = cat_begin(s);
    if (rc)
        return rc;
    if ((rc = cat_meta_get(s->db, "next_chunk_id", &next)) == 0 &&
        (rc = cat_prepare(s->db, &st, "SELECT coalesce(max(id), 0) FROM chunk")) == 0) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            maxid = sqlite3_column_int64(st, 0);
        else
            rc = cat_err(s->db, src, "catalog: highest chunk id");
        sqlite3_finalize(st);
    }
    if (next <= maxid)
        next = maxid + 1;
    if (rc == 0)
        rc = cat_meta_set(s->db, "next_chunk_id", next + 1);
    if ((rc = cat_end(s, rc)) == 0)
        *idp = next;
    return rc;
}

/* A file already bears the id we reserved: a stray from a store written
** before ids were reserved. Called under the writer lock, inside the
** transaction that registers id, so no committed row names it and nobody
** is between creating it and committing it; it goes if nobody locks it. */
static int take_over_stray(const char *final)
{
    int fd = open(final, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : fks__errno(FKS_EIO, errno, "open stray chunk file %s", final);
    int busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
    int rc = 0;
    if (busy)
        rc = fks__err(FKS_ELOCKED, "chunk file %s exists, is named by no catalog row and is locked by "
                      "another process", final);
    else if (unlink(final) != 0)
        rc = fks__errno(FKS_EIO, errno, "remove stray chunk file %s", final);
    close(fd);
    return rc;
}

int chunk_create(struct fks_store *s, int *fdp, int64_t *idp)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    int fd = -1, rc, err;
    int64_t id = 0;
    uint8_t hdr[CHUNK_HDR_SIZE];

    if ((rc = reserve_id(s, &id)) != 0)
        return rc;
    if ((rc = fks__path(tmp, sizeof tmp, "%s/tmp.%ld.%llx", s->chunkdir, (long)getpid(),
                        (unsigned long long)(fks__now() * 1e9))) != 0 ||
        (rc = chunk_path(final, sizeof final, s, id)) != 0)
        return rc;
    if ((rc = store_open_file(s, tmp, O_RDWR | O_CREAT | O_EXCL, "new chunk file", &fd)) != 0)
        return rc;
    /* Lock before anyone can see the file: gc deletes unlocked strays. */
    if (flock(fd, LOCK_EX) != 0) {
        rc = fks__errno(FKS_EIO, errno, "lock %s", tmp);
        goto fail;
    }
    if ((err = posix_fallocate(fd, 0, (off_t)s->chunk_size)) != 0) {
        rc = fks__errno(FKS_EIO, err, "preallocate %llu bytes for chunk file in %s",
                        (unsigned long long)s->chunk_size, s->chunkdir);
        goto fail;
    }
    chunk_hdr h = {CHUNK_VERSION, (uint64_t)id, s->chunk_size, fks__wall_ms()};
    chunk_format_hdr(hdr, &h);
    /* File first, synced and named, then the row that names it. */
    if ((rc = fks__pwrite_full(fd, hdr, sizeof hdr, 0, tmp)) != 0)
        goto fail;
    if (fdatasync(fd) != 0) {
        rc = fks__errno(FKS_EIO, errno, "fdatasync %s", tmp);
        goto fail;
    }
    if ((rc = cat_begin(s)) != 0)
        goto fail;
    sqlite3_stmt *st;
    if ((rc = cat_prepare(s->db, &st, "INSERT INTO chunk(id, cap, used, created_ms) VALUES (?1, ?2, ?3, ?4)")) == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (int64_t)s->chunk_size);
        sqlite3_bind_int64(st, 3, CHUNK_HDR_SIZE);
        sqlite3_bind_int64(st, 4, fks__wall_ms());
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = cat_err(s->db, src, "catalog: register chunk");
        sqlite3_finalize(st);
    }
    int renamed = 0;
    for (int tries = 0; rc == 0 && !renamed && tries < 2; tries++) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
            renamed = 1;
        else if (errno != EEXIST || tries > 0)
            rc = fks__errno(FKS_EIO, errno, "rename %s to %s", tmp, final);
        else
            rc = take_over_stray(final);
    }
    if (rc == 0) {
        rc = fks__fsync_dir(s->chunkdir);
        if (rc)
            unlink(final);
    }
    if (rc == 0) {
        rc = cat_end(s, 0);
        if (rc)
            unlink(final);   /* not committed: nobody names it */
        else {
            *fdp = fd;
            *idp = id;
            return 0;
        }
        close(fd);
        return rc;
    }
    cat_end(s, rc);
fail:
    unlink(tmp);
    close(fd);
    return rc;
}

/* Claims an existing chunk with room that no other writer holds. */
static int claim_existing(chunk_writer *w, struct wchunk *out, int *found)
{
    struct fks_store *s = w->s;
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st, "SELECT id FROM chunk WHERE cap - used >= ?1 ORDER BY id");
    *found = 0;
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, MIN_ROOM);
    int64_t ids[64];
    int nids = 0, src = SQLITE_DONE;
    while (nids < 64 && (src = sqlite3_step(st)) == SQLITE_ROW)
        ids[nids++] = sqlite3_column_int64(st, 0);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list chunks with room");
    sqlite3_finalize(st);
    if (rc)
        return rc;
    for (int i = 0; i < nids && !*found; i++) {
        int skip = 0;
        for (size_t j = 0; j < w->n; j++)
            skip |= w->chunks[j].id == ids[i];
        if (skip)
            continue;
        char p[PATH_MAX];
        if ((rc = chunk_path(p, sizeof p, s, ids[i])) != 0)
            return rc;
        int fd;
        if (store_open_file(s, p, O_RDWR, "chunk file", &fd) != 0)
            continue;   /* being compacted away, or damage: gc or verify will speak */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            continue;
        }
        /* Re-read the end under the lock: its last holder may have committed. */
        int64_t used = -1, cap = 0;
        if ((rc = cat_prepare(s->db, &st, "SELECT used, cap FROM chunk WHERE id = ?1")) != 0) {
            close(fd);
            return rc;
        }
        sqlite3_bind_int64(st, 1, ids[i]);
        if (sqlite3_step(st) == SQLITE_ROW) {
            used = sqlite3_column_int64(st, 0);
            cap = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        struct stat sb;
        if (used < CHUNK_HDR_SIZE || cap - used < (int64_t)MIN_ROOM || fstat(fd, &sb) != 0 ||
            sb.st_size < cap) {
            close(fd);
            continue;
        }
        out->id = ids[i];
        out->fd = fd;
        out->used = (uint64_t)used;
        out->cap = (uint64_t)cap;
        out->dirty = 0;
        *found = 1;
    }
    return 0;
}

void chunk_writer_fresh(chunk_writer *w)
{
    w->fresh = 1;
}

static int next_chunk(chunk_writer *w)
{
    int rc = flush_buf(w);
    if (rc)
        return rc;
    if (w->n == w->alloc) {
        size_t na = w->alloc ? w->alloc * 2 : 4;
        struct wchunk *nc = realloc(w->chunks, na * sizeof *nc);
        if (!nc)
            return fks__err(FKS_ENOMEM, "out of memory");
        w->chunks = nc;
        w->alloc = na;
    }
    struct wchunk c;
    int found;
    if (!w->fresh && (rc = claim_existing(w, &c, &found)) != 0)
        return rc;
    if (w->fresh)
        found = 0;
    if (!found) {
        if ((rc = chunk_create(w->s, &c.fd, &c.id)) != 0)
            return rc;
        c.used = CHUNK_HDR_SIZE;
        c.cap = w->s->chunk_size;
        c.dirty = 0;
    }
    w->chunks[w->n++] = c;
    w->bufoff = c.used;
    w->buflen = 0;
    return 0;
}

int chunk_append(chunk_writer *w, uint32_t n, const uint32_t *rlen, const uint8_t (*hash)[16],
                 const uint8_t *payload, uint32_t clen, int codec,
                 int64_t *chunk_id, uint64_t *off, uint32_t *len)
{
    uint32_t need = (uint32_t)CHUNK_REC_HDR(n) + clen;
    int rc;
    if (w->n == 0 || w->chunks[w->n - 1].used + need > w->chunks[w->n - 1].cap)
        if ((rc = next_chunk(w)) != 0)
            return rc;
    struct wchunk *c = &w->chunks[w->n - 1];
    if (w->buflen + need > WBUF_SIZE && (rc = flush_buf(w)) != 0)
        return rc;
    uint8_t *p = w->buf + w->buflen;
    chunk_format_rec(p, n, codec, clen, rlen, hash);
    memcpy(p + CHUNK_REC_HDR(n), payload, clen);
    w->buflen += need;
    *chunk_id = c->id;
    *off = c->used;
    *len = need;
    c->used += need;
    return 0;
}

int chunk_writer_sync(chunk_writer *w)
{
    int rc = flush_buf(w);
    if (rc)
        return rc;
    for (size_t i = 0; i < w->n; i++) {
        struct wchunk *c = &w->chunks[i];
        if (c->dirty && fdatasync(c->fd) != 0)
            return fks__errno(FKS_EIO, errno, "fdatasync chunk %08llx", (unsigned long long)c->id);
        c->dirty = 0;
    }
    return 0;
}

int chunk_writer_commit(chunk_writer *w)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(w->s->db, &st, "UPDATE chunk SET used = ?2 WHERE id = ?1 AND used < ?2");
    if (rc)
        return rc;
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        sqlite3_bind_int64(st, 1, w->chunks[i].id);
        sqlite3_bind_int64(st, 2, (int64_t)w->chunks[i].used);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = cat_err(w->s->db, src, "catalog: update chunk");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int chunk_writer_trim(chunk_writer *w)
{
    if (w->n == 0 || w->buflen != 0)
        return 0;
    struct wchunk *c = &w->chunks[w->n - 1];
    sqlite3_stmt *st;
    int64_t others = 0;
    if (c->used >= c->cap || c->dirty)
        return 0;
    int rc = cat_prepare(w->s->db, &st, "SELECT count(*) FROM chunk WHERE id != ?1 AND cap - used >= cap / 4");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        others = sqlite3_column_int64(st, 0);
    else
        rc = cat_err(w->s->db, src, "catalog: chunks with room");
    sqlite3_finalize(st);
    if (rc || others == 0)
        return rc;
    /* The row first: with cap = used nobody appends, whatever the file's
    ** size; then the file. A crash between leaves a longer file, unused. */
    int changed = 0;
    if ((rc = cat_begin(w->s)) != 0)
        return rc;
    if ((rc = cat_prepare(w->s->db, &st, "UPDATE chunk SET cap = ?2 WHERE id = ?1 AND used = ?2")) == 0) {
        sqlite3_bind_int64(st, 1, c->id);
        sqlite3_bind_int64(st, 2, (int64_t)c->used);
        src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = cat_err(w->s->db, src, "catalog: trim chunk");
        else
            changed = sqlite3_changes(w->s->db) == 1;   /* else its end is not committed */
        sqlite3_finalize(st);
    }
    if ((rc = cat_end(w->s, rc)) != 0 || !changed)
        return rc;
    c->cap = c->used;
    if (ftruncate(c->fd, (off_t)c->used) != 0)
        return fks__errno(FKS_EIO, errno, "truncate chunk %08llx", (unsigned long long)c->id);
    return 0;
}

int chunk_prealloc_spare(struct fks_store *s)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st, "SELECT count(*) FROM chunk WHERE cap - used >= cap / 4");
    if (rc)
        return rc;
    int64_t n = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (n > 0)
        return 0;
    int fd = -1;
    int64_t id;
    if ((rc = chunk_create(s, &fd, &id)) != 0)
        return rc;
    close(fd);
    return 0;
}

/* ---------------------------------------------------------------- reader */

/* The reader preads each record (its length comes from the catalog) into
** a buffer, or a run of records at once (chunk_pread, for restore): no
** mapping, so a restore's memory stays its buffers whatever
** the store's size, and a truncated file is a short read, not a SIGBUS. */

#define RCACHE 4

struct rfile {
    int64_t id;
    int fd;
    uint64_t size;
};

struct rblock {
    int64_t chunk;      /* 0 = empty */
    uint64_t off;
    chunk_rec rec;
    uint8_t data[CHUNK_BLOCK_MAX];
};

struct chunk_reader {
    struct fks_store *s;
    struct rfile *files;
    size_t n, alloc;
    ZSTD_DCtx *dctx;
    uint8_t rbuf[CHUNK_REC_HDR(CHUNK_BLOCK_PAGES) + CHUNK_BLOCK_MAX];
    struct rblock cache[RCACHE];   /* recently decoded blocks */
    unsigned next;                 /* round-robin victim */
    uint64_t decoded, decoded_bytes;   /* blocks decompressed, their bytes */
};

int chunk_reader_new(chunk_reader **out, struct fks_store *s)
{
    chunk_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->dctx = ZSTD_createDCtx())) {
        free(r);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    r->s = s;
    *out = r;
    return 0;
}

void chunk_reader_reset(chunk_reader *r)
{
    for (size_t i = 0; i < r->n; i++)
        close(r->files[i].fd);
    r->n = 0;
    for (int i = 0; i < RCACHE; i++)
        r->cache[i].chunk = 0;
}

void chunk_reader_counts(const chunk_reader *r, uint64_t *blocks, uint64_t *bytes)
{
    *blocks = r->decoded;
    *bytes = r->decoded_bytes;
}

void chunk_reader_free(chunk_reader *r)
{
    if (!r)
        return;
    chunk_reader_reset(r);
    free(r->files);
    ZSTD_freeDCtx(r->dctx);
    free(r);
}

static int open_chunk(chunk_reader *r, int64_t id, struct rfile **out)
{
    for (size_t i = r->n; i-- > 0;)
        if (r->files[i].id == id) {
            *out = &r->files[i];
            return 0;
        }
    char p[PATH_MAX];
    int rc = chunk_path(p, sizeof p, r->s, id);
    if (rc)
        return rc;
    int fd;
    if ((rc = store_open_file(r->s, p, O_RDONLY, "chunk file", &fd)) != 0)
        return rc == FKS_ENOTFOUND ? fks__err(FKS_ECORRUPT, "chunk file %s is missing (the catalog names it)", p)
                                   : rc;
    struct stat st;
    uint8_t hb[CHUNK_HDR_SIZE];
    chunk_hdr h;
    if (fstat(fd, &st) != 0 || pread(fd, hb, sizeof hb, 0) != (ssize_t)sizeof hb ||
        chunk_parse_hdr(&h, hb, sizeof hb) != 0 || h.id != (uint64_t)id) {
        close(fd);
        return fks__err(FKS_ECORRUPT, "chunk file %s is damaged (bad or truncated header)", p);
    }
    if (r->n == r->alloc) {
        size_t na = r->alloc ? r->alloc * 2 : 16;
        struct rfile *nf = realloc(r->files, na * sizeof *nf);
        if (!nf) {
            close(fd);
            return fks__err(FKS_ENOMEM, "out of memory");
        }
        r->files = nf;
        r->alloc = na;
    }
    r->files[r->n] = (struct rfile){id, fd, (uint64_t)st.st_size};
    *out = &r->files[r->n++];
    return 0;
}

int chunk_pread(chunk_reader *r, int64_t chunk_id, uint64_t off, size_t len, uint8_t *buf)
{
    char what[96];
    snprintf(what, sizeof what, "chunk %08llx offset %llu", (unsigned long long)chunk_id, (unsigned long long)off);
    struct rfile *f;
    int rc = open_chunk(r, chunk_id, &f);
    if (rc)
        return rc;
    if (off < CHUNK_HDR_SIZE || off + len > f->size)
        return fks__err(FKS_ECORRUPT, "%s: record runs past the end of the chunk file (%llu bytes; "
                        "file truncated?)", what, (unsigned long long)f->size);
    ssize_t got = pread(f->fd, buf, len, (off_t)off);
    if (got != (ssize_t)len)
        return got < 0 ? fks__errno(FKS_EIO, errno, "read %s", what)
                       : fks__err(FKS_ECORRUPT, "%s: short read (file truncated?)", what);
    return 0;
}

int chunk_parse_at(chunk_rec *rec, int64_t chunk_id, uint64_t off, const uint8_t *p, uint32_t len)
{
    if (len > CHUNK_REC_HDR(CHUNK_BLOCK_PAGES) + CHUNK_BLOCK_MAX || len < CHUNK_REC_HDR(1))
        return fks__err(FKS_ECORRUPT, "chunk %08llx offset %llu: catalog gives a record length of %u",
                        (unsigned long long)chunk_id, (unsigned long long)off, len);
    int rc = chunk_parse_rec(rec, p, len);
    if (rc == 1)
        rc = fks__err(FKS_ECORRUPT, "no record there (zeros)");
    if (rc)
        return fks__errctx(FKS_ECORRUPT, "chunk %08llx offset %llu", (unsigned long long)chunk_id,
                           (unsigned long long)off);
    return 0;
}

int chunk_check_page(const chunk_rec *rec, int64_t chunk_id, uint64_t off, uint32_t len, uint32_t slot,
                     uint32_t rlen, const uint8_t hash[16])
{
    if (rec->len == len && slot < rec->npages && rec->rlen[slot] == rlen && memcmp(rec->hash[slot], hash, 16) == 0)
        return 0;
    char what[96];
    snprintf(what, sizeof what, "chunk %08llx offset %llu", (unsigned long long)chunk_id, (unsigned long long)off);
    if (rec->len != len)
        return fks__err(FKS_ECORRUPT, "%s: record length %u does not match the catalog (%u)", what, rec->len, len);
    return fks__err(FKS_ECORRUPT, "%s: page %u of the block does not match the catalog", what, slot);
}

int chunk_read(chunk_reader *r, int64_t chunk_id, uint64_t off, uint32_t len, uint32_t slot,
               uint32_t rlen, const uint8_t hash[16], uint8_t *out)
{
    struct rblock *b = NULL;
    int rc;
    for (int i = 0; i < RCACHE && !b; i++)
        if (r->cache[i].chunk == chunk_id && r->cache[i].off == off)
            b = &r->cache[i];
    if (!b) {
        char what[96];
        snprintf(what, sizeof what, "chunk %08llx offset %llu", (unsigned long long)chunk_id,
                 (unsigned long long)off);
        if (len > sizeof r->rbuf || len < CHUNK_REC_HDR(1))
            return fks__err(FKS_ECORRUPT, "%s: catalog gives a record length of %u", what, len);
        if ((rc = chunk_pread(r, chunk_id, off, len, r->rbuf)) != 0)
            return rc;
        b = &r->cache[r->next++ % RCACHE];
        b->chunk = 0;
        if ((rc = chunk_parse_at(&b->rec, chunk_id, off, r->rbuf, len)) != 0)
            return rc;
        if ((rc = chunk_decode(r->dctx, &b->rec, r->rbuf + CHUNK_REC_HDR(b->rec.npages), b->data, what)) != 0)
            return rc;
        b->chunk = chunk_id;
        b->off = off;
        r->decoded++;
        r->decoded_bytes += b->rec.rawlen;
    }
    /* The catalog row must describe this block and this page of it, cached
    ** block or not: its record length, then the page's length and hash. */
    if ((rc = chunk_check_page(&b->rec, chunk_id, off, len, slot, rlen, hash)) != 0)
        return rc;
    memcpy(out, b->data + b->rec.start[slot], rlen);
    return 0;
}

int chunk_probe(chunk_reader *r, ZSTD_CCtx *cctx, int level, int64_t chunk_id, uint64_t off, uint32_t len,
                uint32_t *now, uint32_t *then)
{
    char what[96];
    struct rfile *f;
    chunk_rec rec;
    uint8_t raw[CHUNK_BLOCK_MAX], out[CHUNK_BLOCK_MAX];
    int rc, codec;
    snprintf(what, sizeof what, "chunk %08llx offset %llu", (unsigned long long)chunk_id, (unsigned long long)off);
    if ((rc = open_chunk(r, chunk_id, &f)) != 0)
        return rc;
    if (len > sizeof r->rbuf || len < CHUNK_REC_HDR(1) || off < CHUNK_HDR_SIZE || off + len > f->size)
        return fks__err(FKS_ECORRUPT, "%s: record of %u bytes out of the file's range", what, len);
    ssize_t got = pread(f->fd, r->rbuf, len, (off_t)off);
    if (got != (ssize_t)len)
        return got < 0 ? fks__errno(FKS_EIO, errno, "read %s", what)
                       : fks__err(FKS_ECORRUPT, "%s: short read (file truncated?)", what);
    rc = chunk_parse_rec(&rec, r->rbuf, len);
    if (rc == 1)
        rc = fks__err(FKS_ECORRUPT, "no record there (zeros)");
    if (rc)
        return fks__errctx(FKS_ECORRUPT, "%s", what);
    if (rec.len != len)
        return fks__err(FKS_ECORRUPT, "%s: record length %u does not match the catalog (%u)", what, rec.len, len);
    if ((rc = chunk_decode(r->dctx, &rec, r->rbuf + CHUNK_REC_HDR(rec.npages), raw, what)) != 0)
        return rc;
    if ((rc = chunk_compress_level(cctx, level, raw, rec.rawlen, out, then, &codec)) != 0)
        return rc;
    *now = rec.clen;
    return 0;
}

int chunk_decode_block(chunk_reader *r, int64_t chunk_id, uint64_t off, const chunk_rec *rec,
                       const uint8_t *p, uint8_t *out)
{
    char what[96];
    snprintf(what, sizeof what, "chunk %08llx offset %llu", (unsigned long long)chunk_id, (unsigned long long)off);
    int rc = chunk_decode(r->dctx, rec, p + CHUNK_REC_HDR(rec->npages), out, what);
    if (rc == 0) {
        r->decoded++;
        r->decoded_bytes += rec->rawlen;
    }
    return rc;
}
