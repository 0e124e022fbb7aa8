#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/proc.h"
#include "core/util.h"

/* Runs `sh -c script` with the rest of spec as given; output lands in out
 * (cleared first). */
static int sh(const char *script, struct cb_proc_spec spec, struct cb_buf *out,
              struct cb_proc_result *res, struct cb_error *err)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    spec.argv = argv;
    spec.output = out;
    cb_buf_reset(out);
    return cb_proc_run(&spec, res, err);
}

static int exit_code(const struct cb_proc_result *res)
{
    return WIFEXITED(res->status) ? WEXITSTATUS(res->status) : -1;
}

/* Whether pid is gone: no such process, or a zombie nobody reaped yet. */
static bool gone(pid_t pid)
{
    char path[64], stat[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, stat, sizeof(stat) - 1);
    close(fd);
    if (n <= 0)
        return true;
    stat[n] = '\0';
    const char *end = strrchr(stat, ')');
    return end == NULL || end[2] == 'Z' || end[2] == 'X';
}

static bool gone_soon(pid_t pid)
{
    for (int i = 0; i < 200 && !gone(pid); i++)
        usleep(10000);
    return gone(pid);
}

static pid_t pid_in(const struct cb_buf *out)
{
    uint64_t v = 0;
    size_t n = out->len;
    while (n > 0 && (out->data[n - 1] == '\n'))
        n--;
    assert_int_equal(cb_parse_u64(out->data, n, &v), 0);
    return (pid_t)v;
}

static void exit_code_and_combined_output(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1024);
    assert_int_equal(
        sh("echo out; echo err >&2; exit 3", (struct cb_proc_spec){0}, &out, &res, &err), 0);
    assert_int_equal(exit_code(&res), 3);
    assert_string_equal(out.data, "out\nerr\n");
    assert_false(res.truncated);
    assert_int_equal(sh("kill -TERM $$", (struct cb_proc_spec){0}, &out, &res, &err), 0);
    assert_true(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGTERM);
    cb_buf_free(&out);
}

static void output_is_capped_and_the_rest_drained(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1000);
    /* Far more than a pipe holds: the child only finishes if the rest is
     * read and dropped. */
    assert_int_equal(sh("head -c 1000000 /dev/zero | tr '\\0' x; echo done >&2",
                        (struct cb_proc_spec){.timeout_ms = 30000}, &out, &res, &err),
                     0);
    assert_int_equal(exit_code(&res), 0);
    assert_true(res.truncated);
    assert_int_equal(out.len, 1000);
    assert_int_equal(strspn(out.data, "x"), 1000);
    cb_buf_free(&out);
}

/* A grandchild that keeps the output open holds the run until the
 * deadline; then it dies with the group. */
static void deadline_kills_the_whole_group(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1024);
    uint64_t t0 = cb_now_mono_ns();
    assert_int_equal(
        sh("sleep 30 & echo $!; wait", (struct cb_proc_spec){.timeout_ms = 300}, &out, &res, &err),
        -ETIMEDOUT);
    uint64_t took_ms = (cb_now_mono_ns() - t0) / 1000000;
    assert_true(took_ms >= 300 && took_ms < 10000);
    assert_string_equal(err.msg, "/bin/sh timed out after 300 ms");
    assert_true(gone_soon(pid_in(&out)));
    /* The output ends at once, the exit does not come: the wait is bounded
     * too. */
    assert_int_equal(sh("sleep 30 >/dev/null 2>&1 & echo $!; exec >/dev/null 2>&1; wait",
                        (struct cb_proc_spec){.timeout_ms = 300}, &out, &res, &err),
                     -ETIMEDOUT);
    assert_true(gone_soon(pid_in(&out)));
    cb_buf_free(&out);
}

static void *cancel_soon(void *arg)
{
    nanosleep(&(struct timespec){0, 200 * 1000000}, NULL);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

/* Cancelled from another thread, with or without a deadline: the run
 * ends within moments, its group killed, both while the output is open
 * and while only the exit is awaited. */
static void cancel_kills_the_whole_group(void **state)
{
    (void)state;
    static const char *const scripts[] = {
        "sleep 30 & echo $!; wait",
        "sleep 30 >/dev/null 2>&1 & echo $!; exec >/dev/null 2>&1; wait",
    };
    for (size_t i = 0; i < 2; i++) {
        for (unsigned timeout = 0; timeout <= 60000; timeout += 60000) {
            atomic_bool cancel = false;
            struct cb_buf out;
            struct cb_proc_result res;
            struct cb_error err = {0};
            pthread_t th;
            cb_buf_init(&out, 1024);
            assert_int_equal(pthread_create(&th, NULL, cancel_soon, &cancel), 0);
            uint64_t t0 = cb_now_mono_ns();
            assert_int_equal(sh(scripts[i],
                                (struct cb_proc_spec){.timeout_ms = timeout, .cancel = &cancel},
                                &out, &res, &err),
                             -ECANCELED);
            assert_true((cb_now_mono_ns() - t0) / 1000000 < 10000);
            assert_string_equal(err.msg, "/bin/sh was cancelled");
            assert_true(gone_soon(pid_in(&out)));
            pthread_join(th, NULL);
            cb_buf_free(&out);
        }
    }
}

static void rlimits_apply_and_only_tighten(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    struct rlimit own;
    cb_buf_init(&out, 1024);
    const struct cb_proc_rlimit fewer[] = {{RLIMIT_NOFILE, 17, 19}};
    assert_int_equal(sh("ulimit -Sn; ulimit -Hn",
                        (struct cb_proc_spec){.rlimits = fewer, .n_rlimits = 1}, &out, &res, &err),
                     0);
    assert_string_equal(out.data, "17\n19\n");
    /* Asking for more than clawbox has gets what clawbox has. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &own), 0);
    const struct cb_proc_rlimit more[] = {{RLIMIT_NOFILE, RLIM_INFINITY, RLIM_INFINITY}};
    assert_int_equal(
        sh("ulimit -Hn", (struct cb_proc_spec){.rlimits = more, .n_rlimits = 1}, &out, &res, &err),
        0);
    assert_int_equal(exit_code(&res), 0);
    char want[32];
    snprintf(want, sizeof(want), "%llu\n", (unsigned long long)own.rlim_max);
    assert_string_equal(out.data, own.rlim_max == RLIM_INFINITY ? "unlimited\n" : want);
    cb_buf_free(&out);
}

/* One second of CPU, burnt by a grandchild: SIGXCPU (not ignored, even
 * though the test ignores it) kills it, and its time counts. */
static void cpu_limit_and_cpu_time_of_descendants(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1024);
    signal(SIGXCPU, SIG_IGN);
    const struct cb_proc_rlimit cpu[] = {{RLIMIT_CPU, 1, 2}};
    assert_int_equal(sh("(while :; do :; done); exit $?",
                        (struct cb_proc_spec){.rlimits = cpu, .n_rlimits = 1, .timeout_ms = 60000},
                        &out, &res, &err),
                     0);
    signal(SIGXCPU, SIG_DFL);
    assert_int_equal(exit_code(&res), 128 + SIGXCPU);
    /* The sampled time falls a little short of what the limit counts. */
    assert_true(res.cpu_ms >= 500);
    cb_buf_free(&out);
}

static void inherited_descriptors_and_signals_do_not_pass(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1024);
    int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    assert_true(fd > 2);
    char script[128];
    snprintf(script, sizeof(script), "[ -e /proc/self/fd/%d ] && echo open || echo closed", fd);
    assert_int_equal(sh(script, (struct cb_proc_spec){0}, &out, &res, &err), 0);
    assert_string_equal(out.data, "closed\n");
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(
        sh("grep SigIgn /proc/self/status", (struct cb_proc_spec){0}, &out, &res, &err), 0);
    signal(SIGPIPE, SIG_DFL);
    /* Signals 32 and 33 are glibc's own (thread cancellation, setxid):
     * sigaction refuses them, and they may come ignored from whoever
     * started the tests; every other signal must be back to default. */
    unsigned long long ign = strtoull(out.data + strlen("SigIgn:"), NULL, 16);
    assert_int_equal(ign & ~(3ull << 31), 0);
    close(fd);
    cb_buf_free(&out);
}

static void stdin_env_and_cwd(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    enum { BIG = 1 << 20 };
    char *data = cb_xmalloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (char)('a' + i % 26);
    cb_buf_init(&out, 2 * BIG);
    /* More than a socket holds each way: stdin and output must flow at
     * once. */
    assert_int_equal(
        sh("cat", (struct cb_proc_spec){.stdin_data = data, .stdin_len = BIG}, &out, &res, &err),
        0);
    assert_int_equal(out.len, BIG);
    assert_memory_equal(out.data, data, BIG);
    /* A child that reads none of it is no error. */
    assert_int_equal(
        sh("exit 0", (struct cb_proc_spec){.stdin_data = data, .stdin_len = BIG}, &out, &res, &err),
        0);
    assert_int_equal(exit_code(&res), 0);
    assert_int_equal(
        sh("wc -c", (struct cb_proc_spec){.stdin_data = "", .stdin_len = 0}, &out, &res, &err), 0);
    assert_string_equal(out.data, "0\n");
    free(data);
    char *set[] = {"CB_PROC_TEST=one two", NULL};
    assert_int_equal(sh("echo \"$CB_PROC_TEST:$(pwd)\"",
                        (struct cb_proc_spec){.env = set, .cwd = "/"}, &out, &res, &err),
                     0);
    assert_string_equal(out.data, "one two:/\n");
    setenv("CB_PROC_OWN", "x", 1);
    assert_int_equal(sh("echo \"${CB_PROC_OWN-unset} ${CB_PROC_TEST-unset}\"",
                        (struct cb_proc_spec){0}, &out, &res, &err),
                     0);
    assert_string_equal(out.data, "x unset\n");
    assert_int_equal(sh("echo \"${CB_PROC_OWN-unset} $CB_PROC_TEST\"",
                        (struct cb_proc_spec){.env = set, .env_clear = true}, &out, &res, &err),
                     0);
    unsetenv("CB_PROC_OWN");
    assert_string_equal(out.data, "unset one two\n");
    cb_buf_free(&out);
}

static void failures_before_exec_are_errors(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1024);
    char *missing[] = {"/nonexistent/prog", NULL};
    struct cb_proc_spec spec = {.argv = missing, .output = &out};
    assert_int_equal(cb_proc_run(&spec, &res, &err), -ENOENT);
    assert_string_equal(err.msg, "cannot run /nonexistent/prog: No such file or directory");
    assert_int_equal(out.len, 0);
    assert_int_equal(
        sh("echo never", (struct cb_proc_spec){.cwd = "/nonexistent"}, &out, &res, &err), -ENOENT);
    assert_string_equal(err.msg,
                        "cannot run /bin/sh: changing directory: No such file or directory");
    cb_buf_free(&out);
}

static int say_and_return(void *arg)
{
    const char *s = arg;
    ssize_t n = write(1, s, strlen(s));
    return n < 0 ? 1 : 5;
}

static void a_function_instead_of_a_program(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1024);
    char *name[] = {"greeter", NULL};
    struct cb_proc_spec spec = {
        .argv = name, .fn = say_and_return, .arg = "hello", .output = &out, .timeout_ms = 10000};
    assert_int_equal(cb_proc_run(&spec, &res, &err), 0);
    assert_int_equal(exit_code(&res), 5);
    assert_string_equal(out.data, "hello");
    cb_buf_free(&out);
}

/* Runs argv inside the caller's group, writing where the caller does. */
static int run_inside(void *arg)
{
    const struct cb_proc_spec spec = {.argv = arg, .in_caller_group = true};
    struct cb_proc_result res;
    struct cb_error err = {0};
    if (cb_proc_run(&spec, &res, &err) < 0) {
        dprintf(2, "%s\n", err.msg);
        return 100;
    }
    return WIFEXITED(res.status) ? WEXITSTATUS(res.status) : 101;
}

/* A run nested in a function child, as the compiler runs its programs:
 * its output goes where the function's goes, and it shares the group that
 * the outer deadline kills. */
static void nested_runs_share_output_and_group(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_proc_result res;
    struct cb_error err = {0};
    cb_buf_init(&out, 1024);
    char *name[] = {"outer", NULL};
    char *inner[] = {"/bin/sh", "-c",
                     "echo inner; pgid() { cut -d' ' -f5 /proc/$1/stat; }; "
                     "[ \"$(pgid $$)\" = \"$(pgid $PPID)\" ]",
                     NULL};
    struct cb_proc_spec spec = {
        .argv = name, .fn = run_inside, .arg = inner, .output = &out, .timeout_ms = 10000};
    assert_int_equal(cb_proc_run(&spec, &res, &err), 0);
    assert_string_equal(out.data, "inner\n");
    assert_int_equal(exit_code(&res), 0);
    char *missing[] = {"/nonexistent/prog", NULL};
    spec.arg = missing;
    cb_buf_reset(&out);
    assert_int_equal(cb_proc_run(&spec, &res, &err), 0);
    assert_int_equal(exit_code(&res), 100);
    assert_string_equal(out.data, "cannot run /nonexistent/prog: No such file or directory\n");
    char *sleeper[] = {"/bin/sh", "-c", "echo $$; exec sleep 30", NULL};
    spec.arg = sleeper;
    spec.timeout_ms = 300;
    cb_buf_reset(&out);
    assert_int_equal(cb_proc_run(&spec, &res, &err), -ETIMEDOUT);
    assert_string_equal(err.msg, "outer timed out after 300 ms");
    assert_true(gone_soon(pid_in(&out)));
    cb_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_code_and_combined_output),
        cmocka_unit_test(output_is_capped_and_the_rest_drained),
        cmocka_unit_test(deadline_kills_the_whole_group),
        cmocka_unit_test(cancel_kills_the_whole_group),
        cmocka_unit_test(rlimits_apply_and_only_tighten),
        cmocka_unit_test(cpu_limit_and_cpu_time_of_descendants),
        cmocka_unit_test(inherited_descriptors_and_signals_do_not_pass),
        cmocka_unit_test(stdin_env_and_cwd),
        cmocka_unit_test(failures_before_exec_are_errors),
        cmocka_unit_test(a_function_instead_of_a_program),
        cmocka_unit_test(nested_runs_share_output_and_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
