/*
** forkstore.h: the one public header of libforkstore.
**
** forkstore keeps microVM snapshots (Firecracker memory files, vmstate,
** rootfs images, any named file) in one content-addressed store: each
** distinct 4 KiB page is stored once, zstd-compressed, in preallocated
** chunk files; a SQLite catalog indexes lineage and every page.
**
** Conventions (the same for every function here):
**  - Functions return int: 0 (FKS_OK) on success, a negative FKS_E* code on
**    failure. After a failure fks_errmsg() returns a message for the user
**    naming the object involved; it is thread-local and valid until the
**    next call into the library from the same thread.
**  - Out-parameters come first.
**  - Handles are opaque; *_close, *_free and *_clear accept NULL.
**  - Strings passed in are borrowed for the duration of the call only.
**  - Who owns a result, one rule for every call:
**      a fixed-size report is a struct the caller provides and the call
**        fills (fks_gc_report, fks_ingest_stats, fks_store_stats, ...);
**        if it holds lists (fks_prune_result, fks_forkd_import_result),
**        fks_<name>_clear() frees the lists, never the struct;
**      a variable-size result is allocated by the call and returned in
**        *out; fks_<name>_free() frees it and everything in it
**        (fks_verify_free, fks_diff_free, ...);
**      an array of plain structs (fks_list, fks_chain, ...) is returned
**        in *out with its count and freed with free().
**  - Words: a snapshot is a tagged set of artifacts; an artifact is one
**    named file of a snapshot ("memory", "vmstate", "rootfs", any
**    --file NAME); an image is one artifact opened page by page
**    (fks_image); a page is 4 KiB of an artifact; the store is the
**    directory with the catalog and the chunk files.
**
** Threads: the library is thread-safe with one rule. A handle (fks_store,
** fks_image, fks_lease) is used by one thread at a time: give each thread
** its own fks_open() of the store (or serialize calls on a shared handle
** yourself). Any number of handles, in one process or many, may work on
** one store at once: ingest, restore, branch, rmi, gc, verify, stats, sql
** and the remote calls run concurrently (write transactions take turns on
** the store's writer lock; one gc runs at a time per store, a second gets
** FKS_ELOCKED). fks_errmsg() is per thread. tests/unit/test_threads.c runs
** ingest, restore and stats from several threads, a handle each.
**
** Linking: libforkstore.so.0 (pkg-config forkstore) or libforkstore.a
** (pkg-config --static forkstore). The shared library exports the
** functions declared here and nothing else; src/abi/libforkstore.sym is
** the list, checked by `make abi-check`: removing or changing one of them
** needs a new soname.
**
** Tiers: each section below is marked [engine] or [integrations]. The
** engine (src/engine/: store, ingest, restore, lineage, gc, verify,
** recovery, SQL, statistics, page-level access, leases) is also built
** alone as libforkstore-engine.a, which needs only SQLite, zstd and xxhash
** (-lsqlite3 -lzstd -lxxhash -lpthread). The integrations
** (src/integrations/: Firecracker branching, forkd interop, retention, the
** page server, remotes) use the engine through this header; they need
** json-c and libcrypto (libcurl is loaded at run time) and are in
** libforkstore.a and libforkstore.so only.
*/
#ifndef FORKSTORE_H
#define FORKSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)   /* the library is built hidden */
#endif

#define FKS_VERSION_STRING "0.1.0"
/* The version as one number, major * 1000000 + minor * 1000 + patch (as
** SQLite's), for compile-time checks; the library's own at run time is
** fks_version_number(), fks_version() its string. */
#define FKS_VERSION_NUMBER 1000
const char *fks_version(void);
int fks_version_number(void);
#define FKS_PAGE_SIZE 4096
/* The longest snapshot tag and artifact name, in characters (the rules:
** fks_check_tag, fks_check_name); a buffer for one holds FKS_TAG_MAX + 1
** or FKS_NAME_MAX + 1 bytes. */
#define FKS_TAG_MAX 128
#define FKS_NAME_MAX 64

/* Error codes. forkctl maps them to exit codes (see README). */
#define FKS_OK            0
#define FKS_ERR         (-1)   /* generic failure */
#define FKS_ENOTFOUND   (-2)   /* snapshot, artifact, file or store missing */
#define FKS_EEXIST      (-3)   /* tag or output already exists */
#define FKS_EINVAL      (-4)   /* bad argument or bad input file */
#define FKS_ELOCKED     (-5)   /* store locked by another process */
#define FKS_ECORRUPT    (-6)   /* stored data fails its checks */
#define FKS_EIO         (-7)   /* an I/O call failed */
#define FKS_ENOSPC      (-8)   /* disk full */
#define FKS_ENEWER      (-9)   /* catalog written by a newer forkstore */
#define FKS_ETIMEDOUT  (-10)   /* a Firecracker API call timed out */
#define FKS_EFIRECRACKER (-11) /* the VMM answered with an error */
#define FKS_ENOMEM     (-12)   /* out of memory */
#define FKS_EPERM      (-13)   /* permissions unsafe or insufficient */
#define FKS_EREFUSED   (-14)   /* refused: the result would be wrong (a Diff on
                                  a base that is not the VM's last snapshot,
                                  a version the VMM cannot load) */
#define FKS_ELIMIT     (-15)   /* stopped at a limit the caller set (fks_sql rows) */

/* The message of the last failure on this thread ("" if none). Borrowed. */
const char *fks_errmsg(void);
/* A short name for a code ("not found", "locked", ...). Static. */
const char *fks_strerror(int code);

typedef struct fks_store fks_store;

/* Progress reports for long operations (ingest, restore, gc, compact,
** verify, push, pull, remote verify, forkd import): done and total in
** bytes. Called from the thread that runs the operation, at most every
** ~100 ms, with done never going back and below total; then, when the
** operation succeeds, once with done == total (total may have grown on the
** way: pull learns what to fetch as it goes). A failed operation just
** stops calling. */
typedef void (*fks_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* ---- store [engine] ---------------------------------------------------- */

/* The default store directory: $FORKSTORE_DIR, else
** $XDG_DATA_HOME/forkstore, else $HOME/.local/share/forkstore.
** Writes into buf (NUL-terminated); FKS_EINVAL if it does not fit or no
** variable is set. */
int fks_default_dir(char *buf, size_t buflen);

/* Creates a new, empty store in dir (created with mode 0700 if missing;
** an existing empty directory is accepted). chunk_size is the size each
** chunk file is preallocated to, 0 for the default (16 MiB).
** FKS_EEXIST if dir already holds a store (also to the loser of two inits
** racing on one directory); FKS_ECORRUPT if dir has chunk files but no
** catalog (a store that lost its catalog: never built over). */
int fks_init(const char *dir, uint64_t chunk_size);

#define FKS_OPEN_READONLY 0x1   /* no writes; catalog opened read-only */

/* Opens the store in dir. Applies pending catalog migrations (unless
** read-only). FKS_ENOTFOUND if dir is not a store, FKS_ENEWER if the
** catalog is newer than this library, FKS_EPERM if any part of the store
** (directory, catalog and its WAL, chunks/, lock files) belongs to a user
** other than the directory's owner or root, or is writable by group or
** others (also when run as root), FKS_ECORRUPT if the catalog is empty,
** not ours, damaged or at a schema version its tables do not match, or a
** store file is a FIFO, device or symbolic link. A read-only open works on
** a read-only file system. Caller frees with fks_close(). */
int fks_open(fks_store **out, const char *dir, int flags);
void fks_close(fks_store *s);

/* ---- ingest [engine] --------------------------------------------------- */

/* One named file of a snapshot. name: 1-FKS_NAME_MAX (64) chars of
** [A-Za-z0-9._+-], not starting with '.' or '-'. "memory" and "vmstate"
** are the conventional names; restore writes "memory" as memory.bin.
** diff: path is a sparse Diff file whose holes inherit the parent's
** artifact of the same name. */
typedef struct fks_artifact_in {
    const char *name;
    const char *path;
    int diff;
} fks_artifact_in;

typedef struct fks_ingest_opts {
    const char *tag;                 /* required; see fks_check_tag() */
    const char *parent;              /* NULL for a root snapshot */
    const fks_artifact_in *artifacts;
    size_t n_artifacts;
    fks_progress_fn progress;        /* may be NULL */
    void *progress_arg;
    /* Branch timings recorded with the snapshot; 0 or -1: unknown (NULL). */
    int64_t pause_ms, snapshot_ms, diff_bytes;
    /* Nonzero: an input path whose last component is a symbolic link is
    ** refused (O_NOFOLLOW), for inputs found in a tree someone else writes
    ** (import-forkd sets it). */
    int no_follow;
} fks_ingest_opts;

typedef struct fks_ingest_stats {
    uint64_t logical_bytes;   /* sum of artifact sizes */
    uint64_t read_bytes;      /* bytes read from the inputs */
    uint64_t pages;           /* pages examined */
    uint64_t zero_pages;      /* all-zero pages (never stored) */
    uint64_t dedup_pages;     /* pages already in the store */
    uint64_t new_pages;       /* pages stored by this ingest */
    uint64_t stored_bytes;    /* compressed bytes written for them */
    double   seconds;
} fks_ingest_stats;

/* Ingests a snapshot. Visible only once complete: a failure or a crash
** leaves the store as it was (space written is reclaimed by gc).
** stats may be NULL. */
int fks_ingest(fks_ingest_stats *stats, fks_store *s, const fks_ingest_opts *o);

/* Deprecated, kept for the ABI: nothing in forkstore calls it (branch
** records its ingest time in the transaction that records the VM's head).
** Sets the ingest time recorded for tag. */
int fks_set_ingest_ms(fks_store *s, const char *tag, int64_t ingest_ms);

/* ---- restore [engine] -------------------------------------------------- */

#define FKS_RESTORE_FORCE 0x1   /* replace existing output files */
#define FKS_RESTORE_SYNC  0x2   /* fsync each file before it is renamed */

typedef struct fks_restore_stats {
    uint64_t logical_bytes;
    uint64_t written_bytes;   /* non-hole bytes written */
    uint64_t pages;
    double   seconds;
} fks_restore_stats;

/* Writes every artifact of snapshot tag into outdir (created if missing):
** "memory" as memory.bin, others under their names. Each page read is
** checked against its hash. Files are written under a temporary name and
** renamed into place, all or nothing: on failure no new file remains and
** files FKS_RESTORE_FORCE replaced are put back. Existing files are
** refused (FKS_EEXIST) unless FKS_RESTORE_FORCE; a directory in the way
** always is. stats may be NULL. */
int fks_restore(fks_restore_stats *stats, fks_store *s, const char *tag,
                const char *outdir, int flags,
                fks_progress_fn progress, void *progress_arg);

/* The file name restore gives an artifact ("memory" -> "memory.bin"). */
const char *fks_artifact_filename(const char *artifact_name);

/* ---- lineage [engine] -------------------------------------------------- */

typedef struct fks_snapinfo {
    int64_t id;
    char tag[FKS_TAG_MAX + 1];
    char parent[FKS_TAG_MAX + 1];  /* "" for a root */
    int64_t created_ms;        /* unix time in milliseconds */
    uint64_t logical_bytes;    /* all artifacts */
    uint64_t memory_bytes;     /* the "memory" artifact, 0 if none */
    uint64_t stored_bytes;     /* compressed bytes this snapshot added */
    int has_rootfs;
    int depth;                 /* 0 for a root */
    int64_t pause_ms, snapshot_ms, ingest_ms, diff_bytes; /* -1 unknown */
} fks_snapinfo;

/* All snapshots, most recent first. Caller frees *out with free(). */
int fks_list(fks_snapinfo **out, size_t *n, fks_store *s);
/* One snapshot by tag; FKS_ENOTFOUND if absent. */
int fks_get(fks_snapinfo *out, fks_store *s, const char *tag);
/* The chain from the root to tag, root first. Caller frees with free(). */
int fks_chain(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag);
/* As fks_chain with id, tag, parent, created_ms, stored_bytes and depth
** only (the artifact sizes 0, has_rootfs 0, the timings -1): it reads no
** artifact rows, for a long chain shown by its tags. */
int fks_chain_brief(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag);
/* The snapshots whose parent is tag, oldest first; caller frees with free()
** (the work is the children, not the store: an index on parent_id). */
int fks_children(fks_snapinfo **out, size_t *n, fks_store *s, const char *tag);
/* Checks that the parent links form a forest (a damaged catalog may hold
** a cycle, which every lineage walk refuses: FKS_ECORRUPT naming the
** snapshots on it). 0 if not; else FKS_ECORRUPT naming the first cycle
** and *n_bad (may be NULL) = the snapshots on or below a cycle. fks_list,
** fks_get, fks_chain and fks_prune fail the same way on such snapshots;
** fks_verify reports it. */
int fks_check_lineage(size_t *n_bad, fks_store *s);
/* Calls fn(arg, tag) for each snapshot on or below a parent cycle, in id
** order (none for a sound lineage); stops at and returns fn's first
** nonzero return. fks_verify lists them as affected. */
int fks_lineage_bad(fks_store *s, int (*fn)(void *arg, const char *tag), void *arg);

/* Removes a snapshot. Children stay restorable byte for byte and are
** re-parented to its parent. With cascade, the whole subtree goes.
** Pages nobody references any more are left for gc. */
int fks_rmi(fks_store *s, const char *tag, int cascade);
/* 1 if a commit of this handle (fks_rmi, so fks_prune too) found the disk
** full and deleted the store's gc reserve to get room: run fks_gc, which
** frees the space and makes the reserve again. */
int fks_reserve_used(const fks_store *s);

/* ---- retention [integrations: prune.c] --------------------------------- */

typedef struct fks_prune_opts {
    int keep_last;                 /* keep the N most recent per lineage root */
    int64_t keep_within_ms;        /* keep those created less than this ago */
    const char *const *keep_tags;  /* keep tags matching these globs */
    size_t n_keep_tags;
    int dry_run;                   /* list, remove nothing */
} fks_prune_opts;

typedef struct fks_prune_result {
    size_t n_removed, n_kept;
    char **removed;                /* tags removed (or that would be) */
} fks_prune_result;

/* Applies retention rules per lineage root; a snapshot any rule keeps is
** kept, the others are removed as by fks_rmi (children stay restorable),
** all in one transaction: on a failure (or a crash) none is removed.
** At least one rule is required (FKS_EINVAL). Free the result's lists
** with fks_prune_result_clear(), even after a failure. */
int fks_prune(fks_prune_result *res, fks_store *s, const fks_prune_opts *o);
/* Frees the lists *r holds and zeroes them; r itself is the caller's. */
void fks_prune_result_clear(fks_prune_result *r);
/* Deprecated name of fks_prune_result_clear (it never freed r). */
void fks_prune_result_free(fks_prune_result *r);

/* ---- gc and verify [engine] -------------------------------------------- */

typedef struct fks_gc_opts {
    int dry_run;                 /* report only, change nothing */
    double max_seconds;          /* stop compacting after this; 0 = no limit */
    double live_threshold;       /* > 0: compact chunks less live than this (the
                                 ** old rule); 0: by the store's dead share */
    double max_unused;           /* dead share to compact down to; 0 = 0.05 */
    fks_progress_fn progress;
    void *progress_arg;
} fks_gc_opts;

typedef struct fks_gc_report {
    uint64_t pages_freed;        /* index entries nobody referenced */
    uint64_t page_bytes_freed;   /* their stored bytes */
    uint64_t chunks_rewritten;   /* compacted: live pages copied out */
    uint64_t chunks_deleted;     /* chunk files removed (incl. rewritten) */
    uint64_t strays_deleted;     /* files never committed (crash leftovers) */
    uint64_t bytes_copied;       /* live bytes moved by compaction */
    uint64_t disk_bytes_before;  /* chunks + catalog, allocated */
    uint64_t disk_bytes_after;
    int stopped_early;           /* max_seconds reached */
    double seconds;
    uint64_t maps_folded;        /* page maps of removed snapshots folded away */
} fks_gc_report;

/* Reclaims space: deletes unreferenced pages from the index, compacts
** chunk files whose live fraction fell under the threshold, deletes stray
** files, gives free catalog pages back and truncates the WAL. Only one gc
** runs at a time: FKS_ELOCKED at once if another holds DIR/gc.lock.
** Safe while ingests and restores run (see gc.c). */
int fks_gc(fks_gc_report *r, fks_store *s, const fks_gc_opts *o);

#define FKS_COMPACT_LEVEL 15     /* fks_compact's zstd level by default */

typedef struct fks_compact_opts {
    int level;                   /* zstd level to re-encode at, 1..22; 0 = FKS_COMPACT_LEVEL */
    double max_seconds;          /* stop between chunks after this; 0 = no limit */
    double min_gain;             /* rewrite a chunk only if a sample of its blocks
                                 ** shrinks by this share at level; 0 = 0.01 */
    fks_progress_fn progress;
    void *progress_arg;
} fks_compact_opts;

typedef struct fks_compact_report {
    uint64_t chunks_seen;         /* chunks with live pages looked at */
    uint64_t chunks_recompressed; /* rewritten at level, dead records dropped */
    uint64_t chunks_dense;        /* left: their sample did not shrink enough */
    uint64_t chunks_busy;         /* left: a writer holds them (next time) */
    uint64_t bytes_before;        /* used bytes of the chunks rewritten */
    uint64_t bytes_after;         /* the bytes their live records take now */
    uint64_t disk_bytes_before;   /* chunks + catalog, allocated */
    uint64_t disk_bytes_after;
    int stopped_early;            /* max_seconds reached, or the disk is full */
    double seconds;
} fks_compact_report;

/* Recompresses the store's blocks at a higher zstd level than ingest
** uses, chunk by chunk, oldest first, in the background: each chunk whose
** blocks shrink is rewritten as gc compacts one (new records synced
** before the catalog switch, the old file removed after it; a kill at
** any point loses nothing), and gc moves blocks at this level from then
** on. Ingest and restore run meanwhile. Holds DIR/gc.lock: FKS_ELOCKED at
** once if a gc or another compact holds it; FKS_EINVAL for a bad level. */
int fks_compact(fks_compact_report *r, fks_store *s, const fks_compact_opts *o);

typedef struct fks_verify_report {
    uint64_t chunks_checked, pages_checked, runs_checked;
    uint64_t bad_chunks, bad_pages, missing_pages, bad_runs;
    size_t n_problems;           /* messages, one per problem found */
    char **problems;
    size_t n_affected;           /* tags of snapshots that cannot restore */
    char **affected;
    double seconds;
    size_t n_notes;              /* not damage: space left for gc (strays, */
    char **notes;                /* empty chunks), one message each */
} fks_verify_report;

/* Checks the store: SQLite quick_check, every chunk file's header and
** size, that every page a map names exists, and re-reads stored pages
** (all, or a random sample_percent of them) checking every hash. Returns
** 0 with the report filled, whatever it found; the caller looks at the
** counts. Caller frees with fks_verify_free(). */
int fks_verify(fks_verify_report **out, fks_store *s, double sample_percent,
               fks_progress_fn progress, void *progress_arg);
void fks_verify_free(fks_verify_report *r);

/* ---- recovery [engine] ------------------------------------------------- */

#define FKS_RECOVER_FORCE 0x1   /* rebuild even a catalog that opens and checks fine */

typedef struct fks_recover_report {
    char moved_aside[4096];      /* where the old catalog went; "" if there was none */
    uint64_t chunks;             /* chunk files indexed */
    uint64_t chunks_bad;         /* chunk files whose header is damaged (moved aside) */
    uint64_t records, records_bad;   /* block records indexed / skipped as damaged */
    uint64_t pages;              /* distinct pages indexed */
    uint64_t manifests, manifests_bad, tombstones;
    uint64_t snapshots;          /* snapshots recovered into the new catalog */
    uint64_t pages_missing;      /* pages named by lost snapshots that no record holds */
    size_t n_lost;               /* one line per snapshot not recovered: which, and */
    char **lost;                 /* why (which pages are missing, which manifest) */
    size_t n_problems;           /* everything else found: damaged records, tags */
    char **problems;             /* settled, parents replaced */
    double seconds;
} fks_recover_report;

/* Rebuilds the catalog of the store in dir from its chunk files (pages,
** by the hashes their records carry) and its manifests (snapshots,
** lineage, page maps): for a catalog that is lost or damaged, e.g. one
** fks_open refuses. Works on the directory alone under the writer lock:
** the old catalog.db (and -wal, -shm) is moved aside as
** catalog.db.damaged-<unix ms>, a new one is built from the migrations
** and filled. A catalog that opens and passes quick_check is refused
** (FKS_EEXIST) unless FKS_RECOVER_FORCE. Returns 0 with *out filled
** whatever could not be recovered (look at n_lost and the bad counts);
** caller frees it with fks_recover_free(). */
int fks_recover(fks_recover_report **out, const char *dir, int flags);
void fks_recover_free(fks_recover_report *r);

/* ---- branching a live VM (Firecracker API) [integrations] -------------- */

/* Chain safety. Firecracker resets its dirty-page bitmap on every
** successful snapshot/create, so a Diff is only correct on the VM's last
** snapshot, and only once that one is stored. The catalog keeps per VM
** (key: vm_id if given, else Firecracker's instance id with the API
** socket's path) its last snapshot and how far it got, written before the
** create is sent and updated after it (migrations/0004_vm_chain.sql).
** A Diff is refused (FKS_EREFUSED) when no snapshot of the VM is
** recorded, when parent is not the recorded one, when the last create has
** an unknown outcome, or when it was created but not stored; after a
** failure that follows a successful create the staged files are kept, and
** a branch with resume set ingests them. */

/* Jailer: with jail_root set, staging is a directory inside it, paths in
** API bodies are relative to it (the VMM runs chrooted there) and staged
** files are chowned to jail_uid/jail_gid (-1: left as they are). */
typedef struct fks_jail {
    const char *root;          /* the jail's chroot directory; NULL: no jail */
    long uid, gid;             /* -1: unchanged */
} fks_jail;

typedef struct fks_branch_opts {
    const char *api_sock;      /* the VMM's API socket */
    const char *tag;           /* with resume: NULL keeps the recorded tag */
    const char *parent;        /* the VM's previous snapshot: a Diff is taken */
    int full;                  /* take a Full snapshot even with a parent */
    const char *staging;       /* memory-backed directory; NULL: /dev/shm */
    long timeout_ms;           /* per control call; 0: 10 s. snapshot/create
                                  gets at least 10 s + 1 s per 64 MiB */
    fks_progress_fn progress;  /* of the ingest */
    void *progress_arg;
    const char *vm_id;         /* the VM's identity; NULL: instance id + socket */
    int resume;                /* ingest the VM's kept staging, take nothing */
    int force_version;         /* accept Firecracker outside 1.10 .. 1.16 */
    fks_jail jail;
} fks_branch_opts;

typedef struct fks_branch_result {
    int diff;                  /* 1 if a Diff snapshot was taken */
    int64_t pause_ms;          /* pause request sent to resume acknowledged */
    int64_t snapshot_ms;       /* the snapshot/create call */
    int64_t ingest_ms;         /* staged files to durable in the store */
    double pause_s, snapshot_s, ingest_s; /* the same, unrounded (the catalog keeps ms) */
    int64_t diff_bytes;        /* physical bytes of the staged memory file */
    fks_ingest_stats ingest;
    char tag[FKS_TAG_MAX + 1]; /* the tag stored (with resume: the recorded one) */
    char vm_key[600];          /* the VM's key in the catalog */
    char fc_version[32];       /* GET /version ("" unknown) */
    char format_version[32];   /* vmstate header's format version ("" unknown) */
    char kept_staging[4096];   /* after a failure: staged files kept here, else "" */
    int need_full;             /* after a failure: only a Full is correct next */
    int can_resume;            /* after a failure: a branch with resume finishes it */
    char head[FKS_TAG_MAX + 1]; /* after a refused Diff: the VM's recorded last
                                  snapshot, a correct parent ("" none) */
} fks_branch_result;

/* Pauses the VM, snapshots it into memory-backed staging, resumes it, then
** ingests the staged files and removes them. The VM is always resumed,
** whatever fails. Timings and versions are recorded with the snapshot.
** FKS_EREFUSED for a Diff chain safety cannot vouch for (see above) and
** for a VMM version outside the supported range; the result's fields are
** filled as far as the branch got (kept_staging says what was kept). */
int fks_branch(fks_branch_result *res, fks_store *s, const fks_branch_opts *o);

/* Versions recorded with a snapshot; "" when unknown (ingested from files). */
typedef struct fks_branch_info {
    char fc_version[32];
    char format_version[32];
} fks_branch_info;
int fks_branch_info_get(fks_branch_info *out, fks_store *s, const char *tag);

typedef struct fks_load_opts {
    const char *api_sock;      /* a fresh VMM ("Not started") */
    const char *staging;       /* NULL: /dev/shm, or the jail root */
    long timeout_ms;           /* per control call; the load scales as create */
    int paused;                /* load without resuming (resume_vm false) */
    const char *const *net_overrides; /* "IFACE=HOSTDEV" (Firecracker >= 1.12) */
    size_t n_net_overrides;
    const char *vsock_uds;     /* vsock_override uds_path (Firecracker >= 1.16) */
    const char *rootfs;        /* place the stored rootfs here (in the jail:
                                  a path inside it); NULL: in the staging */
    const char *vm_id;         /* recorded as the VM's identity (see branch) */
    int force_version;         /* skip the version checks */
    fks_jail jail;
    const char *uffd_sock;     /* lazy restore: the page server's socket (in
                                  the jail: a path inside it), sent as the
                                  Uffd memory backend; memory.bin is then not
                                  restored. NULL: File backend */
    int from_remote;           /* lazy restore of a tag the store lacks: the
                                  other artifacts come from a remote (and
                                  the VM is not recorded: no Diff on it) */
    const char *remote;        /* that remote (NULL: the only one) */
} fks_load_opts;

typedef struct fks_load_result {
    char staging[4096];        /* the directory the VM's memory is mapped from */
    char fc_version[32];       /* the target VMM's */
    char format_version[32];   /* the snapshot's vmstate header */
    int recorded;              /* the VM's head was recorded (Diffs can follow) */
    double load_s;             /* PUT /snapshot/load sent to answered */
} fks_load_result;

/* Restores tag into a new private staging directory and loads it into the
** VMM at api_sock, resuming it unless paused. Before any load request
** (a failed load makes Firecracker exit) refuses with FKS_EREFUSED a
** version outside 1.10 .. 1.16, a snapshot whose format major is not the
** VMM's, and options the VMM's version lacks. Records tag as the loaded
** VM's last snapshot, so a Diff on it can follow. The VMM maps the memory
** file: the caller removes res->staging when the VM is gone. With
** o->uffd_sock (lazy restore) the memory is not restored: the load names
** that socket as the Uffd memory backend, and a page server
** (fks_serve_pages) must already listen on it. */
int fks_load(fks_load_result *res, fks_store *s, const char *tag, const fks_load_opts *o);

/* ---- forkd interop [integrations] -------------------------------------- */

/* import-forkd options. rootfs_dir: the only directory a rootfs that
** snapshot.json names outside the snapshot directory is read from (NULL:
** /var/cache/forkd, where forkd keeps them); see fks_import_forkd. */
typedef struct fks_forkd_import_opts {
    const char *prefix;              /* prepended to every tag; NULL: none */
    const char *rootfs_dir;
    fks_progress_fn progress;        /* of each snapshot's ingest; may be NULL */
    void *progress_arg;
} fks_forkd_import_opts;

typedef struct fks_forkd_import_result {
    size_t n_imported;               /* snapshots ingested (also after a failure) */
    size_t n_found;                  /* snapshot directories in the root */
    size_t n_no_rootfs;              /* imported without the rootfs they name */
    size_t n_warnings;
    char **warnings;                 /* one line each; fks_forkd_import_result_clear frees them */
} fks_forkd_import_result;

/* Imports a forkd (v0.4 to v0.5.3) snapshot root ROOT/<tag>/: parents
** before children, lineage kept, tags prefixed. A directory with
** snapshot.json, or without one (v0.4) with vmstate and memory.bin, is a
** snapshot. A chained snapshot (parent_tag) is read as forkd restores it:
** its memory file's data extents overlay the parent's memory and its holes
** inherit it (ingested as a Diff), whatever the file is called. Before
** anything is ingested every chained snapshot's parent_content_hash must
** equal the SHA-256 of the parent's memory file (forkd's
** verify_parent_hashes), else FKS_ECORRUPT. Nothing is read through a
** symbolic link: files are opened relative to directory descriptors with
** O_NOFOLLOW at every level inside ROOT. A rootfs recorded outside the
** snapshot directory is imported only if it lies under o->rootfs_dir and
** it and every directory below rootfs_dir is reached without a symbolic
** link, owned by root or the caller, and writable by no one else;
** otherwise the snapshot is imported without it and a warning says why.
** o may be NULL. Free the lists *res holds with
** fks_forkd_import_result_clear(), also after a failure. */
int fks_import_forkd(fks_forkd_import_result *res, fks_store *s, const char *root,
                     const fks_forkd_import_opts *o);
/* Frees the warnings *r holds and zeroes them; r itself is the caller's. */
void fks_forkd_import_result_clear(fks_forkd_import_result *r);
/* Deprecated name of fks_forkd_import_result_clear. */
void fks_forkd_import_result_free(fks_forkd_import_result *r);

#define FKS_FORKD_MAX_LINKS 32   /* forkd's MAX_CHAIN_DEPTH */

typedef struct fks_forkd_export_opts {
    const char *name;   /* forkd tag of the exported snapshot; NULL: its own tag */
    int flat;           /* one directory, full memory.bin, no parent */
} fks_forkd_export_opts;

typedef struct fks_forkd_export_result {
    size_t n;                                  /* directories, root first */
    char names[FKS_FORKD_MAX_LINKS + 1][65];
    int reused[FKS_FORKD_MAX_LINKS + 1];       /* already in OUT, identical */
} fks_forkd_export_result;

/* Writes snapshot tag into OUT as forkd v0.5.3 restores it. Flat: OUT/<name>/
** with a full memory.bin. Chain (default): also one directory per ancestor
** (up to forkd's 32 links; the oldest one exported is written as a full
** base, as is an ancestor whose memory size differs), each chained
** memory.bin holding as data exactly the pages that differ from its parent
** (zero pages too) and holes elsewhere, with parent_tag and
** parent_content_hash (SHA-256 of the parent's memory.bin). Tags must match
** forkd's [A-Za-z0-9_-]{1,64}, not starting with '-' (FKS_EINVAL). All or
** nothing: built in a temporary directory inside OUT and renamed into
** place; an existing OUT/<name> is reused if byte-identical, else
** FKS_EEXIST. o may be NULL; res may be NULL. */
int fks_export_forkd(fks_forkd_export_result *res, fks_store *s, const char *tag, const char *outroot,
                     const fks_forkd_export_opts *o);

/* 0 if name is a tag forkd accepts, else FKS_EINVAL with the rule. */
int fks_check_forkd_tag(const char *name);

/* ---- SQL [engine] ------------------------------------------------------ */

/* Column types handed to an fks_row_fn (SQLite's storage classes). */
enum { FKS_SQL_INTEGER = 1, FKS_SQL_FLOAT = 2, FKS_SQL_TEXT = 3, FKS_SQL_BLOB = 4, FKS_SQL_NULL = 5 };

/* Called for each result row; return nonzero to stop. names, values and
** types are borrowed for the call; a NULL value is SQL NULL; values are
** text (BLOBs as lowercase hex), types say what each was. */
typedef int (*fks_row_fn)(void *arg, int ncol, const char *const *names,
                          const char *const *values, const int *types);

/* Limits for fks_sql_ex; a zero field means no limit. */
typedef struct fks_sql_opts {
    double timeout_s;       /* stop the statement after this long: FKS_ETIMEDOUT */
    uint64_t max_rows;      /* stop when row max_rows + 1 comes: FKS_ELIMIT */
} fks_sql_opts;

/* Runs one read-only statement on a connection that cannot write (a write
** fails with FKS_EINVAL and a clear message), calling row for each result
** row as SQLite produces it: nothing is buffered, so memory stays bounded
** whatever the result's size (one value is at most 32 MiB). With o (may be
** NULL: no limits) the statement is stopped after o->timeout_s seconds
** (FKS_ETIMEDOUT; also a statement that returns no rows) or when a row
** beyond o->max_rows would come (FKS_ELIMIT); the rows handed over before
** stay handed over. */
int fks_sql_ex(fks_store *s, const char *sql, const fks_sql_opts *o, fks_row_fn row, void *arg);
/* fks_sql_ex without limits. */
int fks_sql(fks_store *s, const char *sql, fks_row_fn row, void *arg);

/* ---- validation [engine] ----------------------------------------------- */

/* 0 if tag is valid: 1-FKS_TAG_MAX (128) chars of [A-Za-z0-9._+-], not
** starting with '.' or '-'. Otherwise FKS_EINVAL with the rule in the message. */
int fks_check_tag(const char *tag);
/* Same rule for artifact names, 1-FKS_NAME_MAX (64) chars. */
int fks_check_name(const char *name);

/* ---- statistics, diffs, renaming [engine] ------------------------------ */

/* One run of a page map: pages pgno .. pgno+npages-1 hold page ids
** page_id .. page_id+npages-1. A page number no run covers is a zero page.
** Equal page ids mean equal bytes (the page index is content-addressed). */
typedef struct fks_run {
    uint64_t pgno, npages;
    int64_t page_id;
} fks_run;

/* Page numbers pgno .. pgno+npages-1. */
typedef struct fks_range {
    uint64_t pgno, npages;
} fks_range;

/* ---- page-level access [engine; fks_rimage: integrations] ------------- */

/* One artifact of one snapshot, opened for random reads page by page (a
** userfaultfd page server, a remote push). The page map is read once at
** open, in one read transaction; afterwards the catalog is consulted only
** to find a page again that a concurrent gc moved. Every page read is
** checked against its hash. fks_image_read, fks_image_page and
** fks_image_stats_get may be called from several threads at once on one
** handle; open and close may not race with them. */
typedef struct fks_image fks_image;

typedef struct fks_image_info {
    int64_t  snapshot_id;
    uint64_t size;            /* logical bytes */
    uint64_t npages;          /* pages of FKS_PAGE_SIZE, the last may be short */
    uint64_t stored_pages;    /* pages that are not zero */
} fks_image_info;

typedef struct fks_image_stats {
    uint64_t pages_read;      /* stored pages returned by fks_image_read */
    uint64_t zero_pages;      /* zero pages returned (nothing decoded) */
    uint64_t blocks_decoded;  /* block records decompressed */
    uint64_t bytes_decoded;   /* their decoded bytes */
} fks_image_stats;

/* Opens artifact (e.g. "memory") of snapshot tag. FKS_ENOTFOUND if either
** is absent. */
int fks_image_open(fks_image **out, fks_store *s, const char *tag, const char *artifact);
void fks_image_close(fks_image *im);
void fks_image_info_get(fks_image_info *out, const fks_image *im);
/* The image's page map: runs of non-zero pages by pgno, not overlapping.
** Borrowed from the handle, valid until fks_image_close. */
const fks_run *fks_image_runs(const fks_image *im, size_t *n);
/* Reads pages pgno .. pgno+npages-1 into buf (npages * FKS_PAGE_SIZE
** bytes): zero pages, and the rest of a short last page, as zeros.
** FKS_EINVAL if the range leaves the image; FKS_ECORRUPT if a page fails
** its hash. */
int fks_image_read(fks_image *im, uint64_t pgno, uint64_t npages, void *buf);
/* Page pgno's identity: *page_id (0 for a zero page) and, when hash is not
** NULL and the page is stored, its XXH3-128 hash (16 bytes, big-endian).
** Pages with one id hold the same bytes, in this store. */
int fks_image_page(int64_t *page_id, uint8_t *hash, fks_image *im, uint64_t pgno);
void fks_image_stats_get(fks_image_stats *out, fks_image *im);
/* Reads the location of every stored page of the image once (about 56
** bytes a page, kept until fks_image_close), so that fks_image_read no
** longer queries the catalog (a page a gc moved since is still found: its
** location is then read afresh). For readers that hold a lease on the
** pages (a page server). Call before the reading threads start; calling
** it again does nothing. */
int fks_image_preload(fks_image *im);

/* A remote snapshot's artifact read page by page (remote_lazy.c, below). */
typedef struct fks_rimage fks_rimage;

typedef struct fks_rimage_stats {
    uint64_t requests;         /* HTTP requests, open and retries included */
    uint64_t range_gets;       /* Range GETs of pack bytes */
    uint64_t bytes_down;       /* response bodies */
    uint64_t range_bytes;      /* bytes of the Range GETs' bodies */
    uint64_t pages_remote;     /* stored pages fetched from the remote */
    uint64_t pages_local;      /* stored pages read from the store */
} fks_rimage_stats;

/* ---- lazy restore: the page server [integrations: pageserver.c] ----- */

/* Firecracker's Uffd memory backend: the VMM maps guest memory anonymously,
** registers it with a userfaultfd, connects to the page server's Unix
** socket and sends the uffd with a JSON array of its regions; the server
** then fills every page the guest touches from the store. See
** src/pageserver.c for the protocol and the failure modes. */

typedef struct fks_serve_opts {
    const char *socket;        /* Unix socket to listen on (created mode 0600;
                                  an existing socket file is replaced) */
    int listen_fd;             /* >= 0: serve on this listening socket instead */
    int max_vms;               /* VMs to accept before closing the socket
                                  (0: 1); the server ends when all are gone */
    double accept_timeout_s;   /* no VMM connected by then: FKS_ETIMEDOUT (0: 60) */
    int prefetch;              /* install the recorded working set first */
    uint64_t prefetch_bytes;   /* at most this many bytes of it (0: all) */
    double prefetch_max_s;     /* and for at most this long (0: no limit) */
    int record;                /* store the pages faulted on demand as the
                                  snapshot's working set at exit */
    double lease_ttl_s;        /* lease time to live (0: 60 s) */
    int stop_fd;               /* >= 0: readable means stop (a signalfd for
                                  SIGTERM); -1: none */
    int ready_fd;              /* >= 0: one byte is written there, and the fd
                                  closed, once the socket listens */
    int cache_pages;           /* decoded pages kept for all VMs (0: 65536,
                                  256 MiB; resident only once decoded) */
    int cold_cache;            /* do not decode the image into the cache
                                  ahead of the faults (when it fits) */
    int from_remote;           /* a tag the store lacks is served from a
                                  remote (fks_rimage) and pulled meanwhile */
    const char *remote;        /* that remote (NULL: the store's only one) */
} fks_serve_opts;

typedef struct fks_serve_stats {
    uint64_t vms;              /* VMMs that completed the handshake */
    uint64_t faults;           /* page-fault messages read */
    uint64_t pages_demand;     /* stored pages installed for a fault */
    uint64_t pages_prefetch;   /* stored pages installed ahead of the guest */
    uint64_t pages_zero;       /* zero pages installed (UFFDIO_ZEROPAGE), fault-around
                                  and prefetch included */
    uint64_t pages_removed;    /* pages given back (UFFD_EVENT_REMOVE) */
    uint64_t eexist;           /* installs that found the page present */
    uint64_t cache_hits;       /* stored pages served without a decode */
    uint64_t blocks_decoded, bytes_decoded;
    double fault_p50_us, fault_p99_us; /* fault message read to page installed */
    double prefetch_s;         /* time the prefetch took */
    uint64_t working_set_pages;/* pages of the working set used (0: none) */
    char working_set_from[FKS_TAG_MAX + 1]; /* the snapshot it was recorded on */
    double seconds;
    /* served from a remote (from_remote and the tag was not in the store) */
    char remote[FKS_NAME_MAX + 1]; /* "" when served from the store */
    fks_rimage_stats rs;       /* the lazy fetches (fault, prefetch) */
    int pulled;                /* the background pull committed */
    double pull_s;             /* its time (VMM accepted to commit) */
    uint64_t pull_bytes_down;  /* what it downloaded */
} fks_serve_stats;

/* Serves the memory of snapshot tag to VMMs connecting to o->socket until
** each VMM accepted is gone (its process exits: SO_PEERCRED + pidfd, or it
** closes the socket) or o->stop_fd becomes readable. Holds a lease on the
** image's pages for as long (gc keeps them, even after an rmi). With
** o->record, the demand-faulted pages are stored as tag's working set at
** exit; with o->prefetch, the working set recorded on tag or its nearest
** ancestor is installed first, in batches, while faults are served. The
** figures are stored as tag's last lazy restore (table lazy_restore).
** FKS_ETIMEDOUT if no VMM connects in time; FKS_EINVAL for a handshake
** whose regions do not fit the image. st may be NULL. */
int fks_serve_pages(fks_serve_stats *st, fks_store *s, const char *tag, const fks_serve_opts *o);

/* [engine] The store's side of lazy restore: leases, working sets, lazy
** statistics and page lookups, in the engine archive (lease.c, image.c).
**
** A lease on pages: gc deletes none of runs' pages while it lives (see
** lease.c). ttl_s: seconds it lives unless renewed (0: 60). It keeps its
** own store handle, so renew may run on another thread than users of s.
** Caller frees with fks_lease_release, which deletes it. */
typedef struct fks_lease fks_lease;
int fks_lease_take(fks_lease **out, fks_store *s, const char *tag, const fks_run *runs, size_t n, double ttl_s);
int fks_lease_renew(fks_lease *l);
int fks_lease_release(fks_lease *l);
int64_t fks_lease_id(const fks_lease *l);

/* Stores pages (page numbers of tag's memory, first fault first) as tag's
** working set, replacing any. */
int fks_working_set_put(fks_store *s, const char *tag, const uint64_t *pages, size_t n);
/* The working set of tag, else of its nearest ancestor that has one
** (*out NULL, *n 0 if none); from (may be NULL) gets that snapshot's tag.
** Caller frees *out with free(). */
int fks_working_set_get(uint64_t **out, size_t *n, char *from, size_t fromlen, fks_store *s, const char *tag);
/* Records st as tag's last lazy restore (nothing if tag is gone). */
int fks_lazy_stats_put(fks_store *s, const char *tag, const fks_serve_stats *st);
/* tag's last lazy restore: *finished_ms its end (0: none, *out zeroed);
** out->working_set_pages is the size of tag's own working set (0: none). */
int fks_lazy_stats_get(fks_serve_stats *out, int64_t *finished_ms, fks_store *s, const char *tag);

/* Looks a page up by its XXH3-128 hash (16 bytes, big-endian): *page_id,
** or FKS_ENOTFOUND if the store has no such page. */
int fks_page_find(int64_t *page_id, fks_store *s, const uint8_t hash[16]);
/* The same for n hashes at once, from one read of the catalog: ids[i] the
** page id of hashes[i], 0 if the store has none. */
int fks_page_find_many(int64_t *ids, fks_store *s, const uint8_t (*hashes)[16], size_t n);
/* Reads stored page page_id (FKS_PAGE_SIZE bytes into buf, a short page
** padded with zeros), checked against its hash; *len gets its real length
** when len is not NULL. */
int fks_page_read(void *buf, uint32_t *len, fks_store *s, int64_t page_id);

/* Compares two page maps (runs sorted by pgno, not overlapping, npages > 0)
** in one linear merge. Writes the page ranges where they hold different
** pages, adjacent ones merged, by pgno, into *out (caller frees with
** free(); NULL when none), their number into *n and the count of
** differing pages into *pages. A page only one side holds differs (the
** other side's is zero). FKS_EINVAL if a list is not sorted. */
int fks_runs_diff(fks_range **out, size_t *n, uint64_t *pages,
                  const fks_run *a, size_t na, const fks_run *b, size_t nb);

typedef struct fks_diff_artifact {
    char name[FKS_NAME_MAX + 1];
    int in_a, in_b;              /* the artifact exists in A, in B */
    uint64_t size_a, size_b;     /* logical bytes, 0 where absent */
    uint64_t pages;              /* pages that differ */
    uint64_t bytes;              /* bytes in them (a file's tail page may be short) */
    size_t n_ranges;
    fks_range *ranges;           /* the differing pages, merged, by pgno */
} fks_diff_artifact;

typedef struct fks_diff_report {
    size_t n;
    fks_diff_artifact *artifacts;   /* every name in A or B, sorted */
    uint64_t pages, bytes;          /* totals */
} fks_diff_report;

/* Compares snapshots a and b artifact by artifact (same name), from their
** page maps alone: nothing is decompressed. Pages past the end of the
** shorter file count as zero pages; the sizes tell a length change. Caller
** frees *out with fks_diff_free(). FKS_ENOTFOUND for an unknown tag. */
int fks_diff(fks_diff_report **out, fks_store *s, const char *tag_a, const char *tag_b);
void fks_diff_free(fks_diff_report *d);

typedef struct fks_artifact_stats {
    char name[FKS_NAME_MAX + 1];
    uint64_t size;               /* logical bytes */
    uint64_t nonzero_bytes;      /* bytes of the pages its runs cover */
    uint64_t runs;               /* runs in its whole page map (runs_known) */
} fks_artifact_stats;

/* The columns of the snapshot_stats view (migrations/0003_views.sql),
** computed for one snapshot. */
typedef struct fks_snap_stats {
    uint64_t logical_bytes;      /* all artifacts */
    uint64_t nonzero_bytes;      /* pages that are not all zero */
    uint64_t shared_with_parent_bytes; /* same page at the same place in the
                                          parent's same-named artifact */
    uint64_t unique_pages;       /* pages no other snapshot references */
    uint64_t unique_bytes;       /* unique_pages * 4096 */
    uint64_t unique_stored_bytes;/* bytes of the block records holding them:
                                   at most what rmi + gc (with compaction) frees */
    uint64_t stored_bytes;       /* stored bytes this snapshot added at ingest */
    size_t n_artifacts;
    fks_artifact_stats *artifacts; /* by name */
    int unique_known;            /* the unique_* figures were computed */
    int runs_known;              /* the artifacts' runs were counted */
} fks_snap_stats;

/* Sizes of snapshot tag, from one consistent read of the catalog. Caller
** frees *out with fks_snap_stats_free(). FKS_ENOTFOUND if absent. */
int fks_snap_stats_get(fks_snap_stats **out, fks_store *s, const char *tag);
/* As fks_snap_stats_get; the unique_* figures only with FKS_STATS_UNIQUE
** (they read every page map node of the store once; without it they are 0
** and unique_known is 0); the artifacts' runs only with FKS_STATS_RUNS
** (they read each artifact's whole page map; else 0 and runs_known 0).
** The rest costs the snapshot's own map nodes and the deltas between it
** and its parent, not the size of its images. */
#define FKS_STATS_UNIQUE 0x1
#define FKS_STATS_RUNS 0x2
int fks_snap_stats_get_ex(fks_snap_stats **out, fks_store *s, const char *tag, int flags);
void fks_snap_stats_free(fks_snap_stats *st);

/* Store-wide numbers. A page's stored bytes are its chunk record: its
** compressed bytes plus a 32-byte header. */
typedef struct fks_store_stats {
    uint64_t snapshots, artifacts, runs, chunks;
    uint64_t logical_bytes;      /* sum of artifact sizes */
    uint64_t logical_pages;      /* sum of artifact sizes in pages, rounded up */
    uint64_t page_refs;          /* non-zero pages over all artifacts (sum of npages) */
    uint64_t pages;              /* rows of the page index */
    uint64_t referenced_pages;   /* of those, pages some run references */
    uint64_t stored_bytes;       /* stored bytes of every indexed page */
    uint64_t reclaimable_bytes;  /* stored bytes of pages no run references (gc frees) */
    uint64_t chunk_used_bytes;   /* committed bytes in chunk files */
    uint64_t chunk_disk_bytes;   /* bytes allocated to files in chunks/ */
    uint64_t dead_bytes;         /* committed chunk bytes no block row names (gc compacts) */
    double dead_share;           /* dead_bytes / committed record bytes */
    uint64_t catalog_disk_bytes; /* catalog.db and its WAL */
    double dedup_ratio;          /* page_refs / referenced_pages */
    double compression_ratio;    /* pages * 4096 / stored_bytes */
    double zero_page_share;      /* (logical_pages - page_refs) / logical_pages */
} fks_store_stats;

/* Fills *out from one consistent read of the catalog and a stat() of the
** chunk files. Ratios are 0 when their denominator is. */
int fks_store_stats_get(fks_store_stats *out, fks_store *s);

/* Renames snapshot old_tag to new_tag (validated by fks_check_tag).
** FKS_ENOTFOUND if old_tag is absent, FKS_EEXIST if new_tag is taken. */
int fks_tag(fks_store *s, const char *old_tag, const char *new_tag);

/* ---- remotes: S3-compatible object storage [integrations: remote.c] -- */

/* A remote: one bucket (and key prefix) of an S3-compatible server. No
** credentials: push and pull read them from $AWS_ACCESS_KEY_ID,
** $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN, else profile $AWS_PROFILE
** ("default") of ~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE). */
typedef struct fks_remote {
    char name[FKS_NAME_MAX + 1]; /* as fks_check_name */
    char bucket[64];           /* 3-63 chars of [a-z0-9.-] */
    char prefix[512];          /* "" or a key prefix, no leading/trailing '/' */
    char endpoint[512];        /* http[s]://HOST[:PORT] */
    char region[64];           /* "" at add: us-east-1 */
    int64_t created_ms;
    char key_file[4096];       /* "": not encrypted; else the key file (absolute at add) */
    char key_id[17];           /* set by fks_remote_add from the key file: 16 hex digits */
} fks_remote;

/* Fills out->bucket and out->prefix from "s3://BUCKET[/PREFIX]"; other
** fields untouched. FKS_EINVAL with the rule. */
int fks_remote_parse_url(fks_remote *out, const char *url);
/* Adds remote r (name, bucket, prefix, endpoint, region, key_file;
** created_ms and key_id are set). With key_file, the remote is encrypted
** (remote.c): the catalog keeps the file's absolute path and key id, never
** the key. FKS_EEXIST if the name is taken, FKS_EINVAL for a bad field or
** key file, FKS_EPERM if others may read the key file, FKS_ENOTFOUND if it
** is absent. */
int fks_remote_add(fks_store *s, const fks_remote *r);
/* Writes a new random key file for encrypted remotes at path (mode 0600;
** FKS_EEXIST rather than overwrite a file). Share it with every host that
** pushes to or pulls from the remote: without it the bucket is unreadable. */
int fks_remote_keygen(const char *path);
/* All remotes by name. Caller frees *out with free(). */
int fks_remote_list(fks_remote **out, size_t *n, fks_store *s);
/* Remote name; name NULL: the store's only remote (FKS_EINVAL if it has
** several, FKS_ENOTFOUND if none). FKS_ENOTFOUND if absent. */
int fks_remote_get(fks_remote *out, fks_store *s, const char *name);
/* Forgets remote name (the bucket is left as it is). FKS_ENOTFOUND. */
int fks_remote_rm(fks_store *s, const char *name);

typedef struct fks_remote_stats {
    uint64_t snapshots;        /* manifests written (push), snapshots ingested (pull) */
    uint64_t skipped;          /* snapshots the other side already had */
    uint64_t pages;            /* non-zero pages of the snapshots handled */
    uint64_t pages_sent;       /* push: pages uploaded; pull: pages downloaded */
    uint64_t pages_dedup;      /* pages the other side already held */
    uint64_t packs;            /* packs uploaded (push) or downloaded (pull) */
    uint64_t packs_reused;     /* push: packs already in the bucket (a resumed push) */
    uint64_t page_bytes;       /* compressed page bytes in packs sent or fetched */
    uint64_t bytes_up, bytes_down;   /* HTTP bodies */
    uint64_t requests, retries;
    uint64_t restarts;         /* push: started again after a remote gc marked a pack it used */
    double seconds;
    uint64_t working_sets;     /* push: working sets uploaded (P snapshots/<tag>.ws) */
} fks_remote_stats;

/* Uploads snapshots tags[0..n-1] and their ancestors to remote (NULL: the
** only one): packs of the pages the bucket lacks (whoever pushed them),
** then an index naming them, then one manifest per snapshot; a snapshot
** exists on the remote once its manifest does. Idempotent; after a kill
** a re-run reuses the packs already uploaded. FKS_EEXIST if the remote
** holds a different snapshot under one of the tags. st may be NULL. */
int fks_push(fks_remote_stats *st, fks_store *s, const char *remote, const char *const *tags, size_t n,
             fks_progress_fn progress, void *progress_arg);
/* Downloads snapshots tags[0..n-1] and their ancestors that the store
** lacks: manifests, then only the pages the store lacks, each pack checked
** against its name (SHA-256) and each page against its hash before the
** snapshot is ingested. A tag the store has is skipped. st may be NULL. */
int fks_pull(fks_remote_stats *st, fks_store *s, const char *remote, const char *const *tags, size_t n,
             fks_progress_fn progress, void *progress_arg);

/* Remote gc: deletes packs no manifest needs, index objects merged into
** one, marks that served; safe while other hosts push and pull (they take
** no lock; see remote.c, "Remote gc", for the rules and the argument).
** A pack goes only once a gc run at least interval_ms before this one
** found it unreferenced (a "mark"), it was not written again since, it is
** older than min_age_ms, and it is unreferenced now. lag_ms: how long the
** bucket's listings may lag behind its writes (interval >= 2 * lag).
** Times are the server's (Date, LastModified), not this host's. */
typedef struct fks_remote_gc_opts {
    int64_t interval_ms;       /* 0: 4 h */
    int64_t min_age_ms;        /* 0: 2 h */
    int64_t lag_ms;            /* 0: 1 min */
    int break_lock;            /* remove the lock of a gc that was killed */
    int dry_run;               /* count, change nothing, take no lock */
} fks_remote_gc_opts;

typedef struct fks_remote_gc_stats {
    uint64_t manifests, indexes, packs;
    uint64_t packs_referenced;
    uint64_t packs_marked;     /* unreferenced, kept for now (marked in this run) */
    uint64_t packs_deleted, bytes_deleted;
    uint64_t indexes_merged;   /* index objects deleted once merged */
    uint64_t index_entries;    /* entries of the merged index */
    uint64_t marks_deleted;
    int64_t interval_ms, min_age_ms, lag_ms, server_ms;
    uint64_t requests, bytes_down;
    double seconds;
} fks_remote_gc_stats;

/* FKS_ELOCKED if another gc holds the bucket's gc lock, FKS_ECORRUPT if a
** manifest's parent is missing (nothing is deleted then). st may be NULL. */
int fks_remote_gc(fks_remote_gc_stats *st, fks_store *s, const char *remote, const fks_remote_gc_opts *o);

/* Retention on a remote, by the rules of fks_prune (per lineage root;
** at least one rule): deletes the manifests of the snapshots no rule
** keeps, deepest first; remote gc then frees their pages. Unlike a local
** prune, a snapshot with a kept descendant is kept too (a manifest is
** never rewritten, so a child cannot be re-parented): *n_ancestors
** (may be NULL) counts those. Free res's lists with fks_prune_result_clear(). */
int fks_remote_prune(fks_prune_result *res, size_t *n_ancestors, fks_store *s, const char *remote,
                     const fks_prune_opts *o);

typedef struct fks_remote_verify_report {
    uint64_t manifests, indexes, packs;
    uint64_t packs_checked;    /* packs read back (all, or the sample) */
    uint64_t pages_checked;    /* pages in them decoded and hashed */
    uint64_t pages_reachable;  /* pages of manifests found in an indexed pack in the bucket */
    uint64_t bad_manifests, bad_indexes, bad_packs, bad_pages, unreachable_pages;
    uint64_t bytes_down, requests;
    char **problems;           /* one line each */
    size_t n_problems;
    char **affected;           /* snapshots a problem reaches */
    size_t n_affected;
    double seconds;
} fks_remote_verify_report;

/* Reads remote's manifests and indexes, and its packs (all, or a random
** sample_pct percent): each pack against its name, every page in it
** against its hash, every index entry against the bytes it names, and
** every page of every manifest reachable through the index in a pack the
** bucket lists. 0 with the problems in *out (caller frees with
** fks_remote_verify_free) unless the check itself could not run. */
int fks_remote_verify(fks_remote_verify_report **out, fks_store *s, const char *remote, double sample_pct,
                      fks_progress_fn progress, void *progress_arg);
void fks_remote_verify_free(fks_remote_verify_report *r);

/* ---- lazy restore from a remote [integrations: remote_lazy.c] ------- */

/* One artifact of a snapshot on a remote, opened for random reads page by
** page without pulling it: the page server of a host that lacks the
** snapshot. The page map and every page's place in the bucket are read
** once at open (the manifests of its chain and the remote's index);
** stored pages the store already has (by hash) are read from it, the
** others with one S3 Range GET per stretch of pack bytes, each page
** checked against its hash. fks_rimage_read and fks_rimage_stats_get may
** be called from several threads at once (a connection each, pooled). */

/* Opens artifact of snapshot tag on remote (NULL: the store's only one).
** FKS_ENOTFOUND if no remote is configured (saying so), or the remote has
** no snapshot tag or tag no such artifact. Caller frees with
** fks_rimage_close. */
int fks_rimage_open(fks_rimage **out, fks_store *s, const char *remote, const char *tag, const char *artifact);
void fks_rimage_close(fks_rimage *ri);
/* As fks_image_info_get (snapshot_id 0: not in the store). */
void fks_rimage_info_get(fks_image_info *out, const fks_rimage *ri);
/* The page map, as fks_image_runs; page_id is 0 (the pages have no id in
** this store). Borrowed, valid until fks_rimage_close. */
const fks_run *fks_rimage_runs(const fks_rimage *ri, size_t *n);
/* As fks_image_read. FKS_ECORRUPT if a page fails its hash. */
int fks_rimage_read(fks_rimage *ri, uint64_t pgno, uint64_t npages, void *buf);
void fks_rimage_stats_get(fks_rimage_stats *out, fks_rimage *ri);
/* The remote's name (borrowed). */
const char *fks_rimage_remote(const fks_rimage *ri);
/* The working set pushed with tag, else with its nearest ancestor on the
** remote that has one (*out NULL, *n 0 if none); from gets that tag.
** Caller frees *out with free(). */
int fks_rimage_working_set(uint64_t **out, size_t *n, char *from, size_t fromlen, fks_rimage *ri);
/* Pulls ri's snapshot into the store (fks_pull: only the pages the store
** lacks; atomic) on a store handle of its own, so it may run beside
** readers of ri; then opens the pulled artifact on that handle and reads
** its page locations (fks_image_preload): *local, borrowed, valid until
** fks_rimage_close. st may be NULL. */
int fks_rimage_pull(fks_remote_stats *st, fks_image **local, fks_rimage *ri);

/* What fks_remote_stage wrote. */
typedef struct fks_remote_staged {
    char remote[FKS_NAME_MAX + 1];
    uint64_t skipped_bytes;    /* the size of the artifact left out */
    int has_rootfs;
} fks_remote_staged;

/* Writes every artifact of snapshot tag on remote (NULL: the only one)
** but the one named skip (NULL: none) into dir as restore names them
** (fks_artifact_filename), zero pages as holes: a lazy load's vmstate of a
** snapshot the store lacks. Errors as fks_rimage_open. */
int fks_remote_stage(fks_remote_staged *out, fks_store *s, const char *remote, const char *tag, const char *dir,
                     const char *skip);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* FORKSTORE_H */
