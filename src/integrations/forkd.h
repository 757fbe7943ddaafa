/*
** forkd.h: forkd snapshot directories (private; the parser is exposed for
** tests and the fuzzer). See forkd.c.
*/
#ifndef FKS_FORKD_H
#define FKS_FORKD_H

#include <stddef.h>

#define FORKD_JSON_MAX (1 << 20)

struct forkd_snap {
    char memory[4096];               /* absolute path, as forkd wrote it */
    char vmstate[4096];
    char rootfs[4096];               /* "" if none */
    char parent_tag[129];            /* "" if a root */
    char parent_content_hash[65];    /* "" if absent; else 64 lower-case hex */
};

/* Parses snapshot.json text (len bytes, not necessarily NUL-terminated).
** FKS_EINVAL with a message naming the field on anything malformed:
** not an object, a field of the wrong type, a path too long, a hash that
** is not 64 hex digits. Unknown fields (volumes, ...) are ignored. */
int forkd_parse(struct forkd_snap *out, const char *json, size_t len);

#endif
