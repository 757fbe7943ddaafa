/*
** sql.c: read-only SQL over the catalog for users (fks_sql, fks_sql_ex).
**
** Design
**  1. A statement runs on a connection of its own, opened read-only
**     (SQLITE_OPEN_READONLY and query_only, cat_open): it can never write
**     the catalog, whatever it says, and it takes no writer lock.
**  2. Exactly one statement, and one SQLite judges read-only
**     (sqlite3_stmt_readonly); anything else is FKS_EINVAL before a row
**     is read.
**  3. Limits bound what a statement may cost: a time limit checked every
**     SQL_TICK virtual-machine steps (FKS_ETIMEDOUT), a row limit
**     (FKS_ELIMIT: a result cut short is an error, never a short answer)
**     and SQL_MAX_VALUE bytes for any one value a query builds.
**  4. Values reach the callback as text; BLOBs (page hashes) as lowercase
**     hex. hash_page(hash) (pindex.c) is registered on the connection.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "pindex.h"
#include "store.h"
#include "util.h"

_Static_assert(FKS_SQL_INTEGER == SQLITE_INTEGER && FKS_SQL_FLOAT == SQLITE_FLOAT && FKS_SQL_TEXT == SQLITE_TEXT &&
               FKS_SQL_BLOB == SQLITE_BLOB && FKS_SQL_NULL == SQLITE_NULL, "FKS_SQL_* are SQLite's types");

/* The time limit of a statement: SQLite calls this every SQL_TICK virtual
** machine steps; nonzero interrupts the statement (SQLITE_INTERRUPT). */
#define SQL_TICK 10000
#define SQL_MAX_VALUE (32 << 20)

struct sql_clock {
    double deadline;
    int expired;
};

static int sql_tick(void *arg)
{
    struct sql_clock *c = arg;
    if (fks__now() <= c->deadline)
        return 0;
    c->expired = 1;
    return 1;
}

int fks_sql(fks_store *s, const char *sql, fks_row_fn row, void *arg)
{
    return fks_sql_ex(s, sql, NULL, row, arg);
}

/* One statement's run: its connection, its clock and its limits. */
struct sql_run {
    sqlite3 *db;
    sqlite3_stmt *st;
    struct sql_clock clk;     /* the progress handler's: stays in place */
    double timeout;           /* 0: none */
    uint64_t nrows, max_rows; /* max_rows 0: none */
};

/* Design 1 and 3: the catalog opened read-only on a connection of its
** own, hash_page registered, the value limit and the time limit set. */
static int sql_open(struct sql_run *q, fks_store *s)
{
    sqlite3 *db = NULL;
    char p[PATH_MAX];
    int rc = fks__path(p, sizeof p, "%s/catalog.db", s->dir);
    if (rc || (rc = cat_open(&db, p, 1)) != 0)
        return rc;
    if ((rc = pidx_sql_register(db)) != 0) {
        sqlite3_close(db);
        return rc;
    }
    q->db = db;
    /* One value (a string or BLOB a query builds) stays small. */
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQL_MAX_VALUE);
    if (q->timeout > 0) {
        q->clk.deadline = fks__now() + q->timeout;
        sqlite3_progress_handler(db, SQL_TICK, sql_tick, &q->clk);
    }
    return 0;
}

/* Design 2: sql prepared, exactly one statement and a read-only one. */
static int sql_prepare(struct sql_run *q, const char *sql)
{
    const char *tail = NULL;
    int src = sqlite3_prepare_v2(q->db, sql, -1, &q->st, &tail);
    if (src != SQLITE_OK)
        return q->clk.expired ? fks__err(FKS_ETIMEDOUT, "SQL statement stopped after %.3g s (the time limit) "
                                         "while being prepared", q->timeout)
                              : fks__err(FKS_EINVAL, "SQL error: %s", sqlite3_errmsg(q->db));
    if (!q->st)
        return fks__err(FKS_EINVAL, "empty SQL statement");
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';' || *tail == '\r'))
        tail++;
    if (tail && *tail)
        return fks__err(FKS_EINVAL, "give one SQL statement at a time (extra text: '%.40s')", tail);
    if (!sqlite3_stmt_readonly(q->st))
        return fks__err(FKS_EINVAL, "SQL on the catalog is read-only: the statement would modify it");
    return 0;
}

/* Design 4: the current row of st as text in vals[0 .. ncol) and its
** types, BLOBs (page hashes) as hex in *hex (the last row's freed). */
static int sql_values(char **hex, sqlite3_stmt *st, int ncol, const char **vals, int *types)
{
    size_t need = 0;
    for (int i = 0; i < ncol; i++)
        if (sqlite3_column_type(st, i) == SQLITE_BLOB)
            need += 2 * (size_t)sqlite3_column_bytes(st, i) + 1;
    free(*hex);
    *hex = need ? malloc(need) : NULL;
    if (need && !*hex)
        return fks__err(FKS_ENOMEM, "out of memory");
    char *h = *hex;
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
    return 0;
}

/* Design 3 and 4: the rows to the callback under the row limit (it may
** stop them), then how the statement ended: time limit, memory, error. */
static int sql_rows(struct sql_run *q, fks_row_fn row, void *arg)
{
    sqlite3_stmt *st = q->st;
    int ncol = sqlite3_column_count(st), rc = 0, src;
    const char **names = calloc((size_t)ncol + 1, sizeof *names);
    const char **vals = calloc((size_t)ncol + 1, sizeof *vals);
    int *types = calloc((size_t)ncol + 1, sizeof *types);
    if (!names || !vals || !types) {
        free(names);
        free(vals);
        free(types);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    for (int i = 0; i < ncol; i++)
        names[i] = sqlite3_column_name(st, i);
    char *hex = NULL;   /* BLOBs (page hashes) are shown as hex */
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (q->max_rows && q->nrows == q->max_rows) {
            rc = fks__err(FKS_ELIMIT, "SQL statement stopped after %llu rows (the row limit): the result "
                          "has more", (unsigned long long)q->max_rows);
            break;
        }
        q->nrows++;
        if ((rc = sql_values(&hex, st, ncol, vals, types)) != 0)
            break;
        if (row(arg, ncol, names, vals, types))
            break;
    }
    free(hex);
    if (rc == 0 && src == SQLITE_INTERRUPT && q->clk.expired)
        rc = fks__err(FKS_ETIMEDOUT, "SQL statement stopped after %.3g s (the time limit), %llu rows in",
                      q->timeout, (unsigned long long)q->nrows);
    else if (rc == 0 && src == SQLITE_NOMEM)
        rc = fks__err(FKS_ENOMEM, "SQL statement ran out of memory: %s", sqlite3_errmsg(q->db));
    else if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = fks__err(FKS_EINVAL, "SQL error: %s", sqlite3_errmsg(q->db));
    free(names);
    free(vals);
    free(types);
    return rc;
}

int fks_sql_ex(fks_store *s, const char *sql, const fks_sql_opts *o, fks_row_fn row, void *arg)
{
    struct sql_run q = {0};
    if (o && !(o->timeout_s >= 0 && o->timeout_s <= 1e9))
        return fks__err(FKS_EINVAL, "SQL time limit %g s is not a number of seconds from 0 to 1e9", o->timeout_s);
    q.max_rows = o ? o->max_rows : 0;
    q.timeout = o && o->timeout_s > 0 ? o->timeout_s : 0;
    int rc = sql_open(&q, s);
    if (rc)
        return rc;
    if ((rc = sql_prepare(&q, sql)) == 0)
        rc = sql_rows(&q, row, arg);
    sqlite3_finalize(q.st);
    sqlite3_close(q.db);
    return rc;
}
