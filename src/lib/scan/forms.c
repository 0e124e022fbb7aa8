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

/* Base64 of (pad zero bytes, then s) without padding characters. */
static unsigned char *b64_raw(const unsigned char *s, size_t n, size_t pad, bool url,
                              size_t *out_len)
{
    size_t total = n + pad;
    unsigned char *out = cb_xmalloc((total + 2) / 3 * 4 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < total; i++) {
        acc = (acc << 8) | (i < pad ? 0u : s[i - pad]);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = (unsigned char)b64_std[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = (unsigned char)b64_std[(acc << (6 - bits)) & 63];
    if (url)
        for (size_t i = 0; i < o; i++)
            out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    *out_len = o;
    return out;
}

/* The characters of base64(pad bytes + s) that depend on s alone: from the
 * first character whose 6 bits start at or after the secret's first bit to
 * the last one that ends at or before its last bit. */
static struct cb__form b64_form(const unsigned char *s, size_t n, size_t pad, bool url)
{
    size_t len;
    unsigned char *all = b64_raw(s, n, pad, url, &len);
    size_t k0 = (8 * pad + 5) / 6;
    size_t k1 = 8 * (pad + n) / 6;
    struct cb__form f =
        make(url ? CB_LEAK_ENC_BASE64URL : CB_LEAK_ENC_BASE64, copy(all + k0, k1 - k0), k1 - k0);
    f.edge_left = (8 * pad) % 6 != 0;
    f.edge_right = (8 * (pad + n)) % 6 != 0;
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
    static const char hex[] = "0123456789ABCDEF";
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
            p[o + 4] = (unsigned char)hex[c >> 4];
            p[o + 5] = (unsigned char)hex[c & 15];
            o += 6;
        } else {
            p[o++] = c;
        }
    }
    return make(CB_LEAK_ENC_JSON, p, o);
}

static bool same(const struct cb__form *a, const struct cb__form *b)
{
    return a->len == b->len && a->icase == b->icase && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* Appends f unless an equal form is already there (then wipes it). */
static void add(struct cb__form *out, size_t *n, struct cb__form f)
{
    for (size_t i = 0; i < *n; i++) {
        if (same(&out[i], &f)) {
            cb__form_wipe(&f);
            return;
        }
    }
    out[(*n)++] = f;
}

size_t cb__secret_forms(const unsigned char *s, size_t n, struct cb__form out[CB__MAX_FORMS])
{
    size_t k = 0;
    add(out, &k, make(CB_LEAK_ENC_PLAIN, copy(s, n), n));
    add(out, &k, plus_form(s, n));
    add(out, &k, json_form(s, n));
    for (size_t pad = 0; pad < 3; pad++)
        add(out, &k, b64_form(s, n, pad, false));
    for (size_t pad = 0; pad < 3; pad++) {
        struct cb__form f = b64_form(s, n, pad, true);
        /* Equal to the standard form when no '+' or '/' occurs; keep the
         * standard one (same bytes, same edges). */
        add(out, &k, f);
    }
    add(out, &k, hex_form(s, n));
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

bool cb__form_b64_char(enum cb_leak_encoding enc, unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    /* Both alphabets: a form equal in both is kept once, as standard. */
    (void)enc;
    return c == '+' || c == '/' || c == '-' || c == '_';
}
