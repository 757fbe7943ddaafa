/*
** fuzz_catalog.c: page maps and the page index as stored in the catalog,
** damaged on purpose, through fks_restore and fks_verify.
**
** Once: a template store with three snapshots (a root, a diff child with
** dirtied zero pages and duplicates, a second root with a short-tailed
** rootfs file) and their expected files. Per input: a copy of the
** template, then up to 8 operations from the input, applied with sqlite3
** or to the chunk file:
**   0 update a map run column (pmap_run: pmap_id, pgno, npages, page_id)
**   1 delete a run        2 insert a run
**   3 update a page or block column (page id, rlen, a hash bit; its
**     block row's id, chunk_id, off, len, n, slot0)
**   4 delete a page       5 flip a byte of the chunk file's records
**   6 store a run column as REAL, TEXT or BLOB
**   7 toggle PRAGMA ignore_check_constraints (so npages <= 0 gets in)
** Values are the old value plus a small delta, small numbers, negatives,
** limits (INT64_MAX, 2^62, ...) or raw 64-bit numbers.
**
** The reference reads the damaged catalog here and decides, per snapshot,
** whether it can be restored exactly: the runs of every node of each
** artifact's map chain (src/engine/map.c) are integers, non-empty, sorted,
** non-overlapping and inside the artifact, page ids in range (0, zeros,
** only in a delta node); the complete map they make (nearest node first)
** has the page count its node's row says; every page it names exists
** with a hash and length of the template (a changed hash or length is
** unreadable), and has the length its position needs.
** Its expected files are then the template's pages at those positions.
** A page whose location (chunk_id, off, len, slot, its block row's id or
** page count) changed may fail to read, or be served from a block already
** decoded: either is fine.
**
** Oracle: fks_restore either fails, leaving the output directory empty,
** or succeeds for a snapshot the reference calls restorable and writes
** exactly the expected files (nothing else) -- never other bytes. With no
** chunk damage and no moved page, a snapshot the reference calls
** restorable must restore.
** fks_verify must finish (returning 0 with a report) and must report a
** problem whenever a restore failed. fks_snap_stats_get and fks_diff
** must answer or fail with a message; an intact snapshot differs from
** itself nowhere. Any violation aborts.
**
** Regressions kept in the corpus (crash-*): restore accepting runs whose
** columns are not integers or whose npages < 1, verify missing damage that
** makes a restore fail, verify running out of memory on a huge run, and
** stats adding a run's page count to its page id unchecked (overflow),
** and restore refusing an intact snapshot over a damaged row of a page
** it does not need but whose id lay between two it does (one scan reads
** both).
*/
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forkstore.h"
#include "fuzz.h"

#define PG 4096
#define NSNAP 3
#define MAXPAGES 256
#define MAXART 4

static const char *dir;
static char tmpl[600], work[600];

struct efile {                  /* an expected file of a template snapshot */
    char name[65];
    size_t size;
    uint8_t *data;
};
static const char *tags[NSNAP] = {"a", "b", "c"};
static struct efile expect[NSNAP][MAXART];
static size_t nexpect[NSNAP];

struct prow {                   /* a page row as the template has it */
    int64_t id, chunk_id, off, len, slot, rlen, block_id, block_n;
    uint8_t hash[16];
    uint8_t content[PG];
};
static struct prow orig[MAXPAGES];
static size_t norig;
static int64_t chunk_used;

static uint32_t rnd_state = 7;
static uint8_t rnd8(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (uint8_t)(rnd_state >> 16);
}

static void fill(uint8_t *p, size_t n, int kind)
{
    for (size_t i = 0; i < n; i++)
        p[i] = kind == 0 ? 0 : kind == 1 ? rnd8() : (uint8_t)("forkstore "[(i + (size_t)kind) % 10]);
}

static void write_file(const char *path, const uint8_t *p, size_t n, int sparse)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_ASSERT(fd >= 0, "create %s", path);
    FUZZ_ASSERT(ftruncate(fd, (off_t)n) == 0, "truncate");
    for (size_t o = 0; o < n; o += PG) {
        size_t len = n - o < PG ? n - o : PG;
        int zero = 1;
        for (size_t i = 0; i < len && zero; i++)
            zero = p[o + i] == 0;
        if (!(sparse && zero))
            FUZZ_ASSERT(pwrite(fd, p + o, len, (off_t)o) == (ssize_t)len, "write");
    }
    close(fd);
}

static struct efile *add_expect(int snap, const char *name, size_t size)
{
    struct efile *e = &expect[snap][nexpect[snap]++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->size = size;
    e->data = calloc(1, size ? size : 1);
    FUZZ_ASSERT(e->data, "out of memory");
    return e;
}

static void ingest(fks_store *s, const char *tag, const char *parent, fks_artifact_in *arts, size_t n)
{
    fks_ingest_opts o = {.tag = tag, .parent = parent, .artifacts = arts, .n_artifacts = n,
                         .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
    FUZZ_ASSERT(fks_ingest(NULL, s, &o) == 0, "template ingest %s: %s", tag, fks_errmsg());
}

static void build_template(void)
{
    char p[700], m[700], v[700], d[700], r[700];
    snprintf(tmpl, sizeof tmpl, "%s/tmpl", dir);
    FUZZ_ASSERT(fks_init(tmpl, 1 << 20) == 0, "init: %s", fks_errmsg());
    fks_store *s;
    FUZZ_ASSERT(fks_open(&s, tmpl, 0) == 0, "open: %s", fks_errmsg());
    snprintf(m, sizeof m, "%s/m", dir);
    snprintf(v, sizeof v, "%s/v", dir);
    snprintf(d, sizeof d, "%s/d", dir);
    snprintf(r, sizeof r, "%s/r", dir);

    /* a: 24 pages: zeros, random, text, a duplicate; vmstate 5000 bytes */
    struct efile *am = add_expect(0, "memory", 24 * PG), *av = add_expect(0, "vmstate", 5000);
    static const int kinds[24] = {1, 1, 0, 2, 3, 1, 1, 1, 0, 0, 4, 1, 1, 1, 1, 0, 1, 2, 1, 1, 1, 0, 5, 1};
    for (int i = 0; i < 24; i++)
        fill(am->data + i * PG, PG, kinds[i]);
    memcpy(am->data + 13 * PG, am->data + 5 * PG, PG);           /* a duplicate page */
    fill(av->data, av->size, 1);
    write_file(m, am->data, am->size, 1);
    write_file(v, av->data, av->size, 0);
    fks_artifact_in arts[3] = {{"memory", m, 0}, {"vmstate", v, 0}, {"rootfs", r, 0}};
    ingest(s, "a", NULL, arts, 2);

    /* b: a diff over a: new pages, a dirtied zero page, a reverted page */
    struct efile *bm = add_expect(1, "memory", 24 * PG), *bv = add_expect(1, "vmstate", 5000);
    memcpy(bm->data, am->data, am->size);
    memcpy(bv->data, av->data, av->size);
    uint8_t *diff = calloc(1, 24 * PG);
    FUZZ_ASSERT(diff, "out of memory");
    int fd = open(d, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_ASSERT(fd >= 0 && ftruncate(fd, 24 * PG) == 0, "diff file");
    static const int dpages[] = {1, 2, 3, 7, 8, 20, 23};
    for (size_t k = 0; k < sizeof dpages / sizeof dpages[0]; k++) {
        int pg = dpages[k];
        uint8_t *q = diff + pg * PG;
        if (pg == 7)
            memset(q, 0, PG);                                      /* dirtied to zero */
        else if (pg == 20)
            memcpy(q, am->data + 11 * PG, PG);                     /* a page seen before */
        else
            fill(q, PG, pg % 3 == 0 ? 1 : 2 + pg);
        memcpy(bm->data + pg * PG, q, PG);
        FUZZ_ASSERT(pwrite(fd, q, PG, (off_t)pg * PG) == PG, "write diff");
    }
    close(fd);
    free(diff);
    arts[0].path = d;
    arts[0].diff = 1;
    ingest(s, "b", "a", arts, 2);

    /* c: a root with memory, vmstate and rootfs (3 pages + 100 bytes) */
    struct efile *cm = add_expect(2, "memory", 8 * PG), *cr = add_expect(2, "rootfs", 3 * PG + 100),
                 *cv = add_expect(2, "vmstate", 100);
    for (int i = 0; i < 8; i++)
        fill(cm->data + i * PG, PG, i % 4 == 3 ? 0 : 1);
    fill(cr->data, cr->size, 2);
    memcpy(cr->data + PG, am->data, PG);                           /* dedup across files */
    fill(cv->data, cv->size, 1);
    write_file(m, cm->data, cm->size, 1);
    write_file(r, cr->data, cr->size, 0);
    write_file(v, cv->data, cv->size, 0);
    arts[0].path = m;
    arts[0].diff = 0;
    ingest(s, "c", NULL, arts, 3);
    fks_close(s);

    /* Fold the WAL into catalog.db so a copy is two files, and read the
    ** page index with each page's content (from the expected files). */
    sqlite3 *db;
    snprintf(p, sizeof p, "%s/catalog.db", tmpl);
    FUZZ_ASSERT(sqlite3_open(p, &db) == SQLITE_OK, "sqlite3_open");
    FUZZ_ASSERT(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE",
                             NULL, NULL, NULL) == SQLITE_OK, "checkpoint: %s", sqlite3_errmsg(db));
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT p.id, p.chunk_id, p.off, p.len, p.slot, p.rlen, p.hash, "
                       "s.tag, a.name, r.pgno + (p.id - r.page_id), p.block_id, p.block_n FROM page_place p "
                       "JOIN run r ON p.id BETWEEN r.page_id AND r.page_id + r.npages - 1 "
                       "JOIN artifact a ON a.id = r.artifact_id JOIN snapshot s ON s.id = a.snapshot_id "
                       "ORDER BY p.id", -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (norig > 0 && orig[norig - 1].id == id)
            continue;
        FUZZ_ASSERT(norig < MAXPAGES, "template too big");
        struct prow *w = &orig[norig++];
        w->id = id;
        w->chunk_id = sqlite3_column_int64(st, 1);
        w->off = sqlite3_column_int64(st, 2);
        w->len = sqlite3_column_int64(st, 3);
        w->slot = sqlite3_column_int64(st, 4);
        w->rlen = sqlite3_column_int64(st, 5);
        w->block_id = sqlite3_column_int64(st, 10);
        w->block_n = sqlite3_column_int64(st, 11);
        memcpy(w->hash, sqlite3_column_blob(st, 6), 16);
        const char *tag = (const char *)sqlite3_column_text(st, 7), *name = (const char *)sqlite3_column_text(st, 8);
        int64_t pg = sqlite3_column_int64(st, 9);
        for (int k = 0; k < NSNAP; k++)
            for (size_t j = 0; strcmp(tags[k], tag) == 0 && j < nexpect[k]; j++)
                if (strcmp(expect[k][j].name, name) == 0)
                    memcpy(w->content, expect[k][j].data + pg * PG, (size_t)w->rlen);
    }
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db, "SELECT max(used) FROM chunk", -1, &st, NULL);
    FUZZ_ASSERT(sqlite3_step(st) == SQLITE_ROW, "chunk");
    chunk_used = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    FUZZ_ASSERT(norig > 10 && chunk_used > 64, "template has %zu pages", norig);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!getenv("FORKSTORE_THREADS"))
        setenv("FORKSTORE_THREADS", "2", 1);
    dir = fuzz_scratch("catalog");
    build_template();
    snprintf(work, sizeof work, "%s/work", dir);
    return 0;
}

static void copy_file(const char *from, const char *to)
{
    static uint8_t buf[1 << 16];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_ASSERT(in >= 0 && out >= 0, "copy %s: %s", from, strerror(errno));
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        FUZZ_ASSERT(write(out, buf, (size_t)n) == n, "copy write");
    close(in);
    close(out);
}

static void copy_dir(const char *from, const char *to)
{
    char a[800], b[800];
    FUZZ_ASSERT(mkdir(to, 0700) == 0, "mkdir %s: %s", to, strerror(errno));
    DIR *d = opendir(from);
    FUZZ_ASSERT(d, "opendir %s", from);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        struct stat st;
        FUZZ_ASSERT(stat(a, &st) == 0, "stat %s", a);
        if (S_ISDIR(st.st_mode))
            copy_dir(a, b);
        else
            copy_file(a, b);
    }
    closedir(d);
}

static void copy_template(void)
{
    fuzz_rmtree(work);
    copy_dir(tmpl, work);
}

/* ---- damage ---- */

static int64_t value(fuzz_in *in, int64_t old)
{
    static const int64_t special[] = {0, -1, 1, INT64_MAX, INT64_MIN, (int64_t)1 << 62, ((int64_t)1 << 62) - 1,
                                      (int64_t)1 << 32, INT32_MAX, 4096, 24, 25, 4095, -4096};
    unsigned s = (unsigned)fuzz_take(in, 1);
    switch (s % 6) {
    case 0: return (int64_t)((uint64_t)old + (s >> 3) - 16);     /* wraps, as raw bits would */
    case 1: return (int64_t)fuzz_take(in, 1);
    case 2: return -(int64_t)fuzz_take(in, 1);
    case 3: return (int64_t)fuzz_take(in, 8);
    case 4: return special[(s >> 3) % (sizeof special / sizeof special[0])];
    default: return (int64_t)((uint64_t)old * 2 + ((s >> 3) & 1));
    }
}

static int nrows(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The k-th run's key, or 0 if there are no runs. */
static int run_key(sqlite3 *db, unsigned k, sqlite3_value **art, sqlite3_value **pgno)
{
    int n = nrows(db, "SELECT count(*) FROM pmap_run");
    if (n == 0)
        return 0;
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT pmap_id, pgno FROM pmap_run ORDER BY pmap_id, pgno LIMIT 1 OFFSET ?1", -1,
                       &st, NULL);
    sqlite3_bind_int(st, 1, (int)(k % (unsigned)n));
    int ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        *art = sqlite3_value_dup(sqlite3_column_value(st, 0));
        *pgno = sqlite3_value_dup(sqlite3_column_value(st, 1));
    }
    sqlite3_finalize(st);
    return ok;
}

static int64_t page_key(sqlite3 *db, unsigned k)
{
    int n = nrows(db, "SELECT count(*) FROM page");
    if (n == 0)
        return 0;
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT id FROM page ORDER BY id LIMIT 1 OFFSET ?1", -1, &st, NULL);
    sqlite3_bind_int(st, 1, (int)(k % (unsigned)n));
    int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return id;
}

static int64_t column_of(sqlite3 *db, const char *sql, sqlite3_value *a, sqlite3_value *b)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_bind_value(st, 1, a);
    if (b)
        sqlite3_bind_value(st, 2, b);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void exec_bound(sqlite3 *db, const char *sql, sqlite3_value *k1, sqlite3_value *k2, int64_t v,
                       int vtype)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_value(st, 1, k1);
    if (k2)
        sqlite3_bind_value(st, 2, k2);
    switch (vtype) {
    case 0: sqlite3_bind_int64(st, 3, v); break;
    case 1: sqlite3_bind_double(st, 3, (double)v + 0.5); break;
    case 2: {
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)v);
        sqlite3_bind_text(st, 3, t, -1, SQLITE_TRANSIENT);
        break;
    }
    default: sqlite3_bind_blob(st, 3, &v, sizeof v, SQLITE_TRANSIENT); break;
    }
    sqlite3_step(st);          /* constraint failures are fine: nothing changes */
    sqlite3_finalize(st);
}

static const char *const run_cols[] = {"pmap_id", "pgno", "npages", "page_id"};
/* Columns of a page row, then of its block row (table:column). */
static const char *const page_cols[] = {"page:id", "page:rlen", "block:id", "block:chunk_id", "block:off",
                                        "block:len", "block:n", "block:slot0"};

/* Applies the input's operations; returns 1 if a chunk file was damaged. */
static int damage(fuzz_in *in, sqlite3 *db)
{
    int chunk_damaged = 0, ignore_checks = 0;
    char sql[256];
    for (int op = 0; op < 8 && fuzz_left(in) > 0; op++) {
        unsigned code = (unsigned)fuzz_take(in, 1), k = (unsigned)fuzz_take(in, 1);
        sqlite3_value *a = NULL, *b = NULL;
        if (getenv("FUZZ_VERBOSE"))
            fprintf(stderr, "op %u (code %u, k %u)\n", code % 8, code, k);
        switch (code % 8) {
        case 0: case 6: {
            if (!run_key(db, k, &a, &b))
                break;
            const char *col = run_cols[(code >> 3) % 4];
            snprintf(sql, sizeof sql, "SELECT %s FROM pmap_run WHERE pmap_id = ?1 AND pgno = ?2", col);
            int64_t old = column_of(db, sql, a, b);
            snprintf(sql, sizeof sql, "UPDATE pmap_run SET %s = ?3 WHERE pmap_id = ?1 AND pgno = ?2", col);
            exec_bound(db, sql, a, b, value(in, old), code % 8 == 6 ? 1 + (int)((code >> 5) % 3) : 0);
            break;
        }
        case 1:
            if (run_key(db, k, &a, &b))
                exec_bound(db, "DELETE FROM pmap_run WHERE pmap_id = ?1 AND pgno = ?2 AND ?3 = 0", a, b, 0, 0);
            break;
        case 2: {
            if (!run_key(db, k, &a, &b))
                break;
            int64_t art = sqlite3_value_int64(a), pg = value(in, sqlite3_value_int64(b));
            int64_t np = value(in, 1), pid = value(in, orig[(k >> 2) % norig].id);
            sqlite3_stmt *st;
            sqlite3_prepare_v2(db, "INSERT INTO pmap_run(pmap_id, pgno, npages, page_id) VALUES (?1, ?2, ?3, ?4)",
                               -1, &st, NULL);
            sqlite3_bind_int64(st, 1, art);
            sqlite3_bind_int64(st, 2, pg);
            sqlite3_bind_int64(st, 3, np);
            sqlite3_bind_int64(st, 4, pid);
            if (getenv("FUZZ_VERBOSE"))
                fprintf(stderr, "insert run (%lld, %lld, %lld, %lld)\n", (long long)art, (long long)pg, (long long)np, (long long)pid);
            sqlite3_step(st);
            sqlite3_finalize(st);
            break;
        }
        case 3: {
            int64_t id = page_key(db, k);
            if (!id)
                break;
            sqlite3_stmt *st;
            unsigned c = (code >> 3) % 9;
            if (c == 8) {                                   /* flip a bit of the hash */
                uint8_t h[16] = {0};
                sqlite3_prepare_v2(db, "SELECT hash FROM page WHERE id = ?1", -1, &st, NULL);
                sqlite3_bind_int64(st, 1, id);
                if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16)
                    memcpy(h, sqlite3_column_blob(st, 0), 16);
                sqlite3_finalize(st);
                h[(code >> 6) % 16] ^= (uint8_t)(1u << (k % 8));
                sqlite3_prepare_v2(db, "UPDATE page SET hash = ?2 WHERE id = ?1", -1, &st, NULL);
                sqlite3_bind_int64(st, 1, id);
                sqlite3_bind_blob(st, 2, h, 16, SQLITE_TRANSIENT);
            } else {
                const char *col = strchr(page_cols[c], ':') + 1;
                int blk = page_cols[c][0] == 'b';
                /* a block column: of the block row holding page id */
                const char *where = blk ? "WHERE id = (SELECT block_id FROM page_place WHERE id = ?1)" : "WHERE id = ?1";
                snprintf(sql, sizeof sql, "SELECT %s FROM %s %s", col, blk ? "block" : "page", where);
                sqlite3_prepare_v2(db, sql, -1, &st, NULL);
                sqlite3_bind_int64(st, 1, id);
                int64_t old = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
                sqlite3_finalize(st);
                snprintf(sql, sizeof sql, "UPDATE %s SET %s = ?2 %s", blk ? "block" : "page", col, where);
                sqlite3_prepare_v2(db, sql, -1, &st, NULL);
                sqlite3_bind_int64(st, 1, id);
                sqlite3_bind_int64(st, 2, value(in, old));
            }
            sqlite3_step(st);
            sqlite3_finalize(st);
            break;
        }
        case 4: {
            int64_t id = page_key(db, k);
            sqlite3_stmt *st;
            sqlite3_prepare_v2(db, "DELETE FROM page WHERE id = ?1", -1, &st, NULL);
            sqlite3_bind_int64(st, 1, id);
            sqlite3_step(st);
            sqlite3_finalize(st);
            break;
        }
        case 5: {
            char p[700];
            snprintf(p, sizeof p, "%s/chunks/00000001.chunk", work);
            int fd = open(p, O_RDWR);
            FUZZ_ASSERT(fd >= 0, "open chunk");
            uint64_t off = 64 + fuzz_take(in, 3) % (uint64_t)(chunk_used - 64);
            uint8_t byte;
            FUZZ_ASSERT(pread(fd, &byte, 1, (off_t)off) == 1, "read chunk");
            byte ^= (uint8_t)(1 + k % 255);
            FUZZ_ASSERT(pwrite(fd, &byte, 1, (off_t)off) == 1, "write chunk");
            close(fd);
            chunk_damaged = 1;
            break;
        }
        default:
            ignore_checks = !ignore_checks;
            sqlite3_exec(db, ignore_checks ? "PRAGMA ignore_check_constraints = 1"
                                           : "PRAGMA ignore_check_constraints = 0", NULL, NULL, NULL);
            break;
        }
        sqlite3_value_free(a);
        sqlite3_value_free(b);
    }
    return chunk_damaged;
}

/* ---- the reference ---- */

typedef unsigned __int128 u128;

/* The template's row for page id's hash if the page can be read as that
** page (same hash and length), else NULL. *moved is set when its location
** (chunk_id, off, len, slot) changed: restore may then fail, or succeed
** through a block it already decoded -- with the right bytes. */
static const struct prow *intact_page(sqlite3 *db, int64_t id, int *moved)
{
    sqlite3_stmt *st;
    const struct prow *w = NULL;
    sqlite3_prepare_v2(db, "SELECT typeof(chunk_id) = 'integer' AND typeof(off) = 'integer' AND "
                       "typeof(len) = 'integer' AND typeof(slot) = 'integer' AND "
                       "typeof(rlen) = 'integer' AND typeof(block_n) = 'integer', chunk_id, off, len, slot, "
                       "rlen, hash, block_id, block_n FROM page_place WHERE id = ?1", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) && sqlite3_column_bytes(st, 6) == 16) {
        for (size_t i = 0; i < norig && !w; i++)
            if (memcmp(orig[i].hash, sqlite3_column_blob(st, 6), 16) == 0)
                w = &orig[i];
        if (w && w->rlen != sqlite3_column_int64(st, 5))
            w = NULL;
        if (w && (w->chunk_id != sqlite3_column_int64(st, 1) || w->off != sqlite3_column_int64(st, 2) ||
                  w->len != sqlite3_column_int64(st, 3) || w->slot != sqlite3_column_int64(st, 4) ||
                  w->block_id != sqlite3_column_int64(st, 7) || w->block_n != sqlite3_column_int64(st, 8)))
            *moved = 1;
    }
    sqlite3_finalize(st);
    return w;
}

/* Fills want[] with the files snapshot k should restore to. Returns 1 if
** it must restore exactly, 2 if it may fail but must restore exactly if
** it does not (a page row's location changed), 0 if it must fail. Sets *known for damage that restore does
** not detect yet (a run column that is not an integer, or npages < 1:
** see tests/fuzz/known/README). */
static int reference(sqlite3 *db, int k, struct efile *want, size_t *nwant, int *known)
{
    sqlite3_stmt *arts, *node, *runs;
    int ok = 1, moved = 0;
    static int64_t eff[24];
    *nwant = 0;
    sqlite3_prepare_v2(db, "SELECT a.pmap_id, a.name, a.size FROM artifact a JOIN snapshot s ON s.id = a.snapshot_id "
                       "WHERE s.tag = ?1 ORDER BY a.name", -1, &arts, NULL);
    sqlite3_prepare_v2(db, "SELECT coalesce(base_id, 0), pages FROM pmap WHERE id = ?1", -1, &node, NULL);
    sqlite3_prepare_v2(db, "SELECT typeof(pgno) || typeof(npages) || typeof(page_id), pgno, npages, page_id "
                       "FROM pmap_run WHERE pmap_id = ?1 ORDER BY pgno", -1, &runs, NULL);
    sqlite3_bind_text(arts, 1, tags[k], -1, SQLITE_STATIC);
    while (ok && sqlite3_step(arts) == SQLITE_ROW) {
        FUZZ_ASSERT(*nwant < MAXART, "too many artifacts");
        struct efile *e = &want[(*nwant)++];
        snprintf(e->name, sizeof e->name, "%s", (const char *)sqlite3_column_text(arts, 1));
        e->size = (size_t)sqlite3_column_int64(arts, 2);
        FUZZ_ASSERT(e->size <= 24 * PG, "artifact size %zu (sizes are not damaged)", e->size);
        memset(e->data, 0, e->size);
        uint64_t npg = (e->size + PG - 1) / PG;
        for (uint64_t i = 0; i < npg; i++)
            eff[i] = -1;                          /* not decided by a nearer node */
        int64_t id = sqlite3_column_int64(arts, 0), pages = -1;
        for (int level = 0; ok && id; level++) {  /* nearest node first (nodes are not damaged) */
            sqlite3_bind_int64(node, 1, id);
            FUZZ_ASSERT(sqlite3_step(node) == SQLITE_ROW, "page map node %lld missing", (long long)id);
            int64_t base = sqlite3_column_int64(node, 0);
            if (level == 0)
                pages = sqlite3_column_int64(node, 1);
            sqlite3_reset(node);
            u128 next = 0;
            sqlite3_bind_int64(runs, 1, id);
            while (ok && sqlite3_step(runs) == SQLITE_ROW) {
                int64_t pgno = sqlite3_column_int64(runs, 1), np = sqlite3_column_int64(runs, 2),
                        pid = sqlite3_column_int64(runs, 3);
                if (strcmp((const char *)sqlite3_column_text(runs, 0), "integerintegerinteger") != 0 || np < 1) {
                    *known = 1;
                    ok = 0;
                    break;
                }
                if (pgno < 0 || (u128)pgno < next || (u128)pgno + (u128)np > npg || pid < (base ? 0 : 1) ||
                    (u128)pid + (u128)np > ((u128)1 << 62)) {
                    ok = 0;
                    break;
                }
                next = (u128)pgno + (u128)np;
                for (int64_t i = 0; i < np; i++)
                    if (eff[pgno + i] < 0)
                        eff[pgno + i] = pid ? pid + i : 0;
            }
            sqlite3_reset(runs);
            id = base;
        }
        int64_t have = 0;
        for (uint64_t pg = 0; ok && pg < npg; pg++) {
            if (eff[pg] <= 0)
                continue;
            have++;
            const struct prow *w = intact_page(db, eff[pg], &moved);
            size_t len = pg == npg - 1 ? e->size - pg * PG : PG;
            if (!w || (size_t)w->rlen != len)
                ok = 0;
            else
                memcpy(e->data + pg * PG, w->content, len);
        }
        if (have != pages)                      /* the row's count is checked */
            ok = 0;
    }
    sqlite3_finalize(arts);
    sqlite3_finalize(node);
    sqlite3_finalize(runs);
    return ok && *nwant > 0 ? 1 + moved : 0;
}

/* ---- checks ---- */

static size_t dir_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void check_output(const char *out, const struct efile *want, size_t nwant)
{
    FUZZ_ASSERT(dir_entries(out) == nwant, "%s holds %zu files, expected %zu", out, dir_entries(out), nwant);
    for (size_t i = 0; i < nwant; i++) {
        char p[800];
        snprintf(p, sizeof p, "%s/%s", out, fks_artifact_filename(want[i].name));
        int fd = open(p, O_RDONLY);
        FUZZ_ASSERT(fd >= 0, "%s missing", p);
        struct stat st;
        FUZZ_ASSERT(fstat(fd, &st) == 0 && (size_t)st.st_size == want[i].size, "%s: size %lld, expected %zu", p,
                    (long long)st.st_size, want[i].size);
        uint8_t *got = malloc(want[i].size + 1);
        FUZZ_ASSERT(got && pread(fd, got, want[i].size, 0) == (ssize_t)want[i].size, "read %s", p);
        FUZZ_ASSERT(memcmp(got, want[i].data, want[i].size) == 0, "%s: restore wrote wrong bytes", p);
        free(got);
        close(fd);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size, 0};
    char p[700];
    copy_template();
    sqlite3 *db;
    snprintf(p, sizeof p, "%s/catalog.db", work);
    FUZZ_ASSERT(sqlite3_open(p, &db) == SQLITE_OK, "open");
    int chunk_damaged = damage(&in, db);
    int ok[NSNAP], known[NSNAP] = {0}, strict = 1;
    size_t nwant[NSNAP];
    static struct efile wants[NSNAP][MAXART];
    for (int k = 0; k < NSNAP; k++) {
        for (int i = 0; i < MAXART; i++)
            if (!wants[k][i].data)
                FUZZ_ASSERT((wants[k][i].data = malloc(24 * PG)) != NULL, "out of memory");
        ok[k] = reference(db, k, wants[k], &nwant[k], &known[k]);
    }
    /* Huge run values once made verify run out of memory (fixed). */
    int huge = nrows(db, "SELECT count(*) FROM pmap_run WHERE npages NOT BETWEEN -1048576 AND 1048576 "
                         "OR pgno NOT BETWEEN -1099511627776 AND 1099511627776 "
                         "OR page_id NOT BETWEEN -1099511627776 AND 1099511627776") > 0;
    sqlite3_close(db);

    fks_store *s;
    int rc = fks_open(&s, work, FKS_OPEN_READONLY);
    FUZZ_ASSERT(rc == 0, "open damaged store: %s", fks_errmsg());
    int failed = 0;
    for (int k = 0; k < NSNAP; k++) {
        char out[700];
        snprintf(out, sizeof out, "%s/out-%s", dir, tags[k]);
        fuzz_rmtree(out);
        rc = fks_restore(NULL, s, tags[k], out, 0, NULL, NULL);
        if (getenv("FUZZ_VERBOSE"))
            fprintf(stderr, "restore %s: reference %d, rc %d %s\n", tags[k], ok[k], rc,
                    rc ? fks_errmsg() : "");
        if (rc == 0) {
            FUZZ_ASSERT(ok[k] || (known[k] && !strict), "snapshot %s restored although its map or pages are "
                        "damaged", tags[k]);
            if (ok[k])
                check_output(out, wants[k], nwant[k]);
        } else {
            FUZZ_ASSERT(fks_errmsg()[0], "restore failed without a message");
            FUZZ_ASSERT(dir_entries(out) == 0, "failed restore of %s left %zu files", tags[k], dir_entries(out));
            FUZZ_ASSERT(ok[k] != 1 || chunk_damaged, "snapshot %s is intact but restore failed: %s", tags[k],
                        fks_errmsg());
            failed = 1;
        }
        fuzz_rmtree(out);
    }
    if (huge && !strict) {
        fks_close(s);
        return 0;
    }
    fks_verify_report *r = NULL;
    rc = fks_verify(&r, s, 100, NULL, NULL);
    FUZZ_ASSERT(rc == 0, "verify failed: %s", fks_errmsg());
    if (failed && strict)
        FUZZ_ASSERT(r->n_problems > 0, "a restore failed but verify found nothing");
    fks_verify_free(r);
    /* stats and diff read the same rows: any answer or an error with a
    ** message, never a crash; a snapshot whose maps are intact differs
    ** from itself nowhere. */
    for (int k = 0; k < NSNAP; k++) {
        fks_snap_stats *st = NULL;
        rc = fks_snap_stats_get(&st, s, tags[k]);
        FUZZ_ASSERT(rc == 0 || fks_errmsg()[0], "stats of %s failed without a message", tags[k]);
        fks_snap_stats_free(st);
        fks_diff_report *d = NULL;
        rc = fks_diff(&d, s, tags[k], tags[k]);
        FUZZ_ASSERT(rc == 0 || fks_errmsg()[0], "diff of %s failed without a message", tags[k]);
        FUZZ_ASSERT(rc != 0 || d->pages == 0, "%s differs from itself in %llu pages", tags[k],
                    (unsigned long long)d->pages);
        FUZZ_ASSERT(rc == 0 || ok[k] != 1, "diff of intact %s failed: %s", tags[k], fks_errmsg());
        fks_diff_free(d);
        d = NULL;
        rc = fks_diff(&d, s, tags[0], tags[k]);
        FUZZ_ASSERT(rc == 0 || fks_errmsg()[0], "diff %s %s failed without a message", tags[0], tags[k]);
        fks_diff_free(d);
    }
    fks_close(s);
    return 0;
}
