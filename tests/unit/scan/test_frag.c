/* The fragment index: every run of 12 or more characters of a source is
 * found at every alignment and in any letter case, shorter ones are not;
 * the skeleton scan reads through any separators; windows that two
 * secrets share are not indexed; a store too large for the index gets a
 * source stride and the guarantee that comes with it; repetitive secrets
 * and texts cost bounded time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "scan/frag.h"

struct run {
    uint32_t secret;
    uint8_t enc;
    size_t s, e;
};

struct runs {
    struct run v[64];
    size_t n;
};

static void on_run(void *ctx, uint32_t secret, uint8_t enc, size_t s, size_t e)
{
    struct runs *r = ctx;
    if (r->n < CB_ARRAY_LEN(r->v))
        r->v[r->n++] = (struct run){secret, enc, s, e};
}

static uint32_t seed = 7;

static void random_alnum(char *s, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        s[i] = a[(seed >> 8) % (sizeof(a) - 1)];
    }
}

/* Filler that shares no 8-byte window with anything random_alnum makes. */
static void filler(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s[i] = " .,;:!?"[i % 7];
}

static struct cb__frag *index_of(const char *const *src, size_t n)
{
    struct cb__frag *f = cb__frag_new();
    for (size_t i = 0; i < n; i++)
        cb__frag_add(f, (const unsigned char *)src[i], strlen(src[i]), (uint32_t)i, 1);
    cb__frag_build(f);
    return f;
}

static struct runs scan(const struct cb__frag *f, const char *t, size_t n, bool skel)
{
    struct runs r = {0};
    if (skel)
        cb__frag_scan_skeleton(f, (const unsigned char *)t, n, on_run, &r);
    else
        cb__frag_scan(f, (const unsigned char *)t, n, on_run, &r);
    return r;
}

/* Every piece of 11..len characters at every offset in the source and in
 * the text: found (as exactly that span) from 12 on, never below. */
static void every_piece_every_alignment(void **state)
{
    (void)state;
    char secret[41] = {0};
    random_alnum(secret, 40);
    const char *src[] = {secret};
    struct cb__frag *f = index_of(src, 1);
    assert_int_equal(cb__frag_stride(f), 1);
    char text[128];
    for (size_t len = 11; len <= 40; len++) {
        for (size_t off = 0; off + len <= 40; off++) {
            for (size_t at = 0; at < 8; at++) {
                filler(text, sizeof(text));
                memcpy(text + at, secret + off, len);
                struct runs r = scan(f, text, at + len + 5, false);
                if (len < CB__FRAG_MIN_RUN) {
                    assert_int_equal(r.n, 0);
                    continue;
                }
                if (r.n != 1 || r.v[0].s != at || r.v[0].e != at + len)
                    fail_msg("len %zu off %zu at %zu: %zu runs", len, off, at, r.n);
            }
        }
    }
    cb__frag_free(f);
}

static void any_letter_case(void **state)
{
    (void)state;
    const char *src[] = {"Zx9kLmQr7TbVw2sYpAb3"};
    struct cb__frag *f = index_of(src, 1);
    const char *t = "[zX9KlMqR7tBvW2SyPaB3]";
    struct runs r = scan(f, t, strlen(t), false);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0].s, 1);
    assert_int_equal(r.v[0].e, strlen(t) - 1);
    cb__frag_free(f);
}

/* Through the skeleton: spaces, dashes, newlines, JSON arrays, UTF-16; the
 * run spans from the first letter to the last. */
static void skeleton_reads_through_separators(void **state)
{
    (void)state;
    const char *secret = "Zx9kLmQr7TbVw2sYp";
    const char *src[] = {secret};
    struct cb__frag *f = index_of(src, 1);
    const char *seps[] = {" ", "-", "\n", "\",\"", ". ", "\t\t"};
    for (size_t k = 0; k < CB_ARRAY_LEN(seps); k++) {
        char t[512];
        size_t o = 0;
        t[o++] = '<';
        t[o++] = '<';
        for (size_t i = 0; secret[i]; i++) {
            t[o++] = secret[i];
            if (secret[i + 1]) {
                memcpy(t + o, seps[k], strlen(seps[k]));
                o += strlen(seps[k]);
            }
        }
        t[o++] = '>';
        t[o++] = '>';
        t[o] = '\0';
        struct runs r = scan(f, t, strlen(t), true);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.v[0].s, 2);
        assert_int_equal(r.v[0].e, strlen(t) - 2);
        /* Not in the plain scan. */
        assert_int_equal(scan(f, t, strlen(t), false).n, 0);
    }
    /* UTF-16LE bytes. */
    unsigned char u[64];
    size_t n = strlen(secret);
    for (size_t i = 0; i < n; i++) {
        u[2 * i] = (unsigned char)secret[i];
        u[2 * i + 1] = 0;
    }
    struct runs r = scan(f, (const char *)u, 2 * n, true);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0].e, 2 * n - 1);
    cb__frag_free(f);
}

/* The skeleton scan is made in blocks: a run across a block boundary, at
 * every skeleton alignment, is found. */
static void skeleton_across_blocks(void **state)
{
    (void)state;
    char secret[33] = {0};
    random_alnum(secret, 32);
    const char *src[] = {secret};
    struct cb__frag *f = index_of(src, 1);
    size_t n = 8192;
    char *t = cb_xmalloc(n);
    for (size_t at = 1000; at < 1100; at++) {
        for (size_t i = 0; i < n; i++)
            t[i] = i % 3 ? ' ' : 'q'; /* a skeleton of q's */
        memset(t + at - 1, ' ', 66);
        for (size_t i = 0; i < 32; i++)
            t[at + 2 * i] = secret[i];
        struct runs r = scan(f, t, n, true);
        if (r.n != 1 || r.v[0].s != at || r.v[0].e != at + 63)
            fail_msg("at %zu: %zu runs", at, r.n);
    }
    free(t);
    cb__frag_free(f);
}

/* The same without SIMD. */
static void skeleton_portable(void **state)
{
    cb__frag_scalar = true;
    skeleton_reads_through_separators(state);
    skeleton_across_blocks(state);
    cb__frag_scalar = false;
}

/* Text two secrets share is not secret: not indexed. */
static void shared_windows_dropped(void **state)
{
    (void)state;
    const char *src[] = {"eyJhbGciOiJIUzI1NiJ9.AbCdEfGhIjKlMn",
                         "eyJhbGciOiJIUzI1NiJ9.ZyXwVuTsRqPoNm"};
    struct cb__frag *f = index_of(src, 2);
    const char *t = "header eyJhbGciOiJIUzI1NiJ9. only";
    assert_int_equal(scan(f, t, strlen(t), false).n, 0);
    const char *u = "tail J9.ZyXwVuTsRqPoNm here";
    struct runs r = scan(f, u, strlen(u), false);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0].secret, 1);
    cb__frag_free(f);
}

/* Sources too many for the index: a stride coprime with the text's, and
 * every run of 5 * stride + 7 is still found. */
static void huge_store_gets_a_stride(void **state)
{
    (void)state;
    size_t n = 600, len = 4096;
    char **src = cb_xcalloc(n, sizeof(char *));
    struct cb__frag *f = cb__frag_new();
    for (size_t i = 0; i < n; i++) {
        src[i] = cb_xmalloc(len);
        random_alnum(src[i], len);
        cb__frag_add(f, (const unsigned char *)src[i], len, (uint32_t)i, 1);
    }
    cb__frag_build(f);
    unsigned s = cb__frag_stride(f);
    assert_true(s > 1 && s % CB__FRAG_TEXT_STRIDE != 0);
    size_t need = CB__FRAG_TEXT_STRIDE * s + 7;
    char text[256];
    for (size_t off = 0; off < 40; off++) {
        for (size_t at = 0; at < 8; at++) {
            filler(text, sizeof(text));
            memcpy(text + at, src[123] + 1000 + off, need);
            struct runs r = scan(f, text, at + need + 3, false);
            if (r.n != 1 || r.v[0].secret != 123)
                fail_msg("off %zu at %zu: %zu runs", off, at, r.n);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(src[i]);
    free(src);
    cb__frag_free(f);
}

/* A secret of one repeated character against a text of it, and a text of
 * one repeated window: bounded work (each probe walks at most 8 offsets of
 * one source, and a run once reported is not walked again). */
static void repetition_is_bounded(void **state)
{
    (void)state;
    char *secret = cb_xmalloc(16385);
    memset(secret, 'a', 16384);
    secret[16384] = '\0';
    const char *src[] = {secret, "abcdefghabcdefghabcdefghabcdefgh"};
    struct cb__frag *f = index_of(src, 2);
    size_t n = 8u << 20;
    char *t = cb_xmalloc(n);
    const char *fills[] = {"a", "A a ", "abcdefgh", "abcdefg"};
    for (size_t k = 0; k < CB_ARRAY_LEN(fills); k++) {
        for (size_t i = 0; i < n; i++)
            t[i] = fills[k][i % strlen(fills[k])];
        uint64_t t0 = cb_now_mono_ns();
        scan(f, t, n, false);
        scan(f, t, n, true);
        uint64_t ms = (cb_now_mono_ns() - t0) / 1000000;
        if (ms > 3000)
            fail_msg("fill '%s' took %llu ms", fills[k], (unsigned long long)ms);
    }
    free(t);
    free(secret);
    cb__frag_free(f);
}

/* Random text holds no run of a random secret. */
static void no_false_runs(void **state)
{
    (void)state;
    char secrets[50][33];
    const char *src[50];
    for (size_t i = 0; i < 50; i++) {
        random_alnum(secrets[i], 32);
        secrets[i][32] = '\0';
        src[i] = secrets[i];
    }
    struct cb__frag *f = index_of(src, 50);
    size_t n = 4u << 20;
    char *t = cb_xmalloc(n);
    random_alnum(t, n);
    for (size_t i = 7; i < n; i += 11)
        t[i] = ' ';
    assert_int_equal(scan(f, t, n, false).n, 0);
    assert_int_equal(scan(f, t, n, true).n, 0);
    free(t);
    cb__frag_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_piece_every_alignment),
        cmocka_unit_test(any_letter_case),
        cmocka_unit_test(skeleton_reads_through_separators),
        cmocka_unit_test(skeleton_across_blocks),
        cmocka_unit_test(skeleton_portable),
        cmocka_unit_test(shared_windows_dropped),
        cmocka_unit_test(huge_store_gets_a_stride),
        cmocka_unit_test(repetition_is_bounded),
        cmocka_unit_test(no_false_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
