/*
** verify.c: checking a store end to end.
**
** Checks, in order: SQLite's quick_check of the catalog; every chunk row
** has its file, with a valid header naming the same id and at least the
** committed bytes; every page map node (map.c) and its runs are well
** formed (integers, in order, inside its file) and name pages that exist,
** and every artifact's chain of nodes is sound;
** every stored page (or a random sample) decodes and matches its hash.
** Each problem becomes one message; the snapshots whose maps reach a bad
** or missing page, or a page in a bad chunk, and those on or below a
** cycle of parent links (lineage.c), are listed as affected.
** verify only reads: it takes no lock and can run beside anything.
**
** Besides problems (damage: the exit code says so) it reports notes, not
** damage but space a crash or a failed ingest left for gc: files in
** chunks/ no catalog row names (strays) and empty chunk files beyond the
** one spare. Chunk files are opened as every store file is (store.c:
** O_NOFOLLOW | O_NONBLOCK, regular files of the store's owner only), so a
** FIFO in place of a chunk is a problem, not a hang.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "chunk.h"
#include "map.h"
#include "pindex.h"
#include "store.h"
#include "util.h"

#define MAX_PROBLEMS 1000

struct vctx {
    fks_verify_report *r;
    int64_t *bad;          /* page ids that fail or are missing */
    size_t nbad, abad;
};

static int add_msg(char ***list, size_t *n, const char *fmt, va_list ap)
{
    if (*n >= MAX_PROBLEMS)
        return 0;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char **np = realloc(*list, (*n + 1) * sizeof *np);
    if (!np || !(np[*n] = strdup(msg))) {
        if (np)
            *list = np;
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    *list = np;
    (*n)++;
    return 0;
}

FKS_PRINTF(2, 3)
static int problem(struct vctx *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = add_msg(&v->r->problems, &v->r->n_problems, fmt, ap);
    va_end(ap);
    return rc;
}

FKS_PRINTF(2, 3)
static int note(struct vctx *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = add_msg(&v->r->notes, &v->r->n_notes, fmt, ap);
    va_end(ap);
    return rc;
}

static int add_bad(struct vctx *v, int64_t id)
{
    if (v->nbad == v->abad) {
        size_t na = v->abad ? v->abad * 2 : 64;
        int64_t *nb = realloc(v->bad, na * sizeof *nb);
        if (!nb)
            return fks__err(FKS_ENOMEM, "out of memory");
        v->bad = nb;
        v->abad = na;
    }
    v->bad[v->nbad++] = id;
    return 0;
}

static int check_chunks(fks_store *s, struct vctx *v)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st, "SELECT id, used, cap FROM chunk ORDER BY id");
    if (rc)
        return rc;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        uint64_t used = (uint64_t)sqlite3_column_int64(st, 1);
        char p[PATH_MAX];
        uint8_t hb[CHUNK_HDR_SIZE];
        chunk_hdr h;
        struct stat sb;
        v->r->chunks_checked++;
        if ((rc = chunk_path(p, sizeof p, s, id)) != 0)
            break;
        int fd, e = store_open_file(s, p, O_RDONLY, "chunk file", &fd);
        const char *what = NULL;
        if (e == FKS_ENOTFOUND)
            what = "is missing";
        else if (e) {
            v->r->bad_chunks++;
            rc = problem(v, "%s", fks_errmsg());
            continue;
        } else if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < used)
            what = "is truncated (shorter than its committed records)";
        else if (pread(fd, hb, sizeof hb, 0) != (ssize_t)sizeof hb || chunk_parse_hdr(&h, hb, sizeof hb) != 0 ||
                 h.id != (uint64_t)id)
            what = "has a damaged header";
        if (fd >= 0)
            close(fd);
        if (!what)
            continue;
        v->r->bad_chunks++;
        rc = problem(v, "chunk file %s %s", p, what);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Notes (not damage): files in chunks/ no row names, and empty chunks
** beyond one spare, with the bytes they hold on disk. */
static int check_leftovers(fks_store *s, struct vctx *v)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st, "SELECT 1 FROM chunk WHERE id = ?1");
    if (rc)
        return rc;
    DIR *d = opendir(s->chunkdir);
    uint64_t nstray = 0, bytes = 0;
    struct dirent *e;
    while (d && rc == 0 && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        int64_t id = 0;
        int named = chunk_file_parse(nm, &id);
        if (!named && strncmp(nm, "tmp.", 4) != 0)
            continue;
        if (named) {
            sqlite3_bind_int64(st, 1, id);
            int known = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_reset(st);
            if (known)
                continue;
        }
        char p[PATH_MAX];
        struct stat sb;
        if (fks__path(p, sizeof p, "%s/%s", s->chunkdir, nm) == 0 && lstat(p, &sb) == 0)
            bytes += (uint64_t)sb.st_blocks * 512;
        if (nstray++ < 20)
            rc = note(v, "chunk file %s is named by no catalog row (left by a crash; gc removes it)", p);
    }
    if (d)
        closedir(d);
    sqlite3_finalize(st);
    if (rc == 0 && nstray)
        rc = note(v, "%llu stray files in %s hold %llu bytes", (unsigned long long)nstray, s->chunkdir,
                  (unsigned long long)bytes);
    if (rc == 0 && (rc = cat_prepare(s->db, &st, "SELECT count(*), coalesce(sum(cap), 0) FROM chunk WHERE used <= "
                                     CHUNK_HDR_SQL " AND id NOT IN (SELECT DISTINCT chunk_id FROM block)")) == 0) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW && sqlite3_column_int64(st, 0) > 1)
            rc = note(v, "%lld empty chunk files hold %lld preallocated bytes (left by failed or killed "
                      "ingests; gc reclaims all but one)", (long long)sqlite3_column_int64(st, 0),
                      (long long)sqlite3_column_int64(st, 1));
        else if (src != SQLITE_ROW)
            rc = cat_err(s->db, src, "catalog: count empty chunks");
        sqlite3_finalize(st);
    }
    return rc;
}

/* Adds tag to the affected snapshots (once). */
static int add_affected(struct vctx *v, const char *tag)
{
    for (size_t k = 0; k < v->r->n_affected; k++)
        if (strcmp(v->r->affected[k], tag) == 0)
            return 0;
    char **na = realloc(v->r->affected, (v->r->n_affected + 1) * sizeof *na);
    if (!na)
        return fks__err(FKS_ENOMEM, "out of memory");
    v->r->affected = na;
    if (!(na[v->r->n_affected] = strdup(tag)))
        return fks__err(FKS_ENOMEM, "out of memory");
    v->r->n_affected++;
    return 0;
}

/* The snapshots that use map node id: those whose artifact names it or
** a node built on it, to any depth. */
static int node_users(fks_store *s, struct vctx *v, int64_t id)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st,
        "WITH RECURSIVE up(id) AS (SELECT ?1 UNION SELECT p.id FROM pmap p JOIN up ON p.base_id = up.id) "
        "SELECT DISTINCT s.tag FROM up JOIN artifact a ON a.pmap_id = up.id JOIN snapshot s ON s.id = a.snapshot_id");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int src;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
        if (sqlite3_column_text(st, 0))
            rc = add_affected(v, (const char *)sqlite3_column_text(st, 0));
    if (rc == 0)
        rc = cat_done(s->db, src, "catalog: find a page map's snapshots");
    sqlite3_finalize(st);
    return rc;
}

/* A damaged node: one problem, and its users are affected. */
static int bad_node(fks_store *s, struct vctx *v, int64_t id, const char *what)
{
    v->r->bad_runs++;
    int rc = problem(v, "page map %lld: %s", (long long)id, what);
    return rc ? rc : node_users(s, v, id);
}

/* Every page map node once (map.c): its row and its runs well formed
** (integers, in page order without overlap, inside the artifact), every
** page a run names present, and only a file's last page short. Then per
** artifact: its chain of bases sound and its last page exactly the
** file's tail; in a full verify also its whole map, read as restore
** reads it (the page counts agree). The work is the nodes' runs, not the snapshots' pages;
** nothing allocates by a length read from the catalog beyond one node. */
static int check_maps(fks_store *s, struct vctx *v, int full)
{
    sqlite3_stmt *nodes = NULL, *cnt = NULL, *arts = NULL;
    pm_map m = {0};
    int rc = cat_prepare(s->db, &nodes, "SELECT id FROM pmap ORDER BY id");
    if (rc == 0)
        rc = cat_prepare(s->db, &cnt, "SELECT count(*), count(rlen) FROM page WHERE id BETWEEN ?1 AND ?2");
    if (rc == 0)
        rc = cat_prepare(s->db, &arts, "SELECT s.tag, a.name, a.id, a.size FROM artifact a "
                                       "JOIN snapshot s ON s.id = a.snapshot_id ORDER BY a.id");
    int src;
    while (rc == 0 && (src = sqlite3_step(nodes)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(nodes, 0);
        struct map_row row;
        m.n = 0;
        if (map_row_get(&row, s->db, id) != 0 || map_delta_load(&m, s->db, id, row.npages) != 0) {
            rc = bad_node(s, v, id, fks_errmsg());
            continue;
        }
        v->r->runs_checked += m.n;
        for (size_t i = 0; i < m.n && rc == 0; i++) {
            const pm_run *r = &m.r[i];
            if (r->page == 0)
                continue;
            sqlite3_bind_int64(cnt, 1, r->page);
            sqlite3_bind_int64(cnt, 2, r->page + (int64_t)r->npages - 1);
            int cs = sqlite3_step(cnt);
            int64_t have = cs == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : 0;
            int64_t shorts = cs == SQLITE_ROW ? sqlite3_column_int64(cnt, 1) : 0;
            sqlite3_reset(cnt);
            if (cs != SQLITE_ROW) {
                rc = cat_err(s->db, cs, "catalog: count pages");
                break;
            }
            /* Short pages: only the artifact's last page; its exact
            ** length is checked per artifact below. */
            int64_t allowed = r->pgno + r->npages == row.npages;
            char why[160];
            if ((uint64_t)have != r->npages) {
                v->r->missing_pages += r->npages - (uint64_t)have;
                snprintf(why, sizeof why, "pages %llu-%llu: %lld of the pages the map names are missing from "
                         "the index", (unsigned long long)r->pgno, (unsigned long long)(r->pgno + r->npages - 1),
                         (long long)(r->npages - (uint64_t)have));
                rc = bad_node(s, v, id, why);
            } else if (shorts > allowed) {
                snprintf(why, sizeof why, "pages %llu-%llu: a page's length does not fit the file's size "
                         "(size or page row damaged)", (unsigned long long)r->pgno,
                         (unsigned long long)(r->pgno + r->npages - 1));
                rc = bad_node(s, v, id, why);
            }
        }
    }
    if (rc == 0)
        rc = cat_done(s->db, src, "catalog: read page maps");
    /* Per artifact: its node's chain, and its tail page. */
    while (rc == 0 && (src = sqlite3_step(arts)) == SQLITE_ROW) {
        const char *tag = (const char *)sqlite3_column_text(arts, 0), *name = (const char *)sqlite3_column_text(arts, 1);
        int64_t art = sqlite3_column_int64(arts, 2), size = sqlite3_column_int64(arts, 3);
        int64_t node = 0;
        struct map_row row;
        const char *why = NULL;
        char buf[320], mapwhy[300];
        pm_map want = {0}, got = {0}, whole = {0};
        if (sqlite3_column_type(arts, 3) != SQLITE_INTEGER || size < 0)
            why = "its size is damaged";
        else if (map_of_artifact(&node, s->db, art) != 0 || map_row_get(&row, s->db, node) != 0)
            why = fks_errmsg();
        else if (row.npages != ((uint64_t)size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE)
            why = "its page map is for another size";
        else if ((row.npages && (pm_push_run(&want, row.npages - 1, 1, 0) != 0 ||
                                 map_restrict(&got, s->db, node, &want) != 0)) ||
                 (full && map_load_artifact(&whole, s->db, art, row.npages) != 0)) {
            snprintf(mapwhy, sizeof mapwhy, "its page map: %s", fks_errmsg());   /* as restore reads it */
            why = mapwhy;
        }
        else if (got.n == 1) {
            struct cat_page pg;
            uint64_t tail = (uint64_t)size - (row.npages - 1) * FKS_PAGE_SIZE;
            if (cat_page_get(&pg, s->db, got.r[0].page) == 0 && pg.rlen != tail)
                why = "its last page's length does not fit the file's size (size or page row damaged)";
        }
        if (why) {
            snprintf(buf, sizeof buf, "%s", why);
            v->r->bad_runs++;
            rc = problem(v, "snapshot %s, %s: %s", tag ? tag : "?", name ? name : "?", buf);
            if (rc == 0 && tag)
                rc = add_affected(v, tag);
        }
        pm_free(&want);
        pm_free(&got);
        pm_free(&whole);
    }
    if (rc == 0)
        rc = cat_done(s->db, src, "catalog: read artifacts");
    sqlite3_finalize(nodes);
    sqlite3_finalize(cnt);
    sqlite3_finalize(arts);
    pm_free(&m);
    return rc;
}

static int cmp64(const void *a, const void *b);

/* Reports FKS_PAGE_SIZE bytes to pg per page checked. */
static int check_pages(fks_store *s, struct vctx *v, double sample, fks__progress *pg)
{
    sqlite3_stmt *st;
    chunk_reader *cr;
    uint8_t page[FKS_PAGE_SIZE];
    int rc = chunk_reader_new(&cr, s);
    if (rc)
        return rc;
    uint64_t total = 0;
    if ((rc = cat_prepare(s->db, &st, "SELECT count(*) FROM page")) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            total = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    /* All pages: one pass in id order (pages of a block have neighbouring
    ** ids, so each block is decoded once). A sample: that share of the
    ** pages, drawn as random ids and read by rowid, so that the work is
    ** the sample, not the index. */
    int64_t next = 0;
    if (rc == 0)
        rc = cat_meta_get(s->db, "next_page_id", &next);
    if (rc == 0)
        rc = cat_prepare(s->db, &st, sample < 100 ? "SELECT id, chunk_id, off, len, slot, rlen, hash, block_id, block_n "
                                                    "FROM page_place WHERE id >= ?1 ORDER BY id LIMIT 1"
                                                  : "SELECT id, chunk_id, off, len, slot, rlen, hash, block_id, block_n "
                                                    "FROM page_place WHERE id >= ?1 ORDER BY id");
    pidx *ix = NULL;
    if (rc == 0 && (rc = pidx_open(&ix, s->db)) == 0)
        rc = pidx_begin(ix);
    if (rc) {
        pidx_close(ix);
        sqlite3_finalize(st);
        chunk_reader_free(cr);
        return rc;
    }
    unsigned seed = (unsigned)fks__wall_ms();
    uint64_t want = sample < 100 ? (uint64_t)((double)total * sample / 100.0 + 0.999) : total;
    fks__progress_total(pg, want * FKS_PAGE_SIZE);
    int64_t *ids = NULL;
    size_t nids = 0;
    if (sample < 100 && want && next > 1) {
        if (!(ids = malloc(want * sizeof *ids))) {
            chunk_reader_free(cr);
            sqlite3_finalize(st);
            return fks__err(FKS_ENOMEM, "out of memory (%llu sample ids)", (unsigned long long)want);
        }
        for (uint64_t i = 0; i < want; i++) {
            uint64_t r = ((uint64_t)rand_r(&seed) << 31) ^ (uint64_t)rand_r(&seed);
            ids[nids++] = 1 + (int64_t)(r % (uint64_t)(next - 1));
        }
        qsort(ids, nids, sizeof *ids, cmp64);
    }
    int src = SQLITE_DONE;
    int64_t prev = 0;
    for (size_t k = 0; rc == 0 && (ids ? k < nids : k == 0 && sample >= 100); k++) {
        if (ids && ids[k] <= prev)
            continue;             /* a repeat, or inside what was just read */
        sqlite3_bind_int64(st, 1, ids ? ids[k] : 1);
        while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            prev = id;
            v->r->pages_checked++;
            int64_t off = sqlite3_column_int64(st, 2), len = sqlite3_column_int64(st, 3);
            int64_t slot = sqlite3_column_int64(st, 4), rlen = sqlite3_column_int64(st, 5);
            int e;
            int64_t first = sqlite3_column_int64(st, 7), bn = sqlite3_column_int64(st, 8), found = 0;
            if (sqlite3_column_type(st, 7) != SQLITE_INTEGER)
                e = fks__err(FKS_ECORRUPT, "no block row holds it");
            else if (sqlite3_column_bytes(st, 6) != 16 || off < 0 || len <= 0 || len > UINT32_MAX || slot < 0 ||
                     slot >= 8 || rlen <= 0 || rlen > FKS_PAGE_SIZE || bn <= 0 || bn > 8 || id - first >= bn)
                e = fks__err(FKS_ECORRUPT, "catalog row out of range (hash %d bytes, off %lld, len %lld, slot %lld, "
                             "rlen %lld, block %lld of %lld pages)", sqlite3_column_bytes(st, 6), (long long)off,
                             (long long)len, (long long)slot, (long long)rlen, (long long)first, (long long)bn);
            else if ((e = pidx_find(ix, sqlite3_column_blob(st, 6), &found)) == 0 && found != id)
                e = fks__err(FKS_ECORRUPT, "the hash index %s", found ? "names another page with its hash"
                                                                     : "lacks it (its bytes would be stored again)");
            if (e == 0)
                e = chunk_read(cr, sqlite3_column_int64(st, 1), (uint64_t)off, (uint32_t)len, (uint32_t)slot,
                               (uint32_t)rlen, sqlite3_column_blob(st, 6), page);
            if (e) {
                v->r->bad_pages++;
                if (v->r->bad_pages <= 20)
                    rc = problem(v, "page %lld: %s", (long long)id, fks_errmsg());
                if (rc == 0)
                    rc = add_bad(v, id);
            }
            fks__progress_add(pg, FKS_PAGE_SIZE);
        }
        sqlite3_reset(st);
        if (rc == 0)          /* a read error is an error, not a short verify */
            rc = cat_done(s->db, src, "catalog: read page index");
    }
    free(ids);
    pidx_close(ix);
    if (v->r->bad_pages > 20)
        rc = problem(v, "... %llu damaged pages in all", (unsigned long long)v->r->bad_pages);
    sqlite3_finalize(st);
    chunk_reader_free(cr);
    return rc;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int affected_cb(void *arg, const char *tag)
{
    return add_affected(arg, tag);
}

/* Tags of snapshots whose maps reach a bad page id. */
static int affected(fks_store *s, struct vctx *v)
{
    if (v->nbad == 0)
        return 0;
    qsort(v->bad, v->nbad, sizeof *v->bad, cmp64);
    sqlite3_stmt *st;
    int rc = cat_prepare(s->db, &st, "SELECT pmap_id, page_id, npages FROM pmap_run WHERE page_id > 0 ORDER BY pmap_id");
    if (rc)
        return rc;
    /* One pass over every node's runs (damage is rare; the bad ids are
    ** sorted): a node naming a bad id, then that node's snapshots. */
    int src;
    int64_t done = 0;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t node = sqlite3_column_int64(st, 0), lo = sqlite3_column_int64(st, 1);
        int64_t n = sqlite3_column_int64(st, 2);
        if (node == done)
            continue;
        /* a damaged run (check_maps reported it): as far as it can reach */
        int64_t hi = n <= 0 ? lo : n > INT64_MAX - lo ? INT64_MAX : lo + n;
        size_t a = 0, b = v->nbad;               /* first bad id >= lo */
        while (a < b) {
            size_t m = a + (b - a) / 2;
            if (v->bad[m] < lo)
                a = m + 1;
            else
                b = m;
        }
        if (a < v->nbad && v->bad[a] < hi) {
            done = node;
            rc = node_users(s, v, node);
        }
    }
    if (rc == 0)
        rc = cat_done(s->db, src, "catalog: read page maps");
    sqlite3_finalize(st);
    return rc;
}

int fks_verify(fks_verify_report **out, fks_store *s, double sample, fks_progress_fn progress, void *arg)
{
    struct vctx v = {0};
    double t0 = fks__now();
    int rc;
    *out = NULL;
    if (!(v.r = calloc(1, sizeof *v.r)))
        return fks__err(FKS_ENOMEM, "out of memory");
    if (sample <= 0 || sample > 100)
        sample = 100;
    fks__progress pg;             /* the pages checked (check_pages) */
    fks__progress_init(&pg, progress, arg, 0);
    sqlite3_stmt *st;
    if ((rc = cat_prepare(s->db, &st, "PRAGMA quick_check")) == 0) {
        while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
            const char *m = (const char *)sqlite3_column_text(st, 0);
            if (m && strcmp(m, "ok") != 0)
                rc = problem(&v, "catalog quick_check: %s", m);
        }
        sqlite3_finalize(st);
    }
    if (rc == 0) {                    /* parent links: no cycle (lineage.c) */
        int lr = fks_check_lineage(NULL, s);
        rc = lr == FKS_ECORRUPT ? problem(&v, "%s", fks_errmsg()) : lr;
        if (rc == 0 && lr == FKS_ECORRUPT)   /* log, info, rmi refuse them */
            rc = fks_lineage_bad(s, affected_cb, &v);
    }
    if (rc == 0 && (rc = cat_exec(s->db, "BEGIN")) == 0) {
        if ((rc = check_chunks(s, &v)) == 0 && (rc = check_maps(s, &v, sample >= 100)) == 0 &&
            (rc = check_pages(s, &v, sample, &pg)) == 0 && (rc = affected(s, &v)) == 0)
            rc = check_leftovers(s, &v);
        cat_exec(s->db, "COMMIT");
    }
    free(v.bad);
    v.r->seconds = fks__now() - t0;
    if (rc) {
        fks_verify_free(v.r);
        return rc;
    }
    fks__progress_end(&pg);
    *out = v.r;
    return 0;
}

void fks_verify_free(fks_verify_report *r)
{
    if (!r)
        return;
    fks__lines_free(r->problems, r->n_problems);
    fks__lines_free(r->affected, r->n_affected);
    fks__lines_free(r->notes, r->n_notes);
    free(r);
}
