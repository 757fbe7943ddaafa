/*
** remote.c: the remote tier: push snapshots to, and pull them from, one
** bucket of an S3-compatible object store (AWS S3, Ceph RGW, MinIO, R2),
** shared by many hosts' stores, each distinct page kept there once.
**
** It uses the public API (fks_chain, fks_image_*, fks_page_find/read,
** fks_ingest, ...), the S3 client (s3.c) and remote.h (the remote table and
** the store's directory, remote_engine.c).
**
** Objects in the bucket, under KEY PREFIX P ("" or "prefix/"):
**
**   P packs/<sha256>.pack      pages, compressed, with their hashes
**   P index/<sha256>.idx       which pack holds which page
**   P snapshots/<tag>.manifest one snapshot: lineage, files, page map
**   P snapshots/<tag>.ws       its working set, if it has one (lazy restore)
**   P gc/<sha256>.marks        packs one remote gc run found unreferenced
**   P gc/lock                  held by the running remote gc (JSON: host,
**                              pid, started_ms); pushers ignore it
**
** <sha256> is the lower-case hex SHA-256 of the object's whole content:
** packs and indexes are named by what they hold, so one name is one
** content, a reader checks every byte against the name, and two hosts
** uploading the same pack write the same bytes. Integers are
** little-endian; a page hash is XXH3-128 of the page's bytes (its real
** length: a file's last page may be short), canonical (big-endian), as in
** the local store; 16 zero bytes in a map mean "zero page".
**
** Pack (a few MiB: PACK_TARGET bytes of page data, then it is closed)
**   off      size  field
**   0        8     magic "FKSPACK\x01"
**   8        4     n: number of pages
**   12       4     salt: 0, or k > 0 when the pack with salt 0..k-1
**                  has a name a remote gc marked (gc rule P1)
**   16       32*n  entries, one per page:
**                    +0  16  hash (XXH3-128)
**                    +16  8  offset of its bytes from the pack's start
**                    +24  4  clen: stored length
**                    +28  2  rlen: the page's length (1..4096)
**                    +30  1  encoding: 0 raw (clen == rlen), 1 one zstd frame
**                    +31  1  0
**   16+32*n  ...   the pages' stored bytes, in entry order, back to back
** Each page is compressed on its own so that a byte range of a pack is
** one page (Range GETs of single pages, for a lazy restore).
**
** Index (one per push and snapshot, plus one per INDEX_EVERY packs)
**   0        8     magic "FKSIDX\x00\x01"
**   8        4     p: packs named
**   12       4     n: entries
**   16       40*p  packs: SHA-256 (32), total size in bytes (8)
**   16+40p   36*n  entries: hash (16), pack number in the list above (4),
**                  offset (8), clen (4), rlen (2), encoding (1), 0 (1)
** The union of all indexes is the remote's page index: push skips every
** page it names (dedup across hosts), pull finds its pages there.
**
** Manifest (named by tag: written once, after its packs and index)
**   0        8     magic "FKSMAN\x00\x01"
**   8        4     J: length of the JSON header
**   12       J     JSON: {"format":1, "tag", "parent" (tag or null),
**                  "created_ms", "fc_version", "format_version" (null if
**                  unknown), "content": hex SHA-256 of the snapshot's
**                  content (below), "artifacts": [{"name", "size",
**                  "delta" (bool)}, ...] (by name)}
**   12+J     ...   per artifact, in that order: u32 r ranges, then r times
**                  { u64 pgno, u64 npages, npages hashes (16 each) }:
**                   delta false: the runs of non-zero pages (a page no
**                     range covers is a zero page);
**                   delta true: only the pages whose hash differs from
**                     the parent's same-named artifact (zero pages as 16
**                     zero bytes); other pages are the parent's, and
**                     pages at or past size pages are dropped.
**                  Delta is chosen when it is smaller.
**   last 32        SHA-256 of every byte before it
** content = SHA-256 over the artifacts by name of: name, NUL, size (8),
** then (pgno (8), hash (16)) per non-zero page by pgno. Two hosts that
** ingested the same files have the same content whatever their times.
**
** Working set (written once by a push, after the manifest, with
** If-None-Match; deleted by a remote prune before the manifest; optional:
** buckets and snapshots without one still work)
**   0        8     magic "FKSWSET\x01"
**   8        8     n
**   16       8*n   page numbers of the memory artifact, first fault first
**                  (as the local working_set table)
**   16+8n    32    SHA-256 of every byte before it
** A lazy restore from the remote prefetches it (remote_lazy.c). On an
** encrypted remote it is named (HMAC of the tag) and sealed as a
** manifest is (magic version 2, key id, AES-256-GCM).
**
** Marks (written once by a remote gc run; named by their SHA-256)
**   0        8     magic "FKSGCM\x00\x01"
**   8        8     T: the run's start, ms since the epoch (server clock)
**   16       4     n
**   20       4     0
**   24       32*n  SHA-256 names of the packs the run found unreferenced
**                  and did not delete, sorted
**
** Encrypted remotes (remote add --encrypt KEYFILE; keys: seal.c)
** The same objects, write order and gc, with what the bucket's owner could
** learn sealed (AES-256-GCM) or keyed (HMAC-SHA-256) under sub-keys of the
** key file. K = the 8-byte key id; seal(aad, x) = nonce (12) ||
** ciphertext of x || tag (16), the nonce derived from (aad, x) (seal.c:
** deterministic, so a re-run or another host with the key builds the same
** bytes, hence the same content names: resumable pushes and dedup work as
** above).
**  - A page's name (index and pack entries) is HMAC(names key, "page" NUL
**    hash) truncated to 16 bytes, never its XXH3-128 hash; the page maps
**    inside manifests keep real hashes (they are sealed). Pull and verify
**    still decode each page and check HMAC(its XXH3-128) == its name.
**  - A manifest's key is P snapshots/<hex HMAC(names key, "tag" NUL
**    tag)>.manifest: tags are not in keys. gc and prune check that a
**    manifest's tag gives its key.
**  - Index and manifest: magic with version 2 ("FKSIDX\0\2", "FKSMAN\0\2"),
**    K, then seal(those 16 bytes, the version-1 object above); named as
**    above (an index by the SHA-256 of these sealed bytes).
**  - Pack: each page sealed on its own (a range GET of its entry's bytes
**    opens alone: lazy restore), the entry table as one unit:
**      off   size   field
**      0     8      magic "FKSPACK\x02"
**      8     8      K
**      16    4      n
**      20    4      salt (as above)
**      24    32n+28 seal(bytes 0..23, the n entries of the version-1 table)
**      56+32n ...   per page: seal(aad, its stored bytes), aad = "FKSPAGE\x02"
**                   K name (16) rlen (2) encoding (1): a record opens only
**                   as the page its entry names
**    Entries, and index entries, give offset and clen of the sealed record
**    (clen = stored length + 28; encoding 0: clen = rlen + 28).
**  - Marks and gc/lock stay plain: they hold pack names (in every listing
**    anyway), times, a host name and a pid.
** The bucket's owner sees object sizes and times, the number of packs,
** manifests and indexes, and who reads which (byte ranges of) pack; not
** pages, hashes, tags, lineage or file names. A changed byte fails a
** content name or a GCM tag (FKS_ECORRUPT). The catalog holds the key
** file's path and K: a key file with another K is refused before any
** request, and an object sealed with another K is named as a wrong key
** file (FKS_EINVAL), not as damage. A plain remote refuses a sealed object
** and an encrypted one a plain object: one prefix, one kind.
**
** Invariants
**  1. Write order: packs, then the index naming them, then the manifest;
**     a snapshot exists on the remote once its manifest does, and then
**     every page it names is in some pack some index names. Nothing is
**     rewritten in place: every object is put once under its final name
**     (a second put of a content-named object puts the same bytes).
**  2. A push packs pages in a fixed order (chain root first, artifacts by
**     name, pages by pgno, each page once) and compresses them the same
**     way every time: a re-run after a kill builds the same packs, finds
**     them in the bucket listing and does not upload them again; the
**     pages of an index written before the kill are skipped as dedup.
**  3. A push refuses (FKS_EEXIST) a tag the remote holds with another
**     content; the same content is "already there", whoever pushed it.
**  4. Pull checks each pack against its name and each page against its
**     hash and its length before any byte of it is used, rebuilds the
**     snapshot's files (sparse: zero pages are holes) as O_TMPFILE files in
**     the store's directory (nothing is left behind by a kill) and ingests
**     them with their parent; the ingest is the commit (it re-hashes and
**     dedups), a failure before it leaves the store as it was. A snapshot
**     the store already has is skipped only if its content is the same
**     (else FKS_EEXIST).
**  5. Credentials are read at each push and pull (s3_creds_load), never
**     stored.
**  6. A manifest is created with If-None-Match: * (S3 conditional write,
**     radosgw and AWS honour it): of two pushes of one tag at the same
**     time exactly one creates it; the other reads it back and succeeds if
**     it is the same content, else fails with FKS_EEXIST (invariant 3).
**
** Remote gc (fks_remote_gc): deleting packs while other hosts push, with
** no lock a pusher waits for. Times are the server's: T is the Date of
** the run's first answer (whole seconds, rounded down), an object's time
** its LastModified. Margins: I (interval, default 4 h), A (min age, 2 h),
** L (listing lag, 1 min: a write is in every listing started L after it;
** RGW and today's AWS S3 lag 0); d: the time a manifest PUT takes after a
** push's last marks listing (one request, milliseconds; bounded by the
** client's timeout). Required: I >= 2L + d (gc refuses I < 2L).
**  G1. One gc at a time per bucket: gc/lock, created with If-None-Match,
**      deleted at the end (a killed gc leaves it: --break-lock).
**  G2. A run lists, in this order: marks, manifests (reading every page
**      map: a delta map lists what differs from its parent, whose manifest
**      lists the rest; a manifest whose parent is missing stops the run
**      before anything is deleted), indexes, packs. A pack is referenced
**      if any index entry puts a page some manifest lists in it.
**  G3. Pack X is deleted iff unreferenced now, and some marks object M
**      with LM(M) <= T - I names it, and LM(X) <= LM(M) (X not written
**      again since it was marked), and LM(X) <= T - A. The run's new
**      marks object N names every unreferenced pack, those it deletes too.
**  G4. Then one merged index of every index read, less the entries of
**      packs deleted now and of packs not listed though named by an index
**      older than T - L (gone: its packs were written before it). Then the
**      run waits L (N and the merged index are in every listing), and only
**      then deletes: the indexes merged, the packs of G3, the marks objects
**      older than T - I (N names what of theirs is still unreferenced).
** Pushers (no lock):
**  P1. A push lists marks, then packs, then reads the indexes; a page is
**      deduplicated only against a listed pack no marks object names, and
**      a pack it builds whose name is marked is salted (+12) until it is
**      not: a pusher that saw a mark neither uses nor re-creates the pack.
**  P2. Just before each manifest PUT the push lists marks again; if a
**      marks object it had not read names a pack holding a page of that
**      snapshot, the manifest is not written and the push starts over
**      (reading the marks anew: P1 then avoids the pack).
** Safety: suppose run R deletes X by mark M (t = LM(M) <= T - I) and a
** push P writes a manifest F with a page only in X, F's PUT after its
** re-check (P2) at time W. A marks object naming X that P read at its
** start would have kept P off X (P1); one it had not read, seen at W,
** would have stopped F (P2). So the listing at W showed no marks object
** naming X: not M, which is listed from t + L until R deletes it, nor N,
** which names X and is listed from before that deletion on (R waits L
** after writing N). Hence W < t + L: F is written by W + d and listed from
** W + d + L < t + 2L + d <= T on. R's listings start after T: R lists F,
** then the index P wrote before F (indexes after manifests, G2), and finds
** X referenced; it does not delete X. Contradiction. A copy of X that a
** push writes after R listed it is harmless the same way: that push's
** re-check sees M or N and it writes no manifest using X. Index merging
** drops only entries of packs deleted now (unreferenced) or gone, and
** pull and push skip index entries of packs the bucket does not list.
** Prune (fks_remote_prune) only deletes manifests, deepest first; a kept
** snapshot keeps its ancestors (a manifest is never rewritten, so a child
** cannot be re-parented). A push racing a prune of the parent it skipped
** can leave a manifest whose parent is gone: pull then fails, gc deletes
** nothing (G2), and pushing the child again from its store repairs it.
** Liveness: a pack is freed at the earliest by the first run at least I
** after the run that marked it; a push restarts only when a gc marks a
** pack it is deduplicating against (an unreferenced one: left by a killed
** push or a pruned snapshot), at most 5 times, then fails asking for a
** re-run.
*/
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "remote.h"
#include "s3.h"
#include "seal.h"
#include "util.h"

#define PACK_TARGET (4u << 20)   /* page bytes per pack */
#define INDEX_EVERY 64           /* packs between index objects in one push */
#define ZLEVEL 3
#define MAX_CHAIN 10000

static const uint8_t PACK_MAGIC[8] = {'F', 'K', 'S', 'P', 'A', 'C', 'K', 1};
static const uint8_t IDX_MAGIC[8] = {'F', 'K', 'S', 'I', 'D', 'X', 0, 1};
static const uint8_t MAN_MAGIC[8] = {'F', 'K', 'S', 'M', 'A', 'N', 0, 1};
static const uint8_t MARK_MAGIC[8] = {'F', 'K', 'S', 'G', 'C', 'M', 0, 1};
static const uint8_t WS_MAGIC[8] = {'F', 'K', 'S', 'W', 'S', 'E', 'T', 1};
/* Encrypted remotes: version 2 of packs, indexes and manifests (sealed),
** and the label of a page's aad. */
static const uint8_t PACK_MAGIC2[8] = {'F', 'K', 'S', 'P', 'A', 'C', 'K', 2};
static const uint8_t PAGE_LABEL[8] = {'F', 'K', 'S', 'P', 'A', 'G', 'E', 2};
#define PACK2_HDR 24             /* magic, key id, n, salt */
#define PAGE_AAD_LEN 35          /* label, key id, name, rlen, encoding */
#define PUSH_AGAIN 1             /* push_once: a gc marked a pack it used */
static const uint8_t ZERO16[16];

/* ---- growable byte buffer ---- */

struct buf {
    uint8_t *b;
    size_t len, cap;
    int oom;
};

static void buf_need(struct buf *b, size_t more)
{
    if (b->oom || b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *n = realloc(b->b, cap);
    if (!n) {
        b->oom = 1;
        return;
    }
    b->b = n;
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_need(b, n);
    if (!b->oom && n) {
        memcpy(b->b + b->len, p, n);
        b->len += n;
    }
}

static void buf_u8(struct buf *b, uint8_t v) { buf_add(b, &v, 1); }
static void buf_u16(struct buf *b, uint16_t v) { uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; buf_add(b, p, 2); }
static void buf_u32(struct buf *b, uint32_t v) { uint8_t p[4]; fks__put32(p, v); buf_add(b, p, 4); }
static void buf_u64(struct buf *b, uint64_t v) { uint8_t p[8]; fks__put64(p, v); buf_add(b, p, 8); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* ---- the remote page index: hash -> place in a pack ---- */

struct loc {
    uint8_t hash[16];
    uint64_t off;
    uint32_t pack, clen;
    uint16_t rlen;
    uint8_t enc;
};

struct pack {
    uint8_t sha[32];
    uint64_t size;
};

struct index {
    struct loc *v;
    size_t n, cap;
    uint32_t *tab;               /* open addressing: 1 + index into v, 0 empty */
    size_t tabcap;               /* power of two */
    struct pack *packs;
    size_t npacks, packcap;
};

static size_t slot_of(const uint8_t h[16], size_t cap)
{
    return (size_t)fks__get64(h) & (cap - 1);
}

/* The loc of hash h, or NULL. */
static struct loc *idx_find(const struct index *x, const uint8_t h[16])
{
    if (!x->tabcap)
        return NULL;
    for (size_t i = slot_of(h, x->tabcap);; i = (i + 1) & (x->tabcap - 1)) {
        uint32_t e = x->tab[i];
        if (!e)
            return NULL;
        if (memcmp(x->v[e - 1].hash, h, 16) == 0)
            return &x->v[e - 1];
    }
}

static int idx_grow(struct index *x)
{
    size_t cap = x->tabcap ? x->tabcap * 2 : 1024;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return fks__err(FKS_ENOMEM, "out of memory (remote index of %zu pages)", x->n);
    for (size_t k = 0; k < x->n; k++) {
        size_t i = slot_of(x->v[k].hash, cap);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = (uint32_t)(k + 1);
    }
    free(x->tab);
    x->tab = t;
    x->tabcap = cap;
    return 0;
}

/* Adds l unless its hash is there already (a page in two packs: the
** first one named wins). */
static int idx_add(struct index *x, const struct loc *l)
{
    if (idx_find(x, l->hash))
        return 0;
    if (x->n >= UINT32_MAX - 1)
        return fks__err(FKS_ENOMEM, "remote index too large");
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4096;
        struct loc *v = realloc(x->v, cap * sizeof *v);
        if (!v)
            return fks__err(FKS_ENOMEM, "out of memory (remote index of %zu pages)", x->n);
        x->v = v;
        x->cap = cap;
    }
    int rc;
    if ((x->n + 1) * 2 > x->tabcap && (rc = idx_grow(x)))
        return rc;
    x->v[x->n] = *l;
    size_t i = slot_of(l->hash, x->tabcap);
    while (x->tab[i])
        i = (i + 1) & (x->tabcap - 1);
    x->tab[i] = (uint32_t)(++x->n);
    return 0;
}

static int idx_add_pack(uint32_t *no, struct index *x, const uint8_t sha[32], uint64_t size)
{
    for (size_t i = x->npacks; i-- > 0;)     /* the same pack named by two indexes */
        if (memcmp(x->packs[i].sha, sha, 32) == 0) {
            *no = (uint32_t)i;
            return 0;
        }
    int rc = fks__grow(&x->packs, &x->packcap, x->npacks, sizeof *x->packs);
    if (rc)
        return rc;
    memcpy(x->packs[x->npacks].sha, sha, 32);
    x->packs[x->npacks].size = size;
    *no = (uint32_t)x->npacks++;
    return 0;
}

static void idx_free(struct index *x)
{
    free(x->v);
    free(x->tab);
    free(x->packs);
}

/* ---- page maps of snapshots ---- */

struct mpage {
    uint64_t pgno;
    uint8_t hash[16];
};

struct amap {
    char name[65];
    uint64_t size;
    struct mpage *p;             /* non-zero pages, by pgno */
    size_t n;
};

struct snapmap {
    char tag[129], parent[129];
    int64_t created_ms;
    char fc_version[32], format_version[32];
    struct amap *art;            /* by name */
    size_t nart;
    uint8_t content[32];
};

static void snapmap_free(struct snapmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->art && i < m->nart; i++)
        free(m->art[i].p);
    free(m->art);
    memset(m, 0, sizeof *m);
}

static uint64_t npages_of(uint64_t size)
{
    return (size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE;
}

/* A page's own length: FKS_PAGE_SIZE but for a short last page. */
static uint32_t rlen_of(uint64_t size, uint64_t pgno)
{
    uint64_t left = size - pgno * FKS_PAGE_SIZE;
    return left < FKS_PAGE_SIZE ? (uint32_t)left : FKS_PAGE_SIZE;
}

static int cmp_art(const void *a, const void *b)
{
    return strcmp(((const struct amap *)a)->name, ((const struct amap *)b)->name);
}

static void content_digest(struct snapmap *m)
{
    qsort(m->art, m->nart, sizeof *m->art, cmp_art);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (size_t i = 0; i < m->nart; i++) {
        const struct amap *a = &m->art[i];
        uint8_t n8[8];
        EVP_DigestUpdate(c, a->name, strlen(a->name) + 1);
        fks__put64(n8, a->size);
        EVP_DigestUpdate(c, n8, 8);
        for (size_t k = 0; k < a->n; k++) {
            fks__put64(n8, a->p[k].pgno);
            EVP_DigestUpdate(c, n8, 8);
            EVP_DigestUpdate(c, a->p[k].hash, 16);
        }
    }
    unsigned len = 32;
    EVP_DigestFinal_ex(c, m->content, &len);
    EVP_MD_CTX_free(c);
}

/* Page id -> hash, for the snapshots of one push: a chain shares most of
** its page ids, so each id's hash is read from the catalog once. */
struct idcache {
    struct idc {
        int64_t id;
        uint8_t hash[16];
    } *v;
    size_t n, cap;               /* cap: power of two; id 0 = empty */
};

static struct idc *idc_slot(struct idcache *c, int64_t id)
{
    size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 20) & (c->cap - 1);
    while (c->v[i].id && c->v[i].id != id)
        i = (i + 1) & (c->cap - 1);
    return &c->v[i];
}

/* The hash of page id of im, from the cache or the catalog. */
static int idc_hash(uint8_t hash[16], struct idcache *c, fks_image *im, uint64_t pgno, int64_t *id)
{
    int rc = fks_image_page(id, NULL, im, pgno);
    if (rc || *id == 0)
        return rc;
    if ((c->n + 1) * 2 > c->cap) {
        struct idcache nc = {calloc(c->cap ? c->cap * 2 : 65536, sizeof *c->v), 0, c->cap ? c->cap * 2 : 65536};
        if (!nc.v)
            return fks__err(FKS_ENOMEM, "out of memory");
        for (size_t i = 0; i < c->cap; i++)
            if (c->v[i].id)
                *idc_slot(&nc, c->v[i].id) = c->v[i];
        nc.n = c->n;
        free(c->v);
        *c = nc;
    }
    struct idc *e = idc_slot(c, *id);
    if (e->id) {
        memcpy(hash, e->hash, 16);
        return 0;
    }
    int64_t again;
    if ((rc = fks_image_page(&again, hash, im, pgno)))
        return rc;
    e->id = *id;
    memcpy(e->hash, hash, 16);
    c->n++;
    return 0;
}

/* The map of local snapshot tag, read through fks_image_*. */
static int local_map(struct snapmap *m, fks_store *s, const char *tag, struct idcache *cache)
{
    memset(m, 0, sizeof *m);
    fks_snapinfo si;
    fks_branch_info bi;
    fks_snap_stats *st = NULL;
    int rc = fks_get(&si, s, tag);
    if (rc == 0)
        rc = fks_branch_info_get(&bi, s, tag);
    if (rc == 0)
        rc = fks_snap_stats_get(&st, s, tag);
    if (rc)
        return rc;
    snprintf(m->tag, sizeof m->tag, "%s", si.tag);
    snprintf(m->parent, sizeof m->parent, "%s", si.parent);
    m->created_ms = si.created_ms;
    snprintf(m->fc_version, sizeof m->fc_version, "%s", bi.fc_version);
    snprintf(m->format_version, sizeof m->format_version, "%s", bi.format_version);
    if (!(m->art = calloc(st->n_artifacts ? st->n_artifacts : 1, sizeof *m->art))) {
        fks_snap_stats_free(st);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    m->nart = st->n_artifacts;
    for (size_t i = 0; i < st->n_artifacts && rc == 0; i++) {
        struct amap *a = &m->art[i];
        snprintf(a->name, sizeof a->name, "%s", st->artifacts[i].name);
        fks_image *im = NULL;
        if ((rc = fks_image_open(&im, s, tag, a->name)))
            break;
        fks_image_info info;
        fks_image_info_get(&info, im);
        a->size = info.size;
        size_t nr;
        const fks_run *r = fks_image_runs(im, &nr);
        if (!(a->p = malloc((info.stored_pages ? info.stored_pages : 1) * sizeof *a->p))) {
            fks_image_close(im);
            rc = fks__err(FKS_ENOMEM, "out of memory (map of %llu pages)", (unsigned long long)info.stored_pages);
            break;
        }
        for (size_t k = 0; k < nr && rc == 0; k++)
            for (uint64_t g = r[k].pgno; g < r[k].pgno + r[k].npages && rc == 0; g++) {
                int64_t id;
                if (a->n >= info.stored_pages)
                    rc = fks__err(FKS_ECORRUPT, "snapshot %s, %s: more pages than counted", tag, a->name);
                else if ((rc = idc_hash(a->p[a->n].hash, cache, im, g, &id)) == 0 && id)
                    a->p[a->n++].pgno = g;
            }
        fks_image_close(im);
    }
    fks_snap_stats_free(st);
    if (rc) {
        snapmap_free(m);
        return fks__errctx(rc, "snapshot %s", tag);
    }
    content_digest(m);
    return 0;
}

/* ---- the remote handle ---- */

struct rem {
    fks_store *s;
    fks_remote r;
    s3_creds creds;
    s3_client *c;
    char pfx[520];
    struct index idx;
    uint8_t (*have)[32];         /* packs in the bucket listing (push), sorted */
    size_t nhave;
    fks_remote_stats st;
    double t0;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    /* push: the pack being filled and what the next index will name */
    struct buf pack_data;
    struct loc *pending;         /* entries of the open pack (off relative to data) */
    size_t npending, pendcap;
    size_t idx_first_loc, idx_first_pack;
    uint64_t packs_since_index;
    /* push: packs a remote gc has marked (never used, never written again
    ** under that name; design of gc, rule P1), sorted; the marks objects
    ** read, by key */
    uint8_t (*marked)[32];
    size_t nmarked;
    char **mkeys;
    size_t nmkeys;
    int filter;                  /* load_index: drop entries of packs not usable */
    int sealed;                  /* an encrypted remote: key holds its sub-keys */
    seal_key key;
    char key_hex[2 * SEAL_ID_LEN + 1];
};

/* ---- a page's bytes in a pack: the one decoder ---- */

/* The name page hash h (XXH3-128 of the page) has in the remote's index
** and packs: h itself, or on an encrypted remote HMAC-SHA-256 of h under
** the names key, first 16 bytes. (Every lookup and check goes through
** here.) */
static void page_name(uint8_t out[16], const struct rem *m, const uint8_t h[16])
{
    if (m->sealed)
        seal_name(out, 16, &m->key, "page", h, 16);
    else
        memcpy(out, h, 16);
}

/* The aad of a sealed page record: its label, key id, name, rlen and
** encoding, so that a record opens only as the page its entry names. */
static void page_aad(uint8_t aad[PAGE_AAD_LEN], const struct rem *m, const uint8_t name[16], uint32_t rlen,
                     uint8_t enc)
{
    memcpy(aad, PAGE_LABEL, 8);
    memcpy(aad + 8, m->key.id, SEAL_ID_LEN);
    memcpy(aad + 16, name, 16);
    aad[32] = (uint8_t)rlen;
    aad[33] = (uint8_t)(rlen >> 8);
    aad[34] = enc;
}

/* The bytes a stored page takes beyond its stored bytes: a sealed
** record's nonce and tag. */
static uint32_t page_overhead(const struct rem *m)
{
    return m && m->sealed ? SEAL_OVERHEAD : 0;
}

/* The place of the page whose hash is h, or NULL. */
static const struct loc *rem_find(const struct rem *m, const uint8_t h[16])
{
    uint8_t k[16];
    page_name(k, m, h);
    return idx_find(&m->idx, k);
}

enum { PAGE_OK, PAGE_UNDECODABLE, PAGE_WRONG, PAGE_SEAL };

/* Decodes one page's stored bytes (clen bytes at stored, encoding enc)
** into page and checks them against rlen and name (its entry's hash):
** PAGE_OK, PAGE_UNDECODABLE (not rlen bytes once decoded), PAGE_WRONG
** (decodes, fails its hash) or, on an encrypted remote, PAGE_SEAL (the
** sealed record fails its authentication: changed, or not the page its
** entry names). The caller says where. Needs only the entry and the
** record's bytes: a page fetched by a range GET opens the same way. */
static int page_open(struct rem *m, uint8_t page[FKS_PAGE_SIZE], const uint8_t *stored, uint32_t clen,
                     uint8_t enc, uint32_t rlen, const uint8_t name[16])
{
    size_t got = (size_t)-1;
    uint8_t plain[FKS_PAGE_SIZE + 64];
    if (rlen < 1 || rlen > FKS_PAGE_SIZE)
        return PAGE_UNDECODABLE;
    if (m->sealed) {
        uint8_t aad[PAGE_AAD_LEN];
        if (clen <= SEAL_OVERHEAD || clen - SEAL_OVERHEAD > sizeof plain)
            return PAGE_UNDECODABLE;
        page_aad(aad, m, name, rlen, enc);
        if (seal_open(plain, &m->key, aad, sizeof aad, stored, clen))
            return PAGE_SEAL;
        stored = plain;
        clen -= SEAL_OVERHEAD;
    }
    if (enc == 1) {
        got = ZSTD_decompressDCtx(m->dctx, page, FKS_PAGE_SIZE, stored, clen);
        if (ZSTD_isError(got))
            got = (size_t)-1;
    } else if (enc == 0 && clen == rlen) {
        memcpy(page, stored, clen);
        got = clen;
    }
    if (got != rlen)
        return PAGE_UNDECODABLE;
    uint8_t h[16], k[16];
    fks__hash(h, page, rlen);
    page_name(k, m, h);
    return memcmp(k, name, 16) ? PAGE_WRONG : PAGE_OK;
}

/* The key P dir name ext. */
static int key_of(char *out, size_t len, const struct rem *m, const char *dir, const char *name, const char *ext)
{
    return fks__path(out, len, "%s%s%s%s", m->pfx, dir, name, ext);
}

static int rem_connect(struct rem *m);
/* Sealed object kinds (index, manifest): magic (version 2), key id, then
** seal_seal of the version-1 object with those 16 bytes as aad. */

/* Replaces *b (len bytes, as read, caller owns) by the version-1 object it
** holds: on a plain remote a no-op (but an encrypted object is refused),
** on an encrypted remote the object opened. v1: the kind's magic. */
static int unseal(struct rem *m, const uint8_t v1[8], const char *what, const char *key, uint8_t **b, size_t *len)
{
    int v2 = *len >= 8 && memcmp(*b, v1, 7) == 0 && (*b)[7] == 2;
    if (!m->sealed)
        return v2 ? fks__err(FKS_EINVAL, "remote %s %s is encrypted, but remote %s has no key: add the remote with "
                             "--encrypt KEYFILE", what, key, m->r.name)
                  : 0;
    if (!v2)
        return fks__err(FKS_ECORRUPT, "remote %s %s is not encrypted, but remote %s is (an object planted by the "
                        "bucket's owner, or an unencrypted remote's prefix?)", what, key, m->r.name);
    if (*len < 16 + SEAL_OVERHEAD)
        return fks__err(FKS_ECORRUPT, "remote %s %s: truncated (%zu bytes)", what, key, *len);
    if (memcmp(*b + 8, m->key.id, SEAL_ID_LEN) != 0) {
        char other[2 * SEAL_ID_LEN + 1];
        for (int i = 0; i < SEAL_ID_LEN; i++)
            snprintf(other + 2 * i, 3, "%02x", (*b)[8 + i]);
        return fks__err(FKS_EINVAL, "remote %s %s is sealed with key id %s, but the key file of remote %s (%s) "
                        "has key id %s: wrong key file", what, key, other, m->r.name, m->r.key_file, m->key_hex);
    }
    size_t n = *len - 16 - SEAL_OVERHEAD;
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return fks__err(FKS_ENOMEM, "out of memory (%s)", what);
    if (seal_open(p, &m->key, *b, 16, *b + 16, *len - 16)) {
        free(p);
        return fks__err(FKS_ECORRUPT, "remote %s %s fails its authentication (AES-256-GCM): changed in the "
                        "bucket", what, key);
    }
    free(*b);
    *b = p;
    *len = n;
    return 0;
}

/* Seals version-1 object b in place on an encrypted remote (no-op on a
** plain one). */
static int seal_buf(struct rem *m, struct buf *b)
{
    if (!m->sealed || b->oom)
        return b->oom ? fks__err(FKS_ENOMEM, "out of memory") : 0;
    assert(b->len >= 8);
    uint8_t *o = malloc(16 + b->len + SEAL_OVERHEAD);
    if (!o)
        return fks__err(FKS_ENOMEM, "out of memory");
    memcpy(o, b->b, 7);
    o[7] = 2;
    memcpy(o + 8, m->key.id, SEAL_ID_LEN);
    int rc = seal_seal(o + 16, &m->key, o, 16, b->b, b->len);
    if (rc) {
        free(o);
        return rc;
    }
    free(b->b);
    b->b = o;
    b->len = b->cap = 16 + b->len + SEAL_OVERHEAD;
    return 0;
}

/* The key of tag's manifest: P snapshots/<tag>.manifest, or on an
** encrypted remote P snapshots/<hex HMAC-SHA-256 of the tag>.manifest
** (names key, label "tag"): the bucket's owner does not see tags. (Other
** per-snapshot objects: the same with their own ending, ext.) */
static int snap_key(char *out, size_t len, const struct rem *m, const char *tag, const char *ext)
{
    if (!m->sealed)
        return key_of(out, len, m, "snapshots/", tag, ext);
    uint8_t h[32];
    char hx[65];
    static const char d[] = "0123456789abcdef";
    seal_name(h, 32, &m->key, "tag", tag, strlen(tag));
    for (int i = 0; i < 32; i++) {
        hx[2 * i] = d[h[i] >> 4];
        hx[2 * i + 1] = d[h[i] & 15];
    }
    hx[64] = 0;
    return key_of(out, len, m, "snapshots/", hx, ext);
}

static int manifest_key(char *out, size_t len, const struct rem *m, const char *tag)
{
    return snap_key(out, len, m, tag, ".manifest");
}

/* The key of tag's working set: as its manifest's, ending in .ws. */
static int ws_key(char *out, size_t len, const struct rem *m, const char *tag)
{
    return snap_key(out, len, m, tag, ".ws");
}

static int rem_open(struct rem *m, fks_store *s, const char *name)
{
    memset(m, 0, sizeof *m);
    m->s = s;
    m->t0 = fks__now();
    int rc = fks_remote_get(&m->r, s, name);
    if (rc == 0 && m->r.key_file[0]) {
        /* The key file is read at each use; its id must be the one the
        ** remote was added with (else a replaced key file would look like
        ** a damaged bucket). */
        if ((rc = seal_key_load(&m->key, m->r.key_file)))
            return fks__errctx(rc, "remote %s", m->r.name);
        m->sealed = 1;
        seal_key_id_hex(m->key_hex, &m->key);
        if (strcmp(m->key_hex, m->r.key_id) != 0)
            return fks__err(FKS_EINVAL, "remote %s: key file %s has key id %s, but the remote was added with key "
                            "id %s: wrong key file (or it was replaced)", m->r.name, m->r.key_file, m->key_hex,
                            m->r.key_id);
    }
    if (rc == 0)
        rc = s3_creds_load(&m->creds);
    if (rc)
        return rc;
    snprintf(m->pfx, sizeof m->pfx, "%s%s", m->r.prefix, m->r.prefix[0] ? "/" : "");
    return rem_connect(m);
}

/* m's S3 client and zstd contexts, for m->r and m->creds. */
static int rem_connect(struct rem *m)
{
    int rc;
    s3_cfg cfg = {.endpoint = m->r.endpoint, .bucket = m->r.bucket, .region = m->r.region, .creds = &m->creds};
    const char *att = getenv("FORKSTORE_S3_ATTEMPTS");
    if (att && *att) {
        char *end;
        long v = strtol(att, &end, 10);
        if (*end || v < 1 || v > 100)
            return fks__err(FKS_EINVAL, "FORKSTORE_S3_ATTEMPTS=%s: give a number from 1 to 100", att);
        cfg.max_attempts = (int)v;
    }
    if ((rc = s3_open(&m->c, &cfg)))
        return rc;
    if (!(m->cctx = ZSTD_createCCtx()) || !(m->dctx = ZSTD_createDCtx()))
        return fks__err(FKS_ENOMEM, "out of memory (zstd)");
    return 0;
}

static void rem_close(struct rem *m, fks_remote_stats *out)
{
    if (m->c) {
        s3_stats ss;
        s3_stats_get(&ss, m->c);
        m->st.bytes_up = ss.bytes_up;
        m->st.bytes_down = ss.bytes_down;
        m->st.requests = ss.requests;
        m->st.retries = ss.retries;
    }
    m->st.seconds = fks__now() - m->t0;
    if (out)
        *out = m->st;
    s3_close(m->c);
    idx_free(&m->idx);
    free(m->have);
    free(m->pack_data.b);
    free(m->pending);
    free(m->marked);
    for (size_t i = 0; i < m->nmkeys; i++)
        free(m->mkeys[i]);
    free(m->mkeys);
    ZSTD_freeCCtx(m->cctx);
    ZSTD_freeDCtx(m->dctx);
    memset(&m->creds, 0, sizeof m->creds);
    seal_key_wipe(&m->key);
}

static int nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 64 lower-case hex digits into 32 bytes; -1 if h is not that. */
static int unhex32(uint8_t out[32], const char *h)
{
    for (int i = 0; i < 32; i++) {
        int hi = nibble(h[2 * i]), lo = hi < 0 ? -1 : nibble(h[2 * i + 1]);
        if (lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void hex32(char out[65], const uint8_t h[32])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = d[h[i] >> 4];
        out[2 * i + 1] = d[h[i] & 15];
    }
    out[64] = 0;
}

/* The SHA-256 a key "P dir/<hex>.ext" names; -1 if it is not such a key. */
static int name_sha(uint8_t sha[32], const struct rem *m, const char *key, const char *dir, const char *ext)
{
    size_t pl = strlen(m->pfx), dl = strlen(dir), el = strlen(ext);
    if (strncmp(key, m->pfx, pl) != 0 || strncmp(key + pl, dir, dl) != 0 || strlen(key) != pl + dl + 64 + el ||
        strcmp(key + pl + dl + 64, ext) != 0)
        return -1;
    return unhex32(sha, key + pl + dl);
}

struct keylist {
    char **k;
    size_t n, cap;
};

static int collect(void *arg, const char *key, uint64_t size)
{
    (void)size;
    struct keylist *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **k = realloc(l->k, cap * sizeof *k);
        if (!k)
            return fks__err(FKS_ENOMEM, "out of memory");
        l->k = k;
        l->cap = cap;
    }
    if (!(l->k[l->n] = strdup(key)))
        return fks__err(FKS_ENOMEM, "out of memory");
    l->n++;
    return 0;
}

static void keylist_free(struct keylist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->k[i]);
    free(l->k);
}

static int cmp_sha(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int sha_in(const uint8_t sha[32], const void *v, size_t n)
{
    return n && bsearch(sha, v, n, 32, cmp_sha) != NULL;
}

/* May a page be found in pack sha? (filter on: the pack is in the bucket
** listing and no gc has marked it) */
static int pack_usable(const struct rem *m, const uint8_t sha[32])
{
    return !m || !m->filter || (sha_in(sha, m->have, m->nhave) && !sha_in(sha, m->marked, m->nmarked));
}

/* Parses index object b (len bytes, already checked against its name and
** unsealed); with m->filter, entries of packs not pack_usable() are left
** out. */
static int index_parse(struct index *x, const uint8_t *b, size_t len, const char *key, const struct rem *m)
{
    uint32_t ov = page_overhead(m);
    if (len < 16 || memcmp(b, IDX_MAGIC, 8) != 0)
        return fks__err(FKS_ECORRUPT, "remote index %s: not an index (bad magic)", key);
    uint64_t p = fks__get32(b + 8), n = fks__get32(b + 12);
    if (16 + 40 * p + 36 * n != len)
        return fks__err(FKS_ECORRUPT, "remote index %s: %zu bytes for %llu packs and %llu pages", key, len,
                        (unsigned long long)p, (unsigned long long)n);
    uint32_t *map = calloc(p ? p : 1, sizeof *map);
    if (!map)
        return fks__err(FKS_ENOMEM, "out of memory");
    int rc = 0;
    /* A pack left out is not in x's pack list at all: a push that packs
    ** its pages again adds it as its own (index_flush names only those). */
    for (uint64_t i = 0; i < p && rc == 0; i++)
        if (pack_usable(m, b + 16 + 40 * i))
            rc = idx_add_pack(&map[i], x, b + 16 + 40 * i, fks__get64(b + 16 + 40 * i + 32));
        else
            map[i] = UINT32_MAX;
    const uint8_t *e = b + 16 + 40 * p;
    for (uint64_t i = 0; i < n && rc == 0; i++, e += 36) {
        struct loc l;
        memcpy(l.hash, e, 16);
        uint32_t pk = fks__get32(e + 16);
        l.off = fks__get64(e + 20);
        l.clen = fks__get32(e + 28);
        l.rlen = get16(e + 32);
        l.enc = e[34];
        uint64_t psize = pk < p ? fks__get64(b + 16 + 40 * pk + 32) : 0;
        if (pk >= p || l.rlen == 0 || l.rlen > FKS_PAGE_SIZE || l.enc > 1 || (l.enc == 0 && l.clen != l.rlen + ov) ||
            l.clen <= ov || l.off + l.clen > psize || l.off + l.clen < l.off) {
            rc = fks__err(FKS_ECORRUPT, "remote index %s: entry %llu is malformed", key, (unsigned long long)i);
            break;
        }
        l.pack = map[pk];
        if (l.pack != UINT32_MAX)
            rc = idx_add(x, &l);
    }
    free(map);
    return rc;
}

static int load_index_once(struct rem *m);

/* Reads every index object (design: the union is the remote's index). An
** index that vanished between the listing and its GET was merged by a
** remote gc into one written before: the listing is read again. */
static int load_index(struct rem *m)
{
    int rc = 0;
    for (int tries = 0; tries < 4; tries++) {
        idx_free(&m->idx);
        memset(&m->idx, 0, sizeof m->idx);
        if ((rc = load_index_once(m)) != FKS_ENOTFOUND)
            break;
    }
    return rc ? fks__errctx(rc, "remote %s", m->r.name) : 0;
}

static int load_index_once(struct rem *m)
{
    char pre[600];
    struct keylist l = {0};
    int rc = fks__path(pre, sizeof pre, "%sindex/", m->pfx);
    if (rc == 0)
        rc = s3_list(m->c, pre, collect, &l);
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        uint8_t want[32], got[32];
        if (name_sha(want, m, l.k[i], "index/", ".idx"))
            continue;   /* not ours: ignored */
        uint8_t *b;
        size_t len;
        if ((rc = s3_get(&b, &len, m->c, l.k[i], 0, 0)))
            break;
        s3_sha256(got, b, len);
        if (memcmp(want, got, 32) != 0)
            rc = fks__err(FKS_ECORRUPT, "remote index %s: its content does not match its name (SHA-256)", l.k[i]);
        else if ((rc = unseal(m, IDX_MAGIC, "index", l.k[i], &b, &len)) == 0)
            rc = index_parse(&m->idx, b, len, l.k[i], m);
        free(b);
    }
    keylist_free(&l);
    return rc;
}

/* The packs in the bucket (push: a pack already there is not sent again). */
static int load_have(struct rem *m)
{
    char pre[600];
    struct keylist l = {0};
    int rc = fks__path(pre, sizeof pre, "%spacks/", m->pfx);
    if (rc == 0)
        rc = s3_list(m->c, pre, collect, &l);
    if (rc == 0 && l.n && !(m->have = malloc(l.n * sizeof *m->have)))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < l.n && rc == 0; i++)
        if (name_sha(m->have[m->nhave], m, l.k[i], "packs/", ".pack") == 0)
            m->nhave++;
    keylist_free(&l);
    if (m->nhave && m->have)
        qsort(m->have, m->nhave, 32, cmp_sha);
    return rc;
}

/* Checks the header of pack b (len bytes, named key, already checked
** against its name) and finds its entry table: *tab (n entries of 32
** bytes; on an encrypted remote opened into *own, caller frees) and
** *data0, where the pages' bytes start. */
static int pack_table(const uint8_t **tab, uint64_t *n, uint64_t *data0, uint8_t **own, struct rem *m,
                      const uint8_t *b, size_t len, const char *key)
{
    *own = NULL;
    int v2 = len >= 8 && memcmp(b, PACK_MAGIC2, 8) == 0;
    if (!m->sealed) {
        if (v2)
            return fks__err(FKS_EINVAL, "remote pack %s is encrypted, but remote %s has no key: add the remote "
                            "with --encrypt KEYFILE", key, m->r.name);
        *n = len >= 16 ? fks__get32(b + 8) : 0;
        if (len < 16 || memcmp(b, PACK_MAGIC, 8) != 0 || 16 + 32 * *n > len)
            return fks__err(FKS_ECORRUPT, "remote pack %s: not a pack (bad magic or header past its end)", key);
        *tab = b + 16;
        *data0 = 16 + 32 * *n;
        return 0;
    }
    if (!v2)
        return fks__err(FKS_ECORRUPT, "remote pack %s is not an encrypted pack, but remote %s is encrypted", key,
                        m->r.name);
    *n = len >= PACK2_HDR ? fks__get32(b + 16) : 0;
    uint64_t tl = 32 * *n + SEAL_OVERHEAD;
    if (len < PACK2_HDR || PACK2_HDR + tl > len)
        return fks__err(FKS_ECORRUPT, "remote pack %s: header past its end", key);
    if (memcmp(b + 8, m->key.id, SEAL_ID_LEN) != 0)
        return fks__err(FKS_EINVAL, "remote pack %s is sealed with another key than remote %s's (key id %s): wrong "
                        "key file", key, m->r.name, m->key_hex);
    if (!(*own = malloc(32 * *n + 1)))
        return fks__err(FKS_ENOMEM, "out of memory");
    if (seal_open(*own, &m->key, b, PACK2_HDR, b + PACK2_HDR, tl)) {
        free(*own);
        *own = NULL;
        return fks__err(FKS_ECORRUPT, "remote pack %s: its entry table fails its authentication (AES-256-GCM)",
                        key);
    }
    *tab = *own;
    *data0 = PACK2_HDR + tl;
    return 0;
}

/* ---- gc marks (read by push, written by remote gc) ---- */

/* Parses marks object b (checked against its name): *t the gc run's time,
** *sha its n pack names (borrowed from b). */
static int marks_parse(int64_t *t, const uint8_t (**sha)[32], size_t *n, const uint8_t *b, size_t len,
                       const char *key)
{
    if (len < 24 || memcmp(b, MARK_MAGIC, 8) != 0)
        return fks__err(FKS_ECORRUPT, "remote gc marks %s: not a marks object (bad magic)", key);
    uint64_t k = fks__get32(b + 16);
    if (24 + 32 * k != len)
        return fks__err(FKS_ECORRUPT, "remote gc marks %s: %zu bytes for %llu packs", key, len,
                        (unsigned long long)k);
    *t = (int64_t)fks__get64(b + 8);
    *sha = (const uint8_t (*)[32])(b + 24);
    *n = (size_t)k;
    return 0;
}

/* GETs marks object key, checked against its name: *out (caller frees) or
** FKS_ENOTFOUND (a gc deleted it since the listing). */
static int marks_get(uint8_t **out, size_t *len, const struct rem *m, const char *key)
{
    uint8_t want[32], got[32];
    if (name_sha(want, m, key, "gc/", ".marks"))
        return fks__err(FKS_EINVAL, "%s is not a marks object's key", key);
    int rc = s3_get(out, len, m->c, key, 0, 0);
    if (rc)
        return rc;
    s3_sha256(got, *out, *len);
    if (memcmp(want, got, 32) != 0) {
        free(*out);
        *out = NULL;
        return fks__err(FKS_ECORRUPT, "remote gc marks %s: its content does not match its name (SHA-256)", key);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The packs of every marks object not in m->mkeys (all of them the first
** time), added to *v / *n (sorted on return); with remember, their keys
** join m->mkeys. */
static int marks_read_new(uint8_t (**v)[32], size_t *n, struct rem *m, int remember)
{
    char pre[600];
    struct keylist l = {0};
    int rc = fks__path(pre, sizeof pre, "%sgc/", m->pfx);
    if (rc == 0)
        rc = s3_list(m->c, pre, collect, &l);
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        uint8_t sha[32], *b = NULL;
        size_t len;
        if (name_sha(sha, m, l.k[i], "gc/", ".marks") ||
            (m->nmkeys && bsearch(&l.k[i], m->mkeys, m->nmkeys, sizeof *m->mkeys, cmp_str)))
            continue;
        if ((rc = marks_get(&b, &len, m, l.k[i])) == FKS_ENOTFOUND) {
            rc = 0;
            continue;
        }
        int64_t t = 0;
        const uint8_t (*p)[32] = NULL;
        size_t k = 0;
        if (rc == 0 && (rc = marks_parse(&t, &p, &k, b, len, l.k[i])) == 0 && k) {
            uint8_t (*nv)[32] = realloc(*v, (*n + k) * 32);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
            } else {
                memcpy(nv + *n, p, k * 32);
                *v = nv;
                *n += k;
            }
        }
        free(b);
        if (rc == 0 && remember) {
            char **nk = realloc(m->mkeys, (m->nmkeys + 1) * sizeof *nk);
            if (nk)
                m->mkeys = nk;
            if (!nk || !(m->mkeys[m->nmkeys] = strdup(l.k[i])))
                rc = fks__err(FKS_ENOMEM, "out of memory");
            else
                m->nmkeys++;
        }
    }
    keylist_free(&l);
    if (*n)
        qsort(*v, *n, 32, cmp_sha);
    if (m->nmkeys)
        qsort(m->mkeys, m->nmkeys, sizeof *m->mkeys, cmp_str);
    return rc;
}

/* 1 if a marks object written since this push read them names a pack
** holding a page of map (the push must start again: design of gc, rule
** P2), 0 if none does. */
static int marks_recheck(struct rem *m, const struct snapmap *map)
{
    uint8_t (*nv)[32] = NULL;
    size_t n = 0;
    int rc = marks_read_new(&nv, &n, m, 0);
    for (size_t i = 0; i < map->nart && rc == 0 && n; i++)
        for (size_t k = 0; k < map->art[i].n && rc == 0; k++) {
            const struct loc *l = rem_find(m, map->art[i].p[k].hash);
            if (!l)
                rc = fks__err(FKS_ERR, "push %s: a page is in no pack after its packs were sent", map->tag);
            else if (sha_in(m->idx.packs[l->pack].sha, nv, n))
                rc = PUSH_AGAIN;
        }
    free(nv);
    return rc;
}

/* ---- push ---- */

/* The index object naming x's packs from p0 and locs from l0 on (every
** loc from l0 on is in a pack from p0 on), into b. */
static void index_encode(struct buf *b, const struct index *x, size_t p0, size_t l0)
{
    buf_add(b, IDX_MAGIC, 8);
    buf_u32(b, (uint32_t)(x->npacks - p0));
    buf_u32(b, (uint32_t)(x->n - l0));
    for (size_t i = p0; i < x->npacks; i++) {
        buf_add(b, x->packs[i].sha, 32);
        buf_u64(b, x->packs[i].size);
    }
    for (size_t i = l0; i < x->n; i++) {
        const struct loc *l = &x->v[i];
        assert(l->pack >= p0);
        buf_add(b, l->hash, 16);
        buf_u32(b, (uint32_t)(l->pack - p0));
        buf_u64(b, l->off);
        buf_u32(b, l->clen);
        buf_u16(b, l->rlen);
        buf_u8(b, l->enc);
        buf_u8(b, 0);
    }
}

/* PUTs index object b (sealed first on an encrypted remote) under its
** name; its key into key (may be NULL). */
static int index_put(struct rem *m, struct buf *b, char key[700])
{
    if (b->oom)
        return fks__err(FKS_ENOMEM, "out of memory (remote index)");
    int rc = seal_buf(m, b);
    if (rc)
        return rc;
    uint8_t sha[32];
    char hx[65], k[700];
    s3_sha256(sha, b->b, b->len);
    hex32(hx, sha);
    rc = key_of(k, sizeof k, m, "index/", hx, ".idx");
    if (rc == 0)
        rc = s3_put(m->c, k, b->b, b->len, hx);
    if (rc == 0 && key)
        memcpy(key, k, sizeof k);
    return rc;
}

/* Writes an index object for the locs and packs added since the last one. */
static int index_flush(struct rem *m)
{
    struct index *x = &m->idx;
    if (x->n == m->idx_first_loc)
        return 0;
    struct buf b = {0};
    index_encode(&b, x, m->idx_first_pack, m->idx_first_loc);
    int rc = index_put(m, &b, NULL);
    free(b.b);
    if (rc == 0) {
        m->idx_first_loc = x->n;
        m->idx_first_pack = x->npacks;
        m->packs_since_index = 0;
    }
    return rc;
}

/* Closes the open pack: builds it, names it, uploads it unless the bucket
** has it (design 2), then adds its pages to the index. */
/* The open pack with salt into b (emptied first): header, entry table
** (sealed on an encrypted remote: aad the header), the pages' bytes. The
** entries' offsets are final. */
static int pack_build(struct rem *m, struct buf *b, uint32_t salt)
{
    b->len = 0;
    buf_need(b, PACK2_HDR + SEAL_OVERHEAD + 32 * (uint64_t)m->npending + m->pack_data.len);
    struct buf t = {0}, *e = m->sealed ? &t : b;
    if (m->sealed) {
        buf_add(b, PACK_MAGIC2, 8);
        buf_add(b, m->key.id, SEAL_ID_LEN);
    } else {
        buf_add(b, PACK_MAGIC, 8);
    }
    buf_u32(b, (uint32_t)m->npending);
    buf_u32(b, salt);
    for (size_t i = 0; i < m->npending; i++) {
        const struct loc *l = &m->pending[i];
        buf_add(e, l->hash, 16);
        buf_u64(e, l->off);
        buf_u32(e, l->clen);
        buf_u16(e, l->rlen);
        buf_u8(e, l->enc);
        buf_u8(e, 0);
    }
    int rc = 0;
    if (m->sealed && !t.oom) {
        buf_need(b, t.len + SEAL_OVERHEAD);
        if (!b->oom && (rc = seal_seal(b->b + b->len, &m->key, b->b, PACK2_HDR, t.b, t.len)) == 0)
            b->len += t.len + SEAL_OVERHEAD;
    }
    b->oom |= t.oom;
    free(t.b);
    buf_add(b, m->pack_data.b, m->pack_data.len);
    return rc ? rc : b->oom ? fks__err(FKS_ENOMEM, "out of memory (pack)") : 0;
}

static int pack_flush(struct rem *m)
{
    if (!m->npending)
        return 0;
    uint64_t hdr = m->sealed ? PACK2_HDR + SEAL_OVERHEAD + 32 * (uint64_t)m->npending : 16 + 32 * (uint64_t)m->npending;
    for (size_t i = 0; i < m->npending; i++)
        m->pending[i].off += hdr;
    struct buf b = {0};
    int rc = pack_build(m, &b, 0);
    uint8_t sha[32];
    if (rc == 0) {
        /* A name a gc marked is never written again (rule P1): the salt
        ** changes the name, the same way on every re-run. */
        s3_sha256(sha, b.b, b.len);
        for (uint32_t salt = 1; rc == 0 && sha_in(sha, m->marked, m->nmarked); salt++)
            if ((rc = pack_build(m, &b, salt)) == 0)
                s3_sha256(sha, b.b, b.len);
    }
    if (rc == 0) {
        if (sha_in(sha, m->have, m->nhave)) {
            m->st.packs_reused++;
        } else {
            char hx[65], key[700];
            hex32(hx, sha);
            if ((rc = key_of(key, sizeof key, m, "packs/", hx, ".pack")) == 0 &&
                (rc = s3_put(m->c, key, b.b, b.len, hx)) == 0)
                m->st.packs++;
        }
    }
    uint32_t no = 0;
    if (rc == 0)
        rc = idx_add_pack(&no, &m->idx, sha, b.len);
    for (size_t i = 0; i < m->npending && rc == 0; i++) {
        m->pending[i].pack = no;
        rc = idx_add(&m->idx, &m->pending[i]);
    }
    free(b.b);
    if (rc)
        return rc;
    m->npending = 0;
    m->pack_data.len = 0;
    if (++m->packs_since_index >= INDEX_EVERY)
        rc = index_flush(m);
    return rc;
}

/* Is h in the open pack? (a linear scan would be quadratic: pages of the
** open pack are also kept in a small side table) */
struct pendset {
    uint8_t (*h)[16];
    size_t cap;                  /* power of two; entries all-zero = empty */
    size_t n;
};

static int pend_has_or_add(struct pendset *p, const uint8_t h[16], int *had)
{
    *had = 0;
    if ((p->n + 1) * 2 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        uint8_t (*t)[16] = calloc(cap, 16);
        if (!t)
            return fks__err(FKS_ENOMEM, "out of memory");
        for (size_t i = 0; i < p->cap; i++)
            if (memcmp(p->h[i], ZERO16, 16) != 0) {
                size_t k = slot_of(p->h[i], cap);
                while (memcmp(t[k], ZERO16, 16) != 0)
                    k = (k + 1) & (cap - 1);
                memcpy(t[k], p->h[i], 16);
            }
        free(p->h);
        p->h = t;
        p->cap = cap;
    }
    size_t k = slot_of(h, p->cap);
    while (memcmp(p->h[k], ZERO16, 16) != 0) {
        if (memcmp(p->h[k], h, 16) == 0) {
            *had = 1;
            return 0;
        }
        k = (k + 1) & (p->cap - 1);
    }
    memcpy(p->h[k], h, 16);
    p->n++;
    return 0;
}

static void pend_clear(struct pendset *p)
{
    if (p->h)
        memset(p->h, 0, p->cap * 16);
    p->n = 0;
}

/* Adds one page (rlen bytes of page) to the open pack. */
static int pack_add(struct rem *m, const uint8_t hash[16], const uint8_t *page, uint32_t rlen)
{
    uint8_t z[FKS_PAGE_SIZE + 64];
    size_t n = ZSTD_compressCCtx(m->cctx, z, sizeof z, page, rlen, ZLEVEL);
    if (ZSTD_isError(n))
        return fks__err(FKS_ERR, "zstd: %s", ZSTD_getErrorName(n));
    struct loc l = {.off = m->pack_data.len, .rlen = (uint16_t)rlen};
    page_name(l.hash, m, hash);
    const uint8_t *stored = n < rlen ? z : page;
    l.enc = n < rlen ? 1 : 0;
    l.clen = n < rlen ? (uint32_t)n : rlen;
    if (m->sealed) {
        /* One record per page (nonce, ciphertext, tag): a range GET of
        ** its entry's bytes opens alone. */
        uint8_t aad[PAGE_AAD_LEN];
        int rc;
        page_aad(aad, m, l.hash, rlen, l.enc);
        buf_need(&m->pack_data, l.clen + SEAL_OVERHEAD);
        if (!m->pack_data.oom) {
            if ((rc = seal_seal(m->pack_data.b + m->pack_data.len, &m->key, aad, sizeof aad, stored, l.clen)))
                return rc;
            m->pack_data.len += l.clen + SEAL_OVERHEAD;
        }
        l.clen += SEAL_OVERHEAD;
    } else {
        buf_add(&m->pack_data, stored, l.clen);
    }
    if (m->npending == m->pendcap) {
        size_t cap = m->pendcap ? m->pendcap * 2 : 1024;
        struct loc *v = realloc(m->pending, cap * sizeof *v);
        if (!v)
            return fks__err(FKS_ENOMEM, "out of memory");
        m->pending = v;
        m->pendcap = cap;
    }
    if (m->pack_data.oom)
        return fks__err(FKS_ENOMEM, "out of memory (pack)");
    m->pending[m->npending++] = l;
    m->st.pages_sent++;
    m->st.page_bytes += l.clen;
    return 0;
}

/* Sends the pages of snapshot map->tag that the remote lacks. */
static int send_pages(struct rem *m, const struct snapmap *map, struct pendset *ps, fks__progress *pg)
{
    int rc = 0;
    uint8_t page[FKS_PAGE_SIZE], h[16];
    for (size_t i = 0; i < map->nart && rc == 0; i++) {
        const struct amap *a = &map->art[i];
        fks_image *im = NULL;
        if ((rc = fks_image_open(&im, m->s, map->tag, a->name)))
            break;
        for (size_t k = 0; k < a->n && rc == 0; k++) {
            const struct mpage *p = &a->p[k];
            m->st.pages++;
            fks__progress_add(pg, FKS_PAGE_SIZE);
            int had = 0;
            if (rem_find(m, p->hash)) {
                m->st.pages_dedup++;
                continue;
            }
            if ((rc = pend_has_or_add(ps, p->hash, &had)) || had)
                continue;
            uint32_t rlen = rlen_of(a->size, p->pgno);
            if ((rc = fks_image_read(im, p->pgno, 1, page)))
                break;
            fks__hash(h, page, rlen);
            if (memcmp(h, p->hash, 16) != 0) {
                rc = fks__err(FKS_ECORRUPT, "snapshot %s, %s page %llu: read bytes do not match its hash",
                              map->tag, a->name, (unsigned long long)p->pgno);
                break;
            }
            if ((rc = pack_add(m, p->hash, page, rlen)) == 0 && m->pack_data.len >= PACK_TARGET) {
                rc = pack_flush(m);
                pend_clear(ps);
            }
        }
        fks_image_close(im);
        if (rc)
            fks__errctx(rc, "push %s, %s", map->tag, a->name);
    }
    if (rc == 0 && (rc = pack_flush(m)) == 0)
        rc = index_flush(m);
    pend_clear(ps);
    return rc;
}

/* The pages of a (by pgno) whose hash differs from b's page at the same
** pgno, into d (room for a->n + b->n): a's page, or 16 zero bytes where a
** has a zero page and b has not (pages of b at or past a's end are not
** listed). Returns their number. */
static size_t map_diff(struct mpage *d, const struct amap *a, const struct amap *b)
{
    size_t nd = 0, i = 0, j = 0;
    uint64_t np = npages_of(a->size);
    while (i < a->n || j < b->n) {
        if (j >= b->n || (i < a->n && a->p[i].pgno < b->p[j].pgno)) {
            d[nd++] = a->p[i++];
        } else if (i >= a->n || b->p[j].pgno < a->p[i].pgno) {
            if (b->p[j].pgno < np) {   /* the parent's page became zero */
                d[nd].pgno = b->p[j].pgno;
                memset(d[nd++].hash, 0, 16);
            }
            j++;
        } else {
            if (memcmp(a->p[i].hash, b->p[j].hash, 16) != 0)
                d[nd++] = a->p[i];
            i++;
            j++;
        }
    }
    return nd;
}

/* Encodes the pages of a (by pgno) that differ from b (NULL: all). */
static void put_ranges(struct buf *o, const struct amap *a, const struct amap *b)
{
    /* First the list of (pgno, hash) to write, then grouped into ranges. */
    struct mpage *d = malloc((a->n + (b ? b->n : 0) + 1) * sizeof *d);
    if (!d) {
        o->oom = 1;
        return;
    }
    size_t nd;
    if (!b) {
        memcpy(d, a->p, a->n * sizeof *d);
        nd = a->n;
    } else {
        nd = map_diff(d, a, b);
    }
    size_t nr = 0;
    for (size_t k = 0; k < nd; k++)
        if (k == 0 || d[k].pgno != d[k - 1].pgno + 1)
            nr++;
    buf_u32(o, (uint32_t)nr);
    for (size_t k = 0; k < nd;) {
        size_t e = k + 1;
        while (e < nd && d[e].pgno == d[e - 1].pgno + 1)
            e++;
        buf_u64(o, d[k].pgno);
        buf_u64(o, e - k);
        for (size_t q = k; q < e; q++)
            buf_add(o, d[q].hash, 16);
        k = e;
    }
    free(d);
}

static const struct amap *art_named(const struct snapmap *m, const char *name)
{
    for (size_t i = 0; m && i < m->nart; i++)
        if (strcmp(m->art[i].name, name) == 0)
            return &m->art[i];
    return NULL;
}

static int manifest_encode(struct buf *o, const struct snapmap *m, const struct snapmap *parent)
{
    char hx[65];
    hex32(hx, m->content);
    struct buf *body = calloc(m->nart ? m->nart : 1, sizeof *body);
    if (!body)
        return fks__err(FKS_ENOMEM, "out of memory");
    json_object *j = json_object_new_object(), *arts = json_object_new_array();
    json_object_object_add(j, "format", json_object_new_int(1));
    json_object_object_add(j, "tag", json_object_new_string(m->tag));
    json_object_object_add(j, "parent", m->parent[0] ? json_object_new_string(m->parent) : NULL);
    json_object_object_add(j, "created_ms", json_object_new_int64(m->created_ms));
    json_object_object_add(j, "fc_version", m->fc_version[0] ? json_object_new_string(m->fc_version) : NULL);
    json_object_object_add(j, "format_version",
                           m->format_version[0] ? json_object_new_string(m->format_version) : NULL);
    json_object_object_add(j, "content", json_object_new_string(hx));
    int oom = 0;
    for (size_t i = 0; i < m->nart; i++) {
        const struct amap *a = &m->art[i], *pa = art_named(parent, a->name);
        struct buf full = {0}, delta = {0};
        put_ranges(&full, a, NULL);
        if (pa)
            put_ranges(&delta, a, pa);
        int use_delta = pa && !delta.oom && delta.len < full.len;
        body[i] = use_delta ? delta : full;
        free(use_delta ? full.b : delta.b);
        oom |= body[i].oom;
        json_object *ja = json_object_new_object();
        json_object_object_add(ja, "name", json_object_new_string(a->name));
        json_object_object_add(ja, "size", json_object_new_int64((int64_t)a->size));
        json_object_object_add(ja, "delta", json_object_new_boolean(use_delta));
        json_object_array_add(arts, ja);
    }
    json_object_object_add(j, "artifacts", arts);
    const char *js = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    buf_add(o, MAN_MAGIC, 8);
    buf_u32(o, (uint32_t)strlen(js));
    buf_add(o, js, strlen(js));
    json_object_put(j);
    for (size_t i = 0; i < m->nart; i++) {
        buf_add(o, body[i].b, body[i].len);
        free(body[i].b);
    }
    free(body);
    uint8_t sha[32];
    if (!o->oom)
        s3_sha256(sha, o->b, o->len);
    buf_add(o, sha, 32);
    return oom || o->oom ? fks__err(FKS_ENOMEM, "out of memory (manifest)") : 0;
}

/* Checks a manifest's trailer and parses its JSON header: *jout (caller
** puts), *body the first byte after it. */
static int manifest_header(json_object **jout, const uint8_t **body, const uint8_t *b, size_t len, const char *key)
{
    *jout = NULL;
    *body = b;
    uint8_t sha[32];
    if (len < 12 + 32 || memcmp(b, MAN_MAGIC, 8) != 0)
        return fks__err(FKS_ECORRUPT, "remote manifest %s: not a manifest (bad magic or too short)", key);
    s3_sha256(sha, b, len - 32);
    if (memcmp(sha, b + len - 32, 32) != 0)
        return fks__err(FKS_ECORRUPT, "remote manifest %s: its checksum (SHA-256) does not match", key);
    uint64_t jl = fks__get32(b + 8);
    if (12 + jl + 32 > len)
        return fks__err(FKS_ECORRUPT, "remote manifest %s: header length %llu past the end", key,
                        (unsigned long long)jl);
    json_tokener *t = json_tokener_new();
    json_object *j = t ? json_tokener_parse_ex(t, (const char *)b + 12, (int)jl) : NULL;
    int ok = j && json_tokener_get_error(t) == json_tokener_success && json_object_is_type(j, json_type_object);
    json_tokener_free(t);
    if (!ok) {
        json_object_put(j);
        return fks__err(FKS_ECORRUPT, "remote manifest %s: its JSON header does not parse", key);
    }
    *jout = j;
    *body = b + 12 + jl;
    return 0;
}

static const char *jstr(json_object *j, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(j, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                          : NULL;
}

/* The manifest header's fields j into m; its artifacts array in *arts. */
static int md_header(struct snapmap *m, json_object *j, json_object **arts, const char *key)
{
    json_object *v;
    const char *tag = jstr(j, "tag"), *par = jstr(j, "parent"), *content = jstr(j, "content");
    if (!json_object_object_get_ex(j, "format", &v) || json_object_get_int(v) != 1)
        return fks__err(FKS_ENEWER, "remote manifest %s: format is not 1 (written by a newer forkstore?)", key);
    if (!tag || fks_check_tag(tag) || strlen(tag) >= sizeof m->tag || (par && (fks_check_tag(par) ||
        strlen(par) >= sizeof m->parent)) || !content || strlen(content) != 64 ||
        !json_object_object_get_ex(j, "artifacts", arts) || !json_object_is_type(*arts, json_type_array))
        return fks__err(FKS_ECORRUPT, "remote manifest %s: header lacks tag, parent, content or artifacts", key);
    snprintf(m->tag, sizeof m->tag, "%s", tag);
    snprintf(m->parent, sizeof m->parent, "%s", par ? par : "");
    if (json_object_object_get_ex(j, "created_ms", &v))
        m->created_ms = json_object_get_int64(v);
    snprintf(m->fc_version, sizeof m->fc_version, "%s", jstr(j, "fc_version") ? jstr(j, "fc_version") : "");
    snprintf(m->format_version, sizeof m->format_version, "%s",
             jstr(j, "format_version") ? jstr(j, "format_version") : "");
    return 0;
}

/* One artifact's map at *p (before end): its ranges' pages into *d (nd
** of them), checked for order and bounds against np pages. */
static int md_ranges(struct mpage **d, size_t *nd, const uint8_t **p, const uint8_t *end, uint64_t np,
                     const char *key, const char *name)
{
    size_t cap = 0;
    uint64_t last = 0;
    if (end - *p < 4)
        return fks__err(FKS_ECORRUPT, "remote manifest %s: truncated map of %s", key, name);
    uint32_t nr = fks__get32(*p);
    *p += 4;
    for (uint32_t r = 0; r < nr; r++) {
        if (end - *p < 16)
            return fks__err(FKS_ECORRUPT, "remote manifest %s: truncated map of %s", key, name);
        uint64_t pg = fks__get64(*p), n = fks__get64(*p + 8);
        *p += 16;
        if (n == 0 || pg >= np || n > np - pg || (r && pg < last) || (uint64_t)(end - *p) / 16 < n)
            return fks__err(FKS_ECORRUPT, "remote manifest %s: range %u of %s is out of order or bounds", key, r,
                            name);
        last = pg + n;
        if (*nd + n > cap) {
            cap = (*nd + n) * 2;
            struct mpage *nv = realloc(*d, cap * sizeof *nv);
            if (!nv)
                return fks__err(FKS_ENOMEM, "out of memory");
            *d = nv;
        }
        for (uint64_t q = 0; q < n; q++, *p += 16) {
            (*d)[*nd].pgno = pg + q;
            memcpy((*d)[(*nd)++].hash, *p, 16);
        }
    }
    return 0;
}

/* a's pages: the map's nd pages d applied to the parent's pa (a delta;
** NULL: a full map), zero pages dropped (in a full map, an error). */
static int md_apply(struct amap *a, const struct mpage *d, size_t nd, const struct amap *pa, int delta,
                    uint64_t np, const char *key)
{
    size_t cnt = nd + (pa ? pa->n : 0), x = 0, y = 0;
    if (!(a->p = malloc((cnt ? cnt : 1) * sizeof *a->p)))
        return fks__err(FKS_ENOMEM, "out of memory");
    while (x < nd || (pa && y < pa->n)) {
        if (pa && y < pa->n && (x >= nd || pa->p[y].pgno < d[x].pgno)) {
            if (pa->p[y].pgno < np)
                a->p[a->n++] = pa->p[y];
            y++;
        } else {
            if (pa && y < pa->n && pa->p[y].pgno == d[x].pgno)
                y++;
            if (memcmp(d[x].hash, ZERO16, 16) != 0)
                a->p[a->n++] = d[x];
            else if (!delta)
                return fks__err(FKS_ECORRUPT, "remote manifest %s: a zero hash in the full map of %s", key,
                                a->name);
            x++;
        }
    }
    return 0;
}

/* Artifact i of the manifest: its header entry ja, its map at *p. */
static int md_artifact(struct snapmap *m, size_t i, json_object *ja, const uint8_t **p, const uint8_t *end,
                       const char *key, const struct snapmap *parent)
{
    json_object *sz, *dl;
    const char *name = jstr(ja, "name");
    struct amap *a = &m->art[i];
    m->nart = i + 1;
    if (!name || fks_check_name(name) || !json_object_object_get_ex(ja, "size", &sz) ||
        json_object_get_int64(sz) < 0 || !json_object_object_get_ex(ja, "delta", &dl))
        return fks__err(FKS_ECORRUPT, "remote manifest %s: artifact %zu is malformed", key, i);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->size = (uint64_t)json_object_get_int64(sz);
    uint64_t np = npages_of(a->size);
    int delta = json_object_get_boolean(dl);
    const struct amap *pa = delta ? art_named(parent, name) : NULL;
    if (delta && !pa)
        return fks__err(FKS_ECORRUPT, "remote manifest %s: %s is a delta but the parent has no %s", key, name, name);
    struct mpage *d = NULL;
    size_t nd = 0;
    int rc = md_ranges(&d, &nd, p, end, np, key, name);
    if (rc == 0)
        rc = md_apply(a, d, nd, pa, delta, np, key);
    free(d);
    return rc;
}

/* The pages of m against the header's content digest (hex). */
static int md_content(struct snapmap *m, const char *content, const char *key)
{
    uint8_t want[32];
    if (unhex32(want, content))
        return fks__err(FKS_ECORRUPT, "remote manifest %s: content is not hex", key);
    content_digest(m);
    if (memcmp(want, m->content, 32) != 0)
        return fks__err(FKS_ECORRUPT, "remote manifest %s: its pages do not give its content digest", key);
    return 0;
}

/* Decodes manifest b into *m; parent: the decoded map of its parent (for
** delta artifacts; NULL for a root). */
static int manifest_decode(struct snapmap *m, const uint8_t *b, size_t len, const char *key,
                           const struct snapmap *parent)
{
    memset(m, 0, sizeof *m);
    json_object *j, *arts = NULL;
    const uint8_t *p = b, *end = b + len - 32;
    int rc = manifest_header(&j, &p, b, len, key);
    if (rc)
        return rc;
    if ((rc = md_header(m, j, &arts, key)) == 0) {
        size_t na = json_object_array_length(arts);
        if (!(m->art = calloc(na ? na : 1, sizeof *m->art)))
            rc = fks__err(FKS_ENOMEM, "out of memory");
        for (size_t i = 0; i < na && rc == 0; i++)
            rc = md_artifact(m, i, json_object_array_get_idx(arts, i), &p, end, key, parent);
    }
    if (rc == 0 && p != end)
        rc = fks__err(FKS_ECORRUPT, "remote manifest %s: %td bytes after the last map", key, end - p);
    if (rc == 0)
        rc = md_content(m, jstr(j, "content"), key);
    json_object_put(j);
    if (rc)
        snapmap_free(m);
    return rc;
}

/* 1 if the remote has a manifest for tag with content `content`, 0 if
** none; FKS_EEXIST if one with other content. */
static int remote_has(struct rem *m, const char *tag, const uint8_t content[32])
{
    char key[700];
    int rc = manifest_key(key, sizeof key, m, tag);
    uint8_t *b = NULL;
    size_t len;
    if (rc == 0)
        rc = s3_get(&b, &len, m->c, key, 0, 0);
    if (rc == FKS_ENOTFOUND)
        return 0;
    if (rc == 0 && (rc = unseal(m, MAN_MAGIC, "manifest", key, &b, &len)))
        free(b);
    if (rc)
        return rc;
    json_object *j;
    const uint8_t *body;
    if ((rc = manifest_header(&j, &body, b, len, key)) == 0) {
        const char *c = jstr(j, "content");
        uint8_t have[32];
        if (!c || strlen(c) != 64 || unhex32(have, c))
            rc = fks__err(FKS_ECORRUPT, "remote manifest %s: no content digest", key);
        else if (memcmp(have, content, 32) != 0)
            rc = fks__err(FKS_EEXIST, "remote %s already holds a different snapshot %s (pushed from another "
                          "store?): rename the local one (tag) and push again", m->r.name, tag);
        else
            rc = 1;
        json_object_put(j);
    }
    free(b);
    return rc;
}

/* Uploads tag's own working set (recorded by a lazy restore; none from an
** ancestor), if it has one, as P snapshots/<tag>.ws, created once (If-None-
** Match): a set recorded after the first upload is not sent again. */
static int ws_push(struct rem *m, const char *tag)
{
    uint64_t *ws = NULL;
    size_t n = 0;
    char from[129] = "", key[700];
    struct buf b = {0};
    int rc = fks_working_set_get(&ws, &n, from, sizeof from, m->s, tag);
    if (rc || n == 0 || strcmp(from, tag) != 0)
        goto out;
    if ((rc = ws_key(key, sizeof key, m, tag)) || (rc = s3_head(NULL, m->c, key)) != FKS_ENOTFOUND)
        goto out;                      /* there already (0), or an error */
    buf_add(&b, WS_MAGIC, 8);
    buf_u64(&b, n);
    for (size_t i = 0; i < n; i++)
        buf_u64(&b, ws[i]);
    uint8_t sha[32];
    if (!b.oom)
        s3_sha256(sha, b.b, b.len);
    buf_add(&b, sha, 32);
    if ((rc = seal_buf(m, &b)))        /* encrypted remote: sealed as a manifest is */
        ;
    else if ((rc = s3_put_new(m->c, key, b.b, b.len, NULL)) == 0)
        m->st.working_sets++;
    else if (rc == FKS_EEXIST)
        rc = 0;                        /* another push's: the first one stays */
out:
    free(ws);
    free(b.b);
    return rc ? fks__errctx(rc, "working set of %s", tag) : 0;
}

/* One push; PUSH_AGAIN if a gc marked a pack it used (then nothing of the
** snapshot concerned is committed: its manifest is not written). */
static int push_once(fks_remote_stats *st, fks_store *s, const char *remote, const char *const *tags, size_t n,
                     fks_progress_fn progress, void *progress_arg)
{
    struct rem m;
    struct pendset ps = {0};
    struct idcache cache = {0};
    fks__progress pg;              /* util.h: the one reporter */
    fks__progress_init(&pg, progress, progress_arg, 0);
    char (*done)[129] = NULL;
    size_t ndone = 0, capdone = 0;
    int rc = rem_open(&m, s, remote);
    /* The marks first, then the packs, then the indexes (gc rule P1):
    ** no page is found in a pack that is gone or marked. */
    if (rc == 0)
        rc = marks_read_new(&m.marked, &m.nmarked, &m, 1);
    if (rc == 0)
        rc = load_have(&m);
    m.filter = 1;
    if (rc == 0)
        rc = load_index(&m);
    m.idx_first_loc = m.idx.n;          /* our indexes name only what we add */
    m.idx_first_pack = m.idx.npacks;
    for (size_t t = 0; t < n && rc == 0; t++) {
        fks_snapinfo *chain = NULL;
        size_t nc = 0;
        if ((rc = fks_chain(&chain, &nc, s, tags[t])))
            break;
        for (size_t k = 0; k < nc; k++)
            fks__progress_total(&pg, chain[k].logical_bytes);
        struct snapmap prev = {0}, cur;
        for (size_t k = 0; k < nc && rc == 0; k++) {
            int seen = 0;
            for (size_t q = 0; q < ndone && !seen; q++)
                seen = strcmp(done[q], chain[k].tag) == 0;
            if ((rc = local_map(&cur, s, chain[k].tag, &cache)))
                break;
            if (!seen) {
                int has = remote_has(&m, cur.tag, cur.content);
                if (has < 0) {
                    rc = has;
                } else if (has) {
                    m.st.skipped++;
                } else {
                    struct buf man = {0};
                    char key[700];
                    if ((rc = send_pages(&m, &cur, &ps, &pg)) == 0 &&          /* invariant 1 */
                        (rc = manifest_encode(&man, &cur, k ? &prev : NULL)) == 0 &&
                        (rc = seal_buf(&m, &man)) == 0 &&
                        (rc = manifest_key(key, sizeof key, &m, cur.tag)) == 0 &&
                        (rc = marks_recheck(&m, &cur)) == 0) {                /* gc rule P2 */
                        /* Created only if absent (invariant 3): of two pushes
                        ** of one tag the second finds the first's manifest. */
                        if ((rc = s3_put_new(m.c, key, man.b, man.len, NULL)) == 0) {
                            m.st.snapshots++;
                        } else if (rc == FKS_EEXIST) {
                            int h2 = remote_has(&m, cur.tag, cur.content);
                            rc = h2 < 0 ? h2 : h2 ? 0 : fks__err(FKS_ERR, "remote manifest %s: refused as "
                                                                 "existing, then absent", key);
                            if (h2 == 1)
                                m.st.skipped++;
                        }
                    }
                    free(man.b);
                }
                if (rc == 0)
                    rc = ws_push(&m, cur.tag);   /* after its manifest */
                if (rc == 0) {
                    if (ndone == capdone) {
                        capdone = capdone ? capdone * 2 : 16;
                        char (*nd)[129] = realloc(done, capdone * sizeof *nd);
                        if (!nd) {
                            rc = fks__err(FKS_ENOMEM, "out of memory");
                        } else {
                            done = nd;
                        }
                    }
                    if (rc == 0)
                        snprintf(done[ndone++], 129, "%s", cur.tag);
                }
            }
            snapmap_free(&prev);
            prev = cur;
        }
        snapmap_free(&prev);
        free(chain);
    }
    if (rc == 0)
        fks__progress_end(&pg);
    free(done);
    free(ps.h);
    free(cache.v);
    if (rc < 0)
        fks__errctx(rc, "push to remote %s", m.r.name[0] ? m.r.name : remote ? remote : "");
    rem_close(&m, st);
    return rc;
}

int fks_push(fks_remote_stats *st, fks_store *s, const char *remote, const char *const *tags, size_t n,
             fks_progress_fn progress, void *progress_arg)
{
    fks_remote_stats sum, one;
    memset(&sum, 0, sizeof sum);
    int rc;
    for (int a = 0;; a++) {
        memset(&one, 0, sizeof one);
        rc = push_once(&one, s, remote, tags, n, progress, progress_arg);
        sum.snapshots += one.snapshots;
        sum.skipped = one.skipped;
        sum.pages = one.pages;
        sum.pages_sent += one.pages_sent;
        sum.pages_dedup = one.pages_dedup;
        sum.packs += one.packs;
        sum.packs_reused += one.packs_reused;
        sum.page_bytes += one.page_bytes;
        sum.bytes_up += one.bytes_up;
        sum.bytes_down += one.bytes_down;
        sum.requests += one.requests;
        sum.retries += one.retries;
        sum.seconds += one.seconds;
        sum.working_sets += one.working_sets;
        sum.restarts = (uint64_t)a;
        if (rc != PUSH_AGAIN)
            break;
        if (a == 4) {
            rc = fks__err(FKS_ERR, "push to remote %s: a remote gc marked packs this push used, 5 times; "
                          "push again", remote ? remote : "");
            break;
        }
    }
    if (st)
        *st = sum;
    return rc;
}

/* ---- pull ---- */

/* One page to place: hash, file, pgno. */
struct need {
    uint8_t hash[16];
    uint32_t art;
    uint64_t pgno;
};

static int cmp_need(const void *a, const void *b)
{
    int c = memcmp(((const struct need *)a)->hash, ((const struct need *)b)->hash, 16);
    if (c)
        return c;
    const struct need *x = a, *y = b;
    return x->art != y->art ? (x->art < y->art ? -1 : 1) : (x->pgno < y->pgno ? -1 : x->pgno > y->pgno);
}

struct fetch {
    const struct loc *l;
    size_t first;                /* its first struct need */
};

static int cmp_fetch(const void *a, const void *b)
{
    const struct loc *x = ((const struct fetch *)a)->l, *y = ((const struct fetch *)b)->l;
    if (x->pack != y->pack)
        return x->pack < y->pack ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Writes page bytes (len) at every place of the need group starting at k. */
static int place(const int *fds, const struct snapmap *map, const struct need *nd, size_t nn, size_t k,
                 const uint8_t *page, uint32_t len)
{
    for (size_t q = k; q < nn && memcmp(nd[q].hash, nd[k].hash, 16) == 0; q++) {
        const struct amap *a = &map->art[nd[q].art];
        uint32_t want = rlen_of(a->size, nd[q].pgno);
        if (len != want)
            return fks__err(FKS_ECORRUPT, "page %llu of %s: %u bytes, where the file needs %u",
                            (unsigned long long)nd[q].pgno, a->name, len, want);
        int rc = fks__pwrite_full(fds[nd[q].art], page, len, (off_t)(nd[q].pgno * FKS_PAGE_SIZE), a->name);
        if (rc)
            return rc;
    }
    return 0;
}

/* Builds snapshot map's files and ingests them with their parent (whose
** decoded map is parent, NULL for a root). An artifact the parent has at
** the same size is written as a Diff: only the pages that differ, zero
** pages as explicit zeros, holes inheriting the parent's pages; ingest then
** reads only those. */
/* One snapshot being imported: its files, the pages they need and
** where each comes from. */
struct imp {
    struct rem *m;
    const struct snapmap *map, *parent;
    char dir[4200];              /* the private directory of named files, "" for none */
    int named;                   /* no O_TMPFILE here */
    int *fds;
    char (*paths)[4300];
    fks_artifact_in *ins;
    struct need *nd;             /* pages to get, nn of them, sorted by hash */
    struct fetch *fe;            /* the ones to fetch, nf of them */
    struct mpage *d;             /* a Diff's pages (map_diff) */
    size_t nn, nf, nopen;        /* files 0 .. nopen-1 are open */
};

static int imp_alloc(struct imp *x)
{
    const struct snapmap *map = x->map;
    size_t dmax = 0, na = map->nart ? map->nart : 1;
    x->fds = malloc(na * sizeof *x->fds);
    x->paths = malloc(na * sizeof *x->paths);
    x->ins = calloc(na, sizeof *x->ins);
    if (!x->fds || !x->paths || !x->ins)
        return fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < map->nart; i++) {
        const struct amap *pa = art_named(x->parent, map->art[i].name);
        size_t both = map->art[i].n + (pa ? pa->n : 0);
        x->nn += both;
        dmax = both > dmax ? both : dmax;
    }
    if (!(x->nd = malloc((x->nn ? x->nn : 1) * sizeof *x->nd)) ||
        !(x->fe = malloc((x->nn ? x->nn : 1) * sizeof *x->fe)) || !(x->d = malloc((dmax ? dmax : 1) * sizeof *x->d)))
        return fks__err(FKS_ENOMEM, "out of memory (%zu pages)", x->nn);
    return 0;
}

/* The files are O_TMPFILE files in the store's directory, handed to
** ingest as /proc/self/fd/N: a killed pull leaves nothing behind. Where
** that is not supported, named files in a private directory there. */
static int imp_files(struct imp *x)
{
    const char *sd = remote__store_dir(x->m->s);
    int rc = 0;
    for (size_t i = 0; i < x->map->nart && rc == 0; i++, x->nopen++) {
        const struct amap *a = &x->map->art[i];
        x->fds[i] = x->named ? -1 : open(sd, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (x->fds[i] >= 0) {
            snprintf(x->paths[i], sizeof x->paths[i], "/proc/self/fd/%d", x->fds[i]);
        } else if (!x->named && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
            rc = fks__errno(FKS_EIO, errno, "create a temporary file in %s", sd);
            break;
        } else {
            if (!x->dir[0]) {
                if ((rc = fks__path(x->dir, sizeof x->dir, "%s/remote-pull.XXXXXX", sd)))
                    break;
                if (!mkdtemp(x->dir)) {
                    rc = fks__errno(FKS_EIO, errno, "create %s", x->dir);
                    x->dir[0] = 0;
                    break;
                }
            }
            x->named = 1;
            snprintf(x->paths[i], sizeof x->paths[i], "%s/%s", x->dir, a->name);
            if ((x->fds[i] = open(x->paths[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
                rc = fks__errno(FKS_EIO, errno, "create %s", x->paths[i]);
                break;
            }
        }
        if (ftruncate(x->fds[i], (off_t)a->size)) {
            rc = fks__errno(FKS_EIO, errno, "size %s", x->paths[i]);
            x->nopen++;
            break;
        }
        x->ins[i] = (fks_artifact_in){a->name, x->paths[i], 0};
    }
    return rc;
}

/* The pages each file needs (a Diff's only where it differs from the
** parent) into nd, sorted by hash; pages that became zero are written
** at once. */
static int imp_needs(struct imp *x)
{
    static const uint8_t zeros[FKS_PAGE_SIZE];
    const struct snapmap *map = x->map;
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < map->nart && rc == 0; i++) {
        const struct amap *a = &map->art[i], *pa = art_named(x->parent, a->name);
        const struct mpage *src = a->p;
        size_t ns = a->n;
        struct stat sb;
        /* A Diff's cover is its data extents: only with blocks of at most a
        ** page is a written page's extent that page alone. A file with a
        ** short last page is written whole. */
        int diff = pa && pa->size == a->size && a->size % FKS_PAGE_SIZE == 0 && fstat(x->fds[i], &sb) == 0 &&
                   sb.st_blksize <= FKS_PAGE_SIZE;   /* ingest takes Diffs of whole pages only */
        if (diff) {
            ns = map_diff(x->d, a, pa);
            src = x->d;
        }
        x->m->st.pages += a->n;
        for (size_t q = 0; q < ns && rc == 0; q++) {
            if (memcmp(src[q].hash, ZERO16, 16) == 0) {   /* a page that became zero */
                rc = fks__pwrite_full(x->fds[i], zeros, rlen_of(a->size, src[q].pgno),
                                      (off_t)(src[q].pgno * FKS_PAGE_SIZE), a->name);
                continue;
            }
            memcpy(x->nd[k].hash, src[q].hash, 16);
            x->nd[k].art = (uint32_t)i;
            x->nd[k++].pgno = src[q].pgno;
        }
        x->ins[i].diff = diff;
    }
    x->nn = k;
    if (rc == 0)
        qsort(x->nd, x->nn, sizeof *x->nd, cmp_need);
    return rc;
}

/* Pages the store has are copied from it (checked against their hash);
** the others are listed in fe, sorted by pack, to fetch. */
static int imp_local(struct imp *x)
{
    uint8_t page[FKS_PAGE_SIZE];
    int rc = 0;
    for (size_t k = 0; k < x->nn && rc == 0;) {
        size_t e = k + 1;
        while (e < x->nn && memcmp(x->nd[e].hash, x->nd[k].hash, 16) == 0)
            e++;
        int64_t id;
        uint32_t len;
        int f = fks_page_find(&id, x->m->s, x->nd[k].hash);
        if (f == 0) {
            uint8_t h[16];
            if ((rc = fks_page_read(page, &len, x->m->s, id)) == 0) {
                fks__hash(h, page, len);
                rc = memcmp(h, x->nd[k].hash, 16) ? fks__err(FKS_ECORRUPT, "local page %lld fails its hash",
                                                            (long long)id)
                                                  : place(x->fds, x->map, x->nd, x->nn, k, page, len);
            }
            x->m->st.pages_dedup++;
        } else if (f == FKS_ENOTFOUND) {
            const struct loc *l = rem_find(x->m, x->nd[k].hash);
            char hx[33];
            fks__hex16(hx, x->nd[k].hash);
            if (!l)
                rc = fks__err(FKS_ECORRUPT, "page %s (%s page %llu) is in no pack the remote's index names", hx,
                              x->map->art[x->nd[k].art].name, (unsigned long long)x->nd[k].pgno);
            else
                x->fe[x->nf++] = (struct fetch){l, k};
        } else {
            rc = f;
        }
        k = e;
    }
    if (rc == 0)
        qsort(x->fe, x->nf, sizeof *x->fe, cmp_fetch);
    return rc;
}

/* The fetches from *i on that are in one pack: one GET, the pack checked
** against its name, each page decoded, checked and placed. *i is left
** past that pack's fetches. */
static int imp_pack(struct imp *x, size_t *i, fks__progress *pg)
{
    struct rem *m = x->m;
    uint32_t pk = x->fe[*i].l->pack;
    const struct pack *p = &m->idx.packs[pk];
    char hx[65], key[700];
    hex32(hx, p->sha);
    uint8_t *b = NULL, sha[32], page[FKS_PAGE_SIZE];
    size_t len = 0;
    int rc = key_of(key, sizeof key, m, "packs/", hx, ".pack");
    if (rc == 0)
        rc = s3_get(&b, &len, m->c, key, 0, 0);
    if (rc == 0) {
        m->st.packs++;
        s3_sha256(sha, b, len);
        const uint8_t *tab;
        uint64_t np, d0;
        uint8_t *own = NULL;
        if (memcmp(sha, p->sha, 32) != 0 || len != p->size)
            rc = fks__err(FKS_ECORRUPT, "remote pack %s: its content does not match its name (SHA-256)", key);
        else
            rc = pack_table(&tab, &np, &d0, &own, m, b, len, key);
        free(own);
    }
    for (; rc == 0 && *i < x->nf && x->fe[*i].l->pack == pk; (*i)++) {
        const struct loc *l = x->fe[*i].l;
        int v = l->off <= len && l->clen <= len - l->off
                    ? page_open(m, page, b + l->off, l->clen, l->enc, l->rlen, l->hash)
                    : PAGE_UNDECODABLE;
        if (v == PAGE_UNDECODABLE) {
            rc = fks__err(FKS_ECORRUPT, "remote pack %s: page at %llu does not decode to %u bytes", key,
                          (unsigned long long)l->off, l->rlen);
            break;
        }
        if (v == PAGE_WRONG) {
            rc = fks__err(FKS_ECORRUPT, "remote pack %s: page at %llu does not match its hash", key,
                          (unsigned long long)l->off);
            break;
        }
        if (v == PAGE_SEAL) {
            rc = fks__err(FKS_ECORRUPT, "remote pack %s: page at %llu fails its authentication (AES-256-GCM)",
                          key, (unsigned long long)l->off);
            break;
        }
        rc = place(x->fds, x->map, x->nd, x->nn, x->fe[*i].first, page, l->rlen);
        m->st.pages_sent++;
        m->st.page_bytes += l->clen;
        fks__progress_add(pg, l->clen);
    }
    free(b);
    while (rc && *i < x->nf && x->fe[*i].l->pack == pk)
        (*i)++;
    return rc;
}

/* The files, complete, ingested as the snapshot (invariant 4: the
** commit), then its Firecracker versions. */
static int imp_commit(struct imp *x)
{
    const struct snapmap *map = x->map;
    fks_ingest_opts o = {.tag = map->tag, .parent = map->parent[0] ? map->parent : NULL, .artifacts = x->ins,
                         .n_artifacts = map->nart, .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
    int rc = fks_ingest(NULL, x->m->s, &o);      /* invariant 4: the commit */
    if (rc == 0)
        x->m->st.snapshots++;
    /* The versions after the commit; a pull killed in between sets them
    ** when run again (it skips the snapshot but not this). */
    if (rc == 0 && (map->fc_version[0] || map->format_version[0]))
        rc = remote__set_versions(x->m->s, map->tag, map->fc_version, map->format_version);
    return rc;
}

static void imp_free(struct imp *x)
{
    for (size_t i = 0; i < x->nopen; i++) {
        if (x->fds[i] >= 0)
            close(x->fds[i]);
        if (x->dir[0] && strncmp(x->paths[i], x->dir, strlen(x->dir)) == 0)
            unlink(x->paths[i]);
    }
    if (x->dir[0])
        rmdir(x->dir);
    free(x->fds);
    free(x->paths);
    free(x->ins);
    free(x->nd);
    free(x->fe);
    free(x->d);
}

static int import_snapshot(struct rem *m, const struct snapmap *map, const struct snapmap *parent,
                           fks__progress *pg)
{
    struct imp x = {.m = m, .map = map, .parent = parent, .named = access("/proc/self/fd", X_OK) != 0};
    int rc = imp_alloc(&x);
    if (rc == 0 && (rc = imp_files(&x)) == 0 && (rc = imp_needs(&x)) == 0 && (rc = imp_local(&x)) == 0) {
        for (size_t i = 0; i < x.nf; i++)
            fks__progress_total(pg, x.fe[i].l->clen);
        /* One GET per pack; the pack is checked against its name first. */
        for (size_t i = 0; i < x.nf && rc == 0;)
            rc = imp_pack(&x, &i, pg);
    }
    if (rc == 0)
        rc = imp_commit(&x);
    imp_free(&x);
    return rc ? fks__errctx(rc, "pull %s", map->tag) : 0;
}

/* A manifest of a pull's chain, as fetched (and unsealed). */
struct pullman {
    uint8_t *b;
    size_t len;
    char key[700];
    char tag[129];
};

/* The manifests from tag up to its root into (*raw)[0 .. *nraw), a
** cycle or a chain longer than MAX_CHAIN refused. */
static int pull_fetch_chain(struct rem *m, const char *tag, struct pullman **raw, size_t *nraw)
{
    size_t cap = 0;
    int rc = 0;
    char cur[129];
    snprintf(cur, sizeof cur, "%s", tag);
    while (rc == 0 && cur[0]) {
        if (*nraw == cap) {
            cap = cap ? cap * 2 : 8;
            struct pullman *nr = realloc(*raw, cap * sizeof *nr);
            if (!nr)
                return fks__err(FKS_ENOMEM, "out of memory");
            *raw = nr;
        }
        struct pullman *r = &(*raw)[*nraw];
        snprintf(r->tag, sizeof r->tag, "%s", cur);
        if ((rc = manifest_key(r->key, sizeof r->key, m, cur)))
            return rc;
        if ((rc = s3_get(&r->b, &r->len, m->c, r->key, 0, 0)))
            return rc == FKS_ENOTFOUND ? fks__err(FKS_ENOTFOUND, "snapshot %s not found on remote %s%s%s", cur,
                                                  m->r.name, *nraw ? " (the parent of " : "",
                                                  *nraw ? "another pulled snapshot)" : "")
                                       : rc;
        (*nraw)++;
        if ((rc = unseal(m, MAN_MAGIC, "manifest", r->key, &r->b, &r->len)))
            return rc;
        json_object *j;
        const uint8_t *body;
        if ((rc = manifest_header(&j, &body, r->b, r->len, r->key)))
            return rc;
        const char *par = jstr(j, "parent");
        snprintf(cur, sizeof cur, "%s", par && !fks_check_tag(par) ? par : "");
        json_object_put(j);
        for (size_t q = 0; q < *nraw && rc == 0 && cur[0]; q++)
            if (strcmp((*raw)[q].tag, cur) == 0)
                rc = fks__err(FKS_ECORRUPT, "remote %s: the lineage of %s has a cycle through %s", m->r.name, tag,
                              cur);
        if (rc == 0 && *nraw > MAX_CHAIN)
            rc = fks__err(FKS_ECORRUPT, "remote %s: the lineage of %s is longer than %d", m->r.name, tag,
                          MAX_CHAIN);
    }
    return rc;
}

/* Snapshot map (decoded onto its parent's, prev) into the store: skipped
** if the store has the same snapshot (design 3), refused if it has a
** different one under the tag, imported if it has none. */
static int pull_place(struct rem *m, fks_store *s, const struct snapmap *map, const struct snapmap *prev,
                      struct idcache *cache, fks__progress *pg)
{
    fks_snapinfo si;
    struct snapmap local;
    int rc = 0, g = fks_get(&si, s, map->tag);
    if (g == 0 && (g = local_map(&local, s, map->tag, cache)) == 0) {
        /* Skipped only if it is the same snapshot (design 3). */
        if (memcmp(local.content, map->content, 32) != 0)
            rc = fks__err(FKS_EEXIST, "the store holds a different snapshot %s than remote %s: rename "
                          "the local one (tag) to pull it", map->tag, m->r.name);
        else
            m->st.skipped++;
        if (rc == 0 && ((!local.fc_version[0] && map->fc_version[0]) ||
                        (!local.format_version[0] && map->format_version[0])))
            rc = remote__set_versions(s, map->tag, map->fc_version, map->format_version);
        snapmap_free(&local);
        return rc;
    }
    return g == FKS_ENOTFOUND ? import_snapshot(m, map, prev, pg) : g;
}

/* One tag: its chain fetched, then decoded and placed root first. */
static int pull_one(struct rem *m, fks_store *s, const char *tag, struct idcache *cache, fks__progress *pg)
{
    struct pullman *raw = NULL;
    size_t nraw = 0;
    int rc = pull_fetch_chain(m, tag, &raw, &nraw);
    struct snapmap prev = {0}, map;
    for (size_t k = nraw; rc == 0 && k-- > 0;) {
        if ((rc = manifest_decode(&map, raw[k].b, raw[k].len, raw[k].key, k + 1 < nraw ? &prev : NULL)))
            break;
        if (strcmp(map.tag, raw[k].tag) != 0 || (k + 1 < nraw && strcmp(map.parent, raw[k + 1].tag) != 0)) {
            rc = fks__err(FKS_ECORRUPT, "remote manifest %s names snapshot %s", raw[k].key, map.tag);
            snapmap_free(&map);
            break;
        }
        rc = pull_place(m, s, &map, k + 1 < nraw ? &prev : NULL, cache, pg);
        snapmap_free(&prev);
        prev = map;
    }
    snapmap_free(&prev);
    for (size_t k = 0; k < nraw; k++)
        free(raw[k].b);
    free(raw);
    return rc;
}

int fks_pull(fks_remote_stats *st, fks_store *s, const char *remote, const char *const *tags, size_t n,
             fks_progress_fn progress, void *progress_arg)
{
    struct rem m;
    struct idcache cache = {0};
    fks__progress pg;              /* util.h: the one reporter */
    fks__progress_init(&pg, progress, progress_arg, 0);
    int rc = rem_open(&m, s, remote);
    /* Entries of packs no longer in the bucket (a gc deleted them) are
    ** left out: a page is fetched from a pack that exists. */
    if (rc == 0)
        rc = load_have(&m);
    m.filter = 1;
    if (rc == 0)
        rc = load_index(&m);
    for (size_t t = 0; t < n && rc == 0; t++)
        if ((rc = fks_check_tag(tags[t])) == 0)
            rc = pull_one(&m, s, tags[t], &cache, &pg);
    if (rc == 0)
        fks__progress_end(&pg);
    free(cache.v);
    if (rc)
        fks__errctx(rc, "pull from remote %s", m.r.name[0] ? m.r.name : remote ? remote : "");
    rem_close(&m, st);
    return rc;
}

/* ---- remote gc ---- */

/* One listed object. */
struct obj {
    char *key;
    uint64_t size;
    int64_t mtime;               /* LastModified, ms, the server's clock */
    uint8_t sha[32];             /* the name's SHA-256 (packs, indexes, marks) */
    int64_t mark;                /* packs: the newest old-enough mark's time, 0 none */
    uint8_t ref, del;
};

struct olist {
    struct obj *v;
    size_t n, cap;
};

static int collect_t(void *arg, const char *key, uint64_t size, int64_t mtime)
{
    struct olist *l = arg;
    int rc = fks__grow(&l->v, &l->cap, l->n, sizeof *l->v);
    if (rc)
        return rc;
    memset(&l->v[l->n], 0, sizeof *l->v);
    if (!(l->v[l->n].key = strdup(key)))
        return fks__err(FKS_ENOMEM, "out of memory");
    l->v[l->n].size = size;
    l->v[l->n++].mtime = mtime;
    return 0;
}

static void olist_free(struct olist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].key);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_obj_sha(const void *a, const void *b)
{
    return memcmp(((const struct obj *)a)->sha, ((const struct obj *)b)->sha, 32);
}

/* Lists P dir/ into l, keeping only keys "P dir<hex>ext" (with ext), sorted
** by their SHA-256 when ext names content. */
static int list_objs(struct olist *l, struct rem *m, const char *dir, const char *ext)
{
    char pre[600];
    int rc = fks__path(pre, sizeof pre, "%s%s", m->pfx, dir);
    if (rc == 0)
        rc = s3_list_t(m->c, pre, collect_t, NULL, l);
    if (rc)
        return rc;
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (name_sha(l->v[i].sha, m, l->v[i].key, dir, ext) == 0)
            l->v[k++] = l->v[i];
        else
            free(l->v[i].key);
    }
    l->n = k;
    if (k)
        qsort(l->v, k, sizeof *l->v, cmp_obj_sha);
    return 0;
}

static struct obj *obj_find(const struct olist *l, const uint8_t sha[32])
{
    struct obj key = {0};
    if (!l->n || !sha)
        return NULL;
    memcpy(key.sha, sha, 32);
    return bsearch(&key, l->v, l->n, sizeof *l->v, cmp_obj_sha);
}

static int pend_has(const struct pendset *p, const uint8_t h[16])
{
    if (!p->cap)
        return 0;
    for (size_t k = slot_of(h, p->cap); memcmp(p->h[k], ZERO16, 16) != 0; k = (k + 1) & (p->cap - 1))
        if (memcmp(p->h[k], h, 16) == 0)
            return 1;
    return 0;
}

/* Walks the page maps of manifest b (checked: manifest_header) and adds
** every non-zero hash to refs (a delta map lists only what differs from
** the parent, whose manifest lists the rest). *tag, *parent: its lineage. */
static int manifest_refs(struct pendset *refs, const struct rem *m, char tag[129], char parent[129],
                         const uint8_t *b, size_t len, const char *key)
{
    json_object *j, *arts;
    const uint8_t *p, *end = b + len - 32;
    int rc = manifest_header(&j, &p, b, len, key);
    if (rc)
        return rc;
    const char *t = jstr(j, "tag"), *par = jstr(j, "parent");
    if (!t || fks_check_tag(t) || strlen(t) > FKS_TAG_MAX ||
        (par && (fks_check_tag(par) || strlen(par) > FKS_TAG_MAX)) ||
        !json_object_object_get_ex(j, "artifacts", &arts) || !json_object_is_type(arts, json_type_array)) {
        json_object_put(j);
        return fks__err(FKS_ECORRUPT, "remote manifest %s: header lacks tag, parent or artifacts", key);
    }
    snprintf(tag, 129, "%s", t);
    snprintf(parent, 129, "%s", par ? par : "");
    size_t na = json_object_array_length(arts);
    json_object_put(j);
    for (size_t i = 0; i < na && rc == 0; i++) {
        if (end - p < 4) {
            rc = fks__err(FKS_ECORRUPT, "remote manifest %s: truncated map", key);
            break;
        }
        uint32_t nr = fks__get32(p);
        p += 4;
        for (uint32_t r = 0; r < nr && rc == 0; r++) {
            uint64_t n = end - p >= 16 ? fks__get64(p + 8) : 0;
            if (end - p < 16 || n == 0 || (uint64_t)(end - p - 16) / 16 < n) {
                rc = fks__err(FKS_ECORRUPT, "remote manifest %s: truncated map", key);
                break;
            }
            p += 16;
            for (uint64_t q = 0; q < n && rc == 0; q++, p += 16) {
                int had;
                uint8_t name[16];
                page_name(name, m, p);   /* as index entries name pages */
                if (memcmp(p, ZERO16, 16) != 0)
                    rc = pend_has_or_add(refs, name, &had);
            }
        }
    }
    if (rc == 0 && p != end)
        rc = fks__err(FKS_ECORRUPT, "remote manifest %s: %td bytes after the last map", key, end - p);
    return rc;
}

struct lineage {
    char (*tag)[129], (*parent)[129];
    char **key;
    int64_t *created;
    size_t n, cap;
};

static void lineage_free(struct lineage *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->key[i]);
    free(g->tag);
    free(g->parent);
    free(g->key);
    free(g->created);
    memset(g, 0, sizeof *g);
}

static int lineage_add(struct lineage *g, const char *tag, const char *parent, const char *key, int64_t created)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        void *a = realloc(g->tag, cap * 129), *b = realloc(g->parent, cap * 129);
        if (a)
            g->tag = a;
        if (b)
            g->parent = b;
        void *c = realloc(g->key, cap * sizeof *g->key), *d = realloc(g->created, cap * sizeof *g->created);
        if (c)
            g->key = c;
        if (d)
            g->created = d;
        if (!a || !b || !c || !d)
            return fks__err(FKS_ENOMEM, "out of memory");
        g->cap = cap;
    }
    snprintf(g->tag[g->n], 129, "%s", tag);
    snprintf(g->parent[g->n], 129, "%s", parent);
    g->created[g->n] = created;
    if (!(g->key[g->n] = strdup(key)))
        return fks__err(FKS_ENOMEM, "out of memory");
    g->n++;
    return 0;
}

/* The index of tag in g, or -1 (linear: lineages are small beside pages). */
static long lineage_find(const struct lineage *g, const char *tag)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->tag[i], tag) == 0)
            return (long)i;
    return -1;
}

/* Every manifest: the hashes their maps list into refs (NULL: none), and
** their lineage. A manifest deleted since the listing is skipped. */
static int scan_manifests(struct lineage *g, struct pendset *refs, struct rem *m)
{
    char pre[600];
    struct keylist l = {0};
    int rc = fks__path(pre, sizeof pre, "%ssnapshots/", m->pfx);
    if (rc == 0)
        rc = s3_list(m->c, pre, collect, &l);
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        size_t kl = strlen(l.k[i]);
        if (kl < 9 || strcmp(l.k[i] + kl - 9, ".manifest") != 0)
            continue;
        uint8_t *b = NULL;
        size_t len;
        if ((rc = s3_get(&b, &len, m->c, l.k[i], 0, 0)) == FKS_ENOTFOUND) {
            rc = 0;
            continue;
        }
        char tag[129], parent[129], want[700];
        struct pendset none = {0};
        if (rc == 0)
            rc = unseal(m, MAN_MAGIC, "manifest", l.k[i], &b, &len);
        if (rc == 0)
            rc = manifest_refs(refs ? refs : &none, m, tag, parent, b, len, l.k[i]);
        free(none.h);
        /* Sealed, a manifest's key is keyed by its tag: one moved under
        ** another's key is refused. */
        if (rc == 0 && m->sealed && (rc = manifest_key(want, sizeof want, m, tag)) == 0 && strcmp(want, l.k[i]) != 0)
            rc = fks__err(FKS_ECORRUPT, "remote manifest %s holds snapshot %s, whose key is %s", l.k[i], tag, want);
        json_object *j = NULL, *v;
        const uint8_t *body;
        int64_t created = 0;
        if (rc == 0 && manifest_header(&j, &body, b, len, l.k[i]) == 0 &&
            json_object_object_get_ex(j, "created_ms", &v))
            created = json_object_get_int64(v);
        json_object_put(j);
        if (rc == 0)
            rc = lineage_add(g, tag, parent, l.k[i], created);
        free(b);
    }
    keylist_free(&l);
    return rc;
}

struct gcidx {
    struct index pt;             /* only its pack table: packs named by any index */
    struct gent {
        struct loc l;            /* l.pack: into pt.packs */
        int64_t imtime;          /* its index object's LastModified */
    } *v;
    size_t n, cap;
};

/* Adds every entry of index object b to g (duplicates across objects kept). */
static int gcidx_add(struct gcidx *g, const struct rem *m, const uint8_t *b, size_t len, const char *key,
                     int64_t mtime)
{
    struct index one = {0};
    int rc = index_parse(&one, b, len, key, m);
    uint32_t *map = rc ? NULL : calloc(one.npacks ? one.npacks : 1, sizeof *map);
    if (rc == 0 && !map)
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < one.npacks && rc == 0; i++)
        rc = idx_add_pack(&map[i], &g->pt, one.packs[i].sha, one.packs[i].size);
    if (rc == 0 && g->n + one.n > g->cap) {
        size_t cap = (g->n + one.n) * 2;
        struct gent *v = realloc(g->v, cap * sizeof *v);
        if (!v)
            rc = fks__err(FKS_ENOMEM, "out of memory");
        else {
            g->v = v;
            g->cap = cap;
        }
    }
    for (size_t i = 0; i < one.n && rc == 0; i++) {
        g->v[g->n].l = one.v[i];
        g->v[g->n].l.pack = map[one.v[i].pack];
        g->v[g->n++].imtime = mtime;
    }
    free(map);
    idx_free(&one);
    return rc;
}

#define GC_INTERVAL_MS (4 * 3600 * 1000LL)
#define GC_MIN_AGE_MS (2 * 3600 * 1000LL)
#define GC_LAG_MS (60 * 1000LL)

/* One remote gc run: its remote, what it listed and read, and what it wrote. */
struct gc {
    struct rem m;
    fks_remote_gc_stats *st;
    int64_t I, A, L, T;          /* the margins (design: remote gc), the start's server time */
    int dry, locked;
    struct olist marks, idxs, packs;
    struct lineage g;
    struct pendset refs;
    struct gcidx gi;
    struct index mg;
    uint8_t **msha;              /* per marks object: its packs (borrowed from mraw) */
    size_t *mn;
    uint8_t **mraw;
    char lockkey[700], newmarks[700], merged[700];
};

/* Rule G1: creates gc/lock (If-None-Match), or with o->break_lock deletes a
** held one and creates it again; held by another run: FKS_ELOCKED. */
static int gc_lock(struct gc *c, const fks_remote_gc_opts *o)
{
    char body[300];
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    snprintf(body, sizeof body, "{\"host\":\"%.100s\",\"pid\":%ld,\"started_ms\":%lld}\n", host,
             (long)getpid(), (long long)fks__wall_ms());
    int rc = s3_put_new(c->m.c, c->lockkey, body, strlen(body), NULL);
    if (rc == FKS_EEXIST && o && o->break_lock) {
        if ((rc = s3_delete(c->m.c, c->lockkey)) == 0)
            rc = s3_put_new(c->m.c, c->lockkey, body, strlen(body), NULL);
    }
    if (rc == FKS_EEXIST)
        rc = fks__err(FKS_ELOCKED, "remote %s: another remote gc holds %s; if none is running (it was "
                      "killed), break the lock", c->m.r.name, c->lockkey);
    c->locked = rc == 0;
    return rc;
}

/* T: the server's clock at the start, before any listing (a dry run asks
** with a HEAD of gc/lock, which it does not take). */
static int gc_clock(struct gc *c)
{
    int rc = 0;
    if (c->dry && (rc = s3_head(NULL, c->m.c, c->lockkey)) == FKS_ENOTFOUND)
        rc = 0;
    if (rc == 0 && (c->T = s3_server_ms(c->m.c)) <= 0)
        rc = fks__err(FKS_EIO, "remote %s: the server's answers carry no Date: gc needs its clock", c->m.r.name);
    return rc;
}

/* Rule G2, first: lists the marks objects and reads each one's packs (one
** deleted since the listing names none). */
static int gc_read_marks(struct gc *c)
{
    int rc = list_objs(&c->marks, &c->m, "gc/", ".marks");
    if (rc == 0 && c->marks.n && (!(c->msha = calloc(c->marks.n, sizeof *c->msha)) ||
                                  !(c->mn = calloc(c->marks.n, sizeof *c->mn)) ||
                                  !(c->mraw = calloc(c->marks.n, sizeof *c->mraw))))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->marks.n && rc == 0; i++) {
        size_t len;
        int64_t t;
        const uint8_t (*p)[32] = NULL;
        if ((rc = marks_get(&c->mraw[i], &len, &c->m, c->marks.v[i].key)) == FKS_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0 && (rc = marks_parse(&t, &p, &c->mn[i], c->mraw[i], len, c->marks.v[i].key)) == 0)
            c->msha[i] = (uint8_t *)p;
    }
    return rc;
}

/* Rule G2: a manifest whose parent has no manifest stops the run before
** anything is deleted. */
static int gc_check_parents(const struct gc *c)
{
    int rc = 0;
    const struct lineage *g = &c->g;
    for (size_t i = 0; i < g->n && rc == 0; i++)
        if (g->parent[i][0] && lineage_find(g, g->parent[i]) < 0)
            rc = fks__err(FKS_ECORRUPT, "remote %s: snapshot %s names parent %s, which has no manifest: gc "
                          "deletes nothing until a store that has %s pushes %s again", c->m.r.name, g->tag[i],
                          g->parent[i], g->parent[i], g->tag[i]);
    return rc;
}

/* Rule G2, third: lists the indexes and reads each one, checked against
** its name, into c->gi (one deleted since the listing is marked gone). */
static int gc_read_indexes(struct gc *c)
{
    int rc = list_objs(&c->idxs, &c->m, "index/", ".idx");
    for (size_t i = 0; i < c->idxs.n && rc == 0; i++) {
        struct obj *x = &c->idxs.v[i];
        uint8_t *b = NULL, sha[32];
        size_t len;
        if ((rc = s3_get(&b, &len, c->m.c, x->key, 0, 0)) == FKS_ENOTFOUND) {
            x->del = 2;          /* gone: neither merged nor deleted */
            rc = 0;
            continue;
        }
        if (rc == 0) {
            s3_sha256(sha, b, len);
            rc = memcmp(sha, x->sha, 32)
                     ? fks__err(FKS_ECORRUPT, "remote index %s: its content does not match its name (SHA-256)",
                                x->key)
                     : unseal(&c->m, IDX_MAGIC, "index", x->key, &b, &len);
            if (rc == 0)
                rc = gcidx_add(&c->gi, &c->m, b, len, x->key, x->mtime);
        }
        free(b);
    }
    return rc;
}

/* Referenced: a pack holding a page some manifest lists (under any index
** entry: a page in two packs keeps both). */
static void gc_referenced(struct gc *c)
{
    for (size_t i = 0; i < c->gi.n; i++)
        if (pend_has(&c->refs, c->gi.v[i].l.hash)) {
            struct obj *p = obj_find(&c->packs, c->gi.pt.packs[c->gi.v[i].l.pack].sha);
            if (p && !p->ref) {
                p->ref = 1;
                c->st->packs_referenced++;
            }
        }
}

/* Rule G3: a pack is deleted only if marked by a run at least I ago, not
** written since that mark, older than A, and unreferenced now. Returns the
** number of the other unreferenced packs (marked again, kept). */
static size_t gc_select(struct gc *c)
{
    for (size_t i = 0; i < c->marks.n; i++)
        if (c->marks.v[i].mtime <= c->T - c->I)
            for (size_t k = 0; k < c->mn[i]; k++) {
                struct obj *p = obj_find(&c->packs, c->msha[i] + 32 * k);
                if (p && c->marks.v[i].mtime > p->mark)
                    p->mark = c->marks.v[i].mtime;
            }
    size_t ncand = 0;
    for (size_t i = 0; i < c->packs.n; i++) {
        struct obj *p = &c->packs.v[i];
        if (p->ref)
            continue;
        if (p->mark && p->mtime <= p->mark && p->mtime <= c->T - c->A) {
            p->del = 1;
            c->st->packs_deleted++;
            c->st->bytes_deleted += p->size;
        } else {
            ncand++;
        }
    }
    return ncand;
}

/* Step 1, the new marks N (rule G4): every unreferenced pack, those deleted
** now too (a pusher that missed the old mark sees this one); none: no N. */
static int gc_put_marks(struct gc *c, size_t ncand)
{
    int rc = 0;
    if (ncand + c->st->packs_deleted) {
        struct buf b = {0};
        buf_add(&b, MARK_MAGIC, 8);
        buf_u64(&b, (uint64_t)c->T);
        buf_u32(&b, (uint32_t)(ncand + c->st->packs_deleted));
        buf_u32(&b, 0);
        for (size_t i = 0; i < c->packs.n; i++)
            if (!c->packs.v[i].ref)
                buf_add(&b, c->packs.v[i].sha, 32);
        uint8_t sha[32];
        char hx[65];
        rc = b.oom ? fks__err(FKS_ENOMEM, "out of memory") : 0;
        if (rc == 0) {
            s3_sha256(sha, b.b, b.len);
            hex32(hx, sha);
            if ((rc = key_of(c->newmarks, sizeof c->newmarks, &c->m, "gc/", hx, ".marks")) == 0)
                rc = s3_put(c->m.c, c->newmarks, b.b, b.len, hx);
        }
        free(b.b);
    }
    return rc;
}

/* Step 2 (rule G4): the merged index c->mg of every entry read, less those
** of packs deleted now, or gone though named by an index older than T - L. */
static int gc_merge_entries(struct gc *c)
{
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i < c->gi.n && rc == 0; i++) {
            const struct gent *e = &c->gi.v[i];
            if (!c->gi.pt.packs || e->l.pack >= c->gi.pt.npacks) {
                rc = fks__err(FKS_ECORRUPT, "remote gc: an index entry names pack %u of %zu", (unsigned)e->l.pack,
                              (size_t)c->gi.pt.npacks);
                break;
            }
            const struct pack *pk = &c->gi.pt.packs[e->l.pack];
            const struct obj *p = obj_find(&c->packs, pk->sha);
            if (pass == 0 ? !p || p->del : p || e->imtime <= c->T - c->L || idx_find(&c->mg, e->l.hash))
                continue;
            if (idx_find(&c->mg, e->l.hash))
                continue;
            struct loc l = e->l;
            if ((rc = idx_add_pack(&l.pack, &c->mg, pk->sha, pk->size)) == 0)
                rc = idx_add(&c->mg, &l);
        }
    return rc;
}

/* Nothing is deleted until what was written is in every listing: waits L
** if anything is to be deleted (merged indexes, packs, old marks). */
static void gc_wait_lag(const struct gc *c, int merge)
{
    int marks_old = 0;
    for (size_t i = 0; i < c->marks.n; i++)
        marks_old |= c->marks.v[i].mtime <= c->T - c->I && strcmp(c->marks.v[i].key, c->newmarks) != 0;
    if (merge || c->st->packs_deleted || marks_old) {
        struct timespec ts = {(time_t)(c->L / 1000), (long)(c->L % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR)
            ;
    }
}

/* Step 2, end: deletes the indexes the merged one covers (not those gone,
** nor the merged one itself: the same content). */
static int gc_delete_indexes(struct gc *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->idxs.n && rc == 0; i++)
        if (c->idxs.v[i].del != 2 && strcmp(c->idxs.v[i].key, c->merged) != 0) {
            if ((rc = s3_delete(c->m.c, c->idxs.v[i].key)) == FKS_ENOTFOUND)
                rc = 0;
            c->st->indexes_merged++;
        }
    return rc;
}

/* Steps 3 and 4: deletes the packs of rule G3, then the marks that served
** (older than I, N excepted). */
static int gc_delete_packs_marks(struct gc *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->packs.n && rc == 0; i++)
        if (c->packs.v[i].del && (rc = s3_delete(c->m.c, c->packs.v[i].key)) == FKS_ENOTFOUND)
            rc = 0;
    for (size_t i = 0; i < c->marks.n && rc == 0; i++)
        if (c->marks.v[i].mtime <= c->T - c->I && strcmp(c->marks.v[i].key, c->newmarks) != 0) {
            if ((rc = s3_delete(c->m.c, c->marks.v[i].key)) == FKS_ENOTFOUND)
                rc = 0;
            c->st->marks_deleted++;
        }
    return rc;
}

/* Releases gc/lock if the run took it (its error, if the run had none, is
** the run's), then frees what the run read; rc: the run's result so far. */
static int gc_end(struct gc *c, int rc)
{
    if (c->locked) {
        int r2 = s3_delete(c->m.c, c->lockkey);
        if (rc == 0 && r2 && r2 != FKS_ENOTFOUND)
            rc = r2;
    }
    for (size_t i = 0; i < c->marks.n && c->mraw; i++)
        free(c->mraw[i]);
    free(c->mraw);
    free(c->msha);
    free(c->mn);
    olist_free(&c->marks);
    olist_free(&c->idxs);
    olist_free(&c->packs);
    lineage_free(&c->g);
    free(c->refs.h);
    idx_free(&c->gi.pt);
    free(c->gi.v);
    idx_free(&c->mg);
    return rc;
}

int fks_remote_gc(fks_remote_gc_stats *st, fks_store *s, const char *remote, const fks_remote_gc_opts *o)
{
    fks_remote_gc_stats z;
    if (!st)
        st = &z;
    memset(st, 0, sizeof *st);
    int64_t I = o && o->interval_ms > 0 ? o->interval_ms : GC_INTERVAL_MS;
    int64_t A = o && o->min_age_ms > 0 ? o->min_age_ms : GC_MIN_AGE_MS;
    int64_t L = o && o->lag_ms > 0 ? o->lag_ms : GC_LAG_MS;
    st->interval_ms = I;
    st->min_age_ms = A;
    st->lag_ms = L;
    if (I < 2 * L)
        return fks__err(FKS_EINVAL, "remote gc: the interval (%lld ms) must be at least twice the listing lag "
                        "(%lld ms): rule G2", (long long)I, (long long)L);
    struct gc c = {0};
    c.st = st;
    c.I = I;
    c.A = A;
    c.L = L;
    c.dry = o && o->dry_run;
    int rc = rem_open(&c.m, s, remote);
    if (rc == 0)
        rc = key_of(c.lockkey, sizeof c.lockkey, &c.m, "gc/", "lock", "");
    if (rc == 0 && !c.dry)
        rc = gc_lock(&c, o);
    if (rc == 0)
        rc = gc_clock(&c);
    st->server_ms = c.T;
    /* Marks, then manifests, then indexes, then packs (design: gc). */
    if (rc == 0)
        rc = gc_read_marks(&c);
    if (rc == 0)
        rc = scan_manifests(&c.g, &c.refs, &c.m);
    st->manifests = c.g.n;
    if (rc == 0)
        rc = gc_check_parents(&c);
    if (rc == 0)
        rc = gc_read_indexes(&c);
    st->indexes = c.idxs.n;
    if (rc == 0)
        rc = list_objs(&c.packs, &c.m, "packs/", ".pack");
    st->packs = c.packs.n;
    if (rc)
        goto out;
    gc_referenced(&c);
    size_t ncand = gc_select(&c);
    st->packs_marked = ncand;
    if (c.dry)
        goto out;
    /* 1. The new marks; 2. one index for all the indexes read, then the
    ** indexes it covers are deleted; 3. the packs; 4. the old marks. */
    rc = gc_put_marks(&c, ncand);
    size_t nread = 0;
    for (size_t i = 0; i < c.idxs.n; i++)
        nread += c.idxs.v[i].del != 2;
    if (rc == 0 && nread)
        rc = gc_merge_entries(&c);
    int merge = rc == 0 && nread && (nread > 1 || c.mg.n != c.gi.n);
    if (merge && c.mg.n) {
        struct buf b = {0};
        index_encode(&b, &c.mg, 0, 0);
        rc = index_put(&c.m, &b, c.merged);
        free(b.b);
    }
    st->index_entries = c.mg.n;
    if (rc == 0)
        gc_wait_lag(&c, merge);
    if (merge && rc == 0)
        rc = gc_delete_indexes(&c);
    if (rc == 0)
        rc = gc_delete_packs_marks(&c);
out:
    rc = gc_end(&c, rc);
    if (rc)
        fks__errctx(rc, "remote gc of %s", c.m.r.name[0] ? c.m.r.name : remote ? remote : "");
    fks_remote_stats rs;
    rem_close(&c.m, &rs);
    st->requests = rs.requests;
    st->bytes_down = rs.bytes_down;
    st->seconds = rs.seconds;
    return rc;
}

/* ---- remote prune ---- */

/* A remote prune's working arrays over the bucket's n snapshots. */
struct rprune {
    size_t n;
    size_t *ord, *par, *root, *seen, *depth;
    char *keep;                  /* 1: a rule keeps it, 2: a kept one's ancestor */
};

/* Each snapshot's parent, root and depth; a walk longer than n is a
** cycle (a damaged bucket). */
static int rp_tree(struct rprune *x, struct lineage *g, const struct rem *m)
{
    for (size_t i = 0; i < x->n; i++) {
        long p = g->parent[i][0] ? lineage_find(g, g->parent[i]) : -1;
        x->par[i] = p < 0 ? (size_t)-1 : (size_t)p;
        x->ord[i] = i;
    }
    for (size_t i = 0; i < x->n; i++) {
        size_t k = i, hops = 0;
        while (x->par[k] != (size_t)-1 && hops <= x->n) {
            k = x->par[k];
            hops++;
        }
        if (hops > x->n)
            return fks__err(FKS_ECORRUPT, "remote %s: the lineage of %s has a cycle", m->r.name, g->tag[i]);
        x->root[i] = k;
        x->depth[i] = hops;
    }
    return 0;
}

/* The rules, most recent first (as prune: created time, then tag), then
** the ancestors of what they keep: manifests are written once, so a kept
** snapshot's parent cannot be re-parented as prune does locally. */
static void rp_mark(struct rprune *x, const struct lineage *g, const fks_prune_opts *o, size_t *n_ancestors)
{
    size_t n = x->n, *ord = x->ord;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            size_t a = ord[j - 1], b = ord[j];
            if (g->created[a] > g->created[b] || (g->created[a] == g->created[b] && strcmp(g->tag[a], g->tag[b]) >= 0))
                break;
            ord[j - 1] = b;
            ord[j] = a;
        }
    int64_t now = fks__wall_ms();
    for (size_t q = 0; q < n; q++) {
        size_t i = ord[q];
        if (o->keep_last > 0 && x->seen[x->root[i]]++ < (size_t)o->keep_last)
            x->keep[i] = 1;
        if (o->keep_within_ms > 0 && now - g->created[i] <= o->keep_within_ms)
            x->keep[i] = 1;
        for (size_t t = 0; t < o->n_keep_tags && !x->keep[i]; t++)
            if (fnmatch(o->keep_tags[t], g->tag[i], 0) == 0)
                x->keep[i] = 1;
    }
    for (size_t i = 0; i < n; i++)
        if (x->keep[i] == 1)
            for (size_t k = x->par[i]; k != (size_t)-1 && !x->keep[k]; k = x->par[k]) {
                x->keep[k] = 2;
                if (n_ancestors)
                    (*n_ancestors)++;
            }
}

/* The snapshots not kept, deepest first (a kill half way never leaves a
** child without its parent): each one's working set, then its manifest. */
static int rp_delete(struct rprune *x, const struct lineage *g, struct rem *m, const fks_prune_opts *o,
                     fks_prune_result *res)
{
    size_t n = x->n, *ord = x->ord;
    int rc = 0;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && x->depth[ord[j - 1]] < x->depth[ord[j]]; j--) {
            size_t t = ord[j - 1];
            ord[j - 1] = ord[j];
            ord[j] = t;
        }
    for (size_t q = 0; q < n && rc == 0; q++) {
        size_t i = ord[q];
        if (x->keep[i]) {
            res->n_kept++;
            continue;
        }
        /* its working set first: a manifest may lack one, not the reverse */
        char wk[700];
        if (!o->dry_run && (rc = ws_key(wk, sizeof wk, m, g->tag[i])) == 0 &&
            (rc = s3_delete(m->c, wk)) == FKS_ENOTFOUND)
            rc = 0;
        if (rc == 0 && !o->dry_run && (rc = s3_delete(m->c, g->key[i])) == FKS_ENOTFOUND)
            rc = 0;
        if (rc == 0 && !(res->removed[res->n_removed++] = strdup(g->tag[i])))
            rc = fks__err(FKS_ENOMEM, "out of memory");
    }
    return rc;
}

int fks_remote_prune(fks_prune_result *res, size_t *n_ancestors, fks_store *s, const char *remote,
                     const fks_prune_opts *o)
{
    memset(res, 0, sizeof *res);
    if (n_ancestors)
        *n_ancestors = 0;
    if (o->keep_last <= 0 && o->keep_within_ms <= 0 && o->n_keep_tags == 0)
        return fks__err(FKS_EINVAL, "remote prune needs at least one rule (--keep-last, --keep-within, --keep-tag)");
    struct rem m;
    struct lineage g = {0};
    struct rprune x = {0};
    int rc = rem_open(&m, s, remote);
    if (rc == 0)
        rc = scan_manifests(&g, NULL, &m);
    size_t n = x.n = g.n;
    if (rc == 0 && (!(x.ord = calloc(n + 1, sizeof *x.ord)) || !(x.par = calloc(n + 1, sizeof *x.par)) ||
                    !(x.root = calloc(n + 1, sizeof *x.root)) || !(x.seen = calloc(n + 1, sizeof *x.seen)) ||
                    !(x.depth = calloc(n + 1, sizeof *x.depth)) || !(x.keep = calloc(n + 1, 1)) ||
                    !(res->removed = calloc(n + 1, sizeof *res->removed))))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    if (rc == 0 && (rc = rp_tree(&x, &g, &m)) == 0) {
        rp_mark(&x, &g, o, n_ancestors);
        rc = rp_delete(&x, &g, &m, o, res);
    }
    if (rc)
        fks__errctx(rc, "remote prune of %s%s", m.r.name[0] ? m.r.name : remote ? remote : "",
                    res->n_removed ? " (some snapshots were removed)" : "");
    free(x.ord);
    free(x.par);
    free(x.root);
    free(x.seen);
    free(x.depth);
    free(x.keep);
    lineage_free(&g);
    rem_close(&m, NULL);
    return rc;
}

/* ---- remote verify ---- */

#define VR_MAX_PROBLEMS 200

static void vr_add(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return;
    *v = nv;
    if ((nv[*n] = strdup(s)))
        (*n)++;
}

__attribute__((format(printf, 2, 3))) static void vr_problem(fks_remote_verify_report *r, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (r->n_problems < VR_MAX_PROBLEMS)
        vr_add(&r->problems, &r->n_problems, line);
    else if (r->n_problems == VR_MAX_PROBLEMS)
        vr_add(&r->problems, &r->n_problems, "... more problems not listed");
}

static void vr_affected(fks_remote_verify_report *r, const char *tag)
{
    for (size_t i = 0; i < r->n_affected; i++)
        if (strcmp(r->affected[i], tag) == 0)
            return;
    vr_add(&r->affected, &r->n_affected, tag);
}

void fks_remote_verify_free(fks_remote_verify_report *r)
{
    if (!r)
        return;
    fks__lines_free(r->problems, r->n_problems);
    fks__lines_free(r->affected, r->n_affected);
    free(r);
}

/* Checks one pack's bytes b (len) read back for listed object p: its name,
** its header, every page against its hash; then every index entry in it
** (locs ls, n of them). Returns the number of problems found. */
static size_t verify_pack(fks_remote_verify_report *r, struct rem *m, const struct obj *p, const uint8_t *b,
                          size_t len, const struct loc *const *ls, size_t n)
{
    uint8_t sha[32], page[FKS_PAGE_SIZE];
    size_t bad = 0;
    s3_sha256(sha, b, len);
    if (memcmp(sha, p->sha, 32) != 0) {
        vr_problem(r, "pack %s: its content does not match its name (SHA-256)", p->key);
        return 1;
    }
    const uint8_t *tab;
    uint64_t np, d0;
    uint8_t *own = NULL;
    if (pack_table(&tab, &np, &d0, &own, m, b, len, p->key)) {
        vr_problem(r, "%s", fks_errmsg());
        return 1;
    }
    for (uint64_t i = 0; i < np; i++) {
        const uint8_t *e = tab + 32 * i;
        uint64_t off = fks__get64(e + 16);
        uint32_t clen = fks__get32(e + 24), rlen = get16(e + 28);
        uint8_t enc = e[30];
        r->pages_checked++;
        int v = off >= d0 && off <= len && clen <= len - off ? page_open(m, page, b + off, clen, enc, rlen, e)
                                                             : PAGE_UNDECODABLE;
        if (v == PAGE_UNDECODABLE) {
            vr_problem(r, "pack %s: page %llu does not decode to its %u bytes", p->key, (unsigned long long)i, rlen);
            r->bad_pages++;
            bad++;
            continue;
        }
        if (v == PAGE_WRONG || v == PAGE_SEAL) {
            char hx[33];
            fks__hex16(hx, e);
            vr_problem(r, "pack %s: page %llu (%s) %s", p->key, (unsigned long long)i, hx,
                       v == PAGE_WRONG ? "does not match its hash" : "fails its authentication (AES-256-GCM)");
            r->bad_pages++;
            bad++;
        }
    }
    free(own);
    for (size_t i = 0; i < n; i++) {
        const struct loc *l = ls[i];
        if (!(l->off <= len && l->clen <= len - l->off) ||
            page_open(m, page, b + l->off, l->clen, l->enc, l->rlen, l->hash) != PAGE_OK) {
            char hx[33];
            fks__hex16(hx, l->hash);
            vr_problem(r, "pack %s: the index names page %s at offset %llu, which is not there", p->key, hx,
                       (unsigned long long)l->off);
            bad++;
        }
    }
    return bad;
}

static int cmp_locp_pack(const void *a, const void *b)
{
    const struct loc *x = *(const struct loc *const *)a, *y = *(const struct loc *const *)b;
    return x->pack != y->pack ? (x->pack < y->pack ? -1 : 1) : (x->off < y->off ? -1 : x->off > y->off);
}

/* One remote verify run: its remote, what it listed and read. */
struct vr {
    struct rem m;
    fks_remote_verify_report *r;
    struct olist idxs, packs;
    fks__progress pg;            /* util.h: the one reporter */
    struct vraw {                /* one manifest read */
        uint8_t *b;
        size_t len;
        char *key;
        char tag[129], parent[129];
        int state;               /* 0 to decode, 1 decoded, 2 bad */
        struct snapmap map;
    } *raw;
    size_t nraw;
    const struct loc **ls;       /* m.idx's entries by pack, then offset */
    uint8_t *badpack;            /* per pack of m.idx: 1 if bad or missing */
    struct keylist ml;
};

/* Indexes: lists them and reads each one, checked against its name, into
** m.idx (one merged by a gc since the listing is skipped). */
static int vr_indexes(struct vr *v)
{
    fks_remote_verify_report *r = v->r;
    int rc = list_objs(&v->idxs, &v->m, "index/", ".idx");
    r->indexes = v->idxs.n;
    for (size_t i = 0; i < v->idxs.n && rc == 0; i++) {
        const struct obj *x = &v->idxs.v[i];
        uint8_t *b = NULL, sha[32];
        size_t len;
        if ((rc = s3_get(&b, &len, v->m.c, x->key, 0, 0)) == FKS_ENOTFOUND) {
            rc = 0;               /* merged by a gc since the listing */
            continue;
        }
        if (rc)
            break;
        s3_sha256(sha, b, len);
        int bad = memcmp(sha, x->sha, 32) != 0, u = 0;
        if (bad)
            vr_problem(r, "index %s: its content does not match its name (SHA-256)", x->key);
        else if ((u = unseal(&v->m, IDX_MAGIC, "index", x->key, &b, &len)) == FKS_EINVAL) {
            free(b);
            rc = u;               /* a wrong key: nothing to verify with it */
            break;
        } else if (u || index_parse(&v->m.idx, b, len, x->key, &v->m)) {
            vr_problem(r, "%s", fks_errmsg());
            bad = 1;
        }
        r->bad_indexes += (uint64_t)bad;
        free(b);
    }
    return rc;
}

/* Lists the packs; a pack the indexes name is missing (badpack 2: a
** problem only if a manifest needs it) or has another size (1). */
static int vr_pack_sizes(struct vr *v)
{
    const struct index *x = &v->m.idx;
    int rc = list_objs(&v->packs, &v->m, "packs/", ".pack");
    v->r->packs = v->packs.n;
    if (rc == 0 && !(v->badpack = calloc(x->npacks + 1, 1)))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < x->npacks && rc == 0; i++) {
        const struct obj *p = obj_find(&v->packs, x->packs[i].sha);
        char hx[65];
        hex32(hx, x->packs[i].sha);
        if (!p) {
            v->badpack[i] = 2;
        } else if (p->size != x->packs[i].size) {
            vr_problem(v->r, "pack %s: %llu bytes, the index says %llu", p->key, (unsigned long long)p->size,
                       (unsigned long long)x->packs[i].size);
            v->badpack[i] = 1;
        }
    }
    return rc;
}

/* v->ls: every index entry, by pack then offset, so that a pack read back
** finds its entries in one run. */
static int vr_sort_locs(struct vr *v)
{
    const struct index *x = &v->m.idx;
    int rc = 0;
    if (x->n && !(v->ls = malloc(x->n * sizeof *v->ls)))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < x->n && rc == 0; i++)
        v->ls[i] = &x->v[i];
    if (rc == 0 && x->n)
        qsort(v->ls, x->n, sizeof *v->ls, cmp_locp_pack);
    return rc;
}

/* The number in m.idx of pack sha (UINT32_MAX: no index names it), and its
** entries' run in v->ls: *first, *cnt. */
static uint32_t vr_pack_entries(const struct vr *v, const uint8_t sha[32], size_t *first, size_t *cnt)
{
    const struct index *x = &v->m.idx;
    uint32_t no = UINT32_MAX;
    for (size_t k = 0; k < x->npacks && no == UINT32_MAX; k++)
        if (memcmp(x->packs[k].sha, sha, 32) == 0)
            no = (uint32_t)k;
    *first = 0;
    *cnt = 0;
    if (no != UINT32_MAX) {
        size_t lo = 0, hi = x->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (v->ls[mid]->pack < no)
                lo = mid + 1;
            else
                hi = mid;
        }
        *first = lo;
        while (*first + *cnt < x->n && v->ls[*first + *cnt]->pack == no)
            (*cnt)++;
    }
    return no;
}

/* Packs read back (sample_pct of them, picked at random; progress: their
** bytes), each checked with every index entry in it (verify_pack). */
static int vr_read_packs(struct vr *v, double sample_pct)
{
    int rc = 0;
    unsigned seed = (unsigned)(fks__wall_ms() ^ (int64_t)getpid());
    char *pick = calloc(v->packs.n + 1, 1);
    if (!pick)
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->packs.n && rc == 0; i++)
        if ((pick[i] = (char)(sample_pct >= 100 ||
                              (double)rand_r(&seed) / ((double)RAND_MAX + 1.0) * 100 < sample_pct)))
            fks__progress_total(&v->pg, v->packs.v[i].size);
    for (size_t i = 0; i < v->packs.n && rc == 0; i++) {
        if (!pick[i])
            continue;
        uint8_t *b = NULL;
        size_t len;
        if ((rc = s3_get(&b, &len, v->m.c, v->packs.v[i].key, 0, 0)) == FKS_ENOTFOUND) {
            rc = 0;               /* deleted by a gc since the listing */
            continue;
        }
        if (rc)
            break;
        v->r->packs_checked++;
        size_t first, cnt;
        uint32_t no = vr_pack_entries(v, v->packs.v[i].sha, &first, &cnt);
        if (verify_pack(v->r, &v->m, &v->packs.v[i], b, len, v->ls + first, cnt)) {
            v->r->bad_packs++;
            if (no != UINT32_MAX)
                v->badpack[no] = 1;
        }
        fks__progress_add(&v->pg, len);
        free(b);
    }
    free(pick);
    return rc;
}

/* Manifests: lists them and reads each one's header (its tag and parent)
** into v->raw (one pruned since the listing is skipped; a bad one is state 2). */
static int vr_read_manifests(struct vr *v)
{
    char pre[600];
    int rc = fks__path(pre, sizeof pre, "%ssnapshots/", v->m.pfx);
    if (rc == 0)
        rc = s3_list(v->m.c, pre, collect, &v->ml);
    if (rc == 0 && v->ml.n && !(v->raw = calloc(v->ml.n, sizeof *v->raw)))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->ml.n && rc == 0; i++) {
        size_t kl = strlen(v->ml.k[i]);
        if (kl < 9 || strcmp(v->ml.k[i] + kl - 9, ".manifest") != 0)
            continue;
        struct vraw *w = &v->raw[v->nraw];
        if ((rc = s3_get(&w->b, &w->len, v->m.c, v->ml.k[i], 0, 0)) == FKS_ENOTFOUND) {
            rc = 0;               /* pruned since the listing */
            continue;
        }
        if (rc)
            break;
        w->key = v->ml.k[i];
        v->nraw++;
        json_object *j;
        const uint8_t *body;
        int u = unseal(&v->m, MAN_MAGIC, "manifest", w->key, &w->b, &w->len);
        if (u == FKS_EINVAL) {
            rc = u;               /* a wrong key: nothing to verify with it */
            break;
        }
        if (u || manifest_header(&j, &body, w->b, w->len, w->key)) {
            vr_problem(v->r, "%s", fks_errmsg());
            w->state = 2;
            v->r->bad_manifests++;
            continue;
        }
        const char *t = jstr(j, "tag"), *par = jstr(j, "parent");
        snprintf(w->tag, sizeof w->tag, "%s", t ? t : "");
        snprintf(w->parent, sizeof w->parent, "%s", par ? par : "");
        json_object_put(j);
    }
    return rc;
}

/* Decodes the manifests' page maps, root first (a delta map needs its
** parent's); one whose parent is missing or bad is bad. A cycle is left at 0. */
static void vr_decode_manifests(struct vr *v)
{
    fks_remote_verify_report *r = v->r;
    for (int progress_made = 1; progress_made;) {
        progress_made = 0;
        for (size_t i = 0; i < v->nraw; i++) {
            struct vraw *w = &v->raw[i];
            if (w->state)
                continue;
            struct vraw *pw = NULL;
            for (size_t k = 0; k < v->nraw && w->parent[0] && !pw; k++)
                if (strcmp(v->raw[k].tag, w->parent) == 0)
                    pw = &v->raw[k];
            if (w->parent[0] && pw && pw->state == 0)
                continue;         /* its parent first */
            progress_made = 1;
            if (w->parent[0] && (!pw || pw->state == 2)) {
                vr_problem(r, "manifest %s: its parent %s %s", w->key, w->parent,
                           pw ? "is damaged" : "has no manifest");
                r->bad_manifests++;
                w->state = 2;
                vr_affected(r, w->tag[0] ? w->tag : w->key);
                continue;
            }
            if (manifest_decode(&w->map, w->b, w->len, w->key, pw ? &pw->map : NULL) ||
                strcmp(w->map.tag, w->tag) != 0) {
                vr_problem(r, "%s", fks_errmsg());
                r->bad_manifests++;
                w->state = 2;
                vr_affected(r, w->tag[0] ? w->tag : w->key);
                continue;
            }
            w->state = 1;
        }
    }
}

/* Every page of decoded manifest w: reachable (in a good pack), damaged
** (in a bad one) or lost (in no pack the bucket holds: the first one and
** the count are problems); a snapshot with either is affected. */
static void vr_reachable(struct vr *v, const struct vraw *w)
{
    fks_remote_verify_report *r = v->r;
    uint64_t lost = 0, damaged = 0;
    for (size_t a = 0; a < w->map.nart; a++)
        for (size_t k = 0; k < w->map.art[a].n; k++) {
            const struct mpage *pgp = &w->map.art[a].p[k];
            const struct loc *l = rem_find(&v->m, pgp->hash);
            if (!l || v->badpack[l->pack] == 2) {
                if (!lost++) {
                    char hx[33];
                    fks__hex16(hx, pgp->hash);
                    vr_problem(r, "snapshot %s: %s page %llu (%s) is in no %s", w->tag, w->map.art[a].name,
                               (unsigned long long)pgp->pgno, hx,
                               l ? "pack the bucket holds (its pack is missing)" : "pack any index names");
                }
            } else if (v->badpack[l->pack] == 1) {
                damaged++;
            } else {
                r->pages_reachable++;
            }
        }
    r->unreachable_pages += lost;
    if (lost > 1)
        vr_problem(r, "snapshot %s: %llu pages unreachable in all", w->tag, (unsigned long long)lost);
    if (lost || damaged)
        vr_affected(r, w->tag);
}

/* Frees what the run read (not v->r) and closes the remote, its totals
** into the report. */
static void vr_end(struct vr *v)
{
    for (size_t i = 0; i < v->nraw; i++) {
        free(v->raw[i].b);
        snapmap_free(&v->raw[i].map);
    }
    free(v->raw);
    keylist_free(&v->ml);
    free(v->ls);
    free(v->badpack);
    olist_free(&v->idxs);
    olist_free(&v->packs);
    fks_remote_stats rs;
    rem_close(&v->m, &rs);
    v->r->bytes_down = rs.bytes_down;
    v->r->requests = rs.requests;
    v->r->seconds = rs.seconds;
}

int fks_remote_verify(fks_remote_verify_report **out, fks_store *s, const char *remote, double sample_pct,
                      fks_progress_fn progress, void *progress_arg)
{
    *out = NULL;
    fks_remote_verify_report *r = calloc(1, sizeof *r);
    if (!r)
        return fks__err(FKS_ENOMEM, "out of memory");
    struct vr v = {0};
    v.r = r;
    fks__progress_init(&v.pg, progress, progress_arg, 0);
    int rc = rem_open(&v.m, s, remote);
    /* Indexes, packs (sizes, then read back), manifests: decoded root
    ** first, then every page reachable. */
    if (rc == 0)
        rc = vr_indexes(&v);
    if (rc == 0)
        rc = vr_pack_sizes(&v);
    if (rc == 0)
        rc = vr_sort_locs(&v);
    if (rc == 0)
        rc = vr_read_packs(&v, sample_pct);
    if (rc == 0)
        rc = vr_read_manifests(&v);
    r->manifests = v.nraw;
    if (rc == 0)
        vr_decode_manifests(&v);
    for (size_t i = 0; i < v.nraw && rc == 0; i++) {
        const struct vraw *w = &v.raw[i];
        if (w->state == 0) {      /* left: a lineage cycle */
            vr_problem(r, "manifest %s: its lineage has a cycle through %s", w->key, w->parent);
            r->bad_manifests++;
            vr_affected(r, w->tag);
        } else if (w->state == 1) {
            vr_reachable(&v, w);
        }
    }
    if (rc == 0)
        fks__progress_end(&v.pg);
    vr_end(&v);
    if (rc) {
        fks_remote_verify_free(r);
        return fks__errctx(rc, "remote verify of %s", v.m.r.name[0] ? v.m.r.name : remote ? remote : "");
    }
    *out = r;
    return 0;
}

/* ---- lazy restore's access (remote.h; used by remote_lazy.c) ---- */

void remote__snap_free(remote__snap *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nart; i++)
        free(r->art[i].p);
    free(r->art);
    free(r->chain);
    free(r->packs);
    free(r);
}

void remote__conn_close(remote__conn *c, fks_remote_stats *st)
{
    if (!c)
        return;
    fks_remote_stats one;
    rem_close(c, &one);
    if (st) {
        st->requests += one.requests;
        st->retries += one.retries;
        st->bytes_down += one.bytes_down;
        st->bytes_up += one.bytes_up;
    }
    free(c);
}

void remote__conn_stats(const remote__conn *c, fks_remote_stats *st)
{
    s3_stats ss = {0};
    if (c && c->c)
        s3_stats_get(&ss, c->c);
    st->requests += ss.requests;
    st->retries += ss.retries;
    st->bytes_down += ss.bytes_down;
    st->bytes_up += ss.bytes_up;
}

int remote__conn_clone(remote__conn **out, const remote__conn *c)
{
    *out = NULL;
    struct rem *m = malloc(sizeof *m);
    if (!m)
        return fks__err(FKS_ENOMEM, "out of memory");
    *m = *c;                           /* the remote, credentials, prefix; nothing owned: */
    m->c = NULL;
    m->cctx = NULL;
    m->dctx = NULL;
    memset(&m->idx, 0, sizeof m->idx);
    memset(&m->pack_data, 0, sizeof m->pack_data);
    memset(&m->st, 0, sizeof m->st);
    m->have = NULL, m->nhave = 0;
    m->pending = NULL, m->npending = m->pendcap = 0;
    m->marked = NULL, m->nmarked = 0;
    m->mkeys = NULL, m->nmkeys = 0;
    int rc = rem_connect(m);
    if (rc) {
        remote__conn_close(m, NULL);
        return rc;
    }
    *out = m;
    return 0;
}

int remote__get(uint8_t **out, size_t *outlen, remote__conn *c, const char *key, uint64_t off, uint64_t len)
{
    return s3_get(out, outlen, c->c, key, off, len);
}

int remote__page_decode(remote__conn *c, uint8_t *page, const uint8_t *stored, const remote__page *p,
                        const char *key)
{
    uint8_t name[16];
    page_name(name, c, p->hash);       /* as the index names it */
    int v = page_open(c, page, stored, p->clen, p->enc, p->rlen, name);
    if (v == PAGE_SEAL)
        return fks__err(FKS_ECORRUPT, "remote pack %s: page at %llu fails its authentication (AES-256-GCM)", key,
                        (unsigned long long)p->off);
    if (v == PAGE_UNDECODABLE)
        return fks__err(FKS_ECORRUPT, "remote pack %s: page at %llu does not decode to %u bytes", key,
                        (unsigned long long)p->off, p->rlen);
    if (v == PAGE_WRONG)
        return fks__err(FKS_ECORRUPT, "remote pack %s: page at %llu does not match its hash", key,
                        (unsigned long long)p->off);
    if (p->rlen < FKS_PAGE_SIZE)
        memset(page + p->rlen, 0, FKS_PAGE_SIZE - p->rlen);
    return 0;
}

int remote__ws_get(uint64_t **out, size_t *n, remote__conn *c, const char *tag)
{
    *out = NULL;
    *n = 0;
    char key[700];
    uint8_t *b = NULL, sha[32];
    size_t len = 0;
    int rc = ws_key(key, sizeof key, c, tag);
    if (rc == 0 && (rc = s3_get(&b, &len, c->c, key, 0, 0)) == FKS_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = unseal(c, WS_MAGIC, "working set", key, &b, &len);
    if (rc) {
        free(b);
        return rc;
    }
    uint64_t k = len >= 16 + 32 ? fks__get64(b + 8) : 0;
    if (len >= 16 + 32)
        s3_sha256(sha, b, len - 32);
    if (len < 16 + 32 || memcmp(b, WS_MAGIC, 8) != 0 || k != (len - 48) / 8 || (len - 48) % 8 ||
        memcmp(sha, b + len - 32, 32) != 0)
        rc = fks__err(FKS_ECORRUPT, "remote working set %s: bad magic, length or checksum", key);
    else if (k && !(*out = malloc(k * 8)))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (uint64_t i = 0; rc == 0 && i < k; i++)
        (*out)[i] = fks__get64(b + 16 + 8 * i);
    if (rc == 0)
        *n = (size_t)k;
    free(b);
    return rc;
}

/* A manifest as fetched (and unsealed). */
struct rawman {
    uint8_t *b;
    size_t len;
    char key[700];
};

/* The manifests from tag up to its root, as a pull reads them, into
** (*raw)[0 .. *nraw) and r->chain. */
static int so_fetch_chain(struct rem *m, remote__snap *r, const char *tag, struct rawman **raw, size_t *nraw)
{
    char cur[129];
    int rc = 0;
    snprintf(cur, sizeof cur, "%s", tag);
    while (rc == 0 && cur[0]) {
        if (*nraw >= MAX_CHAIN)
            return fks__err(FKS_ECORRUPT, "remote %s: the lineage of %s is longer than %d (or has a cycle)",
                            m->r.name, tag, MAX_CHAIN);
        struct rawman *nr = realloc(*raw, (*nraw + 1) * sizeof **raw);
        char (*nc)[129] = realloc(r->chain, (*nraw + 1) * sizeof *r->chain);
        if (nr)
            *raw = nr;
        if (nc)
            r->chain = nc;
        if (!nr || !nc)
            return fks__err(FKS_ENOMEM, "out of memory");
        struct rawman *w = &(*raw)[*nraw];
        w->b = NULL;
        snprintf(r->chain[*nraw], sizeof r->chain[*nraw], "%s", cur);
        if ((rc = manifest_key(w->key, sizeof w->key, m, cur)))
            return rc;
        if ((rc = s3_get(&w->b, &w->len, m->c, w->key, 0, 0)))
            return rc == FKS_ENOTFOUND ? fks__err(FKS_ENOTFOUND, "snapshot %s not found on remote %s%s", cur,
                                                  m->r.name, *nraw ? " (an ancestor of the snapshot asked for)" : "")
                                       : rc;
        (*nraw)++;
        r->nchain = *nraw;
        if ((rc = unseal(m, MAN_MAGIC, "manifest", w->key, &w->b, &w->len)))
            return rc;
        json_object *j;
        const uint8_t *body;
        if ((rc = manifest_header(&j, &body, w->b, w->len, w->key)))
            return rc;
        const char *par = jstr(j, "parent");
        snprintf(cur, sizeof cur, "%s", par && !fks_check_tag(par) ? par : "");
        json_object_put(j);
    }
    return rc;
}

/* The chain's manifests decoded root first, each onto its parent's map:
** the snapshot's complete map in *prev. */
static int so_decode_chain(remote__snap *r, const struct rawman *raw, size_t nraw, struct snapmap *prev)
{
    struct snapmap map = {0};
    int rc = 0;
    for (size_t k = nraw; rc == 0 && k-- > 0;) {
        if ((rc = manifest_decode(&map, raw[k].b, raw[k].len, raw[k].key, k + 1 < nraw ? prev : NULL)))
            break;
        if (strcmp(map.tag, r->chain[k]) != 0 || (k + 1 < nraw && strcmp(map.parent, r->chain[k + 1]) != 0))
            rc = fks__err(FKS_ECORRUPT, "remote manifest %s names snapshot %s", raw[k].key, map.tag);
        snapmap_free(prev);
        *prev = map;
        memset(&map, 0, sizeof map);
    }
    snapmap_free(&map);
    return rc;
}

/* Each page of the map's artifacts with its place in a pack (the index
** loaded), into r->art; the packs' keys into r->packs. */
static int so_locate(struct rem *m, remote__snap *r, const struct snapmap *map)
{
    if (!(r->art = calloc(map->nart ? map->nart : 1, sizeof *r->art)) ||
        !(r->packs = calloc(m->idx.npacks ? m->idx.npacks : 1, sizeof *r->packs)))
        return fks__err(FKS_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->idx.npacks; i++, r->npacks++) {
        char hx[65];
        hex32(hx, m->idx.packs[i].sha);
        rc = key_of(r->packs[i], sizeof r->packs[i], m, "packs/", hx, ".pack");
    }
    for (size_t i = 0; rc == 0 && i < map->nart; i++, r->nart++) {
        const struct amap *a = &map->art[i];
        remote__art *o = &r->art[i];
        snprintf(o->name, sizeof o->name, "%s", a->name);
        o->size = a->size;
        if (!(o->p = malloc((a->n ? a->n : 1) * sizeof *o->p))) {
            rc = fks__err(FKS_ENOMEM, "out of memory (map of %zu pages)", a->n);
            break;
        }
        for (size_t k = 0; k < a->n; k++) {
            const struct loc *l = rem_find(m, a->p[k].hash);
            if (!l) {
                char hx[33];
                fks__hex16(hx, a->p[k].hash);
                rc = fks__err(FKS_ECORRUPT, "page %s (%s page %llu) is in no pack the remote's index names", hx,
                              a->name, (unsigned long long)a->p[k].pgno);
                break;
            }
            o->p[o->n++] = (remote__page){.pgno = a->p[k].pgno, .off = l->off, .pack = l->pack, .clen = l->clen,
                                          .rlen = l->rlen, .enc = l->enc};
            memcpy(o->p[k].hash, a->p[k].hash, 16);
        }
    }
    return rc;
}

int remote__snap_open(remote__snap **out, remote__conn **conn, fks_store *s, const char *remote, const char *tag)
{
    *out = NULL;
    *conn = NULL;
    struct rem *m = calloc(1, sizeof *m);
    remote__snap *r = calloc(1, sizeof *r);
    struct rawman *raw = NULL;
    size_t nraw = 0;
    struct snapmap map = {0};
    int rc = m && r ? fks_check_tag(tag) : fks__err(FKS_ENOMEM, "out of memory");
    if (rc == 0)
        rc = rem_open(m, s, remote);
    if (rc == 0) {
        snprintf(r->remote, sizeof r->remote, "%s", m->r.name);
        if ((rc = so_fetch_chain(m, r, tag, &raw, &nraw)) == 0)
            rc = so_decode_chain(r, raw, nraw, &map);
    }
    /* Then the index (entries of packs the bucket lists), as pull. */
    if (rc == 0)
        rc = load_have(m);
    if (m)
        m->filter = 1;
    if (rc == 0)
        rc = load_index(m);
    if (rc == 0)
        rc = so_locate(m, r, &map);
    snapmap_free(&map);
    for (size_t k = 0; k < nraw; k++)
        free(raw[k].b);
    free(raw);
    if (m && m->c) {
        idx_free(&m->idx);             /* the locations are copied out */
        memset(&m->idx, 0, sizeof m->idx);
    }
    if (rc) {
        remote__snap_free(r);
        if (m)
            remote__conn_close(m, NULL);
        else
            free(m);
        return fks__errctx(rc, "remote snapshot %s", tag);
    }
    *out = r;
    *conn = m;
    return 0;
}
