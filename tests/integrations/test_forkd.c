/* test_forkd.c: the snapshot.json reader: valid documents, every field
** rule, and malformed input that must be refused with a clear message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "forkd.h"
#include "forkstore.h"
#include "util.h"

static int parse(struct forkd_snap *s, const char *j)
{
    return forkd_parse(s, j, strlen(j));
}

static void test_valid(void **state)
{
    (void)state;
    struct forkd_snap s;
    assert_int_equal(parse(&s, "{\"vmstate\":\"/a/vmstate\",\"memory\":\"/a/memory.bin\",\"volumes\":[1,{}]}"), 0);
    assert_string_equal(s.memory, "/a/memory.bin");
    assert_string_equal(s.parent_tag, "");
    const char *h = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
    char j[512];
    snprintf(j, sizeof j, "{\"vmstate\":\"v\",\"memory\":\"m\",\"parent_tag\":\"p\",\"parent_content_hash\":\"%s\","
             "\"rootfs\":\"/r\"}\n", h);
    assert_int_equal(parse(&s, j), 0);
    assert_string_equal(s.parent_content_hash, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    assert_string_equal(s.rootfs, "/r");
}

static void test_invalid(void **state)
{
    (void)state;
    struct forkd_snap s;
    struct { const char *json, *msg; } bad[] = {
        {"", "not valid JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"memory\":\"m\"}", "\"vmstate\" is missing"},
        {"{\"vmstate\":1,\"memory\":\"m\"}", "\"vmstate\" is not a string"},
        {"{\"vmstate\":\"v\",\"memory\":\"m\",\"parent_tag\":\"p\",\"parent_content_hash\":\"xyz\"}", "64 hex digits"},
        {"{\"vmstate\":\"v\",\"memory\":\"m\",\"parent_content_hash\":"
         "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}", "without parent_tag"},
        {"{\"vmstate\":\"v\",\"memory\":\"m\"} trailing", "not valid JSON"},
        {"{\"vmstate\":\"v\",\"memory\":\"m\\u0000x\"}", "NUL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(&s, bad[i].json), FKS_EINVAL);
        if (!strstr(fks_errmsg(), bad[i].msg))
            fail_msg("case %zu: message '%s' lacks '%s'", i, fks_errmsg(), bad[i].msg);
    }
    /* A path longer than the field. */
    static char big[8192];
    memset(big, 'a', sizeof big);
    memcpy(big, "{\"vmstate\":\"v\",\"memory\":\"", 25);
    memcpy(big + sizeof big - 3, "\"}", 3);
    assert_int_equal(parse(&s, big), FKS_EINVAL);
}

/* forkd's tag rule: [A-Za-z0-9_-]{1,64}, not starting with '-'. */
static void test_forkd_tag(void **state)
{
    (void)state;
    const char *good[] = {"a", "python-numpy", "_x", "A_b-9", "0123456789012345678901234567890123456789012345678901234567890123"};
    const char *bad[] = {"", "-a", "a.b", "a/b", "a b", "v1.2", "../x", "a+b", "\xc3\xa9",
                         "01234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (fks_check_forkd_tag(good[i]) != 0)
            fail_msg("'%s' refused: %s", good[i], fks_errmsg());
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(fks_check_forkd_tag(bad[i]), FKS_EINVAL);
        assert_non_null(strstr(fks_errmsg(), "[A-Za-z0-9_-]{1,64}"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_forkd_tag),
    };
    return cmocka_run_group_tests_name("forkd", tests, NULL, NULL);
}
