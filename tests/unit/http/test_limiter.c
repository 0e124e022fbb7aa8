#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/util.h"
#include "http/limiter.h"

struct probe {
    struct cb_limiter_job job;
    unsigned sleep_ms;
    atomic_int ran;
    atomic_int rejected;
};

static atomic_int running_now;
static atomic_int running_max;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void run(void *arg)
{
    struct probe *p = arg;
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int max = atomic_load(&running_max);
    while (now > max && !atomic_compare_exchange_weak(&running_max, &max, now))
        ;
    sleep_ms(p->sleep_ms);
    atomic_fetch_sub(&running_now, 1);
    atomic_store(&p->ran, 1);
}

static void reject(void *arg)
{
    struct probe *p = arg;
    atomic_store(&p->rejected, 1);
}

static void init_probe(struct probe *p, unsigned ms)
{
    memset(p, 0, sizeof(*p));
    p->job.run = run;
    p->job.reject = reject;
    p->job.arg = p;
    p->sleep_ms = ms;
}

static void wait_done(struct probe *p, int n)
{
    for (int i = 0; i < n; i++)
        while (!atomic_load(&p[i].ran) && !atomic_load(&p[i].rejected))
            sleep_ms(1);
}

static void never_more_than_the_limit_at_once(void **state)
{
    (void)state;
    struct cb_limiter *l = NULL;
    struct probe p[12];
    atomic_store(&running_max, 0);
    assert_int_equal(cb__limiter_new(3, 100, 5000, &l, NULL), 0);
    for (int i = 0; i < 12; i++) {
        init_probe(&p[i], 20);
        assert_int_equal(cb__limiter_submit(l, &p[i].job), 0);
    }
    wait_done(p, 12);
    for (int i = 0; i < 12; i++)
        assert_true(atomic_load(&p[i].ran));
    assert_int_equal(atomic_load(&running_max), 3);
    cb__limiter_free(l);
}

/* Right after a job, its worker polls for the next one instead of
 * sleeping; two jobs submitted then must still run side by side on two
 * workers, not one after the other on the polling one. */
static void jobs_after_a_job_run_in_parallel(void **state)
{
    (void)state;
    struct cb_limiter *l = NULL;
    struct probe first, pair[2];
    atomic_store(&running_max, 0);
    assert_int_equal(cb__limiter_new(2, 10, 5000, &l, NULL), 0);
    /* Submit while the worker polls (its window is short: retry). */
    bool polling = false;
    for (int attempt = 0; attempt < 50 && !polling; attempt++) {
        init_probe(&first, 0);
        assert_int_equal(cb__limiter_submit(l, &first.job), 0);
        wait_done(&first, 1);
        for (int i = 0; i < 100000 && !polling; i++)
            polling = cb__limiter_polling(l) == 1;
    }
    assert_true(polling);
    init_probe(&pair[0], 200);
    init_probe(&pair[1], 200);
    uint64_t start = cb_now_mono_ns();
    assert_int_equal(cb__limiter_submit(l, &pair[0].job), 0);
    assert_int_equal(cb__limiter_submit(l, &pair[1].job), 0);
    wait_done(pair, 2);
    uint64_t ms = (cb_now_mono_ns() - start) / 1000000;
    assert_true(atomic_load(&pair[0].ran) && atomic_load(&pair[1].ran));
    assert_int_equal(atomic_load(&running_max), 2);
    assert_true(ms < 390);
    cb__limiter_free(l);
}

static void queued_jobs_time_out(void **state)
{
    (void)state;
    struct cb_limiter *l = NULL;
    struct probe busy, late;
    assert_int_equal(cb__limiter_new(1, 10, 100, &l, NULL), 0);
    init_probe(&busy, 400);
    init_probe(&late, 0);
    assert_int_equal(cb__limiter_submit(l, &busy.job), 0);
    sleep_ms(20);
    uint64_t start = cb_now_mono_ns();
    assert_int_equal(cb__limiter_submit(l, &late.job), 0);
    wait_done(&late, 1);
    uint64_t waited_ms = (cb_now_mono_ns() - start) / 1000000;
    assert_true(atomic_load(&late.rejected));
    assert_false(atomic_load(&late.ran));
    assert_true(waited_ms >= 90 && waited_ms < 350);
    wait_done(&busy, 1);
    assert_true(atomic_load(&busy.ran));
    cb__limiter_free(l);
}

static void full_queue_refuses(void **state)
{
    (void)state;
    struct cb_limiter *l = NULL;
    struct probe p[4];
    assert_int_equal(cb__limiter_new(1, 2, 5000, &l, NULL), 0);
    for (int i = 0; i < 4; i++)
        init_probe(&p[i], 100);
    assert_int_equal(cb__limiter_submit(l, &p[0].job), 0);
    sleep_ms(20);
    assert_int_equal(cb__limiter_submit(l, &p[1].job), 0);
    assert_int_equal(cb__limiter_submit(l, &p[2].job), 0);
    assert_int_equal(cb__limiter_submit(l, &p[3].job), -EAGAIN);
    assert_true(cb__limiter_load(l) == 3);
    wait_done(p, 3);
    cb__limiter_free(l);
}

static void zero_timeout_never_waits(void **state)
{
    (void)state;
    struct cb_limiter *l = NULL;
    struct probe a, b;
    assert_int_equal(cb__limiter_new(1, 10, 0, &l, NULL), 0);
    init_probe(&a, 100);
    init_probe(&b, 0);
    assert_int_equal(cb__limiter_submit(l, &a.job), 0);
    sleep_ms(20);
    assert_int_equal(cb__limiter_submit(l, &b.job), -EAGAIN);
    wait_done(&a, 1);
    cb__limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(never_more_than_the_limit_at_once),
        cmocka_unit_test(jobs_after_a_job_run_in_parallel),
        cmocka_unit_test(queued_jobs_time_out),
        cmocka_unit_test(full_queue_refuses),
        cmocka_unit_test(zero_timeout_never_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
