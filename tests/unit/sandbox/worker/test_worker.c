/* The worker layer with a real zygote and real children, running a native
 * fixture tool (tests/fixtures/worker/native_tool.c). This test binary is
 * its own zygote: the pool execs it with "__zygote". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "sandbox/worker.h"

static const char *fixture;
static char self[4096];
static struct cb_worker_pool *pool;

static const struct cb_worker_limits limits = {.fuel = 1000,
                                               .timeout_ms = 5000,
                                               .memory_mb = 64,
                                               .max_output = 1 << 20,
                                               .max_host_calls = 100};

static struct cb_worker_pool *new_pool(uint32_t jobs_per_worker)
{
    struct cb_error err = {0};
    struct cb_worker_pool *p = NULL;
    if (cb_worker_pool_new(self, jobs_per_worker, &p, &err) < 0)
        fprintf(stderr, "pool: %s\n", err.msg);
    return p;
}

static int setup(void **state)
{
    (void)state;
    pool = new_pool(100);
    return pool ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cb_worker_pool_free(pool);
    return 0;
}

static char *echo_handler(void *ud, const char *method, json_t *params)
{
    (void)ud;
    (void)params;
    return cb_xasprintf("{\"ok\":\"%s\"}", method);
}

static void run_in(struct cb_worker_pool *p, const char *input, const struct cb_worker_limits *lim,
                   struct cb_worker_result *res)
{
    struct cb_error err = {0};
    int r = cb_worker_execute(p, fixture, input, strlen(input), lim ? lim : &limits, echo_handler,
                              NULL, res, &err);
    if (r < 0)
        fail_msg("execute: %s", err.msg);
}

static void run(const char *input, const struct cb_worker_limits *lim, struct cb_worker_result *res)
{
    run_in(pool, input, lim, res);
}

/* The pid of the worker that ran a "pid" job. */
static long worker_pid(struct cb_worker_pool *p)
{
    struct cb_worker_result res;
    run_in(p, "pid", NULL, &res);
    assert_int_equal(res.outcome.status, CB_TOOL_OK);
    long pid = strtol(res.out.data + strlen("{\"pid\":"), NULL, 10);
    cb_worker_result_free(&res);
    assert_true(pid > 0);
    return pid;
}

static void echo_round_trip(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("{\"hello\":\"world\"}", NULL, &res);
    assert_false(res.timed_out);
    assert_false(res.crashed);
    assert_int_equal(res.outcome.status, CB_TOOL_OK);
    assert_int_equal(res.outcome.fuel_consumed, 42);
    assert_string_equal(res.out.data, "{\"hello\":\"world\"}");
    cb_worker_result_free(&res);
}

static void expect_errno(const char *what, long want)
{
    struct cb_worker_result res;
    char input[64];
    char expect[64];
    snprintf(input, sizeof(input), "try:%s", what);
    snprintf(expect, sizeof(expect), "{\"result\":%ld}", want);
    run(input, NULL, &res);
    assert_false(res.crashed);
    assert_string_equal(res.out.data, expect);
    cb_worker_result_free(&res);
}

static void seccomp_denies_files_sockets_exec_and_exec_mappings(void **state)
{
    (void)state;
    expect_errno("open", -EPERM);
    expect_errno("socket", -EPERM);
    expect_errno("exec", -EPERM);
    expect_errno("mmap_exec", -EPERM);
    expect_errno("mprotect_exec", -EPERM);
    expect_errno("fork", -EPERM);
}

static void timeout_kills_the_child(void **state)
{
    (void)state;
    struct cb_worker_limits lim = limits;
    struct cb_worker_result res;
    lim.timeout_ms = 300;
    uint64_t start = cb_now_mono_ns();
    run("loop", &lim, &res);
    uint64_t ms = (cb_now_mono_ns() - start) / 1000000;
    assert_true(res.timed_out);
    assert_true(ms >= 290 && ms < 1500);
    cb_worker_result_free(&res);
    /* The pool still works afterwards. */
    run("after", NULL, &res);
    assert_string_equal(res.out.data, "after");
    cb_worker_result_free(&res);
}

static void host_call_limit(void **state)
{
    (void)state;
    struct cb_worker_limits lim = limits;
    struct cb_worker_result res;
    lim.max_host_calls = 10;
    run("calls:25", &lim, &res);
    assert_string_equal(res.out.data, "{\"ok_calls\":10}");
    assert_int_equal(res.host_calls, 25);
    assert_int_equal(json_array_size(res.logs), 10);
    cb_worker_result_free(&res);
}

static void output_is_capped(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("bigout", NULL, &res);
    assert_true(res.output_truncated);
    assert_int_equal(res.out.len, 1 << 20);
    cb_worker_result_free(&res);
}

static void crash_is_reported(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("crash", NULL, &res);
    assert_true(res.crashed);
    cb_worker_result_free(&res);
}

static void memory_is_capped(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("alloc", NULL, &res);
#if !defined(__SANITIZE_ADDRESS__)
    assert_false(res.crashed);
    long mb = strtol(res.out.data + strlen("{\"allocated_mb\":"), NULL, 10);
    assert_true(mb < 512);
#endif
    cb_worker_result_free(&res);
}

static void workers_are_reused_up_to_their_limit(void **state)
{
    (void)state;
    struct cb_worker_pool *p = new_pool(3);
    assert_non_null(p);
    long first = worker_pid(p);
    assert_int_equal(worker_pid(p), first);
    assert_int_equal(worker_pid(p), first);
    assert_int_not_equal(worker_pid(p), first); /* the first worker ran its 3 jobs */
    cb_worker_pool_free(p);
}

static void one_process_per_execution_when_asked(void **state)
{
    (void)state;
    struct cb_worker_pool *p = new_pool(1);
    assert_non_null(p);
    long a = worker_pid(p), b = worker_pid(p), c = worker_pid(p);
    assert_int_not_equal(a, b);
    assert_int_not_equal(b, c);
    assert_int_not_equal(a, c);
    cb_worker_pool_free(p);
}

static void a_job_that_fails_retires_its_worker(void **state)
{
    (void)state;
    static const char *const failures[] = {"trap", "crash"};
    for (size_t i = 0; i < CB_ARRAY_LEN(failures); i++) {
        struct cb_worker_result res;
        long before = worker_pid(pool);
        assert_int_equal(worker_pid(pool), before); /* reused while jobs end cleanly */
        run(failures[i], NULL, &res);
        cb_worker_result_free(&res);
        assert_int_not_equal(worker_pid(pool), before);
    }
}

static void stdin_survives_a_host_call(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("call_then_echo", NULL, &res);
    assert_string_equal(res.out.data, "{\"ok_calls\":1}call_then_echo");
    cb_worker_result_free(&res);
}

static void missing_tool_is_a_clear_error(void **state)
{
    (void)state;
    struct cb_worker_result res;
    struct cb_error err = {0};
    int r = cb_worker_execute(pool, "/nonexistent/tool.so", "{}", 2, &limits, echo_handler, NULL,
                              &res, &err);
    assert_int_equal(r, -EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/tool.so"));
    cb_worker_result_free(&res);
    /* A good tool still runs afterwards. */
    run("again", NULL, &res);
    assert_string_equal(res.out.data, "again");
    cb_worker_result_free(&res);
}

static void back_to_back_executions(void **state)
{
    (void)state;
    /* Faster than the ready queue refills: later runs wait for spawns. */
    struct cb_worker_result res[6];
    for (int i = 0; i < 6; i++)
        run("x", NULL, &res[i]);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(res[i].out.data, "x");
        cb_worker_result_free(&res[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "__zygote") == 0)
        return cb_zygote_main(3);
    if (argc < 2 || realpath("/proc/self/exe", self) == NULL)
        return 2;
    fixture = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_round_trip),
        cmocka_unit_test(seccomp_denies_files_sockets_exec_and_exec_mappings),
        cmocka_unit_test(timeout_kills_the_child),
        cmocka_unit_test(host_call_limit),
        cmocka_unit_test(output_is_capped),
        cmocka_unit_test(crash_is_reported),
        cmocka_unit_test(memory_is_capped),
        cmocka_unit_test(workers_are_reused_up_to_their_limit),
        cmocka_unit_test(one_process_per_execution_when_asked),
        cmocka_unit_test(a_job_that_fails_retires_its_worker),
        cmocka_unit_test(stdin_survives_a_host_call),
        cmocka_unit_test(missing_tool_is_a_clear_error),
        cmocka_unit_test(back_to_back_executions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
