/*
** s3.h: a small S3 client for the remote tier (private to src/remote*.c).
** See s3.c for the design: one reused libcurl handle, SigV4 signed here,
** retries with backoff and jitter, messages that name the key id and the
** bucket. Functions follow the library's convention (0 or FKS_E*).
*/
#ifndef FKS_S3_H
#define FKS_S3_H

#include <stddef.h>
#include <stdint.h>

/* Credentials, never stored in the catalog. */
typedef struct s3_creds {
    char key_id[128];
    char secret[256];
    char token[4096];      /* session token, "" if none */
    char source[4200];     /* where they came from, for messages */
} s3_creds;

/* From $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY / $AWS_SESSION_TOKEN,
** else the profile $AWS_PROFILE ("default") of $AWS_SHARED_CREDENTIALS_FILE
** (~/.aws/credentials). FKS_ENOTFOUND saying where it looked. */
int s3_creds_load(s3_creds *out);

typedef struct s3_cfg {
    const char *endpoint;      /* http[s]://host[:port], no path */
    const char *bucket;        /* path-style addressing: ENDPOINT/BUCKET/KEY */
    const char *region;        /* NULL: us-east-1 */
    const s3_creds *creds;     /* borrowed for the client's life */
    long timeout_ms;           /* whole request; 0: 300 s */
    long connect_timeout_ms;   /* 0: 10 s */
    int max_attempts;          /* per request, retries included; 0: 6 */
} s3_cfg;

typedef struct s3_stats {
    uint64_t requests;         /* HTTP requests sent, retries included */
    uint64_t retries;
    uint64_t bytes_up, bytes_down;   /* bodies */
} s3_stats;

typedef struct s3_client s3_client;

/* Caller frees with s3_close(). cfg's strings are copied. */
int s3_open(s3_client **out, const s3_cfg *cfg);
void s3_close(s3_client *c);
void s3_stats_get(s3_stats *out, const s3_client *c);

/* PUT key with body buf; its SHA-256 is signed as the payload hash:
** sha256_hex if the caller has it (64 lower-case hex digits), else NULL. */
int s3_put(s3_client *c, const char *key, const void *buf, size_t len, const char *sha256_hex);
/* GET key, or with len > 0 only bytes off .. off+len-1 (Range); a body of
** another length is an error (retried: a truncated response). *out is the
** body (caller frees with free()), *outlen its length. FKS_ENOTFOUND if
** the object does not exist. */
int s3_get(uint8_t **out, size_t *outlen, s3_client *c, const char *key, uint64_t off, uint64_t len);
/* HEAD key: *size (may be NULL). FKS_ENOTFOUND if absent. */
int s3_head(uint64_t *size, s3_client *c, const char *key);
int s3_delete(s3_client *c, const char *key);
/* ListObjectsV2 of every key starting with prefix, following continuation
** tokens; fn(arg, key, size) per key, in key order; fn's nonzero return
** stops the listing and is returned. */
typedef int (*s3_list_fn)(void *arg, const char *key, uint64_t size);
int s3_list(s3_client *c, const char *prefix, s3_list_fn fn, void *arg);
/* The same with each key's LastModified (ms since the epoch, the server's
** clock): tfn instead of fn. */
typedef int (*s3_list_tfn)(void *arg, const char *key, uint64_t size, int64_t mtime_ms);
int s3_list_t(s3_client *c, const char *prefix, s3_list_tfn tfn, s3_list_fn fn, void *arg);
/* PUT key only if it does not exist (If-None-Match: *): FKS_EEXIST if it
** does (HTTP 412). A retry after a lost answer also sees FKS_EEXIST: the
** caller reads the object back to tell its own write from another's. */
int s3_put_new(s3_client *c, const char *key, const void *buf, size_t len, const char *sha256_hex);
/* The Date of the server's last response in ms since the epoch (whole
** seconds), 0 before any. */
int64_t s3_server_ms(const s3_client *c);

/* ---- SigV4, exposed for tests/unit/test_sigv4.c ---- */

/* A header to sign: name lower case; headers sorted by name. */
struct s3_hdr {
    const char *name, *value;
};

/* Signs a request: writes the Authorization header's value into auth and,
** when creq_hash is not NULL, the hex SHA-256 of the canonical request
** (AWS's examples print it). uri is the canonical URI (already encoded),
** query the canonical query string (sorted, encoded; "" for none),
** amzdate YYYYMMDDTHHMMSSZ. FKS_EINVAL if auth is too small. */
int s3_sigv4(char *auth, size_t authlen, char creq_hash[65], const char *method, const char *uri,
             const char *query, const struct s3_hdr *h, size_t nh, const char *payload_hash,
             const char *amzdate, const char *region, const char *key_id, const char *secret);
/* Lower-case hex SHA-256 of buf. */
void s3_sha256_hex(char out[65], const void *buf, size_t len);
/* Raw SHA-256 of buf. */
void s3_sha256(uint8_t out[32], const void *buf, size_t len);
/* SigV4 URI encoding: A-Z a-z 0-9 - _ . ~ kept, '/' kept if keep_slash,
** everything else %XX (upper case). FKS_EINVAL if out is too small. */
int s3_uri_encode(char *out, size_t outlen, const char *s, int keep_slash);

#endif
