/* The authorities transparent egress reads from a container's requests:
 * Host headers, absolute URLs and CONNECT targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "containers/authority.h"

static void split_ok(const char *a, const char *host, uint16_t port)
{
    const char *h = NULL;
    size_t hlen = 0;
    uint16_t p = 1;
    if (!cb__ct_authority_split(a, strlen(a), &h, &hlen, &p))
        fail_msg("\"%s\" refused", a);
    if (hlen != strlen(host) || memcmp(h, host, hlen) != 0)
        fail_msg("\"%s\": host \"%.*s\", want \"%s\"", a, (int)hlen, h, host);
    assert_int_equal(p, port);
}

static void split_bad(const char *a)
{
    const char *h;
    size_t hlen;
    uint16_t p;
    if (cb__ct_authority_split(a, strlen(a), &h, &hlen, &p))
        fail_msg("\"%s\" accepted", a);
}

static void split(void **state)
{
    (void)state;
    split_ok("example.com", "example.com", 0);
    split_ok("example.com:8080", "example.com", 8080);
    split_ok("203.0.113.7:80", "203.0.113.7", 80);
    split_ok("[::1]", "::1", 0);
    split_ok("[fd63:6c61:7762:6f78::1]:443", "fd63:6c61:7762:6f78::1", 443);
    split_ok("a:65535", "a", 65535);
    const char *bad[] = {"",     ":80",   "a:",     "a:0",     "a:65536", "a:8x",  "a:-1",
                         "[::1", "[]:80", "[::1]x", "a:80:90", "a: 80",   "[::1]:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        split_bad(bad[i]);
    /* Bytes past n are not read: "host:80" cut before the colon. */
    const char *h;
    size_t hlen;
    uint16_t p;
    assert_true(cb__ct_authority_split("host:80", 4, &h, &hlen, &p));
    assert_int_equal(hlen, 4);
    assert_int_equal(p, 0);
}

static void names(void **state)
{
    (void)state;
    assert_true(cb__ct_authority_names("vm:8080", 7, "vm", 8080, 80));
    assert_true(cb__ct_authority_names("VM.:8080", 8, "vm", 8080, 80));
    assert_true(cb__ct_authority_names("vm", 2, "vm", 80, 80));
    assert_true(cb__ct_authority_names("vm", 2, "vm", 443, 443));
    assert_true(cb__ct_authority_names("[::1]:81", 8, "::1", 81, 80));
    /* Another name, a longer or shorter one, another port, the default
     * port when the connection went elsewhere. */
    assert_false(cb__ct_authority_names("vn:8080", 7, "vm", 8080, 80));
    assert_false(cb__ct_authority_names("vm.evil:8080", 12, "vm", 8080, 80));
    assert_false(cb__ct_authority_names("v:8080", 6, "vm", 8080, 80));
    assert_false(cb__ct_authority_names("vm:8081", 7, "vm", 8080, 80));
    assert_false(cb__ct_authority_names("vm", 2, "vm", 8080, 80));
    assert_false(cb__ct_authority_names("", 0, "vm", 80, 80));
    assert_false(cb__ct_authority_names("vm:80", 5, "", 80, 80));
}

static void host_bytes(void **state)
{
    (void)state;
    assert_true(cb__ct_host_bytes("api.example.com", 15));
    assert_true(cb__ct_host_bytes("fd63::1", 7));
    assert_true(cb__ct_host_bytes("a_b-c", 5));
    const char *bad[] = {"a@b", "a/b", "a?b", "a b", "a#b", "a%41", "a\r", "[::1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cb__ct_host_bytes(bad[i], strlen(bad[i])))
            fail_msg("\"%s\" accepted", bad[i]);
    assert_false(cb__ct_host_bytes("", 0));
    assert_false(cb__ct_host_bytes("a\0b", 3));
    char longest[254];
    memset(longest, 'a', sizeof(longest));
    assert_true(cb__ct_host_bytes(longest, 253));
    assert_false(cb__ct_host_bytes(longest, 254));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split),
        cmocka_unit_test(names),
        cmocka_unit_test(host_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
