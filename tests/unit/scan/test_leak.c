/* The known-secret scanner: every encoding, alignment and decoding depth,
 * redaction of every occurrence, overlapping and prefix secrets, binary and
 * invalid UTF-8 input, huge input. Encodings are produced independently of
 * the scanner (OpenSSL's base64, our own percent-encoder). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "core/util.h"
#include "scan/leak.h"
#include "scan/patterns.h"

/* For failure messages. */
static const char *encoding_name(enum cb_leak_encoding enc)
{
    static const char *const names[] = {"plain", "plus_space",  "json",     "base64", "base64url",
                                        "hex",   "case_folded", "reversed", "base32", "rot13",
                                        "utf16", "fragment",    "spaced",   "none"};
    return (size_t)enc < CB_ARRAY_LEN(names) ? names[enc] : "unknown";
}

struct text {
    char *p;
    size_t len;
};

static void text_add(struct text *t, const void *p, size_t n)
{
    t->p = cb_xrealloc(t->p, t->len + n + 1);
    memcpy(t->p + t->len, p, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_adds(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static struct cb_leak_scanner *scanner(const char *const *secrets, size_t n)
{
    size_t lens[16];
    const char *names[16];
    char namebuf[16][16];
    for (size_t i = 0; i < n; i++) {
        lens[i] = strlen(secrets[i]);
        snprintf(namebuf[i], sizeof(namebuf[i]), "cred%zu", i);
        names[i] = namebuf[i];
    }
    struct cb_error err = {0};
    struct cb_leak_scanner *sc = cb_leak_scanner_new(names, secrets, lens, n, &err);
    assert_non_null(sc);
    return sc;
}

/* Base64 with OpenSSL, optionally URL-safe and without padding. */
static char *b64(const unsigned char *p, size_t n, bool url, bool pad)
{
    char *out = cb_xmalloc(4 * (n / 3 + 1) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    for (int i = 0; i < len; i++) {
        if (url && out[i] == '+')
            out[i] = '-';
        if (url && out[i] == '/')
            out[i] = '_';
    }
    while (!pad && len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
    return out;
}

/* Percent-encodes every byte (all) or only the non-unreserved ones;
 * hex case: 0 lower, 1 upper, 2 alternating. */
static char *pct(const char *s, size_t n, bool all, int hexcase)
{
    char *out = cb_xmalloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (!all && unreserved) {
            out[o++] = (char)c;
            continue;
        }
        const char *digits =
            (hexcase == 1 || (hexcase == 2 && i % 2)) ? "0123456789ABCDEF" : "0123456789abcdef";
        out[o++] = '%';
        out[o++] = digits[c >> 4];
        out[o++] = digits[c & 15];
    }
    out[o] = '\0';
    return out;
}

static char *hex(const char *s, size_t n, int hexcase)
{
    char *out = cb_xmalloc(2 * n + 1);
    cb_hex_encode((const unsigned char *)s, n, out);
    for (size_t i = 0; i < 2 * n; i++)
        if (hexcase == 1 || (hexcase == 2 && i % 3 == 0))
            out[i] = (char)(out[i] >= 'a' ? out[i] - 32 : out[i]);
    return out;
}

static int scan(const struct cb_leak_scanner *sc, const char *p, size_t n,
                struct cb_leak_report *rep)
{
    struct cb_error err = {0};
    int r = cb_leak_scan(sc, p, n, rep, &err);
    assert_true(r >= 0);
    return r;
}

static bool has_secret(const struct cb_leak_report *rep, size_t index, enum cb_leak_encoding enc,
                       unsigned depth)
{
    for (size_t i = 0; i < rep->n; i++) {
        const struct cb_leak_finding *f = &rep->findings[i];
        if (f->kind == CB_LEAK_KNOWN_SECRET && f->index == index && f->encoding == enc &&
            f->url_depth == depth)
            return true;
    }
    return false;
}

static char *redact(const struct cb_leak_scanner *sc, const char *p, size_t n, size_t *out_len,
                    size_t *count)
{
    char *out = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_leak_redact(sc, p, n, &out, out_len, count, &err), 0);
    assert_non_null(out);
    return out;
}

/* Redaction leaves nothing that the scanner finds. */
static void assert_clean_after_redact(const struct cb_leak_scanner *sc, const char *p, size_t n)
{
    size_t out_len, count;
    char *out = redact(sc, p, n, &out_len, &count);
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, out, out_len, &rep), 0);
    assert_true(count >= 1);
    assert_non_null(memmem(out, out_len, CB_LEAK_REDACTED, strlen(CB_LEAK_REDACTED)));
    free(out);
}

static void assert_redacts_to(const struct cb_leak_scanner *sc, const char *in, const char *want)
{
    size_t out_len;
    char *out = redact(sc, in, strlen(in), &out_len, NULL);
    assert_string_equal(out, want);
    assert_int_equal(out_len, strlen(want));
    free(out);
}

static const char *SECRET = "Zx9-kLmQ_r7TbVw2sYp";

static void plain_secret(void **state)
{
    (void)state;
    const char *secrets[] = {"unused-secret-value", SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 2);
    struct text t = {0};
    text_adds(&t, "header ");
    text_adds(&t, SECRET);
    text_adds(&t, " trailer");
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
    assert_true(has_secret(&rep, 1, CB_LEAK_ENC_PLAIN, 0));
    assert_int_equal(rep.findings[0].offset, 7);
    assert_int_equal(rep.findings[0].len, strlen(SECRET));
    assert_string_equal(rep.findings[0].name, "cred1");
    assert_redacts_to(sc, t.p, "header [REDACTED] trailer");
    assert_int_equal(scan(sc, "nothing here", 12, &rep), 0);
    assert_int_equal(rep.total, 0);
    free(t.p);
    cb_leak_scanner_free(sc);
}

/* The secret inside a longer base64 text, at byte offsets 0..5 (all three
 * alignments twice), with 0..2 bytes after it, standard and URL-safe,
 * padded and not. */
static void base64_every_alignment(void **state)
{
    (void)state;
    /* Bytes chosen so that the encodings contain '+' and '/'. */
    const char secret[] = "\xfb\xff\xbe\xfa\xef\xbf-secret-\xfe\xfb";
    const char *secrets[] = {secret};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    size_t n = strlen(secret);
    for (size_t pre = 0; pre < 6; pre++) {
        for (size_t post = 0; post < 3; post++) {
            for (int variant = 0; variant < 4; variant++) {
                unsigned char buf[64];
                memcpy(buf, "ABCDEF", pre);
                memcpy(buf + pre, secret, n);
                memcpy(buf + pre + n, "xyz", post);
                bool url = variant & 1, pad = variant & 2;
                char *enc = b64(buf, pre + n + post, url, pad);
                if (pre == 0 && post == 0 && !url)
                    assert_true(strchr(enc, '+') || strchr(enc, '/'));
                struct text t = {0};
                text_adds(&t, "data=");
                text_adds(&t, enc);
                text_adds(&t, "&more");
                struct cb_leak_report rep;
                assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
                assert_true(
                    has_secret(&rep, 0, url ? CB_LEAK_ENC_BASE64URL : CB_LEAK_ENC_BASE64, 0));
                assert_clean_after_redact(sc, t.p, t.len);
                free(enc);
                free(t.p);
            }
        }
    }
    cb_leak_scanner_free(sc);
}

/* A whole padded base64 of the secret goes, padding and all. */
static void base64_whole_value_redacted(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    char *enc = b64((const unsigned char *)SECRET, strlen(SECRET), false, true);
    assert_non_null(strchr(enc, '='));
    struct text t = {0};
    text_adds(&t, "Authorization: Basic ");
    text_adds(&t, enc);
    text_adds(&t, "\r\n");
    assert_redacts_to(sc, t.p, "Authorization: Basic [REDACTED]\r\n");
    free(enc);
    free(t.p);
    cb_leak_scanner_free(sc);
}

static void hex_any_case(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    for (int hc = 0; hc < 3; hc++) {
        char *h = hex(SECRET, strlen(SECRET), hc);
        struct text t = {0};
        text_adds(&t, "0x");
        text_adds(&t, h);
        struct cb_leak_report rep;
        assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
        assert_true(has_secret(&rep, 0, CB_LEAK_ENC_HEX, 0));
        assert_redacts_to(sc, t.p, "0x[REDACTED]");
        free(h);
        free(t.p);
    }
    cb_leak_scanner_free(sc);
}

/* Percent-encoded: all bytes or only reserved ones, lower/upper/mixed hex;
 * double-encoded; '+' for space. */
static void url_encodings(void **state)
{
    (void)state;
    const char *secret = "p@ss w/rd:1234&x=y";
    const char *secrets[] = {secret};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    size_t n = strlen(secret);
    for (int all = 0; all < 2; all++) {
        for (int hc = 0; hc < 3; hc++) {
            char *once = pct(secret, n, all, hc);
            char *twice = pct(once, strlen(once), false, hc);
            const char *forms[] = {once, twice};
            for (unsigned depth = 1; depth <= 2; depth++) {
                struct text t = {0};
                text_adds(&t, "https://x.test/?q=");
                text_adds(&t, forms[depth - 1]);
                text_adds(&t, "&z=1");
                struct cb_leak_report rep;
                assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
                assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, depth));
                assert_redacts_to(sc, t.p, "https://x.test/?q=[REDACTED]&z=1");
                free(t.p);
            }
            free(once);
            free(twice);
        }
    }
    struct cb_leak_report rep;
    const char *plus = "q=p%40ss+w%2Frd%3A1234%26x%3Dy";
    assert_int_equal(scan(sc, plus, strlen(plus), &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLUS_SPACE, 1));
    assert_redacts_to(sc, plus, "q=[REDACTED]");
    cb_leak_scanner_free(sc);
}

/* Base64 whose '+', '/' and '=' are percent-encoded, and hex in a URL. */
static void nested_encodings(void **state)
{
    (void)state;
    const char secret[] = "\xfb\xff\xbe\xfa\xef\xbf-secret-\xfe";
    const char *secrets[] = {secret};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    char *enc = b64((const unsigned char *)secret, strlen(secret), false, true);
    char *u = pct(enc, strlen(enc), false, 1);
    assert_non_null(strstr(u, "%2B"));
    struct text t = {0};
    text_adds(&t, "/v1?blob=");
    text_adds(&t, u);
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_BASE64, 1));
    assert_redacts_to(sc, t.p, "/v1?blob=[REDACTED]");
    free(enc);
    free(u);
    free(t.p);
    cb_leak_scanner_free(sc);
}

static void json_escaped(void **state)
{
    (void)state;
    const char *secret = "quote\"back\\slash";
    const char *secrets[] = {secret};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    const char *json = "{\"v\":\"quote\\\"back\\\\slash\"}";
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, json, strlen(json), &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_JSON, 0));
    assert_redacts_to(sc, json, "{\"v\":\"[REDACTED]\"}");
    cb_leak_scanner_free(sc);
}

/* Every occurrence, in every form, mixed. */
static void every_occurrence(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    char *b = b64((const unsigned char *)SECRET, strlen(SECRET), false, true);
    char *h = hex(SECRET, strlen(SECRET), 1);
    char *u = pct(SECRET, strlen(SECRET), true, 2);
    const char *forms[] = {SECRET, b, h, u};
    struct text t = {0};
    for (int i = 0; i < 1000; i++) {
        text_adds(&t, forms[i % 4]);
        text_adds(&t, i % 7 ? " " : "");
    }
    size_t out_len, count;
    char *out = redact(sc, t.p, t.len, &out_len, &count);
    assert_true(count >= 800);
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, out, out_len, &rep), 0);
    assert_null(memmem(out, out_len, SECRET, strlen(SECRET)));
    assert_null(memmem(out, out_len, h, strlen(h)));
    free(out);
    free(b);
    free(h);
    free(u);
    free(t.p);
    cb_leak_scanner_free(sc);
}

static void overlapping_and_prefix_secrets(void **state)
{
    (void)state;
    const char *secrets[] = {"abcdefgh12345678", "12345678ZYXWVUTS", "password1234",
                             "password1234567890"};
    struct cb_leak_scanner *sc = scanner(secrets, 4);
    struct cb_leak_report rep;
    const char *over = "<abcdefgh12345678ZYXWVUTS>";
    assert_int_equal(scan(sc, over, strlen(over), &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, 0));
    assert_true(has_secret(&rep, 1, CB_LEAK_ENC_PLAIN, 0));
    assert_redacts_to(sc, over, "<[REDACTED]>");
    const char *longer = "pw=password1234567890;";
    assert_int_equal(scan(sc, longer, strlen(longer), &rep), 1);
    assert_true(has_secret(&rep, 2, CB_LEAK_ENC_PLAIN, 0));
    assert_true(has_secret(&rep, 3, CB_LEAK_ENC_PLAIN, 0));
    assert_redacts_to(sc, longer, "pw=[REDACTED];");
    assert_redacts_to(sc, "pw=password1234;", "pw=[REDACTED];");
    assert_redacts_to(sc, "a password1234 b password1234567890 c", "a [REDACTED] b [REDACTED] c");
    cb_leak_scanner_free(sc);
}

static void short_and_too_many_secrets(void **state)
{
    (void)state;
    const char *secrets[] = {"short", "", "long-enough"};
    size_t lens[] = {5, 0, 11};
    struct cb_error err = {0};
    struct cb_leak_scanner *sc = cb_leak_scanner_new(NULL, secrets, lens, 3, &err);
    assert_non_null(sc);
    /* "short" and "" are skipped: one of the three is registered. */
    assert_int_equal(cb__leak_scanner_secrets(sc), 1);
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, "short and sweet", 15, &rep), 0);
    assert_int_equal(scan(sc, "xlong-enoughx", 13, &rep), 1);
    assert_int_equal(rep.findings[0].index, 2);
    assert_null(rep.findings[0].name);
    cb_leak_scanner_free(sc);

    size_t n = CB_LEAK_MAX_SECRETS + 1;
    const char **many = cb_xcalloc(n, sizeof(char *));
    size_t *ml = cb_xcalloc(n, sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        many[i] = "x";
    assert_null(cb_leak_scanner_new(NULL, many, ml, n, &err));
    assert_int_equal(err.code, -E2BIG);
    free(many);
    free(ml);
    cb_leak_scanner_free(NULL);
}

/* Binary secret in binary data; no false positives in random bytes. */
static void binary_data(void **state)
{
    (void)state;
    char secret[24];
    uint32_t seed = 99;
    for (size_t i = 0; i < sizeof(secret); i++) {
        seed = seed * 1664525u + 1013904223u;
        secret[i] = (char)(seed >> 24);
    }
    secret[3] = '\0';
    const char *secrets[] = {secret};
    size_t lens[] = {sizeof(secret)};
    struct cb_leak_scanner *sc = cb_leak_scanner_new(NULL, secrets, lens, 1, NULL);
    size_t n = 1 << 20;
    char *data = cb_xmalloc(n);
    assert_int_equal(cb_random_bytes(data, n), 0);
    struct cb_leak_report rep;
    scan(sc, data, n, &rep);
    for (size_t i = 0; i < rep.n; i++)
        assert_int_not_equal(rep.findings[i].kind, CB_LEAK_KNOWN_SECRET);
    memcpy(data + 777777, secret, sizeof(secret));
    assert_int_equal(scan(sc, data, n, &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, 0));
    size_t out_len;
    char *out = redact(sc, data, n, &out_len, NULL);
    assert_null(memmem(out, out_len, secret, sizeof(secret)));
    assert_memory_equal(out, data, 777777);
    assert_memory_equal(out + 777777, CB_LEAK_REDACTED, strlen(CB_LEAK_REDACTED));
    free(out);
    free(data);
    cb_leak_scanner_free(sc);
}

static void invalid_utf8_and_patterns(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    const char in[] = "\xff\xfe sk-abcdefghijklmnopqrstuvwxyz \xc3 Zx9-kLmQ_r7TbVw2sYp \xed\xa0";
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, in, sizeof(in) - 1, &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, 0));
    bool pattern = false;
    for (size_t i = 0; i < rep.n; i++)
        pattern |= rep.findings[i].kind == CB_LEAK_PATTERN &&
                   strcmp(rep.findings[i].name, "openai_key") == 0;
    assert_true(pattern);
    size_t out_len;
    char *out = redact(sc, in, sizeof(in) - 1, &out_len, NULL);
    assert_memory_equal(out, "\xff\xfe [REDACTED] \xc3 [REDACTED] \xed\xa0", out_len);
    free(out);
    cb_leak_scanner_free(sc);
}

/* Patterns are found in decoded text too (the reference's variants), and
 * redacted there. */
static void patterns_in_decoded_text(void **state)
{
    (void)state;
    const char *in = "GET /?h=Bearer%20abcdefghijklmnopqrstuvwxyz0123 HTTP/1.1";
    struct cb_leak_report rep;
    assert_int_equal(scan(NULL, in, strlen(in), &rep), 1);
    assert_int_equal(rep.findings[0].kind, CB_LEAK_PATTERN);
    assert_int_equal(rep.findings[0].url_depth, 1);
    assert_string_equal(rep.findings[0].name, "bearer_token");
    assert_redacts_to(NULL, in, "GET /?h=[REDACTED] HTTP/1.1");
    /* Sequential redaction keeps the reference's output for raw text. */
    assert_redacts_to(NULL, "Authorization: Bearer sk-abcdefghijklmnopqrstuvwxyz",
                      "Authorization: Bearer [REDACTED]");
}

static void huge_input(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    size_t n = 32u << 20;
    char *data = cb_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = "lorem ipsum %41 dolor\n"[i % 22];
    memcpy(data + n - 100, SECRET, strlen(SECRET));
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, data, n, &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, 0));
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, 1));
    assert_int_equal(rep.findings[0].offset, n - 100);
    free(data);
    cb_leak_scanner_free(sc);
}

/* RFC 4648 base32, written here independently of the scanner. */
static char *b32(const unsigned char *p, size_t n, bool lower, bool pad)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    char *out = cb_xmalloc(8 * (n / 5 + 1) + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 5) {
        uint64_t v = 0;
        size_t k = n - i < 5 ? n - i : 5;
        for (size_t j = 0; j < 5; j++)
            v = v << 8 | (j < k ? p[i + j] : 0);
        size_t chars = (k * 8 + 4) / 5;
        for (size_t j = 0; j < 8; j++)
            out[o++] = j < chars ? a[(v >> (35 - 5 * j)) & 31] : (pad ? '=' : '\0');
        if (!pad)
            o -= 8 - chars;
    }
    out[o] = '\0';
    for (size_t i = 0; lower && i < o; i++)
        out[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] + 32 : out[i]);
    return out;
}

static void base32_vector(void **state)
{
    (void)state;
    char *v = b32((const unsigned char *)"foobar", 6, false, true);
    assert_string_equal(v, "MZXW6YTBOI======");
    free(v);
}

/* Base32 at each of its five alignments, upper and lower case, padded or
 * not, inside a longer base32 text. */
static void base32_every_alignment(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    size_t n = strlen(SECRET);
    for (size_t pre = 0; pre < 5; pre++) {
        for (int variant = 0; variant < 4; variant++) {
            unsigned char buf[64];
            memcpy(buf, "ABCDE", pre);
            memcpy(buf + pre, SECRET, n);
            memcpy(buf + pre + n, "xyz", 3);
            char *enc = b32(buf, pre + n + 3, variant & 1, variant & 2);
            struct text t = {0};
            text_adds(&t, "otp=");
            text_adds(&t, enc);
            text_adds(&t, ";");
            struct cb_leak_report rep;
            assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
            assert_true(has_secret(&rep, 0, CB_LEAK_ENC_BASE32, 0));
            assert_clean_after_redact(sc, t.p, t.len);
            free(enc);
            free(t.p);
        }
    }
    char *whole = b32((const unsigned char *)SECRET, n, false, true);
    struct text t = {0};
    text_adds(&t, "k=");
    text_adds(&t, whole);
    text_adds(&t, "&");
    assert_redacts_to(sc, t.p, "k=[REDACTED]&");
    free(whole);
    free(t.p);
    cb_leak_scanner_free(sc);
}

static void reversed_casefold_rot13(void **state)
{
    (void)state;
    const char *secret = "Zx9-kLmQ_r7TbVw2sYp";
    const char *secrets[] = {secret};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    struct cb_leak_report rep;
    struct {
        const char *text;
        enum cb_leak_encoding enc;
    } cases[] = {
        {"a pYs2wVbT7r_QmLk-9xZ b", CB_LEAK_ENC_REVERSED},
        {"a PYS2WVBT7R_QMLK-9XZ b", CB_LEAK_ENC_REVERSED},
        {"a zx9-klmq_r7tbvw2syp b", CB_LEAK_ENC_CASEFOLD},
        {"a ZX9-KLMQ_R7TBVW2SYP b", CB_LEAK_ENC_CASEFOLD},
        {"a Mk9-xYzD_e7GoIj2fLc b", CB_LEAK_ENC_ROT13},
        {"a mK9-XyZd_E7gOiJ2FlC b", CB_LEAK_ENC_ROT13},
    };
    for (size_t k = 0; k < CB_ARRAY_LEN(cases); k++) {
        assert_int_equal(scan(sc, cases[k].text, strlen(cases[k].text), &rep), 1);
        if (!has_secret(&rep, 0, cases[k].enc, 0))
            fail_msg("%s not found as %s", cases[k].text, encoding_name(cases[k].enc));
        assert_redacts_to(sc, cases[k].text, "a [REDACTED] b");
    }
    /* The exact value is plain, not case-folded. */
    assert_int_equal(scan(sc, secret, strlen(secret), &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, 0));
    assert_false(has_secret(&rep, 0, CB_LEAK_ENC_CASEFOLD, 0));
    cb_leak_scanner_free(sc);
}

/* UTF-16 either byte order (BOM or not), redacted byte for byte. */
static void utf16(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    size_t n = strlen(SECRET);
    for (int big = 0; big < 2; big++) {
        unsigned char buf[128];
        size_t o = 0;
        buf[o++] = big ? 0xfe : 0xff;
        buf[o++] = big ? 0xff : 0xfe;
        for (size_t i = 0; i < n; i++) {
            buf[o + big] = (unsigned char)SECRET[i];
            buf[o + !big] = 0;
            o += 2;
        }
        struct cb_leak_report rep;
        assert_int_equal(scan(sc, (const char *)buf, o, &rep), 1);
        assert_true(has_secret(&rep, 0, CB_LEAK_ENC_UTF16, 0));
        size_t out_len;
        char *out = redact(sc, (const char *)buf, o, &out_len, NULL);
        assert_int_equal(out_len, 2 + strlen(CB_LEAK_REDACTED));
        assert_memory_equal(out + 2, CB_LEAK_REDACTED, strlen(CB_LEAK_REDACTED));
        free(out);
    }
    cb_leak_scanner_free(sc);
}

/* Every character as a JSON \u escape (either hex case), mixed with %XX,
 * and as text a tool printed inside a JSON string (the backslash itself
 * escaped); as HTML numeric references. */
static void json_unicode_escapes(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    size_t n = strlen(SECRET);
    for (int form = 0; form < 4; form++) {
        struct text t = {0};
        text_adds(&t, "{\"v\":\"");
        for (size_t i = 0; i < n; i++) {
            char e[16];
            unsigned char c = (unsigned char)SECRET[i];
            if (form == 0)
                snprintf(e, sizeof(e), "\\u%04x", c);
            else if (form == 1)
                snprintf(e, sizeof(e), "\\u%04X", c);
            else if (form == 2)
                snprintf(e, sizeof(e), i % 2 ? "%%%02X" : "\\u%04x", c);
            else
                snprintf(e, sizeof(e), "\\\\u%04x", c);
            text_adds(&t, e);
        }
        text_adds(&t, "\"}");
        struct cb_leak_report rep;
        assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
        /* Printed text: each escape decodes to a backslash and the
         * character, which the skeleton reads through. */
        assert_true(has_secret(&rep, 0, form == 3 ? CB_LEAK_ENC_SPACED : CB_LEAK_ENC_PLAIN, 1));
        assert_redacts_to(sc, t.p,
                          form == 3 ? "{\"v\":\"\\[REDACTED]\"}" : "{\"v\":\"[REDACTED]\"}");
        free(t.p);
    }
    /* HTML numeric references, decimal and hex, mixed with the others. */
    struct cb_leak_report rep;
    struct text h = {0};
    text_adds(&h, "<p>");
    for (size_t i = 0; i < n; i++) {
        char e[16];
        unsigned char c = (unsigned char)SECRET[i];
        snprintf(e, sizeof(e), i % 3 == 0 ? "&#%u;" : i % 3 == 1 ? "&#x%X;" : "%%%02x", c);
        text_adds(&h, e);
    }
    text_adds(&h, "</p>");
    assert_int_equal(scan(sc, h.p, h.len, &rep), 1);
    assert_true(has_secret(&rep, 0, CB_LEAK_ENC_PLAIN, 1));
    assert_redacts_to(sc, h.p, "<p>[REDACTED]</p>");
    free(h.p);
    /* Longer code points and invalid escapes are left alone. */
    const char *other = "\\u00e9\\u0G41\\u004 \\x41 %4G &#233; &#x41 &#; &#0000065; &amp;";
    assert_int_equal(scan(sc, other, strlen(other), &rep), 0);
    cb_leak_scanner_free(sc);
}

/* Any run of 12 or more characters of a secret, or of its reversal, in
 * any letter case; 11 are not enough. Two halves handed out apart are
 * both redacted. */
static void fragments(void **state)
{
    (void)state;
    const char *secret = "s3cr3t-upstream-token-9f8e7d6c5b4a";
    const char *secrets[] = {secret};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    size_t n = strlen(secret);
    struct cb_leak_report rep;
    for (size_t len = 11; len <= 13; len++) {
        for (size_t off = 0; off + len <= n; off++) {
            char t[128];
            snprintf(t, sizeof(t), "x %.*s y", (int)len, secret + off);
            int r = scan(sc, t, strlen(t), &rep);
            if (len < CB_LEAK_MIN_FRAGMENT) {
                if (r != 0)
                    fail_msg("11 characters at %zu found", off);
                continue;
            }
            assert_int_equal(r, 1);
            assert_true(has_secret(&rep, 0, CB_LEAK_ENC_FRAGMENT, 0));
            assert_redacts_to(sc, t, "x [REDACTED] y");
        }
    }
    assert_redacts_to(sc, "first: s3cr3t-upstream-t, then: oken-9f8e7d6c5b4a.",
                      "first: [REDACTED], then: [REDACTED].");
    assert_redacts_to(sc, "rev: a4b5c6d7E8F9-NEKOT-maer", "rev: [REDACTED]");
    cb_leak_scanner_free(sc);
}

/* Spaced out, split by separators, one character per JSON array element,
 * UTF-16 printed through JSON (\u0000 between characters). */
static void spaced_out(void **state)
{
    (void)state;
    const char *secret = "s3cr3t-upstream-token-9f8e7d6c5b4a";
    const char *secrets[] = {secret};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    const char *seps[] = {" ", "  ", "-", "\n", "\",\"", "\\u0000", "%20"};
    for (size_t k = 0; k < CB_ARRAY_LEN(seps); k++) {
        struct text t = {0};
        text_adds(&t, "[\"");
        for (size_t i = 0; secret[i]; i++) {
            text_add(&t, secret + i, 1);
            if (secret[i + 1])
                text_adds(&t, seps[k]);
        }
        text_adds(&t, "\"]");
        struct cb_leak_report rep;
        assert_int_equal(scan(sc, t.p, t.len, &rep), 1);
        bool spaced = false;
        for (unsigned d = 0; d < 3; d++)
            spaced |= has_secret(&rep, 0, CB_LEAK_ENC_SPACED, d);
        if (!spaced)
            fail_msg("separator '%s' not seen", seps[k]);
        assert_redacts_to(sc, t.p, "[\"[REDACTED]\"]");
        free(t.p);
    }
    cb_leak_scanner_free(sc);
}

/* What must not be redacted: pieces of 11 characters, the same letters in
 * another order, and text that two secrets share. */
static void fragment_false_positives(void **state)
{
    (void)state;
    const char *secrets[] = {"sk-proj-abcdefAAAAbbbbCCCC1111", "sk-proj-abcdefZZZZyyyyXXXX9999"};
    struct cb_leak_scanner *sc = scanner(secrets, 2);
    struct cb_leak_report rep;
    const char *ok[] = {"the keys start with sk-proj-abcdef, that is all", "AAAAbbbbCCC1",
                        "proj AAAA and bbbb CCCC", "bbbbAAAACCCC-proj-sk", "CCCC1111 ZZZZyyyy"};
    for (size_t k = 0; k < CB_ARRAY_LEN(ok); k++)
        if (scan(sc, ok[k], strlen(ok[k]), &rep) != 0)
            fail_msg("'%s' was flagged (%s)", ok[k], encoding_name(rep.findings[0].encoding));
    assert_redacts_to(sc, "x abcdefAAAAbbbb y", "x [REDACTED] y");
    cb_leak_scanner_free(sc);
}

static void empty_input(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    struct cb_leak_report rep;
    assert_int_equal(scan(sc, "", 0, &rep), 0);
    size_t out_len, count;
    char *out = redact(sc, "", 0, &out_len, &count);
    assert_int_equal(out_len, 0);
    assert_int_equal(count, 0);
    free(out);
    cb_leak_scanner_free(sc);
}

/* One scan of pieces joined: true only when every piece is clean, for a
 * secret or a pattern at either end of any piece (look-arounds see a line
 * end as they see the end of the text). */
static void pieces_clean_only_when_each_is(void **state)
{
    (void)state;
    const char *secrets[] = {"cb-piece-secret-7a3f9e21"};
    struct cb_leak_scanner *sc = scanner(secrets, 1);
    const char *dirty[] = {"cb-piece-secret-7a3f9e21", "AKIAIOSFODNN7EXAMPLE",
                           "x-key: ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                           "Y2ItcGllY2Utc2VjcmV0LTdhM2Y5ZTIx", "%63b-piece-secret-7a3f9e21"};
    struct cb_leak_piece p[4] = {
        {"GET", 3}, {"http://example.com/a?b=1", 24}, {"content-type: text/plain", 24}, {"", 0}};
    assert_true(cb_leak_pieces_clean(sc, p, 4));
    assert_true(cb_leak_pieces_clean(sc, p, 0));
    for (size_t d = 0; d < CB_ARRAY_LEN(dirty); d++)
        for (size_t at = 0; at < 4; at++) {
            struct cb_leak_piece q[4];
            memcpy(q, p, sizeof(q));
            q[at] = (struct cb_leak_piece){dirty[d], strlen(dirty[d])};
            struct cb_leak_report rep;
            struct cb_error err = {0};
            assert_int_equal(cb_leak_scan(sc, dirty[d], strlen(dirty[d]), &rep, &err), 1);
            assert_false(cb_leak_pieces_clean(sc, q, 4));
        }
    /* Past the stack buffer too. */
    char big[6000];
    memset(big, 'a', sizeof(big));
    memcpy(big + 5000, secrets[0], strlen(secrets[0]));
    struct cb_leak_piece b[2] = {{"GET", 3}, {big, sizeof(big)}};
    assert_false(cb_leak_pieces_clean(sc, b, 2));
    b[1].len = 4000;
    assert_true(cb_leak_pieces_clean(sc, b, 2));
    cb_leak_scanner_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_secret),
        cmocka_unit_test(pieces_clean_only_when_each_is),
        cmocka_unit_test(base64_every_alignment),
        cmocka_unit_test(base64_whole_value_redacted),
        cmocka_unit_test(hex_any_case),
        cmocka_unit_test(url_encodings),
        cmocka_unit_test(nested_encodings),
        cmocka_unit_test(json_escaped),
        cmocka_unit_test(every_occurrence),
        cmocka_unit_test(overlapping_and_prefix_secrets),
        cmocka_unit_test(short_and_too_many_secrets),
        cmocka_unit_test(binary_data),
        cmocka_unit_test(invalid_utf8_and_patterns),
        cmocka_unit_test(patterns_in_decoded_text),
        cmocka_unit_test(huge_input),
        cmocka_unit_test(empty_input),
        cmocka_unit_test(base32_vector),
        cmocka_unit_test(base32_every_alignment),
        cmocka_unit_test(reversed_casefold_rot13),
        cmocka_unit_test(utf16),
        cmocka_unit_test(json_unicode_escapes),
        cmocka_unit_test(fragments),
        cmocka_unit_test(spaced_out),
        cmocka_unit_test(fragment_false_positives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
