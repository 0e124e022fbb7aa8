/* Streamed response bodies through a real server over real sockets: the
 * framing on HTTP/1.1 and 1.0, streams that hold no limiter worker,
 * back-pressure from a reader that stops reading, the client's hang-up,
 * and quiesce ending the streams so that drain does not wait for them. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "http/router.h"
#include "http/server.h"

#define TOKEN "t"

static atomic_uint calls, freed;
static atomic_ulong produced;

struct counter {
    unsigned next, idle;
};

/* "0\n" to "4\n", each after an idle turn, then the end. */
static enum cb_http_stream_rc count(void *ctx, char *out, size_t room, size_t *n)
{
    struct counter *c = ctx;
    (void)room;
    atomic_fetch_add(&calls, 1);
    if (c->idle++ % 2 == 0)
        return CB_HTTP_STREAM_IDLE;
    out[0] = (char)('0' + c->next++);
    out[1] = '\n';
    *n = 2;
    return c->next == 5 ? CB_HTTP_STREAM_END : CB_HTTP_STREAM_MORE;
}

/* As much as there is room for, for ever. */
static enum cb_http_stream_rc flood(void *ctx, char *out, size_t room, size_t *n)
{
    (void)ctx;
    atomic_fetch_add(&calls, 1);
    memset(out, 'x', room);
    *n = room;
    atomic_fetch_add(&produced, room);
    return CB_HTTP_STREAM_MORE;
}

static enum cb_http_stream_rc idle(void *ctx, char *out, size_t room, size_t *n)
{
    (void)ctx, (void)out, (void)room, (void)n;
    atomic_fetch_add(&calls, 1);
    return CB_HTTP_STREAM_IDLE;
}

static void release(void *ctx)
{
    free(ctx);
    atomic_fetch_add(&freed, 1);
}

static void respond(struct cb_http_response *res,
                    enum cb_http_stream_rc (*fn)(void *, char *, size_t, size_t *))
{
    struct cb_http_stream st = {fn, release, cb_xcalloc(1, sizeof(struct counter))};
    cb_http_respond_stream(res, "text/plain", &st);
}

static void h_count(struct cb_http_request *req, struct cb_http_response *res)
{
    (void)req;
    respond(res, count);
}

static void h_flood(struct cb_http_request *req, struct cb_http_response *res)
{
    (void)req;
    respond(res, flood);
}

static void h_idle(struct cb_http_request *req, struct cb_http_response *res)
{
    (void)req;
    respond(res, idle);
}

static struct {
    struct cb_router *router;
    struct cb_http_server *srv;
} g;

static int setup(void **state)
{
    (void)state;
    atomic_store(&calls, 0);
    atomic_store(&freed, 0);
    atomic_store(&produced, 0);
    g.router = cb_router_new();
    cb_router_add(g.router, "GET", "/count", h_count, 0);
    cb_router_add(g.router, "GET", "/flood", h_flood, 0);
    cb_router_add(g.router, "GET", "/idle", h_idle, 0);
    struct cb_http_server_options o = {
        .host = "127.0.0.1",
        .auth_token = TOKEN,
        .max_body_bytes = 1024,
        .threads = 1,
        .max_concurrent = 1, /* one worker: streams must not hold it */
        /* A request may come while the worker is still letting go of the
         * one before (its head is written first): it waits, briefly. A
         * stream that held the worker would still fail the tests. */
        .max_queued = 4,
        .queue_timeout_ms = 2000,
        .max_connections = 64,
        .request_head_timeout_ms = 5000,
        .request_body_timeout_ms = 5000,
    };
    struct cb_error err = {0};
    assert_int_equal(cb_http_server_start(&o, g.router, &g.srv, &err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g.srv)
        assert_true(cb_http_server_stop(g.srv));
    g.srv = NULL;
    cb_router_free(g.router);
    return 0;
}

static int dial(const char *path, const char *version)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cb_http_server_port(g.srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char req[256];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/%s\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n",
                 path, version, TOKEN);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    return fd;
}

/* Reads until the server closes, or until `until` appears (when given),
 * or 5 s pass. */
static size_t read_all(int fd, char *buf, size_t cap, const char *until)
{
    size_t len = 0;
    uint64_t end = cb_now_mono_ns() + 5000000000ull;
    while (len + 1 < cap && cb_now_mono_ns() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
        if (until && strstr(buf, until))
            break;
    }
    buf[len] = '\0';
    return len;
}

static void wait_for(atomic_uint *v, unsigned want)
{
    uint64_t end = cb_now_mono_ns() + 3000000000ull;
    while (atomic_load(v) < want && cb_now_mono_ns() < end)
        usleep(10000);
    assert_int_equal(atomic_load(v), want);
}

static void a_stream_is_chunked_on_http11(void **state)
{
    (void)state;
    char buf[4096];
    int fd = dial("/count", "1.1");
    read_all(fd, buf, sizeof(buf), NULL);
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Transfer-Encoding: chunked\r\n"));
    assert_null(strstr(buf, "Content-Length"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    const char *body = strstr(buf, "\r\n\r\n") + 4;
    assert_string_equal(body,
                        "2\r\n0\n\r\n2\r\n1\n\r\n2\r\n2\n\r\n2\r\n3\n\r\n2\r\n4\n\r\n0\r\n\r\n");
    wait_for(&freed, 1);
}

static void a_stream_is_bare_on_http10(void **state)
{
    (void)state;
    char buf[4096];
    int fd = dial("/count", "1.0");
    read_all(fd, buf, sizeof(buf), NULL);
    close(fd);
    assert_null(strstr(buf, "Transfer-Encoding"));
    assert_null(strstr(buf, "Content-Length"));
    assert_string_equal(strstr(buf, "\r\n\r\n") + 4, "0\n1\n2\n3\n4\n");
}

/* An endless idle stream holds no worker: with one worker, another
 * protected request is answered while it is open. Its client's hang-up
 * frees it. */
static void streams_hold_no_worker_and_end_with_their_client(void **state)
{
    (void)state;
    char buf[4096];
    int a = dial("/idle", "1.1");
    read_all(a, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "200 OK"));
    int b = dial("/count", "1.1");
    read_all(b, buf, sizeof(buf), NULL);
    close(b);
    assert_non_null(strstr(buf, "0\r\n\r\n"));
    wait_for(&freed, 1);
    close(a);
    wait_for(&freed, 2);
}

/* A reader that stops reading stops its producer: only what the socket
 * buffers hold is ever produced, however long it waits. */
static void a_stalled_reader_stalls_its_producer(void **state)
{
    (void)state;
    int fd = dial("/flood", "1.1");
    usleep(500000);
    unsigned before = atomic_load(&calls);
    usleep(300000);
    assert_int_equal(atomic_load(&calls), before);
    assert_true(atomic_load(&produced) < 64ul * 1024 * 1024);
    close(fd);
    wait_for(&freed, 1);
}

/* After quiesce a stream ends with its last chunk, and drain does not
 * wait for it. */
static void quiesce_ends_streams(void **state)
{
    (void)state;
    char buf[4096];
    int fd = dial("/idle", "1.1");
    read_all(fd, buf, sizeof(buf), "\r\n\r\n");
    uint64_t t0 = cb_now_mono_ns();
    cb_http_server_quiesce(g.srv);
    assert_int_equal(cb_http_server_drain(g.srv, 5000), 0);
    assert_true(cb_now_mono_ns() - t0 < 1000000000ull);
    read_all(fd, buf, sizeof(buf), NULL);
    assert_string_equal(buf, "0\r\n\r\n");
    close(fd);
    wait_for(&freed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_stream_is_chunked_on_http11, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stream_is_bare_on_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(streams_hold_no_worker_and_end_with_their_client, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_stalled_reader_stalls_its_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(quiesce_ends_streams, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
