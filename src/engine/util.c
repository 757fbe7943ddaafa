/*
** util.c: the last-error message and small I/O helpers.
**
** The message lives in a thread-local buffer, as libgit2's last error
** does: a failing function formats it once, callers up the stack may
** prefix context with fks__errctx(), and the CLI prints it.
*/
#include "util.h"
#undef fks__err                 /* the analyzer's macro (util.h): the definition is here */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static _Thread_local char errbuf[1024];

const char *fks_errmsg(void) { return errbuf; }

const char *fks_version(void) { return FKS_VERSION_STRING; }
int fks_version_number(void) { return FKS_VERSION_NUMBER; }

const char *fks_strerror(int code)
{
    switch (code) {
    case FKS_OK: return "ok";
    case FKS_ENOTFOUND: return "not found";
    case FKS_EEXIST: return "already exists";
    case FKS_EINVAL: return "invalid argument";
    case FKS_ELOCKED: return "store locked";
    case FKS_ECORRUPT: return "corrupt data";
    case FKS_EIO: return "I/O error";
    case FKS_ENOSPC: return "no space left on device";
    case FKS_ENEWER: return "catalog is newer than this forkstore";
    case FKS_ETIMEDOUT: return "timed out";
    case FKS_EFIRECRACKER: return "VMM error";
    case FKS_ENOMEM: return "out of memory";
    case FKS_EPERM: return "permission problem";
    case FKS_EREFUSED: return "refused";
    case FKS_ELIMIT: return "limit reached";
    default: return "error";
    }
}

/* Formatted into a copy first: a caller may pass fks_errmsg() itself as
** an argument ("...; and then: %s"), and vsnprintf's source and
** destination must not overlap. */
int fks__err(int code, const char *fmt, ...)
{
    char msg[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(errbuf, msg, strlen(msg) + 1);
    return code;
}

int fks__errno(int code, int errnum, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (errnum == ENOSPC || errnum == EDQUOT)
        code = FKS_ENOSPC;
    else if (errnum == ENOENT && code == FKS_EIO)
        code = FKS_ENOTFOUND;
    else if (errnum == ENOMEM)
        code = FKS_ENOMEM;
    snprintf(errbuf, sizeof errbuf, "%s: %s", msg, strerror(errnum));
    return code;
}

int fks__errctx(int code, const char *fmt, ...)
{
    char ctx[512], old[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    size_t n = strlen(ctx);
    if (n > sizeof errbuf - 3)
        n = sizeof errbuf - 3;
    memcpy(errbuf, ctx, n);
    memcpy(errbuf + n, ": ", 2);
    size_t m = strlen(old);
    if (m > sizeof errbuf - n - 3)
        m = sizeof errbuf - n - 3;
    memcpy(errbuf + n + 2, old, m);
    errbuf[n + 2 + m] = 0;
    return code;
}

int fks__pread_full(int fd, void *buf, size_t len, off_t off, const char *what)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fks__errno(FKS_EIO, errno, "read %s at offset %lld", what, (long long)off);
        }
        if (n == 0)
            return fks__err(FKS_EIO, "read %s at offset %lld: unexpected end of file "
                            "(file truncated or changed while being read?)", what, (long long)off);
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int fks__pwrite_full(int fd, const void *buf, size_t len, off_t off, const char *what)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fks__errno(FKS_EIO, errno, "write %s at offset %lld", what, (long long)off);
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int fks__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fks__errno(FKS_EIO, errno, "open directory %s", dir);
    int rc = 0;
    if (fsync(fd) != 0)
        rc = fks__errno(FKS_EIO, errno, "fsync directory %s", dir);
    close(fd);
    return rc;
}

int fks__is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    /* Check the first 16 bytes by hand; then the buffer equals itself
    ** shifted by 16, which memcmp does at full speed. */
    size_t head = n < 16 ? n : 16;
    for (size_t i = 0; i < head; i++)
        if (b[i])
            return 0;
    return n <= 16 || memcmp(b, b + 16, n - 16) == 0;
}

int fks__mkdir_p(const char *path, mode_t mode)
{
    char p[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p)
        return fks__err(FKS_EINVAL, "bad directory path '%.64s'", path);
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0)
            continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            return fks__errno(FKS_EIO, errno, "create directory %s", p);
        p[i] = c;
    }
    return 0;
}

double fks__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t fks__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ progress */

void fks__progress_init(fks__progress *p, fks_progress_fn fn, void *arg, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->fn = fn;
    p->arg = arg;
    p->total = total;
    p->last = fks__now();
    pthread_mutex_init(&p->mu, NULL);
}

/* With p->mu held: the call add() and set() may make. Below total until
** the end; nothing if nothing moved or the last call was under
** FKS__PROGRESS_S ago. */
static void progress_tick(fks__progress *p)
{
    if (!p->fn || p->ended || p->total == 0)
        return;
    uint64_t d = p->done < p->total ? p->done : p->total - 1;
    if (d <= p->shown)
        return;
    double now = fks__now();
    if (now - p->last < FKS__PROGRESS_S)
        return;
    p->last = now;
    p->shown = d;
    p->fn(p->arg, d, p->total);
}

void fks__progress_total(fks__progress *p, uint64_t bytes)
{
    pthread_mutex_lock(&p->mu);
    p->total += bytes;
    pthread_mutex_unlock(&p->mu);
}

void fks__progress_add(fks__progress *p, uint64_t bytes)
{
    pthread_mutex_lock(&p->mu);
    p->done += bytes;
    progress_tick(p);
    pthread_mutex_unlock(&p->mu);
}

void fks__progress_set(fks__progress *p, uint64_t done)
{
    pthread_mutex_lock(&p->mu);
    p->done = done;
    progress_tick(p);
    pthread_mutex_unlock(&p->mu);
}

void fks__progress_end(fks__progress *p)
{
    pthread_mutex_lock(&p->mu);
    if (!p->ended) {
        p->ended = 1;
        uint64_t t = p->done > p->total ? p->done : p->total;
        if (t < p->shown)
            t = p->shown;
        if (p->fn)
            p->fn(p->arg, t, t);
    }
    pthread_mutex_unlock(&p->mu);
}

int fks__path(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        return fks__err(FKS_EINVAL, "path too long (limit %zu bytes)", len - 1);
    return 0;
}

void fks__hash(uint8_t out[16], const void *buf, size_t len)
{
    XXH128_hash_t h = XXH3_128bits(buf, len);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, 16);
}

void fks__hex16(char out[33], const uint8_t h[16])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[h[i] >> 4];
        out[2 * i + 1] = hx[h[i] & 15];
    }
    out[32] = 0;
}

size_t fks__esc(char *out, size_t outlen, const char *s, size_t maxin)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0, i;
    if (outlen == 0)
        return 0;
    for (i = 0; i < maxin && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[5] = {0};
        if (c == '\n' || c == '\t' || c == '\r') {
            e[0] = '\\';
            e[1] = (char)(c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        } else if (c < 0x20 || c == 0x7f) {
            e[0] = '\\', e[1] = 'x', e[2] = hx[c >> 4], e[3] = hx[c & 15];
        } else {
            e[0] = (char)c;
        }
        size_t el = strlen(e);
        if (o + el >= outlen)
            break;
        memcpy(out + o, e, el);
        o += el;
    }
    out[o] = 0;
    return i;
}

int fks__grow(void *pv, size_t *alloc, size_t n, size_t size)
{
    void **v = pv;
    if (n < *alloc)
        return 0;
    size_t na = *alloc ? *alloc * 2 : 256;
    void *nv = na <= SIZE_MAX / size ? realloc(*v, na * size) : NULL;
    if (!nv)
        return fks__err(FKS_ENOMEM, "out of memory (%zu items of %zu bytes)", na, size);
    *v = nv;
    *alloc = na;
    return 0;
}

void fks__lines_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}
