/*
** lineage.c: listing snapshots, walking chains, removing snapshots, and
** read-only SQL for users.
**
** Removing a snapshot (rmi) is one transaction: its children are
** re-parented to its own parent and its rows (snapshot, artifacts, page
** maps) go. Children keep their own complete page maps (pmap.c), so they
** stay restorable byte for byte without any rewriting. The pages only it
** referenced stay in the index until gc, but nothing reaches them.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "manifest.h"
#include "store.h"
#include "util.h"

#define SNAP_SELECT \
    "SELECT s.id, s.tag, coalesce(p.tag, ''), s.created_ms, " \
    " (SELECT coalesce(sum(size), 0) FROM artifact WHERE snapshot_id = s.id), " \
    " (SELECT coalesce(sum(size), 0) FROM artifact WHERE snapshot_id = s.id AND name = 'memory'), " \
    " s.stored_bytes, " \
    " EXISTS (SELECT 1 FROM artifact WHERE snapshot_id = s.id AND name = 'rootfs'), " \
    " coalesce(s.pause_ms, -1), coalesce(s.snapshot_ms, -1), coalesce(s.ingest_ms, -1), " \
    " coalesce(s.diff_bytes, -1), s.parent_id " \
    "FROM snapshot s LEFT JOIN snapshot p ON p.id = s.parent_id "

static void row_info(fks_snapinfo *i, sqlite3_stmt *st)
{
    memset(i, 0, sizeof *i);
    i->id = sqlite3_column_int64(st, 0);
    snprintf(i->tag, sizeof i->tag, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(i->parent, sizeof i->parent, "%s", (const char *)sqlite3_column_text(st, 2));
    i->created_ms = sqlite3_column_int64(st, 3);
    i->logical_bytes = (uint64_t)sqlite3_column_int64(st, 4);
    i->memory_bytes = (uint64_t)sqlite3_column_int64(st, 5);
    i->stored_bytes = (uint64_t)sqlite3_column_int64(st, 6);
    i->has_rootfs = sqlite3_column_int(st, 7);
    i->pause_ms = sqlite3_column_int64(st, 8);
    i->snapshot_ms = sqlite3_column_int64(st, 9);
    i->ingest_ms = sqlite3_column_int64(st, 10);
    i->diff_bytes = sqlite3_column_int64(st, 11);
}

/* Depth of snapshot id by walking parent links. */
static int depth_of(sqlite3 *db, int64_t id, int *depth)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st,
        "WITH RECURSIVE up(id, d) AS (SELECT parent_id, 0 FROM snapshot WHERE id = ?1 "
        " UNION ALL SELECT s.parent_id, d + 1 FROM snapshot s JOIN up ON s.id = up.id "
        " WHERE up.id IS NOT NULL AND d < 100000) SELECT max(d) FROM up WHERE id IS NOT NULL");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    *depth = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *depth = sqlite3_column_int(st, 0) + 1;
    sqlite3_finalize(st);
    return 0;
}

static int query_infos(fks_snapinfo **out, size_t *n, fks_store *s, const char *sql, const char *bind)
{
    sqlite3_stmt *st;
    fks_snapinfo *v = NULL;
    size_t cnt = 0, alloc = 0;
    int rc = cat_prepare(s->db, &st, sql);
    if (rc)
        return rc;
    if (bind)
        sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            fks_snapinfo *nv = realloc(v, alloc * sizeof *v);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        row_info(&v[cnt++], st);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list snapshots");
    sqlite3_finalize(st);
    for (size_t i = 0; i < cnt && rc == 0; i++)
        rc = depth_of(s->db, v[i].id, &v[i].depth);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int fks_list(fks_snapinfo **out, size_t *n, fks_store *s)
{
    return query_infos(out, n, s, SNAP_SELECT "ORDER BY s.created_ms DESC, s.id DESC", NULL);
}

int fks_get(fks_snapinfo *out, fks_store *s, const char *tag)
{
    fks_snapinfo *v;
    size_t n;
    int rc = fks_check_tag(tag);
    if (rc || (rc = query_infos(&v, &n, s, SNAP_SELECT "WHERE s.tag = ?1", tag)) != 0)
        return rc;
    if (n == 0) {
        free(v);
        return fks__err(FKS_ENOTFOUND, "snapshot %s not found (see `forkctl images`)", tag);
    }
    *out = v[0];
    free(v);
    return 0;
}

int fks_chain(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag)
{
    int rc = fks_check_tag(tag);
    if (rc || (rc = query_infos(out, n, s,
        "WITH RECURSIVE up(id, d) AS (SELECT id, 0 FROM snapshot WHERE tag = ?1 "
        " UNION ALL SELECT s.parent_id, d + 1 FROM snapshot s JOIN up ON s.id = up.id "
        " WHERE s.parent_id IS NOT NULL AND d < 100000) "
        SNAP_SELECT "JOIN up ON up.id = s.id ORDER BY up.d DESC", tag)) != 0)
        return rc;
    if (*n == 0) {
        free(*out);
        *out = NULL;
        return fks__err(FKS_ENOTFOUND, "snapshot %s not found (see `forkctl images`)", tag);
    }
    return 0;
}

static int exec_bind(sqlite3 *db, const char *sql, int64_t a, int64_t b)
{
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = cat_err(db, src, "catalog: remove snapshot");
    sqlite3_finalize(st);
    return rc;
}

int fks_rmi(fks_store *s, const char *tag, int cascade)
{
    int rc = fks_check_tag(tag);
    if (rc)
        return rc;
    if ((rc = cat_begin(s)) != 0)
        return rc;
    int64_t id = 0, parent = 0;
    if ((rc = cat_snapshot(&id, &parent, s->db, tag, 1)) != 0)
        return cat_end(s, rc);
    /* The ids removed, for their manifests once the removal committed. */
    int64_t *ids = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *st = NULL;
    if ((rc = cat_prepare(s->db, &st, cascade
            ? "WITH RECURSIVE sub(id, d) AS (SELECT ?1, 0 UNION SELECT s.id, d + 1 FROM snapshot s "
              "JOIN sub ON s.parent_id = sub.id WHERE d < 100000) SELECT DISTINCT id FROM sub"
            : "SELECT ?1")) != 0)
        return cat_end(s, rc);
    sqlite3_bind_int64(st, 1, id);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            int64_t *nv = realloc(ids, alloc * sizeof *nv);
            if (!nv) {
                rc = fks__err(FKS_ENOMEM, "out of memory");
                break;
            }
            ids = nv;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: list snapshots to remove");
    sqlite3_finalize(st);
    if (rc == 0 && cascade) {
        rc = exec_bind(s->db,
            "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT s.id FROM snapshot s JOIN sub ON s.parent_id = sub.id) "
            "DELETE FROM snapshot WHERE id IN sub", id, 0);
    } else if (rc == 0) {
        rc = exec_bind(s->db, "UPDATE snapshot SET parent_id = nullif(?2, 0) WHERE parent_id = ?1", id, parent);
        if (rc == 0)
            rc = exec_bind(s->db, "DELETE FROM snapshot WHERE id = ?1", id, 0);
    }
    /* Catalog first, then the manifests (deletion in reverse order): the
    ** children's manifests keep naming this one as their parent and may
    ** be deltas against it, so it stays as a tombstone (manifest.c). */
    if ((rc = cat_end(s, rc)) == 0)
        manifest_tombstone(s->dir, ids, n);
    free(ids);
    return rc;
}

_Static_assert(FKS_SQL_INTEGER == SQLITE_INTEGER && FKS_SQL_FLOAT == SQLITE_FLOAT && FKS_SQL_TEXT == SQLITE_TEXT &&
               FKS_SQL_BLOB == SQLITE_BLOB && FKS_SQL_NULL == SQLITE_NULL, "FKS_SQL_* are SQLite's types");

int fks_sql(fks_store *s, const char *sql, fks_row_fn row, void *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char p[PATH_MAX];
    const char *tail = NULL;
    int rc = fks__path(p, sizeof p, "%s/catalog.db", s->dir);
    if (rc || (rc = cat_open(&db, p, 1)) != 0)
        return rc;
    int src = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
    if (src != SQLITE_OK) {
        rc = fks__err(FKS_EINVAL, "SQL error: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (!st) {
        rc = fks__err(FKS_EINVAL, "empty SQL statement");
        goto out;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';' || *tail == '\r'))
        tail++;
    if (tail && *tail) {
        rc = fks__err(FKS_EINVAL, "give one SQL statement at a time (extra text: '%.40s')", tail);
        goto out;
    }
    if (!sqlite3_stmt_readonly(st)) {
        rc = fks__err(FKS_EINVAL, "forkctl sql is read-only: the statement would modify the catalog "
                      "(use forkctl commands to change the store)");
        goto out;
    }
    int ncol = sqlite3_column_count(st);
    const char **names = calloc((size_t)ncol + 1, sizeof *names);
    const char **vals = calloc((size_t)ncol + 1, sizeof *vals);
    int *types = calloc((size_t)ncol + 1, sizeof *types);
    if (!names || !vals || !types) {
        free(names);
        free(vals);
        free(types);
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < ncol; i++)
        names[i] = sqlite3_column_name(st, i);
    char *hex = NULL;   /* BLOBs (page hashes) are shown as hex */
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        size_t need = 0;
        for (int i = 0; i < ncol; i++)
            if (sqlite3_column_type(st, i) == SQLITE_BLOB)
                need += 2 * (size_t)sqlite3_column_bytes(st, i) + 1;
        free(hex);
        hex = need ? malloc(need) : NULL;
        if (need && !hex) {
            rc = fks__err(FKS_ENOMEM, "out of memory");
            break;
        }
        char *h = hex;
        for (int i = 0; i < ncol; i++) {
            types[i] = sqlite3_column_type(st, i);
            if (types[i] != SQLITE_BLOB) {
                vals[i] = (const char *)sqlite3_column_text(st, i);
                continue;
            }
            const unsigned char *b = sqlite3_column_blob(st, i);
            int nb = sqlite3_column_bytes(st, i);
            if (!h) {                 /* cannot happen: need counted it */
                vals[i] = "";
                continue;
            }
            vals[i] = h;
            for (int k = 0; k < nb; k++, h += 2)
                sprintf(h, "%02x", b[k]);
            *h++ = 0;
        }
        if (row(arg, ncol, names, vals, types))
            break;
    }
    free(hex);
    if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = fks__err(FKS_EINVAL, "SQL error: %s", sqlite3_errmsg(db));
    free(names);
    free(vals);
    free(types);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
