/* The proxy's lookup cache (proxy/resolve.c) with a counting lookup in
 * place of getaddrinfo: a name is looked up once per lifetime, a failure
 * is not kept, an expired answer is looked up again, the table keeps to
 * its bound, and threads share it safely. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/resolve.h"

static atomic_uint lookups;
static atomic_uint last_octet;

/* "fail..." names do not resolve; the others get 10.0.0.<a counter>. */
static int counting(const char *name, struct cb_proxy_addrs *out)
{
    atomic_fetch_add(&lookups, 1);
    if (strncmp(name, "fail", 4) == 0)
        return EAI_NONAME;
    struct sockaddr_in *a = (struct sockaddr_in *)&out->addr[0];
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(0x0a000000u | (atomic_fetch_add(&last_octet, 1) & 0xff));
    out->len[0] = sizeof(*a);
    out->n = 1;
    return 0;
}

static uint32_t addr_of(const struct cb_proxy_addrs *a)
{
    return ntohl(((const struct sockaddr_in *)&a->addr[0])->sin_addr.s_addr);
}

static int setup(void **state)
{
    (void)state;
    atomic_store(&lookups, 0);
    atomic_store(&last_octet, 1);
    return 0;
}

static void a_name_is_looked_up_once_while_fresh(void **state)
{
    (void)state;
    struct cb_proxy_resolver *r = cb__proxy_resolver_new(200, counting);
    struct cb_proxy_addrs a, b;
    assert_int_equal(cb__proxy_resolve(r, "up.example", &a), 0);
    assert_int_equal(cb__proxy_resolve(r, "up.example", &b), 0);
    assert_int_equal(atomic_load(&lookups), 1);
    assert_int_equal(addr_of(&a), addr_of(&b));
    assert_int_equal(cb__proxy_resolve(r, "other.example", &b), 0);
    assert_int_equal(atomic_load(&lookups), 2);
    usleep(250000); /* past its lifetime: looked up again, the new answer */
    assert_int_equal(cb__proxy_resolve(r, "up.example", &b), 0);
    assert_int_equal(atomic_load(&lookups), 3);
    assert_int_not_equal(addr_of(&a), addr_of(&b));
    cb__proxy_resolver_free(r);
}

static void a_failure_is_not_kept(void **state)
{
    (void)state;
    struct cb_proxy_resolver *r = cb__proxy_resolver_new(60000, counting);
    struct cb_proxy_addrs a;
    assert_int_equal(cb__proxy_resolve(r, "fail.example", &a), EAI_NONAME);
    assert_int_equal(cb__proxy_resolve(r, "fail.example", &a), EAI_NONAME);
    assert_int_equal(atomic_load(&lookups), 2);
    cb__proxy_resolver_free(r);
}

/* Past the bound, fresh names still resolve (and are kept); the ones kept
 * before may be dropped, never answered wrongly. */
static void the_table_keeps_to_its_bound(void **state)
{
    (void)state;
    struct cb_proxy_resolver *r = cb__proxy_resolver_new(60000, counting);
    struct cb_proxy_addrs a, b;
    char name[32];
    for (unsigned i = 0; i < 3 * CB_PROXY_RESOLVE_MAX_NAMES; i++) {
        snprintf(name, sizeof(name), "n%u.example", i);
        assert_int_equal(cb__proxy_resolve(r, name, &a), 0);
        assert_int_equal(cb__proxy_resolve(r, name, &b), 0);
        assert_int_equal(addr_of(&a), addr_of(&b));
    }
    assert_int_equal(atomic_load(&lookups), 3 * CB_PROXY_RESOLVE_MAX_NAMES);
    cb__proxy_resolver_free(r);
}

static void *hammer(void *arg)
{
    struct cb_proxy_resolver *r = arg;
    char name[32];
    struct cb_proxy_addrs a;
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "h%u.example", i % 300);
        if (cb__proxy_resolve(r, name, &a) != 0 || a.n != 1)
            return (void *)1;
    }
    return NULL;
}

static void threads_share_it(void **state)
{
    (void)state;
    struct cb_proxy_resolver *r = cb__proxy_resolver_new(60000, counting);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, r), 0);
    for (int i = 0; i < 4; i++) {
        void *rc = NULL;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    assert_true(atomic_load(&lookups) < 4 * 300 + 1);
    cb__proxy_resolver_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(a_name_is_looked_up_once_while_fresh, setup),
        cmocka_unit_test_setup(a_failure_is_not_kept, setup),
        cmocka_unit_test_setup(the_table_keeps_to_its_bound, setup),
        cmocka_unit_test_setup(threads_share_it, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
