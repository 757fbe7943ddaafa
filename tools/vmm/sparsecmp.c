/*
** sparsecmp.c: compares two files byte for byte, reading only the union of
** their data extents (SEEK_DATA/SEEK_HOLE; a hole reads as zeros), so the
** tests can compare the multi-GiB sparse memory images of big guests in
** well under a second.
**
** usage: sparsecmp [--data-of-a] A B
**   exit 0 same, 1 different (first offset named), 2 error.
**   --data-of-a: compare only where A has data (e.g. a Diff against the
**   RAM image it was taken from); sizes must still match.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static off_t next(int fd, off_t pos, int whence, off_t size)
{
    off_t r = lseek(fd, pos, whence);
    return r < 0 ? size : r;   /* ENXIO: no more data */
}

int main(int argc, char **argv)
{
    int only_a = argc == 4 && !strcmp(argv[1], "--data-of-a");
    if (argc != 3 && !only_a) {
        fprintf(stderr, "usage: sparsecmp [--data-of-a] A B\n");
        return 2;
    }
    argv += only_a;
    int a = open(argv[1], O_RDONLY | O_CLOEXEC), b = open(argv[2], O_RDONLY | O_CLOEXEC);
    struct stat sa, sb;
    if (a < 0 || b < 0 || fstat(a, &sa) != 0 || fstat(b, &sb) != 0) {
        fprintf(stderr, "sparsecmp: %s\n", strerror(errno));
        return 2;
    }
    if (sa.st_size != sb.st_size) {
        printf("sparsecmp: %s is %lld bytes, %s %lld\n", argv[1], (long long)sa.st_size, argv[2],
               (long long)sb.st_size);
        return 1;
    }
    off_t size = sa.st_size, pos = 0;
    static char ba[1 << 20], bb[1 << 20];
    while (pos < size) {
        off_t da = next(a, pos, SEEK_DATA, size), db = only_a ? size : next(b, pos, SEEK_DATA, size);
        off_t d = da < db ? da : db;
        if (d >= size)
            break;
        off_t ha = next(a, d, SEEK_HOLE, size), hb = only_a ? ha : next(b, d, SEEK_HOLE, size);
        off_t e = ha > hb ? ha : hb;
        for (off_t o = d; o < e;) {
            size_t n = e - o < (off_t)sizeof ba ? (size_t)(e - o) : sizeof ba;
            if (pread(a, ba, n, o) != (ssize_t)n || pread(b, bb, n, o) != (ssize_t)n) {
                fprintf(stderr, "sparsecmp: read at %lld: %s\n", (long long)o, strerror(errno));
                return 2;
            }
            if (memcmp(ba, bb, n) != 0) {
                size_t i = 0;
                while (ba[i] == bb[i])
                    i++;
                printf("sparsecmp: %s and %s differ at byte %lld\n", argv[1], argv[2], (long long)(o + (off_t)i));
                return 1;
            }
            o += (off_t)n;
        }
        pos = e;
    }
    return 0;
}
