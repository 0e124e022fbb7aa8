#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"

static void const_time_eq_compares_bytes_and_lengths(void **state)
{
    (void)state;
    assert_true(cb_const_time_eq("secret", 6, "secret", 6));
    assert_false(cb_const_time_eq("secret", 6, "secreT", 6));
    assert_false(cb_const_time_eq("secret", 6, "secret1", 7));
    assert_true(cb_const_time_eq("", 0, "", 0));
}

static void parse_u64_rejects_junk_and_overflow(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(cb_parse_u64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(cb_parse_u64("18446744073709551616", 20, &v), -ERANGE);
    assert_int_equal(cb_parse_u64("-1", 2, &v), -EINVAL);
    assert_int_equal(cb_parse_u64(" 1", 2, &v), -EINVAL);
    assert_int_equal(cb_parse_u64("", 0, &v), -EINVAL);
    assert_int_equal(cb_parse_u64("12x", 3, &v), -EINVAL);
    assert_int_equal(cb_parse_u64("9800", 4, &v), 0);
    assert_int_equal(v, 9800);
}

static void hex_and_random(void **state)
{
    (void)state;
    unsigned char a[32], b[32];
    char hex[65];
    assert_int_equal(cb_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(cb_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    const unsigned char fixed[] = {0x00, 0xab, 0xff};
    cb_hex_encode(fixed, 3, hex);
    assert_string_equal(hex, "00abff");
}

static void hex_byte_writes_two_digits_in_either_case(void **state)
{
    (void)state;
    char out[3] = "..";
    cb_hex_byte(0x0a, false, out);
    assert_string_equal(out, "0a");
    cb_hex_byte(0xfe, true, out);
    assert_string_equal(out, "FE");
    cb_hex_byte(0x00, true, out);
    assert_string_equal(out, "00");
    char none[1] = {0};
    cb_hex_encode((const unsigned char *)"", 0, none);
    assert_string_equal(none, "");
}

static void hex_digit_reads_either_case_and_refuses_the_rest(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdefABCDEF";
    for (int i = 0; digits[i] != '\0'; i++)
        assert_int_equal(cb_hex_digit((unsigned char)digits[i]), i < 16 ? i : i - 6);
    const char *bad = "gG/:@`xX -";
    for (int i = 0; bad[i] != '\0'; i++)
        assert_int_equal(cb_hex_digit((unsigned char)bad[i]), -1);
    assert_int_equal(cb_hex_digit(0xc1), -1); /* 'A' | 0x80 */
    assert_int_equal(cb_hex_digit(0), -1);
}

/* Reference values of 64-bit FNV-1a (the draft-eastlake-fnv test suite). */
static void fnv1a_matches_reference_and_continues(void **state)
{
    (void)state;
    assert_true(cb_fnv1a(CB_FNV1A_INIT, "", 0) == 0xcbf29ce484222325ULL);
    assert_true(cb_fnv1a(CB_FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(cb_fnv1a(CB_FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
    uint64_t h = cb_fnv1a(CB_FNV1A_INIT, "foo", 3);
    assert_true(cb_fnv1a(h, "bar", 3) == 0x85944171f73967e8ULL);
    /* Bytes are taken unsigned: a sign-extended 0xff would give another value. */
    const unsigned char high[] = {0xff, 0x80};
    assert_true(cb_fnv1a(CB_FNV1A_INIT, high, 2) == 0x0a9a2607b6f6e56aULL);
}

static void hex_is_lower_accepts_what_encode_writes(void **state)
{
    (void)state;
    const unsigned char bytes[] = {0x01, 0x9a, 0xff};
    char hex[7];
    cb_hex_encode(bytes, sizeof(bytes), hex);
    assert_true(cb_hex_is_lower(hex, 6));
    assert_true(cb_hex_is_lower("", 0));
    assert_false(cb_hex_is_lower("019Aff", 6));
    assert_false(cb_hex_is_lower("019g", 4));
    assert_false(cb_hex_is_lower("01\0f", 4));
    assert_true(cb_hex_is_lower("01xx", 2)); /* only the first n bytes count */
}

static void asprintf_formats(void **state)
{
    (void)state;
    char *s = cb_xasprintf("%s-%d", "a", 42);
    assert_string_equal(s, "a-42");
    free(s);
}

static bool ready_on_third_call(void *ud)
{
    return ++*(int *)ud >= 3;
}

static bool never(void *ud)
{
    ++*(int *)ud;
    return false;
}

static void yield_until_stops_when_ready_or_late(void **state)
{
    (void)state;
    int calls = 0;
    assert_true(cb_yield_until(ready_on_third_call, &calls, 10ull * 1000 * 1000 * 1000));
    assert_int_equal(calls, 3);
    calls = 0;
    uint64_t start = cb_now_mono_ns();
    assert_false(cb_yield_until(never, &calls, 2 * 1000 * 1000));
    uint64_t took = cb_now_mono_ns() - start;
    assert_true(took >= 2 * 1000 * 1000 && took < 1000ull * 1000 * 1000);
    assert_true(calls >= 2);
    calls = 0;
    assert_false(cb_yield_until(never, &calls, 0)); /* one look, no wait */
    assert_int_equal(calls, 1);
}

static void mono_deadline_is_ahead_and_normalised(void **state)
{
    (void)state;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct timespec d = cb_mono_deadline(1999);
    assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
    int64_t ms = (int64_t)(d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
    assert_true(ms >= 1998 && ms <= 2100);
}

static void uuid_v4_has_version_and_variant(void **state)
{
    (void)state;
    char a[37], b[37];
    cb_uuid_v4(a);
    cb_uuid_v4(b);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_string_not_equal(a, b);
}

/* UUIDs come from a per-thread pool: a forked child must not hand out
 * the ones its parent hands out next, nor two threads the same. */
static void uuid_v4_is_not_shared_with_a_fork(void **state)
{
    (void)state;
    char first[37], child[37], parent[37];
    cb_uuid_v4(first); /* fills the pool */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cb_uuid_v4(child);
        _exit(write(p[1], child, sizeof(child)) == (ssize_t)sizeof(child) ? 0 : 1);
    }
    close(p[1]);
    assert_int_equal(read(p[0], child, sizeof(child)), sizeof(child));
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    cb_uuid_v4(parent);
    assert_string_not_equal(child, parent);
    assert_string_not_equal(child, first);
    /* Many in a row never repeat (the pool is refilled, not reused). */
    char seen[64][37];
    for (int i = 0; i < 64; i++) {
        cb_uuid_v4(seen[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
}

static void rfc3339_ms_formats_utc(void **state)
{
    (void)state;
    char t[CB_RFC3339_LEN];
    cb_rfc3339_ms(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    cb_rfc3339_ms(1796605323456ULL, t);
    assert_string_equal(t, "2026-12-07T01:02:03.456Z");
}

static void name_valid_is_short_and_plain(void **state)
{
    (void)state;
    char longest[CB_NAME_MAX + 2];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[CB_NAME_MAX] = '\0';
    assert_true(cb_name_valid(longest));
    longest[CB_NAME_MAX] = 'a';
    longest[CB_NAME_MAX + 1] = '\0';
    assert_false(cb_name_valid(longest));
    assert_true(cb_name_valid("clawbox-0f3c_X9"));
    assert_false(cb_name_valid(""));
    assert_false(cb_name_valid(NULL));
    assert_false(cb_name_valid("../etc"));
    assert_false(cb_name_valid("a b"));
    assert_false(cb_name_valid("a]\n[b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(const_time_eq_compares_bytes_and_lengths),
        cmocka_unit_test(parse_u64_rejects_junk_and_overflow),
        cmocka_unit_test(hex_and_random),
        cmocka_unit_test(hex_byte_writes_two_digits_in_either_case),
        cmocka_unit_test(hex_digit_reads_either_case_and_refuses_the_rest),
        cmocka_unit_test(hex_is_lower_accepts_what_encode_writes),
        cmocka_unit_test(fnv1a_matches_reference_and_continues),
        cmocka_unit_test(asprintf_formats),
        cmocka_unit_test(yield_until_stops_when_ready_or_late),
        cmocka_unit_test(mono_deadline_is_ahead_and_normalised),
        cmocka_unit_test(uuid_v4_has_version_and_variant),
        cmocka_unit_test(uuid_v4_is_not_shared_with_a_fork),
        cmocka_unit_test(rfc3339_ms_formats_utc),
        cmocka_unit_test(name_valid_is_short_and_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
