/* failrename.c: an LD_PRELOAD fault injector for restore's last step.
** With FKS_FAIL_RENAME=N in the environment, the Nth call to renameat2()
** in the process (counting from 1) fails with EIO (or with the errno
** named by FKS_FAIL_ERRNO=ENOSPC) without touching the filesystem; every
** other call goes to the C library. t_place.sh uses it to make a later
** rename of a multi-file restore fail after earlier ones succeeded. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned);

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags)
{
    static int calls;
    static renameat2_fn real;
    const char *n = getenv("FKS_FAIL_RENAME");
    if (n && ++calls == atoi(n)) {
        const char *e = getenv("FKS_FAIL_ERRNO");
        errno = e && strcmp(e, "ENOSPC") == 0 ? ENOSPC : EIO;
        return -1;
    }
    if (!real)
        real = (renameat2_fn)dlsym(RTLD_NEXT, "renameat2");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(olddirfd, oldpath, newdirfd, newpath, flags);
}
