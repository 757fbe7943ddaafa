/*
** limits.c: the machine's own limits on a memory image, for `make bench`:
** memcpy bandwidth, XXH3-128 throughput, and zstd level-1 compression and
** decompression throughput and ratio of the image's non-zero pages when
** compressed in units of 1, 4, 8 and 16 pages (one frame per unit). The
** unit sizes show what the compression unit of the chunk format costs.
**
** usage: limits MEMORY_FILE [MAX_MIB]   (prints one "key value" per line)
*/
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#define PAGE 4096

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_zero(const uint8_t *p)
{
    for (int i = 0; i < PAGE; i++)
        if (p[i])
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: limits MEMORY_FILE [MAX_MIB]\n");
        return 2;
    }
    size_t max = (argc > 2 ? (size_t)atol(argv[2]) : 512) << 20;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    size_t len = (size_t)st.st_size < max ? (size_t)st.st_size : max;
    len -= len % PAGE;
    uint8_t *img = malloc(len), *nz = malloc(len), *dst = malloc(len);
    if (!img || !nz || !dst || pread(fd, img, len, 0) != (ssize_t)len) {
        fprintf(stderr, "limits: cannot read %s\n", argv[1]);
        return 1;
    }
    size_t nzlen = 0;
    for (size_t o = 0; o < len; o += PAGE)
        if (!is_zero(img + o)) {
            memcpy(nz + nzlen, img + o, PAGE);
            nzlen += PAGE;
        }
    double t = now();
    for (int r = 0; r < 3; r++)
        memcpy(dst, img, len);
    printf("memcpy_gbps %.2f\n", 3.0 * (double)len / (now() - t) / 1e9);
    t = now();
    uint64_t acc = 0;
    for (size_t o = 0; o < len; o += PAGE)
        acc += XXH3_128bits(img + o, PAGE).low64;
    printf("xxh3_gbps %.2f\n", (double)len / (now() - t) / 1e9 + (double)(acc & 0) );
    printf("nonzero_fraction %.3f\n", (double)nzlen / (double)len);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_DCtx *d = ZSTD_createDCtx();
    size_t cap = ZSTD_compressBound(16 * PAGE);
    uint8_t *cbuf = malloc((nzlen / PAGE + 1) * cap);
    size_t *clen = malloc((nzlen / PAGE + 1) * sizeof *clen);
    int units[] = {1, 4, 8, 16};
    for (int u = 0; u < 4; u++) {
        size_t ub = (size_t)units[u] * PAGE, n = 0, total = 0;
        t = now();
        for (size_t o = 0; o < nzlen; o += ub, n++) {
            size_t in = nzlen - o < ub ? nzlen - o : ub;
            clen[n] = ZSTD_compressCCtx(c, cbuf + n * cap, cap, nz + o, in, 1);
            total += clen[n];
        }
        double tc = now() - t;
        t = now();
        size_t k = 0;
        for (size_t o = 0; o < nzlen; o += ub, k++) {
            size_t in = nzlen - o < ub ? nzlen - o : ub;
            if (ZSTD_decompressDCtx(d, dst + o, in, cbuf + k * cap, clen[k]) != in)
                return fprintf(stderr, "limits: zstd round trip failed\n"), 1;
        }
        double td = now() - t;
        if (memcmp(dst, nz, nzlen) != 0)
            return fprintf(stderr, "limits: zstd round trip differs\n"), 1;
        printf("zstd1_unit%dk_compress_mbps %.0f\nzstd1_unit%dk_decompress_mbps %.0f\nzstd1_unit%dk_ratio %.3f\n",
               units[u] * 4, (double)nzlen / tc / 1e6, units[u] * 4, (double)nzlen / td / 1e6, units[u] * 4,
               (double)nzlen / (double)total);
    }
    return 0;
}
