/*
** fuzz_ident.c: tag and artifact-name validation (fks_check_tag,
** fks_check_name) against a reference written here from the rule in
** forkstore.h and the README.
**
** Input: a flags byte, then the string (C strings end at the first NUL:
** the API cannot carry one, and everything after it is ignored, as the
** library ignores it). Flag bit 0 repeats the string up to a length
** chosen by the next byte, to reach the length limits.
**
** Oracle: same verdict as the reference; a rejection has a message that
** names the rule; an accepted name is a safe single path component (no
** '/', not "." or "..", not hidden) and, for artifact names, is not
** "memory.bin", which restore gives the memory artifact.
*/
#include <string.h>

#include "forkstore.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int ref_ok(const char *s, size_t maxlen, int is_name)
{
    size_t n = strlen(s);
    if (n < 1 || n > maxlen || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", s[i]))
            return 0;
    if (is_name && strcmp(s, "memory.bin") == 0)
        return 0;
    return 1;
}

static void one(const char *s, size_t maxlen, int is_name)
{
    int rc = is_name ? fks_check_name(s) : fks_check_tag(s);
    int want = ref_ok(s, maxlen, is_name);
    FUZZ_ASSERT((rc == 0) == want, "%s '%.300s' (%zu chars): library rc %d, reference says %s",
                is_name ? "name" : "tag", s, strlen(s), rc, want ? "valid" : "invalid");
    if (rc) {
        FUZZ_ASSERT(rc == FKS_EINVAL, "rc %d", rc);
        const char *m = fks_errmsg();
        FUZZ_ASSERT(strstr(m, is_name ? "artifact name" : "tag") != NULL, "message '%s'", m);
    } else {
        FUZZ_ASSERT(!strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && s[0] != '.',
                    "'%s' accepted but not a safe path component", s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    size_t len = size - 2;
    size_t want = (flags & 1) ? (size_t)data[1] * 2 : len;
    char *s = malloc(want + 1);
    FUZZ_ASSERT(s, "out of memory");
    for (size_t i = 0; i < want; i++)
        s[i] = len ? (char)data[2 + i % len] : 'a';
    s[want] = 0;
    one(s, 128, 0);
    one(s, 64, 1);
    free(s);
    return 0;
}
