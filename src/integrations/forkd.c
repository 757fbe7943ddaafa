/*
** forkd.c: moving forkd snapshot directories in and out of a store.
**
** forkd (v0.4 to v0.5.3) keeps one directory per snapshot under its
** snapshot root (~/.local/share/forkd/snapshots):
**
**   ROOT/<tag>/vmstate         Firecracker's vmstate
**   ROOT/<tag>/memory.bin      guest memory (older trees: diff.bin)
**   ROOT/<tag>/snapshot.json   {"vmstate": ABS, "memory": ABS, "volumes": [...],
**                               "parent_tag": T?, "parent_content_hash": HEX?,
**                               "rootfs": ABS?}   (v0.5; absent in v0.4)
**   /var/cache/forkd/<slug>.ext4   the rootfs "rootfs" names: outside ROOT
**   ROOT/<tag>/rootfs.ext4     in trees unpacked from v1 packs
**
** forkd restores a chained snapshot (parent_tag set) by walking parent_tag
** to the base (at most 32 links), checking each link's
** parent_content_hash against the SHA-256 of the parent's memory file as
** it is on disk (for a chained parent, its own overlay file), copying the
** base's memory and overlaying every link's data extents (SEEK_DATA /
** SEEK_HOLE): a hole means "the parent's page", data means "this page",
** zero pages included. A directory without snapshot.json is a base whose
** files are vmstate and memory.bin.
**
** Import follows that exactly: a chained memory file is ingested as a Diff
** of its parent (ingest.c's cover semantics are forkd's overlay), a base's
** as a Full image. Everything inside ROOT is opened relative to directory
** descriptors with O_NOFOLLOW (O_DIRECTORY for directories), so no
** symbolic link at any level inside ROOT is followed, and files are handed
** to fks_ingest as /proc/self/fd/N of the descriptors checked here. The
** absolute paths in snapshot.json only say which file is meant (their base
** names must name a file in the snapshot's own directory), except
** "rootfs": a rootfs outside the directory is read only under the
** caller's rootfs directory, by the rule in trusted_open(). Every check
** that can refuse the tree runs before the first ingest.
**
** Export writes the same layout. Flat: one directory, full memory.bin.
** Chain: the snapshot and its ancestors (up to 32 links), each link's
** memory.bin holding as data exactly the pages fks_diff says differ from
** its parent (zero pages written as zeros) and holes elsewhere, checked
** after writing by re-reading every data extent, so forkd's overlay
** yields the snapshot's bytes; parent_content_hash is the SHA-256 of the
** parent's exported memory.bin. Placing them is all or nothing, as a
** restore's files are (restore.c, design 2):
**  1. OUT is opened once and every name in it is taken relative to that
**     descriptor, every name in a snapshot's directory relative to the
**     directory's (fks_restore alone gets the directory's path, so that
**     its messages name files; its files are then found through the
**     descriptor); everything is created new (mkdtemp, mkdirat, O_EXCL)
**     and no link below OUT is followed.
**  2. Every directory is built and synced in OUT/.fks-export-XXXXXX,
**     which the export holds an flock(2) on until it has removed it.
**  3. Only when all are built and every OUT/<name> already there is
**     checked (identical files: reused; else FKS_EEXIST: one that differs
**     is never replaced) are they renamed into place, RENAME_NOREPLACE,
**     root first, and OUT synced. If a rename or the sync fails, those
**     placed are renamed back, newest first: OUT is left as it was.
**  4. A process killed meanwhile leaves its temporary directory and, if
**     killed while renaming, complete directories already placed (root
**     first: never a link without its parent), which a retry reuses. The
**     next export into OUT removes every temporary directory whose lock
**     no one holds.
*/
#include "forkd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forkstore.h"
#include "util.h"

#define DEFAULT_ROOTFS_DIR "/var/cache/forkd"

static int get_str(char *dst, size_t cap, json_object *o, const char *key, int required)
{
    json_object *v;
    dst[0] = 0;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            return fks__err(FKS_EINVAL, "snapshot.json: field \"%s\" is missing", key);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return fks__err(FKS_EINVAL, "snapshot.json: field \"%s\" is not a string", key);
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n >= cap || strlen(s) != n)
        return fks__err(FKS_EINVAL, "snapshot.json: field \"%s\" is too long or holds a NUL", key);
    memcpy(dst, s, n + 1);
    return 0;
}

int forkd_parse(struct forkd_snap *out, const char *json, size_t len)
{
    memset(out, 0, sizeof *out);
    if (len > FORKD_JSON_MAX)
        return fks__err(FKS_EINVAL, "snapshot.json: %zu bytes, larger than %d", len, FORKD_JSON_MAX);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return fks__err(FKS_ENOMEM, "out of memory");
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    int rc = 0;
    if (!o || jerr != json_tokener_success || (size_t)json_tokener_get_parse_end(tok) < len) {
        size_t end = o ? json_tokener_get_parse_end(tok) : 0;
        int trailing = 0;
        for (size_t i = end; o && i < len; i++)
            trailing |= !(json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t');
        if (!o || jerr != json_tokener_success || trailing)
            rc = fks__err(FKS_EINVAL, "snapshot.json is not valid JSON: %s",
                          jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "trailing data");
    }
    if (rc == 0 && !json_object_is_type(o, json_type_object))
        rc = fks__err(FKS_EINVAL, "snapshot.json is not a JSON object");
    if (rc == 0 && (rc = get_str(out->memory, sizeof out->memory, o, "memory", 1)) == 0 &&
        (rc = get_str(out->vmstate, sizeof out->vmstate, o, "vmstate", 1)) == 0 &&
        (rc = get_str(out->rootfs, sizeof out->rootfs, o, "rootfs", 0)) == 0 &&
        (rc = get_str(out->parent_tag, sizeof out->parent_tag, o, "parent_tag", 0)) == 0)
        rc = get_str(out->parent_content_hash, sizeof out->parent_content_hash, o, "parent_content_hash", 0);
    if (rc == 0 && out->parent_content_hash[0]) {
        size_t n = strlen(out->parent_content_hash);
        for (size_t i = 0; i < n; i++) {
            char c = out->parent_content_hash[i];
            if (c >= 'A' && c <= 'F')
                out->parent_content_hash[i] = (char)(c - 'A' + 'a');
            else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                n = 0;
        }
        if (n != 64)
            rc = fks__err(FKS_EINVAL, "snapshot.json: parent_content_hash is not 64 hex digits");
    }
    if (rc == 0 && out->parent_content_hash[0] && !out->parent_tag[0])
        rc = fks__err(FKS_EINVAL, "snapshot.json: parent_content_hash without parent_tag");
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}

/* ---- small helpers ------------------------------------------------------ */

static void hex32(char out[65], const unsigned char md[32])
{
    static const char h[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = h[md[i] >> 4];
        out[2 * i + 1] = h[md[i] & 15];
    }
    out[64] = 0;
}

/* SHA-256 of everything fd holds (holes read as zeros, as forkd's
** sha256_file reads them), as lower-case hex. what names it in messages. */
static int sha256_fd(char out[65], int fd, const char *what)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20), md[32];
    unsigned mdlen = 0;
    off_t off = 0;
    int rc = 0;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = fks__err(FKS_ENOMEM, "sha256: cannot initialise");
        goto out;
    }
    for (;;) {
        ssize_t n = pread(fd, buf, 1 << 20, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fks__errno(FKS_EIO, errno, "read %s", what);
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        off += n;
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    hex32(out, md);
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* 1 if a and b have the same directory part (both absolute paths). */
static int same_dirname(const char *a, const char *b)
{
    size_t la = (size_t)(base_name(a) - a), lb = (size_t)(base_name(b) - b);
    return la > 0 && la == lb && memcmp(a, b, la) == 0;
}

/* Opens name inside directory dfd (shown as dirpath) as a regular file,
** never through a symbolic link. Returns the fd or a negative code. */
static int open_in(int dfd, const char *dirpath, const char *name, struct stat *st)
{
    memset(st, 0, sizeof *st);
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP)
        return fks__err(FKS_EINVAL, "%s/%s is a symbolic link: refused (no link inside a forkd snapshot root "
                        "is followed)", dirpath, name);
    if (fd < 0)
        return fks__errno(errno == ENOENT ? FKS_ENOTFOUND : FKS_EIO, errno, "open %s/%s", dirpath, name);
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return fks__err(FKS_EINVAL, "%s/%s is not a regular file", dirpath, name);
    }
    return fd;
}

/* Opens directory name inside dfd, never through a symbolic link. */
static int open_dir_in(int dfd, const char *dirpath, const char *name)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return fks__err(FKS_EINVAL, "%s/%s is a symbolic link: refused (no link inside a forkd snapshot root "
                        "is followed)", dirpath, name);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
        return fks__err(FKS_EINVAL, "%s/%s is not a directory or is a symbolic link: refused", dirpath, name);
    if (fd < 0)
        return fks__errno(errno == ENOENT ? FKS_ENOTFOUND : FKS_EIO, errno, "open %s/%s", dirpath, name);
    return fd;
}

/* 1 if name in dfd exists (not following a link), 0 if not. */
static int exists_in(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A stream over the entries of directory dfd, from the first (a dup
** shares its offset with dfd, hence the rewind); closedir() frees it.
** NULL with errno set on failure. */
static DIR *list_dir(int dfd)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0) {
        int err = errno;
        close(fd);
        errno = err;
    }
    if (d)
        rewinddir(d);
    return d;
}

static int push_warning(fks_forkd_import_result *r, const char *fmt, ...) FKS_PRINTF(2, 3);
static int push_warning(fks_forkd_import_result *r, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **nw = realloc(r->warnings, (r->n_warnings + 1) * sizeof *nw);
    if (!nw)
        return fks__err(FKS_ENOMEM, "out of memory");
    r->warnings = nw;
    if (!(nw[r->n_warnings] = strdup(buf)))
        return fks__err(FKS_ENOMEM, "out of memory");
    r->n_warnings++;
    return 0;
}

void fks_forkd_import_result_free(fks_forkd_import_result *r)
{
    fks_forkd_import_result_clear(r);
}

void fks_forkd_import_result_clear(fks_forkd_import_result *r)
{
    if (!r)
        return;
    fks__lines_free(r->warnings, r->n_warnings);
    r->warnings = NULL;
    r->n_warnings = 0;
}

/* ---- the rootfs outside the tree ---------------------------------------- */

/* 0 if st (of what) is owned by root or the caller and writable by no
** one else; else writes the reason into why and returns -1. */
static int trusted_stat(const struct stat *st, const char *what, char *why, size_t whylen)
{
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        snprintf(why, whylen, "%s is owned by uid %u, neither root nor you", what, (unsigned)st->st_uid);
        return -1;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, whylen, "%s is writable by %s (mode %04o)", what,
                 (st->st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st->st_mode & 07777));
        return -1;
    }
    return 0;
}

/* Opens the rootfs at absolute path, which must lie under dir. The rule
** (README, import-forkd): dir itself, every directory below it on the
** way, and the file are reached without a symbolic link (O_NOFOLLOW per
** component), are owned by root or the caller and are writable by no one
** else; the file is regular. Such a file could only have been put there by
** root or the caller, so reading it gives the caller nothing they could
** not read anyway and nothing another user chose. Returns the fd, or -1
** with the reason in why (a missing file included), or a negative FKS_E*
** code for an error unrelated to the tree (out of memory). */
static int trusted_open(const char *path, const char *dir, char *why, size_t whylen)
{
    char rdir[PATH_MAX], buf[PATH_MAX];
    struct stat st;
    int dfd = -1, fd = -1;
    if (path[0] != '/') {
        snprintf(why, whylen, "the path is not absolute");
        return -1;
    }
    int rerr = 0;
    if (!realpath(dir, rdir)) {
        rerr = errno;
        if (strlen(dir) >= sizeof rdir)
            rdir[0] = 0;
        else
            memcpy(rdir, dir, strlen(dir) + 1);
    }
    size_t n = strlen(rdir);
    if (n == 1)
        n = 0; /* "/" */
    if (strncmp(path, rdir, n) != 0 || path[n] != '/' || strlen(path + n) >= sizeof buf) {
        snprintf(why, whylen, "it is not under the rootfs directory %.300s", rdir);
        return -1;
    }
    if (rerr) {
        snprintf(why, whylen, "the rootfs directory %.300s: %s", dir, strerror(rerr));
        return -1;
    }
    memcpy(buf, path + n + 1, strlen(path + n + 1) + 1);
    if ((dfd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(why, whylen, "open %.300s: %s", rdir, strerror(errno));
        return -1;
    }
    if (fstat(dfd, &st) != 0 || trusted_stat(&st, rdir, why, whylen) != 0)
        goto bad;
    char *comp = buf, *slash;
    while ((slash = strchr(comp, '/')) != NULL) {
        *slash = 0;
        if (!comp[0] || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
            snprintf(why, whylen, "the path has an empty, '.' or '..' component");
            goto bad;
        }
        int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            snprintf(why, whylen, "directory %.300s: %s", comp,
                     errno == ELOOP || errno == ENOTDIR ? "a symbolic link or not a directory" : strerror(errno));
            goto bad;
        }
        close(dfd);
        dfd = nfd;
        if (fstat(dfd, &st) != 0 || trusted_stat(&st, comp, why, whylen) != 0)
            goto bad;
        comp = slash + 1;
    }
    if (!comp[0] || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
        snprintf(why, whylen, "the path does not name a file");
        goto bad;
    }
    fd = openat(dfd, comp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whylen, "%s", errno == ELOOP ? "it is a symbolic link" : strerror(errno));
        goto bad;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "it is not a regular file");
        goto bad;
    }
    if (trusted_stat(&st, "the file", why, whylen) != 0)
        goto bad;
    close(dfd);
    return fd;
bad:
    if (fd >= 0)
        close(fd);
    close(dfd);
    return -1;
}

/* ---- import ------------------------------------------------------------- */

struct isnap {
    char name[129];            /* directory name = forkd tag */
    char tag[257];             /* store tag: prefix + name */
    char parent[257];          /* store tag of the parent, "" if a base */
    int parent_idx;            /* index in the tree, -1 if outside it */
    int legacy;                /* v0.4: no snapshot.json */
    int chained;               /* parent_tag set: memory is an overlay */
    char memname[16];          /* memory.bin or diff.bin */
    char rootfs_in[256];       /* rootfs file inside the directory, "" if none */
    off_t memsize;
    char memhash[65];          /* SHA-256 of the memory file, "" until needed */
    struct forkd_snap js;
    int done;
};

/* Reads and parses the snapshot.json in directory dfd (shown as dpath). */
static int read_json(struct forkd_snap *js, int dfd, const char *dpath)
{
    struct stat st;
    char *json = NULL;
    int rc, fd = open_in(dfd, dpath, "snapshot.json", &st);
    if (fd < 0)
        return fd;
    size_t len = (size_t)st.st_size;
    if (st.st_size > FORKD_JSON_MAX)
        rc = fks__err(FKS_EINVAL, "%s/snapshot.json is larger than %d bytes", dpath, FORKD_JSON_MAX);
    else if (!(json = malloc(len + 1)))
        rc = fks__err(FKS_ENOMEM, "out of memory");
    else if ((rc = fks__pread_full(fd, json, len, 0, "snapshot.json")) == 0 &&
             (rc = forkd_parse(js, json, len)) != 0)
        rc = fks__errctx(rc, "%s/snapshot.json", dpath);
    free(json);
    close(fd);
    return rc;
}

/* Reads one snapshot directory (already checked not to be a link). */
static int load_snap(struct isnap *v, int rootfd, const char *root, const char *name, const char *prefix)
{
    char dpath[PATH_MAX];
    struct stat st;
    int rc = 0, dfd = -1, fd = -1;
    memset(v, 0, sizeof *v);
    v->parent_idx = -1;
    if (strlen(name) >= sizeof v->name)
        return fks__err(FKS_EINVAL, "forkd snapshot directory name too long: %.40s...", name);
    memcpy(v->name, name, strlen(name) + 1);
    if ((rc = fks__path(v->tag, sizeof v->tag, "%s%s", prefix, name)) != 0 || (rc = fks_check_tag(v->tag)) != 0 ||
        (rc = fks__path(dpath, sizeof dpath, "%s/%s", root, name)) != 0)
        return fks__errctx(rc, "forkd snapshot %s", name);
    if ((dfd = open_dir_in(rootfd, root, name)) < 0)
        return dfd;
    if (!exists_in(dfd, "snapshot.json")) {
        /* v0.4: forkd takes vmstate and memory.bin as a base. */
        v->legacy = 1;
        if ((rc = fks__path(v->js.vmstate, sizeof v->js.vmstate, "%s/vmstate", dpath)) != 0 ||
            (rc = fks__path(v->js.memory, sizeof v->js.memory, "%s/memory.bin", dpath)) != 0)
            goto out;
    } else if ((rc = read_json(&v->js, dfd, dpath)) != 0)
        goto out;
    const char *mb = base_name(v->js.memory);
    if (strcmp(mb, "memory.bin") != 0 && strcmp(mb, "diff.bin") != 0) {
        rc = fks__err(FKS_EINVAL, "%s/snapshot.json: \"memory\" names %s; expected memory.bin or diff.bin", dpath, mb);
        goto out;
    }
    memcpy(v->memname, mb, strlen(mb) + 1);
    if ((fd = open_in(dfd, dpath, v->memname, &st)) < 0) {
        rc = fd == FKS_ENOTFOUND ? fks__err(FKS_ENOTFOUND, "forkd snapshot %s: %s/%s is missing%s", name, dpath,
                                            v->memname, v->legacy ? " (a v0.4 snapshot without snapshot.json)" : "")
                                 : fd;
        goto out;
    }
    v->memsize = st.st_size;
    close(fd);
    fd = -1;
    if (strcmp(base_name(v->js.vmstate), "vmstate") != 0) {
        rc = fks__err(FKS_EINVAL, "%s/snapshot.json: \"vmstate\" names %s; expected vmstate", dpath,
                      base_name(v->js.vmstate));
        goto out;
    }
    if ((fd = open_in(dfd, dpath, "vmstate", &st)) < 0) {
        rc = fd;
        goto out;
    }
    v->chained = v->js.parent_tag[0] != 0;
    if (v->chained && !v->js.parent_content_hash[0]) {
        rc = fks__err(FKS_EINVAL, "forkd snapshot %s has parent_tag %s but no parent_content_hash: forkd refuses "
                      "such a chain (verify_parent_hashes); nothing imported", name, v->js.parent_tag);
        goto out;
    }
    /* The rootfs: the file "rootfs" names when it is in the same directory
    ** as the memory file, else a rootfs.ext4 in the directory (v1 packs);
    ** one outside is looked at when ingesting (trusted_open). */
    if (v->js.rootfs[0] && same_dirname(v->js.rootfs, v->js.memory)) {
        const char *rb = base_name(v->js.rootfs);
        if (strlen(rb) >= sizeof v->rootfs_in || !exists_in(dfd, rb)) {
            rc = fks__err(FKS_ENOTFOUND, "forkd snapshot %s: snapshot.json names rootfs %s in its own directory, "
                          "but %s/%s is missing", name, v->js.rootfs, dpath, rb);
            goto out;
        }
        memcpy(v->rootfs_in, rb, strlen(rb) + 1);
    } else if (exists_in(dfd, "rootfs.ext4"))
        memcpy(v->rootfs_in, "rootfs.ext4", sizeof "rootfs.ext4");
out:
    if (fd >= 0)
        close(fd);
    close(dfd);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct isnap *)a)->name, ((const struct isnap *)b)->name);
}

static int cmp_key(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct isnap *)elem)->name);
}

static int memory_hash(struct isnap *v, int rootfd, const char *root)
{
    if (v->memhash[0])
        return 0;
    char what[PATH_MAX + 300];
    struct stat st;
    snprintf(what, sizeof what, "%s/%s/%s", root, v->name, v->memname);
    int dfd = open_dir_in(rootfd, root, v->name), rc;
    if (dfd < 0)
        return dfd;
    int fd = open_in(dfd, root, v->memname, &st);
    close(dfd);
    if (fd < 0)
        return fd;
    rc = sha256_fd(v->memhash, fd, what);
    close(fd);
    return rc;
}

/* Ingests one snapshot of the tree. */
static int import_one(fks_forkd_import_result *res, fks_store *s, struct isnap *v, int rootfd, const char *root,
                      const fks_forkd_import_opts *o)
{
    char dpath[PATH_MAX + 130], pm[32], pv[32], pr[32], why[512] = "";
    struct stat st;
    int dfd, fm = -1, fv = -1, fr = -1, rc = 0;
    snprintf(dpath, sizeof dpath, "%s/%s", root, v->name);
    if ((dfd = open_dir_in(rootfd, root, v->name)) < 0)
        return dfd;
    if ((fm = open_in(dfd, dpath, v->memname, &st)) < 0 || (fv = open_in(dfd, dpath, "vmstate", &st)) < 0) {
        rc = fm < 0 ? fm : fv;
        goto out;
    }
    if (v->rootfs_in[0]) {
        if ((fr = open_in(dfd, dpath, v->rootfs_in, &st)) < 0) {
            rc = fr;
            goto out;
        }
    } else if (v->js.rootfs[0]) {
        fr = trusted_open(v->js.rootfs, o->rootfs_dir ? o->rootfs_dir : DEFAULT_ROOTFS_DIR, why, sizeof why);
        if (fr < 0) {
            res->n_no_rootfs++;
            if ((rc = push_warning(res, "forkd snapshot %s: rootfs %s not imported: %s (a rootfs outside the "
                                   "tree is read only from regular files under %s, owned by root or you, "
                                   "writable by no one else, reached without symbolic links)",
                                   v->name, v->js.rootfs, why,
                                   o->rootfs_dir ? o->rootfs_dir : DEFAULT_ROOTFS_DIR)) != 0)
                goto out;
        }
    }
    snprintf(pm, sizeof pm, "/proc/self/fd/%d", fm);
    snprintf(pv, sizeof pv, "/proc/self/fd/%d", fv);
    snprintf(pr, sizeof pr, "/proc/self/fd/%d", fr);
    fks_artifact_in a[3] = {{"memory", pm, v->chained}, {"vmstate", pv, 0}, {"rootfs", pr, 0}};
    fks_ingest_opts io = {.tag = v->tag, .parent = v->chained ? v->parent : NULL, .artifacts = a,
                          .n_artifacts = fr >= 0 ? 3 : 2, .progress = o->progress,
                          .progress_arg = o->progress_arg, .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
    /* The descriptors were opened without following links and checked;
    ** /proc/self/fd/N reopens exactly those files. */
    if ((rc = fks_ingest(NULL, s, &io)) != 0)
        rc = fks__errctx(rc, "memory %s/%s%s", dpath, v->memname,
                         v->chained ? ", an overlay of its parent" : "");
out:
    if (fm >= 0)
        close(fm);
    if (fv >= 0)
        close(fv);
    if (fr >= 0)
        close(fr);
    close(dfd);
    return rc;
}

/* The snapshot directories of root (holding snapshot.json or vmstate), in
** *v, unsorted. */
static int list_snaps(struct isnap **v, size_t *n, int rootfd, const char *root, const char *prefix)
{
    size_t alloc = 0;
    int rc = 0;
    DIR *d = list_dir(rootfd);
    if (!d)
        return fks__errno(FKS_EIO, errno, "list %s", root);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        if (fstatat(rootfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = fks__errno(FKS_EIO, errno, "stat %s/%s", root, e->d_name);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            rc = fks__err(FKS_EINVAL, "%s/%s is a symbolic link: refused (no link inside a forkd snapshot root "
                          "is followed); nothing imported", root, e->d_name);
            break;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        int dfd = open_dir_in(rootfd, root, e->d_name);
        if (dfd < 0) {
            rc = dfd;
            break;
        }
        /* forkd takes a directory holding vmstate for a snapshot. */
        int snap = exists_in(dfd, "snapshot.json") || exists_in(dfd, "vmstate");
        close(dfd);
        if (!snap)
            continue;
        if ((rc = fks__grow(v, &alloc, *n, sizeof **v)) != 0)
            break;
        if ((rc = load_snap(&(*v)[*n], rootfd, root, e->d_name, prefix)) != 0)
            break;
        (*n)++;
    }
    closedir(d);
    return rc;
}

/* Resolves each chained snapshot's parent (in the tree, else in the store)
** and checks its parent_content_hash and size, then that no parent chain
** is a cycle; all before anything is ingested. v is sorted by name. */
static int resolve_parents(fks_forkd_import_result *res, fks_store *s, struct isnap *v, size_t n, int rootfd,
                           const char *root, const char *prefix)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!v[i].chained)
            continue;
        struct isnap *p = bsearch(v[i].js.parent_tag, v, n, sizeof *v, cmp_key);
        if (p)
            v[i].parent_idx = (int)(p - v);
        if ((rc = fks__path(v[i].parent, sizeof v[i].parent, "%s%s", p ? prefix : "", v[i].js.parent_tag)) != 0)
            break;
        if (!p) {
            fks_snapinfo info;
            if (fks_get(&info, s, v[i].parent) != 0)
                rc = fks__err(FKS_ENOTFOUND, "forkd snapshot %s: parent %s is neither in %s nor in the store; "
                              "nothing imported", v[i].name, v[i].js.parent_tag, root);
            else
                rc = push_warning(res, "forkd snapshot %s: parent %s taken from the store; its "
                                  "parent_content_hash was not checked (the parent's forkd memory file is "
                                  "not in %s)", v[i].name, v[i].parent, root);
            continue;
        }
        if (p == &v[i])
            return fks__err(FKS_EINVAL, "forkd snapshot %s is its own parent; nothing imported", v[i].name);
        if ((rc = memory_hash(p, rootfd, root)) != 0)
            return rc;
        if (strcmp(p->memhash, v[i].js.parent_content_hash) != 0)
            return fks__err(FKS_ECORRUPT, "forkd snapshot %s: parent_content_hash %.12s... does not match its "
                            "parent %s (%s/%s/%s has sha256 %.12s...): the chain is inconsistent, nothing imported",
                            v[i].name, v[i].js.parent_content_hash, p->name, root, p->name, p->memname, p->memhash);
        if (p->memsize != v[i].memsize)
            return fks__err(FKS_EINVAL, "forkd snapshot %s: %s is %lld bytes but its parent %s's %s is %lld bytes: "
                            "forkd cannot overlay it (apply_diff needs equal sizes); nothing imported", v[i].name,
                            v[i].memname, (long long)v[i].memsize, p->name, p->memname, (long long)p->memsize);
    }
    /* A cycle: following parents from any snapshot never reaches a base. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t steps = 0;
        for (int j = (int)i; j >= 0 && rc == 0; j = v[j].parent_idx)
            if (++steps > n)
                rc = fks__err(FKS_EINVAL, "forkd tree %s has a parent cycle through %s; nothing imported", root,
                              v[i].name);
    }
    return rc;
}

/* One progress over the whole import: each snapshot's ingest reports its
** own bytes; they are added up, and the total grows by each ingest's total
** as it starts. */
struct iprog {
    fks__progress all;
    uint64_t base;               /* the bytes of the snapshots imported so far */
    uint64_t cur;                /* the total of the ingest running, once it said */
};

static void iprog_cb(void *arg, uint64_t done, uint64_t total)
{
    struct iprog *p = arg;
    if (p->cur != total) {
        fks__progress_total(&p->all, total - p->cur);
        p->cur = total;
    }
    fks__progress_set(&p->all, p->base + done);
}

int fks_import_forkd(fks_forkd_import_result *res, fks_store *s, const char *root,
                     const fks_forkd_import_opts *o)
{
    static const fks_forkd_import_opts none = {0};
    struct isnap *v = NULL;
    size_t n = 0, done = 0;
    int rc = 0, rootfd = -1;
    memset(res, 0, sizeof *res);
    if (!o)
        o = &none;
    const char *prefix = o->prefix ? o->prefix : "";
    /* ROOT itself is the caller's choice and may be reached through a
    ** link; nothing below it is. */
    if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fks__errno(errno == ENOENT ? FKS_ENOTFOUND : FKS_EIO, errno, "open forkd snapshot root %s", root);
    if ((rc = list_snaps(&v, &n, rootfd, root, prefix)) != 0)
        goto out;
    res->n_found = n;
    if (n == 0) {
        rc = fks__err(FKS_ENOTFOUND, "%s holds no forkd snapshots (no */snapshot.json or */vmstate)", root);
        goto out;
    }
    qsort(v, n, sizeof *v, cmp_name);
    if ((rc = resolve_parents(res, s, v, n, rootfd, root, prefix)) != 0)
        goto out;
    struct iprog ip = {.base = 0};
    fks__progress_init(&ip.all, o->progress, o->progress_arg, 0);
    fks_forkd_import_opts io = *o;
    io.progress = o->progress ? iprog_cb : NULL;
    io.progress_arg = &ip;
    /* Parents first: repeatedly ingest snapshots whose parent is done. */
    while (rc == 0 && done < n) {
        size_t before = done;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (v[i].done || (v[i].parent_idx >= 0 && !v[v[i].parent_idx].done))
                continue;
            ip.cur = 0;
            if ((rc = import_one(res, s, &v[i], rootfd, root, &io)) != 0) {
                fks__errctx(rc, "forkd snapshot %s (%zu of %zu imported before it)", v[i].name, done, n);
                break;
            }
            ip.base += ip.cur;
            v[i].done = 1;
            done++;
        }
        if (rc == 0 && done == before)
            rc = fks__err(FKS_EINVAL, "forkd tree %s has a parent cycle; %zu of %zu imported", root, done, n);
    }
    if (rc == 0)
        fks__progress_end(&ip.all);
out:
    res->n_imported = done;
    if (rootfd >= 0)
        close(rootfd);
    free(v);
    return rc;
}

/* ---- export ------------------------------------------------------------- */

int fks_check_forkd_tag(const char *name)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 64 && name[0] != '-';
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    }
    if (!ok)
        return fks__err(FKS_EINVAL, "'%.80s' is not a forkd tag: forkd takes [A-Za-z0-9_-]{1,64}, not starting "
                        "with '-'", name);
    return 0;
}

struct esnap {
    fks_snapinfo info;
    char name[65];             /* its forkd tag */
    int chained;               /* exported with its parent (the previous entry) */
    int reused;
    char memhash[65];          /* SHA-256 of the exported memory.bin */
    int dfd;                   /* its directory in the temporary one; -1 until made */
    char tmpdir[PATH_MAX];     /* that directory's path, for fks_restore and messages */
    char final[PATH_MAX];      /* OUT/<name>, absolute: what snapshot.json names */
    int placed;
};

/* One export: the entries to write, root first, and where. Every name in
** OUT is taken relative to outfd, every name in a snapshot's directory
** relative to its dfd. */
struct export {
    fks_store *s;
    const char *tag;           /* the snapshot asked for (messages) */
    struct esnap *es;          /* FKS_FORKD_MAX_LINKS + 1 of them */
    size_t ne;
    int outfd;                 /* OUT, opened once; -1 until opened */
    int tmpfd;                 /* OUT/<tmpname>, locked (flock) while the export runs; -1 until made */
    char outabs[PATH_MAX];     /* OUT, absolute */
    char tmpname[32];          /* TMP_PREFIX "XXXXXX"; "" until made */
    char tmproot[PATH_MAX + 32]; /* outabs/tmpname, for messages */
};

#define TMP_PREFIX ".fks-export-"

/* Removes name in dfd: a file, or a directory with what it holds, at most
** depth levels of directories counting name (export's temporary directory
** holds a directory per snapshot, which holds files: 2). Nothing is
** followed. Best effort: used on the way out of a failure. */
static void rm_in(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM) || depth <= 0)
        return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rm_in(fd, e->d_name, depth - 1);
    closedir(d);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Writes into lf (sized already) the pages of the full image ff that m's
** ranges name, at their offsets; the rest stays holes. */
static int write_overlay(int lf, const char *tmp, int ff, const char *full, const fks_diff_artifact *m,
                         uint64_t size, unsigned char *buf)
{
    int rc = 0;
    for (size_t r = 0; m && r < m->n_ranges; r++) {
        uint64_t off = m->ranges[r].pgno * FKS_PAGE_SIZE, end = off + m->ranges[r].npages * FKS_PAGE_SIZE;
        if (end > size)
            end = size;
        while (off < end) {
            size_t len = end - off > (1u << 20) ? (1u << 20) : (size_t)(end - off);
            if ((rc = fks__pread_full(ff, buf, len, (off_t)off, full)) != 0 ||
                (rc = fks__pwrite_full(lf, buf, len, (off_t)off, tmp)) != 0)
                return rc;
            off += len;
        }
    }
    if (fsync(lf) != 0)
        return fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "fsync %s", tmp);
    return 0;
}

/* Checks the overlay lf as forkd's apply_diff will read it: every page m
** names is data, and every data byte is the full image ff's (snapshot
** tag's). a and b: 1 MiB buffers. */
static int check_overlay(int lf, const char *tmp, int ff, const char *full, const fks_diff_artifact *m,
                         uint64_t size, const char *tag, unsigned char *a, unsigned char *b)
{
    int rc = 0;
    for (size_t r = 0; m && r < m->n_ranges; r++) {
        off_t off = (off_t)(m->ranges[r].pgno * FKS_PAGE_SIZE);
        off_t end = off + (off_t)(m->ranges[r].npages * FKS_PAGE_SIZE);
        if (end > (off_t)size)
            end = (off_t)size;
        if (lseek(lf, off, SEEK_DATA) != off || lseek(lf, off, SEEK_HOLE) < end)
            return fks__err(FKS_EIO, "%s: the filesystem did not keep pages written at %lld as data (it turns "
                            "zeros into holes?): forkd would read the parent's pages there; another filesystem, "
                            "or the snapshot alone with a full memory file, avoids it", tmp, (long long)off);
    }
    for (off_t pos = 0; pos < (off_t)size;) {
        off_t ds = lseek(lf, pos, SEEK_DATA);
        if (ds < 0 && errno == ENXIO)
            break;
        if (ds < 0)
            return fks__errno(FKS_EIO, errno, "SEEK_DATA %s", tmp);
        off_t he = lseek(lf, ds, SEEK_HOLE);
        if (he < 0 || he > (off_t)size)
            he = (off_t)size;
        for (off_t o = ds; o < he;) {
            size_t len = he - o > (1 << 20) ? (1u << 20) : (size_t)(he - o);
            if ((rc = fks__pread_full(lf, a, len, o, tmp)) != 0 || (rc = fks__pread_full(ff, b, len, o, full)) != 0)
                return rc;
            if (memcmp(a, b, len) != 0)
                return fks__err(FKS_EIO, "%s: a data extent near offset %lld holds other bytes than snapshot %s "
                                "(the filesystem allocates more than a page per write?): forkd's overlay would be "
                                "wrong; another filesystem, or the snapshot alone with a full memory file, avoids "
                                "it", tmp, (long long)o, tag);
            o += (off_t)len;
        }
        pos = he;
    }
    return 0;
}

/* Rewrites memory.bin in e's directory (the full image of e) as an
** overlay of its parent: the pages fks_diff names as data, holes
** elsewhere. Then re-reads every data extent of the new file and checks it
** against the full image, and that every differing page is data: what
** forkd's apply_diff copies is then exactly right (a filesystem that turns
** written zeros into holes, or allocates more than a page per write, is
** caught here). */
static int make_overlay(fks_store *s, const struct esnap *parent, const struct esnap *e)
{
    static const char tname[] = ".memory.bin.overlay";
    char full[PATH_MAX + 16], tmp[PATH_MAX + 32];
    fks_diff_report *dr = NULL;
    const fks_diff_artifact *m = NULL;
    unsigned char *a = NULL, *b = NULL;
    int ff = -1, lf = -1, rc;
    snprintf(full, sizeof full, "%s/memory.bin", e->tmpdir);
    snprintf(tmp, sizeof tmp, "%s/%s", e->tmpdir, tname);
    if ((rc = fks_diff(&dr, s, parent->info.tag, e->info.tag)) != 0)
        return rc;
    for (size_t i = 0; i < dr->n; i++)
        if (strcmp(dr->artifacts[i].name, "memory") == 0)
            m = &dr->artifacts[i];
    if (!(a = malloc(1 << 20)) || !(b = malloc(1 << 20))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    if ((ff = openat(e->dfd, "memory.bin", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
        (lf = openat(e->dfd, tname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        rc = fks__errno(FKS_EIO, errno, "open %s", ff < 0 ? full : tmp);
        goto out;
    }
    uint64_t size = e->info.memory_bytes;
    if (ftruncate(lf, (off_t)size) != 0) {
        rc = fks__errno(errno == ENOSPC || errno == EFBIG ? FKS_ENOSPC : FKS_EIO, errno, "truncate %s", tmp);
        goto out;
    }
    if ((rc = write_overlay(lf, tmp, ff, full, m, size, a)) != 0 ||
        (rc = check_overlay(lf, tmp, ff, full, m, size, e->info.tag, a, b)) != 0)
        goto out;
    if (renameat2(e->dfd, tname, e->dfd, "memory.bin", 0) != 0)
        rc = fks__errno(FKS_EIO, errno, "rename %s", tmp);
out:
    if (rc && lf >= 0)
        unlinkat(e->dfd, tname, 0);
    if (ff >= 0)
        close(ff);
    if (lf >= 0)
        close(lf);
    free(a);
    free(b);
    fks_diff_free(dr);
    return rc;
}

/* Writes snapshot.json into e's directory as forkd's serde writes a
** Snapshot: its fields in declaration order, absent options left out;
** paths are those of e's final place. rootfs: the rootfs's file name, or
** NULL. */
static int write_json(const struct esnap *e, const struct esnap *parent, const char *rootfs)
{
    char p[PATH_MAX + 32], fin[PATH_MAX + 32];
    int rc = 0, fd;
    json_object *o = json_object_new_object();
    if (!o)
        return fks__err(FKS_ENOMEM, "out of memory");
    snprintf(fin, sizeof fin, "%s/vmstate", e->final);
    json_object_object_add(o, "vmstate", json_object_new_string(fin));
    snprintf(fin, sizeof fin, "%s/memory.bin", e->final);
    json_object_object_add(o, "memory", json_object_new_string(fin));
    json_object_object_add(o, "volumes", json_object_new_array());
    if (parent) {
        json_object_object_add(o, "parent_tag", json_object_new_string(parent->name));
        json_object_object_add(o, "parent_content_hash", json_object_new_string(parent->memhash));
    }
    if (rootfs) {
        snprintf(fin, sizeof fin, "%s/%s", e->final, rootfs);
        json_object_object_add(o, "rootfs", json_object_new_string(fin));
    }
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
    snprintf(p, sizeof p, "%s/snapshot.json", e->tmpdir);
    if ((fd = openat(e->dfd, "snapshot.json", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0)
        rc = fks__errno(FKS_EIO, errno, "create %s", p);
    else {
        if ((rc = fks__pwrite_full(fd, text, strlen(text), 0, p)) == 0 && fsync(fd) != 0)
            rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "fsync %s", p);
        close(fd);
    }
    json_object_put(o);
    return rc;
}

/* Restores e into its temporary directory and completes it as forkd lays
** it out, with the absolute paths of its final place (e->final). parent:
** the previous entry if chained. fks_restore is given the directory's
** path, so that its messages name real files; what it wrote is then found
** through e->dfd, and a directory swapped meanwhile would lack vmstate. */
static int build_dir(fks_store *s, struct esnap *e, const struct esnap *parent)
{
    char p[PATH_MAX + 32];
    int rc, fd;
    if ((rc = fks_restore(NULL, s, e->info.tag, e->tmpdir, FKS_RESTORE_SYNC, NULL, NULL)) != 0)
        return rc;
    if (exists_in(e->dfd, "snapshot.json"))
        return fks__err(FKS_EINVAL, "snapshot %s has an artifact named snapshot.json: it would collide with "
                        "forkd's own file", e->info.tag);
    if (!exists_in(e->dfd, "vmstate"))
        return fks__err(FKS_EINVAL, "snapshot %s has no vmstate artifact: forkd needs one", e->info.tag);
    if (!exists_in(e->dfd, "memory.bin"))
        return fks__err(FKS_EINVAL, "snapshot %s has no memory artifact: forkd needs one", e->info.tag);
    if (parent && (rc = make_overlay(s, parent, e)) != 0)
        return rc;
    snprintf(p, sizeof p, "%s/memory.bin", e->tmpdir);
    if ((fd = openat(e->dfd, "memory.bin", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return fks__errno(FKS_EIO, errno, "open %s", p);
    rc = sha256_fd(e->memhash, fd, p);
    close(fd);
    if (rc)
        return rc;
    /* The rootfs: as rootfs.ext4 (the name forkd's packs use) unless an
    ** artifact already has that name; then it stays "rootfs". Both kept. */
    const char *rootfs = NULL;
    if (exists_in(e->dfd, "rootfs")) {
        if (exists_in(e->dfd, "rootfs.ext4"))
            rootfs = "rootfs";
        else if (renameat2(e->dfd, "rootfs", e->dfd, "rootfs.ext4", RENAME_NOREPLACE) != 0)
            return fks__errno(FKS_EIO, errno, "rename %s/rootfs", e->tmpdir);
        else
            rootfs = "rootfs.ext4";
    }
    if ((rc = write_json(e, parent, rootfs)) == 0 && fsync(e->dfd) != 0)
        rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "fsync %s", e->tmpdir);
    return rc;
}

/* 1 if directories a and b (descriptors) hold the same file names with
** the same bytes, 0 if not. */
static int same_files(int a, int b)
{
    int same = 1, na = 0, nb = 0;
    DIR *d = list_dir(a);
    if (!d)
        return 0;
    struct dirent *e;
    while (same && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        na++;
        int fa = openat(a, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        int fb = openat(b, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        char ha[65], hb[65];
        struct stat sa, sb;
        same = fa >= 0 && fb >= 0 && fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0 && S_ISREG(sa.st_mode) &&
               S_ISREG(sb.st_mode) && sa.st_size == sb.st_size && sha256_fd(ha, fa, e->d_name) == 0 &&
               sha256_fd(hb, fb, e->d_name) == 0 && strcmp(ha, hb) == 0;
        if (fa >= 0)
            close(fa);
        if (fb >= 0)
            close(fb);
    }
    closedir(d);
    if (!same || !(d = list_dir(b)))
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            nb++;
    closedir(d);
    return na == nb;
}

/* Picks the entries: the head (named name), then its ancestors while
** chaining is possible (same memory size, forkd's link limit; flat: the
** head alone), and leaves them root first. chain is fks_chain's, root
** first. */
static int pick_entries(struct export *x, const fks_snapinfo *chain, size_t nchain, const char *name, int flat)
{
    x->ne = 0;
    for (size_t k = nchain; k-- > 0;) {
        struct esnap *e = &x->es[x->ne];
        e->info = chain[k];
        if (x->ne > 0) {
            if (e->info.memory_bytes != x->es[x->ne - 1].info.memory_bytes || e->info.memory_bytes == 0)
                break;
            if (fks_check_forkd_tag(e->info.tag) != 0)
                return fks__errctx(FKS_EINVAL, "snapshot %s: its ancestor %s needs a forkd name", x->tag,
                                   e->info.tag);
        }
        const char *n = x->ne == 0 ? name : e->info.tag;
        memcpy(e->name, n, strlen(n) + 1);
        for (size_t j = 0; j < x->ne; j++)
            if (strcmp(x->es[j].name, e->name) == 0)
                return fks__err(FKS_EINVAL, "snapshot %s: forkd name %s is also the tag of its ancestor: the two "
                                "directories would have one name", x->tag, e->name);
        x->ne++;
        if (flat || x->ne == FKS_FORKD_MAX_LINKS + 1)
            break;
    }
    for (size_t i = 0; i < x->ne / 2; i++) {
        struct esnap t = x->es[i];
        x->es[i] = x->es[x->ne - 1 - i];
        x->es[x->ne - 1 - i] = t;
    }
    for (size_t i = 1; i < x->ne; i++)
        x->es[i].chained = 1;
    return 0;
}

/* Opens OUT (created if missing; OUT itself may be reached through a
** link, as it is the caller's choice) and removes what exports killed
** before their end left in it: a temporary directory whose lock no one
** holds. */
static int open_out(struct export *x, const char *outroot)
{
    char proc[32];
    if (mkdir(outroot, 0700) != 0 && errno != EEXIST)
        return fks__errno(FKS_EIO, errno, "create %s", outroot);
    if ((x->outfd = open(outroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fks__errno(FKS_EIO, errno, "open %s", outroot);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", x->outfd);
    if (!realpath(proc, x->outabs))
        return fks__errno(FKS_EIO, errno, "resolve %s", outroot);
    DIR *d = list_dir(x->outfd);
    if (!d)
        return fks__errno(FKS_EIO, errno, "list %s", x->outabs);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
            continue;
        int lfd = openat(x->outfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) == 0)
            rm_in(x->outfd, e->d_name, 2);
        if (lfd >= 0)
            close(lfd);
    }
    closedir(d);
    return 0;
}

/* Creates the temporary directory in OUT and takes its lock, which says
** to other exports that it is in use. mkdtemp goes through
** /proc/self/fd/N, so the directory is made in OUT as opened. */
static int make_tmproot(struct export *x)
{
    for (int tries = 0; tries < 10; tries++) {
        char t[64];
        struct stat st;
        snprintf(t, sizeof t, "/proc/self/fd/%d/" TMP_PREFIX "XXXXXX", x->outfd);
        if (!mkdtemp(t))
            return fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "create a temporary directory in %s",
                              x->outabs);
        memcpy(x->tmpname, base_name(t), strlen(base_name(t)) + 1);
        snprintf(x->tmproot, sizeof x->tmproot, "%s/%s", x->outabs, x->tmpname);
        x->tmpfd = openat(x->outfd, x->tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* Another export's open_out may have taken it for a dead one's
        ** between mkdtemp and the lock: it is gone then; make another. */
        if (x->tmpfd < 0 && errno == ENOENT)
            continue;
        if (x->tmpfd < 0 || flock(x->tmpfd, LOCK_EX) != 0) {
            int rc = fks__errno(FKS_EIO, errno, "open and lock %s", x->tmproot);
            unlinkat(x->outfd, x->tmpname, AT_REMOVEDIR);
            if (x->tmpfd >= 0)
                close(x->tmpfd);
            x->tmpfd = -1;
            return rc;
        }
        if (fstat(x->tmpfd, &st) == 0 && st.st_nlink > 0)
            return 0;
        close(x->tmpfd);
        x->tmpfd = -1;
    }
    return fks__err(FKS_EIO, "create a temporary directory in %s: each one made was removed at once", x->outabs);
}

/* Builds every entry's directory in the temporary directory, root first. */
static int build_all(struct export *x)
{
    int rc = 0;
    for (size_t i = 0; i < x->ne && rc == 0; i++) {
        struct esnap *e = &x->es[i];
        if ((rc = fks__path(e->tmpdir, sizeof e->tmpdir, "%s/%s", x->tmproot, e->name)) != 0 ||
            (rc = fks__path(e->final, sizeof e->final, "%s/%s", x->outabs, e->name)) != 0)
            break;
        if (mkdirat(x->tmpfd, e->name, 0700) != 0 ||
            (e->dfd = openat(x->tmpfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "create %s", e->tmpdir);
            break;
        }
        if ((rc = build_dir(x->s, e, e->chained ? e - 1 : NULL)) != 0)
            rc = fks__errctx(rc, "snapshot %s as %s (nothing written)", e->info.tag, e->final);
    }
    return rc;
}

/* An existing directory is reused if identical, else refused, before
** anything is placed. */
static int check_existing(struct export *x)
{
    for (size_t i = 0; i < x->ne; i++) {
        struct esnap *e = &x->es[i];
        struct stat st;
        if (fstatat(x->outfd, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        int fd = S_ISDIR(st.st_mode) ? openat(x->outfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                                     : -1;
        e->reused = fd >= 0 && same_files(e->dfd, fd) == 1;
        if (fd >= 0)
            close(fd);
        if (!e->reused)
            return fks__err(FKS_EEXIST, "directory %s already exists and differs from snapshot %s (nothing "
                            "written)", e->final, e->info.tag);
    }
    return 0;
}

/* Takes a placed directory back into the temporary one. If that fails,
** it is removed while the name still holds it (our inode). */
static void unplace(struct export *x, struct esnap *e)
{
    struct stat ours, there;
    if (renameat2(x->outfd, e->name, x->tmpfd, e->name, RENAME_NOREPLACE) == 0)
        e->placed = 0;
    else if (fstat(e->dfd, &ours) == 0 && fstatat(x->outfd, e->name, &there, AT_SYMLINK_NOFOLLOW) == 0 &&
             ours.st_dev == there.st_dev && ours.st_ino == there.st_ino) {
        rm_in(x->outfd, e->name, 1);
        e->placed = 0;
    }
}

/* Renames the directories not reused into place, root first (a link is
** never in OUT before its parent), then syncs OUT; all or nothing: on a
** failure the ones placed are taken back, newest first. */
static int place_dirs(struct export *x)
{
    int rc = 0;
    for (size_t i = 0; i < x->ne && rc == 0; i++) {
        struct esnap *e = &x->es[i];
        if (e->reused)
            continue;
        if (renameat2(x->tmpfd, e->name, x->outfd, e->name, RENAME_NOREPLACE) != 0) {
            int err = errno;
            rc = fks__errno(err == EEXIST ? FKS_EEXIST : err == ENOSPC ? FKS_ENOSPC : FKS_EIO, err,
                            "rename %s to %s (nothing written)", e->tmpdir, e->final);
            break;
        }
        e->placed = 1;
    }
    if (rc == 0 && fsync(x->outfd) != 0)
        rc = fks__errno(FKS_EIO, errno, "fsync directory %s", x->outabs);
    if (rc)
        for (size_t i = x->ne; i-- > 0;)
            if (x->es[i].placed)
                unplace(x, &x->es[i]);
    return rc;
}

int fks_export_forkd(fks_forkd_export_result *res, fks_store *s, const char *tag, const char *outroot,
                     const fks_forkd_export_opts *o)
{
    static const fks_forkd_export_opts none = {0};
    fks_snapinfo *chain = NULL;
    size_t nchain = 0;
    struct export x = {.s = s, .tag = tag, .outfd = -1, .tmpfd = -1};
    int rc;
    if (res)
        memset(res, 0, sizeof *res);
    if (!o)
        o = &none;
    const char *name = o->name ? o->name : tag;
    if ((rc = fks_chain(&chain, &nchain, s, tag)) != 0)
        return rc;
    if ((rc = fks_check_forkd_tag(name)) != 0) {
        rc = fks__errctx(rc, "snapshot %s", tag);
        goto out;
    }
    if (!(x.es = calloc(FKS_FORKD_MAX_LINKS + 1, sizeof *x.es))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i <= FKS_FORKD_MAX_LINKS; i++)
        x.es[i].dfd = -1;
    if ((rc = pick_entries(&x, chain, nchain, name, o->flat)) != 0 || (rc = open_out(&x, outroot)) != 0 ||
        (rc = make_tmproot(&x)) != 0 || (rc = build_all(&x)) != 0 || (rc = check_existing(&x)) != 0 ||
        (rc = place_dirs(&x)) != 0)
        goto out;
    if (res) {
        res->n = x.ne;
        for (size_t i = 0; i < x.ne; i++) {
            memcpy(res->names[i], x.es[i].name, sizeof res->names[i]);
            res->reused[i] = x.es[i].reused;
        }
    }
out:
    for (size_t i = 0; x.es && i < x.ne; i++) {
        if (x.es[i].dfd >= 0)
            close(x.es[i].dfd);
        if (x.tmpfd >= 0 && !x.es[i].placed)
            rm_in(x.tmpfd, x.es[i].name, 1);
    }
    if (x.tmpfd >= 0) {
        unlinkat(x.outfd, x.tmpname, AT_REMOVEDIR);
        close(x.tmpfd);          /* the lock goes last */
    }
    if (x.outfd >= 0)
        close(x.outfd);
    free(x.es);
    free(chain);
    return rc;
}
