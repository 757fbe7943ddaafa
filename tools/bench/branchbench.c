/*
** branchbench.c: the pause-window benchmark. N consecutive Diff branches
** of one running VM (behind a Firecracker API socket), one strategy per
** run, timed from the outside exactly as forkctl times itself:
**
**   ext4      forkd before its fix: snapshot/create writes the Diff (and
**             vmstate) straight into a snapshot directory on the store's
**             file system inside the pause; after the resume the files
**             are fsynced (durable).
**   prealloc  forkd's fix: the Diff goes to memory-backed staging inside
**             the pause; after the resume the parent's full memory.bin is
**             copied into a preallocated (fallocate) file on the store's
**             file system, the Diff's extents are applied, and it is
**             fsynced: one full memory.bin per branch.
**   forkstore fks_branch(): staging on /dev/shm, ingest after the resume.
**
** Every strategy starts with one Full snapshot (not counted) so that the
** Diffs have a base. Between branches the VM runs for --interval ms.
** Prints one line per branch (strategy, i, pause_ms, durable_ms) and a
** summary line: median and p90 pause, least-squares slope of pause over
** the branch index (ms per branch), total durable time, disk bytes used.
**
** usage: branchbench --api-sock SOCK --strategy S --dir DIR [--n 50]
**                    [--interval MS] [--staging DIR]
** DIR is on the file system under test (ext4 here): the strategy's
** snapshot directories, or the store (DIR/store) for forkstore.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fc.h"
#include "forkstore.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "branchbench: %s: %s\n", what, fks_errmsg());
    exit(1);
}

static void dief(const char *what, const char *path)
{
    fprintf(stderr, "branchbench: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void sync_file(const char *p)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        dief("fsync", p);
    close(fd);
}

/* Copies src onto a preallocated dst (dst's size = src's), all of it. */
static void copy_prealloc(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct stat st;
    if (in < 0 || out < 0 || fstat(in, &st) != 0)
        dief("open", dst);
    if (posix_fallocate(out, 0, st.st_size) != 0)
        dief("fallocate", dst);
    static char buf[1 << 20];
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = pread(in, buf, sizeof buf, off);
        if (n <= 0 || pwrite(out, buf, (size_t)n, off) != n)
            dief("copy to", dst);
        off += n;
    }
    close(in);
    close(out);
}

/* Writes the data extents of the sparse diff onto target. */
static void apply_diff(const char *diff, const char *target)
{
    int in = open(diff, O_RDONLY | O_CLOEXEC), out = open(target, O_WRONLY | O_CLOEXEC);
    if (in < 0 || out < 0)
        dief("open", target);
    static char buf[1 << 20];
    off_t pos = 0;
    for (;;) {
        off_t d = lseek(in, pos, SEEK_DATA);
        if (d < 0)
            break;
        off_t h = lseek(in, d, SEEK_HOLE);
        for (off_t o = d; o < h;) {
            size_t want = (size_t)(h - o < (off_t)sizeof buf ? h - o : (off_t)sizeof buf);
            ssize_t n = pread(in, buf, want, o);
            if (n <= 0 || pwrite(out, buf, (size_t)n, o) != n)
                dief("apply to", target);
            o += n;
        }
        pos = h;
    }
    close(in);
    close(out);
}

static long long du_bytes(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "du -s -B1 '%s' | cut -f1", dir);
    FILE *f = popen(cmd, "r");
    long long v = -1;
    if (f) {
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        pclose(f);
    }
    return v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const struct option o[] = {{"api-sock", required_argument, NULL, 'a'},
        {"strategy", required_argument, NULL, 's'}, {"dir", required_argument, NULL, 'd'},
        {"n", required_argument, NULL, 'n'}, {"interval", required_argument, NULL, 'i'},
        {"staging", required_argument, NULL, 'g'}, {0}};
    const char *sock = NULL, *strategy = NULL, *dir = NULL, *staging = "/dev/shm";
    int n = 50, interval = 200, c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (c) {
        case 'a': sock = optarg; break;
        case 's': strategy = optarg; break;
        case 'd': dir = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'i': interval = atoi(optarg); break;
        case 'g': staging = optarg; break;
        default: return 2;
        }
    }
    if (!sock || !strategy || !dir || n < 2 || interval < 0) {
        fprintf(stderr, "usage: branchbench --api-sock SOCK --strategy ext4|prealloc|forkstore --dir DIR "
                        "[--n 50] [--interval MS] [--staging DIR]\n");
        return 2;
    }
    int strat = !strcmp(strategy, "ext4") ? 0 : !strcmp(strategy, "prealloc") ? 1 : !strcmp(strategy, "forkstore") ? 2 : -1;
    if (strat < 0) {
        fprintf(stderr, "branchbench: unknown strategy %s\n", strategy);
        return 2;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        dief("mkdir", dir);
    double *pause = calloc((size_t)n + 1, sizeof *pause), *durable = calloc((size_t)n + 1, sizeof *durable);
    char p[4096], q[4096], stage[4096], prev[4400] = "", tag[64], ptag[64] = "";
    fks_store *s = NULL;
    fc_client *fc = NULL;
    if (strat == 2) {
        snprintf(p, sizeof p, "%s/store", dir);
        if (fks_init(p, 0) != 0 || fks_open(&s, p, 0) != 0)
            die("store");
    } else if (fc_open(&fc, sock, 10000) != 0) {
        die("api");
    }
    snprintf(stage, sizeof stage, "%s/branchbench-%d", staging, (int)getpid());
    if (strat == 1 && mkdir(stage, 0700) != 0)
        dief("mkdir", stage);
    double total0 = now_ms();
    for (int i = 0; i <= n; i++) {
        if (i > 0 && interval)
            usleep((useconds_t)interval * 1000);
        int diff = i > 0;
        double t0 = now_ms(), t1;
        snprintf(tag, sizeof tag, "b%03d", i);
        if (strat == 2) {
            fks_branch_opts bo = {.api_sock = sock, .tag = tag, .parent = diff ? ptag : NULL, .staging = staging};
            fks_branch_result br;
            if (fks_branch(&br, s, &bo) != 0)
                die(tag);
            t1 = now_ms();
            pause[i] = br.pause_s * 1000;
            durable[i] = t1 - t0;
            snprintf(ptag, sizeof ptag, "%s", tag);
        } else {
            char sd[4200], mem[4300], vm[4300], full[4300];
            snprintf(sd, sizeof sd, "%s/%s", dir, tag);
            if (mkdir(sd, 0700) != 0)
                dief("mkdir", sd);
            snprintf(full, sizeof full, "%s/memory.bin", sd);
            snprintf(vm, sizeof vm, "%s/vmstate", sd);
            if (strat == 0)
                snprintf(mem, sizeof mem, diff ? "%s/memory.diff" : "%s/memory.bin", sd);
            else
                snprintf(mem, sizeof mem, "%s/memory", stage);
            unlink(mem);
            double tp = now_ms();
            if (fc_pause(fc) != 0 || fc_snapshot_create(fc, diff, vm, mem) != 0)
                die(tag);
            if (fc_resume(fc) != 0)
                die(tag);
            t1 = now_ms();
            pause[i] = t1 - tp;
            if (strat == 0) {
                sync_file(mem);
            } else {
                if (diff) {
                    copy_prealloc(prev, full);
                    apply_diff(mem, full);
                } else {
                    copy_prealloc(mem, full);
                }
                unlink(mem);
                sync_file(full);
            }
            sync_file(vm);
            durable[i] = now_ms() - t0;
            snprintf(prev, sizeof prev, "%s", full);
        }
        if (i > 0)
            printf("%s\t%d\t%.1f\t%.1f\n", strategy, i, pause[i], durable[i]);
        fflush(stdout);
    }
    double total = now_ms() - total0 - (double)n * interval;
    /* summary over the n Diff branches */
    double *v = malloc((size_t)n * sizeof *v), sx = 0, sy = 0, sxx = 0, sxy = 0, dsum = 0;
    for (int i = 1; i <= n; i++) {
        v[i - 1] = pause[i];
        sx += i, sy += pause[i], sxx += (double)i * i, sxy += (double)i * pause[i];
        dsum += durable[i];
    }
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    double p90 = v[(int)(0.9 * (n - 1) + 0.5)];
    double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    if (s)
        fks_close(s);
    fc_close(fc);
    if (strat == 1)
        rmdir(stage);
    snprintf(q, sizeof q, "%s", dir);
    printf("summary\t%s\tn=%d\tpause_median_ms=%.1f\tpause_p90_ms=%.1f\tslope_ms_per_branch=%.3f\t"
           "durable_mean_ms=%.1f\ttotal_s=%.2f\tdisk_bytes=%lld\n",
           strategy, n, med, p90, slope, dsum / n, total / 1e3, du_bytes(q));
    free(v);
    free(pause);
    free(durable);
    return 0;
}
