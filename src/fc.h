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

/* PUT /snapshot/load with a File memory backend and diff snapshots on. */
int fc_snapshot_load(fc_client *c, const char *vmstate_path, const char *mem_path, int resume);

/* GET / : the VM's state ("Running", "Paused", "Not started") into state. */
int fc_state(fc_client *c, char *state, size_t len);

/* GET /machine-config: the guest's memory size in MiB. */
int fc_mem_size_mib(fc_client *c, int64_t *mib);

#endif
