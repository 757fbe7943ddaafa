/* test_seal.c: keys and sealing of encrypted remotes (src/integrations/seal.c): HKDF
** against RFC 5869 test case 1, opening against the AES-256-GCM test case
** 14 of McGrew and Viega's GCM specification, and the round trip, with
** every byte of a sealed object changed once, other aad, another key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "forkstore.h"
#include "seal.h"

static void unhex(uint8_t *out, const char *h)
{
    for (size_t i = 0; h[2 * i]; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void test_hkdf_rfc5869_case1(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    unhex(want, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    assert_int_equal(seal_hkdf(okm, sizeof okm, salt, sizeof salt, ikm, sizeof ikm, info, sizeof info), 0);
    assert_memory_equal(okm, want, 42);
    /* RFC 5869 test case 3: no salt, no info. */
    unhex(want, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    assert_int_equal(seal_hkdf(okm, sizeof okm, NULL, 0, ikm, sizeof ikm, NULL, 0), 0);
    assert_memory_equal(okm, want, 42);
}

static void test_open_gcm_vector(void **state)
{
    (void)state;
    /* GCM spec test case 14: K = 0^256, IV = 0^96, P = 0^128. */
    seal_key k;
    memset(&k, 0, sizeof k);
    uint8_t in[12 + 16 + 16], out[16], zero[16] = {0};
    memset(in, 0, 12);
    unhex(in + 12, "cea7403d4d606b6e074ec5d3baf39d18");
    unhex(in + 28, "d0d1c8a799996bf0265b98b5d48ab919");
    assert_int_equal(seal_open(out, &k, NULL, 0, in, sizeof in), 0);
    assert_memory_equal(out, zero, 16);
    in[20] ^= 1;
    assert_int_equal(seal_open(out, &k, NULL, 0, in, sizeof in), -1);
}

static void test_roundtrip_and_tamper(void **state)
{
    (void)state;
    uint8_t master[32], pt[300], s1[300 + SEAL_OVERHEAD], s2[300 + SEAL_OVERHEAD], back[300];
    for (int i = 0; i < 32; i++)
        master[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 300; i++)
        pt[i] = (uint8_t)(i ^ 0x5a);
    seal_key k, other;
    seal_key_derive(&k, master);
    master[0] ^= 1;
    seal_key_derive(&other, master);
    assert_memory_not_equal(k.id, other.id, SEAL_ID_LEN);
    const char aad[] = "FKSIDX\0\2 and the rest";
    assert_int_equal(seal_seal(s1, &k, aad, sizeof aad, pt, sizeof pt), 0);
    assert_int_equal(seal_seal(s2, &k, aad, sizeof aad, pt, sizeof pt), 0);
    assert_memory_equal(s1, s2, sizeof s1);        /* deterministic: resumable pushes */
    assert_memory_not_equal(s1 + SEAL_NONCE, pt, sizeof pt);
    assert_int_equal(seal_open(back, &k, aad, sizeof aad, s1, sizeof s1), 0);
    assert_memory_equal(back, pt, sizeof pt);
    for (size_t i = 0; i < sizeof s1; i++) {
        s1[i] ^= 0x10;
        assert_int_equal(seal_open(back, &k, aad, sizeof aad, s1, sizeof s1), -1);
        s1[i] ^= 0x10;
    }
    assert_int_equal(seal_open(back, &k, aad, sizeof aad - 1, s1, sizeof s1), -1);
    assert_int_equal(seal_open(back, &other, aad, sizeof aad, s1, sizeof s1), -1);
    assert_int_equal(seal_open(back, &k, aad, sizeof aad, s1, sizeof s1 - 1), -1);
    assert_int_equal(seal_open(back, &k, aad, sizeof aad, s1, 10), -1);
    /* Another plaintext or aad: another nonce. */
    pt[299] ^= 1;
    assert_int_equal(seal_seal(s2, &k, aad, sizeof aad, pt, sizeof pt), 0);
    assert_memory_not_equal(s1, s2, SEAL_NONCE);
    /* Empty plaintext seals and opens. */
    assert_int_equal(seal_seal(s2, &k, NULL, 0, pt, 0), 0);
    assert_int_equal(seal_open(back, &k, NULL, 0, s2, SEAL_OVERHEAD), 0);
    /* Keyed names: stable, key-dependent, label-dependent. */
    uint8_t n1[16], n2[16], n3[16];
    seal_name(n1, 16, &k, "page", pt, 16);
    seal_name(n2, 16, &k, "page", pt, 16);
    seal_name(n3, 16, &other, "page", pt, 16);
    assert_memory_equal(n1, n2, 16);
    assert_memory_not_equal(n1, n3, 16);
    seal_name(n2, 16, &k, "tag", pt, 16);
    assert_memory_not_equal(n1, n2, 16);
    seal_key_wipe(&k);
}

static void test_key_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/fks-test-seal.XXXXXX", p[200], q[200];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/k", dir);
    snprintf(q, sizeof q, "%s/raw", dir);
    assert_int_equal(seal_keygen(p), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    assert_int_equal(seal_keygen(p), FKS_EEXIST);
    seal_key a, b;
    assert_int_equal(seal_key_load(&a, p), 0);
    /* The same key as 32 raw bytes: the same sub-keys. */
    char hex[80];
    FILE *f = fopen(p, "r");
    assert_non_null(fgets(hex, sizeof hex, f));
    fclose(f);
    uint8_t raw[32];
    hex[64] = 0;
    unhex(raw, hex);
    f = fopen(q, "w");
    fwrite(raw, 1, 32, f);
    fclose(f);
    chmod(q, 0600);
    assert_int_equal(seal_key_load(&b, q), 0);
    assert_memory_equal(&a, &b, sizeof a);
    chmod(q, 0644);
    assert_int_equal(seal_key_load(&b, q), FKS_EPERM);
    f = fopen(q, "w");
    fputs("not a key\n", f);
    fclose(f);
    chmod(q, 0600);
    assert_int_equal(seal_key_load(&b, q), FKS_EINVAL);
    snprintf(q, sizeof q, "%s/none", dir);
    assert_int_equal(seal_key_load(&b, q), FKS_ENOTFOUND);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hkdf_rfc5869_case1),
        cmocka_unit_test(test_open_gcm_vector),
        cmocka_unit_test(test_roundtrip_and_tamper),
        cmocka_unit_test(test_key_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
