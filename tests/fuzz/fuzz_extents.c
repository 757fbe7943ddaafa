/*
** fuzz_extents.c: the memory-file extent walker (ingest's SEEK_DATA /
** SEEK_HOLE loop, zero-page detection, dedup, diff overlay) through the
** public API, on crafted sparse files.
**
** Input: a size byte (bit 7: a "big" file of up to 2^18 pages, else 1-64
** pages), a flags byte (bit 0: also ingest a diff; bit 1: give the diff a
** wrong size; bit 2: add a vmstate made of the input's tail), the number
** of writes for the parent image, its writes, the number for the diff,
** its writes, then the tail. A write is (page: 3 bytes, offset in page: 2,
** length: 2 (1..12288), fill byte, mode byte); mode bit 0 fills with a
** pattern seeded by the fill byte, else with the fill byte itself: fill 0
** writes zero pages as data, which a Full ingest must store as holes and
** a Diff ingest must apply over the parent's page.
**
** Each input writes the parent as a sparse file, ingests it as Full,
** writes the diff as a sparse file, ingests it as a Diff over the parent,
** and restores both. The expected images are modelled here: the parent is
** its written pages; the child is the parent with every page the diff file
** holds data for replaced by the diff's page (on tmpfs a data extent is
** exactly the written pages; inputs where the file system disagrees with
** the model are skipped, and counted).
**
** Oracle (any failure aborts): both ingests succeed (the wrong-size diff
** must fail with FKS_EINVAL and leave no snapshot); each restore
** succeeds; memory.bin has the logical size, every data extent of it
** holds only non-zero expected pages (zero pages are holes), every
** non-zero expected page reads back byte for byte; vmstate is identical.
** A store is reused for 32 inputs, so dedup against earlier inputs runs
** too.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forkstore.h"
#include "fuzz.h"

#define PG 4096
#define MAXW 24
#define MAXP 256            /* touched pages per model: the child holds both images */

struct image {
    uint64_t npages;
    size_t n;
    uint64_t pg[MAXP];
    uint8_t data[MAXP][PG];
};

static const char *dir;
static fks_store *store;
static unsigned iter, skipped;
static struct image parent, diffimg, child;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!getenv("FORKSTORE_THREADS"))
        setenv("FORKSTORE_THREADS", "2", 1);
    dir = fuzz_scratch("extents");
    return 0;
}

static uint8_t *page_of(struct image *im, uint64_t pg, int create)
{
    for (size_t i = 0; i < im->n; i++)
        if (im->pg[i] == pg)
            return im->data[i];
    if (!create)
        return NULL;
    FUZZ_ASSERT(im->n < MAXP, "model full");
    im->pg[im->n] = pg;
    memset(im->data[im->n], 0, PG);
    return im->data[im->n++];
}

static int is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Reads writes from the input, applies them to fd and to the model. */
static void do_writes(fuzz_in *in, int fd, struct image *im)
{
    size_t nw = fuzz_take(in, 1) % (MAXW + 1);
    static uint8_t buf[3 * PG];
    for (size_t w = 0; w < nw; w++) {
        uint64_t pg = fuzz_take(in, 3) % im->npages;
        uint64_t off = fuzz_take(in, 2) % PG;
        uint64_t len = 1 + fuzz_take(in, 2) % (3 * PG);
        unsigned fill = (unsigned)fuzz_take(in, 1), mode = (unsigned)fuzz_take(in, 1);
        uint64_t start = pg * PG + off, end = start + len;
        if (end > im->npages * PG)
            end = im->npages * PG;
        len = end - start;
        uint32_t x = fill * 2654435761u + (uint32_t)pg + 1;
        for (uint64_t i = 0; i < len; i++) {
            if (mode & 1) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                buf[i] = (uint8_t)x;
            } else {
                buf[i] = (uint8_t)fill;
            }
        }
        FUZZ_ASSERT(pwrite(fd, buf, len, (off_t)start) == (ssize_t)len, "pwrite: %s", strerror(errno));
        for (uint64_t a = start; a < end;) {
            uint64_t p = a / PG, e = (p + 1) * PG < end ? (p + 1) * PG : end;
            memcpy(page_of(im, p, 1) + a % PG, buf + (a - start), e - a);
            a = e;
        }
    }
}

/* 1 if the file's data extents are exactly the model's pages. */
static int fs_agrees(int fd, const struct image *im, uint64_t size)
{
    size_t seen = 0;
    off_t pos = 0;
    for (;;) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0)
            return 0;
        for (uint64_t p = (uint64_t)d / PG; p * PG < (uint64_t)h && p * PG < size; p++) {
            size_t i = 0;
            while (i < im->n && im->pg[i] != p)
                i++;
            if (i == im->n)
                return 0;
            seen++;
        }
        pos = h;
    }
    return seen == im->n;
}

static void make_file(const char *path, fuzz_in *in, struct image *im, uint64_t size, int *agree)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    FUZZ_ASSERT(fd >= 0, "create %s: %s", path, strerror(errno));
    FUZZ_ASSERT(ftruncate(fd, (off_t)size) == 0, "truncate");
    do_writes(in, fd, im);
    *agree &= fs_agrees(fd, im, size);
    close(fd);
}

static void check_memory(const char *path, const struct image *want)
{
    int fd = open(path, O_RDONLY);
    FUZZ_ASSERT(fd >= 0, "restored %s missing: %s", path, strerror(errno));
    struct stat st;
    FUZZ_ASSERT(fstat(fd, &st) == 0 && (uint64_t)st.st_size == want->npages * PG,
                "%s is %lld bytes, expected %llu", path, (long long)st.st_size,
                (unsigned long long)(want->npages * PG));
    /* Data extents hold non-zero expected pages only. */
    off_t pos = 0, d;
    while ((d = lseek(fd, pos, SEEK_DATA)) >= 0) {
        off_t h = lseek(fd, d, SEEK_HOLE);
        FUZZ_ASSERT(h > d, "SEEK_HOLE");
        for (uint64_t p = (uint64_t)d / PG; p * PG < (uint64_t)h; p++) {
            size_t i = 0;
            while (i < want->n && want->pg[i] != p)
                i++;
            FUZZ_ASSERT(i < want->n && !is_zero(want->data[i], PG),
                        "%s: page %llu is data but should be a zero page (hole)", path, (unsigned long long)p);
        }
        pos = h;
    }
    static uint8_t got[PG];
    for (size_t i = 0; i < want->n; i++) {
        FUZZ_ASSERT(pread(fd, got, PG, (off_t)(want->pg[i] * PG)) == PG, "read %s", path);
        FUZZ_ASSERT(memcmp(got, want->data[i], PG) == 0, "%s: page %llu differs from the image", path,
                    (unsigned long long)want->pg[i]);
    }
    close(fd);
}

static void check_file(const char *path, const uint8_t *want, size_t len)
{
    int fd = open(path, O_RDONLY);
    FUZZ_ASSERT(fd >= 0, "restored %s missing", path);
    uint8_t *got = malloc(len + 1);
    FUZZ_ASSERT(got, "out of memory");
    FUZZ_ASSERT(read(fd, got, len + 1) == (ssize_t)len && memcmp(got, want, len) == 0, "%s differs", path);
    free(got);
    close(fd);
}

static void restore_check(const char *tag, const struct image *im, const uint8_t *vm, size_t vmlen, int has_vm)
{
    char out[600], p[700];
    snprintf(out, sizeof out, "%s/out-%s", dir, tag);
    int rc = fks_restore(NULL, store, tag, out, 0, NULL, NULL);
    FUZZ_ASSERT(rc == 0, "restore %s: %s", tag, fks_errmsg());
    snprintf(p, sizeof p, "%s/memory.bin", out);
    check_memory(p, im);
    if (has_vm) {
        snprintf(p, sizeof p, "%s/vmstate", out);
        check_file(p, vm, vmlen);
    }
    fuzz_rmtree(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size, 0};
    char sdir[600], pmem[600], dmem[600], vpath[600], ptag[32], ctag[32];
    int rc;

    if (iter % 32 == 0) {
        fks_close(store);
        store = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        fuzz_rmtree(sdir);
        FUZZ_ASSERT(fks_init(sdir, 1 << 20) == 0, "init: %s", fks_errmsg());
        FUZZ_ASSERT(fks_open(&store, sdir, 0) == 0, "open: %s", fks_errmsg());
    }
    iter++;
    snprintf(ptag, sizeof ptag, "p%u", iter);
    snprintf(ctag, sizeof ctag, "c%u", iter);

    unsigned szb = (unsigned)fuzz_take(&in, 1), flags = (unsigned)fuzz_take(&in, 1);
    uint64_t npages = (szb & 0x80) ? 1 + (((uint64_t)(szb & 0x7f) << 11) | fuzz_take(&in, 2) % 2048)
                                   : 1 + szb % 64;
    parent.npages = diffimg.npages = child.npages = npages;
    parent.n = diffimg.n = child.n = 0;
    int agree = 1;
    snprintf(pmem, sizeof pmem, "%s/parent.mem", dir);
    snprintf(dmem, sizeof dmem, "%s/diff.mem", dir);
    snprintf(vpath, sizeof vpath, "%s/vmstate", dir);
    make_file(pmem, &in, &parent, npages * PG, &agree);
    int do_diff = flags & 1, bad_size = do_diff && (flags & 2);
    uint64_t dsize = (npages + (bad_size ? 1 + (flags >> 4) : 0)) * PG;
    diffimg.npages = dsize / PG;
    make_file(dmem, &in, &diffimg, dsize, &agree);
    const uint8_t *vm = in.p + in.pos;
    size_t vmlen = fuzz_left(&in) > 9000 ? 9000 : fuzz_left(&in);
    int has_vm = (flags & 4) != 0;
    if (has_vm) {
        int fd = open(vpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        FUZZ_ASSERT(fd >= 0 && write(fd, vm, vmlen) == (ssize_t)vmlen, "vmstate");
        close(fd);
    }
    if (!agree) {
        if (skipped++ == 0)
            fprintf(stderr, "fuzz_extents: this file system's extents differ from 4 KiB pages; "
                            "skipping such inputs\n");
        return 0;
    }

    fks_artifact_in arts[2] = {{"memory", pmem, 0}, {"vmstate", vpath, 0}};
    fks_ingest_opts o = {.tag = ptag, .artifacts = arts, .n_artifacts = has_vm ? 2 : 1,
                         .pause_ms = -1, .snapshot_ms = -1, .diff_bytes = -1};
    rc = fks_ingest(NULL, store, &o);
    FUZZ_ASSERT(rc == 0, "full ingest: %s", fks_errmsg());
    restore_check(ptag, &parent, vm, vmlen, has_vm);
    if (!do_diff)
        return 0;

    arts[0] = (fks_artifact_in){"memory", dmem, 1};
    o.tag = ctag;
    o.parent = ptag;
    rc = fks_ingest(NULL, store, &o);
    if (bad_size) {
        fks_snapinfo si;
        FUZZ_ASSERT(rc == FKS_EINVAL && strstr(fks_errmsg(), "parent's logical size"),
                    "diff of the wrong size: rc %d: %s", rc, fks_errmsg());
        FUZZ_ASSERT(fks_get(&si, store, ctag) == FKS_ENOTFOUND, "failed ingest left snapshot %s", ctag);
        return 0;
    }
    FUZZ_ASSERT(rc == 0, "diff ingest: %s", fks_errmsg());
    /* child = parent, with every page the diff holds replaced */
    child.n = 0;
    for (size_t i = 0; i < parent.n; i++)
        memcpy(page_of(&child, parent.pg[i], 1), parent.data[i], PG);
    for (size_t i = 0; i < diffimg.n; i++)
        memcpy(page_of(&child, diffimg.pg[i], 1), diffimg.data[i], PG);
    restore_check(ctag, &child, vm, vmlen, has_vm);
    return 0;
}
