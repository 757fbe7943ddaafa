/*
** tag.c: the names users give (snapshot tags, artifact names) and
** renaming a snapshot.
**
** Names: a tag is 1-128 and an artifact name 1-64 characters from
** [A-Za-z0-9._+-], not starting with '.' or '-' (neither is read as an
** option or a hidden file); "memory.bin" is no artifact name, because
** restore writes the memory artifact there. fks_check_tag and
** fks_check_name are the one statement of these rules; their messages
** never echo a control character of the name.
**
** Renaming: snapshots refer to each other by id (snapshot.parent_id),
** never by tag, so a rename is one UPDATE of one row, under the writer
** lock like every write. The tag's UNIQUE constraint would refuse a taken
** name anyway; we look first to say which name and what to do. The
** snapshot's manifest keeps the tag it was ingested with; a rename writes
** a tag override beside it before the catalog commits (manifest.c,
** design 6).
*/
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "manifest.h"
#include "store.h"
#include "util.h"

#define SHOWN_MAX 64   /* characters of a bad name a message echoes */

static int check_ident(const char *s, size_t maxlen, const char *what)
{
    size_t n = s ? strlen(s) : 0;
    char r[160], shown[4 * SHOWN_MAX + 1];
    snprintf(r, sizeof r, "1-%zu characters from [A-Za-z0-9._+-], not starting with '.' or '-'", maxlen);
    if (n == 0)
        return fks__err(FKS_EINVAL, "empty %s: a %s is %s", what, what, r);
    fks__esc(shown, sizeof shown, s, SHOWN_MAX);      /* never echo control characters */
    if (n > maxlen)
        return fks__err(FKS_EINVAL, "%s too long (%zu characters): a %s is %s", what, n, what, r);
    if (s[0] == '.' || s[0] == '-')
        return fks__err(FKS_EINVAL, "invalid %s '%s%s': a %s is %s", what, shown, n > SHOWN_MAX ? "..." : "", what, r);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '+' || c == '-';
        if (!ok)
            return fks__err(FKS_EINVAL, "invalid %s '%s%s' (character %zu): a %s is %s",
                            what, shown, n > SHOWN_MAX ? "..." : "", i + 1, what, r);
    }
    return 0;
}

int fks_check_tag(const char *tag) { return check_ident(tag, FKS_TAG_MAX, "tag"); }
int fks_check_name(const char *name)
{
    int rc = check_ident(name, FKS_NAME_MAX, "artifact name");
    /* restore writes the "memory" artifact as memory.bin (fks_artifact_filename) */
    if (rc == 0 && strcmp(name, "memory.bin") == 0)
        rc = fks__err(FKS_EINVAL, "artifact name 'memory.bin' is reserved: restore writes the memory "
                      "file there; pick another name");
    return rc;
}

int fks_tag(fks_store *s, const char *old_tag, const char *new_tag)
{
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    int override = 0;
    int rc = fks_check_tag(old_tag);
    if (rc || (rc = fks_check_tag(new_tag)) != 0)
        return rc;
    if ((rc = cat_begin(s)) != 0)
        return rc;
    if ((rc = cat_prepare(s->db, &st, "SELECT (SELECT count(*) FROM snapshot WHERE tag = ?1), "
                                      "(SELECT count(*) FROM snapshot WHERE tag = ?2)")) != 0)
        goto out;
    sqlite3_bind_text(st, 1, old_tag, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, new_tag, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = cat_err(s->db, src, "catalog: find snapshot");
        goto out;
    }
    if (sqlite3_column_int(st, 0) == 0) {
        rc = cat_not_found(old_tag);
        goto out;
    }
    if (sqlite3_column_int(st, 1) != 0) {
        rc = fks__err(FKS_EEXIST, "a snapshot tagged %s already exists", new_tag);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = cat_snapshot(&id, NULL, s->db, old_tag, 1)) != 0)
        goto out;
    if ((rc = cat_prepare(s->db, &st, "UPDATE snapshot SET tag = ?2 WHERE tag = ?1")) != 0)
        goto out;
    sqlite3_bind_text(st, 1, old_tag, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, new_tag, -1, SQLITE_STATIC);
    if ((src = sqlite3_step(st)) != SQLITE_DONE)
        rc = cat_err(s->db, src, "catalog: rename snapshot");
    /* The manifest keeps the tag it was ingested with; the new one goes
    ** beside it, durably, before the rename commits (manifest.c, 6). */
    if (rc == 0 && manifest_exists(s->dir, id) && (rc = manifest_set_tag(s->dir, id, new_tag)) == 0)
        override = 1;
out:
    sqlite3_finalize(st);
    rc = cat_end(s, rc);
    if (rc && override)
        (void)manifest_set_tag(s->dir, id, old_tag);   /* back to what the catalog says */
    return rc;
}
