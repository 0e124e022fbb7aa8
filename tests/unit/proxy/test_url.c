#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/url.h"

struct want {
    const char *in;
    enum cb_proxy_scheme scheme;
    const char *host;
    uint16_t port;
    const char *target;
    const char *url;
    const char *redacted;
};

static void check_ok(const struct want *w)
{
    struct cb_proxy_url u;
    struct cb_error err = {0};
    int r = cb__proxy_url_parse(w->in, strlen(w->in), &u, &err);
    if (r != 0)
        fail_msg("%s: %s", w->in, err.msg);
    assert_int_equal(u.scheme, w->scheme);
    assert_string_equal(u.host.name, w->host);
    assert_int_equal(u.port, w->port);
    assert_string_equal(u.target, w->target);
    assert_string_equal(u.url, w->url);
    assert_string_equal(u.redacted, w->redacted);
    cb__proxy_url_free(&u);
}

static void check_bad(const char *in, size_t len, const char *msg)
{
    struct cb_proxy_url u;
    struct cb_error err = {0};
    assert_int_equal(cb__proxy_url_parse(in, len, &u, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    assert_null(u.url);
    cb__proxy_url_free(&u);
}

static void parses_and_canonicalises(void **state)
{
    (void)state;
    static const struct want cases[] = {
        {"https://api.github.com/repos?x=1", CB_PROXY_HTTPS, "api.github.com", 443, "/repos?x=1",
         "https://api.github.com/repos?x=1", "https://api.github.com/repos?x=[REDACTED]"},
        {"HTTP://EXAMPLE.COM./A", CB_PROXY_HTTP, "example.com", 80, "/A", "http://example.com/A",
         "http://example.com/A"},
        {"HtTpS://x.org:443", CB_PROXY_HTTPS, "x.org", 443, "/", "https://x.org/",
         "https://x.org/"},
        {"http://x.org:8080/p#frag", CB_PROXY_HTTP, "x.org", 8080, "/p", "http://x.org:8080/p",
         "http://x.org:8080/p"},
        {"http://x.org:/", CB_PROXY_HTTP, "x.org", 80, "/", "http://x.org/", "http://x.org/"},
        {"https://x.org:80/", CB_PROXY_HTTPS, "x.org", 80, "/", "https://x.org:80/",
         "https://x.org:80/"},
        {"http://x.org?q", CB_PROXY_HTTP, "x.org", 80, "/?q", "http://x.org/?q",
         "http://x.org/?q=[REDACTED]"},
        {"http://x.org/a/../b/./c", CB_PROXY_HTTP, "x.org", 80, "/b/c", "http://x.org/b/c",
         "http://x.org/b/c"},
        {"http://x.org/%7Euser?a=%20&&b=c=d&", CB_PROXY_HTTP, "x.org", 80, "/%7Euser?a=%20&&b=c=d&",
         "http://x.org/%7Euser?a=%20&&b=c=d&", "http://x.org/%7Euser?a=[REDACTED]&b=[REDACTED]"},
        {"http://[2001:DB8::1]:81/", CB_PROXY_HTTP, "2001:db8::1", 81, "/",
         "http://[2001:db8::1]:81/", "http://[2001:db8::1]:81/"},
        {"http://0x7f.1/", CB_PROXY_HTTP, "127.0.0.1", 80, "/", "http://127.0.0.1/",
         "http://127.0.0.1/"},
        {"http://127.0.0.1./", CB_PROXY_HTTP, "127.0.0.1", 80, "/", "http://127.0.0.1/",
         "http://127.0.0.1/"},
        {"http://evil.com#@allowed.com", CB_PROXY_HTTP, "evil.com", 80, "/", "http://evil.com/",
         "http://evil.com/"},
        {"http://a.com?@b.com", CB_PROXY_HTTP, "a.com", 80, "/?@b.com", "http://a.com/?@b.com",
         "http://a.com/?@b.com=[REDACTED]"},
        {"https://xn--bcher-kva.de/", CB_PROXY_HTTPS, "xn--bcher-kva.de", 443, "/",
         "https://xn--bcher-kva.de/", "https://xn--bcher-kva.de/"},
        {"http://x.org:65535/", CB_PROXY_HTTP, "x.org", 65535, "/", "http://x.org:65535/",
         "http://x.org:65535/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_ok(&cases[i]);
}

static void rejects_schemes(void **state)
{
    (void)state;
    check_bad("ftp://x/", 8,
              "blocked: URL ftp://x/ uses the scheme \"ftp\"; only http and https "
              "are allowed");
    check_bad("evil.com/x", 10,
              "blocked: URL evil.com/x has no scheme; write it as "
              "https://host/path");
    check_bad("//evil.com/", 11,
              "blocked: URL //evil.com/ has no scheme; write it as "
              "https://host/path");
    check_bad("http:evil.com", 13,
              "blocked: URL http:evil.com must start with http:// followed "
              "by the host");
    check_bad("https:/evil.com", 15,
              "blocked: URL https:/evil.com must start with https:// "
              "followed by the host");
}

static void rejects_bytes(void **state)
{
    (void)state;
    check_bad("", 0, "blocked: the URL is empty");
    check_bad("http://x/a b", 12,
              "blocked: URL http://x/a b contains a space (at byte 10); "
              "percent-encode it as %20");
    check_bad("http://x/\x7f", 10,
              "blocked: URL http://x/\\x7f contains a control character "
              "(byte 0x7f at byte 9); percent-encode it");
    check_bad("http://x/\0", 10,
              "blocked: URL http://x/\\x00 contains a control character "
              "(byte 0x00 at byte 9); percent-encode it");
    check_bad("http://x/\xc3\xa9", 11,
              "blocked: URL http://x/\\xc3\\xa9 contains a non-ASCII byte (at byte 9); "
              "percent-encode the path and query, and write international host names in "
              "punycode (xn--...)");
    check_bad("http://x\\y/", 11,
              "blocked: URL http://x\\x5cy/ contains a backslash (at byte 8); "
              "use '/' or percent-encode it as %5C");
}

static void rejects_long_urls(void **state)
{
    (void)state;
    size_t n = CB_PROXY_URL_MAX + 1;
    char *s = malloc(n);
    memcpy(s, "http://x/", 9);
    memset(s + 9, 'a', n - 9);
    check_bad(s, n, "blocked: the URL is 8193 bytes long; the limit is 8192");
    /* Exactly at the limit is fine. */
    struct cb_proxy_url u;
    assert_int_equal(cb__proxy_url_parse(s, n - 1, &u, NULL), 0);
    assert_int_equal(strlen(u.url), n - 1);
    cb__proxy_url_free(&u);
    free(s);
}

static void rejects_authority_tricks(void **state)
{
    (void)state;
    check_bad("https://user:pw@x/", 18,
              "blocked: URL https://***@x/ contains credentials "
              "(userinfo is not allowed); remove the part before '@' "
              "from the host");
    check_bad("http://@x/", 10,
              "blocked: URL http://***@x/ contains credentials (userinfo is "
              "not allowed); remove the part before '@' from the host");
    check_bad("http:///x", 9, "blocked: URL http:///x has an empty host");
    check_bad("http://", 7, "blocked: URL http:// has an empty host");
    check_bad("http://:80/", 11, "blocked: URL http://:80/ has an empty host");
    check_bad("http://x:0/", 11,
              "blocked: URL http://x:0/ has the port \"0\"; a port is a number "
              "from 1 to 65535 without leading zeros");
    check_bad("http://x:080/", 13,
              "blocked: URL http://x:080/ has the port \"080\"; a port is a "
              "number from 1 to 65535 without leading zeros");
    check_bad("http://x:65536/", 15,
              "blocked: URL http://x:65536/ has the port \"65536\"; a port "
              "is a number from 1 to 65535 without leading zeros");
    check_bad("http://x:+80/", 13,
              "blocked: URL http://x:+80/ has the port \"+80\"; a port is a "
              "number from 1 to 65535 without leading zeros");
    check_bad("http://x:80:80/", 15,
              "blocked: URL http://x:80:80/ has more than one ':' in the "
              "host and port; put IPv6 addresses in brackets");
    check_bad("http://[::1/", 12,
              "blocked: URL http://[::1/ has an IPv6 host without its closing "
              "']'");
    check_bad("http://[::1]x/", 14,
              "blocked: URL http://[::1]x/ has text after the IPv6 host's "
              "']'");
    check_bad("http://x_y.com/", 15,
              "blocked: invalid URL http://x_y.com/: the host \"x_y.com\" "
              "contains the character '_', but a host name may only "
              "contain letters, digits, '-' and '.'");
}

/* A URL that is refused is quoted in the message redacted, whether it
 * parses or not: the fragment dropped, userinfo as "***", each query value
 * as "[REDACTED]", an empty query dropped. */
static void redacts_refused_urls(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"https://u:p@x/a?t=1&u=2#f",
         "blocked: URL https://***@x/a?t=[REDACTED]&u=[REDACTED] contains credentials"},
        {"/execute/echo", "blocked: URL /execute/echo has no scheme"},
        {"not a url?secret=1", "blocked: URL not a url?secret=[REDACTED] contains a space"},
        {"http://x:0/?", "blocked: URL http://x:0/ has the port"},
        {"http://a@b@c/", "blocked: URL http://***@c/ contains credentials"},
        {"#f", "blocked: URL  has no scheme"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cb_proxy_url u;
        struct cb_error err = {0};
        assert_int_equal(cb__proxy_url_parse(cases[i][0], strlen(cases[i][0]), &u, &err), -EINVAL);
        if (strncmp(err.msg, cases[i][1], strlen(cases[i][1])) != 0)
            fail_msg("%s: got \"%s\", want it to start \"%s\"", cases[i][0], err.msg, cases[i][1]);
        cb__proxy_url_free(&u);
    }
}

static void scheme_names(void **state)
{
    (void)state;
    assert_string_equal(cb__proxy_scheme_name(CB_PROXY_HTTP), "http");
    assert_string_equal(cb__proxy_scheme_name(CB_PROXY_HTTPS), "https");
    cb__proxy_url_free(NULL);
}

static void messages_are_bounded(void **state)
{
    (void)state;
    char s[4000];
    memcpy(s, "gopher://", 9);
    memset(s + 9, 'a', sizeof(s) - 9);
    struct cb_proxy_url u;
    struct cb_error err = {0};
    assert_int_equal(cb__proxy_url_parse(s, sizeof(s), &u, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "aaa... uses the scheme \"gopher\""));
    assert_true(strlen(err.msg) < 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_and_canonicalises),
        cmocka_unit_test(rejects_schemes),
        cmocka_unit_test(rejects_bytes),
        cmocka_unit_test(rejects_long_urls),
        cmocka_unit_test(rejects_authority_tricks),
        cmocka_unit_test(redacts_refused_urls),
        cmocka_unit_test(scheme_names),
        cmocka_unit_test(messages_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
