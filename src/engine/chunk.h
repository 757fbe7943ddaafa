/*
** chunk.h: chunk files, the only place page bytes live. See chunk.c for
** the design and the byte layout.
*/
#ifndef FKS_CHUNK_H
#define FKS_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

struct fks_store;

/* The file header's size: the first record starts here, and a chunk
** whose catalog row has used == CHUNK_HDR_SIZE holds no record.
** CHUNK_HDR_SQL is the same number as SQL text ("... used > "
** CHUNK_HDR_SQL); the migrations' views write it out (64), being SQL. */
#define CHUNK_HDR_SIZE 64
#define CHUNK_STR_(x) #x
#define CHUNK_STR(x) CHUNK_STR_(x)
#define CHUNK_HDR_SQL CHUNK_STR(CHUNK_HDR_SIZE)
#define CHUNK_MAGIC "FKSCHUNK"
#define CHUNK_VERSION 1
#define CHUNK_REC_MAGIC 0x31424b46u   /* "FKB1" little-endian */
#define CHUNK_BLOCK_PAGES 8           /* pages per block at most */
#define CHUNK_BLOCK_MAX (CHUNK_BLOCK_PAGES * 4096)
#define CHUNK_REC_HDR(n) (16 + 18 * (n))  /* record header bytes for n pages */
#define CHUNK_CODEC_RAW 0
#define CHUNK_CODEC_ZSTD 1
#define CHUNK_ZSTD_LEVEL 1

typedef struct chunk_hdr {
    uint32_t version;
    uint64_t id;
    uint64_t cap;
    int64_t created_ms;
} chunk_hdr;

typedef struct chunk_rec {
    uint32_t npages;                      /* 1 .. CHUNK_BLOCK_PAGES */
    int codec;
    uint32_t clen;                        /* payload bytes */
    uint32_t rawlen;                      /* sum of rlen: decoded bytes */
    uint32_t len;                         /* whole record: header + payload */
    uint32_t rlen[CHUNK_BLOCK_PAGES];     /* each page's bytes, 1..4096 */
    uint32_t start[CHUNK_BLOCK_PAGES];    /* each page's offset in the decoded block */
    uint8_t hash[CHUNK_BLOCK_PAGES][16];
} chunk_rec;

/* ---- file names ---- */
#define CHUNK_FILE_SUFFIX ".chunk"
/* The file name of chunk id, "<id as %08llx>.chunk", in buf (len bytes;
** FKS_EINVAL if it does not fit). */
int chunk_file_name(char *buf, size_t len, int64_t id);
/* 1 and *id if name is a chunk file name (exactly 8 lower-case hex digits,
** then ".chunk"), else 0 (*id untouched): a temporary file, or not ours. */
int chunk_file_parse(const char *name, int64_t *id);
/* The path of chunk id's file in the store's chunks/ directory. */
int chunk_path(char *buf, size_t len, const struct fks_store *s, int64_t id);

/* ---- headers and records ---- */
/* Parses the file header in p[0..n). FKS_ECORRUPT with a message if it is
** not a valid version-1 header. */
int chunk_parse_hdr(chunk_hdr *h, const uint8_t *p, size_t n);
void chunk_format_hdr(uint8_t out[CHUNK_HDR_SIZE], const chunk_hdr *h);
/* Parses the record header at p (avail bytes from p to the end of the
** file). Checks magic, header check, lengths and that the payload fits in
** avail. Returns 0, or 1 if p holds no record (all-zero: free space), or
** FKS_ECORRUPT. */
int chunk_parse_rec(chunk_rec *r, const uint8_t *p, size_t avail);
/* Writes the record header for a block into out (CHUNK_REC_HDR(n) bytes). */
void chunk_format_rec(uint8_t *out, uint32_t n, int codec, uint32_t clen,
                      const uint32_t *rlen, const uint8_t (*hash)[16]);
/* Compresses a block of srclen bytes: writes the payload to dst (>= srclen
** bytes) and sets *clen and *codec; stores raw when zstd saves nothing. */
int chunk_compress(ZSTD_CCtx *cctx, const void *src, size_t srclen, uint8_t *dst,
                   uint32_t *clen, int *codec);
/* The same at a given zstd level (1 .. ZSTD_maxCLevel()): compaction
** re-encodes blocks at a higher level than ingest; a frame does not say
** its level and needs none to decode. */
int chunk_compress_level(ZSTD_CCtx *cctx, int level, const void *src, size_t srclen, uint8_t *dst,
                         uint32_t *clen, int *codec);
/* Decodes a record's payload into out[r->rawlen] and checks every page
** against the hash beside it. what names the record for messages. */
int chunk_decode(ZSTD_DCtx *dctx, const chunk_rec *r, const uint8_t *payload,
                 uint8_t *out, const char *what);

/* ---- writing ---- */
typedef struct chunk_writer chunk_writer;
int chunk_writer_new(chunk_writer **out, struct fks_store *s);
/* Appends one block record of n pages (payload already compressed). Sets
** where it went and its whole length. */
int chunk_append(chunk_writer *w, uint32_t n, const uint32_t *rlen, const uint8_t (*hash)[16],
                 const uint8_t *payload, uint32_t clen, int codec,
                 int64_t *chunk_id, uint64_t *off, uint32_t *len);
/* From now on the writer appends only to chunks it creates, never to an
** existing chunk with room (compact: what it writes must not land in a
** chunk it has still to rewrite). */
void chunk_writer_fresh(chunk_writer *w);
/* After the last commit: gives the current chunk's room back to the file
** system (cap = used in the catalog, then the file truncated to it) when
** another chunk has a quarter of its room free for the next ingest
** (compact: the room after its last record would otherwise stay
** preallocated until an ingest claims it). Call outside a transaction. */
int chunk_writer_trim(chunk_writer *w);
/* Writes out buffers and fdatasyncs every chunk touched. */
int chunk_writer_sync(chunk_writer *w);
/* Inside the caller's write transaction: records the new ends (chunk.used). */
int chunk_writer_commit(chunk_writer *w);
/* Releases the chunks (and their locks). NULL ok. */
void chunk_writer_free(chunk_writer *w);
/* Makes sure a preallocated chunk with room is ready for the next ingest. */
int chunk_prealloc_spare(struct fks_store *s);
/* Creates, preallocates and registers a new chunk file under a freshly
** reserved id (never reused: chunk.c design 7); returns an fd holding its
** lock (caller closes) and its id. Takes the writer lock itself: call
** outside a write transaction. */
int chunk_create(struct fks_store *s, int *fd, int64_t *id);

/* ---- reading ---- */
typedef struct chunk_reader chunk_reader;
int chunk_reader_new(chunk_reader **out, struct fks_store *s);
void chunk_reader_free(chunk_reader *r);
/* Reads page slot of the block record at (chunk_id, off) into out (4096
** bytes), checking everything against the catalog's len/rlen/hash. The
** reader keeps the last few decoded blocks, so neighbours cost a copy.
** FKS_ECORRUPT if the chunk file is gone, is not a regular file, or on any
** mismatch; FKS_EPERM if another user owns it or can write it. */
int chunk_read(chunk_reader *r, int64_t chunk_id, uint64_t off, uint32_t len, uint32_t slot,
               uint32_t rlen, const uint8_t hash[16], uint8_t *out);
/* Reads and decodes the record at (chunk_id, off, len bytes), checking its
** pages against the hashes beside them, and compresses it again at level:
** *now is its payload bytes as stored, *then at level (the payload alone,
** the record header stays the same). Does not touch the block cache. */
int chunk_probe(chunk_reader *r, ZSTD_CCtx *cctx, int level, int64_t chunk_id, uint64_t off, uint32_t len,
                uint32_t *now, uint32_t *then);
/* Reads len bytes at off of chunk chunk_id into buf in one pread: one
** record or several back to back (a caller reading a run of blocks).
** Checks the range lies inside the file. Errors as chunk_read. */
int chunk_pread(chunk_reader *r, int64_t chunk_id, uint64_t off, size_t len, uint8_t *buf);
/* Parses the record read from (chunk_id, off) at p, whose length the
** catalog gives as len (chunk_parse_rec, with the place in messages).
** FKS_ECORRUPT if it is not a whole valid record of at most len bytes. */
int chunk_parse_at(chunk_rec *rec, int64_t chunk_id, uint64_t off, const uint8_t *p, uint32_t len);
/* Checks that a catalog row (len, slot, rlen, hash) describes page slot
** of the parsed record rec: 0, or FKS_ECORRUPT naming the mismatch. */
int chunk_check_page(const chunk_rec *rec, int64_t chunk_id, uint64_t off, uint32_t len, uint32_t slot,
                     uint32_t rlen, const uint8_t hash[16]);
/* Decodes the parsed record rec held at p into out[rec->rawlen] with this
** reader's decoder, checking every page against its hash (chunk_decode);
** counted in chunk_reader_counts. Page i lands at out + rec->start[i]. */
int chunk_decode_block(chunk_reader *r, int64_t chunk_id, uint64_t off, const chunk_rec *rec,
                       const uint8_t *p, uint8_t *out);
/* Blocks this reader decompressed so far, and their decoded bytes. */
void chunk_reader_counts(const chunk_reader *r, uint64_t *blocks, uint64_t *bytes);
/* Forgets cached mappings (after a chunk may have been replaced). */
void chunk_reader_reset(chunk_reader *r);

#endif
