/*
** fuzz_util.c: scratch directories for the fuzz targets (see fuzz.h).
*/
#include "fuzz.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[512];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        /* a file made read-only by a test: make it removable */
        chmod(path, 0700);
        remove(path);
    }
    return 0;
}

void fuzz_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
    if (scratch[0])
        fuzz_rmtree(scratch);
}

const char *fuzz_scratch(const char *name)
{
    if (scratch[0])
        return scratch;
    const char *base = getenv("FUZZ_TMPDIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
    if (!base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(scratch, sizeof scratch, "%s/fks-fuzz-%s.XXXXXX", base, name);
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "fuzz: cannot create a scratch directory under %s: %s\n", base, strerror(errno));
        exit(1);
    }
    atexit(cleanup);
    return scratch;
}
