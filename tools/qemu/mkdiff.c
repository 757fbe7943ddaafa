/*
** mkdiff.c: a Firecracker-style Diff from two consecutive Full images:
** a sparse file of the same size holding only the pages that differ
** (zero pages included), every other page a hole. Prints the number of
** pages written.
**
** usage: mkdiff PREV CUR OUT
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096
#define BUF (1 << 20)

static char a[BUF], b[BUF];

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mkdiff PREV CUR OUT\n");
        return 2;
    }
    int pf = open(argv[1], O_RDONLY), cf = open(argv[2], O_RDONLY);
    int of = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct stat ps, cs;
    if (pf < 0 || cf < 0 || of < 0 || fstat(pf, &ps) || fstat(cf, &cs) || ps.st_size != cs.st_size ||
        ftruncate(of, cs.st_size)) {
        perror("mkdiff");
        return 1;
    }
    long long pages = 0;
    for (off_t off = 0; off < cs.st_size; off += BUF) {
        ssize_t n = pread(cf, b, BUF, off);
        if (n <= 0 || pread(pf, a, (size_t)n, off) != n) {
            perror("mkdiff: read");
            return 1;
        }
        for (ssize_t i = 0; i < n; i += PAGE)
            if (memcmp(a + i, b + i, PAGE) != 0) {
                if (pwrite(of, b + i, PAGE, off + i) != PAGE) {
                    perror("mkdiff: write");
                    return 1;
                }
                pages++;
            }
    }
    if (close(of) != 0) {
        perror("mkdiff: close");
        return 1;
    }
    printf("%lld\n", pages);
    return 0;
}
