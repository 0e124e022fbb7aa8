#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "http/router.h"
#include "http/server.h"

/* Descriptors 3.. the server may take in the child below: the listener,
 * then an epoll set and an eventfd per I/O thread. */
#define FIRST_FD 3
#define FD_LIMIT (FIRST_FD + 4)

/* In a child whose descriptors end at FD_LIMIT: a server with three I/O
 * threads gets the listener and the first thread, and then runs out in
 * the second. Exit status 0 when the start failed and gave back every
 * descriptor it took, and none it did not (stdin above all). */
static void start_without_descriptors(void)
{
    struct rlimit rl = {FD_LIMIT, FD_LIMIT};
    struct cb_router *router = cb_router_new();
    struct cb_http_server *s = NULL;
    struct cb_error err = {0};
    struct cb_http_server_options o = {
        .host = "127.0.0.1",
        .auth_token = "t",
        .max_body_bytes = 1024,
        .threads = 3,
        .max_concurrent = 1,
        .max_connections = 16,
        .request_head_timeout_ms = 1000,
        .request_body_timeout_ms = 1000,
    };
    close_range(FIRST_FD, ~0u, 0);
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        _exit(2);
    if (cb_http_server_start(&o, router, &s, &err) == 0)
        _exit(3);
    if (fcntl(0, F_GETFD) < 0)
        _exit(4);
    for (int fd = FIRST_FD; fd < FD_LIMIT; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            _exit(5);
    _exit(0);
}

static void a_failed_start_closes_what_it_opened_and_nothing_else(void **state)
{
    (void)state;
    int status = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        start_without_descriptors();
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_failed_start_closes_what_it_opened_and_nothing_else),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
