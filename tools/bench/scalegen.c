/*
** scalegen.c: memory files for the scale benchmark (tools/bench/scale.sh),
** written in C because the chain needs thousands of files with scattered
** pages (one dd per page would spend minutes in fork/exec).
**
** usage:
**   scalegen diff OUT SIZE PAGES SEED ZERO_PCT
**       A sparse Diff file of SIZE bytes: PAGES distinct random page numbers
**       (seeded) hold data, the rest are holes. ZERO_PCT percent of those
**       pages are written as all zeros (Firecracker writes a dirtied page
**       that is zero as data); the others are distinct new pages.
**   scalegen full OUT SIZE DATA SEED EXTENT
**       A sparse Full file of SIZE bytes with DATA bytes of non-zero pages
**       in EXTENT-byte extents at random aligned places (DATA >= SIZE: the
**       whole file is data).
**   scalegen fill OUT PAGES FIRST [random]
**       A dense file of PAGES distinct pages numbered FIRST, FIRST+1, ...:
**       page k differs from every other page of every fill call with a
**       different k. Default: compressible (64 bytes derived from k, then
**       zeros: the index sees a distinct page, the chunks stay small);
**       "random": 4 KiB of pseudo-random bytes from k (incompressible).
** Sizes take K, M, G suffixes (powers of 1024). SEED and FIRST are plain
** integers; the same arguments always give the same file.
**
** Page contents ("distinct new pages") are 512 pseudo-random bytes then
** zeros, unique per (seed, page number): compressible like real guest
** pages, never a duplicate of another call's pages.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int parse_size(const char *a, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(a, &end, 10);
    if (errno || end == a)
        return -1;
    switch (*end) {
    case 'K': v <<= 10; end++; break;
    case 'M': v <<= 20; end++; break;
    case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static void fill_words(uint8_t *p, size_t bytes, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t w = splitmix(&s);
        memcpy(p + i, &w, 8);
    }
}

/* A page unique per (tag, n): tag separates callers (seeds, fill). */
static void make_page(uint8_t *p, uint64_t tag, uint64_t n, size_t random_bytes)
{
    memset(p, 0, PAGE);
    uint64_t s = tag * 0x100000001b3ull ^ n;
    fill_words(p, random_bytes, splitmix(&s));
    memcpy(p, &tag, 8);          /* tag and n in clear: no two pages alike */
    memcpy(p + 8, &n, 8);
    p[PAGE - 1] = 1;             /* never all zero */
}

static int put(int fd, const void *b, size_t len, uint64_t off, const char *path)
{
    while (len) {
        ssize_t w = pwrite(fd, b, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "scalegen: write %s: %s\n", path, strerror(errno));
            return -1;
        }
        b = (const uint8_t *)b + w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* n distinct values in [0, range), sorted; caller frees. */
static uint64_t *pick(uint64_t n, uint64_t range, uint64_t seed)
{
    uint64_t *v = malloc((n ? n : 1) * sizeof *v), s = seed, have = 0;
    if (!v)
        return NULL;
    while (have < n) {
        for (uint64_t i = have; i < n; i++)
            v[i] = splitmix(&s) % range;
        qsort(v, n, sizeof *v, cmp_u64);
        have = 0;
        for (uint64_t i = 0; i < n; i++)
            if (have == 0 || v[i] != v[have - 1])
                v[have++] = v[i];
    }
    return v;
}

static int open_out(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        fprintf(stderr, "scalegen: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int finish(int fd, const char *path)
{
    if (close(fd) != 0) {
        fprintf(stderr, "scalegen: close %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int gen_diff(const char *path, uint64_t size, uint64_t pages, uint64_t seed, uint64_t zero_pct)
{
    uint64_t npages = size / PAGE;
    if (size % PAGE || pages > npages || pages > npages / 2 + 1 || zero_pct > 100) {
        fprintf(stderr, "scalegen: diff: bad size, page count or zero percentage\n");
        return 2;
    }
    uint64_t *pg = pick(pages, npages, seed * 2 + 1), s = seed ^ 0x5eedull;
    int fd = open_out(path, size);
    if (!pg || fd < 0) {
        free(pg);
        return 1;
    }
    static uint8_t buf[PAGE];
    for (uint64_t i = 0; i < pages; i++) {
        if (splitmix(&s) % 100 < zero_pct)
            memset(buf, 0, PAGE);
        else
            make_page(buf, 0xd1ff000000000000ull ^ seed, pg[i], 512);
        if (put(fd, buf, PAGE, pg[i] * PAGE, path)) {
            free(pg);
            close(fd);
            return 1;
        }
    }
    free(pg);
    return finish(fd, path);
}

static int gen_full(const char *path, uint64_t size, uint64_t data, uint64_t seed, uint64_t extent)
{
    if (size % PAGE || !extent || extent % PAGE || size % extent) {
        fprintf(stderr, "scalegen: full: SIZE and EXTENT must be multiples of 4096, SIZE of EXTENT\n");
        return 2;
    }
    uint64_t slots = size / extent, n = data >= size ? slots : (data + extent - 1) / extent;
    uint64_t *ex = n == slots ? NULL : pick(n, slots, seed * 2 + 1);
    int fd = open_out(path, size);
    if ((n != slots && !ex) || fd < 0) {
        free(ex);
        return 1;
    }
    uint8_t *buf = malloc(extent);
    if (!buf) {
        free(ex);
        close(fd);
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t first = (ex ? ex[i] : i) * (extent / PAGE);
        for (uint64_t k = 0; k < extent / PAGE; k++)
            make_page(buf + k * PAGE, 0xba5e000000000000ull ^ seed, first + k, 512);
        if (put(fd, buf, extent, first * PAGE, path)) {
            free(ex);
            free(buf);
            close(fd);
            return 1;
        }
    }
    free(ex);
    free(buf);
    return finish(fd, path);
}

static int gen_fill(const char *path, uint64_t pages, uint64_t first, int random)
{
    enum { BATCH = 256 };
    int fd = open_out(path, pages * PAGE);
    uint8_t *buf = malloc((size_t)BATCH * PAGE);
    if (fd < 0 || !buf) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    for (uint64_t i = 0; i < pages; i += BATCH) {
        uint64_t m = pages - i < BATCH ? pages - i : BATCH;
        for (uint64_t k = 0; k < m; k++) {
            uint8_t *p = buf + k * PAGE;
            if (random) {
                fill_words(p, PAGE, (first + i + k) * 0x2545f4914f6cdd1dull + 7);
                memcpy(p, &(uint64_t){first + i + k}, 8);
            } else {
                make_page(p, 0xf111000000000000ull, first + i + k, 64);
            }
        }
        if (put(fd, buf, (size_t)m * PAGE, i * PAGE, path)) {
            free(buf);
            close(fd);
            return 1;
        }
    }
    free(buf);
    return finish(fd, path);
}

int main(int argc, char **argv)
{
    uint64_t a[4] = {0};
    if (argc >= 5 && !strcmp(argv[1], "diff") && argc == 7 && !parse_size(argv[3], &a[0])
        && !parse_size(argv[4], &a[1]) && !parse_size(argv[5], &a[2]) && !parse_size(argv[6], &a[3]))
        return gen_diff(argv[2], a[0], a[1], a[2], a[3]);
    if (argc == 7 && !strcmp(argv[1], "full") && !parse_size(argv[3], &a[0])
        && !parse_size(argv[4], &a[1]) && !parse_size(argv[5], &a[2]) && !parse_size(argv[6], &a[3]))
        return gen_full(argv[2], a[0], a[1], a[2], a[3]);
    if ((argc == 5 || (argc == 6 && !strcmp(argv[5], "random"))) && !strcmp(argv[1], "fill")
        && !parse_size(argv[3], &a[0]) && !parse_size(argv[4], &a[1]))
        return gen_fill(argv[2], a[0], a[1], argc == 6);
    fprintf(stderr, "usage: scalegen diff OUT SIZE PAGES SEED ZERO_PCT\n"
                    "       scalegen full OUT SIZE DATA SEED EXTENT\n"
                    "       scalegen fill OUT PAGES FIRST [random]\n");
    return 2;
}
