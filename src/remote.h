/*
** remote.h: what the remote tier (remote.c) needs from the engine beyond
** forkstore.h, implemented in remote_engine.c (private).
*/
#ifndef FKS_REMOTE_H
#define FKS_REMOTE_H

#include <stddef.h>

#include "forkstore.h"

/* The store's directory (borrowed, valid while s is open): pull builds a
** snapshot's files in a temporary directory inside it before ingesting. */
const char *remote__store_dir(const fks_store *s);

/* Records the Firecracker and vmstate format versions of snapshot tag
** (pulled: the manifest carries them), each only where the catalog has
** none ("" leaves it). FKS_ENOTFOUND if tag is absent. */
int remote__set_versions(fks_store *s, const char *tag, const char *fc_version, const char *format_version);

#endif
