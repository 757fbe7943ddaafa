/*
** branch.c: branching a running microVM into the store, and loading a
** stored snapshot into a fresh VM, through the Firecracker API.
**
** Design: keep every file-system and hashing cost out of the pause.
**
**   pause  ->  snapshot/create into staging  ->  resume   |  ingest, unlink
**   \_____________ pause window (pause_ms) ____________/     (ingest_ms)
**
**  1. Staging is memory-backed: by default a private (0700) directory made
**     with mkdtemp under /dev/shm, so the VMM's writes inside the pause
**     are page-cache copies, never ext4 allocation or writeback.
**  2. Diff when a parent is given (the VM's previous snapshot in the
**     store: the VMM tracks pages dirtied since then), Full otherwise or
**     with --full.
**  3. If anything fails after the pause request was sent, the VM is
**     resumed before the error is reported: a branch never leaves a VM
**     paused. A resume that itself fails is reported with both errors.
**  4. After the resume, the staged files are ingested (chunk files are
**     preallocated, see chunk.c) and removed, success or not. pause_ms,
**     snapshot_ms, ingest_ms and the staged memory file's physical bytes
**     are recorded with the snapshot.
**  5. Load restores into staging and calls snapshot/load with resume; the
**     VMM maps the memory file, so the staged files stay (their directory
**     is returned to the caller).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fc.h"
#include "forkstore.h"
#include "util.h"

/* A new private (0700) directory under base; out stays "" on failure. */
static int make_staging(char *out, size_t len, const char *base)
{
    int rc = fks__path(out, len, "%s/forkstore-XXXXXX", base ? base : "/dev/shm");
    if (rc == 0 && base && (rc = fks__mkdir_p(base, 0700)) != 0)
        fks__errctx(rc, "staging directory");
    if (rc == 0 && !mkdtemp(out))
        rc = fks__errno(errno == ENOSPC ? FKS_ENOSPC : FKS_EIO, errno, "create a staging directory under %s",
                        base ? base : "/dev/shm");
    if (rc)
        out[0] = 0;
    return rc;
}

static void remove_staging(const char *dir)
{
    const char *names[] = {"memory", "vmstate", "memory.bin"};
    char p[4200];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) < (int)sizeof p)
            unlink(p);
    rmdir(dir);
}

int fks_branch(fks_branch_result *res, fks_store *s, const fks_branch_opts *o)
{
    char stage[4096] = "", mem[4200], vm[4200];
    fc_client *c = NULL;
    int rc;
    memset(res, 0, sizeof *res);
    res->pause_ms = res->snapshot_ms = res->ingest_ms = -1;
    if ((rc = fks_check_tag(o->tag)) != 0)
        return rc;
    if (o->parent) {
        fks_snapinfo pi;
        if ((rc = fks_get(&pi, s, o->parent)) != 0)
            return rc;
    }
    fks_snapinfo exists;
    if (fks_get(&exists, s, o->tag) == 0)
        return fks__err(FKS_EEXIST, "tag %s already exists", o->tag);
    int diff = o->parent && !o->full;
    if ((rc = fc_open(&c, o->api_sock, o->timeout_ms > 0 ? o->timeout_ms : 10000)) != 0)
        return rc;
    /* Ask before pausing: a missing or silent VMM fails here, with the VM
    ** (if any) untouched. */
    char state[32];
    if ((rc = fc_state(c, state, sizeof state)) != 0)
        goto out;
    if (strcmp(state, "Running") != 0) {
        rc = fks__err(FKS_EINVAL, "the VM at %s is %s, not Running: nothing to branch", o->api_sock, state);
        goto out;
    }
    if ((rc = make_staging(stage, sizeof stage, o->staging)) != 0)
        goto out;
    snprintf(mem, sizeof mem, "%s/memory", stage);
    snprintf(vm, sizeof vm, "%s/vmstate", stage);

    double t0 = fks__now();
    /* From here on every path runs the resume below. */
    if ((rc = fc_pause(c)) != 0)
        goto resume;
    double t1 = fks__now();
    rc = fc_snapshot_create(c, diff, vm, mem);
    res->snapshot_s = fks__now() - t1;
    res->snapshot_ms = (int64_t)(res->snapshot_s * 1000 + 0.5);
resume:;
    char first[1024];
    snprintf(first, sizeof first, "%s", fks_errmsg());
    int rrc = fc_resume(c);
    res->pause_s = fks__now() - t0;
    res->pause_ms = (int64_t)(res->pause_s * 1000 + 0.5);
    if (rc && rrc) {
        rc = fks__err(rc, "%s; and resuming the VM failed too: %s", first, fks_errmsg());
        goto out;
    }
    if (rc) {
        fks__err(rc, "%s (the VM was resumed)", first);
        goto out;
    }
    if (rrc) {
        rc = fks__errctx(rrc, "snapshot taken but the VM could not be resumed");
        goto out;
    }

    /* The VM runs again: now the file-system work. */
    struct stat st;
    if (stat(mem, &st) != 0) {
        rc = fks__errno(FKS_EIO, errno, "the VMM wrote no memory file %s", mem);
        goto out;
    }
    res->diff_bytes = (int64_t)st.st_blocks * 512;
    double t2 = fks__now();
    fks_artifact_in a[] = {{"memory", mem, diff}, {"vmstate", vm, 0}};
    fks_ingest_opts io = {.tag = o->tag, .parent = o->parent, .artifacts = a, .n_artifacts = 2,
                          .progress = o->progress, .progress_arg = o->progress_arg,
                          .pause_ms = res->pause_ms, .snapshot_ms = res->snapshot_ms,
                          .diff_bytes = res->diff_bytes};
    if ((rc = fks_ingest(&res->ingest, s, &io)) != 0)
        goto out;
    res->ingest_s = fks__now() - t2;
    res->ingest_ms = (int64_t)(res->ingest_s * 1000 + 0.5);
    rc = fks_set_ingest_ms(s, o->tag, res->ingest_ms);
    res->diff = diff;
out:
    if (stage[0])
        remove_staging(stage);
    fc_close(c);
    if (rc)
        fks__errctx(rc, "branch %s", o->tag);
    return rc;
}

int fks_load(char *staging_out, size_t staging_len, fks_store *s, const char *tag, const char *api_sock,
             const char *staging, long timeout_ms)
{
    char stage[4096] = "", mem[4200], vm[4200];
    fc_client *c = NULL;
    int rc = fks_check_tag(tag);
    if (rc)
        return rc;
    if ((rc = make_staging(stage, sizeof stage, staging)) != 0)
        return rc;
    if ((rc = fks_restore(NULL, s, tag, stage, 0, NULL, NULL)) != 0)
        goto out;
    snprintf(mem, sizeof mem, "%s/memory.bin", stage);
    snprintf(vm, sizeof vm, "%s/vmstate", stage);
    if ((rc = fc_open(&c, api_sock, timeout_ms > 0 ? timeout_ms : 10000)) != 0)
        goto out;
    rc = fc_snapshot_load(c, vm, mem, 1);
out:
    fc_close(c);
    if (rc) {
        remove_staging(stage);
        return fks__errctx(rc, "load %s", tag);
    }
    return fks__path(staging_out, staging_len, "%s", stage);
}
