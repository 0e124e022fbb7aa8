#include "scan/forms.h"
#include "core/util.h"

#include <string.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static struct cb__form make(enum cb_leak_encoding enc, unsigned char *bytes, size_t len)
{
    struct cb__form f = {.enc = enc, .bytes = bytes, .len = len};
    return f;
}

static unsigned char *copy(const unsigned char *s, size_t n)
{
    unsigned char *p = cb_xmalloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

static const char b32_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* (pad zero bytes, then s) in base 2^bits with alphabet `alpha`, without
 * padding characters. */
static unsigned char *radix_raw(const unsigned char *s, size_t n, size_t pad, unsigned bits,
                                const char *alpha, size_t *out_len)
{
    size_t total = n + pad;
    unsigned char *out = cb_xmalloc(total * 8 / bits + 2);
    size_t o = 0;
    uint32_t acc = 0, mask = (1u << bits) - 1;
    unsigned have = 0;
    for (size_t i = 0; i < total; i++) {
        acc = (acc << 8) | (i < pad ? 0u : s[i - pad]);
        have += 8;
        while (have >= bits) {
            have -= bits;
            out[o++] = (unsigned char)alpha[(acc >> have) & mask];
        }
    }
    if (have > 0)
        out[o++] = (unsigned char)alpha[(acc << (bits - have)) & mask];
    *out_len = o;
    return out;
}

/* The characters of radix(pad bytes + s) that depend on s alone: from the
 * first character whose bits start at or after the secret's first bit to
 * the last one that ends at or before its last bit. Base64 (6 bits) has
 * three alignments, base32 (5 bits) five. */
static struct cb__form radix_form(const unsigned char *s, size_t n, size_t pad,
                                  enum cb_leak_encoding enc)
{
    unsigned bits = enc == CB_LEAK_ENC_BASE32 ? 5 : 6;
    size_t len;
    unsigned char *all =
        radix_raw(s, n, pad, bits, enc == CB_LEAK_ENC_BASE32 ? b32_std : b64_std, &len);
    if (enc == CB_LEAK_ENC_BASE64URL)
        for (size_t i = 0; i < len; i++)
            all[i] = all[i] == '+' ? '-' : all[i] == '/' ? '_' : all[i];
    size_t k0 = (8 * pad + bits - 1) / bits;
    size_t k1 = 8 * (pad + n) / bits;
    struct cb__form f = make(enc, copy(all + k0, k1 - k0), k1 - k0);
    f.edge_left = (8 * pad) % bits != 0;
    f.edge_right = (8 * (pad + n)) % bits != 0;
    /* Base32 is written in either case (RFC 4648 allows lower case). */
    f.icase = enc == CB_LEAK_ENC_BASE32;
    explicit_bzero(all, len);
    free(all);
    return f;
}

static struct cb__form hex_form(const unsigned char *s, size_t n)
{
    unsigned char *h = cb_xmalloc(2 * n + 1);
    cb_hex_encode(s, n, (char *)h);
    struct cb__form f = make(CB_LEAK_ENC_HEX, h, 2 * n);
    f.icase = true;
    return f;
}

static struct cb__form plus_form(const unsigned char *s, size_t n)
{
    unsigned char *p = copy(s, n);
    for (size_t i = 0; i < n; i++)
        if (p[i] == ' ')
            p[i] = '+';
    return make(CB_LEAK_ENC_PLUS_SPACE, p, n);
}

/* The secret as jansson writes it inside a JSON string. */
static struct cb__form json_form(const unsigned char *s, size_t n)
{
    unsigned char *p = cb_xmalloc(6 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                                      : NULL;
        if (esc) {
            p[o++] = (unsigned char)esc[0];
            p[o++] = (unsigned char)esc[1];
        } else if (c < 0x20) {
            memcpy(p + o, "\\u00", 4);
            cb_hex_byte(c, true, (char *)p + o + 4);
            o += 6;
        } else {
            p[o++] = c;
        }
    }
    return make(CB_LEAK_ENC_JSON, p, o);
}

static struct cb__form reversed_form(const unsigned char *s, size_t n)
{
    unsigned char *p = cb_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = s[n - 1 - i];
    struct cb__form f = make(CB_LEAK_ENC_REVERSED, p, n);
    f.icase = true;
    return f;
}

static struct cb__form rot13_form(const unsigned char *s, size_t n)
{
    unsigned char *p = copy(s, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i] | 0x20;
        if (c >= 'a' && c <= 'z')
            p[i] = (unsigned char)(c <= 'm' ? p[i] + 13 : p[i] - 13);
    }
    struct cb__form f = make(CB_LEAK_ENC_ROT13, p, n);
    f.icase = true;
    return f;
}

/* UTF-16 of an ASCII secret: each byte with a zero byte after it (little
 * endian) or before it (big endian). */
static struct cb__form utf16_form(const unsigned char *s, size_t n, bool big)
{
    unsigned char *p = cb_xcalloc(2 * n, 1);
    for (size_t i = 0; i < n; i++)
        p[2 * i + big] = s[i];
    struct cb__form f = make(CB_LEAK_ENC_UTF16, p, 2 * n);
    f.icase = true;
    return f;
}

static bool ascii(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return false;
    return true;
}

/* Equal bytes are one form, kept as the first one added (plain comes
 * first); it ignores case when either did. */
static bool same(const struct cb__form *a, const struct cb__form *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* Appends f unless an equal form is already there (then wipes it). */
static void add(struct cb__form *out, size_t *n, struct cb__form f)
{
    for (size_t i = 0; i < *n; i++) {
        if (same(&out[i], &f)) {
            out[i].icase |= f.icase;
            cb__form_wipe(&f);
            return;
        }
    }
    out[(*n)++] = f;
}

size_t cb__secret_forms(const unsigned char *s, size_t n, struct cb__form out[CB__MAX_FORMS])
{
    size_t k = 0;
    /* Plain text in any letter case: the scanner tells plain from
     * case-folded on a hit. */
    struct cb__form plain = make(CB_LEAK_ENC_PLAIN, copy(s, n), n);
    plain.icase = true;
    add(out, &k, plain);
    add(out, &k, plus_form(s, n));
    add(out, &k, json_form(s, n));
    /* A URL-safe form equal to the standard one (no '+' or '/') is kept
     * once, as standard (same bytes, same edges). */
    for (size_t pad = 0; pad < 3; pad++)
        add(out, &k, radix_form(s, n, pad, CB_LEAK_ENC_BASE64));
    for (size_t pad = 0; pad < 3; pad++)
        add(out, &k, radix_form(s, n, pad, CB_LEAK_ENC_BASE64URL));
    add(out, &k, hex_form(s, n));
    for (size_t pad = 0; pad < 5; pad++)
        add(out, &k, radix_form(s, n, pad, CB_LEAK_ENC_BASE32));
    add(out, &k, reversed_form(s, n));
    add(out, &k, rot13_form(s, n));
    if (ascii(s, n)) {
        add(out, &k, utf16_form(s, n, false));
        add(out, &k, utf16_form(s, n, true));
    }
    return k;
}

void cb__form_wipe(struct cb__form *f)
{
    if (f->bytes) {
        explicit_bzero(f->bytes, f->len);
        free(f->bytes);
    }
    f->bytes = NULL;
    f->len = 0;
}

bool cb__form_alpha_char(enum cb_leak_encoding enc, unsigned char c)
{
    unsigned char l = c | 0x20;
    if (enc == CB_LEAK_ENC_BASE32)
        return (l >= 'a' && l <= 'z') || (c >= '2' && c <= '7');
    if ((l >= 'a' && l <= 'z') || (c >= '0' && c <= '9'))
        return true;
    /* Both base64 alphabets: a form equal in both is kept once, as
     * standard. */
    return c == '+' || c == '/' || c == '-' || c == '_';
}
