/* The main process's side of one execution (cb__session_run), against a
 * forked process that speaks the frame protocol by hand, as a child that
 * is well-behaved or compromised would. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "sandbox/worker/ipc.h"
#include "sandbox/worker/session.h"

static const struct cb_worker_limits limits = {
    .fuel = 1000, .timeout_ms = 5000, .memory_mb = 64, .max_output = 1 << 20, .max_host_calls = 3};

static int handler_calls;

static char *counting_handler(void *ud, const char *method, json_t *params)
{
    (void)ud;
    (void)method;
    (void)params;
    handler_calls++;
    return cb_xstrdup("{\"ok\":1}");
}

static void send_log(int sock, const char *envelope)
{
    if (cb__ipc_send(sock, CB__FRAME_LOG, envelope, strlen(envelope), -1) < 0)
        _exit(10);
}

/* Sends a result whose stdout says whether anything arrived that the
 * child did not ask for (a reply to a one-way log frame). */
static void send_result(int sock)
{
    char byte;
    const char *out = recv(sock, &byte, 1, MSG_DONTWAIT) > 0 ? "unexpected frame" : "quiet";
    struct cb__result_header h = {.status = CB_TOOL_OK, .stdout_len = (uint32_t)strlen(out)};
    cb__ipc_send2(sock, CB__FRAME_RESULT, &h, sizeof(h), out, strlen(out));
}

/* The scripted child: reads the job, then plays `script`. */
static void child(int sock, const char *script)
{
    struct cb_buf job;
    uint32_t type = 0;
    struct cb__exec_header h;
    cb_buf_init(&job, CB__IPC_MAX_FRAME);
    if (cb__ipc_recv(sock, &type, &job, NULL) < 0 || type != CB__FRAME_EXEC)
        _exit(11);
    memcpy(&h, job.data, sizeof(h));
    if (h.max_host_calls != limits.max_host_calls)
        _exit(12);
    if (strcmp(script, "logs") == 0) {
        send_log(sock, "{\"method\":\"log\",\"params\":{\"level\":\"warn\",\"message\":\"one\"}}");
        send_log(sock, "{\"method\":\"log\",\"params\":{\"message\":\"two\"}}");
        usleep(100 * 1000);
        send_result(sock);
    } else if (strcmp(script, "disguised") == 0) {
        /* A one-way frame may not carry a call that needs the host. */
        send_log(sock, "{\"method\":\"http_request\",\"params\":{\"url\":\"http://x/\"}}");
        send_result(sock);
    } else if (strcmp(script, "garbage") == 0) {
        send_log(sock, "{not json");
        send_result(sock);
    } else if (strcmp(script, "over_limit") == 0) {
        /* Past the limit the child must ask, not answer itself. */
        for (uint32_t i = 0; i <= limits.max_host_calls; i++)
            send_log(sock, "{\"method\":\"log\",\"params\":{\"message\":\"x\"}}");
        send_result(sock);
    }
    pause();
    _exit(0);
}

static bool run(const char *script, struct cb_worker_result *res)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        child(sv[1], script);
    }
    close(sv[1]);
    memset(res, 0, sizeof(*res));
    cb_buf_init(&res->out, limits.max_output);
    cb_buf_init(&res->err, 1 << 16);
    res->logs = json_array();
    handler_calls = 0;
    bool reusable = cb__session_run(sv[0], pid, "{}", 2, 1, &limits, counting_handler, NULL, res);
    close(sv[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return reusable;
}

static void log_frames_are_recorded_without_a_reply(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("logs", &res);
    assert_false(res.crashed);
    assert_int_equal(res.host_calls, 2);
    assert_int_equal(json_array_size(res.logs), 2);
    json_t *first = json_array_get(res.logs, 0);
    assert_string_equal(json_string_value(json_object_get(first, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(first, "message")), "one");
    assert_string_equal(res.out.data, "quiet");
    cb_worker_result_free(&res);
}

static void log_frame_with_another_method_ends_the_child(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("disguised", &res);
    assert_true(res.crashed);
    assert_int_equal(res.host_calls, 1); /* the frame arrived and was refused */
    assert_int_equal(handler_calls, 0);
    assert_int_equal(res.out.len, 0);
    cb_worker_result_free(&res);
}

static void unparsable_log_frame_ends_the_child(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("garbage", &res);
    assert_true(res.crashed);
    assert_int_equal(res.host_calls, 1);
    cb_worker_result_free(&res);
}

static void log_frames_past_the_limit_end_the_child(void **state)
{
    (void)state;
    struct cb_worker_result res;
    run("over_limit", &res);
    assert_true(res.crashed);
    assert_int_equal(json_array_size(res.logs), limits.max_host_calls);
    cb_worker_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_frames_are_recorded_without_a_reply),
        cmocka_unit_test(log_frame_with_another_method_ends_the_child),
        cmocka_unit_test(unparsable_log_frame_ends_the_child),
        cmocka_unit_test(log_frames_past_the_limit_end_the_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
