/*
** fuzz_forkd.c: the forkd snapshot.json reader (forkd_parse) fed
** arbitrary bytes.
**
** Oracle: no memory error (the input is passed in an exact-size buffer
** without a terminating NUL); a rejection is FKS_EINVAL with a message;
** an accepted document yields NUL-terminated fields within their sizes,
** a parent_content_hash that is empty or 64 lower-case hex digits, and no
** hash without a parent_tag.
*/
#include <string.h>

#include "forkd.h"
#include "forkstore.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void terminated(const char *f, size_t cap, const char *what)
{
    FUZZ_ASSERT(memchr(f, 0, cap) != NULL, "%s not NUL-terminated", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct forkd_snap s;
    char *json = malloc(size ? size : 1);
    FUZZ_ASSERT(json, "out of memory");
    memcpy(json, data, size);
    int rc = forkd_parse(&s, json, size);
    if (rc != 0) {
        FUZZ_ASSERT(rc == FKS_EINVAL && fks_errmsg()[0], "forkd_parse: rc %d", rc);
        free(json);
        return 0;
    }
    terminated(s.memory, sizeof s.memory, "memory");
    terminated(s.vmstate, sizeof s.vmstate, "vmstate");
    terminated(s.rootfs, sizeof s.rootfs, "rootfs");
    terminated(s.parent_tag, sizeof s.parent_tag, "parent_tag");
    terminated(s.parent_content_hash, sizeof s.parent_content_hash, "parent_content_hash");
    size_t h = strlen(s.parent_content_hash);
    FUZZ_ASSERT(h == 0 || h == 64, "hash of %zu chars accepted", h);
    for (size_t i = 0; i < h; i++)
        FUZZ_ASSERT(strchr("0123456789abcdef", s.parent_content_hash[i]) && s.parent_content_hash[i],
                    "hash '%s' not lower-case hex", s.parent_content_hash);
    FUZZ_ASSERT(h == 0 || s.parent_tag[0], "hash without parent_tag accepted");
    free(json);
    return 0;
}
