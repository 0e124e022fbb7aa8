/* The forwarder against a real loopback upstream: a small HTTP server on a
 * thread that answers according to the request path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proxy/forward.h"
#include "upstream.h"

static struct test_upstream up;

static void answer(int c, const char *path, const char *request, void *arg)
{
    (void)request;
    (void)arg;
    if (strcmp(path, "/redirect") == 0) {
        test_upstream_reply(c, 302, "Location: http://169.254.169.254/\r\n", "", 0);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 4u << 20;
        char *body = malloc(n);
        memset(body, 'b', n);
        test_upstream_reply(c, 200, "", body, n);
        free(body);
    } else if (strcmp(path, "/slow") == 0) {
        sleep(2);
    } else {
        test_upstream_reply(c, 200, "X-Thing: a\r\nX-Thing: b\r\nContent-Type: text/plain\r\n",
                            "hello", 5);
    }
}

static int setup(void **state)
{
    (void)state;
    return test_upstream_start(&up, answer, NULL);
}

static int fetch(const char *path, size_t cap, uint64_t timeout_ms, struct cb_forward_response *res,
                 struct cb_error *err)
{
    static struct cb_forwarder *f;
    char url[256];
    /* The host name does not resolve: only the pin can get us there. */
    snprintf(url, sizeof(url), "http://upstream.invalid:%u%s", up.port, path);
    const char *hdrs[] = {"X-Tool: yes"};
    struct cb_forward_request req = {.url = url,
                                     .host = "upstream.invalid",
                                     .port = up.port,
                                     .addr = (struct sockaddr *)&up.addr,
                                     .addr_len = sizeof(up.addr),
                                     .method = "GET",
                                     .headers = hdrs,
                                     .n_headers = 1,
                                     .timeout_ms = timeout_ms,
                                     .max_response_bytes = cap};
    if (f == NULL)
        f = cb_forwarder_new();
    return cb__forward(f, &req, res, err);
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
    cb__forward_response_free(&res);
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
    cb__forward_response_free(&res);
}

static void size_cap_stops_the_transfer(void **state)
{
    (void)state;
    struct cb_forward_response res;
    struct cb_error err = {0};
    assert_int_equal(fetch("/big", 65536, 5000, &res, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "exceeds the limit of 65536 bytes"));
    cb__forward_response_free(&res);
}

static void timeout(void **state)
{
    (void)state;
    struct cb_forward_response res;
    struct cb_error err = {0};
    assert_int_equal(fetch("/slow", 1024, 300, &res, &err), -ETIMEDOUT);
    assert_non_null(strstr(err.msg, "timed out after 300 ms"));
    cb__forward_response_free(&res);
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
