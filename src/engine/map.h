/*
** map.h: page maps in the catalog (tables pmap, pmap_run): shared,
** immutable deltas on a skip chain. See map.c for the design.
*/
#ifndef FKS_MAP_H
#define FKS_MAP_H

#include <sqlite3.h>
#include <stdint.h>

#include "pmap.h"

/* No stored run is longer than this (insert splits; reads merge back), so
** the runs naming a page id lie in an index range of this width. */
#define MAP_RUN_MAX 4096
#define MAP_RUN_MAX_SQL "4096"

struct map_row {
    int64_t id, base_id;     /* base_id 0: a complete map */
    int64_t seq;             /* position on its line: 0 complete, else diffs since */
    uint64_t npages;         /* pages of the artifact */
    uint64_t pages;          /* non-zero pages of the whole map */
    int64_t refs;            /* artifacts and maps built on it */
};

/* Reads and checks map id's row. FKS_ECORRUPT if absent or malformed. */
int map_row_get(struct map_row *r, sqlite3 *db, int64_t id);
/* Map id's own runs (a delta when it has a base: page 0 = zeros). */
int map_delta_load(pm_map *m, sqlite3 *db, int64_t id, uint64_t npages);
/* The complete map of id: every page number's page, zeros left out.
** Reads the deltas of its chain (at most ~log2 of its depth). */
int map_load(pm_map *m, sqlite3 *db, int64_t id);
/* The complete map of id restricted to the page ranges of want (runs of
** want, page ids ignored): a point query per range and chain level. */
int map_restrict(pm_map *m, sqlite3 *db, int64_t id, const pm_map *want);
/* Maps a and b where they may differ. If their chains share a node x,
** *found = 1 and ua, ub (replaced) are the complete maps of a and of b
** restricted to the page ranges of the deltas above x on either chain:
** outside those ranges both maps are x's, the same. The work is those
** deltas, and x where only one side's deltas run (for a Diff and its
** parent: the Diff's own pages). Chains that share no node: *found = 0,
** ua and ub untouched. */
int map_pair(pm_map *ua, pm_map *ub, int *found, sqlite3 *db, int64_t a, int64_t b);
/* Stores a new map, inside the caller's write transaction. parent 0:
** own is a complete map (no page 0). Else own is a delta on map parent
** (page 0 = zeros) of npages pages, the same as parent's. *id is the new
** map; its refs are 0 until an artifact names it (a trigger counts). */
int map_put(int64_t *id, sqlite3 *db, int64_t parent, const pm_map *own, uint64_t npages);
/* Deletes every map nobody uses (refs 0), and then the bases that
** leaves unused. *freed (may be NULL) counts them. */
int map_sweep(sqlite3 *db, uint64_t *freed);
/* Folds every map no artifact names into the maps built on it, so that
** each remaining map belongs to a snapshot and gc's marks are exact;
** then sweeps. *folded (may be NULL) counts the maps folded. */
int map_dissolve(sqlite3 *db, uint64_t *folded);
/* Artifact art's map id, FKS_ECORRUPT if none. */
int map_of_artifact(int64_t *id, sqlite3 *db, int64_t art);
/* The complete map of artifact art, of npages pages, checked (pm_check). */
int map_load_artifact(pm_map *m, sqlite3 *db, int64_t art, uint64_t npages);

#endif
