#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/allowlist.h"

#define WHO "tool web_fetch"

static struct cb_proxy_allowlist *make(char **entries, size_t n)
{
    struct cb_proxy_allowlist *l = NULL;
    struct cb_error err = {0};
    if (cb_proxy_allowlist_new(entries, n, &l, &err) != 0)
        fail_msg("%s", err.msg);
    return l;
}

static int chk(const struct cb_proxy_allowlist *l, const char *host, bool all, struct cb_error *err)
{
    return cb__proxy_allowlist_check(l, host, strlen(host), all, WHO, err);
}

static void exact_hosts(void **state)
{
    (void)state;
    char *e[] = {"api.github.com", "Example.ORG.", "127.0.0.1", "[::1]", "2001:db8::1"};
    struct cb_proxy_allowlist *l = make(e, 5);
    struct cb_error err = {0};
    assert_int_equal(chk(l, "api.github.com", false, &err), 0);
    assert_int_equal(chk(l, "API.GitHub.com.", false, &err), 0);
    assert_int_equal(chk(l, "example.org", false, &err), 0);
    assert_int_equal(chk(l, "0x7f.1", false, &err), 0);
    assert_int_equal(chk(l, "2130706433", false, &err), 0);
    assert_int_equal(chk(l, "::1", false, &err), 0);
    assert_int_equal(chk(l, "[0:0::1]", false, &err), 0);
    assert_int_equal(chk(l, "2001:DB8:0::1", false, &err), 0);
    assert_int_equal(chk(l, "github.com", false, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: host github.com is not in the allowlist for " WHO);
    assert_int_equal(chk(l, "x.api.github.com", false, &err), -EACCES);
    assert_int_equal(chk(l, "api.github.com.evil.com", false, &err), -EACCES);
    assert_int_equal(chk(l, "127.0.0.2", false, &err), -EACCES);
    cb_proxy_allowlist_free(l);
}

static void wildcard_domains(void **state)
{
    (void)state;
    char *e[] = {"*.github.com"};
    struct cb_proxy_allowlist *l = make(e, 1);
    struct cb_error err = {0};
    /* As in the reference: subdomains at any depth, and the apex. */
    assert_int_equal(chk(l, "api.github.com", false, &err), 0);
    assert_int_equal(chk(l, "a.b.c.github.com", false, &err), 0);
    assert_int_equal(chk(l, "github.com", false, &err), 0);
    assert_int_equal(chk(l, "GITHUB.COM.", false, &err), 0);
    assert_int_equal(chk(l, "evilgithub.com", false, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: host evilgithub.com is not in the allowlist for " WHO);
    assert_int_equal(chk(l, "raw.githubusercontent.com", false, &err), -EACCES);
    assert_int_equal(chk(l, "github.com.evil.com", false, &err), -EACCES);
    assert_int_equal(chk(l, "com", false, &err), -EACCES);
    assert_int_equal(chk(l, "hub.com", false, &err), -EACCES);
    cb_proxy_allowlist_free(l);
}

static void wildcard_never_matches_ip(void **state)
{
    (void)state;
    char *e[] = {"*.example.com", "*.0.127.in-addr.arpa"};
    struct cb_proxy_allowlist *l = make(e, 2);
    struct cb_error err = {0};
    assert_int_equal(chk(l, "anything.example.com", false, &err), 0);
    assert_int_equal(chk(l, "1.0.0.127.in-addr.arpa", false, &err), 0);
    assert_int_equal(chk(l, "127.0.0.1", false, &err), -EACCES);
    cb_proxy_allowlist_free(l);
}

static void star_needs_config(void **state)
{
    (void)state;
    char *e[] = {"*", "api.github.com"};
    struct cb_proxy_allowlist *l = make(e, 2);
    struct cb_error err = {0};
    assert_int_equal(chk(l, "evil.com", true, &err), 0);
    assert_int_equal(chk(l, "10.0.0.1", true, &err), 0);
    assert_int_equal(chk(l, "api.github.com", false, &err), 0);
    assert_int_equal(chk(l, "evil.com", false, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: host evil.com is not in the allowlist for " WHO
                                 " (its \"*\" entry is ignored because "
                                 "proxy.allow_wildcard_all is false)");
    cb_proxy_allowlist_free(l);
}

static void empty_denies_all(void **state)
{
    (void)state;
    struct cb_proxy_allowlist *l = make(NULL, 0);
    struct cb_error err = {0};
    assert_int_equal(chk(l, "example.com", true, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: host example.com is not in the allowlist for " WHO
                                 " (the allowlist is empty, so every host is denied)");
    cb_proxy_allowlist_free(l);
    /* No list at all (a tool without a manifest) is the same. */
    assert_int_equal(chk(NULL, "example.com", true, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: host example.com is not in the allowlist for " WHO
                                 " (the allowlist is empty, so every host is denied)");
    cb_proxy_allowlist_free(NULL);
}

static void unparseable_hosts_are_denied(void **state)
{
    (void)state;
    char *e[] = {"*.example.com"};
    struct cb_proxy_allowlist *l = make(e, 1);
    struct cb_error err = {0};
    assert_int_equal(chk(l, "a_b.example.com", false, &err), -EACCES);
    assert_int_equal(chk(l, "", false, &err), -EACCES);
    assert_string_equal(err.msg, "blocked: host \"\" is not in the allowlist for " WHO);
    assert_int_equal(cb__proxy_allowlist_check(l, "x\n.example.com", 14, false, NULL, &err),
                     -EACCES);
    assert_string_equal(err.msg, "blocked: host \"x\\x0a.example.com\" is not in the allowlist");
    assert_int_equal(cb__proxy_allowlist_check(l, "a.example.com\0evil", 18, false, NULL, &err),
                     -EACCES);
    cb_proxy_allowlist_free(l);
}

static void bad_entries(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"", "allowlist entry \"\": an entry is empty"},
        {"https://api.github.com", "allowlist entry \"https://api.github.com\": entries are host "
                                   "names, not URLs: write \"api.example.com\""},
        {"api.github.com/x", "allowlist entry \"api.github.com/x\": entries are host names, not "
                             "URLs: write \"api.example.com\""},
        {"api.github.com:443", "allowlist entry \"api.github.com:443\": entries are host names "
                               "without a port: drop the \":port\" (IPv6 addresses go in "
                               "brackets)"},
        {"localhost:8080", "allowlist entry \"localhost:8080\": entries are host names without a "
                           "port: drop the \":port\" (IPv6 addresses go in brackets)"},
        {"a*.com", "allowlist entry \"a*.com\": '*' may only appear alone or as the first label "
                   "of \"*.domain\""},
        {"*.*.com", "allowlist entry \"*.*.com\": '*' may only appear alone or as the first "
                    "label of \"*.domain\""},
        {"*.", "allowlist entry \"*.\": '*' may only appear alone or as the first label of "
               "\"*.domain\""},
        {"**", "allowlist entry \"**\": '*' may only appear alone or as the first label of "
               "\"*.domain\""},
        {"*.0.0.1", "allowlist entry \"*.0.0.1\": a wildcard needs a domain name after \"*.\", "
                    "not an IP address"},
        {"*.[::1]", "allowlist entry \"*.[::1]\": a wildcard needs a domain name after \"*.\", "
                    "not an IP address"},
        {"ex ample.com", "allowlist entry \"ex ample.com\": the host \"ex ample.com\" contains a "
                         "space or control character"},
        {"1.2.3.256", "allowlist entry \"1.2.3.256\": the host \"1.2.3.256\" ends in a number "
                      "but is not a valid IPv4 address"},
        {"[fe80::1%eth0]", "allowlist entry \"[fe80::1%eth0]\": the IPv6 host \"fe80::1%eth0\" "
                           "has a zone id (the part after '%'); zone ids are not allowed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *e[] = {"ok.com", (char *)cases[i][0]};
        struct cb_proxy_allowlist *l = (void *)1;
        struct cb_error err = {0};
        assert_int_equal(cb_proxy_allowlist_new(e, 2, &l, &err), -EINVAL);
        assert_null(l);
        assert_string_equal(err.msg, cases[i][1]);
    }
}

/* "*.com" and its kind allow every host registered under a public suffix:
 * like "*", they count only with allow_wildcard_all. */
static void public_suffix_wildcards_need_config(void **state)
{
    (void)state;
    char *e[] = {"*.com", "*.co.uk", "*.github.io", "*.example.com"};
    struct cb_proxy_allowlist *l = make(e, 4);
    struct cb_error err = {0};
    assert_int_equal(chk(l, "evil.com", false, &err), -EACCES);
    assert_non_null(strstr(err.msg, "wildcards on a public suffix"));
    assert_int_equal(chk(l, "bbc.co.uk", false, &err), -EACCES);
    assert_int_equal(chk(l, "someone.github.io", false, &err), -EACCES);
    assert_int_equal(chk(l, "api.example.com", false, &err), 0);
    assert_int_equal(chk(l, "evil.com", true, &err), 0);
    assert_int_equal(chk(l, "someone.github.io", true, &err), 0);
    cb_proxy_allowlist_free(l);
}

/* The validator registration uses: the same grammar as the proxy's list,
 * plus "*" and public-suffix wildcards only with allow_wildcard_all. */
static void entry_check(void **state)
{
    (void)state;
    static const char *const good[] = {
        "api.example.com", "API.Example.com", "*.example.com",
        "127.0.0.1",       "[2001:db8::1]",   "2001:db8::1",
        "[::1]",           "*.internal",      "xn--bcher-kva.example"};
    static const char *const bad[] = {"*.com",        "*.co.uk",   "*.github.io", "*",
                                      "http://a.com", "a.com:443", "[::1]:443",   "*.1.2.3.4",
                                      "a*.com",       "",          "a b.com"};
    struct cb_error err = {0};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (cb_proxy_allowlist_entry_check(good[i], strlen(good[i]), false, &err) != 0)
            fail_msg("%s refused: %s", good[i], err.msg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cb_proxy_allowlist_entry_check(bad[i], strlen(bad[i]), false, &err) != -EINVAL)
            fail_msg("%s accepted", bad[i]);
    assert_int_equal(cb_proxy_allowlist_entry_check("*.com", 5, false, &err), -EINVAL);
    assert_string_equal(err.msg, "allowlist entry \"*.com\": a wildcard on a public suffix "
                                 "allows every host registered under it; set "
                                 "proxy.allow_wildcard_all = true to permit it");
    assert_int_equal(cb_proxy_allowlist_entry_check("*.com", 5, true, &err), 0);
    assert_int_equal(cb_proxy_allowlist_entry_check("*", 1, true, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_hosts),
        cmocka_unit_test(wildcard_domains),
        cmocka_unit_test(wildcard_never_matches_ip),
        cmocka_unit_test(star_needs_config),
        cmocka_unit_test(empty_denies_all),
        cmocka_unit_test(unparseable_hosts_are_denied),
        cmocka_unit_test(bad_entries),
        cmocka_unit_test(public_suffix_wildcards_need_config),
        cmocka_unit_test(entry_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
