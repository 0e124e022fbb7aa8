#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "core/utf8.h"

static bool valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = cb_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* n copies of the sequence seq. */
static char *repeat(const char *seq, size_t n)
{
    size_t l = strlen(seq);
    char *s = test_malloc(l * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * l, seq, l);
    s[l * n] = '\0';
    return s;
}

/* The boundaries of RFC 3629's table of well-formed byte sequences. */
static void seq_len_accepts_exactly_well_formed_sequences(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"\x00", 1},
        {"\x7f", 1},
        {"\x80", 0},
        {"\xc1\xbf", 0},
        {"\xc2\x80", 2},
        {"\xdf\xbf", 2},
        {"\xc2\x7f", 0},
        {"\xc2\xc0", 0},
        {"\xe0\x9f\xbf", 0},
        {"\xe0\xa0\x80", 3},
        {"\xed\x9f\xbf", 3},
        {"\xed\xa0\x80", 0},
        {"\xef\xbf\xbf", 3},
        {"\xe1\x80\x7f", 0},
        {"\xf0\x8f\xbf\xbf", 0},
        {"\xf0\x90\x80\x80", 4},
        {"\xf4\x8f\xbf\xbf", 4},
        {"\xf4\x90\x80\x80", 0},
        {"\xf5\x80\x80\x80", 0},
        {"\xff", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = cases[i].s[0] == '\0' ? 1 : strlen(cases[i].s);
        assert_int_equal(cb_utf8_seq_len((const unsigned char *)cases[i].s, n), cases[i].len);
    }
    /* A sequence cut short by the length is invalid, whatever follows. */
    assert_int_equal(cb_utf8_seq_len((const unsigned char *)"\xe2\x82\xac", 2), 0);
    assert_int_equal(cb_utf8_seq_len((const unsigned char *)"a", 0), 0);
}

static void valid_len_stops_at_the_first_bad_sequence(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* a é € 😀 */
    size_t n = strlen(s);
    assert_int_equal(cb_utf8_valid_len(s, n), n);
    assert_int_equal(cb_utf8_valid_len(s, n - 1), 6); /* the emoji cut short */
    assert_int_equal(cb_utf8_valid_len(s, 2), 1);
    assert_int_equal(cb_utf8_valid_len("", 0), 0);
    assert_int_equal(cb_utf8_valid_len("ab\0c", 4), 4); /* NUL is valid */
    assert_int_equal(cb_utf8_valid_len("ab\xed\xa0\x80"
                                       "c",
                                       6),
                     2);
    assert_int_equal(cb_utf8_valid_len("\xc0\x80", 2), 0);
}

static void put_encodes_scalar_values_and_refuses_the_rest(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(cb_utf8_put(0x24, out), 1);
    assert_memory_equal(out, "\x24", 1);
    assert_int_equal(cb_utf8_put(0xe9, out), 2);
    assert_memory_equal(out, "\xc3\xa9", 2);
    assert_int_equal(cb_utf8_put(0x20ac, out), 3);
    assert_memory_equal(out, "\xe2\x82\xac", 3);
    assert_int_equal(cb_utf8_put(0x1f600, out), 4);
    assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
    /* Every scalar value encodes to one well-formed sequence of its length. */
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        if (cp == 0xd800)
            cp = 0xe000;
        size_t k = cb_utf8_put(cp, out);
        assert_int_equal(k, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
        assert_int_equal(cb_utf8_seq_len((const unsigned char *)out, k), k);
    }
    memcpy(out, "xxxx", 4);
    assert_int_equal(cb_utf8_put(0xd800, out), 0);
    assert_int_equal(cb_utf8_put(0xdfff, out), 0);
    assert_int_equal(cb_utf8_put(0x110000, out), 0);
    assert_int_equal(cb_utf8_put(UINT32_MAX, out), 0);
    assert_memory_equal(out, "xxxx", 4);
}

static void cut_never_splits_a_sequence(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
    size_t n = strlen(s);
    for (size_t max = 0; max <= n + 2; max++) {
        size_t k = cb_utf8_cut(s, n, max);
        assert_true(k <= max && k <= n);
        assert_true(valid_utf8(s, k));
        assert_true(max < n ? max - k <= 3 : k == n);
    }
    assert_int_equal(cb_utf8_cut(s, n, 2), 1);
    assert_int_equal(cb_utf8_cut(s, n, 3), 3);
    assert_int_equal(cb_utf8_cut(s, n, 9), 6);
}

static void scrub_replaces_invalid_bytes_in_place(void **state)
{
    (void)state;
    char s[] = "ok\xff\xc3-\xe2\x82\xed\xa0\x80\xc3\xa9";
    cb_utf8_scrub(s, sizeof(s) - 1);
    assert_string_equal(s, "ok?"
                           "?-?"
                           "?"
                           "?"
                           "?"
                           "?\xc3\xa9");
}

/* cb_utf8_vformat reached through a variadic function, as cb_error_set
 * reaches it. */
static size_t utf8_format(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t utf8_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = cb_utf8_vformat(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* Every cut of a long run of 2-, 3- and 4-byte characters, and of outside
 * bytes that are not UTF-8 at all, comes out valid. */
static void format_output_is_always_valid(void **state)
{
    (void)state;
    const char *seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff\xfe", "\xc3"};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        char *arg = repeat(seqs[i], 700);
        for (size_t cap = 1; cap < 64; cap++) {
            char buf[64];
            size_t n = utf8_format(buf, cap, "method: %s", arg);
            assert_true(n < cap);
            assert_int_equal(strlen(buf), n);
            assert_true(valid_utf8(buf, n));
        }
        char buf[512];
        size_t n = utf8_format(buf, sizeof(buf), "unknown host call method: %s", arg);
        assert_true(n >= sizeof(buf) - 4 && valid_utf8(buf, n));
        test_free(arg);
    }
}

static void error_messages_stay_valid_when_cut(void **state)
{
    (void)state;
    char *arg = repeat("\xe2\x82\xac", 1000);
    struct cb_error err = {0};
    cb_error_set(&err, -1, "x%s", arg);
    assert_true(valid_utf8(err.msg, strlen(err.msg)));
    cb_error_prefix(&err, "%s", arg);
    assert_true(valid_utf8(err.msg, strlen(err.msg)));
    assert_true(strlen(err.msg) >= CB_ERROR_MSG_MAX - 4);
    cb_error_set(&err, -1, "short");
    cb_error_prefix(&err, "p%s", arg);
    assert_true(valid_utf8(err.msg, strlen(err.msg)));
    test_free(arg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seq_len_accepts_exactly_well_formed_sequences),
        cmocka_unit_test(valid_len_stops_at_the_first_bad_sequence),
        cmocka_unit_test(put_encodes_scalar_values_and_refuses_the_rest),
        cmocka_unit_test(cut_never_splits_a_sequence),
        cmocka_unit_test(scrub_replaces_invalid_bytes_in_place),
        cmocka_unit_test(format_output_is_always_valid),
        cmocka_unit_test(error_messages_stay_valid_when_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
