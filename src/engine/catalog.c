/*
** catalog.c: the SQLite catalog.
**
** Design
**  1. One database, DIR/catalog.db, in WAL mode with foreign keys on and
**     synchronous=FULL: a commit that returns is durable, so a snapshot
**     acknowledged to the user survives power loss.
**  2. Schema changes are migrations/NNNN_name.sql, compiled into the
**     library (tools/embed_sql). PRAGMA user_version holds the number of
**     the last one applied; each is applied in its own transaction under
**     the writer lock. A catalog with a user_version above ours is refused.
**  3. All writes and all checkpoints are serialized across processes by
**     one store-wide lock, flock(DIR/lock). SQLite before 3.51.3 has a
**     WAL-reset race when two connections write or checkpoint at the same
**     moment; holding our own lock around every write transaction and
**     checkpoint rules it out. Connections never checkpoint on their own:
**     wal_autocheckpoint=0 and SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE.
**     cat_end() checkpoints (PASSIVE) while it still holds the lock once
**     the WAL holds 4096 frames (16 MiB), counted by sqlite3_wal_hook: the
**     WAL file's size does not shrink after a checkpoint, so it cannot
**     tell. gc truncates the WAL after bulk work.
**  4. Readers need no lock: WAL gives each read transaction a consistent
**     snapshot while one writer commits.
*/
#include "catalog.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store.h"
#include "util.h"

#define WAL_CHECKPOINT_FRAMES 4096   /* 16 MiB of 4 KiB pages */

int cat_err(sqlite3 *db, int sqlrc, const char *what)
{
    int code = FKS_ERR;
    switch (sqlrc & 0xff) {
    case SQLITE_FULL: code = FKS_ENOSPC; break;
    case SQLITE_CORRUPT: case SQLITE_NOTADB: code = FKS_ECORRUPT; break;
    case SQLITE_BUSY: case SQLITE_LOCKED: code = FKS_ELOCKED; break;
    case SQLITE_IOERR: code = FKS_EIO; break;
    case SQLITE_NOMEM: code = FKS_ENOMEM; break;
    case SQLITE_READONLY: code = FKS_EINVAL; break;
    case SQLITE_CANTOPEN: code = FKS_EIO; break;
    }
    if ((sqlrc & 0xff) == SQLITE_IOERR && db && sqlite3_system_errno(db) == ENOSPC)
        code = FKS_ENOSPC;
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlrc);
    if (code == FKS_ENOSPC)     /* SQLite says "database or disk is full": say which */
        return fks__err(code, "%s: disk full (%s)", what, msg);
    return fks__err(code, "%s: %s", what, msg);
}

int cat_exec(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return cat_err(db, rc, "catalog");
    return 0;
}

int cat_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return cat_err(db, rc, "catalog: prepare");
    return 0;
}

int cat_meta_get(sqlite3 *db, const char *key, int64_t *val)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "SELECT value FROM meta WHERE key = ?1");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *val = sqlite3_column_int64(st, 0);
    else if (s != SQLITE_DONE)
        rc = cat_err(db, s, "catalog: read meta");
    sqlite3_finalize(st);
    return rc;
}

int cat_not_found(const char *tag)
{
    return fks__err(FKS_ENOTFOUND, "snapshot %s not found", tag);
}

int cat_snapshot(int64_t *id, int64_t *parent_id, sqlite3 *db, const char *tag, int must_exist)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "SELECT id, coalesce(parent_id, 0) FROM snapshot WHERE tag = ?1");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    *id = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (parent_id)
        *parent_id = s == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        rc = cat_err(db, s, "catalog: find snapshot");
    else if (!*id && must_exist)
        rc = cat_not_found(tag);
    sqlite3_finalize(st);
    return rc;
}

int cat_done(sqlite3 *db, int steprc, const char *what)
{
    return steprc == SQLITE_DONE ? 0 : cat_err(db, steprc, what);
}

int cat_read_begin(sqlite3 *db)
{
    return cat_exec(db, "BEGIN");
}

int cat_read_end(sqlite3 *db)
{
    return sqlite3_get_autocommit(db) ? 0 : cat_exec(db, "COMMIT");
}

int cat_read_finish(sqlite3 *db, int rc)
{
    if (sqlite3_get_autocommit(db))
        return rc;
    int rc2 = cat_exec(db, "COMMIT");
    if (rc2)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc ? rc : rc2;
}

static int col_int(sqlite3_stmt *st, int c)
{
    return sqlite3_column_type(st, c) == SQLITE_INTEGER;
}

/* A page row (id, rlen, hash) with its block row (id, chunk_id, off, len,
** n, slot0): the block row with the largest id <= the page's. */
#define PAGE_COLS "p.id, coalesce(p.rlen, 4096), p.hash"
#define BLOCK_COLS "id, chunk_id, off, len, n, slot0"
#define PAGE_SQL                                                                                       \
    "SELECT " PAGE_COLS ", b.id, b.chunk_id, b.off, b.len, b.n, b.slot0 FROM page p "                 \
    "JOIN block b ON b.id = (SELECT max(x.id) FROM block x WHERE x.id <= p.id) "

struct blockrow {
    int64_t id, chunk, off, len, n, slot0;
    int typed;
};

static void block_from(struct blockrow *b, sqlite3_stmt *st, int c0)
{
    int64_t *v[] = {&b->id, &b->chunk, &b->off, &b->len, &b->n, &b->slot0};
    b->typed = 1;
    for (int c = 0; c < 6; c++) {
        *v[c] = sqlite3_column_int64(st, c0 + c);
        b->typed &= col_int(st, c0 + c);
    }
}

/* The one validator of a page's location: page columns 0-2 of st, in
** block row b (NULL: none holds it). */
static int page_make(struct cat_page *out, sqlite3_stmt *st, const struct blockrow *b)
{
    int64_t id = sqlite3_column_int64(st, 0), rlen = sqlite3_column_int64(st, 1);
    if (!b || !b->typed || !col_int(st, 0) || !col_int(st, 1) || sqlite3_column_type(st, 2) != SQLITE_BLOB ||
        sqlite3_column_bytes(st, 2) != 16 || id <= 0 || rlen <= 0 || rlen > 4096 || b->chunk <= 0 || b->off < 0 ||
        b->len <= 0 || b->len > UINT32_MAX || b->n <= 0 || b->n > 8 || b->slot0 < 0 || b->slot0 + b->n > 8 ||
        b->id > id || id - b->id >= b->n)
        return fks__err(FKS_ECORRUPT, "page index: the row of page %lld or of its block is damaged", (long long)id);
    *out = (struct cat_page){id, b->chunk, (uint64_t)b->off, (uint32_t)b->len, (uint32_t)(b->slot0 + id - b->id),
                             (uint32_t)rlen, {0}};
    memcpy(out->hash, sqlite3_column_blob(st, 2), 16);
    return 0;
}

int cat_page_get(struct cat_page *out, sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, PAGE_SQL "WHERE p.id = ?1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        struct blockrow b;
        block_from(&b, st, 3);
        rc = page_make(out, st, &b);
    } else if (s == SQLITE_DONE) {
        rc = fks__err(FKS_ENOTFOUND, "page %lld is missing from the page index", (long long)id);
    } else {
        rc = cat_err(db, s, "catalog: read page index");
    }
    sqlite3_finalize(st);
    return rc;
}

int cat_pages_open(cat_pages *r, sqlite3 *db)
{
    r->db = db;
    r->bst = NULL;
    int rc = cat_prepare(db, &r->st, "SELECT " PAGE_COLS " FROM page p WHERE p.id BETWEEN ?1 AND ?2 ORDER BY p.id");
    if (rc == 0 && (rc = cat_prepare(db, &r->bst, "SELECT " BLOCK_COLS " FROM block WHERE id >= "
                                     "coalesce((SELECT max(id) FROM block WHERE id <= ?1), ?1) AND id <= ?2 "
                                     "ORDER BY id")) != 0)
        cat_pages_close(r);
    return rc;
}

void cat_pages_close(cat_pages *r)
{
    sqlite3_finalize(r->st);
    sqlite3_finalize(r->bst);
    r->st = r->bst = NULL;
}

/* Pages and block rows in id order, side by side: each page in the last
** block row at or before it (no per-page seek). */
int cat_pages_scan(cat_pages *r, int64_t first, int64_t last, int (*want)(void *arg, int64_t id),
                   int (*fn)(void *arg, const struct cat_page *p), void *arg)
{
    sqlite3_bind_int64(r->st, 1, first);
    sqlite3_bind_int64(r->st, 2, last);
    sqlite3_bind_int64(r->bst, 1, first);
    sqlite3_bind_int64(r->bst, 2, last);
    int rc = 0, s = SQLITE_DONE, bs = sqlite3_step(r->bst);
    struct cat_page p = {0};
    struct blockrow cur = {0}, nxt = {0};
    int have_cur = 0;
    if (bs == SQLITE_ROW)
        block_from(&nxt, r->bst, 0);
    while (rc == 0 && (s = sqlite3_step(r->st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(r->st, 0);
        while (bs == SQLITE_ROW && nxt.id <= id) {
            cur = nxt;
            have_cur = 1;
            if ((bs = sqlite3_step(r->bst)) == SQLITE_ROW)
                block_from(&nxt, r->bst, 0);
        }
        if (bs != SQLITE_ROW && bs != SQLITE_DONE) {
            rc = cat_err(r->db, bs, "catalog: read block rows");
            break;
        }
        if (want && !want(arg, id))
            continue;
        if ((rc = page_make(&p, r->st, have_cur ? &cur : NULL)) != 0)
            break;
        rc = fn(arg, &p);
    }
    sqlite3_reset(r->st);
    sqlite3_reset(r->bst);
    if (rc == 0 && s != SQLITE_DONE)
        rc = cat_err(r->db, s, "catalog: read page index");
    return rc;
}

/* cat_pages_range over cat_pages_scan: every id of the range, in order. */
struct range_check {
    int64_t next;
    int (*fn)(void *arg, const struct cat_page *p);
    void *arg;
};

static int range_one(void *arg, const struct cat_page *p)
{
    struct range_check *c = arg;
    if (p->id != c->next)
        return fks__err(FKS_ECORRUPT, "page %lld is missing from the page index", (long long)c->next);
    c->next++;
    return c->fn(c->arg, p);
}

int cat_pages_range(cat_pages *r, int64_t first, uint64_t n, int (*fn)(void *arg, const struct cat_page *p),
                    void *arg)
{
    struct range_check c = {first, fn, arg};
    int rc = cat_pages_scan(r, first, first + (int64_t)n - 1, NULL, range_one, &c);
    if (rc == 0 && c.next != first + (int64_t)n)
        rc = fks__err(FKS_ECORRUPT, "page %lld is missing from the page index", (long long)c.next);
    return rc;
}

int cat_artifact_get(int64_t *art, uint64_t *size, sqlite3 *db, int64_t snap, const char *name)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "SELECT id, size FROM artifact WHERE snapshot_id = ?1 AND name = ?2");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, snap);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && col_int(st, 0) && col_int(st, 1) && sqlite3_column_int64(st, 1) >= 0) {
        *art = sqlite3_column_int64(st, 0);
        *size = (uint64_t)sqlite3_column_int64(st, 1);
    } else if (s == SQLITE_ROW) {
        rc = fks__err(FKS_ECORRUPT, "catalog: the artifact row of %s is damaged", name);
    } else if (s == SQLITE_DONE) {
        rc = fks__err(FKS_ENOTFOUND, "the snapshot has no artifact %s", name);
    } else {
        rc = cat_err(db, s, "catalog: read artifact");
    }
    sqlite3_finalize(st);
    return rc;
}

int cat_meta_set(sqlite3 *db, const char *key, int64_t val)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, val);
    int s = sqlite3_step(st);
    if (s != SQLITE_DONE)
        rc = cat_err(db, s, "catalog: write meta");
    sqlite3_finalize(st);
    return rc;
}

/* A reader on a read-only file system (a read-only bind mount of a store)
** cannot make the -shm file that WAL mode needs. When the WAL is empty
** or absent (no writer since the last checkpoint, or none on this file
** system at all) the database file is the whole catalog, and SQLite may
** open it immutable. */
static int ro_fs_without_wal(const char *path)
{
    char wal[PATH_MAX];
    struct statvfs vf;
    struct stat st;
    if (statvfs(path, &vf) != 0 || !(vf.f_flag & ST_RDONLY))
        return 0;
    if (fks__path(wal, sizeof wal, "%s-wal", path) != 0)
        return 0;
    return stat(wal, &st) != 0 ? errno == ENOENT : st.st_size == 0;
}

/* open_conn returns 1 (message set) when SQLite cannot open a file. */

/* "file:" URI for path with immutable=1 (RFC 3986 escaping). */
static int immutable_uri(char *buf, size_t len, const char *path)
{
    size_t o = 0;
    if (len < 6)
        return fks__err(FKS_EINVAL, "path too long");
    memcpy(buf, "file:", 5);
    o = 5;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (o + 4 >= len)
            return fks__err(FKS_EINVAL, "path too long: %s", path);
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("/-._~", *c))
            buf[o++] = (char)*c;
        else
            o += (size_t)snprintf(buf + o, len - o, "%%%02X", *c);
    }
    return fks__path(buf + o, len - o, "?immutable=1");
}

static int open_conn(sqlite3 **out, const char *path, int readonly, int immutable)
{
    sqlite3 *db = NULL;
    char uri[PATH_MAX * 3 + 32];
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
    int rc;
    *out = NULL;
    if (immutable) {
        if ((rc = immutable_uri(uri, sizeof uri, path)) != 0)
            return rc;
        flags |= SQLITE_OPEN_URI;
    }
    rc = sqlite3_open_v2(immutable ? uri : path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        int code = cat_err(db, rc, path);
        sqlite3_close(db);
        return (rc & 0xff) == SQLITE_CANTOPEN ? 1 : code;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
    sqlite3_busy_timeout(db, 30000);
    /* A file that is not SQLite fails on the first read: do it here so the
    ** message names the catalog. mmap covers catalogs up to 2 GB (SQLite's
    ** limit): page index lookups at 20 M pages read pages all over an
    ** 800 MB file, and each one past the map cost a pread and a copy. */
    rc = sqlite3_exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                          "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -16384;"
                          "PRAGMA mmap_size = 2147418112;"
                          "SELECT count(*) FROM sqlite_master;",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK && readonly)
        rc = sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int code = cat_err(db, rc, path);
        if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
            code = fks__err(FKS_ECORRUPT, "%s is not a forkstore catalog (not an SQLite database, "
                            "or damaged): %s", path, sqlite3_errmsg(db));
        else if ((rc & 0xff) == SQLITE_CANTOPEN)
            code = 1;   /* the message stays; cat_open may retry */
        sqlite3_close(db);
        return code;
    }
    *out = db;
    return 0;
}

int cat_open(sqlite3 **out, const char *path, int readonly)
{
    int rc = open_conn(out, path, readonly, 0);
    if (rc == 1 && readonly && ro_fs_without_wal(path))
        rc = open_conn(out, path, readonly, 1);
    return rc == 1 ? FKS_EIO : rc;
}

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, "PRAGMA user_version");
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    else
        rc = cat_err(db, sqlite3_errcode(db), "catalog: read user_version");
    sqlite3_finalize(st);
    return rc;
}

int cat_create_schema(sqlite3 *db)
{
    int rc = cat_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE;");
    for (int i = 0; i < fks_n_migrations && rc == 0; i++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", fks_migrations[i].version);
        if ((rc = cat_exec(db, "BEGIN")) == 0 && (rc = cat_exec(db, fks_migrations[i].sql)) == 0 &&
            (rc = cat_exec(db, pragma)) == 0)
            rc = cat_exec(db, "COMMIT");
    }
    return rc;
}

int cat_migrate(struct fks_store *s)
{
    int v = 0, rc = user_version(s->db, &v);
    if (rc)
        return rc;
    /* fks_init renames a catalog into place only once it holds the whole
    ** schema: version 0 is an empty or foreign database, never a store to
    ** build (over chunk files that hold the data). */
    if (v <= 0)
        return fks__err(FKS_ECORRUPT, "catalog %s/catalog.db holds no forkstore schema (schema version %d) "
                        "beside %d chunk files: it is damaged or not ours; refusing to use or overwrite it",
                        s->dir, v, store_count_chunk_files(s));
    if (v > fks_n_migrations)
        return fks__err(FKS_ENEWER, "catalog %s/catalog.db has schema version %d, newer than this "
                        "forkstore %s understands (%d): upgrade forkstore to open it",
                        s->dir, v, FKS_VERSION_STRING, fks_n_migrations);
    if (v == fks_n_migrations)
        return 0;
    if (s->readonly)
        return fks__err(FKS_EINVAL, "catalog %s/catalog.db has schema version %d and needs "
                        "migrating to %d: the store must be opened read-write once to migrate it",
                        s->dir, v, fks_n_migrations);
    for (int i = v; i < fks_n_migrations; i++) {
        const struct fks_migration *m = &fks_migrations[i];
        if ((rc = cat_begin(s)) != 0)
            return rc;
        /* Re-read under the lock: another process may have migrated. */
        int now = 0;
        rc = user_version(s->db, &now);
        if (rc == 0 && now == m->version - 1) {
            char pragma[64];
            rc = cat_exec(s->db, m->sql);
            if (rc == 0) {
                snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
                rc = cat_exec(s->db, pragma);
            }
            /* The catalog says version v but does not look like it (a
            ** partial or hand-edited catalog): damage, said once, not
            ** advice to run a write command that will fail again. */
            if (rc)
                rc = fks__errctx(FKS_ECORRUPT, "catalog %s/catalog.db says schema version %d, but migration "
                                 "%04d_%s does not apply to it: the catalog is damaged or was changed by hand",
                                 s->dir, now, m->version, m->name);
        }
        if ((rc = cat_end(s, rc)) != 0)
            return rc;
    }
    return 0;
}

int cat_begin(struct fks_store *s)
{
    if (s->lock_depth != 0)
        return fks__err(FKS_ERR, "internal error: nested write transaction");
    int rc = store_lock(s);
    if (rc)
        return rc;
    s->lock_depth = 1;
    int src = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = cat_err(s->db, src, "catalog: begin write transaction");
        s->lock_depth = 0;
        store_unlock(s);
        return rc;
    }
    return 0;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int nframes)
{
    (void)db;
    (void)name;
    *(int *)arg = nframes;
    return SQLITE_OK;
}

void cat_watch_wal(struct fks_store *s)
{
    sqlite3_wal_hook(s->db, wal_hook, &s->wal_frames);
}

/* PASSIVE copies what it can without waiting. When that backfilled the
** whole WAL, a TRUNCATE is tried without waiting for readers: it empties
** the WAL file, so the next commits append from its start instead of
** growing it (and re-checkpointing it) for as long as any reader lingers.
** With truncate set (gc, after bulk work) the TRUNCATE may wait for
** readers up to the busy timeout. */
static int checkpoint_locked(struct fks_store *s, int truncate)
{
    int log = 0, done = 0;
    int src = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (src != SQLITE_OK && (src & 0xff) != SQLITE_BUSY)
        return cat_err(s->db, src, "catalog: checkpoint");
    if (src == SQLITE_OK && (truncate || log == done)) {
        if (!truncate)
            sqlite3_busy_timeout(s->db, 0);
        src = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        if (!truncate)
            sqlite3_busy_timeout(s->db, 30000);
        if (src != SQLITE_OK && (src & 0xff) != SQLITE_BUSY)
            return cat_err(s->db, src, "catalog: checkpoint");
    }
    return 0;
}

int cat_end(struct fks_store *s, int rc)
{
    if (rc == 0) {
        int src = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (src != SQLITE_OK)
            rc = cat_err(s->db, src, "catalog: commit");
    }
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == 0 && s->wal_frames > WAL_CHECKPOINT_FRAMES) {
        rc = checkpoint_locked(s, 0);
        s->wal_frames = 0;
    }
    s->lock_depth = 0;
    store_unlock(s);
    return rc;
}

int cat_checkpoint(struct fks_store *s, int truncate)
{
    int rc = store_lock(s);
    if (rc)
        return rc;
    rc = checkpoint_locked(s, truncate);
    store_unlock(s);
    return rc;
}
