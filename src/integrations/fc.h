/*
** fc.h: a small client for the Firecracker API over its Unix socket
** (libcurl, json-c). See fc.c.
*/
#ifndef FKS_FC_H
#define FKS_FC_H

#include <stddef.h>
#include <stdint.h>

typedef struct fc_client fc_client;

/* Opens a client for the API socket at sock; every call times out after
** timeout_ms. The socket is not touched until the first call. Caller
** frees with fc_close(). */
int fc_open(fc_client **out, const char *sock, long timeout_ms);
void fc_close(fc_client *c);

/* PATCH /vm {"state": "Paused"} and {"state": "Resumed"}. */
int fc_pause(fc_client *c);
int fc_resume(fc_client *c);

/* PUT /snapshot/create: Diff when diff, else Full. */
int fc_snapshot_create(fc_client *c, int diff, const char *vmstate_path, const char *mem_path);

/* Changes the timeout of the calls that follow (snapshot/create scales
** it with the guest's memory; control calls keep a short one). */
void fc_set_timeout(fc_client *c, long timeout_ms);
long fc_timeout(const fc_client *c);

/* PUT /snapshot/load with a File memory backend (Uffd with r->uffd). dirty_field names the
** dirty-tracking flag the VMM's version knows ("track_dirty_pages" from
** 1.13, "enable_diff_snapshots" before), set to true. net: n_net
** "IFACE=HOSTDEV" strings sent as network_overrides (omitted when 0);
** vsock_uds: vsock_override.uds_path (omitted when NULL). Strings are
** borrowed. */
typedef struct fc_load_req {
    const char *vmstate_path, *mem_path;
    int resume;
    const char *dirty_field;
    const char *const *net;
    size_t n_net;
    const char *vsock_uds;
    int uffd;                  /* backend "Uffd": mem_path is the page server's socket */
} fc_load_req;
int fc_snapshot_load(fc_client *c, const fc_load_req *r);

/* GET / : the instance id ("" when the answer has none) and state. */
int fc_instance(fc_client *c, char *id, size_t idlen, char *state, size_t statelen);
/* GET /version : "firecracker_version" (e.g. "1.14.2") into ver. */
int fc_version(fc_client *c, char *ver, size_t len);

/* GET /vm/config: 1 if it has "memory-hotplug" (more memory slots), else 0
** (also when the call fails: the caller decides from the memory size). */
int fc_hotplug(fc_client *c);

/* GET /machine-config: the guest's memory size in MiB. */
int fc_mem_size_mib(fc_client *c, int64_t *mib);

#endif
