/*
** applydiff.c: forkd's way to materialize a Diff snapshot, for the
** benchmark: copy only the data extents of a sparse Diff file
** (SEEK_DATA/SEEK_HOLE) onto a full copy of the parent's memory file.
**
** usage: applydiff DIFF TARGET   (TARGET already holds the parent's image)
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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: applydiff DIFF TARGET\n");
        return 2;
    }
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY);
    if (in < 0 || out < 0) {
        fprintf(stderr, "applydiff: open: %s\n", strerror(errno));
        return 1;
    }
    static char buf[1 << 20];
    off_t pos = 0;
    for (;;) {
        off_t d = lseek(in, pos, SEEK_DATA);
        if (d < 0)
            break;
        off_t h = lseek(in, d, SEEK_HOLE);
        for (off_t o = d; o < h;) {
            size_t n = (size_t)(h - o) < sizeof buf ? (size_t)(h - o) : sizeof buf;
            ssize_t r = pread(in, buf, n, o);
            if (r <= 0 || pwrite(out, buf, (size_t)r, o) != r) {
                fprintf(stderr, "applydiff: copy at %lld: %s\n", (long long)o, strerror(errno));
                return 1;
            }
            o += r;
        }
        pos = h;
    }
    return close(out) == 0 ? 0 : 1;
}
