/*
** remote_lazy.c: lazy restore from a remote. Reads one artifact (the
** memory) of a snapshot the store lacks straight from the bucket, page by
** page, for the userfaultfd page server (pageserver.c), and stages the
** other artifacts (the vmstate) for the load. Built on remote.h's access
** to the bucket (remote.c owns every object format; see its top comment)
** and the public API.
**
** Design
**  1. Open (fks_rimage_open): the snapshot's manifests, tag up to its root,
**     decoded root first (delta maps applied), and the remote's index
**     (entries of packs the bucket lists) give the artifact's page map and
**     each stored page's place: pack, offset, stored length, encoding. All
**     of it is copied out once (about 48 bytes a page); the fault path
**     reads no manifest, index or catalog row. A page the store already
**     holds (same hash: fks_page_find_many at open, one catalog read,
**     e.g. the parent's pages on a host that has the parent) is read from
**     the store.
**  2. Read (fks_rimage_read, the contract of fks_image_read): the stored
**     pages of the range that are not local, sorted by (pack, offset), are
**     cut into stretches of one pack whose wanted pages lie at most GAP
**     (64 KiB) apart and that span at most RANGE_MAX (4 MiB): one S3 Range
**     GET each (a push packs pages in pgno order, so the aligned 256-page
**     window the page server asks for on a miss, pageserver.c design 8,
**     is mostly one or two GETs). Every page is decoded and checked
**     against its hash (remote__page_decode, the decoder pull uses; on an
**     encrypted remote it also opens the sealed record) before a byte of
**     it is returned.
**  3. Threads: an S3 client is one libcurl easy handle, for one thread at
**     a time. Readers take a connection from a pool (at most POOL, cloned
**     from the first: same remote, credentials, prefix) and give it back;
**     the page server's main thread and its prefetch threads so fetch in
**     parallel. Local reads share the store handle under a mutex.
**  4. Working set (fks_rimage_working_set): P snapshots/<tag>.ws, pushed
**     with the snapshot (remote.c), of tag or of its nearest ancestor on
**     the remote that has one; a bucket without any still serves.
**  5. Keeping the pages (fks_rimage_pull): a plain fks_pull of the
**     snapshot, on a store handle of its own (the store's writer lock and
**     WAL readers make it safe beside the fault path); the pull fetches
**     whole packs of the pages the store lacks (pages faults fetched are
**     fetched again: they are not handed over) and commits atomically.
**     Then the pulled artifact is opened on that handle: the page server
**     switches its reads to the store (pageserver.c, design 8).
**  6. Staging (fks_remote_stage): every other artifact is written through
**     the same read path into the load's staging directory, holes for zero
**     pages.
** Failure: a page that fails its hash or length is FKS_ECORRUPT naming
** the pack and offset; an S3 error is the client's (retried there). No
** lease protects the bucket's packs: a remote gc deletes a pack only
** hours (its interval and min age, 4 h and 2 h by default) after it found
** it unreferenced, and a manifest being served references its packs.
*/
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "forkstore.h"
#include "remote.h"
#include "util.h"

#define PG FKS_PAGE_SIZE
#define POOL 8                 /* S3 connections per image */
#define GAP (64u << 10)        /* pack bytes read along between wanted pages */
#define RANGE_MAX (4u << 20)   /* bytes per Range GET */
#define CHUNK 256              /* pages per pass of fks_rimage_read */

struct fks_rimage {
    fks_store *s;
    remote__snap *snap;
    int own_snap;
    const remote__art *a;
    char tag[129];
    fks_image_info info;
    fks_run *runs;
    size_t nruns;
    int64_t *local;            /* page id in the store of a->p[k]; 0: fetch it */
    pthread_mutex_t smu;       /* s: the local reads */
    pthread_mutex_t pmu;       /* the pool */
    pthread_cond_t pcv;
    remote__conn *pool[POOL];
    int busy[POOL];
    size_t npool;
    fks_rimage_stats st;       /* range_gets .. pages_local: atomic adds */
    fks_store *ps;             /* fks_rimage_pull's own handle */
    fks_image *pim;            /* and the pulled artifact on it */
};

#define ADD(f, n) __atomic_fetch_add(&(f), (uint64_t)(n), __ATOMIC_RELAXED)

static remote__conn *conn_get(fks_rimage *ri, int *slot)
{
    remote__conn *c = NULL;
    pthread_mutex_lock(&ri->pmu);
    for (;;) {
        for (size_t i = 0; i < ri->npool && !c; i++)
            if (!ri->busy[i])
                c = ri->pool[i], *slot = (int)i;
        if (!c && ri->npool < POOL && remote__conn_clone(&ri->pool[ri->npool], ri->pool[0]) == 0)
            c = ri->pool[ri->npool], *slot = (int)ri->npool++;
        if (c || ri->npool == 0)
            break;
        pthread_cond_wait(&ri->pcv, &ri->pmu);   /* all busy, or a clone failed: wait for one */
    }
    if (c)
        ri->busy[*slot] = 1;
    pthread_mutex_unlock(&ri->pmu);
    return c;
}

static void conn_put(fks_rimage *ri, int slot)
{
    pthread_mutex_lock(&ri->pmu);
    ri->busy[slot] = 0;
    pthread_cond_signal(&ri->pcv);
    pthread_mutex_unlock(&ri->pmu);
}

void fks_rimage_close(fks_rimage *ri)
{
    if (!ri)
        return;
    fks_image_close(ri->pim);
    fks_close(ri->ps);
    for (size_t i = 0; i < ri->npool; i++)
        remote__conn_close(ri->pool[i], NULL);
    if (ri->own_snap)
        remote__snap_free(ri->snap);
    free(ri->runs);
    free(ri->local);
    pthread_mutex_destroy(&ri->smu);
    pthread_mutex_destroy(&ri->pmu);
    pthread_cond_destroy(&ri->pcv);
    free(ri);
}

/* An image of artifact of snap (borrowed unless own), reading through conn
** (owned from here on, also on failure). */
static int rimage_make(fks_rimage **out, fks_store *s, remote__snap *snap, int own, remote__conn *conn,
                       const char *artifact)
{
    *out = NULL;
    fks_rimage *ri = calloc(1, sizeof *ri);
    if (!ri) {
        remote__conn_close(conn, NULL);
        if (own)
            remote__snap_free(snap);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&ri->smu, NULL);
    pthread_mutex_init(&ri->pmu, NULL);
    pthread_cond_init(&ri->pcv, NULL);
    ri->s = s, ri->snap = snap, ri->own_snap = own;
    ri->pool[0] = conn, ri->npool = 1;
    snprintf(ri->tag, sizeof ri->tag, "%s", snap->chain[0]);
    int rc = 0;
    for (size_t i = 0; i < snap->nart && !ri->a; i++)
        if (strcmp(snap->art[i].name, artifact) == 0)
            ri->a = &snap->art[i];
    if (!ri->a) {
        rc = fks__err(FKS_ENOTFOUND, "snapshot %s on remote %s has no %s", ri->tag, snap->remote, artifact);
        goto out;
    }
    const remote__art *a = ri->a;
    ri->info.size = a->size;
    ri->info.npages = (a->size + PG - 1) / PG;
    ri->info.stored_pages = a->n;
    if (!(ri->runs = calloc(a->n ? a->n : 1, sizeof *ri->runs)) ||
        !(ri->local = calloc(a->n ? a->n : 1, sizeof *ri->local))) {
        rc = fks__err(FKS_ENOMEM, "out of memory (map of %zu pages)", a->n);
        goto out;
    }
    for (size_t k = 0; k < a->n; k++) {
        if (ri->nruns && ri->runs[ri->nruns - 1].pgno + ri->runs[ri->nruns - 1].npages == a->p[k].pgno)
            ri->runs[ri->nruns - 1].npages++;
        else
            ri->runs[ri->nruns++] = (fks_run){a->p[k].pgno, 1, 0};
    }
    /* design 1: pages the store has are read from it (one catalog read) */
    uint8_t (*h)[16] = malloc((a->n ? a->n : 1) * sizeof *h);
    if (!h) {
        rc = fks__err(FKS_ENOMEM, "out of memory (map of %zu pages)", a->n);
        goto out;
    }
    for (size_t k = 0; k < a->n; k++)
        memcpy(h[k], a->p[k].hash, 16);
    rc = fks_page_find_many(ri->local, s, (const uint8_t (*)[16])h, a->n);
    free(h);
out:
    if (rc) {
        fks_rimage_close(ri);
        return rc;
    }
    *out = ri;
    return 0;
}

/* Opens snap and its first connection, with the message for a store
** that has no remote at all. */
static int snap_open(remote__snap **snap, remote__conn **conn, fks_store *s, const char *remote, const char *tag)
{
    if (!remote) {
        fks_remote *l = NULL;
        size_t n = 0;
        int rc = fks_remote_list(&l, &n, s);
        free(l);
        if (rc)
            return rc;
        if (n == 0)
            return fks__err(FKS_ENOTFOUND, "snapshot %s not found in the store, and the store has no remote to "
                            "fetch it from", tag);
    }
    return remote__snap_open(snap, conn, s, remote, tag);
}

int fks_rimage_open(fks_rimage **out, fks_store *s, const char *remote, const char *tag, const char *artifact)
{
    *out = NULL;
    remote__snap *snap;
    remote__conn *conn;
    int rc = snap_open(&snap, &conn, s, remote, tag);
    return rc ? rc : rimage_make(out, s, snap, 1, conn, artifact);
}

void fks_rimage_info_get(fks_image_info *out, const fks_rimage *ri)
{
    *out = ri->info;
}

const fks_run *fks_rimage_runs(const fks_rimage *ri, size_t *n)
{
    *n = ri->nruns;
    return ri->runs;
}

const char *fks_rimage_remote(const fks_rimage *ri)
{
    return ri->snap->remote;
}

void fks_rimage_stats_get(fks_rimage_stats *out, fks_rimage *ri)
{
    fks_remote_stats rs = {0};
    pthread_mutex_lock(&ri->pmu);
    for (size_t i = 0; i < ri->npool; i++)
        remote__conn_stats(ri->pool[i], &rs);
    pthread_mutex_unlock(&ri->pmu);
    out->requests = rs.requests;
    out->bytes_down = rs.bytes_down;
    out->range_gets = __atomic_load_n(&ri->st.range_gets, __ATOMIC_RELAXED);
    out->range_bytes = __atomic_load_n(&ri->st.range_bytes, __ATOMIC_RELAXED);
    out->pages_remote = __atomic_load_n(&ri->st.pages_remote, __ATOMIC_RELAXED);
    out->pages_local = __atomic_load_n(&ri->st.pages_local, __ATOMIC_RELAXED);
}

/* First page of a->p at or after pgno. */
static size_t page_at(const remote__art *a, uint64_t pgno)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (a->p[m].pgno < pgno)
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

struct want {
    uint32_t pack;
    uint64_t off;
    size_t k;                  /* into a->p */
};

static int want_cmp(const void *x, const void *y)
{
    const struct want *a = x, *b = y;
    if (a->pack != b->pack)
        return a->pack < b->pack ? -1 : 1;
    return a->off < b->off ? -1 : a->off > b->off;
}

/* Fetches pages w[0..n-1] (sorted, design 2) into buf (page pgno0 first). */
static int fetch(fks_rimage *ri, const struct want *w, size_t n, uint64_t pgno0, uint8_t *buf)
{
    const remote__art *a = ri->a;
    int slot = 0, rc = 0;
    remote__conn *c = conn_get(ri, &slot);
    if (!c)
        return fks__err(FKS_ENOMEM, "remote %s: no connection", ri->snap->remote);
    for (size_t i = 0; i < n && rc == 0;) {
        const remote__page *p0 = &a->p[w[i].k];
        uint64_t lo = p0->off, hi = p0->off + p0->clen;
        size_t e = i + 1;
        for (; e < n && w[e].pack == w[i].pack; e++) {
            const remote__page *q = &a->p[w[e].k];
            if (q->off > hi + GAP || q->off + q->clen - lo > RANGE_MAX)
                break;
            if (q->off + q->clen > hi)
                hi = q->off + q->clen;
        }
        uint8_t *b = NULL;
        size_t len = 0;
        const char *key = ri->snap->packs[p0->pack];
        if ((rc = remote__get(&b, &len, c, key, lo, hi - lo)) == 0) {
            ADD(ri->st.range_gets, 1);
            ADD(ri->st.range_bytes, len);
            for (size_t j = i; j < e && rc == 0; j++) {
                const remote__page *q = &a->p[w[j].k];
                rc = remote__page_decode(c, buf + (q->pgno - pgno0) * PG, b + (q->off - lo), q, key);
            }
            if (rc == 0)
                ADD(ri->st.pages_remote, e - i);
        }
        free(b);
        i = e;
    }
    conn_put(ri, slot);
    return rc;
}

int fks_rimage_read(fks_rimage *ri, uint64_t pgno, uint64_t npages, void *out)
{
    uint8_t *buf = out;
    if (pgno > ri->info.npages || npages > ri->info.npages - pgno)
        return fks__err(FKS_EINVAL, "pages %llu+%llu are past the end of %s (%llu pages)", (unsigned long long)pgno,
                        (unsigned long long)npages, ri->a->name, (unsigned long long)ri->info.npages);
    memset(buf, 0, npages * PG);
    const remote__art *a = ri->a;
    struct want w[CHUNK];
    int rc = 0;
    for (uint64_t p = pgno; p < pgno + npages && rc == 0; p += CHUNK) {
        uint64_t end = p + CHUNK < pgno + npages ? p + CHUNK : pgno + npages;
        size_t nw = 0;
        for (size_t k = page_at(a, p); k < a->n && a->p[k].pgno < end && rc == 0; k++) {
            if (!ri->local[k]) {
                w[nw++] = (struct want){a->p[k].pack, a->p[k].off, k};
                continue;
            }
            uint32_t len = 0;
            pthread_mutex_lock(&ri->smu);
            rc = fks_page_read(buf + (a->p[k].pgno - pgno) * PG, &len, ri->s, ri->local[k]);
            pthread_mutex_unlock(&ri->smu);
            if (rc == 0 && len != a->p[k].rlen)
                rc = fks__err(FKS_ECORRUPT, "local page %lld: %u bytes, where %s page %llu has %u",
                              (long long)ri->local[k], len, a->name, (unsigned long long)a->p[k].pgno,
                              a->p[k].rlen);
            if (rc == 0)
                ADD(ri->st.pages_local, 1);
        }
        if (rc == 0 && nw) {
            qsort(w, nw, sizeof *w, want_cmp);
            rc = fetch(ri, w, nw, pgno, buf);
        }
    }
    return rc ? fks__errctx(rc, "remote snapshot %s, %s", ri->tag, a->name) : 0;
}

int fks_rimage_working_set(uint64_t **out, size_t *n, char *from, size_t fromlen, fks_rimage *ri)
{
    *out = NULL;
    *n = 0;
    if (from && fromlen)
        from[0] = 0;
    int slot = 0, rc = 0;
    remote__conn *c = conn_get(ri, &slot);
    if (!c)
        return fks__err(FKS_ENOMEM, "remote %s: no connection", ri->snap->remote);
    for (size_t i = 0; i < ri->snap->nchain && !*n && rc == 0; i++) {
        free(*out);
        *out = NULL;
        if ((rc = remote__ws_get(out, n, c, ri->snap->chain[i])) == 0 && *n && from && fromlen)
            snprintf(from, fromlen, "%s", ri->snap->chain[i]);
    }
    conn_put(ri, slot);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int fks_rimage_pull(fks_remote_stats *st, fks_image **local, fks_rimage *ri)
{
    *local = NULL;
    if (ri->pim) {
        *local = ri->pim;
        return 0;
    }
    const char *tag = ri->tag;
    int rc = ri->ps ? 0 : fks_open(&ri->ps, remote__store_dir(ri->s), 0);
    if (rc == 0)
        rc = fks_pull(st, ri->ps, ri->snap->remote, &tag, 1, NULL, NULL);
    if (rc == 0 && (rc = fks_image_open(&ri->pim, ri->ps, tag, ri->a->name)) == 0 &&
        (rc = fks_image_preload(ri->pim)) != 0) {
        fks_image_close(ri->pim);
        ri->pim = NULL;
    }
    if (rc == 0)
        *local = ri->pim;
    return rc;
}

int fks_remote_stage(fks_remote_staged *out, fks_store *s, const char *remote, const char *tag, const char *dir,
                     const char *skip)
{
    memset(out, 0, sizeof *out);
    remote__snap *snap;
    remote__conn *conn;
    int rc = snap_open(&snap, &conn, s, remote, tag);
    if (rc)
        return rc;
    snprintf(out->remote, sizeof out->remote, "%s", snap->remote);
    uint8_t *buf = malloc((size_t)CHUNK * PG);
    if (!buf)
        rc = fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < snap->nart; i++) {
        const remote__art *a = &snap->art[i];
        if (!strcmp(a->name, "rootfs"))
            out->has_rootfs = 1;
        if (skip && !strcmp(a->name, skip)) {
            out->skipped_bytes = a->size;
            continue;
        }
        fks_rimage *ri = NULL;
        char p[8192];
        int fd = -1;
        if ((rc = fks__path(p, sizeof p, "%s/%s", dir, fks_artifact_filename(a->name))))
            break;
        if ((rc = rimage_make(&ri, s, snap, 0, conn, a->name))) {
            conn = NULL;               /* closed with it */
            break;
        }
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)a->size) != 0)
            rc = fks__errno(FKS_EIO, errno, "write %s", p);
        for (uint64_t pg = 0; rc == 0 && pg < ri->info.npages; pg += CHUNK) {
            uint64_t n = ri->info.npages - pg < CHUNK ? ri->info.npages - pg : CHUNK;
            if ((rc = fks_rimage_read(ri, pg, n, buf)) != 0)
                break;
            uint64_t end = (pg + n) * PG;
            size_t len = (size_t)((end > a->size ? a->size : end) - pg * PG);
            if (!fks__is_zero(buf, len))
                rc = fks__pwrite_full(fd, buf, len, (off_t)(pg * PG), p);
        }
        if (fd >= 0 && close(fd) != 0 && rc == 0)
            rc = fks__errno(FKS_EIO, errno, "close %s", p);
        conn = ri->pool[0];            /* handed back for the next artifact */
        ri->pool[0] = NULL;
        for (size_t k = 1; k < ri->npool; k++)
            remote__conn_close(ri->pool[k], NULL);
        ri->npool = 0;
        fks_rimage_close(ri);
    }
    free(buf);
    remote__conn_close(conn, NULL);
    remote__snap_free(snap);
    return rc ? fks__errctx(rc, "stage snapshot %s from remote %s", tag, out->remote) : 0;
}
