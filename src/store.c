/*
** store.c: the store directory: creating, opening and locking it.
**
** Layout of a store directory DIR (mode 0700; files 0600):
**
**   DIR/catalog.db       SQLite catalog (+ -wal, -shm), see catalog.c
**   DIR/chunks/          chunk files <id as %08x>.chunk, see chunk.c
**   DIR/lock             empty; flock()ed exclusively around every write
**                        transaction and checkpoint (the writer lock)
**   DIR/gc.lock          empty; flock()ed by the one running gc
**
** A store is recognised by DIR/catalog.db holding our tables. fks_open()
** refuses a directory, catalog or chunk directory that other users can
** write: anyone who can write there can make restore hand back whatever
** they like.
*/
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "chunk.h"
#include "util.h"

int fks_default_dir(char *buf, size_t buflen)
{
    const char *e = getenv("FORKSTORE_DIR");
    if (e && *e)
        return fks__path(buf, buflen, "%s", e);
    e = getenv("XDG_DATA_HOME");
    if (e && *e)
        return fks__path(buf, buflen, "%s/forkstore", e);
    e = getenv("HOME");
    if (e && *e)
        return fks__path(buf, buflen, "%s/.local/share/forkstore", e);
    return fks__err(FKS_EINVAL, "no store given: pass --store DIR or set FORKSTORE_DIR");
}

int store_chunk_path(char *buf, size_t len, const struct fks_store *s, int64_t id)
{
    return fks__path(buf, len, "%s/%08llx.chunk", s->chunkdir, (unsigned long long)id);
}

int store_lock(struct fks_store *s)
{
    double timeout = 120;
    const char *e = getenv("FORKSTORE_LOCK_TIMEOUT");
    if (e && *e) {
        char *end;
        errno = 0;
        timeout = strtod(e, &end);
        if (errno || *end || !(timeout >= 0))
            return fks__err(FKS_EINVAL, "FORKSTORE_LOCK_TIMEOUT='%.40s' is not a number of seconds", e);
    }
    double start = fks__now();
    long sleep_us = 200;
    for (;;) {
        if (flock(s->lockfd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return fks__errno(FKS_EIO, errno, "lock %s/lock", s->dir);
        if (fks__now() - start >= timeout)
            return fks__err(FKS_ELOCKED, "store %s is locked by another writer for more than %.0f s "
                            "(set FORKSTORE_LOCK_TIMEOUT to wait longer)", s->dir, timeout);
        struct timespec ts = {0, sleep_us * 1000};
        nanosleep(&ts, NULL);
        if (sleep_us < 20000)
            sleep_us *= 2;
    }
}

void store_unlock(struct fks_store *s)
{
    flock(s->lockfd, LOCK_UN);
}

static int open_lockfile(int *out, const char *dir, const char *name, int create)
{
    char p[PATH_MAX];
    int rc = fks__path(p, sizeof p, "%s/%s", dir, name);
    if (rc)
        return rc;
    int fd = open(p, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        return fks__errno(FKS_EIO, errno, "open %s", p);
    *out = fd;
    return 0;
}

/* Refuses paths writable by group or others. */
static int check_private(const char *path, const char *what)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return fks__errno(FKS_EIO, errno, "stat %s", path);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return fks__err(FKS_EPERM, "%s %s is writable by other users (mode %04o); refusing to use it: "
                        "run `chmod go-w %s`", what, path, (unsigned)(st.st_mode & 07777), path);
    if (st.st_uid != geteuid() && geteuid() != 0)
        return fks__err(FKS_EPERM, "%s %s belongs to another user (uid %u)", what, path,
                        (unsigned)st.st_uid);
    return 0;
}

int fks_init(const char *dir, uint64_t chunk_size)
{
    char p[PATH_MAX];
    sqlite3 *db = NULL;
    struct fks_store *s = NULL;
    int rc;
    mode_t old = umask(077);

    if (chunk_size == 0)
        chunk_size = FKS_DEFAULT_CHUNK_SIZE;
    if (chunk_size < (1u << 20) || chunk_size > (1ull << 32))
        return umask(old), fks__err(FKS_EINVAL, "chunk size %llu out of range (1 MiB .. 4 GiB)",
                                    (unsigned long long)chunk_size);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = fks__errno(FKS_EIO, errno, "create store directory %s", dir);
        goto out;
    }
    if ((rc = fks__path(p, sizeof p, "%s/catalog.db", dir)) != 0)
        goto out;
    if (access(p, F_OK) == 0) {
        rc = fks__err(FKS_EEXIST, "%s already holds a store (%s exists)", dir, p);
        goto out;
    }
    if ((rc = check_private(dir, "store directory")) != 0)
        goto out;
    if ((rc = fks__path(p, sizeof p, "%s/chunks", dir)) != 0)
        goto out;
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        rc = fks__errno(FKS_EIO, errno, "create %s", p);
        goto out;
    }
    int fd = -1;
    if ((rc = open_lockfile(&fd, dir, "lock", 1)) != 0)
        goto out;
    close(fd);
    if ((rc = open_lockfile(&fd, dir, "gc.lock", 1)) != 0)
        goto out;
    close(fd);

    /* Create the catalog under a temporary name and rename it into place
    ** once it holds the full schema: a crash leaves no half-made store. */
    char tmp[PATH_MAX];
    if ((rc = fks__path(tmp, sizeof tmp, "%s/catalog.db.init", dir)) != 0)
        goto out;
    unlink(tmp);
    int src = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK) {
        rc = cat_err(db, src, tmp);
        goto out;
    }
    /* auto_vacuum must be chosen before the first table exists. */
    if ((rc = cat_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA page_size = 4096;"
                           "PRAGMA journal_mode = DELETE;")) != 0)
        goto out;
    for (int i = 0; i < fks_n_migrations && rc == 0; i++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", fks_migrations[i].version);
        if ((rc = cat_exec(db, "BEGIN")) == 0 && (rc = cat_exec(db, fks_migrations[i].sql)) == 0 &&
            (rc = cat_exec(db, pragma)) == 0)
            rc = cat_exec(db, "COMMIT");
    }
    if (rc == 0)
        rc = cat_meta_set(db, "chunk_size", (int64_t)chunk_size);
    if (rc == 0)
        rc = cat_meta_set(db, "gc_generation", 0);
    if (rc == 0)
        rc = cat_meta_set(db, "created_ms", fks__wall_ms());
    if (rc == 0)
        rc = cat_exec(db, "PRAGMA journal_mode = WAL");
    sqlite3_close(db);
    db = NULL;
    if (rc)
        goto out;
    if ((rc = fks__path(p, sizeof p, "%s/catalog.db", dir)) != 0)
        goto out;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, p, RENAME_NOREPLACE) != 0) {
        rc = errno == EEXIST ? fks__err(FKS_EEXIST, "%s already holds a store", dir)
                             : fks__errno(FKS_EIO, errno, "rename %s", tmp);
        unlink(tmp);
        goto out;
    }
    if ((rc = fks__fsync_dir(dir)) != 0)
        goto out;

    /* The first chunk, preallocated, so the first ingest finds one ready. */
    if ((rc = fks_open(&s, dir, 0)) == 0)
        rc = chunk_prealloc_spare(s);
out:
    fks_close(s);
    sqlite3_close(db);
    umask(old);
    return rc;
}

int fks_open(struct fks_store **out, const char *dir, int flags)
{
    struct fks_store *s = calloc(1, sizeof *s);
    char p[PATH_MAX];
    struct stat st;
    int rc;

    *out = NULL;
    if (!s)
        return fks__err(FKS_ENOMEM, "out of memory");
    s->lockfd = -1;
    s->readonly = (flags & FKS_OPEN_READONLY) != 0;
    if ((rc = fks__path(s->dir, sizeof s->dir, "%s", dir)) != 0 ||
        (rc = fks__path(s->chunkdir, sizeof s->chunkdir, "%s/chunks", dir)) != 0 ||
        (rc = fks__path(p, sizeof p, "%s/catalog.db", dir)) != 0)
        goto out;
    if (stat(dir, &st) != 0) {
        rc = fks__errno(FKS_ENOTFOUND, errno, "store %s", dir);
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = fks__err(FKS_ENOTFOUND, "store %s is not a directory", dir);
        goto out;
    }
    if (stat(p, &st) != 0) {
        rc = fks__err(FKS_ENOTFOUND, "%s is not a forkstore store (no catalog.db): "
                      "create one with `forkctl init %s`", dir, dir);
        goto out;
    }
    /* chunks/ too: page hashes (XXH3) are not cryptographic, so whoever can
    ** replace chunk files can feed restore crafted pages. (A missing chunks/
    ** is damage for verify to report, not a reason to refuse.) */
    if ((rc = check_private(dir, "store directory")) != 0 || (rc = check_private(p, "catalog")) != 0 ||
        (access(s->chunkdir, F_OK) == 0 && (rc = check_private(s->chunkdir, "chunk directory")) != 0))
        goto out;
    if ((rc = open_lockfile(&s->lockfd, dir, "lock", 0)) != 0) {
        fks__errctx(rc, "%s is not a complete forkstore store", dir);
        goto out;
    }
    if ((rc = cat_open(&s->db, p, s->readonly)) != 0)
        goto out;
    cat_watch_wal(s);
    if ((rc = cat_migrate(s)) != 0)
        goto out;
    int64_t cs = FKS_DEFAULT_CHUNK_SIZE;
    if ((rc = cat_meta_get(s->db, "chunk_size", &cs)) != 0)
        goto out;
    s->chunk_size = (uint64_t)cs;
out:
    if (rc) {
        fks_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void fks_close(struct fks_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    if (s->lockfd >= 0)
        close(s->lockfd);
    free(s);
}
