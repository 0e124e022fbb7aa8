/* The fake-IP pool: addresses per name, names per address, LRU reuse. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "egress/internal.h"
#include "egress/pool.h"

static int addr_of(struct cb_egress_pool *p, const char *name, char v4[16], char v6[48])
{
    struct in_addr a;
    struct in6_addr a6;
    int rc = cb__egress_pool_addr(p, name, strlen(name), &a, &a6);
    if (rc == 0) {
        inet_ntop(AF_INET, &a, v4, 16);
        inet_ntop(AF_INET6, &a6, v6, 48);
    }
    return rc;
}

/* The name behind a textual address, or the error. */
static int name_of(struct cb_egress_pool *p, const char *addr, char *out, size_t cap)
{
    struct sockaddr_storage ss = {0};
    if (strchr(addr, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(443);
        assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
    }
    return cb_egress_pool_name(p, (struct sockaddr *)&ss, out, cap);
}

static void capacity_bounds(void **state)
{
    (void)state;
    assert_null(cb_egress_pool_new(0));
    assert_null(cb_egress_pool_new(CB_EGRESS_POOL_MAX + 1));
    struct cb_egress_pool *p = cb_egress_pool_new(CB_EGRESS_POOL_MAX);
    assert_non_null(p);
    cb_egress_pool_free(p);
    cb_egress_pool_free(NULL);
}

static void names_get_stable_addresses(void **state)
{
    (void)state;
    struct cb_egress_pool *p = cb_egress_pool_new(8);
    char a4[16], a6[48], b4[16], b6[48], name[256];
    assert_int_equal(addr_of(p, "api.example.com", a4, a6), 0);
    assert_string_equal(a4, "198.18.0.1");
    assert_string_equal(a6, "fd63:6c61:7762:6f78::1");
    assert_int_equal(addr_of(p, "pypi.org", b4, b6), 0);
    assert_string_equal(b4, "198.18.0.2");
    assert_string_equal(b6, "fd63:6c61:7762:6f78::2");
    assert_int_equal(addr_of(p, "api.example.com", b4, b6), 0);
    assert_string_equal(b4, a4);
    assert_int_equal(name_of(p, "198.18.0.2", name, sizeof(name)), 8);
    assert_string_equal(name, "pypi.org");
    assert_int_equal(name_of(p, "fd63:6c61:7762:6f78::1", name, sizeof(name)), 15);
    assert_string_equal(name, "api.example.com");
    cb_egress_pool_free(p);
}

static void unknown_addresses(void **state)
{
    (void)state;
    struct cb_egress_pool *p = cb_egress_pool_new(8);
    char a4[16], a6[48], name[256];
    assert_int_equal(addr_of(p, "one.example", a4, a6), 0);
    const char *other[] = {"198.18.0.0",
                           "198.18.0.2",
                           "198.17.255.255",
                           "198.20.0.1",
                           "127.0.0.1",
                           "203.0.113.5",
                           "fd63:6c61:7762:6f78::",
                           "fd63:6c61:7762:6f78::2",
                           "fd63:6c61:7762:6f78:1::1",
                           "fd63:6c61:7762:6f79::1",
                           "::1",
                           "::ffff:198.18.0.1"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(name_of(p, other[i], name, sizeof(name)), -ENOENT);
    assert_int_equal(name_of(p, "198.18.0.1", name, 5), -ENOSPC);
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(cb_egress_pool_name(p, &un, name, sizeof(name)), -ENOENT);
    cb_egress_pool_free(p);
}

static void bad_names(void **state)
{
    (void)state;
    struct cb_egress_pool *p = cb_egress_pool_new(8);
    struct in_addr a;
    struct in6_addr a6;
    char longn[300];
    memset(longn, 'a', sizeof(longn));
    assert_int_equal(cb__egress_pool_addr(p, "", 0, &a, &a6), -EINVAL);
    assert_int_equal(cb__egress_pool_addr(p, longn, 254, &a, &a6), -EINVAL);
    assert_int_equal(cb__egress_pool_addr(p, longn, 253, &a, &a6), 0);
    cb_egress_pool_free(p);
}

/* Full: the least recently used name, by either lookup, gives its slot. */
static void lru_reuse(void **state)
{
    (void)state;
    struct cb_egress_pool *p = cb_egress_pool_new(3);
    char a4[16], a6[48], name[256];
    assert_int_equal(addr_of(p, "a.example", a4, a6), 0); /* .1 */
    assert_int_equal(addr_of(p, "b.example", a4, a6), 0); /* .2 */
    assert_int_equal(addr_of(p, "c.example", a4, a6), 0); /* .3 */
    /* a by name, b by address: c is now the oldest. */
    assert_int_equal(addr_of(p, "a.example", a4, a6), 0);
    assert_int_equal(name_of(p, "198.18.0.2", name, sizeof(name)), 9);
    assert_int_equal(addr_of(p, "d.example", a4, a6), 0);
    assert_string_equal(a4, "198.18.0.3");
    assert_int_equal(name_of(p, "198.18.0.3", name, sizeof(name)), 9);
    assert_string_equal(name, "d.example");
    /* c comes back in the slot of the oldest now, a. */
    assert_int_equal(addr_of(p, "c.example", a4, a6), 0);
    assert_string_equal(a4, "198.18.0.1");
    assert_int_equal(name_of(p, "198.18.0.2", name, sizeof(name)), 9);
    assert_string_equal(name, "b.example");
    cb_egress_pool_free(p);
}

/* Many names through a small pool: each lookup agrees with the reverse. */
static void churn(void **state)
{
    (void)state;
    struct cb_egress_pool *p = cb_egress_pool_new(64);
    for (int i = 0; i < 5000; i++) {
        char n[32], a4[16], a6[48], back[256];
        snprintf(n, sizeof(n), "h%d.example", (i * 7919) % 300);
        assert_int_equal(addr_of(p, n, a4, a6), 0);
        assert_int_equal(name_of(p, a4, back, sizeof(back)), (int)strlen(n));
        assert_string_equal(back, n);
        assert_int_equal(name_of(p, a6, back, sizeof(back)), (int)strlen(n));
        assert_string_equal(back, n);
    }
    cb_egress_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capacity_bounds),   cmocka_unit_test(names_get_stable_addresses),
        cmocka_unit_test(unknown_addresses), cmocka_unit_test(bad_names),
        cmocka_unit_test(lru_reuse),         cmocka_unit_test(churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
