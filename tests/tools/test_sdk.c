/* Native unit tests of sdk/clawbox_tool.h: the JSON parser and serialiser
 * (including a deterministic mutation fuzz loop that checks the
 * parse/serialise round trip), the UTF-8 helpers, and cb_host_call against
 * a scripted host_call. Built with the host compiler, so the ASan build
 * checks the SDK's memory safety too. */
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* ---- scripted host_call ---- */

static struct {
    const char *answers[4]; /* raw responses, in order; NULL → return -1 */
    int n_answers;
    int calls;
    int caps[4];
    char last_req[4096];
} host;

int host_call(const char *req, int req_len, char *resp, int resp_cap)
{
    int i = host.calls++;
    const char *a;
    size_t n;

    if (req_len < (int)sizeof(host.last_req)) {
        memcpy(host.last_req, req, (size_t)req_len);
        host.last_req[req_len] = '\0';
    }
    if (i < 4)
        host.caps[i] = resp_cap;
    if (i >= host.n_answers || !(a = host.answers[i]))
        return -1;
    n = strlen(a);
    if (n > (size_t)resp_cap)
        n = (size_t)resp_cap; /* the reference host truncates silently */
    memcpy(resp, a, n);
    return (int)n;
}

static void script(int n, ...)
{
    va_list ap;
    memset(&host, 0, sizeof(host));
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        host.answers[i] = va_arg(ap, const char *);
    va_end(ap);
    host.n_answers = n;
}

/* ---- helpers ---- */

/* Parses text and returns its compact serialisation (caller frees), or
 * NULL if it does not parse. */
static char *roundtrip(const char *text, size_t len, int indent)
{
    struct cb_tool_error err;
    struct cb_json *v = cb_json_parse(text, len, &err);
    char *s;
    if (!v)
        return NULL;
    s = cb_json_serialize(v, indent, NULL);
    cb_json_free(v);
    return s;
}

static void assert_roundtrip(const char *in, const char *want)
{
    char *got = roundtrip(in, strlen(in), 0);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void assert_parse_error(const char *in, size_t offset, const char *msg_part)
{
    struct cb_tool_error err;
    struct cb_json *v = cb_json_parse(in, strlen(in), &err);
    assert_null(v);
    assert_int_equal(err.offset, offset);
    assert_non_null(strstr(err.msg, msg_part));
}

/* ---- JSON ---- */

static void test_parse_valid(void **state)
{
    (void)state;
    assert_roundtrip(" { \"a\" : [ 1 , -2.5e+3 , true , false , null ] } ",
                     "{\"a\":[1,-2.5e+3,true,false,null]}");
    assert_roundtrip("\"\\u00e9\\ud83d\\ude00\\n\\t\\/\\\"\\u0000\\u001f\"",
                     "\"\xc3\xa9\xf0\x9f\x98\x80\\n\\t/\\\"\\u0000\\u001f\"");
    assert_roundtrip("123456789012345678901234567890", "123456789012345678901234567890");
    assert_roundtrip("[]", "[]");
    assert_roundtrip("{}", "{}");
    assert_roundtrip("{\"k\":1,\"k\":2}", "{\"k\":1,\"k\":2}");
    assert_roundtrip("\"\x7f\"", "\"\x7f\"");
}

static void test_parse_invalid(void **state)
{
    (void)state;
    assert_parse_error("", 0, "unexpected end of input");
    assert_parse_error("[1,]", 3, "expected a JSON value, got ']'");
    assert_parse_error("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
    assert_parse_error("[01]", 2, "expected ',' or ']'");
    assert_parse_error("+1", 0, "expected a JSON value");
    assert_parse_error("1e", 0, "exponent");
    assert_parse_error("\"abc", 0, "unterminated string");
    assert_parse_error("\"\\u12G4\"", 1, "invalid \\u escape");
    assert_parse_error("\"\\u12\"", 1, "invalid \\u escape");
    assert_parse_error("\"\\ud800\\u0041\"", 1, "lone high surrogate");
    assert_parse_error("\"\xc0\x80\"", 1, "invalid UTF-8");     /* overlong */
    assert_parse_error("\"\xed\xa0\x80\"", 1, "invalid UTF-8"); /* surrogate */
    assert_parse_error("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8");
    assert_parse_error("\"\xe2\x82\"", 1, "invalid UTF-8"); /* cut */
    assert_parse_error("nul", 0, "expected a JSON value");
    assert_parse_error("[1]]", 3, "unexpected ']' after the JSON value");
    assert_parse_error("\"a\nb\"", 2, "control character");
}

static void test_positions(void **state)
{
    struct cb_tool_error err;
    const char *in = "{\n  \"\xc3\xa9\": [1,\n   x]}";
    (void)state;
    assert_null(cb_json_parse(in, strlen(in), &err));
    assert_int_equal(err.line, 3);
    assert_int_equal(err.column, 4);
    assert_int_equal(err.offset, (size_t)(strchr(in, 'x') - in));
}

static void test_depth_limit(void **state)
{
    char buf[600];
    struct cb_tool_error err;
    struct cb_json *v;
    (void)state;
    memset(buf, '[', 129);
    memset(buf + 129, ']', 129);
    assert_null(cb_json_parse(buf, 258, &err));
    assert_non_null(strstr(err.msg, "nesting too deep"));
    v = cb_json_parse(buf + 1, 256, &err);
    assert_non_null(v);
    cb_json_free(v);
    assert_null(cb_json_parse_depth("[[1]]", 5, 1, &err));
}

static void test_pretty(void **state)
{
    const char *in = "{\"a\":[1,{}],\"b\":{\"c\":[]}}";
    char *s = roundtrip(in, strlen(in), 2);
    (void)state;
    assert_string_equal(s,
                        "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": {\n    \"c\": []\n  }\n}");
    free(s);
}

static void test_builders(void **state)
{
    struct cb_json *o = cb_json_new_object(), *a = cb_json_new_array();
    long long i;
    double d;
    int b;
    char *s;
    (void)state;
    cb_json_set(o, "x", cb_json_new_int(1));
    cb_json_set(o, "x", cb_json_new_int(-9007199254740993LL)); /* replaces */
    cb_json_set(o, "n", cb_json_new_number(0.1));
    cb_json_set(o, "inf", cb_json_new_number(1.0 / 0.0));
    cb_json_setn(o, "k\0z", 3, cb_json_new_stringn("\xff\x01", 2)); /* bad UTF-8 → U+FFFD */
    assert_int_equal(cb_json_append(o, cb_json_new_null()), -EINVAL);
    assert_int_equal(cb_json_set(a, "k", cb_json_new_null()), -EINVAL);
    cb_json_append(a, cb_json_new_bool(1));
    cb_json_set(o, "a", a);
    s = cb_json_serialize(o, 0, NULL);
    assert_string_equal(s, "{\"x\":-9007199254740993,\"n\":0.1,\"inf\":null,"
                           "\"k\\u0000z\":\"\xef\xbf\xbd\\u0001\",\"a\":[true]}");
    free(s);
    assert_int_equal(cb_json_integer(cb_json_get(o, "x"), &i), 0);
    assert_true(i == -9007199254740993LL);
    assert_int_equal(cb_json_integer(cb_json_get(o, "n"), &i), -EINVAL);
    assert_int_equal(cb_json_number(cb_json_get(o, "n"), &d), 0);
    assert_true(d == 0.1);
    assert_int_equal(cb_json_bool(cb_json_at(cb_json_get(o, "a"), 0), &b), 0);
    assert_int_equal(b, 1);
    assert_null(cb_json_at(cb_json_get(o, "a"), 1));
    assert_null(cb_json_get(NULL, "x"));
    assert_null(cb_json_str(cb_json_get(o, "x")));
    assert_int_equal(cb_json_count(o), 5);
    cb_json_free(o);
}

static void test_integer_limits(void **state)
{
    struct cb_tool_error err;
    long long i;
    struct cb_json *v =
        cb_json_parse("[9223372036854775807,9223372036854775808,1e3,1.5]", 49, &err);
    (void)state;
    assert_non_null(v);
    assert_int_equal(cb_json_integer(cb_json_at(v, 0), &i), 0);
    assert_true(i == 9223372036854775807LL);
    assert_int_equal(cb_json_integer(cb_json_at(v, 1), &i), -ERANGE);
    assert_int_equal(cb_json_integer(cb_json_at(v, 2), &i), 0);
    assert_true(i == 1000);
    assert_int_equal(cb_json_integer(cb_json_at(v, 3), &i), -EINVAL);
    cb_json_free(v);
}

/* Mutates seed documents at random and checks that whatever parses
 * serialises to valid UTF-8 JSON that parses back to the same text. */
static void test_mutation_fuzz(void **state)
{
    static const char *seeds[] = {
        "{\"a\":[1,2.5,-3e-2,true,false,null,\"x\\u00e9\\ud83d\\ude00\"],\"b\":{\"c\":{}}}",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",[[[]]],{\"\":\"\"},0,-0.0,1E+2]",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
    };
    static const char alphabet[] = "{}[]\",:\\u0123456789.eE+-tfn \x80\xc3\xa9\xed\xf4";
    uint32_t seed = 12345;
    char buf[256];
    (void)state;
    for (int iter = 0; iter < 200000; iter++) {
        const char *s = seeds[iter % 3];
        size_t len = strlen(s);
        memcpy(buf, s, len);
        for (int m = 0; m < 1 + iter % 4; m++) {
            seed = seed * 1664525u + 1013904223u;
            size_t pos = (seed >> 8) % (len + 1);
            char c = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
            switch ((seed >> 28) % 3) {
            case 0: /* replace */
                if (pos < len)
                    buf[pos] = c;
                break;
            case 1: /* insert */
                if (len < sizeof(buf) - 1) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = c;
                    len++;
                }
                break;
            default: /* delete */
                if (pos < len) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
            }
        }
        char *once = roundtrip(buf, len, iter % 2 ? 0 : 3);
        if (!once)
            continue;
        assert_true(cb_utf8_valid(once, strlen(once)));
        char *twice = roundtrip(once, strlen(once), iter % 2 ? 0 : 3);
        assert_non_null(twice);
        assert_string_equal(once, twice);
        free(once);
        free(twice);
    }
}

/* ---- UTF-8 ---- */

static void test_utf8(void **state)
{
    uint32_t cp;
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    (void)state;
    assert_int_equal(cb_utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(cb_utf8_decode("\xf0\x9f\x98", 3, &cp), 0);
    assert_int_equal(cb_utf8_decode("\xc1\xbf", 2, &cp), 0);
    assert_int_equal(cb_utf8_decode("\xe0\x9f\xbf", 3, &cp), 0);
    assert_int_equal(cb_utf8_decode("\x80", 1, &cp), 0);
    assert_true(cb_utf8_valid(s, strlen(s)));
    assert_false(cb_utf8_valid("\xff", 1));
    assert_int_equal(cb_utf8_truncate(s, 10, 100), 10);
    assert_int_equal(cb_utf8_truncate(s, 10, 2), 1);
    assert_int_equal(cb_utf8_truncate(s, 10, 3), 3);
    assert_int_equal(cb_utf8_truncate(s, 10, 5), 3);
    assert_int_equal(cb_utf8_truncate(s, 10, 9), 6);
    assert_int_equal(cb_utf8_truncate(s, 10, 0), 0);
}

/* ---- buffer and log, and their deprecated names ---- */

static void test_buf(void **state)
{
    struct clawbox_buf b;
    size_t len;
    (void)state;
    clawbox_buf_init(&b, 8);
    assert_int_equal(clawbox_buf_puts(&b, "abc"), 0);
    assert_int_equal(clawbox_buf_printf(&b, "%d", 42), 0);
    assert_int_equal(clawbox_buf_putc(&b, 'x'), 0);
    assert_int_not_equal(clawbox_buf_puts(&b, "too long"), 0); /* past max */
    assert_int_equal(b.failed, -ENOSPC);
    clawbox_buf_free(&b);
    clawbox_buf_init(&b, 64);
    clawbox_buf_json_string(&b, "q\"", 2);
    char *s = clawbox_buf_steal(&b, &len);
    assert_string_equal(s, "\"q\\\"\"");
    assert_int_equal(len, 5);
    free(s);
}

/* The cb_buf and cb_log names of earlier releases still compile, to the
 * same functions. */
static void test_deprecated_names(void **state)
{
    struct cb_buf b;
    (void)state;
    cb_buf_init(&b, 16);
    cb_buf_append(&b, "ab", 2);
    cb_buf_putc(&b, 'c');
    assert_string_equal(b.data, "abc");
    cb_buf_free(&b);
    script(2, "{\"ok\":null}", "{\"ok\":null}");
    assert_int_equal(cb_log("info", "hi"), 0);
    assert_string_equal(host.last_req,
                        "{\"method\":\"log\",\"params\":{\"level\":\"info\",\"message\":\"hi\"}}");
    assert_int_equal(cb_logf("warn", "n=%d", 7), 0);
    assert_non_null(strstr(host.last_req, "\"message\":\"n=7\""));
}

/* ---- host calls ---- */

static void test_host_ok_and_error(void **state)
{
    struct cb_tool_error err;
    struct cb_json *p = cb_json_new_object(), *v;
    (void)state;
    cb_json_set(p, "q", cb_json_new_string("\"x\""));
    script(1, "{\"ok\":{\"n\":1}}");
    v = cb_host_call("m", p, &err);
    assert_non_null(v);
    assert_string_equal(host.last_req, "{\"method\":\"m\",\"params\":{\"q\":\"\\\"x\\\"\"}}");
    assert_int_equal(host.caps[0], CB_HOST_RESPONSE_CAP);
    assert_non_null(cb_json_get(v, "n"));
    cb_json_free(v);
    script(1, "{\"ok\":null}");
    v = cb_host_call("log", NULL, &err);
    assert_true(cb_json_is(v, CB_JSON_NULL));
    assert_string_equal(host.last_req, "{\"method\":\"log\",\"params\":null}");
    cb_json_free(v);
    script(1, "{\"error\":\"network access denied: x\"}");
    assert_null(cb_host_call("http_request", p, &err));
    assert_string_equal(err.msg, "network access denied: x");
    script(1, NULL);
    assert_null(cb_host_call("m", NULL, &err));
    assert_non_null(strstr(err.msg, "rejected"));
    cb_json_free(p);
}

static void test_host_retry(void **state)
{
    struct cb_tool_error err;
    struct cb_json *v;
    (void)state;
    script(2, "{\"error\":\"response of 2000000 bytes does not fit the buffer of 1048576 bytes\"}",
           "{\"ok\":1}");
    v = cb_host_call("m", NULL, &err);
    assert_non_null(v);
    assert_int_equal(host.calls, 2);
    assert_int_equal(host.caps[1], 2000000);
    cb_json_free(v);
    /* Only one retry. */
    script(3, "{\"error\":\"response of 2000000 bytes does not fit the buffer of 1048576 bytes\"}",
           "{\"error\":\"response of 3000000 bytes does not fit the buffer of 2000000 bytes\"}",
           "{\"ok\":1}");
    assert_null(cb_host_call("m", NULL, &err));
    assert_int_equal(host.calls, 2);
    /* Absurd sizes are not retried. */
    script(2, "{\"error\":\"response of 999999999999 bytes does not fit the buffer of 1 bytes\"}",
           "{\"ok\":1}");
    assert_null(cb_host_call("m", NULL, &err));
    assert_int_equal(host.calls, 1);
    /* A silently truncated answer (reference host) is reported. */
    static char big[CB_HOST_RESPONSE_CAP + 100];
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "{\"ok\":\"", 7);
    script(1, big);
    assert_null(cb_host_call("m", NULL, &err));
    assert_non_null(strstr(err.msg, "truncated"));
}

static void test_http_request(void **state)
{
    struct cb_tool_error err;
    struct cb_http_request req;
    struct cb_http_response resp;
    struct cb_json *h = cb_json_new_object();
    (void)state;
    cb_json_set(h, "Accept", cb_json_new_string("text/plain"));
    memset(&req, 0, sizeof(req));
    req.url = "https://x.example/";
    req.headers = h;
    req.body = "a\0b";
    req.body_len = 3;
    script(1, "{\"ok\":{\"status\":200,\"headers\":{\"content-type\":\"text/plain\"},"
              "\"body\":\"hi\\u0000\"}}");
    assert_int_equal(cb_http_request(&req, &resp, &err), 0);
    assert_string_equal(host.last_req,
                        "{\"method\":\"http_request\",\"params\":{\"url\":\"https://x.example/\","
                        "\"method\":\"GET\",\"headers\":{\"Accept\":\"text/plain\"},"
                        "\"body\":\"a\\u0000b\"}}");
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 3);
    assert_memory_equal(resp.body, "hi\0", 3);
    assert_string_equal(cb_json_str(cb_json_get(resp.headers, "content-type")), "text/plain");
    cb_http_response_free(&resp);
    script(1, "{\"ok\":{\"status\":-1}}");
    assert_int_equal(cb_http_request(&req, &resp, &err), -EIO);
    assert_string_equal(err.msg, "malformed http_request response");
    cb_http_response_free(&resp);
    cb_json_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_pretty),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_integer_limits),
        cmocka_unit_test(test_mutation_fuzz),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_host_ok_and_error),
        cmocka_unit_test(test_host_retry),
        cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_deprecated_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
