/*
** manifest.h: snapshot manifests, the copy of each committed snapshot's
** catalog rows (tag, parent, files, page map by hash) that lives outside
** the catalog, so that `forkctl recover` can rebuild it. See manifest.c
** for the design and the byte layout.
*/
#ifndef FKS_MANIFEST_H
#define FKS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "forkstore.h"

struct fks_store;

#define MF_MAGIC "FKSMANIF"
#define MF_VERSION 1
#define MF_HDR_SIZE 96
#define MF_TAG_MAGIC "FKSMTAG1"

/* One listed page of an artifact's map: its hash, or, in a delta, zero
** (the page became all zeros). */
typedef struct mf_page {
    uint64_t pgno;
    uint8_t hash[16];
    uint8_t zero;
} mf_page;

typedef struct mf_artifact {
    char name[FKS_NAME_MAX + 1];
    int delta;             /* pages not listed are the parent's (else zero) */
    uint64_t size;         /* logical bytes */
    mf_page *p;            /* by pgno, ascending, no duplicates */
    size_t n, alloc;
} mf_artifact;

typedef struct manifest {
    int64_t id;            /* snapshot.id: never reused (manifest.c, design 2) */
    int64_t parent_id;     /* at ingest; 0 for a root */
    int64_t created_ms, stored_bytes, new_pages;
    int64_t pause_ms, snapshot_ms, ingest_ms, diff_bytes;   /* -1 unknown */
    char tag[FKS_TAG_MAX + 1];
    mf_artifact *art;
    size_t n_art;
} manifest;

/* Frees what m owns and zeroes it. NULL ok. */
void manifest_clear(manifest *m);
/* Appends an artifact (zeroed, name copied); *out borrowed from m. */
int manifest_add_artifact(mf_artifact **out, manifest *m, const char *name, uint64_t size, int delta);
/* Appends page pgno (above every listed one). hash ignored when zero. */
int mf_push(mf_artifact *a, uint64_t pgno, const uint8_t *hash, int zero);
/* 1 if some artifact is a delta against the parent's manifest. */
int manifest_is_delta(const manifest *m);

/* Byte form. encode: *buf malloc()ed, caller frees. decode: checks magic,
** version, checksum and every bound against len; FKS_ECORRUPT naming what
** otherwise. m is filled (caller clears it, also after a failure). */
int manifest_encode(uint8_t **buf, size_t *len, const manifest *m);
int manifest_decode(manifest *m, const uint8_t *buf, size_t len, const char *what);

/* The file suffix of a kind (see manifest_list): ".manifest", ... */
const char *manifest_suffix(char kind);
/* DIR/manifests/<id as 16 hex digits><suffix> into buf. */
int manifest_path(char *buf, size_t len, const char *dir, int64_t id, const char *suffix);

/* Writes DIR/manifests/<id>.manifest durably: a temporary file (O_EXCL),
** fsync, rename over any stray of the same id, fsync of the directory.
** Creates DIR/manifests (synced) on first use. */
int manifest_write(const char *dir, const manifest *m);
/* Reads and decodes DIR/manifests/<id><suffix> (".manifest" or
** ".removed"). FKS_ENOTFOUND if absent. Caller clears m. */
int manifest_read(manifest *m, const char *dir, int64_t id, const char *suffix);
/* 1 if DIR/manifests/<id>.manifest exists. */
int manifest_exists(const char *dir, int64_t id);

/* Tag overrides (tag.c): DIR/manifests/<id>.tag says snapshot id is now
** called tag (written before the catalog's rename commits). set writes it
** durably; get reads it into tag[FKS_TAG_MAX + 1] (*when_ms: when it was written),
** 1 if there is none, FKS_ECORRUPT if it is damaged. */
int manifest_set_tag(const char *dir, int64_t id, const char *tag);
int manifest_get_tag(char *tag, int64_t *when_ms, const char *dir, int64_t id);

/* The snapshot id counter gc saved beside the manifests (manifest.c,
** design 2): 1 with *next = 0 if there is none, FKS_ECORRUPT if damaged. */
int manifest_get_next_id(int64_t *next, const char *dir);

/* After fks_rmi committed: each removed snapshot's manifest becomes a
** tombstone (<id>.removed), kept while a child's delta needs it as a
** base; its tag override goes. Best effort: manifest_sweep finishes
** what a crash left. */
void manifest_tombstone(const char *dir, const int64_t *ids, size_t n);

/* Files of DIR/manifests, by id, then kind: 'l' a manifest recover could
** not bring back, 'm' manifest, 'r' tombstone, 't' tag override. Caller
** frees *out with free(). A missing directory is an empty list. */
typedef struct mf_entry {
    int64_t id;
    char kind;
} mf_entry;
int manifest_list(mf_entry **out, size_t *n, const char *dir);

/* gc: under the writer lock, deletes manifests whose catalog row never
** committed (a crash between the manifest and the commit), tombstones no
** kept manifest's delta needs, tag overrides of removed snapshots and
** temporary files; turns a manifest of a removed snapshot that a delta
** still needs into a tombstone. *removed (may be NULL): files deleted
** (counted, not deleted, with dry_run). */
int manifest_sweep(struct fks_store *s, int dry_run, uint64_t *removed);

#endif
