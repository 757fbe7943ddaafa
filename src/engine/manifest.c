/*
** manifest.c: snapshot manifests, each committed snapshot's catalog rows
** kept outside the catalog, so the catalog is a cache that `forkctl
** recover` (recover.c) can rebuild from the files beside it: pages and
** hashes from the chunk records, lineage and page maps from manifests.
** (As in restic, the repository is the truth and the index a cache; a
** remote tier will ship the same files.)
**
** Design
**  1. One file per snapshot, DIR/manifests/<id>.manifest, id as 16 hex
**     digits. Self-describing (magic, version, header size), checksummed
**     (XXH3-64 trailer over every byte), immutable once written: a rename
**     writes a small tag override beside it (<id>.tag), never the
**     manifest.
**  2. The name is the catalog's snapshot.id. Ids are never reused: the
**     ingest commit assigns max(meta.next_snapshot_id, max(id) + 1) and
**     advances the counter in the same transaction, so a removed
**     snapshot's id (whose manifest may live on as a tombstone) is never
**     given to another one. That keeps the catalog's own key as the uid,
**     with no schema change. A recovered catalog sets the counter above
**     every manifest on disk and above DIR/manifests/next-snapshot-id,
**     which gc writes (8 bytes, then their XXH3-64) before it deletes
**     tombstones.
**  3. Write order (ingest.c commit): chunk bytes fdatasync()ed, then,
**     inside the write transaction, the manifest (temporary file O_EXCL,
**     fsync, rename, fsync of the directory), then COMMIT. A crash before
**     COMMIT leaves a manifest no row names: the next ingest with that id
**     replaces it, gc deletes it (manifest_sweep), and a recover taken
**     before either brings back a complete, synced snapshot that was
**     never acknowledged (never a partial one).
**  4. Maps name pages by XXH3-128 hash, not by catalog page id (ids are
**     local to one catalog). A root, and a Full image, store their whole
**     map; a Diff stores only its delta against its parent's artifact of
**     the same name: the pages whose content differs, including pages
**     that became zero. A 1 MiB Diff of a 512 MiB guest thus writes a few
**     KiB, not 2 MiB. A delta is written only when the parent's manifest
**     exists (a parent ingested before manifests gets a full child map).
**  5. Removal (lineage.c fks_rmi): the catalog commits first; then each
**     removed snapshot's manifest is renamed to <id>.removed, a
**     tombstone: children keep their deltas against it, and recover
**     walks through tombstones to a child's nearest live ancestor, the
**     parent rmi gave it. gc (manifest_sweep) deletes tombstones no kept
**     manifest's delta chain reaches. A crash between the rmi commit and
**     the rename leaves a manifest without a row: the sweep makes it a
**     tombstone or deletes it; a recover before that brings the removed
**     snapshot back (the safe side).
**  6. Renames (tag.c): <id>.tag is written durably before the rename
**     commits. A crash in between leaves an override the catalog does not
**     have; the sweep rewrites overrides to the catalog's tags, and
**     recover settles two snapshots claiming one tag in favour of the
**     most recent claim (the other gets a .dup-<id> suffix, reported).
**  7. gc writes a full manifest for every snapshot that has none (one
**     committed by a forkstore from before manifests), so an upgraded
**     store becomes recoverable after its first gc.
**  8. A manifest recover could not bring back (pages missing, base
**     damaged) is renamed <id>.lost: gc never deletes it or the bases it
**     needs, and a later recover (say, after a chunk file came back from
**     a backup) tries it again.
**
** Manifest layout (little-endian):
**
**   offset  size  field
**   0       8     magic "FKSMANIF"
**   8       4     version (1)
**   12      4     header size (96)
**   16      8     snapshot id (= file name)
**   24      8     parent id at ingest, 0 for a root
**   32      8     created, unix ms
**   40      8     stored bytes (chunk bytes this snapshot added)
**   48      8     new pages
**   56      8     pause ms      (branch timings; -1 when unknown)
**   64      8     snapshot ms
**   72      8     ingest ms
**   80      8     diff bytes
**   88      1     tag length T (1..128)
**   89      1     reserved, zero
**   90      2     artifact count A
**   92      4     flags: bit 0 = some artifact is a delta
**   96      T     tag
**   then A artifact records:
**     0     1     name length N (1..64)
**     1     1     mode: 0 full map, 1 delta against the parent's artifact
**                 of the same name
**     2     6     reserved, zero
**     8     8     logical size in bytes
**     16    8     extent count E
**     24    N     name
**     then E extents, by page number, not overlapping:
**       0   8     first page number
**       8   4     pages n (>= 1)
**       12  1     kind: 1 hashes follow, 0 zero pages (deltas only)
**       13  3     reserved, zero
**       16  16n   kind 1: each page's XXH3-128 (canonical, big-endian)
**   last 8        XXH3-64 of every byte before it
**
**   A full map: listed pages hold those hashes, others are zero. A delta:
**   listed pages replace the base's, others are the base's.
**
** Tag override <id>.tag: "FKSMTAG1", id (8), written unix ms (8), tag
** length (1), tag, XXH3-64 of the bytes before it (8).
*/
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "catalog.h"
#include "map.h"
#include "store.h"
#include "util.h"

#define MF_MAX_FILE ((size_t)1 << 32)   /* 4 GiB: far above any real map */
#define EXT_MAX 0xffffffffu

void manifest_clear(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_art; i++)
        free(m->art[i].p);
    free(m->art);
    memset(m, 0, sizeof *m);
}

int manifest_add_artifact(mf_artifact **out, manifest *m, const char *name, uint64_t size, int delta)
{
    mf_artifact *na = realloc(m->art, (m->n_art + 1) * sizeof *na);
    if (!na)
        return fks__err(FKS_ENOMEM, "out of memory");
    m->art = na;
    mf_artifact *a = &na[m->n_art++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->size = size;
    a->delta = delta;
    *out = a;
    return 0;
}

int mf_push(mf_artifact *a, uint64_t pgno, const uint8_t *hash, int zero)
{
    if (a->n == a->alloc) {
        size_t na = a->alloc ? a->alloc * 2 : 256;
        mf_page *np = realloc(a->p, na * sizeof *np);
        if (!np)
            return fks__err(FKS_ENOMEM, "out of memory (manifest of %s)", a->name);
        a->p = np;
        a->alloc = na;
    }
    mf_page *p = &a->p[a->n++];
    p->pgno = pgno;
    p->zero = zero ? 1 : 0;
    if (zero)
        memset(p->hash, 0, 16);
    else
        memcpy(p->hash, hash, 16);
    return 0;
}

int manifest_is_delta(const manifest *m)
{
    for (size_t i = 0; i < m->n_art; i++)
        if (m->art[i].delta)
            return 1;
    return 0;
}

/* ------------------------------------------------------------ encoding */

/* Extents of a: maximal stretches of consecutive pages of one kind. */
static size_t count_extents(const mf_artifact *a)
{
    size_t e = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t len = 0;
        size_t j = i;
        while (j + 1 < a->n && a->p[j + 1].pgno == a->p[j].pgno + 1 && a->p[j + 1].zero == a->p[i].zero &&
               ++len < EXT_MAX - 1)
            j++;
        e++;
        i = j;
    }
    return e;
}

int manifest_encode(uint8_t **buf, size_t *len, const manifest *m)
{
    size_t tl = strlen(m->tag), total = MF_HDR_SIZE + tl + 8;
    for (size_t i = 0; i < m->n_art; i++) {
        const mf_artifact *a = &m->art[i];
        size_t hashes = 0;
        for (size_t j = 0; j < a->n; j++)
            hashes += !a->p[j].zero;
        total += 24 + strlen(a->name) + 16 * count_extents(a) + 16 * hashes;
    }
    uint8_t *b = calloc(1, total), *p;
    if (!b)
        return fks__err(FKS_ENOMEM, "out of memory (manifest of %s)", m->tag);
    memcpy(b, MF_MAGIC, 8);
    fks__put32(b + 8, MF_VERSION);
    fks__put32(b + 12, MF_HDR_SIZE);
    fks__put64(b + 16, (uint64_t)m->id);
    fks__put64(b + 24, (uint64_t)m->parent_id);
    fks__put64(b + 32, (uint64_t)m->created_ms);
    fks__put64(b + 40, (uint64_t)m->stored_bytes);
    fks__put64(b + 48, (uint64_t)m->new_pages);
    fks__put64(b + 56, (uint64_t)m->pause_ms);
    fks__put64(b + 64, (uint64_t)m->snapshot_ms);
    fks__put64(b + 72, (uint64_t)m->ingest_ms);
    fks__put64(b + 80, (uint64_t)m->diff_bytes);
    b[88] = (uint8_t)tl;
    b[90] = (uint8_t)m->n_art;
    b[91] = (uint8_t)(m->n_art >> 8);
    fks__put32(b + 92, manifest_is_delta(m) ? 1u : 0u);
    memcpy(b + MF_HDR_SIZE, m->tag, tl);
    p = b + MF_HDR_SIZE + tl;
    for (size_t i = 0; i < m->n_art; i++) {
        const mf_artifact *a = &m->art[i];
        size_t nl = strlen(a->name);
        p[0] = (uint8_t)nl;
        p[1] = (uint8_t)(a->delta ? 1 : 0);
        fks__put64(p + 8, a->size);
        fks__put64(p + 16, count_extents(a));
        memcpy(p + 24, a->name, nl);
        p += 24 + nl;
        for (size_t j = 0; j < a->n; j++) {
            size_t k = j;
            uint32_t len2 = 0;
            while (k + 1 < a->n && a->p[k + 1].pgno == a->p[k].pgno + 1 && a->p[k + 1].zero == a->p[j].zero &&
                   ++len2 < EXT_MAX - 1)
                k++;
            uint32_t n = (uint32_t)(k - j + 1);
            fks__put64(p, a->p[j].pgno);
            fks__put32(p + 8, n);
            p[12] = a->p[j].zero ? 0 : 1;
            p += 16;
            if (!a->p[j].zero)
                for (size_t q = j; q <= k; q++, p += 16)
                    memcpy(p, a->p[q].hash, 16);
            j = k;
        }
    }
    fks__put64(p, XXH3_64bits(b, (size_t)(p - b)));
    *buf = b;
    *len = total;
    return 0;
}

int manifest_decode(manifest *m, const uint8_t *b, size_t len, const char *what)
{
    memset(m, 0, sizeof *m);
    if (len < MF_HDR_SIZE + 8 || memcmp(b, MF_MAGIC, 8) != 0)
        return fks__err(FKS_ECORRUPT, "%s is not a manifest (bad magic or %zu bytes)", what, len);
    if (fks__get64(b + len - 8) != XXH3_64bits(b, len - 8))
        return fks__err(FKS_ECORRUPT, "%s is damaged (checksum mismatch)", what);
    if (fks__get32(b + 8) != MF_VERSION || fks__get32(b + 12) != MF_HDR_SIZE)
        return fks__err(FKS_ECORRUPT, "%s has manifest version %u (this forkstore reads %d)", what,
                        fks__get32(b + 8), MF_VERSION);
    m->id = (int64_t)fks__get64(b + 16);
    m->parent_id = (int64_t)fks__get64(b + 24);
    m->created_ms = (int64_t)fks__get64(b + 32);
    m->stored_bytes = (int64_t)fks__get64(b + 40);
    m->new_pages = (int64_t)fks__get64(b + 48);
    m->pause_ms = (int64_t)fks__get64(b + 56);
    m->snapshot_ms = (int64_t)fks__get64(b + 64);
    m->ingest_ms = (int64_t)fks__get64(b + 72);
    m->diff_bytes = (int64_t)fks__get64(b + 80);
    size_t tl = b[88], na = (size_t)b[90] | (size_t)b[91] << 8;
    const uint8_t *p = b + MF_HDR_SIZE, *end = b + len - 8;
    if (m->id <= 0 || m->parent_id < 0 || m->parent_id >= m->id)
        return fks__err(FKS_ECORRUPT, "%s: bad snapshot id %lld or parent %lld", what, (long long)m->id,
                        (long long)m->parent_id);
    if (tl == 0 || tl > FKS_TAG_MAX || (size_t)(end - p) < tl)
        return fks__err(FKS_ECORRUPT, "%s: bad tag length %zu", what, tl);
    memcpy(m->tag, p, tl);
    m->tag[tl] = 0;
    p += tl;
    if (fks_check_tag(m->tag) != 0)
        return fks__err(FKS_ECORRUPT, "%s: invalid tag", what);
    for (size_t i = 0; i < na; i++) {
        if ((size_t)(end - p) < 24)
            return fks__err(FKS_ECORRUPT, "%s: artifact %zu truncated", what, i);
        size_t nl = p[0];
        int delta = p[1];
        uint64_t size = fks__get64(p + 8), ne = fks__get64(p + 16);
        if (nl == 0 || nl > FKS_NAME_MAX || delta > 1 || (size_t)(end - p) < 24 + nl)
            return fks__err(FKS_ECORRUPT, "%s: artifact %zu has a bad header", what, i);
        char name[FKS_NAME_MAX + 1];
        memcpy(name, p + 24, nl);
        name[nl] = 0;
        p += 24 + nl;
        if (fks_check_name(name) != 0)
            return fks__err(FKS_ECORRUPT, "%s: artifact %zu has an invalid name", what, i);
        mf_artifact *a = NULL;
        int rc = manifest_add_artifact(&a, m, name, size, delta);
        if (rc || !a)
            return rc ? rc : FKS_ENOMEM;
        uint64_t npg = (size + FKS_PAGE_SIZE - 1) / FKS_PAGE_SIZE, next = 0;
        for (uint64_t e = 0; e < ne; e++) {
            if ((size_t)(end - p) < 16)
                return fks__err(FKS_ECORRUPT, "%s: artifact %s: extent %llu truncated", what, name,
                                (unsigned long long)e);
            uint64_t pg = fks__get64(p);
            uint32_t n = fks__get32(p + 8);
            int kind = p[12];
            p += 16;
            if (n == 0 || kind > 1 || (kind == 0 && !delta) || pg < next || pg > npg || n > npg - pg)
                return fks__err(FKS_ECORRUPT, "%s: artifact %s: extent at page %llu out of order or range",
                                what, name, (unsigned long long)pg);
            if (kind == 1 && (size_t)(end - p) / 16 < n)
                return fks__err(FKS_ECORRUPT, "%s: artifact %s: hashes truncated", what, name);
            for (uint32_t k = 0; k < n; k++) {
                if ((rc = mf_push(a, pg + k, kind ? p : NULL, !kind)) != 0)
                    return rc;
                if (kind)
                    p += 16;
            }
            next = pg + n;
        }
    }
    if (p != end)
        return fks__err(FKS_ECORRUPT, "%s: %zu unexpected bytes at the end", what, (size_t)(end - p));
    return 0;
}

/* ------------------------------------------------------------- files */

const char *manifest_suffix(char kind)
{
    switch (kind) {
    case 'm': return ".manifest";
    case 'r': return ".removed";
    case 'l': return ".lost";
    default: return ".tag";
    }
}

int manifest_path(char *buf, size_t len, const char *dir, int64_t id, const char *suffix)
{
    return fks__path(buf, len, "%s/manifests/%016llx%s", dir, (unsigned long long)id, suffix);
}

/* The owner of the store directory dir: manifests are theirs (or root's),
** as every other store file (store.c). */
static int store_owner(uid_t *uid, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return fks__errno(FKS_EIO, errno, "stat %s", dir);
    *uid = st.st_uid;
    return 0;
}

/* A manifest file or directory that someone other than the store's owner
** (or root) owns or may write could say anything: refused, as store.c
** refuses such chunk files. */
static int check_owner(const char *dir, const char *path, const struct stat *st)
{
    uid_t owner = 0;
    int rc = store_owner(&owner, dir);
    if (rc)
        return rc;
    if (st->st_uid != owner && st->st_uid != 0)
        return fks__err(FKS_EPERM, "%s belongs to uid %u, not to the store's owner (uid %u): "
                        "check it, then chown %u %s", path, (unsigned)st->st_uid, (unsigned)owner,
                        (unsigned)owner, path);
    if (st->st_mode & 022)
        return fks__err(FKS_EPERM, "%s is writable by other users: check it, then chmod go-w %s", path, path);
    return 0;
}

/* Root writing into another user's store gives what it creates to them. */
static int give_to_owner(const char *dir, int fd, const char *path)
{
    uid_t owner = 0;
    if (geteuid() != 0)
        return 0;
    int rc = store_owner(&owner, dir);
    if (rc == 0 && owner != 0 && fchown(fd, owner, (gid_t)-1) != 0)
        rc = fks__errno(FKS_EIO, errno, "chown %s to the store's owner", path);
    return rc;
}

static int ensure_dir(const char *dir)
{
    char p[PATH_MAX];
    struct stat st;
    int rc = fks__path(p, sizeof p, "%s/manifests", dir);
    if (rc)
        return rc;
    if (mkdir(p, 0700) == 0) {
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return fks__errno(FKS_EIO, errno, "open %s", p);
        rc = give_to_owner(dir, fd, p);
        close(fd);
        return rc ? rc : fks__fsync_dir(dir);   /* the new directory's name */
    }
    if (errno != EEXIST)
        return fks__errno(FKS_EIO, errno, "create %s", p);
    if (lstat(p, &st) != 0)
        return fks__errno(FKS_EIO, errno, "stat %s", p);
    if (!S_ISDIR(st.st_mode))
        return fks__err(FKS_ECORRUPT, "%s is not a directory", p);
    return check_owner(dir, p, &st);
}

/* Writes buf as DIR/manifests/<id><suffix> (id 0: as DIR/manifests/
** <suffix>), durably. */
static int write_file(const char *dir, int64_t id, const char *suffix, const uint8_t *buf, size_t len)
{
    char tmp[PATH_MAX], final[PATH_MAX], mdir[PATH_MAX];
    int rc = ensure_dir(dir);
    if (rc || (rc = fks__path(mdir, sizeof mdir, "%s/manifests", dir)) != 0 ||
        (rc = fks__path(tmp, sizeof tmp, "%s/tmp.%016llx.%ld.%llx", mdir, (unsigned long long)id, (long)getpid(),
                        (unsigned long long)(fks__now() * 1e9))) != 0 ||
        (rc = id ? manifest_path(final, sizeof final, dir, id, suffix)
                 : fks__path(final, sizeof final, "%s/%s", mdir, suffix)) != 0)
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return fks__errno(FKS_EIO, errno, "create manifest %s", tmp);
    rc = give_to_owner(dir, fd, tmp);
    if (rc == 0)
        rc = fks__pwrite_full(fd, buf, len, 0, tmp);
    if (rc == 0 && fsync(fd) != 0)
        rc = fks__errno(FKS_EIO, errno, "fsync %s", tmp);
    if (close(fd) != 0 && rc == 0)
        rc = fks__errno(FKS_EIO, errno, "close %s", tmp);
    if (rc == 0 && rename(tmp, final) != 0)
        rc = fks__errno(FKS_EIO, errno, "rename %s to %s", tmp, final);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    return fks__fsync_dir(mdir);
}

int manifest_write(const char *dir, const manifest *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = manifest_encode(&buf, &len, m);
    if (rc == 0)
        rc = write_file(dir, m->id, ".manifest", buf, len);
    free(buf);
    if (rc)
        fks__errctx(rc, "manifest of snapshot %s", m->tag);
    return rc;
}

/* Reads a whole store file (regular, not a link, at most max bytes). */
static int slurp(uint8_t **out, size_t *len, const char *dir, const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return fks__errno(FKS_EIO, errno, "open %s", path);
    struct stat st;
    int rc = 0;
    uint8_t *b = NULL;
    if (fstat(fd, &st) != 0)
        rc = fks__errno(FKS_EIO, errno, "stat %s", path);
    else if (!S_ISREG(st.st_mode))
        rc = fks__err(FKS_ECORRUPT, "%s is not a regular file", path);
    else
        rc = check_owner(dir, path, &st);
    if (rc == 0 && (uint64_t)st.st_size > max)
        rc = fks__err(FKS_ECORRUPT, "%s is too large (%lld bytes)", path, (long long)st.st_size);
    if (rc == 0 && !(b = malloc((size_t)st.st_size + 1)))
        rc = fks__err(FKS_ENOMEM, "out of memory reading %s", path);
    if (rc == 0)
        rc = fks__pread_full(fd, b, (size_t)st.st_size, 0, path);
    close(fd);
    if (rc == 0 && !b)
        rc = fks__err(FKS_ERR, "read %s", path);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = (size_t)st.st_size;
    return 0;
}

int manifest_read(manifest *m, const char *dir, int64_t id, const char *suffix)
{
    char p[PATH_MAX];
    uint8_t *b = NULL;
    size_t len = 0;
    memset(m, 0, sizeof *m);
    int rc = manifest_path(p, sizeof p, dir, id, suffix);
    if (rc || (rc = slurp(&b, &len, dir, p, MF_MAX_FILE)) != 0 || !b)
        return rc ? rc : FKS_ERR;
    rc = manifest_decode(m, b, len, p);
    if (rc == 0 && m->id != id)
        rc = fks__err(FKS_ECORRUPT, "%s names snapshot id %lld, not its file name's", p, (long long)m->id);
    free(b);
    return rc;
}

int manifest_exists(const char *dir, int64_t id)
{
    char p[PATH_MAX];
    struct stat st;
    return manifest_path(p, sizeof p, dir, id, ".manifest") == 0 && lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int manifest_set_tag(const char *dir, int64_t id, const char *tag)
{
    uint8_t b[8 + 8 + 8 + 1 + FKS_TAG_MAX + 8];
    size_t tl = strlen(tag);
    if (tl == 0 || tl > FKS_TAG_MAX)
        return fks__err(FKS_EINVAL, "tag of %zu characters", tl);
    memcpy(b, MF_TAG_MAGIC, 8);
    fks__put64(b + 8, (uint64_t)id);
    fks__put64(b + 16, (uint64_t)fks__wall_ms());
    b[24] = (uint8_t)tl;
    memcpy(b + 25, tag, tl);
    fks__put64(b + 25 + tl, XXH3_64bits(b, 25 + tl));
    int rc = write_file(dir, id, ".tag", b, 25 + tl + 8);
    if (rc)
        fks__errctx(rc, "tag override of snapshot %s", tag);
    return rc;
}

int manifest_get_tag(char *tag, int64_t *when_ms, const char *dir, int64_t id)
{
    char p[PATH_MAX];
    uint8_t *b = NULL;
    size_t len = 0;
    struct stat st;
    int rc = manifest_path(p, sizeof p, dir, id, ".tag");
    if (rc)
        return rc;
    if (lstat(p, &st) != 0 && errno == ENOENT)
        return 1;
    if ((rc = slurp(&b, &len, dir, p, 4096)) != 0 || !b)
        return rc ? rc : FKS_ERR;
    size_t tl = len > 25 ? b[24] : 0;
    if (len < 33 || memcmp(b, MF_TAG_MAGIC, 8) != 0 || tl == 0 || tl > FKS_TAG_MAX || len != 25 + tl + 8 ||
        fks__get64(b + 25 + tl) != XXH3_64bits(b, 25 + tl) || (int64_t)fks__get64(b + 8) != id) {
        free(b);
        return fks__err(FKS_ECORRUPT, "tag override %s is damaged", p);
    }
    memcpy(tag, b + 25, tl);
    tag[tl] = 0;
    *when_ms = (int64_t)fks__get64(b + 16);
    free(b);
    if (fks_check_tag(tag) != 0)
        return fks__err(FKS_ECORRUPT, "tag override %s holds an invalid tag", p);
    return 0;
}

#define NEXT_ID_FILE "next-snapshot-id"

int manifest_get_next_id(int64_t *next, const char *dir)
{
    char p[PATH_MAX];
    uint8_t *b = NULL;
    size_t len = 0;
    struct stat st;
    int rc = fks__path(p, sizeof p, "%s/manifests/" NEXT_ID_FILE, dir);
    *next = 0;
    if (rc)
        return rc;
    if (lstat(p, &st) != 0 && errno == ENOENT)
        return 1;
    if ((rc = slurp(&b, &len, dir, p, 64)) != 0 || !b)
        return rc ? rc : FKS_ERR;
    if (len != 16 || fks__get64(b + 8) != XXH3_64bits(b, 8))
        rc = fks__err(FKS_ECORRUPT, "%s is damaged", p);
    else
        *next = (int64_t)fks__get64(b);
    free(b);
    return rc;
}

static int set_next_id(const char *dir, int64_t next)
{
    uint8_t b[16];
    fks__put64(b, (uint64_t)next);
    fks__put64(b + 8, XXH3_64bits(b, 8));
    return write_file(dir, 0, NEXT_ID_FILE, b, sizeof b);
}

void manifest_tombstone(const char *dir, const int64_t *ids, size_t n)
{
    char a[PATH_MAX], b[PATH_MAX], mdir[PATH_MAX];
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (manifest_path(a, sizeof a, dir, ids[i], ".manifest") == 0 &&
            manifest_path(b, sizeof b, dir, ids[i], ".removed") == 0 && rename(a, b) == 0)
            any = 1;
        if (manifest_path(a, sizeof a, dir, ids[i], ".tag") == 0 && unlink(a) == 0)
            any = 1;
    }
    if (any && fks__path(mdir, sizeof mdir, "%s/manifests", dir) == 0)
        (void)fks__fsync_dir(mdir);
}

static int cmp_entry(const void *x, const void *y)
{
    const mf_entry *a = x, *b = y;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return (a->kind > b->kind) - (a->kind < b->kind);
}

/* Parses "<16 hex><suffix>": the id, 0 if the name is not ours. */
static int64_t name_id(const char *nm, const char *suffix)
{
    size_t sl = strlen(suffix);
    if (strlen(nm) != 16 + sl || strcmp(nm + 16, suffix) != 0 || strspn(nm, "0123456789abcdef") < 16)
        return 0;
    unsigned long long v = strtoull(nm, NULL, 16);
    return v > 0 && v <= INT64_MAX ? (int64_t)v : 0;
}

int manifest_list(mf_entry **out, size_t *n, const char *dir)
{
    char p[PATH_MAX];
    mf_entry *v = NULL;
    size_t cnt = 0, alloc = 0;
    int rc = fks__path(p, sizeof p, "%s/manifests", dir);
    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    DIR *d = opendir(p);
    if (!d)
        return errno == ENOENT ? 0 : fks__errno(FKS_EIO, errno, "open %s", p);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        static const struct { const char *suffix; char kind; } kinds[] = {
            {".manifest", 'm'}, {".removed", 'r'}, {".tag", 't'}, {".lost", 'l'}};
        for (size_t k = 0; k < 4; k++) {
            int64_t id = name_id(e->d_name, kinds[k].suffix);
            if (!id)
                continue;
            if (cnt == alloc) {
                alloc = alloc ? alloc * 2 : 64;
                mf_entry *nv = realloc(v, alloc * sizeof *nv);
                if (!nv) {
                    closedir(d);
                    free(v);
                    return fks__err(FKS_ENOMEM, "out of memory");
                }
                v = nv;
            }
            v[cnt].id = id;
            v[cnt++].kind = kinds[k].kind;
        }
    }
    closedir(d);
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_entry);
    *out = v;
    *n = cnt;
    return 0;
}

/* --------------------------------------------------------- backfill */

struct push_ctx {
    mf_artifact *a;
    uint64_t pgno;             /* page number of the run's next page */
};

static int push_page(void *arg, const struct cat_page *p)
{
    struct push_ctx *x = arg;
    return mf_push(x->a, x->pgno++, p->hash, 0);
}

/* The full manifest of catalog snapshot id (a snapshot committed before
** manifests existed). */
static int from_catalog(manifest *m, sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st = NULL;
    cat_pages pr = {0};
    int rc, src;
    memset(m, 0, sizeof *m);
    if ((rc = cat_prepare(db, &st, "SELECT coalesce(parent_id, 0), created_ms, stored_bytes, new_pages, "
                          "coalesce(pause_ms, -1), coalesce(snapshot_ms, -1), coalesce(ingest_ms, -1), "
                          "coalesce(diff_bytes, -1), tag FROM snapshot WHERE id = ?1")) != 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if ((src = sqlite3_step(st)) != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? fks__err(FKS_ENOTFOUND, "snapshot id %lld not found", (long long)id)
                                : cat_err(db, src, "catalog: read snapshot");
        goto out;
    }
    m->id = id;
    m->parent_id = sqlite3_column_int64(st, 0);
    m->created_ms = sqlite3_column_int64(st, 1);
    m->stored_bytes = sqlite3_column_int64(st, 2);
    m->new_pages = sqlite3_column_int64(st, 3);
    m->pause_ms = sqlite3_column_int64(st, 4);
    m->snapshot_ms = sqlite3_column_int64(st, 5);
    m->ingest_ms = sqlite3_column_int64(st, 6);
    m->diff_bytes = sqlite3_column_int64(st, 7);
    snprintf(m->tag, sizeof m->tag, "%s", (const char *)sqlite3_column_text(st, 8));
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = cat_prepare(db, &st, "SELECT id, name, size FROM artifact WHERE snapshot_id = ?1 ORDER BY id")) != 0 ||
        (rc = cat_pages_open(&pr, db)) != 0)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        mf_artifact *a = NULL;
        uint64_t size = (uint64_t)sqlite3_column_int64(st, 2);
        if ((rc = manifest_add_artifact(&a, m, (const char *)sqlite3_column_text(st, 1), size, 0)) != 0 || !a)
            break;
        pm_map map = {0};
        rc = map_load_artifact(&map, db, sqlite3_column_int64(st, 0), (size + 4095) / 4096);
        struct push_ctx x = {a, 0};
        for (size_t i = 0; i < map.n && rc == 0; i++) {
            x.pgno = map.r[i].pgno;
            rc = cat_pages_range(&pr, map.r[i].page, map.r[i].npages, push_page, &x);
        }
        pm_free(&map);
        if (rc)
            fks__errctx(rc, "snapshot %s, %s", m->tag, a->name);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(db, src, "catalog: read artifacts");
out:
    sqlite3_finalize(st);
    cat_pages_close(&pr);
    return rc;
}

/* ----------------------------------------------------------------- sweep */

/* The header fields the sweep needs, without checking the checksum. */
static int read_hdr(const char *dir, int64_t id, const char *suffix, int64_t *parent, int *delta)
{
    char p[PATH_MAX];
    uint8_t h[MF_HDR_SIZE];
    int rc = manifest_path(p, sizeof p, dir, id, suffix);
    if (rc)
        return rc;
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return 1;
    ssize_t got = pread(fd, h, sizeof h, 0);
    close(fd);
    if (got != (ssize_t)sizeof h || memcmp(h, MF_MAGIC, 8) != 0)
        return 1;
    *parent = (int64_t)fks__get64(h + 24);
    *delta = (fks__get32(h + 92) & 1) != 0;
    return 0;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static const mf_entry *find_entry(const mf_entry *v, size_t n, int64_t id, char kind)
{
    mf_entry key = {id, kind};
    return n ? bsearch(&key, v, n, sizeof *v, cmp_entry) : NULL;
}

static const int64_t *find_live(const int64_t *live, size_t n, int64_t id)
{
    return n ? bsearch(&id, live, n, sizeof *live, cmp_i64) : NULL;
}

/* One sweep of DIR/manifests: the catalog's snapshots and the files. */
struct mf_sweep {
    struct fks_store *s;
    int dry_run;
    int64_t *live;                 /* the catalog's snapshot ids, ascending */
    char **tags;                   /* tags[i]: live[i]'s tag */
    size_t nlive, alloc;
    mf_entry *v;                   /* the files, as manifest_list gives them */
    size_t n;
    uint8_t *need;                 /* need[i]: v[i] is kept */
    uint64_t cnt;                  /* files deleted (counted with dry_run) */
};

/* Reads the catalog's snapshots, ids ascending, with their tags, into
** x->live and x->tags. */
static int sweep_catalog(struct mf_sweep *x)
{
    sqlite3_stmt *st = NULL;
    int rc, src;
    if ((rc = cat_prepare(x->s->db, &st, "SELECT id, tag FROM snapshot ORDER BY id")) != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (x->nlive == x->alloc) {
            x->alloc = x->alloc ? x->alloc * 2 : 64;
            int64_t *nl = realloc(x->live, x->alloc * sizeof *nl);
            char **nt = realloc(x->tags, x->alloc * sizeof *nt);
            if (nl)
                x->live = nl;
            if (nt)
                x->tags = nt;
            if (!nl || !nt) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
        }
        x->live[x->nlive] = sqlite3_column_int64(st, 0);
        x->tags[x->nlive] = strdup((const char *)sqlite3_column_text(st, 1));
        if (!x->tags[x->nlive]) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            break;
        }
        x->nlive++;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(x->s->db, src, "catalog: list snapshots");
    sqlite3_finalize(st);
    return rc;
}

/* Design 7: writes a full manifest for each snapshot that has none (one
** committed before manifests existed), then lists the files again. */
static int sweep_backfill(struct mf_sweep *x)
{
    int rc = 0, wrote = 0;
    for (size_t i = 0; i < x->nlive && rc == 0 && !x->dry_run; i++) {
        if (find_entry(x->v, x->n, x->live[i], 'm') || find_entry(x->v, x->n, x->live[i], 'r'))
            continue;
        manifest m;
        if ((rc = from_catalog(&m, x->s->db, x->live[i])) == 0)
            rc = manifest_write(x->s->dir, &m);
        manifest_clear(&m);
        wrote = 1;
    }
    if (rc == 0 && wrote) {
        free(x->v);
        x->v = NULL;
        rc = manifest_list(&x->v, &x->n, x->s->dir);
    }
    return rc;
}

/* Design 2: the id counter file, written before any tombstone is deleted,
** so that a recover does not give their ids out again. */
static int sweep_next_id(struct mf_sweep *x)
{
    int64_t next = 0, have = 0;
    int rc = 0;
    if (!x->dry_run && (rc = cat_meta_get(x->s->db, "next_snapshot_id", &next)) == 0 && x->n > 0 &&
        manifest_get_next_id(&have, x->s->dir) >= 0 && next > have)
        rc = set_next_id(x->s->dir, next);
    return rc;
}

/* Marks in x->need the files kept: every live snapshot's manifest, every
** lost one, then, children before parents (ids grow down a chain), the
** bases their deltas need. */
static int sweep_keep(struct mf_sweep *x)
{
    const mf_entry *v = x->v;
    size_t n = x->n;
    if (!(x->need = calloc(n + 1, 1)))
        return fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == 'l' || (v[i].kind != 't' && find_live(x->live, x->nlive, v[i].id)))
            x->need[i] = 1;
    for (size_t i = n; i-- > 0;) {
        int64_t parent = 0;
        int delta = 0;
        if (!x->need[i] || v[i].kind == 't' ||
            read_hdr(x->s->dir, v[i].id, manifest_suffix(v[i].kind), &parent, &delta) != 0 ||
            !delta || parent <= 0)
            continue;
        const mf_entry *b = find_entry(v, n, parent, 'm');
        if (!b)
            b = find_entry(v, n, parent, 'r');
        if (b)
            x->need[b - v] = 1;
    }
    return 0;
}

/* Design 6: tag override p of file i (l: its live snapshot, NULL if none)
** is deleted with its snapshot, or rewritten to the catalog's tag. */
static int sweep_tag(struct mf_sweep *x, size_t i, const int64_t *l, const char *p)
{
    char tag[FKS_TAG_MAX + 1];
    int64_t when;
    int rc = 0;
    if (!l) {
        x->cnt++;
        if (!x->dry_run)
            unlink(p);
    } else if (!x->dry_run && (manifest_get_tag(tag, &when, x->s->dir, x->v[i].id) != 0 ||
                               strcmp(tag, x->tags[l - x->live]) != 0)) {
        rc = manifest_set_tag(x->s->dir, x->v[i].id, x->tags[l - x->live]);   /* the catalog's tag wins */
    }
    return rc;
}

/* Design 5: each file not kept is deleted; the manifest of a removed
** snapshot that a delta needs becomes a tombstone; tag overrides are
** settled (sweep_tag). Lost manifests stay. */
static int sweep_files(struct mf_sweep *x)
{
    char p[PATH_MAX], q[PATH_MAX];
    const mf_entry *v = x->v;
    int rc = 0;
    for (size_t i = 0; i < x->n && rc == 0; i++) {
        const int64_t *l = find_live(x->live, x->nlive, v[i].id);
        if (v[i].kind == 'l')
            continue;                     /* recover's to retry or a person's to delete */
        if ((rc = manifest_path(p, sizeof p, x->s->dir, v[i].id, manifest_suffix(v[i].kind))) != 0)
            break;
        if (v[i].kind == 't') {
            rc = sweep_tag(x, i, l, p);
            continue;
        }
        if (x->need[i] && !l && v[i].kind == 'm') {
            /* A removed snapshot (rmi crashed before its rename) whose
            ** manifest a delta needs: keep it as a tombstone. */
            if (!x->dry_run && (rc = manifest_path(q, sizeof q, x->s->dir, v[i].id, ".removed")) == 0 &&
                rename(p, q) != 0)
                rc = fks__errno(FKS_EIO, errno, "rename %s", p);
            continue;
        }
        if (!x->need[i]) {
            x->cnt++;
            if (!x->dry_run && unlink(p) != 0 && errno != ENOENT)
                rc = fks__errno(FKS_EIO, errno, "remove %s", p);
        }
    }
    return rc;
}

/* Deletes the temporary files of writers that died (none runs: we hold
** the lock). Best effort. */
static void sweep_tmp(struct mf_sweep *x, const char *mdir)
{
    char p[PATH_MAX];
    DIR *d = opendir(mdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "tmp.", 4) == 0 && fks__path(p, sizeof p, "%s/%s", mdir, e->d_name) == 0) {
            x->cnt++;
            if (!x->dry_run)
                unlink(p);
        }
    if (d)
        closedir(d);
}

int manifest_sweep(struct fks_store *s, int dry_run, uint64_t *removed)
{
    struct mf_sweep x = {.s = s, .dry_run = dry_run};
    char mdir[PATH_MAX];
    int rc = cat_begin(s);   /* no ingest is between its manifest and its commit */
    if (rc)
        return rc;
    if ((rc = fks__path(mdir, sizeof mdir, "%s/manifests", s->dir)) != 0 || (rc = sweep_catalog(&x)) != 0 ||
        (rc = manifest_list(&x.v, &x.n, s->dir)) != 0 || (rc = sweep_backfill(&x)) != 0 ||
        (rc = sweep_next_id(&x)) != 0 || (rc = sweep_keep(&x)) != 0 || (rc = sweep_files(&x)) != 0)
        goto out;
    sweep_tmp(&x, mdir);
    if (!dry_run && x.n > 0)
        rc = fks__fsync_dir(mdir);
out:
    for (size_t i = 0; i < x.nlive; i++)
        free(x.tags[i]);
    free(x.tags);
    free(x.live);
    free(x.v);
    free(x.need);
    if (removed)
        *removed = x.cnt;
    if (rc)
        fks__errctx(rc, "sweep manifests of %s", s->dir);
    return cat_end(s, rc);
}
