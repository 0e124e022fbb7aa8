/* The forwarder against a real loopback upstream: a small HTTP server on a
 * thread that answers according to the request path. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/forward.h"

static int listen_fd;
static uint16_t port;
static struct sockaddr_in upstream;

static void answer(int c, const char *path)
{
    char head[512];
    if (strcmp(path, "/redirect") == 0) {
        const char *r = "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
                        "Content-Length: 0\r\n\r\n";
        write(c, r, strlen(r));
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 4u << 20;
        char *body = malloc(n);
        memset(body, 'b', n);
        int k = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
        write(c, head, (size_t)k);
        for (size_t off = 0; off < n;) {
            ssize_t w = write(c, body + off, n - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        free(body);
    } else if (strcmp(path, "/slow") == 0) {
        sleep(2);
    } else {
        const char *body = "hello";
        int k =
            snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nX-Thing: a\r\nX-Thing: b\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
        write(c, head, (size_t)k);
    }
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(listen_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[4096] = {0};
        ssize_t n = read(c, buf, sizeof(buf) - 1);
        char path[256] = "/";
        if (n > 0)
            sscanf(buf, "%*s %255s", path);
        answer(c, path);
        close(c);
    }
}

static int setup(void **state)
{
    (void)state;
    pthread_t t;
    socklen_t len = sizeof(upstream);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    upstream.sin_family = AF_INET;
    upstream.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr *)&upstream, sizeof(upstream)) < 0 ||
        listen(listen_fd, 16) < 0 || getsockname(listen_fd, (struct sockaddr *)&upstream, &len) < 0)
        return -1;
    port = ntohs(upstream.sin_port);
    return pthread_create(&t, NULL, serve, NULL);
}

static int fetch(const char *path, size_t cap, uint64_t timeout_ms, struct cb_forward_response *res,
                 struct cb_error *err)
{
    static struct cb_forwarder *f;
    char url[256];
    /* The host name does not resolve: only the pin can get us there. */
    snprintf(url, sizeof(url), "http://upstream.invalid:%u%s", port, path);
    const char *hdrs[] = {"X-Tool: yes"};
    struct cb_forward_request req = {.url = url,
                                     .host = "upstream.invalid",
                                     .port = port,
                                     .addr = (struct sockaddr *)&upstream,
                                     .addr_len = sizeof(upstream),
                                     .method = "GET",
                                     .headers = hdrs,
                                     .n_headers = 1,
                                     .timeout_ms = timeout_ms,
                                     .max_response_bytes = cap};
    if (f == NULL)
        f = cb_forwarder_new();
    return cb_forward(f, &req, res, err);
}

static void pinned_address_and_headers(void **state)
{
    (void)state;
    struct cb_forward_response res;
    struct cb_error err = {0};
    assert_int_equal(fetch("/", 1024, 5000, &res, &err), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.data, "hello");
    assert_string_equal(json_string_value(json_object_get(res.headers, "x-thing")), "a, b");
    assert_string_equal(json_string_value(json_object_get(res.headers, "content-type")),
                        "text/plain");
    cb_forward_response_free(&res);
}

static void redirects_are_returned_not_followed(void **state)
{
    (void)state;
    struct cb_forward_response res;
    struct cb_error err = {0};
    assert_int_equal(fetch("/redirect", 1024, 5000, &res, &err), 0);
    assert_int_equal(res.status, 302);
    assert_string_equal(json_string_value(json_object_get(res.headers, "location")),
                        "http://169.254.169.254/");
    cb_forward_response_free(&res);
}

static void size_cap_stops_the_transfer(void **state)
{
    (void)state;
    struct cb_forward_response res;
    struct cb_error err = {0};
    assert_int_equal(fetch("/big", 65536, 5000, &res, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "exceeds the limit of 65536 bytes"));
    cb_forward_response_free(&res);
}

static void timeout(void **state)
{
    (void)state;
    struct cb_forward_response res;
    struct cb_error err = {0};
    assert_int_equal(fetch("/slow", 1024, 300, &res, &err), -ETIMEDOUT);
    assert_non_null(strstr(err.msg, "timed out after 300 ms"));
    cb_forward_response_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pinned_address_and_headers),
        cmocka_unit_test(redirects_are_returned_not_followed),
        cmocka_unit_test(size_cap_stops_the_transfer),
        cmocka_unit_test(timeout),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
