#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>

#include "proxy/addr.h"

/* Builds a sockaddr from text; the family follows from a ':'. */
static const struct sockaddr *sa_of(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

static int check(const struct cb_proxy_addr_policy *p, const char *ip, const char *host,
                 struct cb_error *err)
{
    struct sockaddr_storage ss;
    return cb__proxy_addr_check(p, sa_of(ip, &ss), host, err);
}

static void expect_blocked(const char *ip, const char *cidr)
{
    struct cb_error err = {0};
    if (check(NULL, ip, NULL, &err) != -EACCES)
        fail_msg("%s was allowed", ip);
    char want[128];
    snprintf(want, sizeof(want), "(%s)", cidr);
    if (strstr(err.msg, want) == NULL)
        fail_msg("%s: %s lacks %s", ip, err.msg, want);
}

static void expect_allowed(const char *ip)
{
    struct cb_error err = {0};
    if (check(NULL, ip, "h", &err) != 0)
        fail_msg("%s was blocked: %s", ip, err.msg);
}

/* Every table entry, at both ends of its block, and its public neighbours. */
static void ipv4_special_ranges(void **state)
{
    (void)state;
    static const char *cases[][3] = {
        {"0.0.0.1", "0.255.255.255", "0.0.0.0/8"},
        {"10.0.0.0", "10.255.255.255", "10.0.0.0/8"},
        {"100.64.0.0", "100.127.255.255", "100.64.0.0/10"},
        {"127.0.0.1", "127.255.255.255", "127.0.0.0/8"},
        {"169.254.0.0", "169.254.255.255", "169.254.0.0/16"},
        {"172.16.0.0", "172.31.255.255", "172.16.0.0/12"},
        {"192.0.0.0", "192.0.0.255", "192.0.0.0/24"},
        {"192.0.2.0", "192.0.2.255", "192.0.2.0/24"},
        {"192.31.196.0", "192.31.196.255", "192.31.196.0/24"},
        {"192.52.193.0", "192.52.193.255", "192.52.193.0/24"},
        {"192.88.99.0", "192.88.99.255", "192.88.99.0/24"},
        {"192.168.0.0", "192.168.255.255", "192.168.0.0/16"},
        {"192.175.48.0", "192.175.48.255", "192.175.48.0/24"},
        {"198.18.0.0", "198.19.255.255", "198.18.0.0/15"},
        {"198.51.100.0", "198.51.100.255", "198.51.100.0/24"},
        {"203.0.113.0", "203.0.113.255", "203.0.113.0/24"},
        {"224.0.0.0", "239.255.255.255", "224.0.0.0/4"},
        {"240.0.0.0", "255.255.255.254", "240.0.0.0/4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_blocked(cases[i][0], cases[i][2]);
        expect_blocked(cases[i][1], cases[i][2]);
    }
    expect_blocked("0.0.0.0", "0.0.0.0/32");
    expect_blocked("169.254.169.254", "169.254.169.254/32");
    expect_blocked("255.255.255.255", "255.255.255.255/32");
}

static void ipv4_public_neighbours(void **state)
{
    (void)state;
    const char *ok[] = {"1.0.0.0",       "9.255.255.255",   "11.0.0.0",        "100.63.255.255",
                        "100.128.0.0",   "126.255.255.255", "128.0.0.0",       "169.253.255.255",
                        "169.255.0.0",   "172.15.255.255",  "172.32.0.0",      "191.255.255.255",
                        "192.0.1.0",     "192.0.3.0",       "192.88.98.255",   "192.167.255.255",
                        "192.169.0.0",   "198.17.255.255",  "198.20.0.0",      "198.51.99.255",
                        "203.0.112.255", "203.0.114.0",     "223.255.255.255", "8.8.8.8",
                        "1.1.1.1",       "93.184.216.34"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        expect_allowed(ok[i]);
}

static void ipv6_special_ranges(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"::", "::/128"},
        {"::1", "::1/128"},
        {"::2", "::/96"},
        {"::127.0.0.1", "::/96"},
        {"::8.8.8.8", "::/96"},
        {"64:ff9b::8.8.8.8", "64:ff9b::/96"},
        {"64:ff9b::7f00:1", "64:ff9b::/96"},
        {"64:ff9b:1::1", "64:ff9b:1::/48"},
        {"100::1", "100::/64"},
        {"100:0:0:1::1", "100:0:0:1::/64"},
        {"2001::1", "2001::/32"},
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"},
        {"2001:2::1", "2001::/23"},
        {"2001:1ff::1", "2001::/23"},
        {"2001:db8::1", "2001:db8::/32"},
        {"2002:7f00:1::1", "2002::/16"},
        {"2002:808:808::1", "2002::/16"},
        {"2620:4f:8000::1", "2620:4f:8000::/48"},
        {"3fff::1", "3fff::/20"},
        {"3fff:fff::1", "3fff::/20"},
        {"5f00::1", "5f00::/16"},
        {"fc00::1", "fc00::/7"},
        {"fdff:ffff::1", "fc00::/7"},
        {"fe80::1", "fe80::/10"},
        {"febf::1", "fe80::/10"},
        {"fec0::1", "fec0::/10"},
        {"ff02::1", "ff00::/8"},
        {"::ffff:0:7f00:1", "::/3"},
        {"1000::1", "::/3"},
        {"4000::1", "4000::/2"},
        {"8000::1", "8000::/1"},
        {"e000::1", "8000::/1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_blocked(cases[i][0], cases[i][1]);
}

static void ipv6_public(void **state)
{
    (void)state;
    const char *ok[] = {"2606:4700:4700::1111", "2a00:1450:4001::200e",
                        "2001:200::1",          "2001:4860::8888",
                        "3fff:1000::1",         "2003::1",
                        "2620:4f:8001::1",      "3ffe::1",
                        "::ffff:8.8.8.8"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        expect_allowed(ok[i]);
}

static void messages(void **state)
{
    (void)state;
    struct cb_error err = {0};
    assert_int_equal(check(NULL, "10.0.0.5", "api.example.com", &err), -EACCES);
    assert_string_equal(err.msg, "blocked: api.example.com resolves to 10.0.0.5, a private "
                                 "address (10.0.0.0/8)");
    assert_int_equal(check(NULL, "10.0.0.5", NULL, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: 10.0.0.5 is a private address (10.0.0.0/8)");
    assert_int_equal(check(NULL, "10.0.0.5", "10.0.0.5", &err), -EACCES);
    assert_string_equal(err.msg, "blocked: 10.0.0.5 is a private address (10.0.0.0/8)");
    assert_int_equal(check(NULL, "::ffff:127.0.0.1", "x.test", &err), -EACCES);
    assert_string_equal(err.msg, "blocked: x.test resolves to ::ffff:127.0.0.1, an IPv4-mapped "
                                 "form of 127.0.0.1, a loopback address (127.0.0.0/8)");
    assert_int_equal(check(NULL, "::ffff:169.254.169.254", NULL, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: ::ffff:169.254.169.254 is an IPv4-mapped form of "
                                 "169.254.169.254, the link-local cloud metadata address "
                                 "(169.254.169.254/32)");
    assert_int_equal(check(NULL, "64:ff9b::a00:1", "nat.test", &err), -EACCES);
    assert_string_equal(err.msg, "blocked: nat.test resolves to 64:ff9b::a00:1, a NAT64 address "
                                 "(64:ff9b::/96)");
    assert_int_equal(check(NULL, "fe80::1", "evil\n", &err), -EACCES);
    assert_string_equal(err.msg, "blocked: evil\\x0a resolves to fe80::1, a link-local address "
                                 "(fe80::/10)");
}

static void unsupported_family(void **state)
{
    (void)state;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct cb_error err = {0};
    assert_int_equal(cb__proxy_addr_check(NULL, (struct sockaddr *)&un, "h", &err), -EAFNOSUPPORT);
    assert_string_equal(err.msg, "blocked: h resolves to an address that is neither IPv4 nor IPv6");
    assert_int_equal(cb__proxy_addr_check(NULL, NULL, NULL, &err), -EAFNOSUPPORT);
    assert_string_equal(err.msg, "blocked: the host resolves to an address that is neither IPv4 "
                                 "nor IPv6");
}

static void classify_is_raw_lookup(void **state)
{
    (void)state;
    uint8_t a[16] = {0};
    assert_null(cb__proxy_addr_classify(AF_INET, (const uint8_t *)"\x08\x08\x08\x08"));
    const struct cb_proxy_special *s = cb__proxy_addr_classify(AF_INET, a);
    assert_string_equal(s->cidr, "0.0.0.0/32");
    assert_string_equal(s->what, "the unspecified address");
    inet_pton(AF_INET6, "::ffff:8.8.8.8", a);
    s = cb__proxy_addr_classify(AF_INET6, a);
    assert_string_equal(s->cidr, "::/3");
}

static void cidr_parsing(void **state)
{
    (void)state;
    struct cb_proxy_cidr c;
    struct cb_error err = {0};
    assert_int_equal(cb__proxy_cidr_parse("127.0.0.0/8", 11, &c, &err), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_true(cb__proxy_cidr_contains(&c, AF_INET, (const uint8_t *)"\x7f\x01\x02\x03"));
    assert_false(cb__proxy_cidr_contains(&c, AF_INET, (const uint8_t *)"\x80\x00\x00\x00"));
    assert_false(cb__proxy_cidr_contains(&c, AF_INET6,
                                         (const uint8_t *)"\x7f\x00\x00\x00"
                                                          "000000000000"));
    assert_int_equal(cb__proxy_cidr_parse("::1/128", 7, &c, &err), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(cb__proxy_cidr_parse("0.0.0.0/0", 9, &c, &err), 0);
    assert_true(cb__proxy_cidr_contains(&c, AF_INET, (const uint8_t *)"\x01\x02\x03\x04"));
    assert_int_equal(cb__proxy_cidr_parse("fe80::/10", 9, &c, &err), 0);
    assert_int_equal(cb__proxy_cidr_parse("10.0.0.0/31", 11, &c, &err), 0);

    static const char *bad[][2] = {
        {"127.0.0.1", "\"127.0.0.1\" is not a CIDR block: write ADDRESS/PREFIX, for example "
                      "127.0.0.0/8 or ::1/128"},
        {"127.0.0.1/8", "\"127.0.0.1/8\" has address bits set past the prefix; did you mean "
                        "127.0.0.0/8?"},
        {"fe80::1/10", "\"fe80::1/10\" has address bits set past the prefix; did you mean "
                       "fe80::/10?"},
        {"10.0.0.0/33", "\"10.0.0.0/33\" has a bad prefix length: use a number from 0 to 32"},
        {"::/129", "\"::/129\" has a bad prefix length: use a number from 0 to 128"},
        {"10.0.0.0/08", "\"10.0.0.0/08\" has a bad prefix length: use a number from 0 to 32"},
        {"10.0.0.0/", "\"10.0.0.0/\" has a bad prefix length: use a number from 0 to 32"},
        {"10.0.0.0/+8", "\"10.0.0.0/+8\" has a bad prefix length: use a number from 0 to 32"},
        {"10.0.0.0/8 ", "\"10.0.0.0/8 \" has a bad prefix length: use a number from 0 to 32"},
        {"010.0.0.0/8", "\"010.0.0.0/8\" does not start with a valid IPv4 or IPv6 address "
                        "(dotted decimal without leading zeros, or IPv6 without a zone id)"},
        {"10.0/8", "\"10.0/8\" does not start with a valid IPv4 or IPv6 address (dotted decimal "
                   "without leading zeros, or IPv6 without a zone id)"},
        {"fe80::%eth0/64", "\"fe80::%eth0/64\" does not start with a valid IPv4 or IPv6 address "
                           "(dotted decimal without leading zeros, or IPv6 without a zone id)"},
        {"/8", "\"/8\" does not start with a valid IPv4 or IPv6 address (dotted decimal without "
               "leading zeros, or IPv6 without a zone id)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cb__proxy_cidr_parse(bad[i][0], strlen(bad[i][0]), &c, &err), -EINVAL);
        assert_string_equal(err.msg, bad[i][1]);
    }
}

static void exemptions(void **state)
{
    (void)state;
    char *cidrs[] = {"127.0.0.0/8", "fd00::/8"};
    struct cb_proxy_addr_policy *p;
    struct cb_error err = {0};
    assert_int_equal(cb__proxy_addr_policy_new(cidrs, 2, &p, &err), 0);
    assert_int_equal(check(p, "127.0.0.1", "localhost", &err), 0);
    assert_int_equal(check(p, "127.9.9.9", NULL, &err), 0);
    assert_int_equal(check(p, "::ffff:127.0.0.1", NULL, &err), 0);
    assert_int_equal(check(p, "fd12::1", NULL, &err), 0);
    /* Only what is named: ::1 and 10/8 stay blocked. */
    assert_int_equal(check(p, "::1", "localhost", &err), -EACCES);
    assert_string_equal(err.msg, "blocked: localhost resolves to ::1, a loopback address "
                                 "(::1/128)");
    assert_int_equal(check(p, "10.0.0.1", NULL, &err), -EACCES);
    assert_int_equal(check(p, "fc00::1", NULL, &err), -EACCES);
    assert_int_equal(check(p, "8.8.8.8", NULL, &err), 0);
    cb__proxy_addr_policy_free(p);

    assert_int_equal(cb__proxy_addr_policy_new(NULL, 0, &p, &err), 0);
    assert_int_equal(check(p, "127.0.0.1", NULL, &err), -EACCES);
    cb__proxy_addr_policy_free(p);
    cb__proxy_addr_policy_free(NULL);
}

static void bad_exemption(void **state)
{
    (void)state;
    char *cidrs[] = {"127.0.0.0/8", "localhost"};
    struct cb_proxy_addr_policy *p = (void *)1;
    struct cb_error err = {0};
    assert_int_equal(cb__proxy_addr_policy_new(cidrs, 2, &p, &err), -EINVAL);
    assert_null(p);
    assert_string_equal(err.msg, "proxy.allow_private_cidrs entry 2: \"localhost\" is not a CIDR "
                                 "block: write ADDRESS/PREFIX, for example 127.0.0.0/8 or "
                                 "::1/128");
}

static void from_host(void **state)
{
    (void)state;
    struct cb_proxy_host h;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    struct cb_error err = {0};
    assert_int_equal(cb_proxy_host_parse("0x7f.1", 6, &h, NULL), 0);
    assert_int_equal(cb__proxy_addr_from_host(&h, 8080, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    assert_int_equal(cb__proxy_addr_check(NULL, (struct sockaddr *)&ss, h.name, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)");
    assert_int_equal(cb_proxy_host_parse("[::ffff:a00:1]", 14, &h, NULL), 0);
    assert_int_equal(cb__proxy_addr_from_host(&h, 443, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(cb__proxy_addr_check(NULL, (struct sockaddr *)&ss, h.name, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: ::ffff:10.0.0.1 is an IPv4-mapped form of 10.0.0.1, "
                                 "a private address (10.0.0.0/8)");
    assert_int_equal(cb_proxy_host_parse("example.com", 11, &h, NULL), 0);
    assert_int_equal(cb__proxy_addr_from_host(&h, 80, &ss, &len), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_special_ranges),
        cmocka_unit_test(ipv4_public_neighbours),
        cmocka_unit_test(ipv6_special_ranges),
        cmocka_unit_test(ipv6_public),
        cmocka_unit_test(messages),
        cmocka_unit_test(unsupported_family),
        cmocka_unit_test(classify_is_raw_lookup),
        cmocka_unit_test(cidr_parsing),
        cmocka_unit_test(exemptions),
        cmocka_unit_test(bad_exemption),
        cmocka_unit_test(from_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
