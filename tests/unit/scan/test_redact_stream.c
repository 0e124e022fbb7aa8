/* Streamed redaction: a stream fed in pieces of any size comes out as
 * the whole would be redacted, for secrets and patterns at every
 * position around a cut, in encoded forms too; clean bytes pass as they
 * are; a stream too dense to cut fails closed and never leaks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/util.h"
#include "scan/leak.h"
#include "scan/redact_stream.h"

#define SECRET "Zq8vR2mW7xK4pL9tN3bH6yJ1cF5dG0sA"
/* The smallest hold: its first cut is tried at HOLD - LOOK. */
#define HOLD      (4 * CB_REDACT_STREAM_LOOK)
#define FIRST_CUT (HOLD - CB_REDACT_STREAM_LOOK)

static struct cb_leak_scanner *secret_scanner(void)
{
    const char *names[] = {"api"}, *values[] = {SECRET};
    size_t lens[] = {strlen(SECRET)};
    struct cb_error err = {0};
    struct cb_leak_scanner *sc = cb_leak_scanner_new(names, values, lens, 1, &err);
    assert_non_null(sc);
    return sc;
}

static int collect(void *ud, const char *data, size_t len)
{
    return cb_buf_append(ud, data, len);
}

/* Streams in[0..len) in pieces of `piece` bytes through rs (freed);
 * returns the stream's result, the output in *out (initialised here). */
static int stream_through(struct cb_redact_stream *rs, const char *in, size_t len, size_t piece,
                          struct cb_buf *out)
{
    cb_buf_init(out, SIZE_MAX);
    int r = 0;
    for (size_t off = 0; r == 0 && off < len; off += piece)
        r = cb_redact_stream_write(rs, in + off, len - off < piece ? len - off : piece, collect,
                                   out);
    if (r == 0)
        r = cb_redact_stream_finish(rs, collect, out);
    cb_redact_stream_free(rs);
    return r;
}

static int stream(const struct cb_leak_scanner *sc, const char *in, size_t len, size_t piece,
                  struct cb_buf *out)
{
    return stream_through(cb_redact_stream_new(sc, HOLD), in, len, piece, out);
}

/* Letters only: no line end or blank, so cuts fall where the stream
 * puts them first. */
static char *letters(size_t len, unsigned seed)
{
    char *s = cb_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        s[i] = (char)('a' + (seed >> 16) % 26);
    }
    s[len] = '\0';
    return s;
}

static void assert_redacted_as_whole(const struct cb_leak_scanner *sc, const char *in, size_t len,
                                     size_t piece)
{
    struct cb_buf out;
    assert_int_equal(stream(sc, in, len, piece, &out), 0);
    char *want = NULL;
    size_t want_len = 0;
    struct cb_error err = {0};
    assert_int_equal(cb_leak_redact(sc, in, len, &want, &want_len, NULL, &err), 0);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    free(want);
    cb_buf_free(&out);
}

static void clean_bytes_pass_unchanged(void **state)
{
    (void)state;
    struct cb_leak_scanner *sc = secret_scanner();
    size_t len = 3 * HOLD + 1234;
    unsigned char *in = cb_xmalloc(len);
    for (size_t i = 0; i < len; i++)
        in[i] = (unsigned char)(i * 7 + i / 251);
    const size_t pieces[] = {1, 1000, 16384, HOLD, len};
    for (size_t k = 0; k < CB_ARRAY_LEN(pieces); k++) {
        struct cb_buf out;
        assert_int_equal(stream(sc, (const char *)in, len, pieces[k], &out), 0);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, in, len);
        cb_buf_free(&out);
    }
    free(in);
    cb_leak_scanner_free(sc);
}

/* A body that fits the hold goes out in one redaction, with no call at
 * all for an empty one. */
static void small_body_is_one_piece(void **state)
{
    (void)state;
    struct cb_leak_scanner *sc = secret_scanner();
    const char *in = "token=" SECRET " and ghp_abcdefghijklmnopqrstuvwxyz0123456789 end";
    assert_redacted_as_whole(sc, in, strlen(in), 3);
    struct cb_buf out;
    assert_int_equal(stream(sc, "", 0, 1, &out), 0);
    assert_int_equal(out.len, 0);
    cb_buf_free(&out);
    cb_leak_scanner_free(sc);
}

/* The secret at every offset around the first cut, and in the second
 * window too: never out raw, never split into two markers. */
static void secret_at_every_offset_around_a_cut(void **state)
{
    (void)state;
    struct cb_leak_scanner *sc = secret_scanner();
    size_t len = HOLD + HOLD / 2, slen = strlen(SECRET);
    const size_t around[] = {FIRST_CUT, 2 * FIRST_CUT - CB_REDACT_STREAM_LOOK / 2};
    for (size_t a = 0; a < CB_ARRAY_LEN(around); a++)
        for (size_t at = around[a] - slen - 2; at <= around[a] + 2; at++) {
            char *in = letters(len, (unsigned)at);
            memcpy(in + at, SECRET, slen);
            assert_redacted_as_whole(sc, in, len, 4096);
            free(in);
        }
    cb_leak_scanner_free(sc);
}

/* Encoded forms and a credential pattern across the cut. */
static void forms_and_patterns_across_a_cut(void **state)
{
    (void)state;
    struct cb_leak_scanner *sc = secret_scanner();
    const char *forms[] = {
        "WnE4dlIybVc3eEs0cEw5dE4zYkg2eUoxY0Y1ZEcwc0E=",                     /* base64 */
        "5a71387652326d5737784b34704c39744e33624836794a316346356447307341", /* hex */
        "Zq8vR2mW7xK4pL9tN3bH6yJ1cF5dG0sA",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAIOSFODNN7EXAMPLE",
    };
    size_t len = HOLD + 1000;
    for (size_t f = 0; f < CB_ARRAY_LEN(forms); f++) {
        size_t flen = strlen(forms[f]);
        for (size_t d = 1; d < flen; d += 3) {
            char *in = letters(len, (unsigned)(f * 100 + d));
            in[FIRST_CUT - d - 1] = ' ';
            memcpy(in + FIRST_CUT - d, forms[f], flen);
            in[FIRST_CUT - d + flen] = ' ';
            assert_redacted_as_whole(sc, in, len, 65536);
            free(in);
        }
    }
    cb_leak_scanner_free(sc);
}

/* Secrets every few bytes: either the stream fails closed, or what went
 * out holds no secret; nothing raw gets through. */
static void dense_secrets_never_leak(void **state)
{
    (void)state;
    struct cb_leak_scanner *sc = secret_scanner();
    size_t len = 2 * HOLD, slen = strlen(SECRET);
    char *in = letters(len, 7);
    for (size_t at = 3; at + slen < len; at += slen + 5)
        memcpy(in + at, SECRET, slen);
    struct cb_buf out;
    int r = stream(sc, in, len, 8192, &out);
    assert_true(r == 0 || r == -EACCES);
    struct cb_leak_report rep;
    struct cb_error err = {0};
    assert_int_equal(cb_leak_scan(sc, out.data ? out.data : "", out.len, &rep, &err), 0);
    cb_buf_free(&out);
    free(in);
    cb_leak_scanner_free(sc);
}

/* A blocking stream: clean bytes pass as they are; a secret anywhere,
 * around a cut too, fails it with no byte of the secret out, naming it. */
static void blocking_stream_stops_before_a_secret(void **state)
{
    (void)state;
    struct cb_leak_scanner *sc = secret_scanner();
    size_t len = 2 * HOLD, slen = strlen(SECRET);
    char *in = letters(len, 11);
    struct cb_buf out;
    assert_int_equal(stream_through(cb_scan_stream_new(sc, HOLD), in, len, 5000, &out), 0);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, in, len);
    cb_buf_free(&out);
    const size_t at[] = {0, FIRST_CUT - slen / 2, FIRST_CUT + 1, HOLD - 3, len - slen};
    for (size_t k = 0; k < CB_ARRAY_LEN(at); k++) {
        char *dirty = letters(len, 11);
        memcpy(dirty + at[k], SECRET, slen);
        struct cb_redact_stream *rs = cb_scan_stream_new(sc, HOLD);
        cb_buf_init(&out, SIZE_MAX);
        int r = cb_redact_stream_write(rs, dirty, len, collect, &out);
        if (r == 0)
            r = cb_redact_stream_finish(rs, collect, &out);
        assert_int_equal(r, -EACCES);
        assert_string_equal(cb_scan_stream_found(rs), "api");
        assert_true(out.len <= at[k]);
        assert_memory_equal(out.data ? out.data : "", dirty, out.len);
        cb_redact_stream_free(rs);
        cb_buf_free(&out);
        free(dirty);
    }
    free(in);
    cb_leak_scanner_free(sc);
}

static int fail_out(void *ud, const char *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    return -EPIPE;
}

/* The output's failure ends the stream with its code. */
static void output_failure_is_returned(void **state)
{
    (void)state;
    char *in = letters(HOLD, 3);
    struct cb_redact_stream *rs = cb_redact_stream_new(NULL, HOLD);
    assert_int_equal(cb_redact_stream_write(rs, in, HOLD, fail_out, NULL), -EPIPE);
    cb_redact_stream_free(rs);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clean_bytes_pass_unchanged),
        cmocka_unit_test(small_body_is_one_piece),
        cmocka_unit_test(secret_at_every_offset_around_a_cut),
        cmocka_unit_test(forms_and_patterns_across_a_cut),
        cmocka_unit_test(dense_secrets_never_leak),
        cmocka_unit_test(output_failure_is_returned),
        cmocka_unit_test(blocking_stream_stops_before_a_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
