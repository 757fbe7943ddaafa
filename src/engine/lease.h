/*
** lease.h: page-server leases as gc sees them (private; see lease.c).
*/
#ifndef FKS_LEASE_H
#define FKS_LEASE_H

#include <stdint.h>

struct fks_store;

/* Inside gc's sweep transaction (writer lock held): sets the bit of every
** page id below next that a live lease names in mark (one bit per id, as
** gc's), deletes leases that are expired and whose holder is gone (not
** with dry_run), and counts the live ones in *n_live. */
int lease_mark_live(struct fks_store *s, uint8_t *mark, int64_t next, int dry_run, uint64_t *n_live);

#endif
