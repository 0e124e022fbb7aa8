#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/util.h"

static void append_within_limit(void **state)
{
    (void)state;
    struct cb_buf b;
    cb_buf_init(&b, 8);
    assert_int_equal(cb_buf_append(&b, "abcd", 4), 0);
    assert_int_equal(cb_buf_printf(&b, "%d", 1234), 0);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcd1234");
    cb_buf_free(&b);
}

static void append_past_limit_fails_and_keeps_data(void **state)
{
    (void)state;
    struct cb_buf b;
    cb_buf_init(&b, 5);
    assert_int_equal(cb_buf_puts(&b, "abc"), 0);
    assert_int_equal(cb_buf_puts(&b, "def"), -E2BIG);
    assert_int_equal(cb_buf_printf(&b, "%s", "xyz"), -E2BIG);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    assert_int_equal(cb_buf_puts(&b, "de"), 0);
    assert_string_equal(b.data, "abcde");
    cb_buf_free(&b);
}

static void huge_append_does_not_overflow(void **state)
{
    (void)state;
    struct cb_buf b;
    cb_buf_init(&b, 16);
    assert_int_equal(cb_buf_puts(&b, "x"), 0);
    assert_int_equal(cb_buf_append(&b, "y", SIZE_MAX), -E2BIG);
    assert_int_equal(b.len, 1);
    cb_buf_free(&b);
}

/* SIZE_MAX means no bound: the buffer still grows (max + 1 must not
 * wrap to a capacity of nothing). */
static void unbounded_buffer_grows(void **state)
{
    (void)state;
    struct cb_buf b;
    cb_buf_init(&b, SIZE_MAX);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cb_buf_puts(&b, "0123456789"), 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    assert_memory_equal(b.data + 9990, "0123456789", 11);
    cb_buf_free(&b);
}

static void steal_hands_over_data(void **state)
{
    (void)state;
    struct cb_buf b;
    size_t n = 0;
    cb_buf_init(&b, 100);
    char *empty = cb_buf_steal(&b, &n);
    assert_string_equal(empty, "");
    assert_int_equal(n, 0);
    free(empty);
    cb_buf_puts(&b, "hello");
    char *p = cb_buf_steal(&b, &n);
    assert_string_equal(p, "hello");
    assert_int_equal(n, 5);
    assert_null(b.data);
    free(p);
}

static void query_values_are_percent_encoded(void **state)
{
    (void)state;
    struct cb_buf b;
    cb_buf_init(&b, 1024);
    assert_int_equal(cb_buf_put_query(&b, "/tmp/a b&c=d#e?f%g+\xc3\xa9~._-"), 0);
    assert_string_equal(b.data, "/tmp/a%20b%26c%3Dd%23e%3Ff%25g%2B%C3%A9~._-");
    cb_buf_free(&b);
    cb_buf_init(&b, 4);
    assert_true(cb_buf_put_query(&b, "&&") < 0); /* past the maximum */
    cb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_within_limit),
        cmocka_unit_test(query_values_are_percent_encoded),
        cmocka_unit_test(append_past_limit_fails_and_keeps_data),
        cmocka_unit_test(huge_append_does_not_overflow),
        cmocka_unit_test(unbounded_buffer_grows),
        cmocka_unit_test(steal_hands_over_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
