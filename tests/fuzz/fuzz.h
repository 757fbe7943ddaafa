/*
** fuzz.h: shared by the fuzz targets in tests/fuzz.
**
** Each fuzz_<name>.c defines LLVMFuzzerInitialize and
** LLVMFuzzerTestOneInput. Linked with -fsanitize=fuzzer it is a libFuzzer
** target (`make fuzz`); linked with replay_main.c it is a plain program
** that replays tests/fuzz/corpus/<name>/ (`make fuzz-replay`).
**
** A target checks its oracle with FUZZ_ASSERT: a violated property prints
** what went wrong and aborts, which both libFuzzer and the replay report
** as a crash.
*/
#ifndef FKS_FUZZ_H
#define FKS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                   \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s) failed: ", __FILE__, __LINE__, \
                    #cond);                                                      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* A little-endian reader over the fuzz input: past the end it yields
** zeros, so every input is a valid program for the target. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n, pos;
} fuzz_in;

static inline uint64_t fuzz_take(fuzz_in *in, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)(in->pos < in->n ? in->p[in->pos++] : 0) << (8 * i);
    return v;
}

static inline size_t fuzz_left(const fuzz_in *in)
{
    return in->n - in->pos;
}

/* A scratch directory for targets that need files: $FUZZ_TMPDIR, else
** /dev/shm (tmpfs: fsync is free, holes are page-sized), else $TMPDIR or
** /tmp. Creates a private directory under it and returns its path
** (static storage). */
const char *fuzz_scratch(const char *name);
/* rm -rf of a directory tree this target created. */
void fuzz_rmtree(const char *path);

#endif
