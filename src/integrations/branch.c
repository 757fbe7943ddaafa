/*
** branch.c: branching a running microVM into the store, and loading a
** stored snapshot into a fresh VM, through the Firecracker API. Owns the
** vm_head table and the snapshot columns fc_version / format_version
** (migrations/0004_vm_chain.sql).
**
** Design: keep every file-system and hashing cost out of the pause, and
** never acknowledge a Diff whose base is not the VM's last snapshot.
**
**   GET / , /version, /machine-config      (VM key, version, memory size)
**   vm_head := creating                     (committed before the create)
**   pause -> snapshot/create into staging -> resume      | pause window
**   vm_head := staged (versions, timings)
**   ingest -> vm_head := stored, snapshot versions -> remove staging
**
**  1. Staging is memory-backed: by default a private (0700) directory made
**     with mkdtemp under /dev/shm (under the jail root with a jail), so the
**     VMM's writes inside the pause are page-cache copies.
**  2. Chain safety. Firecracker resets its dirty bitmap on every successful
**     snapshot/create, and for a Diff already when it reads the bitmap
**     (KVM_GET_DIRTY_LOG), before the memory file is written: a create that
**     failed may have reset it too. So per VM the catalog holds its last
**     snapshot and a state (stored / creating / staged, see 0004). A Diff
**     is taken only when the state is stored and parent is that snapshot;
**     otherwise FKS_EREFUSED, before the VM is touched. A Full is always
**     correct and resets the chain. One branch per VM at a time: an flock
**     on DIR/vm-locks/<hash>.lock of "vm:<vm_id>" or "sock:<API socket's
**     absolute path>", taken before the first API call (FKS_ELOCKED at
**     once; the VMM serves one connection, a second branch would queue).
**     The create also marks "creating" every other record of the same API
**     socket (the VM under its other identity, or an older instance).
**     Limit: a snapshot/create sent by anything else than forkctl (curl,
**     an orchestrator) is invisible through Firecracker's API; the record
**     then still says stored, and the next Diff misses the pages dirtied
**     before that create. Only one client must snapshot a VM.
**  3. If anything fails after the pause request was sent, the VM is
**     resumed before the error is reported.
**  4. Staging is removed only when no VMM can still write into it and no
**     stored state needs it: after a successful ingest, or after the VMM
**     answered a create with an error (it finished that request). After a
**     create that timed out (the VMM may still be writing) and after any
**     failure that follows a successful create (record, ingest, lock, disk
**     full) the staging stays and res->kept_staging names it; a branch with
**     resume ingests it from the staged record. A later Full of the VM
**     removes a staging its record still names, once the VMM has answered
**     that Full's create (its earlier request is over by then).
**  5. Timeouts: control calls use timeout_ms (10 s). snapshot/create and
**     snapshot/load get max(timeout_ms, 10 s + 1 s per 64 MiB of guest
**     memory; unknown size: 4 GiB). Measured with the test VMM: a Full of a
**     1 GiB guest into /dev/shm took 1.5 s on an idle 2-core machine and
**     over 14 s while others loaded it; 64 MiB/s also covers staging on a
**     slow disk (~100 MB/s).
**  6. Versions: GET /version must be 1.10 .. 1.16 (force_version accepts
**     others). The vmstate begins with Firecracker's header: a 64-bit
**     magic id (0x0710_1984_8664_0000 x86_64, 0x0710_1984_AAAA_0000
**     aarch64, little-endian), then the snapshot data format version as
**     serde writes a semver Version, a string: bincode fixint (1.10-1.14)
**     puts a u64 LE length then "M.m.p"; bitcode (1.15+) a u8 length then
**     the string; failing both, the first M.m.p run in the next 64 bytes. Firecracker loads a snapshot only when its format major is its
**     own and its minor not above its own: load refuses, before any load
**     request, what the target would refuse (a failed load makes
**     Firecracker exit). Diffs are refused on 1.14.0 and 1.14.1 for guests
**     with more than one memory slot (x86_64: over 3 GiB), which those
**     releases corrupt (or with memory-hotplug in GET /vm/config). Load sends track_dirty_pages from 1.13 on,
**     enable_diff_snapshots before; network_overrides from 1.12,
**     vsock_override from 1.16.
**  7. Jailer: paths in API bodies are the staging paths with the jail root
**     cut off; staging directory and files are chowned to the jail's
**     uid/gid so the unprivileged VMM can write (branch) or map (load).
**
** Test hook: FORKSTORE_TEST_KILL_AFTER_CREATE=creating|staged raises
** SIGKILL after a successful create and the resume, before (creating) or
** after (staged) the staged state is recorded: the two places a killed
** forkctl leaves a VM between its create and the commit.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "fc.h"
#include "forkstore.h"
#include "store.h"
#include "util.h"

#define FC_MIN_MINOR 10
#define FC_MAX_MINOR 16

/* ---- versions ----------------------------------------------------------- */

typedef struct ver {
    int major, minor, patch;
} ver;

/* "1.14.2", "v1.14.2", "1.16.0-dev": 0, else -1. */
static int parse_ver(ver *v, const char *s)
{
    if (*s == 'v')
        s++;
    int *f[3] = {&v->major, &v->minor, &v->patch};
    for (int i = 0; i < 3; i++) {
        char *end;
        if (*s < '0' || *s > '9')
            return -1;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (errno || x > 1000000)
            return -1;
        *f[i] = (int)x;
        s = end;
        if (i < 2 && *s++ != '.')
            return -1;
    }
    return *s == 0 || *s == '-' || *s == '+' ? 0 : -1;
}

/* The snapshot data format major a Firecracker 1.minor writes and loads
** (src/vmm/src/persist.rs SNAPSHOT_VERSION per release); -1 unknown. */
static int format_major_of(const ver *fc)
{
    static const int major[] = {[10] = 3, [11] = 5, [12] = 6, [13] = 8, [14] = 8, [15] = 9, [16] = 10};
    if (fc->major != 1 || fc->minor < FC_MIN_MINOR || fc->minor > FC_MAX_MINOR)
        return -1;
    if (fc->minor == 10 && fc->patch >= 1)
        return 4;                        /* 1.10.1 bumped it */
    return major[fc->minor];
}

/* Asks the VMM its version (GET /version into fcv) and checks it against
** the supported range; *known when it is a release the tables know. With
** force, an unanswered or unsupported version goes on ("" when unknown). */
static int vmm_version(char *fcv, size_t len, ver *v, int *known, fc_client *c, const char *sock, int force)
{
    *known = 0;
    int rc = fc_version(c, fcv, len);
    if (rc) {
        fcv[0] = 0;
        return force ? 0 : rc;
    }
    *known = parse_ver(v, fcv) == 0 && format_major_of(v) >= 0;
    if (*known || force)
        return 0;
    return fks__err(FKS_EREFUSED, "the VMM at %s is Firecracker %s; supported are 1.%d .. 1.%d", sock, fcv,
                    FC_MIN_MINOR, FC_MAX_MINOR);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The format version in the vmstate header at path ("M.m.p" into out);
** FKS_EINVAL when the file does not begin with Firecracker's header. */
static int vmstate_format(char *out, size_t len, ver *fv, const char *path)
{
    unsigned char h[80];
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        n = read(fd, h, sizeof h);
        close(fd);
    }
    if (n < 0)
        return fks__errno(FKS_EIO, errno, "vmstate %s", path);
    uint64_t magic = n >= 8 ? le64(h) : 0;
    if (n < 16 || (magic >> 16 != 0x071019848664ull && magic >> 16 != 0x07101984AAAAull))
        return fks__err(FKS_EINVAL, "vmstate %s does not begin with a Firecracker snapshot header", path);
    char s[32] = "";
    uint64_t l = le64(h + 8);
    if (l >= 5 && l < sizeof s && 16 + (ssize_t)l <= n) {          /* bincode: u64 length, string */
        memcpy(s, h + 16, (size_t)l);
        s[l] = 0;
    }
    if (parse_ver(fv, s) != 0 && h[8] >= 5 && h[8] < sizeof s && 9 + (ssize_t)h[8] <= n) {
        memcpy(s, h + 9, h[8]);                                    /* bitcode: u8 length, string */
        s[h[8]] = 0;
    }
    if (parse_ver(fv, s) != 0) {                                   /* else: the first M.m.p run */
        s[0] = 0;
        for (ssize_t i = 8; i < n && !s[0]; i++) {
            size_t k = 0;
            while (i + (ssize_t)k < n && k < sizeof s - 1 && ((h[i + k] >= '0' && h[i + k] <= '9') || h[i + k] == '.'))
                k++;
            memcpy(s, h + i, k);
            s[k] = 0;
            if (parse_ver(fv, s) != 0)
                s[0] = 0;
        }
    }
    if (!s[0] || parse_ver(fv, s) != 0)
        return fks__err(FKS_EINVAL, "vmstate %s: no snapshot format version after the magic id", path);
    snprintf(out, len, "%d.%d.%d", fv->major, fv->minor, fv->patch);
    return 0;
}

/* ---- staging and the jail ------------------------------------------------ */

/* A new private (0700) directory under base; out stays "" on failure.
** With a jail the base defaults to its root and must lie inside it. */
static int make_staging(char *out, size_t len, const char *base, const fks_jail *j)
{
    if (!base)
        base = j->root ? j->root : "/dev/shm";
    if (j->root) {
        size_t n = strlen(j->root);
        if (strncmp(base, j->root, n) != 0 || (base[n] && base[n] != '/'))
            return fks__err(FKS_EINVAL, "staging %s is outside the jail %s: the VMM could not reach it", base,
                            j->root);
    }
    int rc = fks__path(out, len, "%s/forkstore-staging-XXXXXX", base);
    if (rc == 0 && (rc = fks__mkdir_p(base, 0700)) != 0)
        fks__errctx(rc, "staging directory");
    if (rc == 0 && !mkdtemp(out))
        rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "create a staging directory under %s", base);
    if (rc == 0 && (j->uid >= 0 || j->gid >= 0) && chown(out, (uid_t)j->uid, (gid_t)j->gid) != 0) {
        rc = fks__errno(FKS_EPERM, errno, "give staging %s to the jail's uid %ld gid %ld", out, j->uid, j->gid);
        rmdir(out);
    }
    if (rc)
        out[0] = 0;
    return rc;
}

static void remove_staging(const char *dir)
{
    const char *names[] = {"memory", "vmstate", "memory.bin", "rootfs"};
    char p[4200];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) < (int)sizeof p)
            unlink(p);
    rmdir(dir);
}

/* The path the VMM sees for host path p: inside the jail, p without the
** jail root. Borrowed from p. */
static const char *vmm_path(const char *p, const fks_jail *j)
{
    if (!j->root)
        return p;
    size_t n = strlen(j->root);
    while (n && j->root[n - 1] == '/')
        n--;
    return p + n;
}

/* ---- the per-VM record (vm_head) ------------------------------------------ */

typedef struct head {
    int found;
    char state[16];
    int64_t head_id;           /* 0: none */
    char head_tag[129];
    char pending_tag[129];
    int64_t pending_parent_id;
    char pending_parent[129];
    int pending_diff;
    char staging[4096];
    char fc_version[32], format_version[32];
    int64_t pause_ms, snapshot_ms, diff_bytes, updated_ms;
} head;

static void col_text(char *out, size_t len, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, len, "%s", t ? (const char *)t : "");
}

/* Reads the record of key (or, with key NULL, the one staged record of
** api_sock). h->found = 0 when there is none. */
static int head_get(head *h, sqlite3 *db, const char *key, const char *sock, char *key_out, size_t key_len)
{
    memset(h, 0, sizeof *h);
    sqlite3_stmt *st;
    int rc = cat_prepare(db, &st,
        "SELECT h.state, h.head_id, hs.tag, h.pending_tag, h.pending_parent_id, ps.tag, h.pending_diff,"
        " h.staging, h.fc_version, h.format_version, h.pause_ms, h.snapshot_ms, h.diff_bytes, h.updated_ms,"
        " h.vm_key FROM vm_head h LEFT JOIN snapshot hs ON hs.id = h.head_id"
        " LEFT JOIN snapshot ps ON ps.id = h.pending_parent_id"
        " WHERE (?1 IS NOT NULL AND h.vm_key = ?1) OR (?1 IS NULL AND h.api_sock = ?2 AND h.state = 'staged')");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sock, -1, SQLITE_STATIC);
    int s, n = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            continue;
        h->found = 1;
        col_text(h->state, sizeof h->state, st, 0);
        h->head_id = sqlite3_column_int64(st, 1);
        col_text(h->head_tag, sizeof h->head_tag, st, 2);
        col_text(h->pending_tag, sizeof h->pending_tag, st, 3);
        h->pending_parent_id = sqlite3_column_int64(st, 4);
        col_text(h->pending_parent, sizeof h->pending_parent, st, 5);
        h->pending_diff = sqlite3_column_int(st, 6);
        col_text(h->staging, sizeof h->staging, st, 7);
        col_text(h->fc_version, sizeof h->fc_version, st, 8);
        col_text(h->format_version, sizeof h->format_version, st, 9);
        h->pause_ms = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 10);
        h->snapshot_ms = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 11);
        h->diff_bytes = sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 12);
        h->updated_ms = sqlite3_column_int64(st, 13);
        if (key_out)
            col_text(key_out, key_len, st, 14);
    }
    if (s != SQLITE_DONE)
        rc = cat_err(db, s, "catalog: read the VM record");
    else if (n > 1)
        rc = fks__err(FKS_EINVAL, "%d VMs behind %s have a staged snapshot: name the VM (vm id)", n, sock);
    sqlite3_finalize(st);
    return rc;
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int s = sqlite3_step(st);
    return s == SQLITE_DONE ? 0 : cat_err(db, s, what);
}

/* Writes the record of key (its own transaction). For state "stored" the
** head is head_tag (looked up here). */
static int head_put(fks_store *s, const char *key, const char *sock, const head *h)
{
    int rc = cat_begin(s);
    if (rc)
        return fks__errctx(rc, "record the state of VM %s", key);
    sqlite3_stmt *st = NULL;
    rc = cat_prepare(s->db, &st,
        "INSERT OR REPLACE INTO vm_head (vm_key, api_sock, state, head_id, pending_tag, pending_parent_id,"
        " pending_diff, staging, fc_version, format_version, pause_ms, snapshot_ms, diff_bytes, updated_ms)"
        " VALUES (?1, ?2, ?3, (SELECT id FROM snapshot WHERE tag = ?4), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
        " ?13, ?14)");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sock, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, h->state, -1, SQLITE_STATIC);
        bind_opt_text(st, 4, h->head_tag);
        bind_opt_text(st, 5, h->pending_tag);
        bind_opt_int(st, 6, h->pending_parent_id);
        sqlite3_bind_int(st, 7, h->pending_diff);
        bind_opt_text(st, 8, h->staging);
        bind_opt_text(st, 9, h->fc_version);
        bind_opt_text(st, 10, h->format_version);
        if (h->pause_ms >= 0) sqlite3_bind_int64(st, 11, h->pause_ms);
        if (h->snapshot_ms >= 0) sqlite3_bind_int64(st, 12, h->snapshot_ms);
        if (h->diff_bytes >= 0) sqlite3_bind_int64(st, 13, h->diff_bytes);
        sqlite3_bind_int64(st, 14, fks__wall_ms());
        rc = step_done(s->db, st, "catalog: record the VM's state");
    }
    sqlite3_finalize(st);
    st = NULL;
    /* The same VM under another identity (the other of --vm-id and the
    ** instance id, or an old instance behind this socket): this create
    ** resets its dirty pages too, so its record can no longer vouch. */
    if (rc == 0 && strcmp(h->state, "creating") == 0 &&
        (rc = cat_prepare(s->db, &st, "UPDATE vm_head SET state = 'creating', pending_tag = NULL, updated_ms = ?3"
                                      " WHERE api_sock = ?2 AND vm_key <> ?1")) == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sock, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, fks__wall_ms());
        rc = step_done(s->db, st, "catalog: record the VM's state");
    }
    sqlite3_finalize(st);
    rc = cat_end(s, rc);
    return rc ? fks__errctx(rc, "record the state of VM %s", key) : 0;
}

/* After the ingest of tag: its versions and ingest time on the snapshot
** row, and the VM's record says stored with tag as head, in one commit. */
static int head_stored(fks_store *s, const char *key, const char *sock, const char *tag, const char *fcv,
                       const char *fmt, int64_t ingest_ms)
{
    int rc = cat_begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = cat_prepare(s->db, &st, "UPDATE snapshot SET fc_version = ?2, format_version = ?3,"
                                 " ingest_ms = coalesce(?4, ingest_ms) WHERE tag = ?1");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
        bind_opt_text(st, 2, fcv);
        bind_opt_text(st, 3, fmt);
        if (ingest_ms >= 0)
            sqlite3_bind_int64(st, 4, ingest_ms);
        rc = step_done(s->db, st, "catalog: record the snapshot's versions");
        if (rc == 0 && sqlite3_changes(s->db) == 0)
            rc = fks__err(FKS_ENOTFOUND, "snapshot %s not found", tag);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0 && key &&
        (rc = cat_prepare(s->db, &st, "INSERT OR REPLACE INTO vm_head (vm_key, api_sock, state, head_id,"
                                      " fc_version, format_version, updated_ms) VALUES (?1, ?2, 'stored',"
                                      " (SELECT id FROM snapshot WHERE tag = ?3), ?4, ?5, ?6)")) == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sock, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, tag, -1, SQLITE_STATIC);
        bind_opt_text(st, 4, fcv);
        bind_opt_text(st, 5, fmt);
        sqlite3_bind_int64(st, 6, fks__wall_ms());
        rc = step_done(s->db, st, "catalog: record the VM's last snapshot");
    }
    sqlite3_finalize(st);
    return cat_end(s, rc);
}

/* Clears the staging path of a record whose staging was removed. */
static void head_forget_staging(fks_store *s, const char *key)
{
    if (cat_begin(s) != 0)
        return;
    sqlite3_stmt *st = NULL;
    int rc = cat_prepare(s->db, &st, "UPDATE vm_head SET staging = NULL WHERE vm_key = ?1");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = step_done(s->db, st, "catalog: update the VM's record");
    }
    sqlite3_finalize(st);
    cat_end(s, rc);
}

/* "vm:<id>" or "fc:<instance id>@<socket's absolute path>". */
static int vm_key(char *out, size_t len, char *sock_abs, size_t sock_len, const char *vm_id, const char *iid,
                  const char *sock)
{
    char rp[4096];
    snprintf(sock_abs, sock_len, "%s", realpath(sock, rp) ? rp : sock);
    if (vm_id && !*vm_id)
        return fks__err(FKS_EINVAL, "an empty VM id");
    if (vm_id)
        return fks__path(out, len, "vm:%s", vm_id);
    return fks__path(out, len, "fc:%s@%s", iid, sock_abs);
}

/* One branch per VM at a time: flock DIR/vm-locks/<hash>.lock. */
static int vm_lock(int *fd, fks_store *s, const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    char dir[PATH_MAX + 16], p[PATH_MAX + 64];
    int rc = fks__path(dir, sizeof dir, "%s/vm-locks", s->dir);
    if (rc == 0 && (rc = fks__mkdir_p(dir, 0700)) == 0)
        rc = fks__path(p, sizeof p, "%s/%016llx.lock", dir, (unsigned long long)h);
    if (rc)
        return rc;
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return fks__errno(FKS_EIO, errno, "VM lock %s", p);
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        if (e == EWOULDBLOCK)
            return fks__err(FKS_ELOCKED, "another branch of the VM at %s is running (%s)", key, p);
        return fks__errno(FKS_EIO, e, "VM lock %s", p);
    }
    return 0;
}

static void test_kill(const char *where)
{
    const char *e = getenv("FORKSTORE_TEST_KILL_AFTER_CREATE");
    if (e && strcmp(e, where) == 0)
        raise(SIGKILL);
}

static long scaled_timeout(long ctl_ms, int64_t mem_mib)
{
    long t = 10000 + (long)(mem_mib > 0 ? mem_mib : 4096) * 1000 / 64;
    return t > ctl_ms ? t : ctl_ms;
}

/* ---- branch --------------------------------------------------------------- */

/* Ingests the staged files of tag and records it as the VM's head. */
static int ingest_staged(fks_branch_result *res, fks_store *s, const fks_branch_opts *o, const char *key,
                         const char *sock, const char *tag, const char *parent, int diff, const char *stage)
{
    char mem[4200], vm[4200];
    snprintf(mem, sizeof mem, "%s/memory", stage);
    snprintf(vm, sizeof vm, "%s/vmstate", stage);
    struct stat st;
    if (stat(mem, &st) != 0)
        return fks__errno(FKS_EIO, errno, "the VMM wrote no memory file %s", mem);
    res->diff_bytes = (int64_t)st.st_blocks * 512;
    double t2 = fks__now();
    fks_artifact_in a[] = {{"memory", mem, diff}, {"vmstate", vm, 0}};
    fks_ingest_opts io = {.tag = tag, .parent = parent, .artifacts = a, .n_artifacts = 2,
                          .progress = o->progress, .progress_arg = o->progress_arg,
                          .pause_ms = res->pause_ms, .snapshot_ms = res->snapshot_ms,
                          .diff_bytes = res->diff_bytes};
    int rc = fks_ingest(&res->ingest, s, &io);
    if (rc)
        return rc;
    res->ingest_s = fks__now() - t2;
    res->ingest_ms = (int64_t)(res->ingest_s * 1000 + 0.5);
    if ((rc = head_stored(s, key, sock, tag, res->fc_version, res->format_version, res->ingest_ms)) != 0)
        return fks__errctx(rc, "snapshot %s is stored, but the record of VM %s was not updated", tag, key);
    res->diff = diff;
    return 0;
}

/* resume: finish the ingest of the VM's staged snapshot. */
static int branch_resume(fks_branch_result *res, fks_store *s, const fks_branch_opts *o, const char *key,
                         const char *sock)
{
    head h;
    char found_key[600] = "";
    int rc = head_get(&h, s->db, key[0] ? key : NULL, sock, found_key, sizeof found_key);
    if (rc)
        return rc;
    if (!key[0])
        snprintf(res->vm_key, sizeof res->vm_key, "%s", found_key);
    key = res->vm_key;
    if (!h.found || strcmp(h.state, "stored") == 0)
        return fks__err(FKS_ENOTFOUND, "VM %s has no staged snapshot to finish", key[0] ? key : sock);
    if (strcmp(h.state, "creating") == 0) {
        res->need_full = 1;
        return fks__err(FKS_EREFUSED, "the last snapshot/create of VM %s (%s) has an unknown outcome: its "
                        "files cannot be trusted and its dirty pages may be reset", key, h.pending_tag);
    }
    const char *tag = o->tag ? o->tag : h.pending_tag;
    snprintf(res->tag, sizeof res->tag, "%s", tag);
    snprintf(res->fc_version, sizeof res->fc_version, "%s", h.fc_version);
    snprintf(res->format_version, sizeof res->format_version, "%s", h.format_version);
    res->pause_ms = h.pause_ms;
    res->snapshot_ms = h.snapshot_ms;
    res->pause_s = (double)h.pause_ms / 1000;
    res->snapshot_s = (double)h.snapshot_ms / 1000;
    fks_snapinfo si;
    /* A crash between the ingest's commit and the record's update. */
    if (strcmp(tag, h.pending_tag) == 0 && fks_get(&si, s, tag) == 0 && si.created_ms >= h.updated_ms) {
        if ((rc = head_stored(s, key, sock, tag, h.fc_version, h.format_version, -1)) == 0 && h.staging[0])
            remove_staging(h.staging);
        res->diff = h.pending_diff;
        return rc;
    }
    if (h.pending_diff && !h.pending_parent[0]) {
        res->need_full = 1;
        return fks__err(FKS_EREFUSED, "the parent of VM %s's staged Diff %s was removed from the store", key, tag);
    }
    if (!h.staging[0])
        return fks__err(FKS_ENOTFOUND, "the staged files of VM %s's snapshot %s are gone", key, tag);
    snprintf(res->kept_staging, sizeof res->kept_staging, "%s", h.staging);
    res->can_resume = 1;
    rc = ingest_staged(res, s, o, key, sock, tag, h.pending_parent[0] ? h.pending_parent : NULL, h.pending_diff,
                       h.staging);
    if (rc == 0) {
        remove_staging(h.staging);
        res->kept_staging[0] = 0;
        res->can_resume = 0;
    }
    return rc;
}

/* Refuses a Diff on parent unless the record vouches for it. */
static int check_chain(fks_branch_result *res, const head *h, const char *key, const char *parent)
{
    res->need_full = 1;
    if (!h->found)
        return fks__err(FKS_EREFUSED, "no snapshot of VM %s is recorded in this store: a Diff on %s would miss "
                        "the pages dirtied before that VM's last snapshot", key, parent);
    if (strcmp(h->state, "creating") == 0 && !h->pending_tag[0])
        return fks__err(FKS_EREFUSED, "VM %s was snapshotted under another identity behind the same API socket: "
                        "Firecracker reset its dirty pages, so no Diff on %s is correct", key, parent);
    if (strcmp(h->state, "creating") == 0)
        return fks__err(FKS_EREFUSED, "the last snapshot/create of VM %s (%s) has an unknown outcome: Firecracker "
                        "may have reset its dirty pages, so no Diff is correct", key, h->pending_tag);
    if (strcmp(h->state, "staged") == 0) {
        res->can_resume = 1;
        return fks__err(FKS_EREFUSED, "VM %s's last snapshot %s was created but not stored (its files are kept "
                        "in %s): a Diff on %s would miss the pages it holds", key, h->pending_tag, h->staging,
                        parent);
    }
    if (!h->head_tag[0])
        return fks__err(FKS_EREFUSED, "VM %s's last snapshot was removed from the store: a Diff has no base", key);
    if (strcmp(h->head_tag, parent) != 0) {
        snprintf(res->head, sizeof res->head, "%s", h->head_tag);
        return fks__err(FKS_EREFUSED, "VM %s's last snapshot is %s, not %s: a Diff on %s would miss the pages "
                        "dirtied before %s", key, h->head_tag, parent, parent, h->head_tag);
    }
    res->need_full = 0;
    return 0;
}

/* The arguments, before the VMM is asked anything: a valid new tag (none
** needed with resume) and, for a Diff, the parent's id into *parent_id. */
static int branch_args(fks_branch_result *res, fks_store *s, const fks_branch_opts *o, int64_t *parent_id)
{
    const char *tag = o->tag;
    int rc;
    if (!o->resume || tag) {
        if (!tag)
            return fks__err(FKS_EINVAL, "no tag given");
        if ((rc = fks_check_tag(tag)) != 0)
            return rc;
        snprintf(res->tag, sizeof res->tag, "%s", tag);
    }
    if (o->parent && !o->resume) {
        fks_snapinfo pi;
        if ((rc = fks_get(&pi, s, o->parent)) != 0)
            return rc;
        *parent_id = pi.id;
    }
    fks_snapinfo exists;
    if (tag && fks_get(&exists, s, tag) == 0)
        return fks__err(FKS_EEXIST, "tag %s already exists", tag);
    return 0;
}

/* The lock first: a second branch must not queue behind the first's
** create on the VMM's one API connection. */
static int branch_lock(int *fd, fks_store *s, const fks_branch_opts *o)
{
    char lk[4200], rp[4096];
    snprintf(lk, sizeof lk, "%s%s", o->vm_id ? "vm:" : "sock:",
             o->vm_id ? o->vm_id : realpath(o->api_sock, rp) ? rp : o->api_sock);
    return vm_lock(fd, s, lk);
}

/* Ask before pausing: a missing or silent VMM fails here, with the VM
** (if any) untouched. The VM's state into state, its key into res->vm_key
** and the API socket's absolute path into sock. A resume can do without
** the VMM. */
static int branch_identity(fks_branch_result *res, fc_client *c, const fks_branch_opts *o, char *state,
                           size_t state_len, char *sock, size_t sock_len)
{
    char iid[256] = "";
    int frc = fc_instance(c, iid, sizeof iid, state, state_len);
    if (frc && !o->resume)
        return frc;
    if (frc && !o->vm_id) {
        snprintf(sock, sock_len, "%s", o->api_sock);
        char rp[4096];
        if (realpath(o->api_sock, rp))
            snprintf(sock, sock_len, "%s", rp);
        return 0;
    }
    return vm_key(res->vm_key, sizeof res->vm_key, sock, sock_len, o->vm_id, iid, o->api_sock);
}

/* The VMM's version (into res->fc_version) and guest memory size (into
** *mem_mib, 0 unknown); refuses a Diff on a release that corrupts it for
** this guest, and a VM that is not Running. */
static int branch_vmm_checks(fks_branch_result *res, fc_client *c, const fks_branch_opts *o, int diff,
                             const char *state, int64_t *mem_mib)
{
    char fcv[32] = "";
    ver v = {0};
    int known = 0;
    int rc = vmm_version(fcv, sizeof fcv, &v, &known, c, o->api_sock, o->force_version);
    if (rc)
        return rc;
    snprintf(res->fc_version, sizeof res->fc_version, "%s", fcv);
    if (fc_mem_size_mib(c, mem_mib) != 0)
        *mem_mib = 0;
    if (diff && known && v.minor == 14 && v.patch < 2 && (*mem_mib <= 0 || *mem_mib > 3072 || fc_hotplug(c))) {
#if defined(__x86_64__)
        res->need_full = 1;
        return fks__err(FKS_EREFUSED, "Firecracker %s corrupts Diff snapshots of guests with more than one memory "
                        "slot, and VM %s has %lld MiB (over 3 GiB) or hot-pluggable memory; fixed in 1.14.2", fcv,
                        res->vm_key, (long long)*mem_mib);
#endif
    }
    if (strcmp(state, "Running") != 0)
        return fks__err(FKS_EINVAL, "the VM at %s is %s, not Running: nothing to branch", o->api_sock, state);
    return 0;
}

/* Chain safety, before the VM is touched: the VM's record must vouch for
** a Diff on o->parent. The staging an unfinished record names into old. */
static int branch_chain(fks_branch_result *res, fks_store *s, const fks_branch_opts *o, const char *sock, int diff,
                        char *old, size_t old_len)
{
    head h;
    int rc = head_get(&h, s->db, res->vm_key, sock, NULL, 0);
    if (rc)
        return rc;
    if (diff && (rc = check_chain(res, &h, res->vm_key, o->parent)) != 0)
        return rc;
    if (h.found && strcmp(h.state, "stored") != 0 && h.staging[0])
        snprintf(old, old_len, "%s", h.staging);
    return 0;
}

/* The record says "creating" before the VMM hears of the create: nh is
** that record (staged into stage), kept for the staged one. */
static int record_creating(head *nh, fks_branch_result *res, fks_store *s, const char *sock, const char *tag,
                           int64_t parent_id, int diff, const char *stage)
{
    *nh = (head){.found = 1, .pending_parent_id = parent_id, .pending_diff = diff,
                 .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
    snprintf(nh->state, sizeof nh->state, "creating");
    snprintf(nh->pending_tag, sizeof nh->pending_tag, "%s", tag);
    snprintf(nh->staging, sizeof nh->staging, "%s", stage);
    snprintf(nh->fc_version, sizeof nh->fc_version, "%s", res->fc_version);
    return head_put(s, res->vm_key, sock, nh);
}

/* The pause window: pause, snapshot/create into vm and mem, resume (also
** when the pause or the create failed); res->pause_* and snapshot_* timed.
** *rrc: the resume's code. *keep = 1 when the VMM may still write there. */
static int pause_create_resume(fks_branch_result *res, fc_client *c, const fks_branch_opts *o, int diff,
                               const char *vm, const char *mem, int64_t mem_mib, int *rrc, int *keep)
{
    double t0 = fks__now();
    long ctl = fc_timeout(c);
    /* From here on every path runs the resume below. */
    int rc = fc_pause(c);
    if (rc == 0) {
        double t1 = fks__now();
        fc_set_timeout(c, scaled_timeout(ctl, mem_mib));
        rc = fc_snapshot_create(c, diff, vmm_path(vm, &o->jail), vmm_path(mem, &o->jail));
        fc_set_timeout(c, ctl);
        res->snapshot_s = fks__now() - t1;
        res->snapshot_ms = (int64_t)(res->snapshot_s * 1000 + 0.5);
        if (rc == FKS_ETIMEDOUT)
            *keep = 1;            /* the VMM may still be writing into stage */
    }
    char first[1024];
    snprintf(first, sizeof first, "%s", fks_errmsg());
    *rrc = fc_resume(c);
    if (*rrc == FKS_ETIMEDOUT)
        *keep = 1;
    res->pause_s = fks__now() - t0;
    res->pause_ms = (int64_t)(res->pause_s * 1000 + 0.5);
    if (rc && *rrc)
        return fks__err(rc, "%s; and resuming the VM failed too: %s", first, fks_errmsg());
    if (rc)
        fks__err(rc, "%s (the VM was resumed)", first);
    return rc;
}

/* After a successful create: the record says "staged", with the pause's
** timings and the vmstate's format version (into res). The test kills
** come before and after it. */
static int record_staged(head *nh, fks_branch_result *res, fks_store *s, const char *sock, const char *tag,
                         const char *vm)
{
    test_kill("creating");
    snprintf(nh->state, sizeof nh->state, "staged");
    nh->pause_ms = res->pause_ms;
    nh->snapshot_ms = res->snapshot_ms;
    ver fv;
    if (vmstate_format(res->format_version, sizeof res->format_version, &fv, vm) != 0)
        res->format_version[0] = 0;       /* recorded as unknown; load checks again */
    snprintf(nh->format_version, sizeof nh->format_version, "%s", res->format_version);
    int hrc = head_put(s, res->vm_key, sock, nh);
    if (hrc) {
        res->need_full = 1;
        return fks__errctx(hrc, "snapshot %s was created (Firecracker reset its dirty pages)", tag);
    }
    test_kill("staged");
    return 0;
}

int fks_branch(fks_branch_result *res, fks_store *s, const fks_branch_opts *o)
{
    char stage[4096] = "", mem[4200], vm[4200], state[32] = "", sock[4096];
    char old_staging[4096] = "";
    const char *tag = o->tag;
    fc_client *c = NULL;
    int lockfd = -1, rc, keep = 0;
    memset(res, 0, sizeof *res);
    res->pause_ms = res->snapshot_ms = res->ingest_ms = -1;
    int64_t parent_id = 0;
    if ((rc = branch_args(res, s, o, &parent_id)) != 0)
        return rc;
    int diff = o->parent && !o->full;
    if ((rc = fc_open(&c, o->api_sock, o->timeout_ms > 0 ? o->timeout_ms : 10000)) != 0)
        return rc;
    if ((rc = branch_lock(&lockfd, s, o)) != 0 ||
        (rc = branch_identity(res, c, o, state, sizeof state, sock, sizeof sock)) != 0)
        goto out;
    if (o->resume) {
        rc = branch_resume(res, s, o, res->vm_key, sock);
        goto out;
    }
    int64_t mem_mib = 0;
    if ((rc = branch_vmm_checks(res, c, o, diff, state, &mem_mib)) != 0 ||
        (rc = branch_chain(res, s, o, sock, diff, old_staging, sizeof old_staging)) != 0)
        goto out;
    if ((rc = make_staging(stage, sizeof stage, o->staging, &o->jail)) != 0)
        goto out;
    snprintf(mem, sizeof mem, "%s/memory", stage);
    snprintf(vm, sizeof vm, "%s/vmstate", stage);
    head nh;
    if ((rc = record_creating(&nh, res, s, sock, tag, parent_id, diff, stage)) != 0)
        goto out;
    int rrc = 0;
    if ((rc = pause_create_resume(res, c, o, diff, vm, mem, mem_mib, &rrc, &keep)) != 0)
        goto failed_create;
    /* Created: from here on the staged files are the VM's only copy of the
    ** pages dirtied since its last snapshot, and they stay until stored. */
    keep = 1;
    if ((rc = record_staged(&nh, res, s, sock, tag, vm)) != 0)
        goto out;
    if (rrc) {
        rc = fks__errctx(rrc, "snapshot taken but the VM could not be resumed");
        res->can_resume = 1;
        goto out;
    }
    if (old_staging[0] && strcmp(old_staging, stage) != 0)
        remove_staging(old_staging);      /* the VMM answered since: it is done with it */

    /* The VM runs again: now the file-system work. */
    rc = ingest_staged(res, s, o, res->vm_key, sock, tag, o->parent, diff, stage);
    if (rc) {
        res->can_resume = 1;
        fks__errctx(rc, "snapshot %s of VM %s was created (Firecracker reset its dirty pages) but not stored; "
                    "its files are kept in %s", tag, res->vm_key, stage);
        goto out;
    }
    keep = 0;
    goto out;
failed_create:
    /* The record stays "creating": a failed create may have reset the
    ** dirty bitmap (a Diff reads and clears it before writing). */
    res->need_full = 1;
    if (!keep && stage[0]) {
        remove_staging(stage);
        stage[0] = 0;
        head_forget_staging(s, res->vm_key);
    }
out:
    if (stage[0] && keep)
        snprintf(res->kept_staging, sizeof res->kept_staging, "%s", stage);
    else if (stage[0])
        remove_staging(stage);
    if (lockfd >= 0)
        close(lockfd);
    fc_close(c);
    if (rc)
        fks__errctx(rc, "branch %s", res->tag[0] ? res->tag : "(resume)");
    return rc;
}

int fks_branch_info_get(fks_branch_info *out, fks_store *s, const char *tag)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    int64_t uv = 0;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        uv = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (uv < 4)          /* opened read-only before migration 0004: none recorded */
        return fks_get(&(fks_snapinfo){0}, s, tag);
    if ((rc = cat_prepare(s->db, &st, "SELECT fc_version, format_version FROM snapshot WHERE tag = ?1")) != 0)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        col_text(out->fc_version, sizeof out->fc_version, st, 0);
        col_text(out->format_version, sizeof out->format_version, st, 1);
    } else if (r == SQLITE_DONE) {
        rc = fks__err(FKS_ENOTFOUND, "snapshot %s not found", tag);
    } else {
        rc = cat_err(s->db, r, "catalog: read the snapshot's versions");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- load ------------------------------------------------------------------ */

/* Copies src to dst (new; O_EXCL temp + rename), holes kept for zero blocks. */
static int copy_file(const char *src, const char *dst)
{
    char tmp[4200];
    int in = -1, outfd = -1, rc = fks__path(tmp, sizeof tmp, "%s.XXXXXX", dst);
    char *buf = NULL;
    if (rc)
        return rc;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = fks__errno(FKS_EIO, errno, "rootfs %s", src);
        goto out;
    }
    if ((outfd = mkstemp(tmp)) < 0) {
        rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "create %s", tmp);
        tmp[0] = 0;
        goto out;
    }
    enum { BUF = 1 << 20 };
    if (!(buf = malloc(BUF))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    off_t off = 0;
    for (;;) {
        ssize_t n = read(in, buf, BUF);
        if (n < 0) {
            rc = fks__errno(FKS_EIO, errno, "read rootfs %s", src);
            goto out;
        }
        if (n == 0)
            break;
        if (!fks__is_zero(buf, (size_t)n) && pwrite(outfd, buf, (size_t)n, off) != n) {
            rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "write %s", tmp);
            goto out;
        }
        off += n;
    }
    if (ftruncate(outfd, off) != 0 || fsync(outfd) != 0) {
        rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "write %s", tmp);
        goto out;
    }
    if (link(tmp, dst) != 0)
        rc = fks__errno(errno == EEXIST ? FKS_EEXIST : FKS_EIO, errno, "place the rootfs at %s", dst);
out:
    free(buf);
    if (in >= 0)
        close(in);
    if (outfd >= 0)
        close(outfd);
    if (tmp[0] && outfd >= 0)
        unlink(tmp);
    return rc;
}

static int chown_jail(const char *p, const fks_jail *j)
{
    if ((j->uid < 0 && j->gid < 0) || chown(p, (uid_t)j->uid, (gid_t)j->gid) == 0)
        return 0;
    return fks__errno(FKS_EPERM, errno, "give %s to the jail's uid %ld gid %ld", p, j->uid, j->gid);
}

/* Lazy load: every artifact of tag but "memory" into dir (a page server
** serves the memory), through the page-level API; holes stay holes. */
static int restore_but_memory(fks_store *s, const char *tag, const char *dir)
{
    fks_snap_stats *ss = NULL;
    fks_image *im = NULL;
    uint8_t *buf = malloc(256 * FKS_PAGE_SIZE);
    int rc = buf ? fks_snap_stats_get_ex(&ss, s, tag, 0) : fks__err(FKS_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && ss && i < ss->n_artifacts; i++) {
        const char *name = ss->artifacts[i].name;
        if (!strcmp(name, "memory"))
            continue;
        char p[8192];
        if ((rc = fks__path(p, sizeof p, "%s/%s", dir, fks_artifact_filename(name))) != 0 ||
            (rc = fks_image_open(&im, s, tag, name)) != 0)
            break;
        fks_image_info info;
        fks_image_info_get(&info, im);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)info.size) != 0)
            rc = fks__errno(FKS_EIO, errno, "write %s", p);
        for (uint64_t pg = 0; rc == 0 && pg < info.npages; pg += 256) {
            uint64_t n = info.npages - pg < 256 ? info.npages - pg : 256;
            if ((rc = fks_image_read(im, pg, n, buf)) != 0)
                break;
            uint64_t end = pg * FKS_PAGE_SIZE + n * FKS_PAGE_SIZE;
            size_t len = (size_t)((end > info.size ? info.size : end) - pg * FKS_PAGE_SIZE);
            if (!fks__is_zero(buf, len))
                rc = fks__pwrite_full(fd, buf, len, (off_t)(pg * FKS_PAGE_SIZE), p);
        }
        if (fd >= 0 && close(fd) != 0 && rc == 0)
            rc = fks__errno(FKS_EIO, errno, "close %s", p);
        fks_image_close(im);
        im = NULL;
    }
    fks_snap_stats_free(ss);
    free(buf);
    return rc;
}

/* The target VMM, before anything is staged: a fresh VMM (Not started; its
** instance id into iid), a supported version (into res->fc_version, v and
** *known), and one that has the overrides asked for. */
static int load_target(fks_load_result *res, fc_client *c, const fks_load_opts *o, char *iid, size_t iid_len,
                       ver *v, int *known)
{
    char state[32] = "", fcv[32] = "";
    int rc = fc_instance(c, iid, iid_len, state, sizeof state);
    if (rc)
        return rc;
    if (strcmp(state, "Not started") != 0)
        return fks__err(FKS_EINVAL, "the VMM at %s is %s: a snapshot loads only into a fresh VMM (Not started)",
                        o->api_sock, state);
    if ((rc = vmm_version(fcv, sizeof fcv, v, known, c, o->api_sock, o->force_version)) != 0)
        return rc;
    snprintf(res->fc_version, sizeof res->fc_version, "%s", fcv);
    if (*known && o->n_net_overrides && v->minor < 12)
        return fks__err(FKS_EREFUSED, "Firecracker %s at %s has no network overrides on load (from 1.12)", fcv,
                        o->api_sock);
    if (*known && o->vsock_uds && v->minor < 16)
        return fks__err(FKS_EREFUSED, "Firecracker %s at %s has no vsock override on load (from 1.16)", fcv,
                        o->api_sock);
    return 0;
}

/* Where the rootfs goes (o->rootfs, under the jail root with a jail) into
** dst; FKS_EEXIST when something is there already. */
static int rootfs_target(char *dst, size_t len, const char *tag, const fks_load_opts *o)
{
    int rc = fks__path(dst, len, "%s%s%s", o->jail.root ? o->jail.root : "",
                       o->jail.root && o->rootfs[0] != '/' ? "/" : "", o->rootfs);
    if (rc)
        return rc;
    struct stat st;
    if (lstat(dst, &st) == 0)
        return fks__err(FKS_EEXIST, "%s already exists: not replacing it with snapshot %s's rootfs", dst, tag);
    return 0;
}

/* A new staging directory (into stage) with tag's files: from the remote,
** all but memory for a lazy load, else all. For a remote snapshot the
** memory's size into si->memory_bytes. */
static int stage_snapshot(char *stage, size_t len, fks_snapinfo *si, fks_store *s, const char *tag,
                          const fks_load_opts *o, int remote)
{
    fks_remote_staged rs = {0};
    int rc = make_staging(stage, len, o->staging, &o->jail);
    if (rc)
        return rc;
    if (remote)
        rc = fks_remote_stage(&rs, s, o->remote, tag, stage, "memory");
    else
        rc = o->uffd_sock ? restore_but_memory(s, tag, stage) : fks_restore(NULL, s, tag, stage, 0, NULL, NULL);
    if (rc)
        return rc;
    if (remote && o->rootfs && !rs.has_rootfs)
        return fks__err(FKS_ENOTFOUND, "snapshot %s has no rootfs to place at %s", tag, o->rootfs);
    if (remote)
        si->memory_bytes = rs.skipped_bytes;
    return 0;
}

/* The staged vmstate's format version (into res->format_version) against
** what the VMM v loads, refused before any load request (a failed load
** makes Firecracker exit); force_version skips it. */
static int check_format(fks_load_result *res, const fks_load_opts *o, const char *tag, const char *vm,
                        const ver *v, int known)
{
    ver fv;
    int frc = vmstate_format(res->format_version, sizeof res->format_version, &fv, vm);
    if (frc && !o->force_version)
        return fks__errctx(FKS_EREFUSED, "snapshot %s cannot be checked against Firecracker %s", tag,
                           res->fc_version);
    if (frc == 0 && known && !o->force_version && (fv.major != format_major_of(v) || fv.minor > 0))
        return fks__err(FKS_EREFUSED, "snapshot %s has format version %s; Firecracker %s at %s loads %d.0.x only "
                        "(a failed load would make it exit)", tag, res->format_version, res->fc_version,
                        o->api_sock, format_major_of(v));
    return 0;
}

/* Moves the staged rootfs to dst (a copy across file systems) and gives it
** to the jail; *placed = 1 once dst is there (to remove on failure). */
static int place_rootfs(int *placed, const char *stage, const char *dst, const char *tag, const fks_jail *j)
{
    char src[4200];
    snprintf(src, sizeof src, "%s/rootfs", stage);
    if (rename(src, dst) != 0) {
        if (errno != EXDEV)
            return fks__errno(FKS_EIO, errno, "place snapshot %s's rootfs at %s", tag, dst);
        int rc = copy_file(src, dst);
        if (rc)
            return rc;
        unlink(src);
    }
    *placed = 1;
    return chown_jail(dst, j);
}

/* PUT /snapshot/load of vm and mem (or the page server's socket) with the
** options VMM v takes, under the scaled timeout; res->load_s times it. */
static int send_load(fks_load_result *res, fc_client *c, const fks_load_opts *o, const ver *v, const char *vm,
                     const char *mem, uint64_t memory_bytes)
{
    struct stat mst;
    int64_t mem_mib = o->uffd_sock ? (int64_t)(memory_bytes >> 20)
                                   : stat(mem, &mst) == 0 ? (int64_t)(mst.st_size >> 20) : 0;
    fc_load_req req = {.vmstate_path = vmm_path(vm, &o->jail),
                       .mem_path = o->uffd_sock ? o->uffd_sock : vmm_path(mem, &o->jail), .uffd = !!o->uffd_sock,
                       .resume = !o->paused,
                       .dirty_field = (v->major || v->minor) && (v->major < 1 || (v->major == 1 && v->minor < 13))
                                          ? "enable_diff_snapshots" : "track_dirty_pages",
                       .net = o->net_overrides, .n_net = o->n_net_overrides, .vsock_uds = o->vsock_uds};
    long ctl = fc_timeout(c);
    fc_set_timeout(c, scaled_timeout(ctl, mem_mib));
    double t0 = fks__now();
    int rc = fc_snapshot_load(c, &req);
    res->load_s = fks__now() - t0;
    fc_set_timeout(c, ctl);
    return rc;
}

/* The loaded VM's memory is tag's: a Diff on tag can follow. Records tag
** as the VM's last snapshot (res->recorded) unless the store is read-only. */
static void record_loaded(fks_load_result *res, fks_store *s, const char *tag, const fks_load_opts *o,
                          const char *iid)
{
    char key[600], sock[4096];
    if (vm_key(key, sizeof key, sock, sizeof sock, o->vm_id, iid, o->api_sock) == 0 && !s->readonly) {
        head h = {.found = 1, .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
        snprintf(h.state, sizeof h.state, "stored");
        snprintf(h.head_tag, sizeof h.head_tag, "%s", tag);
        snprintf(h.fc_version, sizeof h.fc_version, "%s", res->fc_version);
        snprintf(h.format_version, sizeof h.format_version, "%s", res->format_version);
        res->recorded = head_put(s, key, sock, &h) == 0;
    }
}

int fks_load(fks_load_result *res, fks_store *s, const char *tag, const fks_load_opts *o)
{
    char stage[4096] = "", mem[4200], vm[4200], rootfs_dst[8192] = "", iid[256] = "";
    fc_client *c = NULL;
    memset(res, 0, sizeof *res);
    int rc = fks_check_tag(tag), placed = 0;
    if (rc)
        return rc;
    fks_snapinfo si;
    /* lazy restore of a snapshot the store lacks: the other artifacts
    ** from the remote (remote_lazy.c) */
    int remote = 0;
    if ((rc = fks_get(&si, s, tag)) == FKS_ENOTFOUND && o->uffd_sock && o->from_remote)
        remote = 1, rc = 0;
    if (rc)
        return rc;
    if (o->rootfs && !remote && !si.has_rootfs)
        return fks__err(FKS_ENOTFOUND, "snapshot %s has no rootfs to place at %s", tag, o->rootfs);
    if ((rc = fc_open(&c, o->api_sock, o->timeout_ms > 0 ? o->timeout_ms : 10000)) != 0)
        return rc;
    ver v = {0};
    int known = 0;
    if ((rc = load_target(res, c, o, iid, sizeof iid, &v, &known)) != 0)
        goto out;
    if (o->rootfs && (rc = rootfs_target(rootfs_dst, sizeof rootfs_dst, tag, o)) != 0)
        goto out;
    if ((rc = stage_snapshot(stage, sizeof stage, &si, s, tag, o, remote)) != 0)
        goto out;
    snprintf(mem, sizeof mem, "%s/memory.bin", stage);
    snprintf(vm, sizeof vm, "%s/vmstate", stage);
    if ((rc = check_format(res, o, tag, vm, &v, known)) != 0)
        goto out;
    if ((!o->uffd_sock && (rc = chown_jail(mem, &o->jail)) != 0) || (rc = chown_jail(vm, &o->jail)) != 0)
        goto out;
    if (o->rootfs && (rc = place_rootfs(&placed, stage, rootfs_dst, tag, &o->jail)) != 0)
        goto out;
    if ((rc = send_load(res, c, o, &v, vm, mem, si.memory_bytes)) != 0)
        goto out;
    if (!remote)
        record_loaded(res, s, tag, o, iid);
out:
    fc_close(c);
    if (rc) {
        if (placed)
            unlink(rootfs_dst);
        if (stage[0])
            remove_staging(stage);
        return fks__errctx(rc, "load %s", tag);
    }
    return fks__path(res->staging, sizeof res->staging, "%s", stage);
}
