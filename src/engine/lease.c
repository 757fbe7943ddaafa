/*
** lease.c: what lazy restore keeps in the catalog: page-server leases,
** working sets and the figures of a snapshot's last lazy restore
** (migrations/0006_lease.sql). The one owner of those tables.
**
** Design
**  1. A lease names the pages a page server may still have to read: a copy
**     of its image's page map (lease_run), not the snapshot, because rmi
**     deletes the snapshot's runs while the VM runs on. gc marks every
**     page a live lease names as live (lease_mark_live, called by the
**     sweep under the writer lock), so no page id a server can ask for is
**     deleted. Compaction may still move a page: the image handle finds
**     it again by id (image.c, design 4).
**  2. Taking a lease commits before the server accepts its VMM (the
**     pages are protected before the first fault); releasing deletes it
**     after the last fault was served.
**  3. Live = expires_ms > now, or the holder still runs: same boot_id, and
**     /proc/PID/stat's start time equals the recorded one (a pid reused
**     after a crash is another process). A dead holder's lease stays until
**     it expires (a crash is "expired safely": a server stopped with
**     SIGSTOP still renews nothing but also still holds a VM), then the
**     next gc deletes it. Renewal (every ttl/3 by the server) moves
**     expires_ms.
**  4. A lease opens its own handle on the store: renewal runs on the
**     server's timer thread while the serving thread reads pages on the
**     caller's handle, and one SQLite connection must not carry two
**     transactions.
**
** Working set blob layout: npages page numbers, each 8 bytes little-endian,
** in first-fault order, no repeats.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "lease.h"
#include "store.h"
#include "util.h"

struct fks_lease {
    fks_store *s;      /* own handle (design 4) */
    int64_t id;
    double ttl_s;
};

/* This boot's id (36 chars) into out[40]; "" if unreadable. */
static void boot_id(char out[40])
{
    out[0] = 0;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (!fgets(out, 40, f))
        out[0] = 0;
    out[strcspn(out, "\n")] = 0;
    fclose(f);
}

/* Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat),
** -1 if no such process. */
static int64_t start_time(long pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *q = strrchr(buf, ')');
    if (!q)
        return -1;
    /* after ") ": field 3 (state) ... field 22 */
    long long v = -1;
    int field = 2;
    for (char *t = q + 1; *t && field < 22; t++)
        if (*t == ' ' && ++field == 22) {
            char *end = NULL;
            errno = 0;
            v = strtoll(t + 1, &end, 10);
            if (errno != 0 || end == t + 1)
                v = -1;
        }
    return v;
}

int fks_lease_take(fks_lease **out, fks_store *s, const char *tag, const fks_run *runs, size_t n, double ttl_s)
{
    *out = NULL;
    if (s->readonly)
        return fks__err(FKS_EPERM, "store %s is open read-only: a page server needs to write its lease", s->dir);
    fks_lease *l = calloc(1, sizeof *l);
    if (!l)
        return fks__err(FKS_ENOMEM, "out of memory");
    l->ttl_s = ttl_s > 0 ? ttl_s : 60;
    int rc = fks_open(&l->s, s->dir, 0);
    if (rc) {
        free(l);
        return rc;
    }
    sqlite3 *db = l->s->db;
    sqlite3_stmt *ins = NULL, *run = NULL;
    char bid[40];
    boot_id(bid);
    int64_t now = fks__wall_ms(), snap = 0;
    if ((rc = cat_begin(l->s)) != 0)
        goto fail;
    if ((rc = cat_snapshot(&snap, NULL, db, tag, 1)) == 0 &&
        (rc = cat_prepare(db, &ins, "INSERT INTO lease (snapshot_id, tag, pid, boot_id, start_time, created_ms, "
                          "expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")) == 0) {
        sqlite3_bind_int64(ins, 1, snap);
        sqlite3_bind_text(ins, 2, tag, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 3, (int64_t)getpid());
        sqlite3_bind_text(ins, 4, bid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 5, start_time((long)getpid()));
        sqlite3_bind_int64(ins, 6, now);
        sqlite3_bind_int64(ins, 7, now + (int64_t)(l->ttl_s * 1000));
        int src = sqlite3_step(ins);
        if (src != SQLITE_DONE)
            rc = cat_err(db, src, "catalog: insert lease");
        l->id = sqlite3_last_insert_rowid(db);
    }
    if (rc == 0 && (rc = cat_prepare(db, &run, "INSERT INTO lease_run VALUES (?1, ?2, ?3, ?4)")) == 0) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            sqlite3_bind_int64(run, 1, l->id);
            sqlite3_bind_int64(run, 2, (int64_t)runs[i].pgno);
            sqlite3_bind_int64(run, 3, (int64_t)runs[i].npages);
            sqlite3_bind_int64(run, 4, runs[i].page_id);
            int src = sqlite3_step(run);
            sqlite3_reset(run);
            if (src != SQLITE_DONE)
                rc = cat_err(db, src, "catalog: insert lease run");
        }
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(run);
    if ((rc = cat_end(l->s, rc)) != 0)
        goto fail;
    *out = l;
    return 0;
fail:
    fks_close(l->s);
    free(l);
    return fks__errctx(rc, "lease on snapshot %s", tag);
}

int fks_lease_renew(fks_lease *l)
{
    sqlite3_stmt *st = NULL;
    int rc = cat_begin(l->s);
    if (rc)
        return rc;
    if ((rc = cat_prepare(l->s->db, &st, "UPDATE lease SET expires_ms = ?1 WHERE id = ?2")) == 0) {
        sqlite3_bind_int64(st, 1, fks__wall_ms() + (int64_t)(l->ttl_s * 1000));
        sqlite3_bind_int64(st, 2, l->id);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = cat_err(l->s->db, src, "catalog: renew lease");
        else if (sqlite3_changes(l->s->db) != 1)
            rc = fks__err(FKS_ENOTFOUND, "lease %lld is gone (expired and deleted by gc?)", (long long)l->id);
    }
    sqlite3_finalize(st);
    return cat_end(l->s, rc);
}

int fks_lease_release(fks_lease *l)
{
    if (!l)
        return 0;
    int rc = cat_begin(l->s);
    if (rc == 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "DELETE FROM lease_run WHERE lease_id = %lld; DELETE FROM lease WHERE id = %lld;",
                 (long long)l->id, (long long)l->id);
        rc = cat_end(l->s, cat_exec(l->s->db, sql));
    }
    fks_close(l->s);
    free(l);
    return rc;
}

int64_t fks_lease_id(const fks_lease *l)
{
    return l->id;
}

/* Design 3. */
static int lease_live(int64_t now, int64_t expires, const char *bid, const char *lbid, long pid, int64_t st)
{
    if (expires > now)
        return 1;
    return bid[0] && !strcmp(bid, lbid) && st >= 0 && start_time(pid) == st;
}

int lease_mark_live(struct fks_store *s, uint8_t *mark, int64_t next, int dry_run, uint64_t *n_live)
{
    sqlite3 *db = s->db;
    sqlite3_stmt *st = NULL, *rn = NULL;
    char bid[40];
    boot_id(bid);
    int64_t now = fks__wall_ms();
    int64_t dead[64] = {0};
    int ndead = 0, src;
    *n_live = 0;
    int rc = cat_prepare(db, &st, "SELECT id, expires_ms, boot_id, pid, start_time FROM lease ORDER BY id");
    if (rc == 0)
        rc = cat_prepare(db, &rn, "SELECT page_id, npages FROM lease_run WHERE lease_id = ?1");
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *lb = (const char *)sqlite3_column_text(st, 2);
        if (!lease_live(now, sqlite3_column_int64(st, 1), bid, lb ? lb : "", (long)sqlite3_column_int64(st, 3),
                        sqlite3_column_int64(st, 4))) {
            if (ndead < 64)
                dead[ndead++] = id;   /* the rest go at the next gc */
            continue;
        }
        (*n_live)++;
        sqlite3_bind_int64(rn, 1, id);
        int r2;
        while ((r2 = sqlite3_step(rn)) == SQLITE_ROW) {
            int64_t a = sqlite3_column_int64(rn, 0), n = sqlite3_column_int64(rn, 1);
            int64_t end = a <= 0 || n <= 0 ? a : n > next - a ? next : a + n;
            for (int64_t p = a; p < end; p++)
                if (p > 0)
                    mark[p >> 3] |= (uint8_t)(1u << (p & 7));
        }
        sqlite3_reset(rn);
        rc = cat_done(db, r2, "catalog: read lease runs");
    }
    if (rc == 0)
        rc = cat_done(db, src, "catalog: read leases");
    sqlite3_finalize(st);
    sqlite3_finalize(rn);
    for (int i = 0; rc == 0 && !dry_run && i < ndead; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DELETE FROM lease_run WHERE lease_id = %lld; DELETE FROM lease WHERE id = %lld;",
                 (long long)dead[i], (long long)dead[i]);
        rc = cat_exec(db, sql);
    }
    return rc;
}

/* ---- working sets ---------------------------------------------------- */

int fks_working_set_put(fks_store *s, const char *tag, const uint64_t *pages, size_t n)
{
    uint8_t *blob = malloc(n * 8 + 1);
    if (!blob)
        return fks__err(FKS_ENOMEM, "out of memory (working set of %zu pages)", n);
    for (size_t i = 0; i < n; i++)
        fks__put64(blob + 8 * i, pages[i]);
    sqlite3_stmt *st = NULL;
    int64_t snap = 0;
    int rc = cat_begin(s);
    if (rc == 0) {
        if ((rc = cat_snapshot(&snap, NULL, s->db, tag, 1)) == 0 &&
            (rc = cat_prepare(s->db, &st, "INSERT OR REPLACE INTO working_set VALUES (?1, ?2, ?3, ?4)")) == 0) {
            sqlite3_bind_int64(st, 1, snap);
            sqlite3_bind_int64(st, 2, (int64_t)n);
            sqlite3_bind_blob(st, 3, blob, (int)(n * 8), SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 4, fks__wall_ms());
            int src = sqlite3_step(st);
            if (src != SQLITE_DONE)
                rc = cat_err(s->db, src, "catalog: store working set");
        }
        sqlite3_finalize(st);
        rc = cat_end(s, rc);
    }
    free(blob);
    return rc ? fks__errctx(rc, "working set of snapshot %s", tag) : 0;
}

int fks_working_set_get(uint64_t **out, size_t *n, char *from, size_t fromlen, fks_store *s, const char *tag)
{
    *out = NULL;
    *n = 0;
    if (from && fromlen)
        from[0] = 0;
    fks_snapinfo *chain = NULL;
    size_t nc = 0;
    int rc = fks_chain(&chain, &nc, s, tag);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = cat_prepare(s->db, &st, "SELECT npages, pages FROM working_set WHERE snapshot_id = ?1")) != 0) {
        free(chain);
        return rc;
    }
    /* the snapshot's own, else the nearest ancestor's */
    for (size_t i = nc; i-- > 0 && !*out && rc == 0;) {
        sqlite3_bind_int64(st, 1, chain[i].id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            int64_t np = sqlite3_column_int64(st, 0);
            const uint8_t *b = sqlite3_column_blob(st, 1);
            int bl = sqlite3_column_bytes(st, 1);
            if (np < 0 || (int64_t)bl != np * 8) {
                rc = fks__err(FKS_ECORRUPT, "working set of snapshot %s: %lld pages in %d bytes", chain[i].tag,
                              (long long)np, bl);
            } else if (np > 0) {
                if (!(*out = malloc((size_t)np * 8)))
                    rc = fks__err(FKS_ENOMEM, "out of memory");
                for (int64_t k = 0; rc == 0 && *out && k < np; k++)
                    (*out)[k] = fks__get64(b + 8 * k);
                *n = rc ? 0 : (size_t)np;
                if (rc == 0 && from && fromlen)
                    snprintf(from, fromlen, "%s", chain[i].tag);
            }
        } else if (src != SQLITE_DONE) {
            rc = cat_err(s->db, src, "catalog: read working set");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    free(chain);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int fks_lazy_stats_put(fks_store *s, const char *tag, const fks_serve_stats *x)
{
    sqlite3_stmt *st = NULL;
    int64_t snap = 0;
    int rc = cat_begin(s);
    if (rc)
        return rc;
    if ((rc = cat_snapshot(&snap, NULL, s->db, tag, 0)) == 0 && snap &&
        (rc = cat_prepare(s->db, &st, "INSERT OR REPLACE INTO lazy_restore VALUES "
                          "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")) == 0) {
        sqlite3_bind_int64(st, 1, snap);
        sqlite3_bind_int64(st, 2, fks__wall_ms());
        sqlite3_bind_int64(st, 3, (int64_t)x->vms);
        sqlite3_bind_int64(st, 4, (int64_t)x->faults);
        sqlite3_bind_int64(st, 5, (int64_t)x->pages_demand);
        sqlite3_bind_int64(st, 6, (int64_t)x->pages_prefetch);
        sqlite3_bind_int64(st, 7, (int64_t)x->pages_zero);
        sqlite3_bind_int64(st, 8, (int64_t)x->bytes_decoded);
        sqlite3_bind_double(st, 9, x->fault_p50_us);
        sqlite3_bind_double(st, 10, x->fault_p99_us);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = cat_err(s->db, src, "catalog: store lazy restore figures");
    }
    sqlite3_finalize(st);
    return cat_end(s, rc);
}

int fks_lazy_stats_get(fks_serve_stats *out, int64_t *finished_ms, fks_store *s, const char *tag)
{
    memset(out, 0, sizeof *out);
    *finished_ms = 0;
    sqlite3_stmt *st = NULL;
    int64_t snap = 0;
    int rc = cat_snapshot(&snap, NULL, s->db, tag, 1), src;
    if (rc)
        return rc;
    if ((rc = cat_prepare(s->db, &st, "SELECT finished_ms, vms, faults, pages_demand, pages_prefetch, pages_zero, "
                          "bytes_decoded, fault_p50_us, fault_p99_us, (SELECT npages FROM working_set WHERE "
                          "snapshot_id = ?1) FROM lazy_restore WHERE snapshot_id = ?1")) != 0)
        return rc;
    sqlite3_bind_int64(st, 1, snap);
    if ((src = sqlite3_step(st)) == SQLITE_ROW) {
        *finished_ms = sqlite3_column_int64(st, 0);
        out->vms = (uint64_t)sqlite3_column_int64(st, 1);
        out->faults = (uint64_t)sqlite3_column_int64(st, 2);
        out->pages_demand = (uint64_t)sqlite3_column_int64(st, 3);
        out->pages_prefetch = (uint64_t)sqlite3_column_int64(st, 4);
        out->pages_zero = (uint64_t)sqlite3_column_int64(st, 5);
        out->bytes_decoded = (uint64_t)sqlite3_column_int64(st, 6);
        out->fault_p50_us = sqlite3_column_double(st, 7);
        out->fault_p99_us = sqlite3_column_double(st, 8);
        out->working_set_pages = (uint64_t)sqlite3_column_int64(st, 9);
        src = SQLITE_DONE;
    }
    rc = cat_done(s->db, src, "catalog: read lazy restore figures");
    sqlite3_finalize(st);
    return rc;
}
