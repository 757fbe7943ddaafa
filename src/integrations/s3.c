/*
** s3.c: the S3 client of the remote tier: PUT, GET (with Range), HEAD,
** DELETE and ListObjectsV2 on one bucket of an S3-compatible server
** (AWS S3, Ceph RGW, MinIO, R2), path-style (ENDPOINT/BUCKET/KEY).
**
** Design
**  0. A client is for one thread at a time (one easy handle); threads
**     that fetch in parallel open one each (remote_lazy.c pools them).
**  1. One libcurl easy handle per client, reused for every request:
**     curl_easy_reset between requests keeps its connection cache, so a
**     push of many packs costs one TCP (and TLS) handshake, not one each.
**  2. Requests are signed here (AWS Signature Version 4), not through
**     CURLOPT_AWS_SIGV4. Debian 12's libcurl 7.88 neither sorts nor fully
**     encodes the query it signs (ListObjectsV2 with prefix=dir/ is refused
**     with 403) nor adds x-amz-content-sha256, and a session token header
**     must be signed too; by signing ourselves the code the known-answer
**     test (tests/unit/test_sigv4.c) checks is the code every request runs,
**     whatever libcurl version is installed. The canonical request is:
**       METHOD \n URI \n QUERY \n (name:value \n)* \n SIGNED;NAMES \n PAYLOADHASH
**     with headers host, range (if any), x-amz-content-sha256, x-amz-date,
**     x-amz-security-token (if any), in that (sorted) order. A PUT signs
**     its body's SHA-256; GET/HEAD/DELETE/LIST the empty body's.
**  3. Retries: a connection failure or reset, a timeout, a truncated body,
**     HTTP 500/502/503/504 and the S3 codes SlowDown, InternalError and
**     RequestTimeout are retried up to max_attempts times, each after a
**     "full jitter" backoff: a uniform random wait in [0, min(5 s,
**     100 ms * 2^attempt)). Each retry is signed afresh (x-amz-date).
**     Every request is idempotent (PUTs of content-named objects), so a
**     retry after an ambiguous failure is safe.
**  4. Errors name what a user needs: 403 says which access key id and
**     which bucket, and tells SignatureDoesNotMatch (wrong secret) from
**     InvalidAccessKeyId and AccessDenied (FKS_EPERM); RequestTimeTooSkewed
**     says to fix the clock (FKS_EPERM); NoSuchBucket names the bucket and
**     the endpoint (FKS_ENOTFOUND); a missing object is FKS_ENOTFOUND.
**     Network failures are FKS_EIO with libcurl's message.
**  5. For remote gc: every response's Date is kept (s3_server_ms, whole
**     seconds), listings give each key's LastModified (s3_list_t), so gc
**     compares times on the server's clock only. s3_put_new sends
**     If-None-Match: * (create only; 412 is FKS_EEXIST, also after a retry
**     of a PUT whose answer was lost: the caller reads the object back).
**  6. TCP_QUICKACK once a response's status line is read: on a reused
**     connection radosgw (beast) writes the headers and the body in two
**     segments, Nagle holds the body until the headers are acknowledged,
**     and Linux delays that ACK up to 40 ms (the connection is in
**     "interactive" mode after our request); a Range GET took 45 ms
**     instead of 3 on loopback. Setting TCP_QUICKACK sends the pending
**     ACK at once (it is not sticky: hence per response).
*/
#include <ctype.h>
#include "curlx.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3.h"
#include "util.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_client {
    CURL *curl;
    char endpoint[512];
    char host[512];            /* the Host header: endpoint without scheme */
    char bucket[64];
    char region[64];
    const s3_creds *creds;
    long timeout_ms, connect_timeout_ms;
    int max_attempts;
    unsigned rnd;              /* jitter */
    s3_stats st;
    int64_t server_ms;         /* Date of the last response, 0 if none */
    int sock;                  /* the connection's socket, -1 if none (design 6) */
};

/* Design 6: the connection's socket, known from its creation to its close
** (CURLINFO_ACTIVESOCKET answers only between transfers). */
static int on_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)purpose;
    ((s3_client *)arg)->sock = (int)fd;
    return CURL_SOCKOPT_OK;
}

static int on_closesocket(void *arg, curl_socket_t fd)
{
    s3_client *c = arg;
    if (c->sock == (int)fd)
        c->sock = -1;
    return close(fd);
}

/* ---- hashing and signing ---- */

void s3_sha256(uint8_t out[32], const void *buf, size_t len)
{
    unsigned n = 32;
    EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL);
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = 0;
}

void s3_sha256_hex(char out[65], const void *buf, size_t len)
{
    uint8_t h[32];
    s3_sha256(h, buf, len);
    hex(out, h, 32);
}

static void hmac(uint8_t out[32], const void *key, size_t klen, const char *msg)
{
    unsigned n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

int s3_uri_encode(char *out, size_t outlen, const char *s, int keep_slash)
{
    static const char d[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
            if (o + 1 >= outlen)
                return fks__err(FKS_EINVAL, "S3: name too long to encode");
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= outlen)
                return fks__err(FKS_EINVAL, "S3: name too long to encode");
            out[o++] = '%';
            out[o++] = d[*p >> 4];
            out[o++] = d[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

/* Appends to a fixed buffer; returns -1 once it does not fit. */
struct sbuf {
    char *b;
    size_t len, cap;
    int over;
};

FKS_PRINTF(2, 3)
static void sb_add(struct sbuf *s, const char *fmt, ...)
{
    if (s->over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->b + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= s->cap - s->len)
        s->over = 1;
    else
        s->len += (size_t)n;
}

int s3_sigv4(char *auth, size_t authlen, char creq_hash[65], const char *method, const char *uri,
             const char *query, const struct s3_hdr *h, size_t nh, const char *payload_hash,
             const char *amzdate, const char *region, const char *key_id, const char *secret)
{
    char creq[16384], names[1024], sts[1024], ch[65], scope[128], date[9];
    struct sbuf c = {creq, 0, sizeof creq, 0}, n = {names, 0, sizeof names, 0};
    sb_add(&c, "%s\n%s\n%s\n", method, uri, query);
    for (size_t i = 0; i < nh; i++) {
        sb_add(&c, "%s:%s\n", h[i].name, h[i].value);
        sb_add(&n, "%s%s", i ? ";" : "", h[i].name);
    }
    sb_add(&c, "\n%s\n%s", names, payload_hash);
    if (c.over || n.over || strlen(amzdate) < 8)
        return fks__err(FKS_EINVAL, "S3: request too large to sign");
    s3_sha256_hex(ch, creq, c.len);
    if (creq_hash)
        memcpy(creq_hash, ch, 65);
    memcpy(date, amzdate, 8);
    date[8] = 0;
    snprintf(scope, sizeof scope, "%s/%s/s3/aws4_request", date, region);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amzdate, scope, ch);
    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), "s3"), "aws4_request") */
    char k0[300];
    uint8_t k[32], sig[32];
    int kl = snprintf(k0, sizeof k0, "AWS4%s", secret);
    if (kl < 0 || (size_t)kl >= sizeof k0)
        return fks__err(FKS_EINVAL, "S3: secret key too long");
    hmac(k, k0, (size_t)kl, date);
    hmac(k, k, 32, region);
    hmac(k, k, 32, "s3");
    hmac(k, k, 32, "aws4_request");
    hmac(sig, k, 32, sts);
    char sighex[65];
    hex(sighex, sig, 32);
    int w = snprintf(auth, authlen, "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s", key_id,
                     scope, names, sighex);
    if (w < 0 || (size_t)w >= authlen)
        return fks__err(FKS_EINVAL, "S3: authorization header too long");
    return 0;
}

/* ---- credentials ---- */

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    size_t i = 0;
    while (s[i] && isspace((unsigned char)s[i]))
        i++;
    memmove(s, s + i, n - i + 1);
}

static int copy_to(char *dst, size_t cap, const char *src, const char *what)
{
    if (strlen(src) >= cap)
        return fks__err(FKS_EINVAL, "S3 credentials: %s is too long", what);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int s3_creds_load(s3_creds *out)
{
    memset(out, 0, sizeof *out);
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (ak && *ak && sk && *sk) {
        const char *tok = getenv("AWS_SESSION_TOKEN");
        int rc = copy_to(out->key_id, sizeof out->key_id, ak, "AWS_ACCESS_KEY_ID");
        if (!rc)
            rc = copy_to(out->secret, sizeof out->secret, sk, "AWS_SECRET_ACCESS_KEY");
        if (!rc && tok)
            rc = copy_to(out->token, sizeof out->token, tok, "AWS_SESSION_TOKEN");
        snprintf(out->source, sizeof out->source, "the environment (AWS_ACCESS_KEY_ID)");
        return rc;
    }
    char path[4096];
    const char *f = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
    const char *profile = getenv("AWS_PROFILE");
    if (!profile || !*profile)
        profile = "default";
    if (f && *f)
        snprintf(path, sizeof path, "%s", f);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.aws/credentials", home);
    else
        return fks__err(FKS_ENOTFOUND, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    FILE *fp = fopen(path, "r");
    if (!fp)
        return fks__err(FKS_ENOTFOUND, "no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set "
                        "and %s cannot be read (%s)", path, strerror(errno));
    char line[8192];
    int in = 0, rc = 0;
    while (fgets(line, sizeof line, fp) && rc == 0) {
        trim(line);
        if (line[0] == '#' || line[0] == ';' || !line[0])
            continue;
        if (line[0] == '[') {
            char *e = strchr(line, ']');
            if (e)
                *e = 0;
            char *name = line + 1;
            trim(name);
            in = strcmp(name, profile) == 0;
            continue;
        }
        char *eq = strchr(line, '=');
        if (!in || !eq)
            continue;
        *eq = 0;
        char *k = line, *v = eq + 1;
        trim(k);
        trim(v);
        if (strcmp(k, "aws_access_key_id") == 0)
            rc = copy_to(out->key_id, sizeof out->key_id, v, "aws_access_key_id");
        else if (strcmp(k, "aws_secret_access_key") == 0)
            rc = copy_to(out->secret, sizeof out->secret, v, "aws_secret_access_key");
        else if (strcmp(k, "aws_session_token") == 0)
            rc = copy_to(out->token, sizeof out->token, v, "aws_session_token");
    }
    fclose(fp);
    if (rc)
        return rc;
    if (!out->key_id[0] || !out->secret[0])
        return fks__err(FKS_ENOTFOUND, "no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set "
                        "and profile [%s] of %s has no aws_access_key_id and aws_secret_access_key",
                        profile, path);
    snprintf(out->source, sizeof out->source, "profile [%s] of %s", profile, path);
    return 0;
}

/* ---- the client ---- */

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int s3_open(s3_client **out, const s3_cfg *cfg)
{
    *out = NULL;
    const char *ep = cfg->endpoint;
    const char *host = strstr(ep, "://");
    if (!host || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) || !host[3])
        return fks__err(FKS_EINVAL, "S3 endpoint %s: give http://HOST[:PORT] or https://HOST[:PORT]", ep);
    host += 3;
    size_t bl = strlen(cfg->bucket);
    if (bl < 3 || bl > 63)
        return fks__err(FKS_EINVAL, "S3 bucket name '%s': 3 to 63 characters", cfg->bucket);
    for (const char *p = cfg->bucket; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return fks__err(FKS_EINVAL, "S3 bucket name '%s': only a-z, 0-9, '-' and '.'", cfg->bucket);
    s3_client *c = calloc(1, sizeof *c);
    if (!c)
        return fks__err(FKS_ENOMEM, "out of memory");
    size_t el = strlen(ep);
    while (el && ep[el - 1] == '/')
        el--;
    if (el >= sizeof c->endpoint || strlen(host) >= sizeof c->host) {
        free(c);
        return fks__err(FKS_EINVAL, "S3 endpoint %s is too long", ep);
    }
    memcpy(c->endpoint, ep, el);
    snprintf(c->host, sizeof c->host, "%.*s", (int)strcspn(host, "/"), host);
    snprintf(c->bucket, sizeof c->bucket, "%s", cfg->bucket);
    snprintf(c->region, sizeof c->region, "%s", cfg->region && *cfg->region ? cfg->region : "us-east-1");
    c->creds = cfg->creds;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 300000;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 6;
    c->rnd = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    pthread_once(&g_curl_once, curl_init_once);
    c->sock = -1;
    if (!(c->curl = curl_easy_init())) {
        free(c);
        return fks__err(FKS_ENOMEM, "S3: cannot create a libcurl handle");
    }
    *out = c;
    return 0;
}

void s3_close(s3_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

void s3_stats_get(s3_stats *out, const s3_client *c)
{
    *out = c->st;
}

struct body {
    uint8_t *b;
    size_t len, cap;
    size_t limit;              /* refuse bodies above this (a misbehaving server) */
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    struct body *b = arg;
    size_t k = sz * n;
    if (b->len + k > b->limit)
        return 0;
    if (b->len + k > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + k)
            cap *= 2;
        uint8_t *nb = realloc(b->b, cap);
        if (!nb)
            return 0;
        b->b = nb;
        b->cap = cap;
    }
    memcpy(b->b + b->len, p, k);
    b->len += k;
    return k;
}

struct upload {
    const uint8_t *p;
    size_t len, off;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *arg)
{
    struct upload *u = arg;
    size_t k = sz * n;
    if (k > u->len - u->off)
        k = u->len - u->off;
    memcpy(buf, u->p + u->off, k);
    u->off += k;
    return k;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct upload *u = arg;
    if (origin != SEEK_SET || off < 0 || (size_t)off > u->len)
        return CURL_SEEKFUNC_FAIL;
    u->off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* Keeps the Date of each response (RFC 7231, whole seconds): remote gc
** compares object times with the server's clock, not this host's. */
static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    s3_client *c = arg;
    size_t len = sz * n;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0 && c->sock >= 0) {
        int one = 1;                   /* design 6: the ACK the server's Nagle waits for, now */
        (void)setsockopt(c->sock, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    if (len > 5 && len < 200 && strncasecmp(p, "date:", 5) == 0) {
        char v[200];
        memcpy(v, p + 5, len - 5);
        v[len - 5] = 0;
        time_t t = curl_getdate(v, NULL);
        if (t > 0)
            c->server_ms = (int64_t)t * 1000;
    }
    return len;
}

/* The text of <tag>...</tag> in xml (first one at or after from), entities
** decoded, into out; 0 if found. */
static int xml_text(char *out, size_t cap, const char *xml, const char *tag, const char **after)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(xml, open);
    if (!a)
        return -1;
    a += strlen(open);
    const char *e = strstr(a, close);
    if (!e)
        return -1;
    if (after)
        *after = e + strlen(close);
    size_t o = 0;
    for (const char *p = a; p < e && o + 1 < cap;) {
        static const struct { const char *ent; char ch; } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        int done = 0;
        if (*p == '&')
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
                if (strncmp(p, ents[i].ent, strlen(ents[i].ent)) == 0) {
                    out[o++] = ents[i].ch;
                    p += strlen(ents[i].ent);
                    done = 1;
                    break;
                }
        if (!done)
            out[o++] = *p++;
    }
    out[o] = 0;
    return 0;
}

struct req {
    const char *method;        /* GET PUT HEAD DELETE */
    const char *key;           /* NULL: the bucket itself */
    const char *query;         /* canonical (sorted, encoded), "" for none */
    const uint8_t *body;       /* PUT */
    size_t blen;
    const char *body_sha;      /* its SHA-256 in hex, NULL: computed here */
    uint64_t range_off, range_len;   /* range_len 0: no Range */
    size_t limit;              /* largest response body accepted */
    int if_none_match;         /* PUT: If-None-Match: * (create only) */
    /* results */
    long status;
    struct body resp;
    curl_off_t content_length;
};

static void backoff(s3_client *c, int attempt)
{
    double cap = 100.0 * (double)(1u << (attempt < 6 ? attempt : 6));
    if (cap > 5000)
        cap = 5000;
    double ms = cap * ((double)rand_r(&c->rnd) / ((double)RAND_MAX + 1.0));
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000.0 * (double)(long)(ms / 1000)) * 1e6)};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static int retryable_curl(CURLcode e)
{
    switch (e) {
    case CURLE_COULDNT_CONNECT: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: case CURLE_OPERATION_TIMEDOUT: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* A request's signed parts (SigV4): its path and URL, date, payload
** hash, Range and Authorization. */
struct signed_req {
    char ekey[3072], uri[3200], url[4096], amzdate[17], payload[65], auth[1024], range[80];
};

static int req_sign(s3_client *c, const struct req *r, struct signed_req *q)
{
    q->ekey[0] = q->range[0] = 0;
    if (r->key && s3_uri_encode(q->ekey, sizeof q->ekey, r->key, 1))
        return FKS_EINVAL;
    snprintf(q->uri, sizeof q->uri, "/%s%s%s", c->bucket, r->key ? "/" : "", q->ekey);
    snprintf(q->url, sizeof q->url, "%s%s%s%s", c->endpoint, q->uri, r->query[0] ? "?" : "", r->query);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(q->amzdate, sizeof q->amzdate, "%Y%m%dT%H%M%SZ", &tm);
    if (r->body && r->body_sha && strlen(r->body_sha) == 64)
        memcpy(q->payload, r->body_sha, sizeof q->payload);
    else if (r->body)
        s3_sha256_hex(q->payload, r->body, r->blen);
    else
        memcpy(q->payload, EMPTY_SHA256, sizeof q->payload);
    if (r->range_len)
        snprintf(q->range, sizeof q->range, "bytes=%llu-%llu", (unsigned long long)r->range_off,
                 (unsigned long long)(r->range_off + r->range_len - 1));
    struct s3_hdr h[5];
    size_t nh = 0;
    h[nh++] = (struct s3_hdr){"host", c->host};
    if (q->range[0])
        h[nh++] = (struct s3_hdr){"range", q->range};
    h[nh++] = (struct s3_hdr){"x-amz-content-sha256", q->payload};
    h[nh++] = (struct s3_hdr){"x-amz-date", q->amzdate};
    if (c->creds->token[0])
        h[nh++] = (struct s3_hdr){"x-amz-security-token", c->creds->token};
    return s3_sigv4(q->auth, sizeof q->auth, NULL, r->method, q->uri, r->query, h, nh, q->payload, q->amzdate,
                    c->region, c->creds->key_id, c->creds->secret);
}

/* The request's HTTP headers, the signed ones first, into *out. */
static int req_headers(s3_client *c, const struct req *r, const struct signed_req *q, struct curl_slist **out)
{
    struct curl_slist *hl = NULL, *t;
    char line[4200];
    int oom = 0;
#define HDR(...) do { snprintf(line, sizeof line, __VA_ARGS__); \
        if (!(t = curl_slist_append(hl, line))) oom = 1; else hl = t; } while (0)
    HDR("Host: %s", c->host);
    if (q->range[0])
        HDR("Range: %s", q->range);
    HDR("x-amz-content-sha256: %s", q->payload);
    HDR("x-amz-date: %s", q->amzdate);
    if (c->creds->token[0])
        HDR("x-amz-security-token: %s", c->creds->token);
    HDR("Authorization: %s", q->auth);
    HDR("Expect:");
    if (r->if_none_match)
        HDR("If-None-Match: *");
    if (r->body)
        HDR("Content-Type:");
#undef HDR
    if (oom) {
        curl_slist_free_all(hl);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    *out = hl;
    return 0;
}

/* The client's handle set up for r: URL, headers hl, callbacks,
** timeouts, the method; the response body emptied. */
static void req_setopts(s3_client *c, struct req *r, const char *url, struct curl_slist *hl, struct upload *up,
                        char *errbuf)
{
    CURL *e = c->curl;
    curl_easy_reset(e);   /* keeps the connection cache (design 1) */
    free(r->resp.b);
    r->resp = (struct body){NULL, 0, 0, r->limit};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->resp);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, c);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, up);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, up);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->blen);
    } else if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "DELETE") == 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
}

/* A response that is not 2xx, as an error: its error document's Code
** and Message; *retry set for server errors and throttling. */
static int req_refused(s3_client *c, struct req *r, const char *what, int *retry)
{
    /* The error document: <Error><Code>..</Code><Message>..</Message></Error>. */
    char code[128] = "", msg[512] = "";
    if (r->resp.len && on_data("", 1, 1, &r->resp) == 1) {   /* NUL-terminate */
        r->resp.len--;
        xml_text(code, sizeof code, (const char *)r->resp.b, "Code", NULL);
        xml_text(msg, sizeof msg, (const char *)r->resp.b, "Message", NULL);
    }
    if (r->status >= 500 || strcmp(code, "SlowDown") == 0 || strcmp(code, "InternalError") == 0 ||
        strcmp(code, "RequestTimeout") == 0) {
        *retry = 1;
        return fks__err(FKS_EIO, "S3 %s %s/%s at %s: HTTP %ld %s%s%s", r->method, c->bucket, what, c->endpoint,
                        r->status, code, msg[0] ? ": " : "", msg);
    }
    if (strcmp(code, "RequestTimeTooSkewed") == 0)
        return fks__err(FKS_EPERM, "S3 %s at %s refused the request: this host's clock differs from the "
                        "server's by more than 15 minutes (RequestTimeTooSkewed); set the clock (NTP)",
                        c->bucket, c->endpoint);
    if (strcmp(code, "NoSuchBucket") == 0)
        return fks__err(FKS_ENOTFOUND, "S3 bucket %s does not exist at %s (NoSuchBucket)", c->bucket,
                        c->endpoint);
    if (r->status == 403) {
        const char *why = strcmp(code, "SignatureDoesNotMatch") == 0
                              ? "the secret key does not match the access key id"
                          : strcmp(code, "InvalidAccessKeyId") == 0 ? "the server does not know the access key id"
                                                                    : "access denied";
        return fks__err(FKS_EPERM, "S3 %s %s/%s at %s: %s %s (HTTP 403%s%s; credentials from %s)", r->method,
                        c->bucket, what, c->endpoint, why, c->creds->key_id, code[0] ? " " : "", code,
                        c->creds->source);
    }
    if (r->status == 412 && r->if_none_match)
        return fks__err(FKS_EEXIST, "S3 PUT %s/%s: the object exists already (If-None-Match)", c->bucket, what);
    if (r->status == 404)
        return fks__err(FKS_ENOTFOUND, "S3 object %s not found in bucket %s at %s", what, c->bucket, c->endpoint);
    if (r->status == 416)
        return fks__err(FKS_EINVAL, "S3 GET %s/%s: bytes %llu+%llu are outside the object (HTTP 416)", c->bucket,
                        what, (unsigned long long)r->range_off, (unsigned long long)r->range_len);
    return fks__err(FKS_EIO, "S3 %s %s/%s at %s: HTTP %ld %s%s%s", r->method, c->bucket, what, c->endpoint,
                    r->status, code, msg[0] ? ": " : "", msg);
}

/* One attempt; *retry set when the failure is worth another. */
static int attempt(s3_client *c, struct req *r, int *retry)
{
    *retry = 0;
    struct signed_req q;
    struct curl_slist *hl = NULL;
    int rc = req_sign(c, r, &q);
    if (rc || (rc = req_headers(c, r, &q, &hl)) != 0)
        return rc;
    struct upload up = {r->body, r->blen, 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    req_setopts(c, r, q.url, hl, &up, errbuf);
    c->st.requests++;
    CURLcode cc = curl_easy_perform(c->curl);
    curl_slist_free_all(hl);
    c->st.bytes_up += up.off;
    c->st.bytes_down += r->resp.len;
    const char *what = r->key ? r->key : "(bucket)";
    if (cc != CURLE_OK) {
        *retry = retryable_curl(cc);
        if (cc == CURLE_WRITE_ERROR && r->resp.len + CURL_MAX_WRITE_SIZE > r->limit)
            return fks__err(FKS_ECORRUPT, "S3 %s %s/%s: response larger than %zu bytes", r->method, c->bucket,
                            what, r->limit);
        return fks__err(FKS_EIO, "S3 %s %s/%s at %s: %s", r->method, c->bucket, what, c->endpoint,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->content_length);
    if (r->status < 200 || r->status >= 300)
        return req_refused(c, r, what, retry);
    if (r->range_len && r->resp.len != r->range_len) {
        *retry = 1;
        return fks__err(FKS_EIO, "S3 GET %s/%s bytes %llu+%llu: %zu bytes came (truncated response)", c->bucket,
                        what, (unsigned long long)r->range_off, (unsigned long long)r->range_len, r->resp.len);
    }
    return 0;
}

static int request(s3_client *c, struct req *r)
{
    int rc = 0, retry = 0;
    for (int a = 0; a < c->max_attempts; a++) {
        if (a) {
            c->st.retries++;
            backoff(c, a);
        }
        if ((rc = attempt(c, r, &retry)) == 0 || !retry)
            break;
    }
    if (rc && retry && c->max_attempts > 1)
        fks__errctx(rc, "after %d attempts", c->max_attempts);
    return rc;
}

int s3_put(s3_client *c, const char *key, const void *buf, size_t len, const char *sha256_hex)
{
    static const uint8_t none = 0;
    struct req r = {.method = "PUT", .key = key, .query = "", .body = len ? buf : &none, .blen = len,
                    .body_sha = sha256_hex, .limit = 1 << 20};
    int rc = request(c, &r);
    free(r.resp.b);
    return rc;
}

int s3_put_new(s3_client *c, const char *key, const void *buf, size_t len, const char *sha256_hex)
{
    static const uint8_t none = 0;
    struct req r = {.method = "PUT", .key = key, .query = "", .body = len ? buf : &none, .blen = len,
                    .body_sha = sha256_hex, .limit = 1 << 20, .if_none_match = 1};
    int rc = request(c, &r);
    free(r.resp.b);
    return rc;
}

int64_t s3_server_ms(const s3_client *c)
{
    return c->server_ms;
}

/* "2026-12-02T03:13:42.071Z" into ms since the epoch; -1 if malformed. */
static int64_t iso_ms(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    char frac[16] = "";
    /* fixed-width digit fields: a short or bad date fails the count, and
    ** timegm normalizes nothing here that matters for a lag margin */
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, /* NOLINT(cert-err34-c) */ &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec) != 6)
        return -1;
    const char *dot = strchr(s, '.');
    if (dot && sscanf(dot + 1, "%15[0-9]", frac) == 1) {
        for (int i = 0; i < 3; i++)
            ms = ms * 10 + (frac[i] >= '0' && frac[i] <= '9' ? frac[i] - '0' : 0);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000 + ms;
}

int s3_get(uint8_t **out, size_t *outlen, s3_client *c, const char *key, uint64_t off, uint64_t len)
{
    *out = NULL;
    *outlen = 0;
    struct req r = {.method = "GET", .key = key, .query = "", .range_off = off, .range_len = len,
                    .limit = len ? (size_t)len + 1 : (size_t)1 << 34};
    int rc = request(c, &r);
    if (rc) {
        free(r.resp.b);
        return rc;
    }
    if (!r.resp.b && !(r.resp.b = malloc(1)))
        return fks__err(FKS_ENOMEM, "out of memory");
    *out = r.resp.b;
    *outlen = r.resp.len;
    return 0;
}

int s3_head(uint64_t *size, s3_client *c, const char *key)
{
    struct req r = {.method = "HEAD", .key = key, .query = "", .limit = 1 << 20};
    int rc = request(c, &r);
    free(r.resp.b);
    if (rc == 0 && size)
        *size = r.content_length > 0 ? (uint64_t)r.content_length : 0;
    return rc;
}

int s3_delete(s3_client *c, const char *key)
{
    struct req r = {.method = "DELETE", .key = key, .query = "", .limit = 1 << 20};
    int rc = request(c, &r);
    free(r.resp.b);
    return rc;
}

int s3_list(s3_client *c, const char *prefix, s3_list_fn fn, void *arg)
{
    return s3_list_t(c, prefix, NULL, fn, arg);
}

int s3_list_t(s3_client *c, const char *prefix, s3_list_tfn tfn, s3_list_fn fn, void *arg)
{
    char token[2048] = "", etok[6200], epre[3200];
    int rc = s3_uri_encode(epre, sizeof epre, prefix, 0);
    for (int page = 0; rc == 0; page++) {
        char query[9600];
        /* Sorted by name, values encoded ('/' too): what SigV4 signs. */
        if (token[0]) {
            if ((rc = s3_uri_encode(etok, sizeof etok, token, 0)))
                break;
            snprintf(query, sizeof query, "continuation-token=%s&list-type=2&prefix=%s", etok, epre);
        } else {
            snprintf(query, sizeof query, "list-type=2&prefix=%s", epre);
        }
        struct req r = {.method = "GET", .key = NULL, .query = query, .limit = 64 << 20};
        if ((rc = request(c, &r)) == 0 && on_data("", 1, 1, &r.resp) != 1)
            rc = fks__err(FKS_ENOMEM, "out of memory");
        if (rc) {
            free(r.resp.b);
            break;
        }
        const char *x = r.resp.b ? (const char *)r.resp.b : "", *p = x;
        char item[4096], key[2048], size[32], lm[64] = "", trunc[16] = "";
        const char *next;
        while (rc == 0 && xml_text(item, sizeof item, p, "Contents", &next) == 0) {
            p = next;
            if (xml_text(key, sizeof key, item, "Key", NULL) || xml_text(size, sizeof size, item, "Size", NULL)) {
                rc = fks__err(FKS_EIO, "S3 list %s/%s: a <Contents> without Key or Size", c->bucket, prefix);
                break;
            }
            int64_t t = -1;
            if (tfn && (xml_text(lm, sizeof lm, item, "LastModified", NULL) || (t = iso_ms(lm)) < 0)) {
                rc = fks__err(FKS_EIO, "S3 list %s/%s: %s has no readable LastModified", c->bucket, prefix, key);
                break;
            }
            rc = tfn ? tfn(arg, key, strtoull(size, NULL, 10), t) : fn(arg, key, strtoull(size, NULL, 10));
        }
        xml_text(trunc, sizeof trunc, x, "IsTruncated", NULL);
        int more = strcmp(trunc, "true") == 0;
        if (rc == 0 && more && xml_text(token, sizeof token, x, "NextContinuationToken", NULL))
            rc = fks__err(FKS_EIO, "S3 list %s/%s: truncated listing without a continuation token", c->bucket,
                          prefix);
        free(r.resp.b);
        if (!more)
            break;
    }
    return rc;
}
