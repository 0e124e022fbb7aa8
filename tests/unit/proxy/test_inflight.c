/* Requests in flight per key (src/lib/proxy/inflight.c). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/inflight.h"

#define TAKE(f, k, max, held) cb__proxy_inflight_take(f, k, strlen(k), max, held)
#define PUT(f, k)             cb__proxy_inflight_put(f, k, strlen(k))

static void limit_is_per_key(void **state)
{
    (void)state;
    struct cb_proxy_inflight *f = cb_proxy_inflight_new();
    uint64_t held = 99;
    assert_true(TAKE(f, "web", 2, &held));
    assert_true(TAKE(f, "web", 2, &held));
    assert_int_equal(held, 99); /* only set on refusal */
    assert_false(TAKE(f, "web", 2, &held));
    assert_int_equal(held, 2);
    /* another key, and a key that is a prefix of it, have their own */
    assert_true(TAKE(f, "we", 1, NULL));
    assert_false(TAKE(f, "we", 1, NULL));
    assert_true(TAKE(f, "webb", 1, NULL));
    /* a lower limit seen later applies to what is held */
    assert_false(TAKE(f, "web", 1, &held));
    assert_int_equal(held, 2);
    PUT(f, "web");
    assert_true(TAKE(f, "web", 2, NULL));
    PUT(f, "web");
    PUT(f, "web");
    PUT(f, "we");
    PUT(f, "webb");
    cb__proxy_inflight_free(f);
    cb__proxy_inflight_free(NULL);
}

static void zero_allows_none(void **state)
{
    (void)state;
    struct cb_proxy_inflight *f = cb_proxy_inflight_new();
    uint64_t held = 7;
    assert_false(TAKE(f, "t", 0, &held));
    assert_int_equal(held, 0);
    /* a slot given back frees the entry: the key starts over */
    assert_true(TAKE(f, "t", 1, NULL));
    PUT(f, "t");
    assert_true(TAKE(f, "t", 1, NULL));
    assert_false(TAKE(f, "t", 1, NULL));
    PUT(f, "t");
    cb__proxy_inflight_free(f);
}

#define THREADS 8
#define ROUNDS  20000

struct race {
    struct cb_proxy_inflight *f;
    pthread_mutex_t mu;
    int inside, most;
};

/* Takes and gives back slots of one key with a limit of 3; counts how
 * many holders there were at once. */
static void *racer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (!TAKE(r->f, "k", 3, NULL))
            continue;
        pthread_mutex_lock(&r->mu);
        if (++r->inside > r->most)
            r->most = r->inside;
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_lock(&r->mu);
        r->inside--;
        pthread_mutex_unlock(&r->mu);
        PUT(r->f, "k");
    }
    return NULL;
}

static void limit_holds_across_threads(void **state)
{
    (void)state;
    struct race r = {.f = cb_proxy_inflight_new()};
    pthread_mutex_init(&r.mu, NULL);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer, &r), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(r.most >= 1 && r.most <= 3);
    /* everything was given back */
    assert_true(TAKE(r.f, "k", 3, NULL));
    assert_true(TAKE(r.f, "k", 3, NULL));
    assert_true(TAKE(r.f, "k", 3, NULL));
    assert_false(TAKE(r.f, "k", 3, NULL));
    for (int i = 0; i < 3; i++)
        PUT(r.f, "k");
    pthread_mutex_destroy(&r.mu);
    cb__proxy_inflight_free(r.f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_is_per_key),
        cmocka_unit_test(zero_allows_none),
        cmocka_unit_test(limit_holds_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
