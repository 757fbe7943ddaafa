/*
** lineage.h: removing snapshots in bulk, for prune. See lineage.c.
*/
#ifndef FKS_LINEAGE_H
#define FKS_LINEAGE_H

#include <stddef.h>

#include "forkstore.h"

/* Removes the snapshots tags[0 .. n-1] as fks_rmi(s, tag, 0) does each
** (children take the removed one's parent), in the order given, in ONE
** write transaction with one map sweep: all of them are removed or, on an
** error or a crash, none. A tag no longer in the catalog (another rmi won)
** is skipped and gone[i] set to 1 (else 0); gone has n entries, owned by
** the caller. */
int lineage_rmi_batch(fks_store *s, const char *const *tags, size_t n, char *gone);

#endif
