/* Content decoding of upstream responses: gzip and deflate (zlib and raw),
 * stacked codings, gzip members, unknown codings refused, the cap on
 * decoded bytes (a gzip bomb stops there, fast), and every truncation and
 * corruption refused. The compressed bodies are made here with zlib's
 * deflate side. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "core/util.h"
#include "proxy/decode.h"
#include "proxy/forward.h"

enum wrap { GZIP = MAX_WBITS + 16, ZLIB = MAX_WBITS, RAW = -MAX_WBITS };

/* Compresses `copies` copies of in[0, len) (a bomb without the memory). */
static unsigned char *squeeze_n(const void *in, size_t len, size_t copies, enum wrap w,
                                size_t *out_len)
{
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, (int)w, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = 4096 + len * copies / 100 + len, o = 0;
    unsigned char *out = cb_xmalloc(cap);
    for (size_t i = 0; i < copies; i++) {
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)len;
        int flush = i + 1 == copies ? Z_FINISH : Z_NO_FLUSH;
        int z;
        do {
            if (cap - o < 65536) {
                cap = 2 * cap + 65536;
                out = cb_xrealloc(out, cap);
            }
            zs.next_out = out + o;
            zs.avail_out = (uInt)(cap - o);
            z = deflate(&zs, flush);
            o = cap - zs.avail_out;
        } while (zs.avail_in > 0 || (flush == Z_FINISH && z != Z_STREAM_END));
    }
    deflateEnd(&zs);
    *out_len = o;
    return out;
}

static unsigned char *squeeze(const void *in, size_t len, enum wrap w, size_t *out_len)
{
    return squeeze_n(in, len, 1, w, out_len);
}

static const char TEXT[] = "{\"token\":\"s3cr3t-upstream-token-9f8e7d6c5b4a\",\"n\":12345}";

static int decode(const char *codings, const void *in, size_t len, size_t max, struct cb_buf *out,
                  struct cb_error *err)
{
    memset(err, 0, sizeof(*err));
    return cb__decode_body(codings, in, len, max, out, err);
}

static void expect_text(const char *codings, const void *in, size_t len)
{
    struct cb_buf out;
    struct cb_error err;
    if (decode(codings, in, len, 1 << 20, &out, &err) != 0)
        fail_msg("%s: %s", codings, err.msg);
    assert_int_equal(out.len, strlen(TEXT));
    assert_memory_equal(out.data, TEXT, out.len);
    cb_buf_free(&out);
}

static void gzip_and_deflate(void **state)
{
    (void)state;
    size_t n;
    unsigned char *g = squeeze(TEXT, strlen(TEXT), GZIP, &n);
    expect_text("gzip", g, n);
    expect_text("x-gzip", g, n);
    expect_text(" GZip ", g, n);
    expect_text("identity, gzip", g, n);
    free(g);
    unsigned char *z = squeeze(TEXT, strlen(TEXT), ZLIB, &n);
    expect_text("deflate", z, n);
    free(z);
    unsigned char *r = squeeze(TEXT, strlen(TEXT), RAW, &n);
    expect_text("Deflate", r, n);
    free(r);
    expect_text("identity", TEXT, strlen(TEXT));
    expect_text("", TEXT, strlen(TEXT));
}

/* "deflate, gzip": deflated first, then gzipped; undone in reverse. And
 * gzip members one after another. */
static void stacked_codings_and_members(void **state)
{
    (void)state;
    size_t n1, n2;
    unsigned char *inner = squeeze(TEXT, strlen(TEXT), ZLIB, &n1);
    unsigned char *outer = squeeze(inner, n1, GZIP, &n2);
    expect_text("deflate, gzip", outer, n2);
    struct cb_buf out;
    struct cb_error err;
    assert_int_equal(decode("gzip, deflate", outer, n2, 1 << 20, &out, &err), -EBADMSG);
    cb_buf_free(&out);
    free(inner);
    free(outer);

    size_t half = strlen(TEXT) / 2, a, b;
    unsigned char *m1 = squeeze(TEXT, half, GZIP, &a);
    unsigned char *m2 = squeeze(TEXT + half, strlen(TEXT) - half, GZIP, &b);
    unsigned char *both = cb_xmalloc(a + b);
    memcpy(both, m1, a);
    memcpy(both + a, m2, b);
    expect_text("gzip", both, a + b);
    free(m1);
    free(m2);
    free(both);
}

static void unknown_codings_refused(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_error err;
    const char *bad[] = {"br", "gzip, br", "zstd", "compress", "gzip;q=1", "\xff\xfe"};
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++) {
        assert_int_equal(decode(bad[i], TEXT, strlen(TEXT), 1 << 20, &out, &err), -ENOTSUP);
        assert_non_null(strstr(err.msg, "cannot decode"));
        assert_non_null(strstr(err.msg, "Accept-Encoding"));
        assert_int_equal(out.len, 0);
        cb_buf_free(&out);
    }
    decode("br", "x", 1, 10, &out, &err);
    assert_non_null(strstr(err.msg, "encoded as 'br'"));
    cb_buf_free(&out);
    /* The header is the upstream's: a long or odd name is not echoed (it
     * could be a reflected credential). */
    decode("gzip, s3cr3t-upstream-token-9f8e", "x", 1, 10, &out, &err);
    assert_non_null(strstr(err.msg, "encoded as an unknown coding"));
    assert_null(strstr(err.msg, "s3cr3t"));
    cb_buf_free(&out);
    assert_int_equal(decode("gzip,gzip,gzip,gzip,gzip", TEXT, 3, 1 << 20, &out, &err), -ENOTSUP);
    assert_non_null(strstr(err.msg, "more than 4 times"));
    cb_buf_free(&out);
}

/* 256 MiB of zeros in about 256 KiB: decoding stops at the cap, at once. The
 * cap itself is exact. */
static void gzip_bomb_stops_at_the_cap(void **state)
{
    (void)state;
    static char zeros[1 << 16];
    size_t n;
    unsigned char *bomb = squeeze_n(zeros, sizeof(zeros), 1 << 12, GZIP, &n);
    assert_true(n < (512u << 10));
    struct cb_buf out;
    struct cb_error err;
    uint64_t t0 = cb_now_mono_ns();
    assert_int_equal(decode("gzip", bomb, n, 1 << 20, &out, &err), -EFBIG);
    assert_true(cb_now_mono_ns() - t0 < 2000000000ull);
    assert_non_null(strstr(err.msg, "exceeds the limit of 1048576 bytes once decoded"));
    assert_int_equal(out.len, 0);
    cb_buf_free(&out);
    /* Nested: the outer layer is small, the inner one the bomb. */
    size_t m;
    unsigned char *nested = squeeze(bomb, n, GZIP, &m);
    assert_int_equal(decode("gzip, gzip", nested, m, 4 << 20, &out, &err), -EFBIG);
    cb_buf_free(&out);
    free(nested);
    free(bomb);

    size_t k;
    unsigned char *g = squeeze(TEXT, strlen(TEXT), GZIP, &k);
    assert_int_equal(decode("gzip", g, k, strlen(TEXT), &out, &err), 0);
    cb_buf_free(&out);
    assert_int_equal(decode("gzip", g, k, strlen(TEXT) - 1, &out, &err), -EFBIG);
    cb_buf_free(&out);
    free(g);
}

/* Every cut of a gzip and a deflate stream, and every byte flipped after
 * the gzip header's unchecked fields, is refused. So is what follows the
 * end of the stream. */
static void truncated_and_corrupt_refused(void **state)
{
    (void)state;
    enum wrap wraps[] = {GZIP, ZLIB, RAW};
    const char *names[] = {"gzip", "deflate", "deflate"};
    struct cb_buf out;
    struct cb_error err;
    for (size_t w = 0; w < 3; w++) {
        size_t n;
        unsigned char *g = squeeze(TEXT, strlen(TEXT), wraps[w], &n);
        for (size_t cut = 1; cut < n; cut++) {
            int r = decode(names[w], g, cut, 1 << 20, &out, &err);
            if (r != -EBADMSG)
                fail_msg("%s cut at %zu of %zu: %d", names[w], cut, n, r);
            assert_non_null(strstr(err.msg, "cannot be decoded"));
            cb_buf_free(&out);
        }
        for (size_t i = wraps[w] == GZIP ? 10 : 0; i < n; i++) {
            g[i] ^= 0x55;
            int r = decode(names[w], g, n, 1 << 20, &out, &err);
            /* A flip in raw deflate may still inflate to other bytes: it
             * must then at least not be the original. */
            if (r == 0 && wraps[w] == RAW)
                assert_false(out.len == strlen(TEXT) && memcmp(out.data, TEXT, out.len) == 0);
            else if (r != -EBADMSG)
                fail_msg("%s flipped at %zu: %d", names[w], i, r);
            cb_buf_free(&out);
            g[i] ^= 0x55;
        }
        free(g);
    }
    size_t n;
    unsigned char *g = squeeze(TEXT, strlen(TEXT), GZIP, &n);
    unsigned char *tail = cb_xmalloc(n + 4);
    memcpy(tail, g, n);
    memcpy(tail + n, "junk", 4);
    assert_int_equal(decode("gzip", tail, n + 4, 1 << 20, &out, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "follow the end"));
    cb_buf_free(&out);
    assert_int_equal(decode("gzip", TEXT, strlen(TEXT), 1 << 20, &out, &err), -EBADMSG);
    cb_buf_free(&out);
    free(tail);
    free(g);
}

/* A response decoded in place: the body replaced, content-encoding gone,
 * content-length the decoded length; an empty body left as it is. */
static void response_in_place(void **state)
{
    (void)state;
    size_t n;
    unsigned char *g = squeeze(TEXT, strlen(TEXT), GZIP, &n);
    struct cb_forward_response res = {.status = 200, .headers = json_object()};
    cb_buf_init(&res.body, 1 << 20);
    cb_buf_append(&res.body, g, n);
    json_object_set_new(res.headers, "content-encoding", json_string("gzip"));
    json_object_set_new(res.headers, "content-length", json_integer(0));
    json_object_set_new(res.headers, "content-length", json_string("999"));
    struct cb_error err = {0};
    assert_int_equal(cb__decode_response(&res, "api.test", 1 << 20, &err), 0);
    assert_int_equal(res.body.len, strlen(TEXT));
    assert_memory_equal(res.body.data, TEXT, res.body.len);
    assert_null(json_object_get(res.headers, "content-encoding"));
    char want[16];
    snprintf(want, sizeof(want), "%zu", strlen(TEXT));
    assert_string_equal(json_string_value(json_object_get(res.headers, "content-length")), want);
    cb__forward_response_free(&res);

    struct cb_forward_response head = {.status = 200, .headers = json_object()};
    cb_buf_init(&head.body, 1 << 20);
    json_object_set_new(head.headers, "content-encoding", json_string("br"));
    assert_int_equal(cb__decode_response(&head, "api.test", 1 << 20, &err), 0);
    assert_non_null(json_object_get(head.headers, "content-encoding"));
    cb_buf_append(&head.body, "x", 1);
    assert_int_equal(cb__decode_response(&head, "api.test", 1 << 20, &err), -ENOTSUP);
    assert_true(strncmp(err.msg, "response from api.test: ", 24) == 0);
    cb__forward_response_free(&head);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gzip_and_deflate),
        cmocka_unit_test(stacked_codings_and_members),
        cmocka_unit_test(unknown_codings_refused),
        cmocka_unit_test(gzip_bomb_stops_at_the_cap),
        cmocka_unit_test(truncated_and_corrupt_refused),
        cmocka_unit_test(response_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
