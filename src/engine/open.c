/*
** open.c: creating a store (fks_init) and opening one (fks_open,
** fks_close): the one place that needs the directory (store.c), the
** catalog (catalog.c) and the chunk files (chunk.c) together, so that
** those three stay below it and need not know each other's openers.
**
** Design
**  1. A store is recognised by DIR/catalog.db holding our tables (a schema
**     version above 0: fks_init builds the catalog under a temporary name
**     and renames it into place (init_catalog, init_install), so an empty
**     or 0-byte catalog.db is damage, never a new store to build over the
**     chunk files).
**  2. fks_open trusts nothing it has not checked: the directory and every
**     part of it (store_check_dir, store_check_parts) before the catalog
**     is opened, then the catalog's schema version (cat_migrate).
**  3. Chunk files without a catalog are a store that lost its catalog:
**     fks_init refuses to make a new one over them (init_check: it would
**     hand their ids out again and gc would delete them).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "chunk.h"
#include "store.h"
#include "util.h"

/* fks_init's state: the catalog under its temporary name until the rename
** (tmp[0] 0 after it) and the directory's checked parts. */
struct init {
    const char *dir;
    uint64_t chunk_size;
    char tmp[PATH_MAX];
    sqlite3 *db;
    struct fks_store chk;
};

/* Design 1 and 3: the directory made or checked, with no catalog.db and
** no chunk files in it. */
static int init_check(struct init *n)
{
    char p[PATH_MAX];
    int rc;
    if (mkdir(n->dir, 0700) != 0 && errno != EEXIST)
        return fks__errno(FKS_EIO, errno, "create store directory %s", n->dir);
    if ((rc = fks__path(p, sizeof p, "%s/catalog.db", n->dir)) != 0)
        return rc;
    if (access(p, F_OK) == 0)
        return fks__err(FKS_EEXIST, "%s already holds a store (%s exists)", n->dir, p);
    if ((rc = fks__path(n->chk.dir, sizeof n->chk.dir, "%s", n->dir)) != 0 ||
        (rc = store_check_dir(&n->chk, n->dir)) != 0 ||
        (rc = fks__path(n->chk.chunkdir, sizeof n->chk.chunkdir, "%s/chunks", n->dir)) != 0)
        return rc;
    n->chk.chunk_size = n->chunk_size;
    /* Chunk files without a catalog are a store that lost its catalog: a
    ** new one would hand their ids out again and gc would delete them. */
    int nchunks = store_count_chunk_files(&n->chk);
    if (nchunks > 0 && fks__path(p, sizeof p, "%s/catalog.db", n->dir) == 0 && access(p, F_OK) == 0)
        /* A concurrent init renamed its catalog into place and made its
        ** first chunk after our look for catalog.db above. */
        return fks__err(FKS_EEXIST, "%s already holds a store (another init made it at the same time)", n->dir);
    if (nchunks > 0)
        return fks__err(FKS_ECORRUPT, "%s has no catalog.db but %s holds %d chunk files: it is a store that "
                        "lost its catalog; refusing to make a new one over them", n->dir, n->chk.chunkdir, nchunks);
    return 0;
}

/* chunks/ made (given to the store's owner when root runs this) and the
** lock files created. */
static int init_layout(struct init *n)
{
    char p[PATH_MAX];
    int rc, fd = -1;
    if ((rc = fks__path(p, sizeof p, "%s/chunks", n->dir)) != 0)
        return rc;
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return fks__errno(FKS_EIO, errno, "create %s", p);
    if (geteuid() == 0 && n->chk.owner != 0 && chown(p, n->chk.owner, (gid_t)-1) != 0)
        return fks__errno(FKS_EIO, errno, "chown %s to the store's owner", p);
    if ((rc = store_open_lockfile(&n->chk, &fd, "lock", 1)) != 0)
        return rc;
    close(fd);
    if ((rc = store_open_lockfile(&n->chk, &fd, "gc.lock", 1)) != 0)
        return rc;
    close(fd);
    return 0;
}

/* Design 1: the catalog created under a temporary name of this process's
** own (n->tmp) with the full schema and its meta, in WAL mode, closed. */
static int init_catalog(struct init *n)
{
    int rc;
    if ((rc = fks__path(n->tmp, sizeof n->tmp, "%s/catalog.db.init.%ld", n->dir, (long)getpid())) != 0)
        return rc;
    unlink(n->tmp);
    int src = sqlite3_open_v2(n->tmp, &n->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK)
        return cat_err(n->db, src, n->tmp);
    if ((rc = cat_create_schema(n->db)) != 0)
        return rc;
    rc = cat_meta_set(n->db, "chunk_size", (int64_t)n->chunk_size);
    if (rc == 0)
        rc = cat_meta_set(n->db, "gc_generation", 0);
    if (rc == 0)
        rc = cat_meta_set(n->db, "created_ms", fks__wall_ms());
    if (rc == 0)
        rc = cat_exec(n->db, "PRAGMA journal_mode = WAL");
    sqlite3_close(n->db);
    n->db = NULL;
    if (rc)
        return rc;
    if (geteuid() == 0 && n->chk.owner != 0 && chown(n->tmp, n->chk.owner, (gid_t)-1) != 0)
        return fks__errno(FKS_EIO, errno, "chown %s to the store's owner", n->tmp);
    return 0;
}

/* The catalog renamed into place (RENAME_NOREPLACE) and the directory
** synced: of two inits racing on one directory exactly one wins, the
** other gets FKS_EEXIST. */
static int init_install(struct init *n)
{
    char p[PATH_MAX];
    int rc;
    if ((rc = fks__path(p, sizeof p, "%s/catalog.db", n->dir)) != 0)
        return rc;
    if (renameat2(AT_FDCWD, n->tmp, AT_FDCWD, p, RENAME_NOREPLACE) != 0)
        return errno == EEXIST ? fks__err(FKS_EEXIST, "%s already holds a store (another init made it "
                                          "at the same time)", n->dir)
                               : fks__errno(FKS_EIO, errno, "rename %s", n->tmp);
    n->tmp[0] = 0;
    return fks__fsync_dir(n->dir);
}

int fks_init(const char *dir, uint64_t chunk_size)
{
    struct init n = {.dir = dir, .chk = {.lockfd = -1}};
    struct fks_store *s = NULL;
    int rc;
    mode_t old = umask(077);

    if (chunk_size == 0)
        chunk_size = FKS_DEFAULT_CHUNK_SIZE;
    if (chunk_size < (1u << 20) || chunk_size > (1ull << 32))
        return umask(old), fks__err(FKS_EINVAL, "chunk size %llu out of range (1 MiB .. 4 GiB)",
                                    (unsigned long long)chunk_size);
    n.chunk_size = chunk_size;
    /* The catalog is made under a temporary name and renamed into place
    ** once it holds the full schema: a crash leaves no half-made store. */
    if ((rc = init_check(&n)) != 0 || (rc = init_layout(&n)) != 0 || (rc = init_catalog(&n)) != 0 ||
        (rc = init_install(&n)) != 0)
        goto out;
    /* The first chunk, preallocated, so the first ingest finds one ready;
    ** and the room gc needs on a full disk. */
    if ((rc = fks_open(&s, dir, 0)) == 0 && (rc = chunk_prealloc_spare(s)) == 0)
        (void)store_reserve_make(s);   /* best effort: gc makes it again */
out:
    if (n.tmp[0])
        unlink(n.tmp);
    fks_close(s);
    sqlite3_close(n.db);
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
    if (!s) {
        fks__err(FKS_ENOMEM, "out of memory");
        return FKS_ENOMEM;   /* a constant: the analyzer sees that s is set on 0 */
    }
    s->lockfd = -1;
    s->readonly = (flags & FKS_OPEN_READONLY) != 0;
    if ((rc = fks__path(s->dir, sizeof s->dir, "%s", dir)) != 0 ||
        (rc = fks__path(s->chunkdir, sizeof s->chunkdir, "%s/chunks", dir)) != 0 ||
        (rc = fks__path(p, sizeof p, "%s/catalog.db", dir)) != 0)
        goto out;
    if ((rc = store_check_dir(s, dir)) != 0)
        goto out;
    if (lstat(p, &st) != 0) {
        rc = fks__err(FKS_ENOTFOUND, "%s is not a forkstore store (no catalog.db)", dir);
        goto out;
    }
    /* chunks/ too: page hashes (XXH3) are not cryptographic, so whoever can
    ** replace chunk files can feed restore crafted pages. (A missing chunks/
    ** is damage for verify to report, not a reason to refuse.) */
    if ((rc = store_check_parts(s)) != 0)
        goto out;
    if (st.st_size == 0) {
        rc = fks__err(FKS_ECORRUPT, "catalog %s is empty (0 bytes) beside %d chunk files: it is damaged, "
                      "not a new store; refusing to use or overwrite it", p, store_count_chunk_files(s));
        goto out;
    }
    if ((rc = store_open_lockfile(s, &s->lockfd, "lock", 0)) != 0) {
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
