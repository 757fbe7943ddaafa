/*
** catalog.h: the SQLite catalog: opening, migrations, write transactions.
** See catalog.c for the design and migrations/ for the tables.
*/
#ifndef FKS_CATALOG_H
#define FKS_CATALOG_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct fks_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct fks_migration fks_migrations[];
extern const int fks_n_migrations;

struct fks_store;

/* Opens path with the store's pragmas. readonly opens a connection that
** cannot write (SQLITE_OPEN_READONLY + query_only). */
int cat_open(sqlite3 **out, const char *path, int readonly);
/* Applies pending migrations under the writer lock. FKS_ENEWER if the
** catalog is newer than this build. */
int cat_migrate(struct fks_store *s);

/* Builds the whole schema in db, a new, empty database: page size and
** auto_vacuum first (they must precede the first table), then every
** migration in order, each in its own transaction with its user_version.
** The journal is left in DELETE mode; the caller switches to WAL. */
int cat_create_schema(sqlite3 *db);

/* Write transactions: take the store-wide writer lock, BEGIN IMMEDIATE.
** cat_end commits when rc == 0 (returning the commit's result) and rolls
** back otherwise (returning rc), then releases the lock. */
int cat_begin(struct fks_store *s);
int cat_end(struct fks_store *s, int rc);
/* Counts WAL frames after each commit (s->wal_frames) for cat_end. */
void cat_watch_wal(struct fks_store *s);
/* Checkpoint the WAL (TRUNCATE when truncate, else PASSIVE) under the
** writer lock. */
int cat_checkpoint(struct fks_store *s, int truncate);

/* Error from SQLite: message "<what>: <sqlite message>". Maps
** SQLITE_FULL to FKS_ENOSPC, SQLITE_CORRUPT/NOTADB to FKS_ECORRUPT,
** SQLITE_BUSY to FKS_ELOCKED. */
int cat_err(sqlite3 *db, int sqlrc, const char *what);
/* Exec one or more statements without results. */
int cat_exec(sqlite3 *db, const char *sql);
/* Prepares one statement; the caller finalizes it. */
int cat_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql);
/* Meta key/value as integer; *val untouched if absent. */
int cat_meta_get(sqlite3 *db, const char *key, int64_t *val);
int cat_meta_set(sqlite3 *db, const char *key, int64_t val);
/* Snapshot tag's id and parent (0 for a root; parent_id may be NULL).
** Absent: *id = 0, and with must_exist FKS_ENOTFOUND with cat_not_found's
** message. Only a catalog error fails else. */
int cat_snapshot(int64_t *id, int64_t *parent_id, sqlite3 *db, const char *tag, int must_exist);
/* FKS_ENOTFOUND, with the one message users see for a tag the catalog
** does not hold: "snapshot T not found" (forkctl adds where to look). */
int cat_not_found(const char *tag);

/* ---- row shapes: the one reader of each -------------------------------- */

/* A stored page: page `slot` of the block record at `off` (`len` bytes) of
** chunk `chunk_id`; rlen is the page's own length (4096 but for a file's
** short tail). */
struct cat_page {
    int64_t id, chunk_id;
    uint64_t off;
    uint32_t len, slot, rlen;
    uint8_t hash[16];
};
/* Reads and validates page id's location. FKS_ENOTFOUND if the index has
** no such page, FKS_ECORRUPT if its row is malformed. */
int cat_page_get(struct cat_page *out, sqlite3 *db, int64_t id);
/* Pages by id range, with one prepared statement: cat_pages_range calls
** fn for each of pages first .. first+n-1 in id order; a page missing or
** malformed is FKS_ECORRUPT (a map named it); fn's error stops it. */
typedef struct cat_pages {
    sqlite3 *db;
    sqlite3_stmt *st, *bst;        /* page rows, block rows */
} cat_pages;
int cat_pages_open(cat_pages *r, sqlite3 *db);
void cat_pages_close(cat_pages *r);
int cat_pages_range(cat_pages *r, int64_t first, uint64_t n, int (*fn)(void *arg, const struct cat_page *p),
                    void *arg);
/* The pages of ids first .. last that the index holds, in id order; ids
** it does not hold are skipped (the caller checks what it wanted). A row
** for which want(arg, id) is 0 is skipped before it is validated: the
** range may span pages the caller does not need, and damage there is
** not its error. want NULL: every row. */
int cat_pages_scan(cat_pages *r, int64_t first, int64_t last, int (*want)(void *arg, int64_t id),
                   int (*fn)(void *arg, const struct cat_page *p), void *arg);
/* Artifact name of snapshot snap: its id and logical size.
** FKS_ENOTFOUND if absent. */
int cat_artifact_get(int64_t *art, uint64_t *size, sqlite3 *db, int64_t snap, const char *name);

/* Read transactions: BEGIN (deferred) and its end (COMMIT of a read; it
** cannot fail in a way that loses anything, its error is returned). */
int cat_read_begin(sqlite3 *db);
int cat_read_end(sqlite3 *db);
/* Ends a read transaction whatever happened in it: rc is what the reads
** returned. COMMIT (ROLLBACK if that fails, so no transaction stays
** open); returns rc, or when rc is 0 the COMMIT's error. */
int cat_read_finish(sqlite3 *db, int rc);
/* After a sqlite3_step loop: 0 when it ended with SQLITE_DONE, else the
** error (named by what). */
int cat_done(sqlite3 *db, int steprc, const char *what);

#endif
