/* test_sigv4.c: the S3 client's request signing (src/s3.c) against AWS's
** published example (Amazon S3 API reference, "Signature Calculations for
** the Authorization Header", Example: GET Object), the URI encoding SigV4
** needs, and where credentials come from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "s3.h"
#include "util.h"

#define EX_KEY "AKIAIOSFODNN7EXAMPLE"
#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* GET /test.txt, Range: bytes=0-9, of examplebucket, 2013-05-24 00:00:00. */
static void test_get_object_example(void **state)
{
    (void)state;
    const struct s3_hdr h[] = {
        {"host", "examplebucket.s3.amazonaws.com"},
        {"range", "bytes=0-9"},
        {"x-amz-content-sha256", EMPTY},
        {"x-amz-date", "20130524T000000Z"},
    };
    char auth[512], creq[65];
    assert_int_equal(s3_sigv4(auth, sizeof auth, creq, "GET", "/test.txt", "", h, 4, EMPTY, "20130524T000000Z",
                              "us-east-1", EX_KEY, EX_SECRET), 0);
    /* The documented hash of the canonical request (in its StringToSign)... */
    assert_string_equal(creq, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    /* ... and the documented Authorization header, byte for byte. */
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    /* Any change to what is signed changes the signature. */
    char auth2[512];
    assert_int_equal(s3_sigv4(auth2, sizeof auth2, NULL, "GET", "/test.txt", "", h, 4, EMPTY, "20130524T000000Z",
                              "us-east-1", EX_KEY, "wrong"), 0);
    assert_string_not_equal(auth, auth2);
    assert_int_equal(s3_sigv4(auth2, sizeof auth2, NULL, "GET", "/test.txt", "", h, 3, EMPTY, "20130524T000000Z",
                              "us-east-1", EX_KEY, EX_SECRET), 0);
    assert_string_not_equal(auth, auth2);
    /* Too small a buffer is an error, not a cut header. */
    assert_int_equal(s3_sigv4(auth2, 40, NULL, "GET", "/test.txt", "", h, 4, EMPTY, "20130524T000000Z",
                              "us-east-1", EX_KEY, EX_SECRET), FKS_EINVAL);
}

static void test_sha256(void **state)
{
    (void)state;
    char h[65];
    s3_sha256_hex(h, "", 0);
    assert_string_equal(h, EMPTY);
    s3_sha256_hex(h, "abc", 3);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Query values are signed encoded, '/' included (libcurl 7.88 left it). */
static void test_uri_encode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(s3_uri_encode(out, sizeof out, "dir/x y+z~_.-", 0), 0);
    assert_string_equal(out, "dir%2Fx%20y%2Bz~_.-");
    assert_int_equal(s3_uri_encode(out, sizeof out, "p/packs/ab.pack", 1), 0);
    assert_string_equal(out, "p/packs/ab.pack");
    assert_int_equal(s3_uri_encode(out, sizeof out, "\xc3\xa9=", 0), 0);
    assert_string_equal(out, "%C3%A9%3D");
    assert_int_equal(s3_uri_encode(out, 4, "abcd", 0), FKS_EINVAL);
}

static void test_creds(void **state)
{
    (void)state;
    s3_creds c;
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "skenv", 1);
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    assert_int_equal(s3_creds_load(&c), 0);
    assert_string_equal(c.key_id, "AKENV");
    assert_string_equal(c.secret, "skenv");
    assert_string_equal(c.token, "tok");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    char path[] = "/tmp/fks-creds-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *ini = "[default]\naws_access_key_id = AKDEF\naws_secret_access_key=skdef\n\n"
                      "# comment\n[ other ]\n  aws_access_key_id=AKOTHER \naws_secret_access_key = skother\n"
                      "aws_session_token = tokother\n";
    assert_int_equal(write(fd, ini, strlen(ini)), (int)strlen(ini));
    close(fd);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    unsetenv("AWS_PROFILE");
    assert_int_equal(s3_creds_load(&c), 0);
    assert_string_equal(c.key_id, "AKDEF");
    assert_string_equal(c.secret, "skdef");
    assert_string_equal(c.token, "");
    setenv("AWS_PROFILE", "other", 1);
    assert_int_equal(s3_creds_load(&c), 0);
    assert_string_equal(c.key_id, "AKOTHER");
    assert_string_equal(c.secret, "skother");
    assert_string_equal(c.token, "tokother");
    setenv("AWS_PROFILE", "missing", 1);
    assert_int_equal(s3_creds_load(&c), FKS_ENOTFOUND);
    assert_non_null(strstr(fks_errmsg(), "[missing]"));
    unlink(path);
    assert_int_equal(s3_creds_load(&c), FKS_ENOTFOUND);
    assert_non_null(strstr(fks_errmsg(), path));
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_PROFILE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_object_example),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_creds),
    };
    return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
