/*
** forkd.c: moving forkd snapshot directories in and out of a store.
**
** A forkd snapshot root holds one directory per snapshot:
**
**   ROOT/<tag>/snapshot.json   {"vmstate": ABS, "memory": ABS,
**                               "parent_tag": T?, "parent_content_hash": HEX?,
**                               "rootfs": ABS?, "volumes": ...}
**   ROOT/<tag>/vmstate
**   ROOT/<tag>/memory.bin      a Full memory file, or
**   ROOT/<tag>/diff.bin        a sparse Diff over parent_tag's memory
**   ROOT/<tag>/rootfs.ext4     sometimes
**
** Import reads the files inside each snapshot's own directory, never the
** absolute paths in snapshot.json: a tree handed over by another tool
** must not make forkstore read files outside it. The JSON paths only tell
** which memory file is meant (their base names must match a file there).
** Before anything is ingested, every parent_content_hash is checked. It
** must be the SHA-256 of the parent's full memory: the parent's
** memory.bin, or, for a parent stored as diff.bin, the memory rebuilt
** from the tree's own chain of diffs down to a memory.bin (the SHA-256 of
** the diff.bin file itself is accepted too). A mismatch refuses the whole
** import and names the child and parent. Snapshots are then ingested
** parents first, with lineage kept and everything deduplicated.
**
** Export restores a snapshot into OUT/<tag>/ as forkd lays it out: a full
** memory.bin, vmstate, rootfs.ext4 when stored, and snapshot.json with
** absolute paths (and parent_tag when the snapshot has a parent).
*/
#include "forkd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forkstore.h"
#include "util.h"

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

/* SHA-256 of a file, as lower-case hex. */
static int sha256_file(char out[65], const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return fks__errno(FKS_EIO, errno, "open %s", path);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fks__err(FKS_EINVAL, "%s is not a regular file", path);
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20), md[32];
    int rc = 0;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = fks__err(FKS_ENOMEM, "sha256: cannot initialise");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fks__errno(FKS_EIO, errno, "read %s", path);
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    }
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return rc;
}

struct isnap;
static int chain_sha256(char out[65], const struct isnap *v, int idx);

struct isnap {
    char name[129];            /* directory name = tag without prefix */
    char tag[257];
    char parent[257];          /* store tag of the parent, "" if root */
    int parent_idx;            /* index in the tree, -1 if outside it */
    char dir[PATH_MAX];
    char memory[PATH_MAX];
    int diff;
    char rootfs[PATH_MAX];     /* "" if none */
    struct forkd_snap js;
    int done;
};

static int read_small(char **out, size_t *len, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return fks__errno(FKS_EIO, errno, "open %s", path);
    char *buf = malloc(FORKD_JSON_MAX + 1);
    size_t n = 0;
    int rc = 0;
    if (!buf) {
        close(fd);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, FORKD_JSON_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = fks__errno(FKS_EIO, errno, "read %s", path);
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > FORKD_JSON_MAX) {
            rc = fks__err(FKS_EINVAL, "%s is larger than %d bytes", path, FORKD_JSON_MAX);
            break;
        }
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int is_file(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* Reads one snapshot directory. */
static int load_snap(struct isnap *v, const char *root, const char *name, const char *prefix)
{
    char p[PATH_MAX + 32];
    char *json = NULL;
    size_t len = 0;
    int rc;
    memset(v, 0, sizeof *v);
    v->parent_idx = -1;
    if (strlen(name) >= sizeof v->name)
        return fks__err(FKS_EINVAL, "forkd snapshot directory name too long: %.40s...", name);
    memcpy(v->name, name, strlen(name) + 1);
    if ((rc = fks__path(v->tag, sizeof v->tag, "%s%s", prefix, name)) != 0 || (rc = fks_check_tag(v->tag)) != 0 ||
        (rc = fks__path(v->dir, sizeof v->dir, "%s/%s", root, name)) != 0 ||
        (rc = fks__path(p, sizeof p, "%s/snapshot.json", v->dir)) != 0)
        return fks__errctx(rc, "forkd snapshot %s", name);
    if ((rc = read_small(&json, &len, p)) != 0)
        return rc;
    rc = forkd_parse(&v->js, json, len);
    free(json);
    if (rc)
        return fks__errctx(rc, "%s", p);
    const char *mb = base_name(v->js.memory);
    if (strcmp(mb, "memory.bin") != 0 && strcmp(mb, "diff.bin") != 0)
        return fks__err(FKS_EINVAL, "%s: \"memory\" names %s; expected memory.bin or diff.bin", p, mb);
    v->diff = strcmp(mb, "diff.bin") == 0;
    if ((rc = fks__path(v->memory, sizeof v->memory, "%s/%s", v->dir, mb)) != 0)
        return rc;
    if (!is_file(v->memory))
        return fks__err(FKS_ENOTFOUND, "forkd snapshot %s: %s is missing (snapshot.json names %s)", name,
                        v->memory, v->js.memory);
    if (v->diff && !v->js.parent_tag[0])
        return fks__err(FKS_EINVAL, "forkd snapshot %s has a diff.bin but no parent_tag", name);
    if (strcmp(base_name(v->js.vmstate), "vmstate") != 0 ||
        fks__path(p, sizeof p, "%s/vmstate", v->dir) != 0 || !is_file(p))
        return fks__err(FKS_ENOTFOUND, "forkd snapshot %s: no vmstate file in %s", name, v->dir);
    if (fks__path(v->rootfs, sizeof v->rootfs, "%s/rootfs.ext4", v->dir) != 0 || !is_file(v->rootfs))
        v->rootfs[0] = 0;
    if (!v->rootfs[0] && v->js.rootfs[0])
        return fks__err(FKS_ENOTFOUND, "forkd snapshot %s: snapshot.json names a rootfs but %s/rootfs.ext4 "
                        "is missing", name, v->dir);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct isnap *)a)->name, ((const struct isnap *)b)->name);
}

/* SHA-256 of snapshot idx's full memory, rebuilt page by page from its
** chain of diffs in the tree down to a memory.bin. FKS_ENOTFOUND if the
** chain leaves the tree. */
static int chain_sha256(char out[65], const struct isnap *v, int idx)
{
    enum { MAXD = 256 };
    int chain[MAXD], depth = 0, rc = 0;
    for (int i = idx; depth < MAXD; i = v[i].parent_idx) {
        if (i < 0)
            return fks__err(FKS_ENOTFOUND, "chain of %s leaves the tree", v[idx].name);
        chain[depth++] = i;
        if (!v[i].diff)
            break;
    }
    if (depth == MAXD || v[chain[depth - 1]].diff)
        return fks__err(FKS_EINVAL, "chain of %s too deep", v[idx].name);
    int fds[MAXD];
    off_t size = -1;
    for (int k = 0; k < depth; k++)
        fds[k] = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char page[FKS_PAGE_SIZE], md[32];
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = fks__err(FKS_ENOMEM, "sha256: cannot initialise");
        goto out;
    }
    for (int k = 0; k < depth && rc == 0; k++) {
        struct stat st;
        fds[k] = open(v[chain[k]].memory, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fds[k] < 0 || fstat(fds[k], &st) != 0)
            rc = fks__errno(FKS_EIO, errno, "open %s", v[chain[k]].memory);
        else if (!S_ISREG(st.st_mode))
            rc = fks__err(FKS_EINVAL, "%s is not a regular file", v[chain[k]].memory);
        else if (size >= 0 && st.st_size != size)
            rc = fks__err(FKS_EINVAL, "%s and its child's diff differ in size", v[chain[k]].memory);
        else
            size = st.st_size;
    }
    for (off_t off = 0; rc == 0 && off < size; off += FKS_PAGE_SIZE) {
        int k = 0;
        /* The nearest layer with data at off holds the page. */
        while (k < depth - 1) {
            off_t d = lseek(fds[k], off, SEEK_DATA);
            if (d >= 0 && d < off + FKS_PAGE_SIZE)
                break;
            k++;
        }
        size_t len = size - off < FKS_PAGE_SIZE ? (size_t)(size - off) : FKS_PAGE_SIZE;
        if ((rc = fks__pread_full(fds[k], page, len, off, v[chain[k]].memory)) == 0)
            EVP_DigestUpdate(ctx, page, len);
    }
    if (rc == 0) {
        unsigned mdlen = 0;
        EVP_DigestFinal_ex(ctx, md, &mdlen);
        for (unsigned i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
out:
    for (int k = 0; k < depth; k++)
        if (fds[k] >= 0)
            close(fds[k]);
    EVP_MD_CTX_free(ctx);
    return rc;
}

int fks_import_forkd(size_t *n_imported, fks_store *s, const char *root, const char *prefix,
                     fks_progress_fn progress, void *progress_arg)
{
    struct isnap *v = NULL;
    size_t n = 0, alloc = 0, done = 0;
    int rc = 0;
    DIR *d = opendir(root);
    *n_imported = 0;
    if (!prefix)
        prefix = "";
    if (!d)
        return fks__errno(FKS_EIO, errno, "open forkd snapshot root %s", root);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        if (e->d_name[0] == '.' || fks__path(p, sizeof p, "%s/%s/snapshot.json", root, e->d_name) != 0 ||
            !is_file(p))
            continue;
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            struct isnap *nv = realloc(v, alloc * sizeof *v);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        if ((rc = load_snap(&v[n], root, e->d_name, prefix)) != 0)
            break;
        n++;
    }
    closedir(d);
    if (rc)
        goto out;
    if (n == 0) {
        rc = fks__err(FKS_ENOTFOUND, "%s holds no forkd snapshots (no */snapshot.json)", root);
        goto out;
    }
    qsort(v, n, sizeof *v, cmp_name);
    /* Resolve parents; check every parent_content_hash before ingesting. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!v[i].js.parent_tag[0])
            continue;
        for (size_t j = 0; j < n; j++)
            if (strcmp(v[j].name, v[i].js.parent_tag) == 0)
                v[i].parent_idx = (int)j;
        if ((rc = fks__path(v[i].parent, sizeof v[i].parent, "%s%s", v[i].parent_idx >= 0 ? prefix : "",
                            v[i].js.parent_tag)) != 0)
            break;
        if (v[i].parent_idx < 0) {
            fks_snapinfo info;
            if (fks_get(&info, s, v[i].parent) != 0)
                rc = fks__err(FKS_ENOTFOUND, "forkd snapshot %s: parent %s is neither in %s nor in the store",
                              v[i].name, v[i].js.parent_tag, root);
            continue;
        }
        if (!v[i].js.parent_content_hash[0])
            continue;
        char got[65], full[65] = "";
        if ((rc = sha256_file(got, v[v[i].parent_idx].memory)) != 0)
            break;
        if (strcmp(got, v[i].js.parent_content_hash) != 0 && v[v[i].parent_idx].diff &&
            chain_sha256(full, v, v[i].parent_idx) == 0 && strcmp(full, v[i].js.parent_content_hash) == 0)
            continue;
        if (strcmp(got, v[i].js.parent_content_hash) != 0)
            rc = fks__err(FKS_ECORRUPT, "forkd snapshot %s: parent_content_hash %.12s... does not match "
                          "its parent %s (%s has sha256 %.12s...): the chain is inconsistent, nothing "
                          "imported", v[i].name, v[i].js.parent_content_hash, v[i].js.parent_tag,
                          v[v[i].parent_idx].memory, got);
    }
    /* Parents first: repeatedly ingest snapshots whose parent is done. */
    while (rc == 0 && done < n) {
        size_t before = done;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (v[i].done || (v[i].parent_idx >= 0 && !v[v[i].parent_idx].done))
                continue;
            char vm[PATH_MAX + 16];
            snprintf(vm, sizeof vm, "%s/vmstate", v[i].dir);
            fks_artifact_in a[3] = {{"memory", v[i].memory, v[i].diff}, {"vmstate", vm, 0}};
            size_t na = 2;
            if (v[i].rootfs[0])
                a[na++] = (fks_artifact_in){"rootfs", v[i].rootfs, 0};
            fks_ingest_opts o = {.tag = v[i].tag, .parent = v[i].parent[0] ? v[i].parent : NULL,
                                 .artifacts = a, .n_artifacts = na, .progress = progress,
                                 .progress_arg = progress_arg, .pause_ms = -1, .snapshot_ms = -1,
                                 .diff_bytes = -1, .no_follow = 1};
            if ((rc = fks_ingest(NULL, s, &o)) != 0) {
                fks__errctx(rc, "import %s (%zu of %zu imported before it)", v[i].name, done, n);
                break;
            }
            v[i].done = 1;
            done++;
        }
        if (rc == 0 && done == before)
            rc = fks__err(FKS_EINVAL, "forkd tree %s has a parent cycle; %zu of %zu imported", root, done, n);
    }
    *n_imported = done;
out:
    free(v);
    return rc;
}

int fks_export_forkd(fks_store *s, const char *tag, const char *outroot)
{
    fks_snapinfo info;
    char dir[PATH_MAX], p[PATH_MAX + 32], absdir[PATH_MAX];
    int rc;
    if ((rc = fks_get(&info, s, tag)) != 0)
        return rc;
    if (mkdir(outroot, 0700) != 0 && errno != EEXIST)
        return fks__errno(FKS_EIO, errno, "create %s", outroot);
    if ((rc = fks__path(dir, sizeof dir, "%s/%s", outroot, tag)) != 0)
        return rc;
    if (mkdir(dir, 0700) != 0)
        return errno == EEXIST ? fks__err(FKS_EEXIST, "%s already exists", dir)
                               : fks__errno(FKS_EIO, errno, "create %s", dir);
    if ((rc = fks_restore(NULL, s, tag, dir, 0, NULL, NULL)) != 0)
        return rc;
    if (!realpath(dir, absdir))
        return fks__errno(FKS_EIO, errno, "resolve %s", dir);
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    snprintf(from, sizeof from, "%s/rootfs", dir);
    snprintf(to, sizeof to, "%s/rootfs.ext4", dir);
    int has_rootfs = is_file(from);
    if (has_rootfs && rename(from, to) != 0)
        return fks__errno(FKS_EIO, errno, "rename %s", from);
    json_object *o = json_object_new_object();
    snprintf(p, sizeof p, "%s/vmstate", absdir);
    json_object_object_add(o, "vmstate", json_object_new_string(p));
    snprintf(p, sizeof p, "%s/memory.bin", absdir);
    json_object_object_add(o, "memory", json_object_new_string(p));
    if (info.parent[0])
        json_object_object_add(o, "parent_tag", json_object_new_string(info.parent));
    if (has_rootfs) {
        snprintf(p, sizeof p, "%s/rootfs.ext4", absdir);
        json_object_object_add(o, "rootfs", json_object_new_string(p));
    }
    json_object_object_add(o, "volumes", json_object_new_array());
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    snprintf(p, sizeof p, "%s/snapshot.json", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        rc = fks__errno(FKS_EIO, errno, "create %s", p);
    else {
        rc = fks__pwrite_full(fd, text, strlen(text), 0, p);
        close(fd);
    }
    json_object_put(o);
    return rc;
}
