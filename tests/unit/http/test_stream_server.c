/* Streamed bodies through a real server over real sockets. Responses:
 * the framing on HTTP/1.1 and 1.0, streams that hold no limiter worker,
 * back-pressure from a reader that stops reading, the client's hang-up,
 * and quiesce ending the streams so that drain does not wait for them.
 * Requests: a raw route's body, sized or chunked, spooled to a file and
 * handed over whole; past its limit, 413; a spool that cannot be made, a
 * clear 500. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* Answers "<body_len> <bytes read from body_fd> <their hash>". */
static void h_up(struct cb_http_request *req, struct cb_http_response *res)
{
    uint64_t h = CB_FNV1A_INIT, n = 0;
    char chunk[8192];
    ssize_t k;
    while (req->body_fd >= 0 && (k = pread(req->body_fd, chunk, sizeof(chunk), (off_t)n)) > 0) {
        h = cb_fnv1a(h, chunk, (size_t)k);
        n += (uint64_t)k;
    }
    char *text = cb_xasprintf("%zu %llu %016llx", req->body_len, (unsigned long long)n,
                              (unsigned long long)h);
    res->status = 200;
    res->content_type = "text/plain";
    res->body = text;
    res->body_len = strlen(text);
}

static struct {
    struct cb_router *router;
    struct cb_http_server *srv;
    char spool[64];
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
    cb_router_add(g.router, "PUT", "/up", h_up, CB_ROUTE_RAW);
    snprintf(g.spool, sizeof(g.spool), "/tmp/cb-test-spool-XXXXXX");
    assert_non_null(mkdtemp(g.spool));
    struct cb_http_server_options o = {
        .host = "127.0.0.1",
        .auth_token = TOKEN,
        .max_body_bytes = 1024,
        .max_raw_body_bytes = 1u << 20,
        .spool_dir = g.spool,
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
    rmdir(g.spool); /* fails, and the test with it, should a spool file be left */
    return 0;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cb_http_server_port(g.srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static int dial(const char *path, const char *version)
{
    int fd = connect_server();
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

static void send_all(int fd, const void *data, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t k = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            return; /* the server answered early and closed */
        off += (size_t)k;
    }
}

/* n bytes that differ from their neighbours (free() them). */
static char *pattern(size_t n)
{
    char *body = cb_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 7 % 251);
    return body;
}

/* PUT /up with n bytes of the pattern, sized or chunked (in 10000-byte
 * chunks); the answer goes to buf. */
static void put(size_t n, bool chunked, char *buf, size_t cap)
{
    int fd = connect_server();
    char head[256];
    int k =
        snprintf(head, sizeof(head),
                 "PUT /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
                 "%s\r\n%s%zu\r\n\r\n",
                 TOKEN, chunked ? "Transfer-Encoding: chunked\r\nX-N: " : "Content-Length: ", n);
    send_all(fd, head, (size_t)k);
    char *body = pattern(n);
    for (size_t off = 0; off < n || chunked;) {
        size_t len = chunked && n - off > 10000 ? 10000 : n - off;
        char line[32];
        int m = snprintf(line, sizeof(line), "%zx\r\n", len);
        if (chunked)
            send_all(fd, line, (size_t)m);
        send_all(fd, body + off, len);
        if (chunked)
            send_all(fd, "\r\n", 2);
        off += len;
        if (len == 0)
            break;
    }
    read_all(fd, buf, cap, NULL);
    close(fd);
    free(body);
}

static const char *expected(size_t n)
{
    static char want[96];
    char *body = pattern(n);
    snprintf(want, sizeof(want), "%zu %zu %016llx", n, n,
             (unsigned long long)cb_fnv1a(CB_FNV1A_INIT, body, n));
    free(body);
    return want;
}

static void a_raw_body_is_spooled_and_handed_over_whole(void **state)
{
    (void)state;
    char buf[4096];
    put(300000, false, buf, sizeof(buf));
    assert_string_equal(strstr(buf, "\r\n\r\n") + 4, expected(300000));
    put(300000, true, buf, sizeof(buf));
    assert_non_null(strstr(buf, expected(300000)));
    put(0, false, buf, sizeof(buf));
    assert_string_equal(strstr(buf, "\r\n\r\n") + 4, expected(0));
}

static void a_raw_body_past_its_limit_is_refused(void **state)
{
    (void)state;
    char buf[4096];
    put((1u << 20) + 1, false, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 413 "));
    put((1u << 20) + 1, true, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 413 "));
    assert_non_null(strstr(buf, "1048576 bytes"));
}

static void a_spool_that_cannot_be_made_fails_clearly(void **state)
{
    (void)state;
    char buf[4096];
    assert_int_equal(rmdir(g.spool), 0);
    put(10, false, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 500 "));
    assert_non_null(strstr(buf, "the request body could not be stored"));
    assert_non_null(strstr(buf, g.spool));
    assert_int_equal(mkdir(g.spool, 0700), 0);
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
        cmocka_unit_test_setup_teardown(a_raw_body_is_spooled_and_handed_over_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_raw_body_past_its_limit_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_spool_that_cannot_be_made_fails_clearly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
