#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/parse.h"

static struct cb_http_head head;

static int parse(const char *text, struct cb_error *err)
{
    cb_error_clear(err);
    return cb__http_parse_head(text, strlen(text), &head, err);
}

static bool span_is(const char *buf, struct cb_http_span s, const char *want)
{
    return s.len == strlen(want) && memcmp(buf + s.off, want, s.len) == 0;
}

static void finds_the_end_of_a_head(void **state)
{
    (void)state;
    const char *crlf = "GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
    const char *lf = "GET / HTTP/1.1\nHost: x\n\nNEXT";
    struct cb_http_scan st = {0};
    assert_int_equal(cb__http_find_head_end(crlf, strlen(crlf), &st), strlen(crlf) - 4);
    st = (struct cb_http_scan){0};
    assert_int_equal(cb__http_find_head_end(lf, strlen(lf), &st), strlen(lf) - 4);
    /* Empty lines before the request line do not end the head. */
    const char *lead = "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    st = (struct cb_http_scan){0};
    assert_int_equal(cb__http_find_head_end(lead, strlen(lead), &st), strlen(lead));
    st = (struct cb_http_scan){0};
    assert_int_equal(cb__http_find_head_end("GET / HTTP/1.1\r\nHost", 20, &st), 0);
}

static void finds_the_end_a_byte_at_a_time(void **state)
{
    (void)state;
    const char *text = "POST /x HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\nbody";
    size_t want = strlen(text) - 4;
    struct cb_http_scan st = {0};
    size_t got = 0;
    for (size_t n = 1; n <= strlen(text) && got == 0; n++)
        got = cb__http_find_head_end(text, n, &st);
    assert_int_equal(got, want);
}

static void parses_a_request(void **state)
{
    (void)state;
    struct cb_error err;
    const char *t = "POST /execute?a=1&b HTTP/1.1\r\nHost: x\r\nX-A:  v  w \t\r\n"
                    "Content-Length: 12\r\nAuthorization: Bearer t\r\n\r\n";
    assert_int_equal(parse(t, &err), 0);
    assert_true(span_is(t, head.method, "POST"));
    assert_true(span_is(t, head.target, "/execute?a=1&b"));
    assert_true(span_is(t, head.path, "/execute"));
    assert_true(head.has_query);
    assert_true(span_is(t, head.query, "a=1&b"));
    assert_int_equal(head.minor, 1);
    assert_int_equal(head.nfields, 4);
    assert_true(span_is(t, head.fields[1].name, "X-A"));
    assert_true(span_is(t, head.fields[1].value, "v  w"));
    assert_int_equal(head.framing, CB_HTTP_LENGTH);
    assert_int_equal(head.content_length, 12);
    assert_true(head.keep_alive);
    assert_false(head.expect_continue);
    assert_int_equal(head.len, strlen(t));
}

static void decides_keep_alive_and_expect(void **state)
{
    (void)state;
    struct cb_error err;
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &err), 0);
    assert_false(head.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &err), 0);
    assert_true(head.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", &err), 0);
    assert_false(head.keep_alive);
    assert_int_equal(parse("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                           "Transfer-Encoding: Chunked\r\n\r\n",
                           &err),
                     0);
    assert_true(head.expect_continue);
    assert_int_equal(head.framing, CB_HTTP_CHUNKED);
    /* HTTP/1.0 has no 100 Continue. */
    assert_int_equal(parse("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &err), 0);
    assert_false(head.expect_continue);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &err), 0);
    assert_int_equal(head.framing, CB_HTTP_NO_BODY);
}

static void accepts_absolute_form_and_leading_empty_lines(void **state)
{
    (void)state;
    struct cb_error err;
    const char *t = "\r\n\nGET HTTPS://example.com:8/health?x HTTP/1.1\nHost: x\n\n";
    assert_int_equal(parse(t, &err), 0);
    assert_true(span_is(t, head.path, "/health"));
    assert_true(span_is(t, head.query, "x"));
    const char *u = "GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(parse(u, &err), 0);
    assert_int_equal(head.path.len, 0); /* decodes to "/" */
}

/* Every refused head: the code and a part of the message naming why. */
/* sizeof counts the NULs inside a literal, strlen would stop at them. */
#define CASE(text, code, msg)                                                                      \
    {                                                                                              \
        text, sizeof(text) - 1, code, msg                                                          \
    }

static const struct {
    const char *text;
    size_t len;
    int code;
    const char *msg;
} refused[] = {
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         -EINVAL, "both Content-Length and Transfer-Encoding"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", -EINVAL,
         "Content-Length given more than once"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", -EINVAL,
         "Content-Length given more than once"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n", -EINVAL,
         "Content-Length is not a decimal number"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", -EINVAL,
         "Content-Length is not a decimal number"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", -EINVAL,
         "Content-Length is not a decimal number"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", -EFBIG,
         "Content-Length is out of range"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", -EINVAL,
         "unsupported transfer coding \"gzip\""),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -EINVAL,
         "unsupported transfer coding \"gzip\""),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
         "\r\n",
         -EINVAL, "must be exactly \"chunked\""),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", -EINVAL,
         "unsupported transfer coding"),
    CASE("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -EINVAL,
         "Transfer-Encoding in an HTTP/1.0 request"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", -EINVAL, "bare CR"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX\rA: b\r\n\r\n", -EINVAL,
         "bare CR (not followed by LF) in "
         "line 3"),
    CASE("GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "bare CR"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", -EINVAL,
         "header X-A contains a NUL byte"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01"
         "b\r\n\r\n",
         -EINVAL, "header X-A contains control character 0x01"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", -EINVAL, "control character 0x7f"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n", -EINVAL,
         "a header name contains a NUL byte"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", -EINVAL,
         "whitespace between a header name and its colon"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", -EINVAL, "obsolete line folding"),
    CASE("GET / HTTP/1.1\r\n Host: x\r\n\r\n", -EINVAL, "obsolete line folding"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nXA\r\n\r\n", -EINVAL, "header line without a colon"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", -EINVAL, "empty name"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: v\r\n\r\n", -EINVAL,
         "a header name contains byte "
         "0xc3"),
    CASE("GET / HTTP/1.1\r\n\r\n", -EINVAL, "missing Host header"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", -EINVAL, "Host given more than once"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nauthorization: b\r\n\r\n", -EINVAL,
         "Authorization given more than once"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n", -EINVAL,
         "Content-Type given more than once"),
    CASE("GET / HTTP/1.1\r\nHost: x\r\nExpect: fancy\r\n\r\n", -EOPNOTSUPP,
         "unsupported expectation \"fancy\""),
    CASE("GET /execute%00zzz HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL,
         "the path contains an encoded control character (%00)"),
    CASE("GET /a%0d%0aX: y HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "more than two spaces"),
    CASE("GET /a%0d%0a HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "encoded control character (%0D)"),
    CASE("GET /a%7F HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "encoded control character (%7F)"),
    CASE("GET /a?q=%01 HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL,
         "the query contains an encoded control character (%01)"),
    CASE("GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "bad percent-escape in the path"),
    CASE("GET /a% HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "bad percent-escape in the path"),
    CASE("GET /a%4 HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "bad percent-escape in the path"),
    CASE("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL,
         "the request target contains a NUL byte"),
    CASE("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "control character 0x09"),
    CASE("GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "byte 0xc3; percent-encode it"),
    CASE("GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "'#'"),
    CASE("GET a HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "must be a path starting with '/'"),
    CASE("GET * HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "must be a path starting with '/'"),
    CASE("CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "must be a path starting with '/'"),
    CASE("GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL,
         "absolute request target without a "
         "host"),
    CASE("GET / HTTP/2.0\r\nHost: x\r\n\r\n", -EPROTONOSUPPORT,
         "HTTP version HTTP/2.0 is not "
         "supported"),
    CASE("GET / HTTP/1.2\r\nHost: x\r\n\r\n", -EPROTONOSUPPORT, "not supported"),
    CASE("GET / HTTP/1.1x\r\nHost: x\r\n\r\n", -EINVAL, "malformed HTTP version \"HTTP/1.1x\""),
    CASE("GET / http/1.1\r\nHost: x\r\n\r\n", -EINVAL, "malformed HTTP version"),
    CASE("GET / HTTP/1.1\0\r\nHost: x\r\n\r\n", -EINVAL, "malformed HTTP version \"HTTP/1.1?\""),
    CASE("GET /\r\n\r\n", -EINVAL, "malformed request line"),
    CASE("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "malformed request line"),
    CASE("GET / a HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "more than two spaces"),
    CASE("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", -EINVAL, "more than two spaces"),
    CASE(" GET / HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "empty method"),
    CASE("G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL, "method contains control character 0x01"),
    CASE("GETGETGETGETGETGETGETGETGETGETGETG / HTTP/1.1\r\nHost: x\r\n\r\n", -EINVAL,
         "method longer than 32 bytes"),
};

static void refuses_malformed_heads(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct cb_error err = {0};
        int r = cb__http_parse_head(refused[i].text, refused[i].len, &head, &err);
        if (r != refused[i].code || strstr(err.msg, refused[i].msg) == NULL)
            fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, r, err.msg, refused[i].code,
                     refused[i].msg);
    }
}

static void counts_fields_and_the_target(void **state)
{
    (void)state;
    struct cb_error err;
    char *t = calloc(1, 64 * 1024);
    size_t n = (size_t)snprintf(t, 64, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(t + n, 32, "X-%d: v\r\n", i);
    memcpy(t + n, "\r\n", 3);
    assert_int_equal(parse(t, &err), -EINVAL); /* 100 fields, but no Host */
    memcpy(t + n, "Host: x\r\n\r\n", 12);
    assert_int_equal(parse(t, &err), -E2BIG);
    assert_non_null(strstr(err.msg, "more than 100 header fields"));
    memcpy(t, "GET /", 5);
    memset(t + 5, 'a', 8200);
    memcpy(t + 8205, " HTTP/1.1\r\nHost: x\r\n\r\n", 23);
    assert_int_equal(parse(t, &err), -ENAMETOOLONG);
    free(t);
}

static void maps_codes_to_statuses(void **state)
{
    (void)state;
    assert_int_equal(cb__http_error_status(-EINVAL), 400);
    assert_int_equal(cb__http_error_status(-ENAMETOOLONG), 414);
    assert_int_equal(cb__http_error_status(-E2BIG), 431);
    assert_int_equal(cb__http_error_status(-EFBIG), 413);
    assert_int_equal(cb__http_error_status(-EPROTONOSUPPORT), 505);
    assert_int_equal(cb__http_error_status(-EOPNOTSUPP), 417);
}

static void decodes_paths(void **state)
{
    (void)state;
    struct cb_error err;
    char *p = NULL;
    assert_int_equal(cb__http_decode_path("/a%41%2fb%C3%A9", 15, &p, &err), 0);
    assert_string_equal(p, "/aA/b\xc3\xa9");
    free(p);
    assert_int_equal(cb__http_decode_path("", 0, &p, &err), 0);
    assert_string_equal(p, "/");
    free(p);
    assert_int_equal(cb__http_decode_path("/%C3%28", 7, &p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));
    assert_int_equal(cb__http_decode_path("/%FF", 4, &p, &err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_the_end_of_a_head),
        cmocka_unit_test(finds_the_end_a_byte_at_a_time),
        cmocka_unit_test(parses_a_request),
        cmocka_unit_test(decides_keep_alive_and_expect),
        cmocka_unit_test(accepts_absolute_form_and_leading_empty_lines),
        cmocka_unit_test(refuses_malformed_heads),
        cmocka_unit_test(counts_fields_and_the_target),
        cmocka_unit_test(maps_codes_to_statuses),
        cmocka_unit_test(decodes_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
