/*
** seal.c: the keys of encrypted remotes and AES-256-GCM sealing (design
** and byte layouts of sealed objects: remote.c's top comment).
**
** Key file: 32 random bytes, raw or as 64 hex digits (forkctl remote
** keygen writes hex and a newline, mode 0600). It is read at each use and
** never copied into the catalog, which holds only its path and key id.
**
** Sub-keys, HKDF-SHA-256 (RFC 5869) of the 32 bytes, salt
** "forkstore remote key v1", 32 bytes each but the id:
**   info "forkstore names"   HMAC key of keyed page names and tag names
**   info "forkstore seal"    AES-256-GCM key
**   info "forkstore nonces"  HMAC key of the nonces
**   info "forkstore key id"  8 bytes: the key id, written in every sealed
**                            object and in the catalog, so that a wrong
**                            key file is named as such, not as damage
**
** Sealing is deterministic (as SIV, RFC 5297, in spirit): the 12-byte nonce
** is HMAC-SHA-256(nonce key, u64 len(aad) || aad || plaintext) truncated.
** The same plaintext under the same aad seals to the same bytes: a re-run
** of a push rebuilds the same packs (same names: resumable, idempotent),
** and two hosts with the same key file write the same pages (dedup). What
** that reveals, equal plaintexts, the remote's content names reveal
** anyway. A nonce repeats for the same (aad, plaintext), which seals to the
** same bytes and so gives GCM's nonce-reuse attacks nothing; two different
** inputs share a nonce only by a collision of 96 bits of HMAC (after 2^32
** sealed objects, a chance of about 2^-33).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "seal.h"
#include "util.h"

static const char SALT[] = "forkstore remote key v1";

int seal_hkdf(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
              const uint8_t *info, size_t infolen)
{
    static const uint8_t zero[32];
    uint8_t prk[32], t[32] = {0};
    unsigned n = 32;
    if (outlen > 255 * 32 || infolen > 1024)
        return fks__err(FKS_EINVAL, "hkdf: %zu bytes asked", outlen);
    if (!salt || !saltlen) {
        salt = zero;
        saltlen = 32;
    }
    if (!HMAC(EVP_sha256(), salt, (int)saltlen, ikm, ikmlen, prk, &n))
        return fks__err(FKS_ERR, "hkdf: HMAC failed");
    /* T(i) = HMAC(PRK, T(i-1) || info || i) */
    uint8_t msg[32 + 1024 + 1];
    size_t tl = 0, done = 0;
    for (unsigned i = 1; done < outlen; i++) {
        memcpy(msg, t, tl);
        if (infolen)
            memcpy(msg + tl, info, infolen);
        msg[tl + infolen] = (uint8_t)i;
        if (!HMAC(EVP_sha256(), prk, 32, msg, tl + infolen + 1, t, &n))
            return fks__err(FKS_ERR, "hkdf: HMAC failed");
        tl = 32;
        size_t take = outlen - done < 32 ? outlen - done : 32;
        memcpy(out + done, t, take);
        done += take;
    }
    OPENSSL_cleanse(prk, sizeof prk);
    OPENSSL_cleanse(t, sizeof t);
    OPENSSL_cleanse(msg, sizeof msg);
    return 0;
}

static void derive(uint8_t *out, size_t n, const uint8_t master[32], const char *info)
{
    int rc = seal_hkdf(out, n, (const uint8_t *)SALT, strlen(SALT), master, 32, (const uint8_t *)info,
                       strlen(info));
    (void)rc;     /* fixed, valid lengths: cannot fail but for OpenSSL itself */
}

void seal_key_derive(seal_key *k, const uint8_t master[32])
{
    derive(k->name, 32, master, "forkstore names");
    derive(k->enc, 32, master, "forkstore seal");
    derive(k->nonce, 32, master, "forkstore nonces");
    derive(k->id, SEAL_ID_LEN, master, "forkstore key id");
}

void seal_key_wipe(seal_key *k)
{
    OPENSSL_cleanse(k, sizeof *k);
}

void seal_key_id_hex(char out[2 * SEAL_ID_LEN + 1], const seal_key *k)
{
    for (int i = 0; i < SEAL_ID_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", k->id[i]);
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                                                        : -1;
}

int seal_key_load(seal_key *k, const char *path)
{
    memset(k, 0, sizeof *k);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fks__errno(errno == ENOENT ? FKS_ENOTFOUND : FKS_EIO, errno, "key file %s", path);
    struct stat st;
    uint8_t b[80], master[32];
    ssize_t n = -1;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = fks__errno(FKS_EIO, errno, "key file %s", path);
    else if (!S_ISREG(st.st_mode))
        rc = fks__err(FKS_EINVAL, "key file %s is not a regular file", path);
    else if (st.st_mode & 077)
        rc = fks__err(FKS_EPERM, "key file %s may be read by others (mode %03o): chmod 600 it", path,
                      (unsigned)(st.st_mode & 0777));
    else if ((n = read(fd, b, sizeof b)) < 0)
        rc = fks__errno(FKS_EIO, errno, "read key file %s", path);
    close(fd);
    if (rc)
        return rc;
    if (n == 32) {
        memcpy(master, b, 32);
    } else {
        while (n > 64 && (b[n - 1] == '\n' || b[n - 1] == '\r'))
            n--;
        int ok = n == 64;
        for (int i = 0; ok && i < 32; i++) {
            int hi = hexval(b[2 * i]), lo = hexval(b[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            master[i] = ok ? (uint8_t)(hi << 4 | lo) : 0;
        }
        if (!ok) {
            OPENSSL_cleanse(b, sizeof b);
            OPENSSL_cleanse(master, sizeof master);
            return fks__err(FKS_EINVAL, "key file %s is not a key: give 32 bytes, or 64 hex digits "
                            "(forkctl remote keygen writes one)", path);
        }
    }
    seal_key_derive(k, master);
    OPENSSL_cleanse(b, sizeof b);
    OPENSSL_cleanse(master, sizeof master);
    return 0;
}

int seal_keygen(const char *path)
{
    uint8_t key[32];
    char hex[66];
    if (RAND_bytes(key, sizeof key) != 1)
        return fks__err(FKS_ERR, "keygen: no random bytes from OpenSSL");
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[64] = '\n';
    OPENSSL_cleanse(key, sizeof key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(hex, sizeof hex);
        return errno == EEXIST ? fks__err(FKS_EEXIST, "key file %s already exists (never overwritten)", path)
                               : fks__errno(FKS_EIO, errno, "create key file %s", path);
    }
    int rc = fks__pwrite_full(fd, hex, 65, 0, path);
    OPENSSL_cleanse(hex, sizeof hex);
    if (rc == 0 && fsync(fd) != 0)
        rc = fks__errno(FKS_EIO, errno, "fsync %s", path);
    close(fd);
    if (rc == 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *sl = strrchr(dir, '/');
        if (!sl)
            snprintf(dir, sizeof dir, ".");
        else if (sl == dir)
            dir[1] = 0;
        else
            *sl = 0;
        rc = fks__fsync_dir(dir);
    }
    if (rc)
        unlink(path);
    return rc;
}

/* HMAC-SHA-256 under key (32 bytes) of a || b. */
static int hmac2(uint8_t out[32], const uint8_t key[32], const void *a, size_t an, const void *b, size_t bn)
{
    uint8_t small[8192];
    unsigned ml = 32;
    if (an + bn <= sizeof small) {     /* names and pages: the one-shot call (no fetch per call) */
        memcpy(small, a, an);
        memcpy(small + an, b, bn);
        return HMAC(EVP_sha256(), key, 32, small, an + bn, out, &ml) ? 0 : -1;
    }
    size_t got = 0;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mc = alg ? EVP_MAC_CTX_new(alg) : NULL;
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end()};
    int ok = mc && EVP_MAC_init(mc, key, 32, p) && EVP_MAC_update(mc, a, an) && EVP_MAC_update(mc, b, bn) &&
             EVP_MAC_final(mc, out, &got, 32);
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(alg);
    return ok ? 0 : -1;
}

void seal_name(uint8_t *out, size_t outlen, const seal_key *k, const char *label, const void *data, size_t n)
{
    uint8_t mac[32];
    if (hmac2(mac, k->name, label, strlen(label) + 1, data, n))
        memset(mac, 0, sizeof mac);     /* OpenSSL out of memory: a name nothing matches */
    memcpy(out, mac, outlen > 32 ? 32 : outlen);
}

static int nonce_of(uint8_t out[SEAL_NONCE], const seal_key *k, const void *aad, size_t aadlen, const uint8_t *pt,
                    size_t len)
{
    uint8_t mac[32], head[8 + 128];      /* u64 len(aad) || aad, then pt */
    if (aadlen > 128)
        return fks__err(FKS_EINVAL, "seal: aad of %zu bytes", aadlen);
    fks__put64(head, (uint64_t)aadlen);
    if (aadlen)                           /* aad may be NULL when empty */
        memcpy(head + 8, aad, aadlen);
    if (hmac2(mac, k->nonce, head, 8 + aadlen, pt, len))
        return fks__err(FKS_ERR, "seal: HMAC failed");
    memcpy(out, mac, SEAL_NONCE);
    return 0;
}
int seal_seal(uint8_t *out, const seal_key *k, const void *aad, size_t aadlen, const uint8_t *pt, size_t len)
{
    if (len > INT32_MAX || aadlen > INT32_MAX)
        return fks__err(FKS_EINVAL, "seal: %zu bytes is too large", len);
    int rc = nonce_of(out, k, aad, aadlen, pt, len);
    if (rc)
        return rc;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL) &&
                    EVP_EncryptInit_ex(c, NULL, NULL, k->enc, out) &&
                    (!aadlen || EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen)) &&
                    (!len || EVP_EncryptUpdate(c, out + SEAL_NONCE, &n, pt, (int)len)) &&
                    EVP_EncryptFinal_ex(c, out + SEAL_NONCE + len, &n) &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, out + SEAL_NONCE + len);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : fks__err(FKS_ERR, "seal: AES-256-GCM failed");
}

int seal_open(uint8_t *out, const seal_key *k, const void *aad, size_t aadlen, const uint8_t *in, size_t len)
{
    if (len < SEAL_OVERHEAD || len - SEAL_OVERHEAD > INT32_MAX || aadlen > INT32_MAX)
        return -1;
    size_t ct = len - SEAL_OVERHEAD;
    uint8_t tag[SEAL_TAG];
    memcpy(tag, in + SEAL_NONCE + ct, SEAL_TAG);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL) &&
                    EVP_DecryptInit_ex(c, NULL, NULL, k->enc, in) &&
                    (!aadlen || EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen)) &&
                    (!ct || EVP_DecryptUpdate(c, out, &n, in + SEAL_NONCE, (int)ct)) &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, tag) &&
                    EVP_DecryptFinal_ex(c, out + ct, &n) > 0;
    EVP_CIPHER_CTX_free(c);
    if (!ok && ct)
        OPENSSL_cleanse(out, ct);   /* no unauthenticated plaintext leaves here */
    return ok ? 0 : -1;
}
