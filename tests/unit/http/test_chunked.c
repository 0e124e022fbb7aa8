#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/chunked.h"

struct out {
    char data[4096];
    size_t len;
};

static void sink(void *ud, const char *data, size_t n)
{
    struct out *o = ud;
    assert_true(o->len + n <= sizeof(o->data));
    memcpy(o->data + o->len, data, n);
    o->len += n;
}

/* Feeds text in pieces of `step` bytes; returns the decoder's last answer
 * and sets *used to the bytes it took in all. */
static int feed(const char *text, size_t len, size_t step, struct out *o, size_t *used,
                struct cb_error *err)
{
    struct cb_http_chunked st = {0};
    size_t pos = 0;
    int r = 0;
    memset(o, 0, sizeof(*o));
    while (pos < len && r == 0) {
        size_t n = len - pos < step ? len - pos : step;
        size_t u = 0;
        r = cb__http_chunked_feed(&st, text + pos, n, &u, sink, o, err);
        if (r >= 0)
            pos += r == 1 ? u : n;
    }
    *used = pos;
    return r;
}

static void decodes_in_any_split(void **state)
{
    (void)state;
    static const char body[] = "5;name=\"v\"\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    size_t len = sizeof(body) - 1;
    for (size_t step = 1; step <= len; step++) {
        struct out o;
        size_t used = 0;
        struct cb_error err = {0};
        assert_int_equal(feed(body, len, step, &o, &used, &err), 1);
        assert_int_equal(used, len - 4);
        assert_int_equal(o.len, 11);
        assert_memory_equal(o.data, "hello world", 11);
    }
}

static void accepts_whitespace_before_extensions(void **state)
{
    (void)state;
    static const char body[] = "3 \t;x\r\nabc\r\n0\r\n\r\n";
    struct out o;
    size_t used = 0;
    struct cb_error err = {0};
    assert_int_equal(feed(body, sizeof(body) - 1, 64, &o, &used, &err), 1);
    assert_int_equal(o.len, 3);
    assert_int_equal(used, sizeof(body) - 1);
}

static void decodes_a_16_digit_size(void **state)
{
    (void)state;
    struct cb_http_chunked st = {0};
    struct out o = {0};
    struct cb_error err = {0};
    size_t used = 0;
    const char *t = "000000000000000A\r\n";
    assert_int_equal(cb__http_chunked_feed(&st, t, strlen(t), &used, sink, &o, &err), 0);
    assert_int_equal(st.size, 10);
}

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
    CASE("zz\r\n", -EINVAL, "chunk size is not a hexadecimal number"),
    CASE("\r\n", -EINVAL, "chunk size is not a hexadecimal number"),
    CASE("5x\r\n", -EINVAL, "chunk size is not a hexadecimal number"),
    CASE("5 5\r\n", -EINVAL, "chunk size is not a hexadecimal number"),
    CASE("-5\r\n", -EINVAL, "chunk size is not a hexadecimal number"),
    CASE("10000000000000000\r\n", -EINVAL, "more than 16 hex digits"),
    CASE("5;a\x01\r\n", -EINVAL, "control character in a chunk extension"),
    CASE("5;a\0\r\n", -EINVAL, "control character in a chunk extension"),
    CASE("5\rx", -EINVAL, "bare CR in a chunk size line"),
    CASE("3\r\nabcd\r\n", -EINVAL, "chunk data longer than its declared size"),
    CASE("3\r\nabc\rx", -EINVAL, "bare CR after chunk data"),
    CASE("0\r\nX T: 1\r\n\r\n", -EINVAL, "malformed trailer field name"),
    CASE("0\r\n:1\r\n\r\n", -EINVAL, "malformed trailer field"),
    CASE("0\r\nX-T: a\0b\r\n\r\n", -EINVAL, "control character in a trailer field"),
    CASE("0\r\nX-T: a\rb\r\n\r\n", -EINVAL, "bare CR in the trailer section"),
    CASE("0\r\n\rx", -EINVAL, "bare CR in the trailer section"),
    CASE("3\nabc\r\n", -EINVAL, "bare LF in a chunk size line"),
    CASE("3;x\nabc\r\n", -EINVAL, "bare LF in a chunk size line"),
    CASE("3 \n", -EINVAL, "bare LF in a chunk size line"),
    CASE("3\r\nabc\n0\r\n\r\n", -EINVAL, "bare LF after chunk data"),
    CASE("0\r\n\n", -EINVAL, "bare LF in the trailer section"),
    CASE("0\r\nX-T: 1\n\r\n", -EINVAL, "bare LF in the trailer section"),
    CASE("0\r\nX-T\n", -EINVAL, "bare LF in the trailer section"),
};

static void refuses_malformed_framing(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct out o;
        size_t used = 0;
        struct cb_error err = {0};
        int r = feed(refused[i].text, refused[i].len, 1, &o, &used, &err);
        if (r != refused[i].code || strstr(err.msg, refused[i].msg) == NULL)
            fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, r, err.msg, refused[i].code,
                     refused[i].msg);
    }
}

static void bounds_extensions_and_trailers(void **state)
{
    (void)state;
    size_t n = CB_HTTP_MAX_CHUNK_LINE + 16;
    char *t = malloc(n);
    struct out o;
    size_t used = 0;
    struct cb_error err = {0};
    memcpy(t, "5;", 2);
    memset(t + 2, 'a', n - 2);
    assert_int_equal(feed(t, n, 512, &o, &used, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "longer than 4096 bytes"));
    /* A line just at the limit is fine. */
    memcpy(t + CB_HTTP_MAX_CHUNK_LINE - 2, "\r\n", 2);
    assert_int_equal(feed(t, CB_HTTP_MAX_CHUNK_LINE, 512, &o, &used, &err), 0);
    free(t);
    n = CB_HTTP_MAX_TRAILER + 64;
    t = malloc(n);
    memcpy(t, "0\r\nX-T: ", 8);
    memset(t + 8, 'v', n - 8);
    assert_int_equal(feed(t, n, 4096, &o, &used, &err), -E2BIG);
    assert_non_null(strstr(err.msg, "trailer section larger than"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_in_any_split),
        cmocka_unit_test(accepts_whitespace_before_extensions),
        cmocka_unit_test(decodes_a_16_digit_size),
        cmocka_unit_test(refuses_malformed_framing),
        cmocka_unit_test(bounds_extensions_and_trailers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
