#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>

#include "http/peers.h"

static struct cb_peer_key v4(const char *addr)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1234)};
    struct cb_peer_key k;
    inet_pton(AF_INET, addr, &in.sin_addr);
    assert_true(cb__peer_key_from((struct sockaddr *)&in, sizeof(in), &k));
    return k;
}

static struct cb_peer_key v6(const char *addr)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(99)};
    struct cb_peer_key k;
    inet_pton(AF_INET6, addr, &in6.sin6_addr);
    assert_true(cb__peer_key_from((struct sockaddr *)&in6, sizeof(in6), &k));
    return k;
}

static void caps_each_address(void **state)
{
    (void)state;
    struct cb_peers *p = cb_peers_new(2);
    struct cb_peer_key a = v4("127.0.0.2");
    struct cb_peer_key b = v4("127.0.0.1");
    assert_true(cb__peers_acquire(p, &a));
    assert_true(cb__peers_acquire(p, &a));
    assert_false(cb__peers_acquire(p, &a));
    assert_int_equal(cb__peers_count(p, &a), 2);
    assert_true(cb__peers_acquire(p, &b));
    cb__peers_release(p, &a);
    assert_true(cb__peers_acquire(p, &a));
    cb__peers_release(p, &a);
    cb__peers_release(p, &a);
    cb__peers_release(p, &b);
    assert_int_equal(cb__peers_count(p, &a), 0);
    assert_int_equal(cb__peers_count(p, &b), 0);
    cb__peers_free(p);
}

static void zero_means_no_cap(void **state)
{
    (void)state;
    struct cb_peers *p = cb_peers_new(0);
    struct cb_peer_key a = v4("10.0.0.1");
    for (int i = 0; i < 10000; i++)
        assert_true(cb__peers_acquire(p, &a));
    assert_int_equal(cb__peers_count(p, &a), 10000);
    cb__peers_free(p);
}

static void keys_v4_mapped_and_v6_prefixes(void **state)
{
    (void)state;
    struct cb_peer_key a = v4("192.0.2.7");
    struct cb_peer_key m = v6("::ffff:192.0.2.7");
    struct cb_peer_key other = v6("::ffff:192.0.2.8");
    assert_memory_equal(a.addr, m.addr, 16);
    assert_memory_not_equal(a.addr, other.addr, 16);
    /* One /64 is one client; the next /64 is another. */
    struct cb_peer_key x = v6("2001:db8:1:2::1");
    struct cb_peer_key y = v6("2001:db8:1:2:ffff:1:2:3");
    struct cb_peer_key z = v6("2001:db8:1:3::1");
    assert_memory_equal(x.addr, y.addr, 16);
    assert_memory_not_equal(x.addr, z.addr, 16);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct cb_peer_key k;
    assert_false(cb__peer_key_from((struct sockaddr *)&un, sizeof(un), &k));
}

struct race {
    struct cb_peers *p;
    struct cb_peer_key k;
    int got;
};

static void *grab(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 1000; i++)
        r->got += cb__peers_acquire(r->p, &r->k);
    return NULL;
}

static void holds_the_cap_across_threads(void **state)
{
    (void)state;
    struct cb_peers *p = cb_peers_new(1500);
    struct race r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){p, v4("127.0.0.9"), 0};
        pthread_create(&t[i], NULL, grab, &r[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += r[i].got;
    }
    assert_int_equal(total, 1500);
    assert_int_equal(cb__peers_count(p, &r[0].k), 1500);
    cb__peers_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caps_each_address),
        cmocka_unit_test(zero_means_no_cap),
        cmocka_unit_test(keys_v4_mapped_and_v6_prefixes),
        cmocka_unit_test(holds_the_cap_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
