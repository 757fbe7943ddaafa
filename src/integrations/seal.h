/*
** seal.h: keys and AES-256-GCM sealing for encrypted remotes (seal.c).
** Private to the library; remote.c and remote_engine.c use it.
*/
#ifndef FKS_SEAL_H
#define FKS_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_ID_LEN 8            /* key id bytes */
#define SEAL_NONCE 12
#define SEAL_TAG 16
#define SEAL_OVERHEAD (SEAL_NONCE + SEAL_TAG)

/* The sub-keys of one key file (HKDF-SHA-256 of its 32 bytes). Holds
** secrets: the owner wipes it with seal_key_wipe. */
typedef struct seal_key {
    uint8_t name[32];            /* HMAC key: keyed page names and tag names */
    uint8_t enc[32];             /* AES-256-GCM key */
    uint8_t nonce[32];           /* HMAC key: deterministic nonces */
    uint8_t id[SEAL_ID_LEN];     /* not secret: says which key sealed an object */
} seal_key;

/* RFC 5869 HKDF-SHA-256: Extract(salt, ikm) then Expand(info) to outlen
** bytes (at most 255 * 32). 0, or FKS_EINVAL for a bad length. */
int seal_hkdf(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
              const uint8_t *info, size_t infolen);

/* The sub-keys of a master key. */
void seal_key_derive(seal_key *k, const uint8_t master[32]);

/* Reads key file path (32 raw bytes, or 64 hex digits and an optional
** newline) into *k. FKS_ENOTFOUND, FKS_EPERM if group or others may read
** it, FKS_EINVAL if it is not a key. */
int seal_key_load(seal_key *k, const char *path);

/* Writes a new random key to path (64 hex digits and a newline, mode
** 0600, never over an existing file: FKS_EEXIST). */
int seal_keygen(const char *path);

/* 16 hex digits of k->id into out. */
void seal_key_id_hex(char out[2 * SEAL_ID_LEN + 1], const seal_key *k);

void seal_key_wipe(seal_key *k);

/* HMAC-SHA-256 under k->name of label (NUL included) then data,
** truncated to outlen (at most 32) bytes. */
void seal_name(uint8_t *out, size_t outlen, const seal_key *k, const char *label, const void *data, size_t n);

/* Seals pt (len bytes) with aad into out (len + SEAL_OVERHEAD bytes:
** nonce, ciphertext, tag). The nonce is HMAC-SHA-256 under k->nonce of
** (aad length, aad, pt), truncated: the same input seals to the same bytes
** (as SIV). aad: at most 128 bytes. 0, or FKS_ERR if OpenSSL fails. */
int seal_seal(uint8_t *out, const seal_key *k, const void *aad, size_t aadlen, const uint8_t *pt, size_t len);

/* Opens in (len bytes, as seal_seal wrote) with aad into out (len -
** SEAL_OVERHEAD bytes). 0, or -1 if it fails authentication (another key,
** another aad, or a changed byte) or is shorter than SEAL_OVERHEAD. Sets
** no error message: the caller says which object. */
int seal_open(uint8_t *out, const seal_key *k, const void *aad, size_t aadlen, const uint8_t *in, size_t len);

#endif
