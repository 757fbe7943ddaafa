/*
** store.c: the store directory: its layout, the checks of its parts, the
** writer lock and the gc reserve. Creating and opening a store, which
** needs the catalog and the first chunk too, is open.c.
**
** Layout of a store directory DIR (mode 0700; files 0600):
**
**   DIR/catalog.db       SQLite catalog (+ -wal, -shm), see catalog.c
**   DIR/chunks/          chunk files <id as %08x>.chunk, see chunk.c
**   DIR/lock             empty; flock()ed exclusively around every write
**                        transaction and checkpoint (the writer lock)
**   DIR/gc.lock          empty; flock()ed by the one running gc
**   DIR/reserve          preallocated filler (store_reserve_size bytes)
**                        that gc deletes first, so that on a full disk
**                        it still has room to commit; gc recreates it.
**                        rmi and prune delete it too if a commit fails
**                        for a full disk, and retry once
**                        (store_reserve_use): gc makes it again
**
** Ownership (as OpenSSH's StrictModes): the store's owner is the owner of
** DIR. fks_open() refuses, whoever runs it (root included), a store when
** DIR, catalog.db, its -wal and -shm, chunks/, manifests/ (the manifest
** files are checked as manifest.c reads them), vm-locks/ (branch.c's VM
** locks), the lock files, the reserve or (at each open, store_open_file)
** a chunk file belongs to anyone but the owner or
** root, or is writable by group or others: anyone who can write there can
** make restore hand back whatever they like. A user other than root may
** only open a store they own. Files root creates in a store it does not
** own are given to the owner (SQLite does the same for -wal and -shm).
**
** Every open of a store file is O_NOFOLLOW | O_NONBLOCK followed by an
** fstat type check (store_open_file): a FIFO or device in place of a
** store file is damage (FKS_ECORRUPT), never a blocking open.
*/
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

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
    return fks__err(FKS_EINVAL, "no store given, and none by default: FORKSTORE_DIR, XDG_DATA_HOME and HOME "
                    "are all unset");
}

/* $FORKSTORE_LOCK_TIMEOUT as forkctl parses its numbers: a plain decimal
** (digits, an optional fraction and exponent; no sign, blank, hex, inf or
** nan) from 0 to 86400 seconds. Unset or empty: 120 s. */
static int lock_timeout(double *out)
{
    const char *e = getenv("FORKSTORE_LOCK_TIMEOUT");
    *out = 120;
    if (!e || !*e)
        return 0;
    const char *p = e;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        digits++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits++;
    if (digits && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (*q >= '0' && *q <= '9') {
            while (*q >= '0' && *q <= '9')
                q++;
            p = q;
        }
    }
    double v = -1;
    if (digits && !*p && p - e < 400) {
        char *end;
        errno = 0;
        v = strtod(e, &end);
        if (*end || errno || !isfinite(v))
            v = -1;
    }
    if (!(v >= 0 && v <= 86400)) {
        char shown[64];
        fks__esc(shown, sizeof shown, e, 40);
        return fks__err(FKS_EINVAL, "FORKSTORE_LOCK_TIMEOUT='%s' is not a number of seconds from 0 to 86400 "
                        "(unset it to wait the default 120 s)", shown);
    }
    *out = v;
    return 0;
}

int store_lock(struct fks_store *s)
{
    double timeout;
    int rc = lock_timeout(&timeout);
    if (rc)
        return rc;
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

int store_check_owner(const struct fks_store *s, const char *path, const struct stat *st, const char *what)
{
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return fks__err(FKS_EPERM, "%s %s is writable by other users (mode %04o); refusing to use it: "
                        "run `chmod go-w %s`", what, path, (unsigned)(st->st_mode & 07777), path);
    if (st->st_uid != s->owner && st->st_uid != 0)
        return fks__err(FKS_EPERM, "%s %s belongs to uid %u, not to the store's owner (uid %u, the owner "
                        "of %s); refusing to use it: if its contents are trusted run `chown %u %s`",
                        what, path, (unsigned)st->st_uid, (unsigned)s->owner, s->dir, (unsigned)s->owner, path);
    return 0;
}

static const char *type_name(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISSOCK(m) ? "a socket" :
           S_ISLNK(m) ? "a symbolic link" : S_ISREG(m) ? "a regular file" : "a device";
}

int store_open_file(const struct fks_store *s, const char *path, int flags, const char *what, int *fdp)
{
    struct stat st;
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    *fdp = -1;
    if (fd < 0) {
        if (errno == ELOOP)
            return fks__err(FKS_ECORRUPT, "%s %s is a symbolic link; refusing to follow it", what, path);
        if (errno == ENOENT)
            return fks__errno(FKS_ENOTFOUND, errno, "open %s %s", what, path);
        return fks__errno(FKS_EIO, errno, "open %s %s", what, path);
    }
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = fks__errno(FKS_EIO, errno, "stat %s %s", what, path);
    else if (!S_ISREG(st.st_mode))
        rc = fks__err(FKS_ECORRUPT, "%s %s is not a regular file (%s); refusing to use it", what, path,
                      type_name(st.st_mode));
    else if ((rc = store_check_owner(s, path, &st, what)) == 0 &&
             fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        rc = fks__errno(FKS_EIO, errno, "fcntl %s", path);
    if (rc == 0 && (flags & O_CREAT) && geteuid() == 0 && s->owner != 0 && st.st_uid != s->owner &&
        fchown(fd, s->owner, (gid_t)-1) != 0)
        rc = fks__errno(FKS_EIO, errno, "chown %s %s to the store's owner", what, path);
    if (rc) {
        close(fd);
        return rc;
    }
    *fdp = fd;
    return 0;
}

/* Opens a lock file. A reader opens it read-only and does without it on
** a read-only file system (readers take no lock). */
int store_open_lockfile(struct fks_store *s, int *out, const char *name, int create)
{
    char p[PATH_MAX];
    int rc = fks__path(p, sizeof p, "%s/%s", s->dir, name);
    if (rc)
        return rc;
    rc = store_open_file(s, p, (s->readonly ? O_RDONLY : O_RDWR) | (create ? O_CREAT : 0), "lock file", out);
    if (rc == FKS_ENOTFOUND && s->readonly) {
        *out = -1;
        return 0;
    }
    return rc;
}

/* lstat-based check of a part of the store that need not exist. */
static int check_part(const struct fks_store *s, const char *path, const char *what, int must_exist, int dir)
{
    struct stat st;
    if ((dir ? stat(path, &st) : lstat(path, &st)) != 0) {
        if (errno == ENOENT && !must_exist)
            return 0;
        return fks__errno(errno == ENOENT ? FKS_ENOTFOUND : FKS_EIO, errno, "stat %s %s", what, path);
    }
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return fks__err(FKS_ECORRUPT, "%s %s is not a %s (%s); refusing to use it", what, path,
                        dir ? "directory" : "regular file", type_name(st.st_mode));
    return store_check_owner(s, path, &st, what);
}

/* The store directory: its owner becomes the store's owner; a user other
** than root may only open their own store. */
int store_check_dir(struct fks_store *s, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return fks__errno(FKS_ENOTFOUND, errno, "store %s", dir);
    if (!S_ISDIR(st.st_mode))
        return fks__err(FKS_ENOTFOUND, "store %s is not a directory", dir);
    s->owner = st.st_uid;
    if (geteuid() != 0 && st.st_uid != geteuid())
        return fks__err(FKS_EPERM, "store directory %s belongs to another user (uid %u); refusing to use it: "
                        "only its owner or root may open it", dir, (unsigned)st.st_uid);
    return store_check_owner(s, dir, &st, "store directory");
}

/* Every part fks_open checks before it trusts the catalog. */
int store_check_parts(struct fks_store *s)
{
    static const struct { const char *name, *what; int must, dir; } parts[] = {
        {"catalog.db", "catalog", 1, 0},   {"catalog.db-wal", "catalog WAL", 0, 0},
        {"catalog.db-shm", "catalog shared memory file", 0, 0}, {"chunks", "chunk directory", 0, 1},
        {"lock", "lock file", 0, 0},       {"gc.lock", "lock file", 0, 0},
        {"reserve", "gc reserve file", 0, 0}, {"manifests", "manifest directory", 0, 1},
        {"vm-locks", "VM lock directory", 0, 1},
    };
    char p[PATH_MAX];
    int rc = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && rc == 0; i++)
        if ((rc = fks__path(p, sizeof p, "%s/%s", s->dir, parts[i].name)) == 0)
            rc = check_part(s, p, parts[i].what, parts[i].must, parts[i].dir);
    return rc;
}

uint64_t store_reserve_size(const struct fks_store *s)
{
    uint64_t n = 2 * s->chunk_size;
    if (n < (4u << 20))
        n = 4u << 20;
    if (n > (32u << 20))
        n = 32u << 20;
    return n;
}

void store_reserve_release(struct fks_store *s)
{
    char p[PATH_MAX];
    if (fks__path(p, sizeof p, "%s/reserve", s->dir) == 0)
        (void)unlink(p);
}

int store_reserve_use(struct fks_store *s)
{
    char p[PATH_MAX];
    struct stat st;
    int used = 0;
    if (s->readonly || fks__path(p, sizeof p, "%s/reserve", s->dir) != 0 || store_lock(s) != 0)
        return 0;
    if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_blocks > 0 && unlink(p) == 0)
        used = s->reserve_used = 1;
    store_unlock(s);
    return used;
}

int fks_reserve_used(const struct fks_store *s)
{
    return s->reserve_used;
}

int store_reserve_make(struct fks_store *s)
{
    char p[PATH_MAX];
    struct stat st;
    int fd = -1, rc, err;
    uint64_t size = store_reserve_size(s);
    if ((rc = fks__path(p, sizeof p, "%s/reserve", s->dir)) != 0)
        return rc;
    if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_blocks * 512 >= size)
        return 0;
    /* Made in place: a reserve cut short by a crash or a full disk is only
    ** smaller, and the next gc frees whatever there is. */
    if ((rc = store_open_file(s, p, O_RDWR | O_CREAT, "gc reserve file", &fd)) != 0)
        return rc;
    if ((err = posix_fallocate(fd, 0, (off_t)size)) != 0)
        rc = fks__errno(FKS_EIO, err, "preallocate %llu bytes for %s", (unsigned long long)size, p);
    close(fd);
    return rc;
}

int store_count_chunk_files(const struct fks_store *s)
{
    DIR *d = opendir(s->chunkdir);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l > 6 && strcmp(e->d_name + l - 6, ".chunk") == 0;
    }
    closedir(d);
    return n;
}
