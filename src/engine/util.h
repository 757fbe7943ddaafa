/*
** util.h: private helpers shared by the library's modules: the last-error
** message, full reads and writes, syncing, and small validators.
**
** Every fks__ function that can fail follows the public convention:
** 0 or a negative FKS_E* code, with the message set by fks__err().
*/
#ifndef FKS_UTIL_H
#define FKS_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "forkstore.h"

#if defined(__GNUC__)
#define FKS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FKS_PRINTF(a, b)
#endif

/* Sets this thread's last-error message and returns code. */
int fks__err(int code, const char *fmt, ...) FKS_PRINTF(2, 3);
/* Same, appending ": strerror(errnum)"; maps ENOSPC/EDQUOT to FKS_ENOSPC,
** ENOENT to FKS_ENOTFOUND when code is FKS_EIO. */
int fks__errno(int code, int errnum, const char *fmt, ...) FKS_PRINTF(3, 4);
/* Prefixes the current message with context ("ingest s1: ..."). */
int fks__errctx(int code, const char *fmt, ...) FKS_PRINTF(2, 3);
#ifdef __clang_analyzer__
/* The static analyzer cannot see that these return their code, which is
** never 0 where they are called: say so, or it follows "error paths" on
** which a failed call returned success (make analyze). */
#define fks__err(code, ...) ((void)fks__err(code, __VA_ARGS__), (code))
#endif

/* pread/pwrite the whole buffer, retrying on EINTR and short transfers.
** fks__pread_full returns FKS_ECORRUPT-free errors only: a short file
** gives FKS_EIO with "unexpected end of file". what names the file. */
int fks__pread_full(int fd, void *buf, size_t len, off_t off, const char *what);
int fks__pwrite_full(int fd, const void *buf, size_t len, off_t off, const char *what);
/* fsync of a directory by path. */
int fks__fsync_dir(const char *dir);

/* mkdir -p: creates path and its missing parents with mode. */
int fks__mkdir_p(const char *path, mode_t mode);

/* 1 if the n bytes at p are all zero. */
int fks__is_zero(const void *p, size_t n);

/* Copies at most maxin bytes of s into out (NUL-terminated, cut to fit)
** with control characters escaped (\n, \t, \r, \xNN): user or catalog
** text in a message never reaches a terminal raw. Returns the bytes of s
** consumed. */
size_t fks__esc(char *out, size_t outlen, const char *s, size_t maxin);

/* Monotonic time in seconds; wall clock in unix milliseconds. */
double fks__now(void);
int64_t fks__wall_ms(void);

/* snprintf into buf that must fit: FKS_EINVAL "path too long" otherwise. */
int fks__path(char *buf, size_t len, const char *fmt, ...) FKS_PRINTF(3, 4);

/* 16-byte XXH3-128 digest of buf (canonical, big-endian byte order). */
void fks__hash(uint8_t out[16], const void *buf, size_t len);
/* Lower-case hex of 16 bytes into out[33]. */
void fks__hex16(char out[33], const uint8_t h[16]);

/* Growable arrays: when n == *alloc, doubles the array *pv (elements of
** size bytes; from 256) and *alloc. FKS_ENOMEM (named) if it cannot. */
int fks__grow(void *pv, size_t *alloc, size_t n, size_t size);

/* Frees n strings of v, then v (a report's list of lines). */
void fks__lines_free(char **v, size_t n);

/* The one progress reporter behind every fks_progress_fn (the contract
** in forkstore.h): calls fn at most every FKS__PROGRESS_S seconds with
** done <= total, never a done below one already shown, and done < total
** until fks__progress_end(), which makes the one call with done == total.
** Thread-safe (a mutex around the counters and the call), so fn is
** never called twice at once. fn may be NULL: then it only counts.
** Holds nothing to free. Usage: init(fn, arg, estimate), then add()
** (bytes just done) or set() (bytes done in all), total() when the
** estimate grows, and end() when the operation succeeded; a failed one
** just stops (no final call). */
#define FKS__PROGRESS_S 0.1
typedef struct fks__progress {
    fks_progress_fn fn;
    void *arg;
    pthread_mutex_t mu;
    uint64_t done, total;        /* as counted */
    uint64_t shown;              /* the last done passed to fn */
    double last;                 /* fks__now() of the last call (or of init) */
    int ended;
} fks__progress;
void fks__progress_init(fks__progress *p, fks_progress_fn fn, void *arg, uint64_t total);
/* The estimate grows by bytes (pull learns what to fetch as it goes). */
void fks__progress_total(fks__progress *p, uint64_t bytes);
void fks__progress_add(fks__progress *p, uint64_t bytes);
/* done in all; a value below the last one (an ingest starting over) is
** counted but not shown until it passes what was shown. */
void fks__progress_set(fks__progress *p, uint64_t done);
/* The final call, once: done == total == the larger of the estimate and
** the count. Later add/set/end calls do nothing. */
void fks__progress_end(fks__progress *p);

/* Little-endian load/store. */
static inline void fks__put32(uint8_t *p, uint32_t v)
{ p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static inline uint32_t fks__get32(const uint8_t *p)
{ return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void fks__put64(uint8_t *p, uint64_t v)
{ fks__put32(p, (uint32_t)v); fks__put32(p + 4, (uint32_t)(v >> 32)); }
static inline uint64_t fks__get64(const uint8_t *p)
{ return (uint64_t)fks__get32(p) | (uint64_t)fks__get32(p + 4) << 32; }

#endif /* FKS_UTIL_H */
