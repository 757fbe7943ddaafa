/*
** store.h: the store handle shared by the engine's modules (private).
*/
#ifndef FKS_STORE_H
#define FKS_STORE_H

#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>

#include "forkstore.h"

#define FKS_DEFAULT_CHUNK_SIZE (16u << 20)

struct fks_store {
    char dir[PATH_MAX];
    char chunkdir[PATH_MAX];
    sqlite3 *db;
    int readonly;
    int lockfd;          /* DIR/lock: the store-wide writer lock (flock) */
    int lock_depth;      /* cat_begin nesting guard */
    int wal_frames;      /* frames in the WAL after the last commit */
    uint64_t chunk_size;
};

/* Takes / releases the writer lock, waiting up to $FORKSTORE_LOCK_TIMEOUT
** seconds (default 120). FKS_ELOCKED on time-out. */
int store_lock(struct fks_store *s);
void store_unlock(struct fks_store *s);

/* Path of chunk id in buf. */
int store_chunk_path(char *buf, size_t len, const struct fks_store *s, int64_t id);

#endif
