/*
** remote_engine.c: the engine side of the remote tier: the remote table
** (migrations/0007_remote.sql) and the store's directory. The only module
** that reads or writes the remote table; remote.c above it uses the public
** API and remote.h.
**
** Rows are validated on the way in (fks_remote_add) and on the way out
** (a row a damaged catalog holds is FKS_ECORRUPT, not a request to some
** other endpoint). An encrypted remote's row holds its key file's path and
** key id (migrations/0009_remote_encrypt.sql), never the key: add reads
** the key file once to check it and record its id.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "remote.h"
#include "seal.h"
#include "store.h"
#include "util.h"

const char *remote__store_dir(const fks_store *s)
{
    return s->dir;
}

static int check_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return fks__err(FKS_EINVAL, "bucket name '%s': give 3 to 63 characters", b);
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return fks__err(FKS_EINVAL, "bucket name '%s': only a-z, 0-9, '-' and '.'", b);
    return 0;
}

static int check_prefix(const char *p)
{
    if (strlen(p) > 400)
        return fks__err(FKS_EINVAL, "key prefix '%.40s...' is longer than 400 characters", p);
    if (p[0] == '/' || (p[0] && p[strlen(p) - 1] == '/') || strstr(p, "//"))
        return fks__err(FKS_EINVAL, "key prefix '%s': no leading, trailing or double '/'", p);
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c < 0x21 || *c == 0x7f || *c == '\\')
            return fks__err(FKS_EINVAL, "key prefix '%s': no blanks, control characters or '\\\\'", p);
    return 0;
}

static int check_endpoint(const char *e)
{
    size_t n = strlen(e);
    const char *h = strncmp(e, "http://", 7) == 0 ? e + 7 : strncmp(e, "https://", 8) == 0 ? e + 8 : NULL;
    if (!h || !*h || *h == ':' || n >= 500 || strpbrk(h, "/?#@ \t\r\n"))
        return fks__err(FKS_EINVAL, "endpoint '%s': give http://HOST[:PORT] or https://HOST[:PORT]", e);
    const char *colon = strrchr(h, ':');
    if (colon && !strchr(colon, ']')) {     /* a port, not part of an [IPv6] address */
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || port < 1 || port > 65535)
            return fks__err(FKS_EINVAL, "endpoint '%s': the port must be 1 to 65535", e);
    }
    return 0;
}

static int check_region(const char *r)
{
    if (strlen(r) > 60)
        return fks__err(FKS_EINVAL, "region '%s' is too long", r);
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return fks__err(FKS_EINVAL, "region '%s': only a-z, 0-9 and '-'", r);
    return 0;
}

int fks_remote_parse_url(fks_remote *out, const char *url)
{
    if (strncmp(url, "s3://", 5) != 0)
        return fks__err(FKS_EINVAL, "remote URL '%s': give s3://BUCKET[/PREFIX]", url);
    const char *b = url + 5, *sl = strchr(b, '/');
    size_t bl = sl ? (size_t)(sl - b) : strlen(b);
    if (bl >= sizeof out->bucket)
        return fks__err(FKS_EINVAL, "remote URL '%s': bucket name longer than 63 characters", url);
    char bucket[64], prefix[512];
    memcpy(bucket, b, bl);
    bucket[bl] = 0;
    const char *p = sl ? sl + 1 : "";
    if (strlen(p) >= sizeof prefix)
        return fks__err(FKS_EINVAL, "remote URL '%s': prefix too long", url);
    memcpy(prefix, p, strlen(p) + 1);
    size_t pl = strlen(prefix);
    if (pl && prefix[pl - 1] == '/')     /* s3://b/p/ means s3://b/p */
        prefix[pl - 1] = 0;
    int rc = check_bucket(bucket);
    if (rc == 0)
        rc = check_prefix(prefix);
    if (rc)
        return fks__errctx(rc, "remote URL '%s'", url);
    snprintf(out->bucket, sizeof out->bucket, "%s", bucket);
    snprintf(out->prefix, sizeof out->prefix, "%s", prefix);
    return 0;
}

static int check_all(const fks_remote *r)
{
    int rc = fks_check_name(r->name);
    if (rc == 0)
        rc = check_bucket(r->bucket);
    if (rc == 0)
        rc = check_prefix(r->prefix);
    if (rc == 0)
        rc = check_endpoint(r->endpoint);
    if (rc == 0)
        rc = check_region(r->region);
    if (rc == 0 && r->key_file[0] && r->key_file[0] != '/')
        rc = fks__err(FKS_EINVAL, "key file '%s' is not an absolute path", r->key_file);
    return rc;
}

static int check_key_id(const char *id)
{
    if (strlen(id) != 2 * SEAL_ID_LEN)
        return -1;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return -1;
    return 0;
}

int fks_remote_keygen(const char *path)
{
    return seal_keygen(path);
}

int fks_remote_add(fks_store *s, const fks_remote *r)
{
    fks_remote a = *r;
    a.key_id[0] = 0;
    if (r->key_file[0]) {
        /* The key file is checked now (it is a key, only its owner may
        ** read it) and named by its absolute path: push and pull may run
        ** from another directory. */
        char *abs = realpath(r->key_file, NULL);
        seal_key k;
        int krc = seal_key_load(&k, abs ? abs : r->key_file);
        if (krc == 0 && !abs)
            krc = fks__errno(FKS_EIO, errno, "key file %s: its absolute path", r->key_file);
        else if (krc == 0 && strlen(abs) >= sizeof a.key_file)
            krc = fks__err(FKS_EINVAL, "key file path %.40s... is too long", abs);
        if (krc == 0) {
            snprintf(a.key_file, sizeof a.key_file, "%s", abs);
            seal_key_id_hex(a.key_id, &k);
        }
        seal_key_wipe(&k);
        free(abs);
        if (krc)
            return fks__errctx(krc, "remote %s", r->name);
    }
    int rc = check_all(&a);
    if (rc)
        return fks__errctx(rc, "remote %s", r->name);
    r = &a;
    if ((rc = cat_begin(s)))
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = cat_prepare(s->db, &st, "INSERT INTO remote(name, bucket, prefix, endpoint, region, created_ms, "
                                      "key_file, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) == 0) {
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->bucket, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r->prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->endpoint, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->region[0] ? r->region : "us-east-1", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, fks__wall_ms());
        if (r->key_file[0]) {
            sqlite3_bind_text(st, 7, r->key_file, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 8, r->key_id, -1, SQLITE_STATIC);
        }
        int src = sqlite3_step(st);
        if ((src & 0xff) == SQLITE_CONSTRAINT)
            rc = fks__err(FKS_EEXIST, "remote %s already exists (remove it first: remote rm)", r->name);
        else if (src != SQLITE_DONE)
            rc = cat_err(s->db, src, "catalog: insert remote");
    }
    sqlite3_finalize(st);
    return cat_end(s, rc);
}

static int copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    if (!v || strlen((const char *)v) >= cap)
        return -1;
    memcpy(dst, v, strlen((const char *)v) + 1);
    return 0;
}

static int row(fks_remote *r, sqlite3_stmt *st)
{
    memset(r, 0, sizeof *r);
    if (copy_col(r->name, sizeof r->name, st, 0) || copy_col(r->bucket, sizeof r->bucket, st, 1) ||
        copy_col(r->prefix, sizeof r->prefix, st, 2) || copy_col(r->endpoint, sizeof r->endpoint, st, 3) ||
        copy_col(r->region, sizeof r->region, st, 4) ||
        (sqlite3_column_type(st, 6) != SQLITE_NULL &&
         (copy_col(r->key_file, sizeof r->key_file, st, 6) || copy_col(r->key_id, sizeof r->key_id, st, 7) ||
          !r->key_file[0] || check_key_id(r->key_id))) ||
        (sqlite3_column_type(st, 6) == SQLITE_NULL && sqlite3_column_type(st, 7) != SQLITE_NULL) || check_all(r))
        return fks__err(FKS_ECORRUPT, "catalog: row of remote '%s' is malformed",
                        sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?");
    r->created_ms = sqlite3_column_int64(st, 5);
    return 0;
}

#define COLS "SELECT name, bucket, prefix, endpoint, region, created_ms, key_file, key_id FROM remote "

int fks_remote_list(fks_remote **out, size_t *n, fks_store *s)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    fks_remote *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = cat_prepare(s->db, &st, COLS "ORDER BY name"), src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            fks_remote *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        rc = row(&v[cnt++], st);
    }
    if (rc == 0)
        rc = cat_done(s->db, src, "catalog: list remotes");
    sqlite3_finalize(st);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int fks_remote_get(fks_remote *out, fks_store *s, const char *name)
{
    if (!name) {
        fks_remote *v;
        size_t n;
        int rc = fks_remote_list(&v, &n, s);
        if (rc)
            return rc;
        if (n == 1)
            *out = v[0];
        free(v);
        if (n == 0)
            return fks__err(FKS_ENOTFOUND, "the store has no remote (add one: remote add)");
        if (n > 1)
            return fks__err(FKS_EINVAL, "the store has %zu remotes: name one", n);
        return 0;
    }
    sqlite3_stmt *st = NULL;
    int rc = cat_prepare(s->db, &st, COLS "WHERE name = ?");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            rc = row(out, st);
        else if (src == SQLITE_DONE)
            rc = fks__err(FKS_ENOTFOUND, "remote %s not found", name);
        else
            rc = cat_err(s->db, src, "catalog: read remote");
    }
    sqlite3_finalize(st);
    return rc;
}

int fks_remote_rm(fks_store *s, const char *name)
{
    int rc = cat_begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = cat_prepare(s->db, &st, "DELETE FROM remote WHERE name = ?")) == 0) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = cat_err(s->db, src, "catalog: delete remote");
        else if (sqlite3_changes(s->db) == 0)
            rc = fks__err(FKS_ENOTFOUND, "remote %s not found", name);
    }
    sqlite3_finalize(st);
    return cat_end(s, rc);
}

int remote__set_versions(fks_store *s, const char *tag, const char *fc_version, const char *format_version)
{
    int rc = cat_begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    /* Only versions the snapshot lacks: a pull never overwrites what the
    ** store recorded itself. */
    if ((rc = cat_prepare(s->db, &st, "UPDATE snapshot SET fc_version = coalesce(fc_version, ?2),"
                          " format_version = coalesce(format_version, ?3) WHERE tag = ?1")) == 0) {
        sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
        if (fc_version[0])
            sqlite3_bind_text(st, 2, fc_version, -1, SQLITE_STATIC);
        if (format_version[0])
            sqlite3_bind_text(st, 3, format_version, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = cat_err(s->db, src, "catalog: record the versions of pulled snapshot");
        else if (sqlite3_changes(s->db) == 0)
            rc = fks__err(FKS_ENOTFOUND, "snapshot %s not found", tag);
    }
    sqlite3_finalize(st);
    return cat_end(s, rc);
}
