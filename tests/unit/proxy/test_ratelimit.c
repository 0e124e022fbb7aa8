#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/ratelimit.h"

#define MS 1000000ull

static uint64_t fake_clock(void *arg)
{
    return *(uint64_t *)arg;
}

static struct cb_proxy_ratelimit *make(double rate, double burst, size_t max_keys, uint64_t *now)
{
    struct cb_proxy_ratelimit_config cfg = {
        .rate = rate, .burst = burst, .max_keys = max_keys, .clock = fake_clock, .clock_arg = now};
    struct cb_proxy_ratelimit *rl = NULL;
    assert_int_equal(cb__proxy_ratelimit_new(&cfg, &rl, NULL), 0);
    return rl;
}

static int take(struct cb_proxy_ratelimit *rl, const char *key, uint64_t *retry,
                struct cb_error *err)
{
    return cb__proxy_ratelimit_take(rl, key, strlen(key), NULL, retry, err);
}

static void burst_then_deny(void **state)
{
    (void)state;
    uint64_t now = 1000 * MS;
    struct cb_proxy_ratelimit *rl = make(10, 3, 0, &now);
    struct cb_error err = {0};
    uint64_t retry = 99;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(take(rl, "web_fetch", &retry, &err), 0);
        assert_int_equal(retry, 0);
    }
    assert_int_equal(cb__proxy_ratelimit_take(rl, "web_fetch", 9, "tool web_fetch", &retry, &err),
                     -EAGAIN);
    assert_string_equal(err.msg, "rate limited: tool web_fetch exceeded 10 requests/s (burst 3); "
                                 "retry in 0.1 s");
    assert_int_equal(retry, 100);
    cb__proxy_ratelimit_free(rl);
}

static void refills_fractionally(void **state)
{
    (void)state;
    uint64_t now = 0;
    struct cb_proxy_ratelimit *rl = make(10, 3, 0, &now);
    struct cb_error err = {0};
    uint64_t retry;
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(rl, "k", NULL, &err), 0);
    now += 50 * MS; /* half a token */
    assert_int_equal(take(rl, "k", &retry, &err), -EAGAIN);
    assert_int_equal(retry, 50);
    assert_string_equal(err.msg, "rate limited: k exceeded 10 requests/s (burst 3); retry in "
                                 "0.1 s");
    now += 100 * MS; /* 1.5 tokens (the refused request took none) */
    assert_int_equal(take(rl, "k", NULL, &err), 0);
    assert_int_equal(take(rl, "k", NULL, &err), -EAGAIN);
    now += 10000 * MS; /* capped at burst */
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(rl, "k", NULL, &err), 0);
    assert_int_equal(take(rl, "k", NULL, &err), -EAGAIN);
    cb__proxy_ratelimit_free(rl);
}

static void slow_rates_and_long_waits(void **state)
{
    (void)state;
    uint64_t now = 0;
    struct cb_proxy_ratelimit *rl = make(0.5, 1, 0, &now);
    struct cb_error err = {0};
    uint64_t retry;
    assert_int_equal(take(rl, "k", NULL, &err), 0);
    assert_int_equal(take(rl, "k", &retry, &err), -EAGAIN);
    assert_int_equal(retry, 2000);
    assert_string_equal(err.msg, "rate limited: k exceeded 0.5 requests/s (burst 1); retry in "
                                 "2.0 s");
    now += 1999 * MS;
    assert_int_equal(take(rl, "k", NULL, &err), -EAGAIN);
    now += 1 * MS;
    assert_int_equal(take(rl, "k", NULL, &err), 0);
    cb__proxy_ratelimit_free(rl);
}

static void keys_are_independent(void **state)
{
    (void)state;
    uint64_t now = 0;
    struct cb_proxy_ratelimit *rl = make(1, 1, 0, &now);
    struct cb_error err = {0};
    assert_int_equal(take(rl, "a", NULL, &err), 0);
    assert_int_equal(take(rl, "a", NULL, &err), -EAGAIN);
    assert_int_equal(take(rl, "b", NULL, &err), 0);
    assert_int_equal(cb__proxy_ratelimit_take(rl, "", 0, NULL, NULL, &err), 0);
    assert_int_equal(take(rl, "default", NULL, &err), -EAGAIN);
    /* Keys are byte strings: "a\0x" is not "a". */
    assert_int_equal(cb__proxy_ratelimit_take(rl, "a\0x", 3, NULL, NULL, &err), 0);
    assert_int_equal(cb__proxy_ratelimit_count(rl), 4);
    cb__proxy_ratelimit_free(rl);
}

static void clock_going_backwards_adds_nothing(void **state)
{
    (void)state;
    uint64_t now = 5000 * MS;
    struct cb_proxy_ratelimit *rl = make(1, 1, 0, &now);
    struct cb_error err = {0};
    assert_int_equal(take(rl, "a", NULL, &err), 0);
    now = 1000 * MS;
    assert_int_equal(take(rl, "a", NULL, &err), -EAGAIN);
    now = 5999 * MS;
    assert_int_equal(take(rl, "a", NULL, &err), -EAGAIN);
    now = 6000 * MS;
    assert_int_equal(take(rl, "a", NULL, &err), 0);
    cb__proxy_ratelimit_free(rl);
}

/* A key whose bucket was dropped to make room starts over with a full
 * bucket. */
static void dropped_key_starts_over_full(void **state)
{
    (void)state;
    uint64_t now = 0;
    struct cb_proxy_ratelimit *rl = make(1, 2, 1, &now);
    struct cb_error err = {0};
    assert_int_equal(take(rl, "a", NULL, &err), 0);
    assert_int_equal(take(rl, "a", NULL, &err), 0);
    assert_int_equal(take(rl, "a", NULL, &err), -EAGAIN);
    assert_int_equal(take(rl, "b", NULL, &err), 0); /* the only slot: a goes */
    assert_int_equal(cb__proxy_ratelimit_count(rl), 1);
    assert_int_equal(take(rl, "a", NULL, &err), 0); /* fresh and full again */
    assert_int_equal(take(rl, "a", NULL, &err), 0);
    assert_int_equal(take(rl, "a", NULL, &err), -EAGAIN);
    cb__proxy_ratelimit_free(rl);
}

/* Three keys fill a table of three: a and b drained at 0 ms (full again at
 * 2000 ms), c at 1000 ms (full at 3000 ms). A fourth key arrives at `t`;
 * returns the buckets held then. */
static size_t held_after_new_key_at(uint64_t t)
{
    uint64_t now = 0;
    struct cb_proxy_ratelimit *rl = make(1, 2, 3, &now);
    struct cb_error err = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(take(rl, "a", NULL, &err), 0);
        assert_int_equal(take(rl, "b", NULL, &err), 0);
    }
    assert_int_equal(take(rl, "a", NULL, &err), -EAGAIN);
    now = 1000 * MS;
    assert_int_equal(take(rl, "c", NULL, &err), 0);
    assert_int_equal(take(rl, "c", NULL, &err), 0);
    now = t;
    assert_int_equal(take(rl, "d", NULL, &err), 0);
    size_t held = cb__proxy_ratelimit_count(rl);
    if (t == 2000 * MS) { /* c, still refilling, kept its state: 1 token */
        assert_int_equal(take(rl, "c", NULL, &err), 0);
        assert_int_equal(take(rl, "c", NULL, &err), -EAGAIN);
    }
    cb__proxy_ratelimit_free(rl);
    return held;
}

/* Room is made from every bucket that has refilled to its burst, and from
 * those only: a bucket 1 ms short of it stays (then the least recently
 * used one goes instead). */
static void full_buckets_make_room(void **state)
{
    (void)state;
    assert_int_equal(held_after_new_key_at(1999 * MS), 3); /* none full: one evicted */
    assert_int_equal(held_after_new_key_at(2000 * MS), 2); /* a and b dropped, c kept */
    assert_int_equal(held_after_new_key_at(3000 * MS), 1); /* a, b and c dropped */
}

static void bounded_keys_evict_full_buckets_first(void **state)
{
    (void)state;
    uint64_t now = 0;
    struct cb_proxy_ratelimit *rl = make(1, 1, 3, &now);
    struct cb_error err = {0};
    assert_int_equal(take(rl, "a", NULL, &err), 0);
    now = 1000 * MS; /* a is full again */
    assert_int_equal(take(rl, "b", NULL, &err), 0);
    now = 1001 * MS;
    assert_int_equal(take(rl, "c", NULL, &err), 0);
    now = 1002 * MS;
    assert_int_equal(take(rl, "d", NULL, &err), 0); /* drops a, which changes nothing */
    assert_int_equal(cb__proxy_ratelimit_count(rl), 3);
    /* b and c are still held (refilling), so a went. Looking at them makes d
     * the least recently used. */
    now = 1003 * MS;
    assert_int_equal(take(rl, "b", NULL, &err), -EAGAIN);
    now = 1003 * MS + 1;
    assert_int_equal(take(rl, "c", NULL, &err), -EAGAIN);
    /* b, c, d are all refilling: the least recently used (d) goes. */
    now = 1004 * MS;
    assert_int_equal(take(rl, "e", NULL, &err), 0);
    assert_int_equal(cb__proxy_ratelimit_count(rl), 3);
    assert_int_equal(take(rl, "b", NULL, &err), -EAGAIN);
    assert_int_equal(take(rl, "c", NULL, &err), -EAGAIN);
    assert_int_equal(take(rl, "d", NULL, &err), 0); /* d went: it starts over full */
    cb__proxy_ratelimit_free(rl);
}

static void many_keys(void **state)
{
    (void)state;
    uint64_t now = 0;
    struct cb_proxy_ratelimit *rl = make(1, 1, 100, &now);
    struct cb_error err = {0};
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "container-%d", i);
        assert_int_equal(take(rl, key, NULL, &err), 0);
        assert_true(cb__proxy_ratelimit_count(rl) <= 100);
    }
    assert_int_equal(take(rl, "container-999", NULL, &err), -EAGAIN);
    cb__proxy_ratelimit_free(rl);
}

static void bad_config_and_keys(void **state)
{
    (void)state;
    struct cb_proxy_ratelimit *rl = (void *)1;
    struct cb_error err = {0};
    struct cb_proxy_ratelimit_config cfg = {.rate = 0, .burst = 5};
    assert_int_equal(cb__proxy_ratelimit_new(&cfg, &rl, &err), -EINVAL);
    assert_null(rl);
    assert_string_equal(err.msg, "proxy.rate_limit must be more than 0 requests/s");
    cfg.rate = 1;
    cfg.burst = 0.5;
    assert_int_equal(cb__proxy_ratelimit_new(&cfg, &rl, &err), -EINVAL);
    assert_string_equal(err.msg, "proxy.rate_limit_burst must be at least 1");
    cfg.burst = 1;
    assert_int_equal(cb__proxy_ratelimit_new(&cfg, &rl, &err), 0); /* real clock */
    char key[CB_PROXY_RATELIMIT_KEY_MAX + 1];
    memset(key, 'k', sizeof(key));
    assert_int_equal(cb__proxy_ratelimit_take(rl, key, sizeof(key), NULL, NULL, &err), -EINVAL);
    assert_int_equal(cb__proxy_ratelimit_take(rl, key, sizeof(key) - 1, NULL, NULL, &err), 0);
    cb__proxy_ratelimit_free(rl);
    cb__proxy_ratelimit_free(NULL);
}

struct shared {
    struct cb_proxy_ratelimit *rl;
    atomic_int allowed;
};

static void *hammer(void *arg)
{
    struct shared *s = arg;
    char key[8];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i % 4);
        if (cb__proxy_ratelimit_take(s->rl, key, strlen(key), NULL, NULL, NULL) == 0)
            atomic_fetch_add(&s->allowed, 1);
    }
    return NULL;
}

/* With a frozen clock, exactly burst tokens per key exist, whatever the
 * interleaving of threads. */
static void thread_safe(void **state)
{
    (void)state;
    uint64_t now = 0;
    struct shared s = {.rl = make(1, 50, 0, &now)};
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer, &s);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&s.allowed), 4 * 50);
    cb__proxy_ratelimit_free(s.rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_deny),
        cmocka_unit_test(refills_fractionally),
        cmocka_unit_test(slow_rates_and_long_waits),
        cmocka_unit_test(keys_are_independent),
        cmocka_unit_test(clock_going_backwards_adds_nothing),
        cmocka_unit_test(dropped_key_starts_over_full),
        cmocka_unit_test(full_buckets_make_room),
        cmocka_unit_test(bounded_keys_evict_full_buckets_first),
        cmocka_unit_test(many_keys),
        cmocka_unit_test(bad_config_and_keys),
        cmocka_unit_test(thread_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
