/*
** store.h: the store handle shared by the engine's modules (private).
*/
#ifndef FKS_STORE_H
#define FKS_STORE_H

#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "forkstore.h"

#define FKS_DEFAULT_CHUNK_SIZE (16u << 20)

struct fks_store {
    char dir[PATH_MAX];
    char chunkdir[PATH_MAX];
    sqlite3 *db;
    int readonly;
    uid_t owner;         /* owner of DIR: every part must be theirs or root's */
    int lockfd;          /* DIR/lock: the store-wide writer lock (flock); -1 for
                         ** a reader on a read-only file system */
    int lock_depth;      /* cat_begin nesting guard */
    int wal_frames;      /* frames in the WAL after the last commit */
    uint64_t chunk_size;
    int reserve_used;    /* a commit deleted DIR/reserve (store_reserve_use) */
};

/* Takes / releases the writer lock, waiting up to $FORKSTORE_LOCK_TIMEOUT
** seconds (default 120). FKS_ELOCKED on time-out. */
int store_lock(struct fks_store *s);
void store_unlock(struct fks_store *s);

/* Opens a file of the store (flags: O_RDONLY / O_RDWR, optionally O_CREAT
** and O_EXCL) with O_NOFOLLOW | O_NONBLOCK, then checks by fstat that it is
** a regular file owned by the store's owner (or root) and not writable by
** group or others, and clears O_NONBLOCK. what names the file in messages
** ("chunk file"). Sets *fd (caller closes). FKS_ENOTFOUND if absent,
** FKS_ECORRUPT for a symbolic link, FIFO, device or directory, FKS_EPERM
** for a foreign owner or unsafe mode, FKS_EIO else. A file root creates in
** a store it does not own is given to the owner. */
int store_open_file(const struct fks_store *s, const char *path, int flags, const char *what, int *fd);
/* FKS_EPERM (with the chown / chmod that fixes it) unless st, the stat of
** path, is owned by the store's owner or root and not group/other-writable. */
int store_check_owner(const struct fks_store *s, const char *path, const struct stat *st, const char *what);
/* Number of *.chunk files in chunks/ (for messages; 0 if unreadable). */
int store_count_chunk_files(const struct fks_store *s);

/* The checks fks_init and fks_open (open.c) make before they trust a
** directory. store_check_dir: dir exists and is a directory; sets
** s->owner to its owner; FKS_EPERM unless it is the caller's (or the caller
** is root) and not group/other-writable. store_check_parts: every part of
** s->dir the layout names (catalog.db required, the rest if present) is
** of the right type and owned as store_check_owner wants.
** store_open_lockfile: opens (create: creates) DIR/name as store_open_file
** does and sets *out (caller closes); a reader opens it read-only and gets
** *out = -1 when it is absent (a read-only file system). */
int store_check_dir(struct fks_store *s, const char *dir);
int store_check_parts(struct fks_store *s);
int store_open_lockfile(struct fks_store *s, int *out, const char *name, int create);

/* DIR/reserve: space held back so that gc can commit on a full disk. gc
** releases it first and makes it again when done (best effort). */
uint64_t store_reserve_size(const struct fks_store *s);
void store_reserve_release(struct fks_store *s);
int store_reserve_make(struct fks_store *s);
/* For a writer whose commit failed for a full disk (FKS_ENOSPC): deletes
** the reserve under the writer lock so that one retry has room, and sets
** s->reserve_used. 1 if there was a reserve to delete, 0 if not (then a
** retry would fail the same way). */
int store_reserve_use(struct fks_store *s);

#endif
