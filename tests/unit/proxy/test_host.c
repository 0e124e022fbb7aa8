#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/host.h"

static int v4(const char *s, uint32_t *out)
{
    return cb__proxy_ipv4_parse(s, strlen(s), out);
}

static void ipv4_numeric_forms(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint32_t want;
    } cases[] = {
        {"127.0.0.1", 0x7f000001},
        {"2130706433", 0x7f000001},
        {"0177.0.0.1", 0x7f000001},
        {"0x7f.0.0.1", 0x7f000001},
        {"0X7F.0.0.1", 0x7f000001},
        {"127.1", 0x7f000001},
        {"0x7f.1", 0x7f000001},
        {"127.0.1", 0x7f000001},
        {"0x7f000001", 0x7f000001},
        {"017700000001", 0x7f000001},
        {"127.0.0.1.", 0x7f000001},
        {"0", 0},
        {"0x", 0},
        {"1.2.65535", 0x0102ffff},
        {"255.255.255.255", 0xffffffff},
        {"4294967295", 0xffffffff},
        {"0x00000000000000007f.1", 0x7f000001},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t a = 0;
        assert_int_equal(v4(cases[i].in, &a), 1);
        assert_int_equal(a, cases[i].want);
    }
}

static void ipv4_invalid_numbers(void **state)
{
    (void)state;
    const char *bad[] = {"1.2.3.256",   "4294967296",
                         "0x100000000", "1.2.3.4.5",
                         "08.1.1.1",    "1.2.3.09",
                         "0xg.1",       "foo.123",
                         "x.0x10",      "1..2",
                         ".1",          "256.1",
                         "1.16777216",  "99999999999999999999999"};
    uint32_t a;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(v4(bad[i], &a), -EINVAL);
}

static void ipv4_names_are_not_numbers(void **state)
{
    (void)state;
    const char *names[] = {"example.com", "123.foo", "0x7f.com", "a", "x.0xg", "1.2.3.4a", "."};
    uint32_t a;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_int_equal(v4(names[i], &a), 0);
}

static void expect_host(const char *in, enum cb_proxy_host_kind kind, const char *name)
{
    struct cb_proxy_host h;
    struct cb_error err = {0};
    assert_int_equal(cb_proxy_host_parse(in, strlen(in), &h, &err), 0);
    assert_int_equal(h.kind, kind);
    assert_string_equal(h.name, name);
    assert_int_equal(h.len, strlen(name));
}

static void expect_bad(const char *in, size_t len, const char *msg)
{
    struct cb_proxy_host h;
    struct cb_error err = {0};
    assert_int_equal(cb_proxy_host_parse(in, len, &h, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
}

static void host_canonical_forms(void **state)
{
    (void)state;
    expect_host("Example.COM", CB_PROXY_HOST_NAME, "example.com");
    expect_host("example.com.", CB_PROXY_HOST_NAME, "example.com");
    expect_host("xn--bcher-kva.de", CB_PROXY_HOST_NAME, "xn--bcher-kva.de");
    expect_host("a-b.c", CB_PROXY_HOST_NAME, "a-b.c");
    expect_host("localhost", CB_PROXY_HOST_NAME, "localhost");
    expect_host("0x7F.1", CB_PROXY_HOST_IPV4, "127.0.0.1");
    expect_host("2130706433.", CB_PROXY_HOST_IPV4, "127.0.0.1");
    expect_host("[::1]", CB_PROXY_HOST_IPV6, "::1");
    expect_host("::1", CB_PROXY_HOST_IPV6, "::1");
    expect_host("[0:0:0:0:0:FFFF:7F00:1]", CB_PROXY_HOST_IPV6, "::ffff:127.0.0.1");
    expect_host("[2001:DB8:0:0:0:0:0:1]", CB_PROXY_HOST_IPV6, "2001:db8::1");
}

static void host_ip_bytes(void **state)
{
    (void)state;
    struct cb_proxy_host h;
    assert_int_equal(cb_proxy_host_parse("10.1.2.3", 8, &h, NULL), 0);
    assert_memory_equal(h.ip, "\x0a\x01\x02\x03", 4);
    assert_int_equal(cb_proxy_host_parse("[::ffff:1.2.3.4]", 16, &h, NULL), 0);
    assert_memory_equal(h.ip + 10, "\xff\xff\x01\x02\x03\x04", 6);
}

static void host_rejects_with_reasons(void **state)
{
    (void)state;
    expect_bad("", 0, "the host is empty");
    expect_bad("a_b.com", 7,
               "the host \"a_b.com\" contains the character '_', but a host name may only "
               "contain letters, digits, '-' and '.'");
    expect_bad("exa%6dple.com", 13,
               "the host \"exa%6dple.com\" contains percent-encoding; write the host name "
               "without %-escapes");
    expect_bad("b\xc3\xbc"
               "cher.de",
               10,
               "the host \"b\\xc3\\xbccher.de\" is not ASCII; write international names in "
               "punycode (xn--...)");
    expect_bad("a b", 3, "the host \"a b\" contains a space or control character");
    expect_bad("a\0b", 3, "the host \"a\\x00b\" contains a space or control character");
    expect_bad("a..b", 4,
               "the host \"a..b\" has an empty label (a leading dot or two dots in a row)");
    expect_bad(".a", 2, "the host \".a\" has an empty label (a leading dot or two dots in a row)");
    expect_bad(".", 1, "the host \".\" has an empty label (a leading dot or two dots in a row)");
    expect_bad("a..", 3, "the host \"a.\" has an empty label (a leading dot or two dots in a row)");
    expect_bad("-a.com", 6, "the host \"-a.com\" has a label that starts or ends with '-'");
    expect_bad("a-.com", 6, "the host \"a-.com\" has a label that starts or ends with '-'");
    expect_bad("1.2.3.256", 9,
               "the host \"1.2.3.256\" ends in a number but is not a valid IPv4 address");
    expect_bad("[fe80::1%25eth0]", 16,
               "the IPv6 host \"fe80::1%25eth0\" has a zone id (the part after '%'); zone ids "
               "are not allowed");
    expect_bad("[::1", 4, "the host \"[::1\" has an unclosed '['");
    expect_bad("[v1.x]", 6, "the host \"v1.x\" is not a valid IPv6 address");
    expect_bad("[1:2:3:4:5:6:7:8:9]", 19,
               "the host \"1:2:3:4:5:6:7:8:9\" is not a valid IPv6 address");
}

static void host_length_limits(void **state)
{
    (void)state;
    char name[300];
    /* 63-character labels are fine, 64 is not. */
    memset(name, 'a', 63);
    memcpy(name + 63, ".com", 5);
    expect_host(name, CB_PROXY_HOST_NAME, name);
    memset(name, 'a', 64);
    memcpy(name + 64, ".com", 5);
    struct cb_proxy_host h;
    struct cb_error err = {0};
    assert_int_equal(cb_proxy_host_parse(name, strlen(name), &h, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "has a label longer than 63 characters"));
    /* 253 characters in total, plus an optional trailing dot. */
    for (int i = 0; i < 253; i++)
        name[i] = i % 2 ? '.' : 'a';
    name[253] = '.';
    assert_int_equal(cb_proxy_host_parse(name, 254, &h, &err), 0);
    assert_int_equal(h.len, 253);
    name[253] = 'b';
    assert_int_equal(cb_proxy_host_parse(name, 254, &h, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "is longer than 253 characters"));
}

static void host_format_brackets_ipv6(void **state)
{
    (void)state;
    struct cb_proxy_host h;
    char buf[CB_PROXY_HOST_NAME_MAX + 3];
    assert_int_equal(cb_proxy_host_parse("::1", 3, &h, NULL), 0);
    assert_int_equal(cb__proxy_host_format(&h, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "[::1]");
    assert_int_equal(cb_proxy_host_parse("A.b", 3, &h, NULL), 0);
    assert_int_equal(cb__proxy_host_format(&h, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "a.b");
    assert_int_equal(cb__proxy_host_format(&h, buf, 2), 1);
    assert_string_equal(buf, "a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_numeric_forms),
        cmocka_unit_test(ipv4_invalid_numbers),
        cmocka_unit_test(ipv4_names_are_not_numbers),
        cmocka_unit_test(host_canonical_forms),
        cmocka_unit_test(host_ip_bytes),
        cmocka_unit_test(host_rejects_with_reasons),
        cmocka_unit_test(host_length_limits),
        cmocka_unit_test(host_format_brackets_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
