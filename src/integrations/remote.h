/*
** remote.h: what the remote tier (remote.c) needs from the engine beyond
** forkstore.h, implemented in remote_engine.c (private).
*/
#ifndef FKS_REMOTE_H
#define FKS_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "forkstore.h"

/* The store's directory (borrowed, valid while s is open): pull builds a
** snapshot's files in a temporary directory inside it before ingesting. */
const char *remote__store_dir(const fks_store *s);

/* Records the Firecracker and vmstate format versions of snapshot tag
** (pulled: the manifest carries them), each only where the catalog has
** none ("" leaves it). FKS_ENOTFOUND if tag is absent. */
int remote__set_versions(fks_store *s, const char *tag, const char *fc_version, const char *format_version);

/* ---- lazy restore from a remote (remote.c, used by remote_lazy.c) ---- */

/* A connection to a remote: one S3 client and one page decoder, for one
** thread at a time (the S3 client is one libcurl easy handle). */
typedef struct rem remote__conn;

/* Where one stored page of a remote snapshot is: its pack (a number into
** remote__snap.packs), the byte range there, how it is encoded. */
typedef struct remote__page {
    uint64_t pgno;
    uint8_t hash[16];            /* XXH3-128 of its rlen bytes */
    uint64_t off;                /* from the pack's start */
    uint32_t pack, clen;
    uint16_t rlen;
    uint8_t enc;
} remote__page;

typedef struct remote__art {
    char name[65];
    uint64_t size;
    remote__page *p;             /* the non-zero pages, by pgno */
    size_t n;
} remote__art;

typedef struct remote__snap {
    char remote[65];             /* the remote's name */
    char (*chain)[129];          /* the snapshot's tag, then its ancestors' */
    size_t nchain;
    remote__art *art;            /* by name */
    size_t nart;
    char (*packs)[700];          /* key of each pack named */
    size_t npacks;
} remote__snap;

/* Opens remote (NULL: the store's only one) and reads snapshot tag's
** manifests (its chain) and the remote's index: *out the snapshot's page
** locations (caller frees with remote__snap_free), *conn the connection
** (caller closes with remote__conn_close). FKS_ENOTFOUND if the remote
** has no snapshot tag; FKS_ECORRUPT if a page is in no listed pack. */
int remote__snap_open(remote__snap **out, remote__conn **conn, fks_store *s, const char *remote, const char *tag);
void remote__snap_free(remote__snap *r);
/* A second connection to c's remote (another thread's). */
int remote__conn_clone(remote__conn **out, const remote__conn *c);
/* Adds c's request and byte counts to *st (may be NULL) and closes c. */
void remote__conn_close(remote__conn *c, fks_remote_stats *st);
/* Adds c's request and byte counts so far to *st. */
void remote__conn_stats(const remote__conn *c, fks_remote_stats *st);
/* GET key, or bytes off .. off+len-1 of it (len > 0: one Range GET).
** Caller frees *out with free(). */
int remote__get(uint8_t **out, size_t *outlen, remote__conn *c, const char *key, uint64_t off, uint64_t len);
/* Decodes page p from its clen stored bytes into page (FKS_PAGE_SIZE,
** zero-padded) and checks its length and hash: FKS_ECORRUPT naming where
** (key) if either fails. */
int remote__page_decode(remote__conn *c, uint8_t *page, const uint8_t *stored, const remote__page *p,
                        const char *key);
/* The working set pushed with snapshot tag (P snapshots/<tag>.ws, see
** remote.c): *out its page numbers (caller frees with free()), *n; both
** 0/NULL if there is none (FKS_ECORRUPT if it is damaged). */
int remote__ws_get(uint64_t **out, size_t *n, remote__conn *c, const char *tag);

#endif
