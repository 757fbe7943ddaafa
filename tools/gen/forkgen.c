/*
** forkgen.c: generates realistic synthetic snapshot chains, Firecracker
** style, for the demo, the tests and the benchmarks.
**
** usage: forkgen --out DIR [--size 512M] [--snapshots 12] [--dirty 3]
**                [--seed 1] [--zero PCT] [--random PCT] [--rootfs SIZE]
**                [--sparse-full] [--no-full] [--quiet]
**
** Output (DIR must not hold a chain yet):
**   DIR/NN/memory.full   Full image of snapshot NN (raw RAM, every page as
**                        data; zero pages as holes with --sparse-full;
**                        with --no-full only NN = 00 is written)
**   DIR/NN/memory.diff   NN >= 1: sparse Diff against NN-1: logical size of
**                        the guest, exactly the dirtied pages as data, even
**                        those dirtied to zero or rewritten unchanged
**   DIR/NN/vmstate       ~20 KiB + a few bytes (never a page multiple)
**   DIR/rootfs.ext4      with --rootfs: disk-like blocks shared by all
**   DIR/chain.tsv        "#NN tag parent dirty_pages diff_data_bytes",
**                        tags s00, s01, ...
**
** Content model of the base image (fractions of pages, in runs):
**   40% zero (free memory), 8% copies from a pool of 256 "common" pages
**   (library text, identical page cache), 30% text-like (words from a
**   vocabulary: zstd -1 compresses them ~3x), 12% structured (pointer
**   arrays with small deltas, mostly-zero pages with a few words), 10%
**   random. --zero and --random set those two shares (defaults 40 and
**   10); pool, text and structured pages share the rest 8:30:12. Each diff dirties --dirty percent of the pages, in clustered
**   runs of 1-32 pages and single pages, including the first and last
**   page now and then; of the dirtied pages 10% become zero, 10% take an
**   earlier content back (dedup hits), 5% are rewritten unchanged, the
**   rest get fresh content from the same mix.
**
** Deterministic for a given seed (xoshiro256**). One image is held in
** memory, plus a copy of the base for reverts.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096
#define POOL 256

static uint64_t rs[4];

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rnd(void)
{
    uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
    rs[2] ^= rs[0];
    rs[3] ^= rs[1];
    rs[1] ^= rs[2];
    rs[0] ^= rs[3];
    rs[2] ^= t;
    rs[3] = rotl(rs[3], 45);
    return r;
}

static void seed(uint64_t s)
{
    for (int i = 0; i < 4; i++) {
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rs[i] = z ^ (z >> 31);
    }
}

static double frand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static const char *words[] = {
    "the", "kernel", "page", "cache", "agent", "request", "sandbox", "vm", "error", "ok", "json",
    "value", "status", "200", "GET", "/api/v1/run", "python3", "import", "numpy", "def", "return",
    "self", "node_modules", "index.js", "function", "const", "let", "true", "false", "null", "user",
    "task", "step", "result", "tokens", "model", "prompt", "stdout", "stderr", "exit", "0", "1",
    "/usr/lib/x86_64-linux-gnu", "libc.so.6", "INFO", "DEBUG", "WARN", "2026-11-24T18:07:00Z",
};
#define NWORDS (sizeof words / sizeof *words)

static uint8_t pool[POOL][PAGE];

/* Upper bounds of the content kinds in [0, 1): zero, pool, text, struct;
** random above. Computed in percent and divided once, so the defaults
** give exactly 0.40, 0.48, 0.78, 0.90 (the same images as before). */
static double t_zero = 0.40, t_pool = 0.48, t_text = 0.78, t_struct = 0.90;

static void set_mix(double zero, double random)
{
    double mix = 100 - zero - random;
    t_zero = zero / 100.0;
    t_pool = (zero + mix * 8 / 50) / 100.0;
    t_text = (zero + mix * 38 / 50) / 100.0;
    t_struct = (zero + mix) / 100.0;
}

/* Fills p with content of the kind r (a uniform draw in [0, 1)) falls on. */
static void fill_kind(uint8_t *p, double r);

static void fill_text(uint8_t *p)
{
    size_t o = 0;
    while (o < PAGE) {
        const char *w = words[rnd() % NWORDS];
        size_t n = strlen(w);
        if (o + n + 1 > PAGE)
            n = PAGE - o - 1;
        memcpy(p + o, w, n);
        o += n;
        p[o++] = (rnd() % 12 == 0) ? '\n' : ' ';
    }
}

static void fill_struct(uint8_t *p)
{
    memset(p, 0, PAGE);
    uint64_t base = (rnd() & 0xffffffffull) << 12 | 0xffff800000000000ull, *q = (uint64_t *)p;
    if (rnd() % 2) {
        for (int i = 0; i < PAGE / 8; i++)          /* pointer array */
            q[i] = base + (uint64_t)i * 64 + (rnd() % 4) * 8;
    } else {
        for (int i = 0; i < 12; i++)                 /* mostly zero */
            q[rnd() % (PAGE / 8)] = rnd();
    }
}

static void fill_random(uint8_t *p)
{
    uint64_t *q = (uint64_t *)p;
    for (int i = 0; i < PAGE / 8; i++)
        q[i] = rnd();
}

/* A page from the content mix; kind chosen by the model's fractions. */
static void fill_page(uint8_t *p, int allow_zero)
{
    fill_kind(p, frand() * (allow_zero ? 1.0 : 1.0 - t_zero) + (allow_zero ? 0.0 : t_zero));
}

static void fill_kind(uint8_t *p, double r)
{
    if (r < t_zero)
        memset(p, 0, PAGE);
    else if (r < t_pool)
        memcpy(p, pool[rnd() % POOL], PAGE);
    else if (r < t_text)
        fill_text(p);
    else if (r < t_struct)
        fill_struct(p);
    else
        fill_random(p);
}

static int write_all(int fd, const void *buf, size_t len, off_t off, const char *path)
{
    const uint8_t *b = buf;
    while (len) {
        ssize_t n = pwrite(fd, b, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "forkgen: write %s: %s\n", path, strerror(errno));
            return -1;
        }
        b += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static int is_zero(const uint8_t *p)
{
    return p[0] == 0 && memcmp(p, p + 1, PAGE - 1) == 0;
}

static int write_image(const char *path, const uint8_t *img, size_t npages, int sparse)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "forkgen: create %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (!sparse) {
        rc = write_all(fd, img, npages * PAGE, 0, path);
    } else if (ftruncate(fd, (off_t)(npages * PAGE)) != 0) {
        fprintf(stderr, "forkgen: truncate %s: %s\n", path, strerror(errno));
        rc = -1;
    } else {
        for (size_t i = 0; i < npages && rc == 0;) {
            if (is_zero(img + i * PAGE)) {
                i++;
                continue;
            }
            size_t j = i + 1;
            while (j < npages && !is_zero(img + j * PAGE))
                j++;
            rc = write_all(fd, img + i * PAGE, (j - i) * PAGE, (off_t)(i * PAGE), path);
            i = j;
        }
    }
    if (close(fd) != 0 && rc == 0) {
        fprintf(stderr, "forkgen: close %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: forkgen --out DIR [--size 512M] [--snapshots 12] [--dirty 3] [--seed 1]\n"
               "               [--zero PCT] [--random PCT] [--rootfs SIZE] [--sparse-full]\n"
               "               [--no-full] [--quiet]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'}, {"size", required_argument, NULL, 's'},
        {"snapshots", required_argument, NULL, 'n'}, {"dirty", required_argument, NULL, 'd'},
        {"seed", required_argument, NULL, 'S'}, {"rootfs", required_argument, NULL, 'r'},
        {"sparse-full", no_argument, NULL, 'p'}, {"no-full", no_argument, NULL, 'N'},
        {"zero", required_argument, NULL, 'z'}, {"random", required_argument, NULL, 'R'},
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *out = NULL;
    uint64_t size = 512ull << 20, rootfs = 0;
    long nsnap = 12;
    double dirty = 3, zero = 40, random = 10;
    uint64_t sd = 1;
    int sparse = 0, nofull = 0, quiet = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (parse_size(optarg, &size) || size == 0 || size % PAGE) {
                fprintf(stderr, "forkgen: --size %s: give a positive multiple of 4096 (K, M, G suffixes)\n", optarg);
                return 2;
            }
            break;
        case 'n': nsnap = atol(optarg); break;
        case 'd': dirty = atof(optarg); break;
        case 'z':
        case 'R': {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v >= 0 && v <= 100)) {
                fprintf(stderr, "forkgen: --%s %s: give a percentage from 0 to 100\n",
                        c == 'z' ? "zero" : "random", optarg);
                return 2;
            }
            *(c == 'z' ? &zero : &random) = v;
            break;
        }
        case 'S': sd = strtoull(optarg, NULL, 10); break;
        case 'r':
            if (parse_size(optarg, &rootfs) || rootfs % PAGE) {
                fprintf(stderr, "forkgen: --rootfs %s: give a multiple of 4096\n", optarg);
                return 2;
            }
            break;
        case 'p': sparse = 1; break;
        case 'N': nofull = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!out || optind < argc || nsnap < 1 || nsnap > 999 || dirty < 0 || dirty > 100) {
        usage(stderr);
        return 2;
    }
    if (zero + random > 100) {
        fprintf(stderr, "forkgen: --zero %g plus --random %g is more than 100%%\n", zero, random);
        return 2;
    }
    if (zero != 40 || random != 10)
        set_mix(zero, random);
    char p[4096];
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "forkgen: create %s: %s\n", out, strerror(errno));
        return 1;
    }
    snprintf(p, sizeof p, "%s/chain.tsv", out);
    if (access(p, F_OK) == 0) {
        fprintf(stderr, "forkgen: %s already exists: give an empty directory\n", p);
        return 1;
    }
    seed(sd);
    size_t npages = (size_t)(size / PAGE);
    uint8_t *img = malloc(size), *base = malloc(size), *page = malloc(PAGE);
    uint8_t *dirtymap = calloc(npages, 1);
    if (!img || !base || !page || !dirtymap) {
        fprintf(stderr, "forkgen: out of memory for a %llu-byte image\n", (unsigned long long)size);
        return 1;
    }
    for (int i = 0; i < POOL; i++)
        (i % 3 == 0 ? fill_random : fill_text)(pool[i]);
    /* Base image: runs of 1-64 pages of one kind of content. */
    for (size_t i = 0; i < npages;) {
        size_t run = 1 + rnd() % 64;
        double r = frand();
        for (size_t k = 0; k < run && i < npages; k++, i++)
            fill_kind(img + i * PAGE, r);
    }
    memcpy(base, img, size);
    FILE *tsv = fopen(p, "w");
    if (!tsv) {
        fprintf(stderr, "forkgen: create %s: %s\n", p, strerror(errno));
        return 1;
    }
    fprintf(tsv, "#NN\ttag\tparent\tdirty_pages\tdiff_data_bytes\n");
    int w = nsnap > 100 ? 3 : 2;
    for (long s = 0; s < nsnap; s++) {
        char dir[4096], f[4200];
        snprintf(dir, sizeof dir, "%s/%0*ld", out, w, s);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "forkgen: create %s: %s\n", dir, strerror(errno));
            return 1;
        }
        size_t ndirty = 0;
        if (s > 0) {
            memset(dirtymap, 0, npages);
            size_t want = (size_t)((double)npages * dirty / 100.0);
            if (want == 0 && dirty > 0)
                want = 1;
            if (s % 3 == 1)
                dirtymap[0] = 1, ndirty++;            /* edge extents now and then */
            if (s % 4 == 2)
                dirtymap[npages - 1] = 1, ndirty++;
            while (ndirty < want) {
                size_t start = rnd() % npages, len = rnd() % 2 ? 1 : 1 + rnd() % 32;
                for (size_t k = start; k < start + len && k < npages && ndirty < want; k++)
                    if (!dirtymap[k])
                        dirtymap[k] = 1, ndirty++;
            }
            snprintf(f, sizeof f, "%s/memory.diff", dir);
            int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
                fprintf(stderr, "forkgen: create %s: %s\n", f, strerror(errno));
                return 1;
            }
            for (size_t i = 0; i < npages; i++) {
                if (!dirtymap[i])
                    continue;
                uint8_t *pg = img + i * PAGE;
                double r = frand();
                if (r < 0.10)
                    memset(pg, 0, PAGE);                      /* dirtied to zero */
                else if (r < 0.20)
                    memcpy(pg, base + (rnd() % npages) * PAGE, PAGE);  /* earlier content */
                else if (r < 0.25)
                    ;                                         /* rewritten unchanged */
                else
                    fill_page(pg, 0);
                if (write_all(fd, pg, PAGE, (off_t)(i * PAGE), f) != 0)
                    return 1;
            }
            if (close(fd) != 0) {
                fprintf(stderr, "forkgen: close %s: %s\n", f, strerror(errno));
                return 1;
            }
        }
        if (s == 0 || !nofull) {
            snprintf(f, sizeof f, "%s/memory.full", dir);
            if (write_image(f, img, npages, sparse) != 0)
                return 1;
        }
        size_t vmlen = 20 * 1024 + 1 + rnd() % 3000 + (size_t)(size >> 20) / 8;
        uint8_t *vm = malloc(vmlen + PAGE);
        for (size_t o = 0; o < vmlen; o += PAGE)
            (o < PAGE ? fill_random : fill_struct)(vm + o);
        snprintf(f, sizeof f, "%s/vmstate", dir);
        int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write_all(fd, vm, vmlen, 0, f) != 0 || close(fd) != 0) {
            fprintf(stderr, "forkgen: write %s: %s\n", f, strerror(errno));
            return 1;
        }
        free(vm);
        char parent[16] = "-";
        if (s > 0)
            snprintf(parent, sizeof parent, "s%0*ld", w, s - 1);
        fprintf(tsv, "%0*ld\ts%0*ld\t%s\t%zu\t%zu\n", w, s, w, s, parent, ndirty, ndirty * PAGE);
        if (!quiet)
            fprintf(stderr, "forkgen: snapshot %ld: %zu pages dirtied\n", s, ndirty);
    }
    if (fclose(tsv) != 0) {
        fprintf(stderr, "forkgen: write chain.tsv: %s\n", strerror(errno));
        return 1;
    }
    if (rootfs) {
        /* Disk-like: mostly zero, some repeated blocks, file text, and
        ** blocks equal to pages of the memory image (page cache). */
        snprintf(p, sizeof p, "%s/rootfs.ext4", out);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)rootfs) != 0) {
            fprintf(stderr, "forkgen: create %s: %s\n", p, strerror(errno));
            return 1;
        }
        for (uint64_t o = 0; o < rootfs; o += PAGE) {
            double r = frand();
            if (r < 0.55)
                continue;
            if (r < 0.65)
                memcpy(page, pool[rnd() % POOL], PAGE);
            else if (r < 0.80)
                memcpy(page, base + (rnd() % npages) * PAGE, PAGE);
            else
                fill_text(page);
            if (write_all(fd, page, PAGE, (off_t)o, p) != 0)
                return 1;
        }
        close(fd);
    }
    free(img);
    free(base);
    free(page);
    free(dirtymap);
    return 0;
}
