/* The SSRF suite: bypass attempts run through the pure half of the proxy
 * pipeline (URL, allowlist, address policy) in the order the forwarder runs
 * them. "DNS" is simulated: each case names the address its host resolves
 * to. Every case asserts the block and its exact reason; a few public
 * controls assert that the same pipeline lets ordinary requests through. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/addr.h"
#include "proxy/allowlist.h"
#include "proxy/url.h"

#define WHO           "tool web_fetch"
#define NOT_LISTED(h) "blocked: host " h " is not in the allowlist for " WHO

struct attempt {
    const char *url;
    const char *resolves_to; /* NULL: the URL holds an IP literal, or never gets that far */
    const char *reason;      /* NULL: allowed */
};

static char *named_list[] = {"allowed.com", "*.example.com", "localhost", "localtest.me",
                             "metadata.google.internal"};
static char *star_list[] = {"*"};

static void sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (strchr(ip, ':')) {
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    } else {
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    }
}

/* URL -> allowlist -> address, stopping at the first denial. */
static int pipeline(const struct attempt *a, const struct cb_proxy_allowlist *l, bool star_ok,
                    struct cb_error *err)
{
    struct cb_proxy_url u;
    struct sockaddr_storage ss;
    socklen_t len;
    int r = cb__proxy_url_parse(a->url, strlen(a->url), &u, err);
    if (r == 0)
        r = cb__proxy_allowlist_check(l, u.host.name, u.host.len, star_ok, WHO, err);
    if (r == 0 && cb__proxy_addr_from_host(&u.host, u.port, &ss, &len) == 0)
        r = cb__proxy_addr_check(NULL, (struct sockaddr *)&ss, NULL, err);
    else if (r == 0 && a->resolves_to) {
        sockaddr_of(a->resolves_to, &ss);
        r = cb__proxy_addr_check(NULL, (struct sockaddr *)&ss, u.host.name, err);
    }
    cb__proxy_url_free(&u);
    return r;
}

static void run(const struct attempt *cases, size_t n, char **entries, size_t n_entries,
                bool star_ok)
{
    struct cb_proxy_allowlist *l;
    assert_int_equal(cb_proxy_allowlist_new(entries, n_entries, &l, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        struct cb_error err = {0};
        int r = pipeline(&cases[i], l, star_ok, &err);
        if (cases[i].reason == NULL && r != 0)
            fail_msg("%s was blocked: %s", cases[i].url, err.msg);
        if (cases[i].reason == NULL)
            continue;
        if (r == 0)
            fail_msg("%s was allowed", cases[i].url);
        if (strcmp(err.msg, cases[i].reason) != 0)
            fail_msg("%s\n  got:  %s\n  want: %s", cases[i].url, err.msg, cases[i].reason);
    }
    cb_proxy_allowlist_free(l);
}

#define RUN(cases, list, star)                                                                     \
    run(cases, sizeof(cases) / sizeof(cases[0]), list, sizeof(list) / sizeof(list[0]), star)

/* Refused by the URL stage, whatever the allowlist says. */
static const struct attempt url_tricks[] = {
    {"file:///etc/passwd", NULL,
     "blocked: URL file:///etc/passwd uses the scheme \"file\"; only http and https are allowed"},
    {"gopher://allowed.com:70/_SLAVEOF", NULL,
     "blocked: URL gopher://allowed.com:70/_SLAVEOF uses the scheme \"gopher\"; only http and "
     "https are allowed"},
    {"ftp://allowed.com/", NULL,
     "blocked: URL ftp://allowed.com/ uses the scheme \"ftp\"; only http and https are allowed"},
    {"dict://allowed.com:11211/stat", NULL,
     "blocked: URL dict://allowed.com:11211/stat uses the scheme \"dict\"; only http and https "
     "are allowed"},
    {"HTTPX://allowed.com/", NULL,
     "blocked: URL HTTPX://allowed.com/ uses the scheme \"HTTPX\"; only http and https are "
     "allowed"},
    {"http://allowed.com@evil.com/", NULL,
     "blocked: URL http://***@evil.com/ contains credentials (userinfo is not allowed); remove "
     "the part before '@' from the host"},
    {"https://user:pw@allowed.com/", NULL,
     "blocked: URL https://***@allowed.com/ contains credentials (userinfo is not allowed); "
     "remove the part before '@' from the host"},
    {"http://allowed.com%40evil.com/", NULL,
     "blocked: invalid URL http://allowed.com%40evil.com/: the host \"allowed.com%40evil.com\" "
     "contains percent-encoding; write the host name without %-escapes"},
    {"http://allowed.com\\@evil.com/", NULL,
     "blocked: URL http://***@evil.com/ contains a backslash (at byte 18); use '/' or "
     "percent-encode it as %5C"},
    {"http:\\\\evil.com\\", NULL,
     "blocked: URL http:\\x5c\\x5cevil.com\\x5c contains a backslash (at byte 5); use '/' or "
     "percent-encode it as %5C"},
    {"http://allowed.com /", NULL,
     "blocked: URL http://allowed.com / contains a space (at byte 18); percent-encode it as %20"},
    {" http://allowed.com/", NULL,
     "blocked: URL  http://allowed.com/ contains a space (at byte 0); percent-encode it as %20"},
    {"http://allowed.com\t.evil.com/", NULL,
     "blocked: URL http://allowed.com\\x09.evil.com/ contains a control character (byte 0x09 at "
     "byte 18); percent-encode it"},
    {"http://allowed.com\r\nHost: evil.com/", NULL,
     "blocked: URL http://allowed.com\\x0d\\x0aHost: evil.com/ contains a control character "
     "(byte 0x0d at byte 18); percent-encode it"},
    {"http://xn--allowed.com\xe3\x80\x82"
     "evil.com/",
     NULL,
     "blocked: URL http://xn--allowed.com\\xe3\\x80\\x82evil.com/ contains a non-ASCII byte (at "
     "byte 22); percent-encode the path and query, and write international host names in "
     "punycode (xn--...)"},
    {"http:///evil.com/", NULL, "blocked: URL http:///evil.com/ has an empty host"},
    {"http:/evil.com/", NULL,
     "blocked: URL http:/evil.com/ must start with http:// followed by the host"},
    {"//evil.com/", NULL, "blocked: URL //evil.com/ has no scheme; write it as https://host/path"},
    {"http://allowed.com:99999/", NULL,
     "blocked: URL http://allowed.com:99999/ has the port \"99999\"; a port is a number from 1 "
     "to 65535 without leading zeros"},
    {"http://allowed.com:00000000080/", NULL,
     "blocked: URL http://allowed.com:00000000080/ has the port \"00000000080\"; a port is a "
     "number from 1 to 65535 without leading zeros"},
    {"http://allowed.com:4294967376/", NULL,
     "blocked: URL http://allowed.com:4294967376/ has the port \"4294967376\"; a port is a "
     "number from 1 to 65535 without leading zeros"},
    {"http://allowed.com:80:evil.com/", NULL,
     "blocked: URL http://allowed.com:80:evil.com/ has more than one ':' in the host and port; "
     "put IPv6 addresses in brackets"},
    {"http://[::1%25lo]/", NULL,
     "blocked: invalid URL http://[::1%25lo]/: the IPv6 host \"::1%25lo\" has a zone id (the "
     "part after '%'); zone ids are not allowed"},
    {"http://1.2.3.4.5/", NULL,
     "blocked: invalid URL http://1.2.3.4.5/: the host \"1.2.3.4.5\" ends in a number but is not "
     "a valid IPv4 address"},
    {"http://0x100000000/", NULL,
     "blocked: invalid URL http://0x100000000/: the host \"0x100000000\" ends in a number but is "
     "not a valid IPv4 address"},
    {"http://127.0.0.1.0x1g/", NULL, NOT_LISTED("127.0.0.1.0x1g")},
};

static void url_stage_tricks(void **state)
{
    (void)state;
    RUN(url_tricks, named_list, false);
}

/* IP literals in disguise, with an allowlist of "*" so that only the address
 * policy stands in the way (the reference's own tests do the same). */
static const struct attempt literals[] = {
    {"http://127.0.0.1/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://2130706433/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://0177.0.0.1/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://0x7f.0.0.1/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://0x7F000001/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://017700000001/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://127.1/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://0x7f.1/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://0177.0x0.1/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://127.0.0.1./", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://0x7f.1./", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://127.000.000.001/", NULL, "blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
    {"http://0/", NULL, "blocked: 0.0.0.0 is the unspecified address (0.0.0.0/32)"},
    {"http://0.0.0.0:8080/", NULL, "blocked: 0.0.0.0 is the unspecified address (0.0.0.0/32)"},
    {"http://0.1.2.3/", NULL, "blocked: 0.1.2.3 is a \"this network\" address (0.0.0.0/8)"},
    {"http://10.0.0.5/", NULL, "blocked: 10.0.0.5 is a private address (10.0.0.0/8)"},
    {"http://167772165/", NULL, "blocked: 10.0.0.5 is a private address (10.0.0.0/8)"},
    {"http://172.16.0.1/", NULL, "blocked: 172.16.0.1 is a private address (172.16.0.0/12)"},
    {"http://192.168.1.1/", NULL, "blocked: 192.168.1.1 is a private address (192.168.0.0/16)"},
    {"http://169.254.169.254/latest/meta-data/", NULL,
     "blocked: 169.254.169.254 is the link-local cloud metadata address (169.254.169.254/32)"},
    {"http://0xa9fea9fe/", NULL,
     "blocked: 169.254.169.254 is the link-local cloud metadata address (169.254.169.254/32)"},
    {"http://169.254.43518/", NULL,
     "blocked: 169.254.169.254 is the link-local cloud metadata address (169.254.169.254/32)"},
    {"http://100.64.0.1/", NULL,
     "blocked: 100.64.0.1 is a carrier-grade NAT (shared) address (100.64.0.0/10)"},
    {"http://198.18.0.1/", NULL, "blocked: 198.18.0.1 is a benchmarking address (198.18.0.0/15)"},
    {"http://192.88.99.1/", NULL,
     "blocked: 192.88.99.1 is a deprecated 6to4 relay address (192.88.99.0/24)"},
    {"http://224.0.0.1/", NULL, "blocked: 224.0.0.1 is a multicast address (224.0.0.0/4)"},
    {"http://240.0.0.1/", NULL, "blocked: 240.0.0.1 is a reserved address (240.0.0.0/4)"},
    {"http://255.255.255.255/", NULL,
     "blocked: 255.255.255.255 is the broadcast address (255.255.255.255/32)"},
    {"http://[::]/", NULL, "blocked: :: is the unspecified address (::/128)"},
    {"http://[::1]:9800/", NULL, "blocked: ::1 is a loopback address (::1/128)"},
    {"http://[0:0:0:0:0:0:0:1]/", NULL, "blocked: ::1 is a loopback address (::1/128)"},
    {"http://[::ffff:127.0.0.1]/", NULL,
     "blocked: ::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback address "
     "(127.0.0.0/8)"},
    {"http://[::ffff:7f00:1]/", NULL,
     "blocked: ::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback address "
     "(127.0.0.0/8)"},
    {"http://[::FFFF:a9fe:a9fe]/", NULL,
     "blocked: ::ffff:169.254.169.254 is an IPv4-mapped form of 169.254.169.254, the link-local "
     "cloud metadata address (169.254.169.254/32)"},
    {"http://[::127.0.0.1]/", NULL,
     "blocked: ::127.0.0.1 is an IPv4-compatible address (deprecated) (::/96)"},
    {"http://[64:ff9b::127.0.0.1]/", NULL,
     "blocked: 64:ff9b::7f00:1 is a NAT64 address (64:ff9b::/96)"},
    {"http://[64:ff9b::8.8.8.8]/", NULL,
     "blocked: 64:ff9b::808:808 is a NAT64 address (64:ff9b::/96)"},
    {"http://[64:ff9b:1::a00:1]/", NULL,
     "blocked: 64:ff9b:1::a00:1 is a local-use NAT64 address (64:ff9b:1::/48)"},
    {"http://[2002:7f00:1::]/", NULL,
     "blocked: 2002:7f00:1:: is a 6to4 tunnel address "
     "(2002::/16)"},
    {"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", NULL,
     "blocked: 2001:0:4136:e378:8000:63bf:80ff:fffe is a Teredo tunnel address (2001::/32)"},
    {"http://[fe80::1]/", NULL, "blocked: fe80::1 is a link-local address (fe80::/10)"},
    {"http://[fd00:ec2::254]/", NULL,
     "blocked: fd00:ec2::254 is a unique-local (private) address (fc00::/7)"},
    {"http://[fec0::1]/", NULL,
     "blocked: fec0::1 is a site-local address (deprecated) "
     "(fec0::/10)"},
    {"http://[ff02::1]/", NULL, "blocked: ff02::1 is a multicast address (ff00::/8)"},
    {"http://[2001:db8::1]/", NULL,
     "blocked: 2001:db8::1 is a documentation address (2001:db8::/32)"},
    {"http://[100::1]/", NULL, "blocked: 100::1 is a discard-only address (100::/64)"},
    {"http://[::ffff:0:7f00:1]/", NULL,
     "blocked: ::ffff:0:7f00:1 is a reserved address (outside global unicast 2000::/3) (::/3)"},
    {"https://8.8.8.8/", NULL, NULL},
    {"https://[2606:4700:4700::1111]/", NULL, NULL},
    {"https://[::ffff:8.8.8.8]/", NULL, NULL},
};

static void ip_literals(void **state)
{
    (void)state;
    RUN(literals, star_list, true);
}

/* The same literals never even reach the address stage with a named list. */
static const struct attempt literals_vs_names[] = {
    {"http://2130706433/", NULL, NOT_LISTED("127.0.0.1")},
    {"http://[::ffff:7f00:1]/", NULL, NOT_LISTED("::ffff:127.0.0.1")},
    {"http://0xa9fea9fe/", NULL, NOT_LISTED("169.254.169.254")},
};

static void literals_need_listing(void **state)
{
    (void)state;
    RUN(literals_vs_names, named_list, false);
    /* "*" without proxy.allow_wildcard_all allows nothing. */
    static const struct attempt star_off[] = {
        {"http://evil.com/", NULL,
         NOT_LISTED("evil.com") " (its \"*\" entry is ignored because proxy.allow_wildcard_all "
                                "is false)"},
    };
    RUN(star_off, star_list, false);
}

/* Host confusion against a named allowlist. */
static const struct attempt confusion[] = {
    {"http://allowed.com.evil.com/", NULL, NOT_LISTED("allowed.com.evil.com")},
    {"http://evilallowed.com/", NULL, NOT_LISTED("evilallowed.com")},
    {"http://evil.com#@allowed.com", NULL, NOT_LISTED("evil.com")},
    {"http://evil.com?@allowed.com/", NULL, NOT_LISTED("evil.com")},
    {"http://evil.com/allowed.com", NULL, NOT_LISTED("evil.com")},
    {"http://evilexample.com/", NULL, NOT_LISTED("evilexample.com")},
    {"http://example.com.evil.com/", NULL, NOT_LISTED("example.com.evil.com")},
    {"http://localhost.evil.com/", NULL, NOT_LISTED("localhost.evil.com")},
    {"http://127.0.0.1.nip.io/", NULL, NOT_LISTED("127.0.0.1.nip.io")},
    {"HTTP://ALLOWED.COM./", "93.184.216.34", NULL},
    {"https://a.b.example.com/x?token=1", "93.184.216.34", NULL},
};

static void host_confusion(void **state)
{
    (void)state;
    RUN(confusion, named_list, false);
}

/* Allowed names that resolve somewhere they must not go (DNS rebinding,
 * wildcard DNS, split horizon). */
static const struct attempt resolved[] = {
    {"https://api.example.com/", "10.0.0.5",
     "blocked: api.example.com resolves to 10.0.0.5, a private address (10.0.0.0/8)"},
    {"http://localhost:9800/test", "127.0.0.1",
     "blocked: localhost resolves to 127.0.0.1, a loopback address (127.0.0.0/8)"},
    {"http://LOCALHOST./", "::1",
     "blocked: localhost resolves to ::1, a loopback address (::1/128)"},
    {"http://localtest.me/", "127.0.0.1",
     "blocked: localtest.me resolves to 127.0.0.1, a loopback address (127.0.0.0/8)"},
    {"http://metadata.google.internal/computeMetadata/v1/", "169.254.169.254",
     "blocked: metadata.google.internal resolves to 169.254.169.254, the link-local cloud "
     "metadata address (169.254.169.254/32)"},
    {"http://rebind.example.com/", "::ffff:10.1.2.3",
     "blocked: rebind.example.com resolves to ::ffff:10.1.2.3, an IPv4-mapped form of 10.1.2.3, "
     "a private address (10.0.0.0/8)"},
    {"http://nat64.example.com/", "64:ff9b::a9fe:a9fe",
     "blocked: nat64.example.com resolves to 64:ff9b::a9fe:a9fe, a NAT64 address "
     "(64:ff9b::/96)"},
    {"http://teredo.example.com/", "2001::1",
     "blocked: teredo.example.com resolves to 2001::1, a Teredo tunnel address (2001::/32)"},
    {"http://sixtofour.example.com/", "2002:a9fe:a9fe::1",
     "blocked: sixtofour.example.com resolves to 2002:a9fe:a9fe::1, a 6to4 tunnel address "
     "(2002::/16)"},
    {"http://cgnat.example.com/", "100.100.100.200",
     "blocked: cgnat.example.com resolves to 100.100.100.200, a carrier-grade NAT (shared) "
     "address (100.64.0.0/10)"},
    {"http://ula.example.com/", "fd00::1",
     "blocked: ula.example.com resolves to fd00::1, a unique-local (private) address "
     "(fc00::/7)"},
    {"http://zero.example.com/", "0.0.0.0",
     "blocked: zero.example.com resolves to 0.0.0.0, the unspecified address (0.0.0.0/32)"},
    {"http://any6.example.com/",
     "::", "blocked: any6.example.com resolves to ::, the unspecified address (::/128)"},
    {"http://public.example.com/", "93.184.216.34", NULL},
    {"http://public6.example.com/", "2606:2800:220:1:248:1893:25c8:1946", NULL},
};

static void resolved_addresses(void **state)
{
    (void)state;
    RUN(resolved, named_list, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_stage_tricks),      cmocka_unit_test(ip_literals),
        cmocka_unit_test(literals_need_listing), cmocka_unit_test(host_confusion),
        cmocka_unit_test(resolved_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
