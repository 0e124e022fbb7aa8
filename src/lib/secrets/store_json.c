/* The credential payload codec: a strict reader for the JSON array the
 * reference writes (serde_json), and a writer that produces the same bytes
 * serde_json would. Error messages give positions, never content. */
#include "secrets/internal.h"
#include "secrets/secrets.h"

#include "core/utf8.h"
#include "core/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Nesting allowed inside an unknown member we skip. */
#define SKIP_MAX_DEPTH 32

const char *const cb__cred_field_names[CB__F_COUNT] = {"name", "value", "domain", "header_name",
                                                       "header_prefix"};

struct json_parser {
    const unsigned char *s;
    size_t n;
    size_t i;
    struct cb_error *err;
};

static int fail(struct json_parser *p, const char *what)
{
    return cb_error_set(p->err, CB_SECRETS_E_BAD_PAYLOAD,
                        "credential store payload is not the expected JSON: %s at byte %zu", what,
                        p->i);
}

static void skip_ws(struct json_parser *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static bool eat(struct json_parser *p, char c)
{
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)c) {
        p->i++;
        return true;
    }
    return false;
}

static int hex4(struct json_parser *p, uint32_t *out)
{
    uint32_t v = 0;
    if (p->n - p->i < 4)
        return fail(p, "short \\u escape");
    for (int k = 0; k < 4; k++) {
        int d = cb_hex_digit(p->s[p->i++]);
        if (d < 0)
            return fail(p, "bad hex digit in \\u escape");
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Decodes a \uXXXX escape (p->i just past the 'u'), joining surrogate
 * pairs as serde_json does and refusing lone surrogates. */
static int json_unicode_escape(struct json_parser *p, char *o, size_t *w)
{
    uint32_t cp, lo;
    int r = hex4(p, &cp);
    if (r < 0)
        return r;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, "lone trailing surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
            return fail(p, "lone leading surrogate");
        p->i += 2;
        if ((r = hex4(p, &lo)) < 0)
            return r;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, "bad trailing surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *w += cb_utf8_put(cp, o + *w);
    return 0;
}

static int simple_escape(struct json_parser *p, unsigned char c, char *o, size_t *w)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    const char *hit = memchr(from, c, sizeof(from) - 1);
    if (hit == NULL)
        return fail(p, "unknown escape");
    o[(*w)++] = to[hit - from];
    return 0;
}

/* Decodes the string body into o (at least as large as the raw body, which
 * no decoding can exceed). p->i is just past the opening quote. */
static int decode_string(struct json_parser *p, char *o, size_t *w)
{
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            o[*w] = '\0';
            return 0;
        }
        if (c < 0x20)
            return fail(p, "control character in string");
        if (c != '\\') {
            size_t k = cb_utf8_seq_len(p->s + p->i, p->n - p->i);
            if (k == 0)
                return fail(p, "invalid UTF-8 in string");
            memcpy(o + *w, p->s + p->i, k);
            *w += k;
            p->i += k;
            continue;
        }
        if (++p->i >= p->n)
            break;
        c = p->s[p->i++];
        int r = c == 'u' ? json_unicode_escape(p, o, w) : simple_escape(p, c, o, w);
        if (r < 0)
            return r;
    }
    return fail(p, "unterminated string");
}

/* Parses a string into a new buffer sized to the rest of the input's
 * string, so it is allocated once and never reallocated (no stray copies). */
static int parse_string(struct json_parser *p, char **out, size_t *len)
{
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] != '"')
        return fail(p, "expected a string");
    p->i++;
    /* The raw body up to the closing quote bounds the decoded size. */
    size_t j = p->i;
    while (j < p->n && p->s[j] != '"')
        j += p->s[j] == '\\' ? 2 : 1;
    size_t raw = (j < p->n ? j : p->n) - p->i;
    if (raw > CB_SECRETS_MAX_FIELD)
        return fail(p, "string longer than the field limit");
    char *o = cb_xmalloc(raw + 1);
    size_t w = 0;
    int r = decode_string(p, o, &w);
    if (r < 0) {
        cb_secret_free(o, raw + 1);
        return r;
    }
    *out = o;
    *len = w;
    return 0;
}

static int skip_value(struct json_parser *p, int depth);

static int skip_number(struct json_parser *p)
{
    size_t start = p->i;
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    size_t digits = p->i;
    while (p->i < p->n &&
           ((p->s[p->i] >= '0' && p->s[p->i] <= '9') || p->s[p->i] == '.' || p->s[p->i] == 'e' ||
            p->s[p->i] == 'E' || p->s[p->i] == '+' || p->s[p->i] == '-'))
        p->i++;
    if (p->i == digits || p->i == start)
        return fail(p, "expected a value");
    return 0;
}

static int skip_container(struct json_parser *p, int depth, char close, bool keyed)
{
    if (eat(p, close))
        return 0;
    do {
        if (keyed) {
            char *k;
            size_t kl;
            int r = parse_string(p, &k, &kl);
            if (r < 0)
                return r;
            cb_secret_free(k, kl);
            if (!eat(p, ':'))
                return fail(p, "expected ':'");
        }
        int r = skip_value(p, depth + 1);
        if (r < 0)
            return r;
    } while (eat(p, ','));
    return eat(p, close) ? 0 : fail(p, "expected ',' or a closing bracket");
}

/* Skips a value of an unknown member (serde ignores unknown fields). */
static int skip_value(struct json_parser *p, int depth)
{
    static const char *const words[] = {"true", "false", "null"};
    if (depth > SKIP_MAX_DEPTH)
        return fail(p, "nesting too deep");
    skip_ws(p);
    if (p->i >= p->n)
        return fail(p, "unexpected end");
    unsigned char c = p->s[p->i];
    if (c == '"') {
        char *s;
        size_t l;
        int r = parse_string(p, &s, &l);
        if (r == 0)
            cb_secret_free(s, l);
        return r;
    }
    if (c == '[' || c == '{') {
        p->i++;
        return skip_container(p, depth, c == '[' ? ']' : '}', c == '{');
    }
    for (size_t k = 0; k < CB_ARRAY_LEN(words); k++) {
        size_t wl = strlen(words[k]);
        if (p->n - p->i >= wl && memcmp(p->s + p->i, words[k], wl) == 0) {
            p->i += wl;
            return 0;
        }
    }
    return skip_number(p);
}

static int field_index(const char *key, size_t len)
{
    for (int f = 0; f < CB__F_COUNT; f++)
        if (strlen(cb__cred_field_names[f]) == len &&
            memcmp(cb__cred_field_names[f], key, len) == 0)
            return f;
    return -1;
}

/* The optional members, as bits of a "seen" set. */
enum { EXTRA_ALLOW_HTTP = 1, EXTRA_PORT = 2 };

static unsigned extra_index(const char *key, size_t len)
{
    if (len == 10 && memcmp(key, "allow_http", len) == 0)
        return EXTRA_ALLOW_HTTP;
    if (len == 4 && memcmp(key, "port", len) == 0)
        return EXTRA_PORT;
    return 0;
}

static int parse_bool(struct json_parser *p, bool *out)
{
    skip_ws(p);
    if (p->n - p->i >= 4 && memcmp(p->s + p->i, "true", 4) == 0) {
        p->i += 4;
        *out = true;
        return 0;
    }
    if (p->n - p->i >= 5 && memcmp(p->s + p->i, "false", 5) == 0) {
        p->i += 5;
        *out = false;
        return 0;
    }
    return fail(p, "\"allow_http\" is not true or false");
}

/* A port: an integer from 0 (any port) to 65535, as serde writes a u16. */
static int parse_port(struct json_parser *p, uint16_t *out)
{
    uint32_t v = 0;
    size_t start;
    skip_ws(p);
    start = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9' && p->i - start < 6)
        v = v * 10 + (uint32_t)(p->s[p->i++] - '0');
    bool more = p->i < p->n && strchr("0123456789.eE-+", p->s[p->i]) != NULL;
    if (p->i == start || more || v > 65535 || (p->s[start] == '0' && p->i - start > 1))
        return fail(p, "\"port\" is not an integer from 0 to 65535");
    *out = (uint16_t)v;
    return 0;
}

static int parse_extra(struct json_parser *p, struct cb__cred *c, unsigned x, unsigned *seen)
{
    if (*seen & x)
        return fail(p, "duplicate field");
    *seen |= x;
    return x == EXTRA_ALLOW_HTTP ? parse_bool(p, &c->allow_http) : parse_port(p, &c->port);
}

static int parse_member(struct json_parser *p, struct cb__cred *c, unsigned *seen)
{
    char *key;
    size_t kl;
    int r = parse_string(p, &key, &kl);
    if (r < 0)
        return r;
    int f = field_index(key, kl);
    unsigned x = extra_index(key, kl);
    cb_secret_free(key, kl);
    if (!eat(p, ':'))
        return fail(p, "expected ':'");
    if (x != 0)
        return parse_extra(p, c, x, seen);
    if (f < 0)
        return skip_value(p, 1);
    if (c->f[f] != NULL)
        return fail(p, "duplicate field");
    if ((r = parse_string(p, &c->f[f], &c->len[f])) < 0)
        return r;
    /* Only the value may hold a NUL; the others are used as C strings. */
    if (f != CB__F_VALUE && memchr(c->f[f], '\0', c->len[f]) != NULL)
        return fail(p, "NUL character in a name, domain or header field");
    return 0;
}

static int parse_entry(struct json_parser *p, struct cb__cred *c)
{
    unsigned seen = 0;
    if (!eat(p, '{'))
        return fail(p, "expected an object");
    if (!eat(p, '}')) {
        do {
            int r = parse_member(p, c, &seen);
            if (r < 0)
                return r;
        } while (eat(p, ','));
        if (!eat(p, '}'))
            return fail(p, "expected ',' or '}'");
    }
    for (int f = 0; f < CB__F_COUNT; f++) {
        if (c->f[f] == NULL)
            return cb_error_set(p->err, CB_SECRETS_E_BAD_PAYLOAD,
                                "credential store payload is not the expected JSON: an entry "
                                "lacks the field \"%s\" (before byte %zu)",
                                cb__cred_field_names[f], p->i);
    }
    cb__cred_set_match(c);
    return 0;
}

static int parse_entries(struct json_parser *p, struct cb__cred_list *out)
{
    if (eat(p, ']'))
        return 0;
    do {
        struct cb__cred c = {0};
        if (out->n >= CB_SECRETS_MAX_ENTRIES)
            return fail(p, "too many entries");
        int r = parse_entry(p, &c);
        if (r < 0) {
            cb__cred_clear(&c);
            return r;
        }
        cb__cred_list_push(out, &c);
    } while (eat(p, ','));
    return eat(p, ']') ? 0 : fail(p, "expected ',' or ']'");
}

int cb__creds_parse(const char *json, size_t len, struct cb__cred_list *out, struct cb_error *err)
{
    struct json_parser p = {(const unsigned char *)json, len, 0, err};
    int r = eat(&p, '[') ? parse_entries(&p, out) : fail(&p, "expected a JSON array");
    if (r == 0) {
        skip_ws(&p);
        if (p.i != p.n)
            r = fail(&p, "trailing data after the array");
    }
    if (r < 0)
        cb__cred_list_free(out);
    return r;
}

/* Writes s as a JSON string the way serde_json does: short escapes for
 * \b \t \n \f \r, \u00xx for other control bytes, everything else raw. With
 * o == NULL it only counts. Returns the number of bytes. */
static size_t put_string(char *o, const char *s, size_t n)
{
    size_t w = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o)                                                                                     \
            o[w] = (c);                                                                            \
        w++;                                                                                       \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *short_esc = c == '"'    ? "\""
                                : c == '\\' ? "\\"
                                : c == '\b' ? "b"
                                : c == '\t' ? "t"
                                : c == '\n' ? "n"
                                : c == '\f' ? "f"
                                : c == '\r' ? "r"
                                            : NULL;
        if (short_esc != NULL) {
            PUT('\\');
            PUT(*short_esc);
        } else if (c < 0x20) {
            char h[2];
            cb_hex_byte(c, false, h);
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(h[0]);
            PUT(h[1]);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    return w;
}

static size_t put_raw(char *o, const char *s)
{
    size_t n = strlen(s);
    if (o)
        memcpy(o, s, n);
    return n;
}

/* The optional members, only when set (so a store that uses none is what
 * the reference writes). */
static size_t put_extras(char *o, const struct cb__cred *c)
{
    char port[24];
    size_t w = c->allow_http ? put_raw(o, ",\"allow_http\":true") : 0;
    if (c->port != 0) {
        snprintf(port, sizeof(port), ",\"port\":%u", (unsigned)c->port);
        w += put_raw(o ? o + w : NULL, port);
    }
    return w;
}

/* One pass of the writer; with o == NULL it measures. */
static size_t write_list(char *o, const struct cb__cred_list *l)
{
    size_t w = put_raw(o, "[");
    for (size_t i = 0; i < l->n; i++) {
        w += put_raw(o ? o + w : NULL, i ? ",{" : "{");
        for (int f = 0; f < CB__F_COUNT; f++) {
            const char *k = cb__cred_field_names[f];
            w += put_raw(o ? o + w : NULL, f ? ",\"" : "\"");
            w += put_raw(o ? o + w : NULL, k);
            w += put_raw(o ? o + w : NULL, "\":");
            w += put_string(o ? o + w : NULL, l->v[i].f[f], l->v[i].len[f]);
        }
        w += put_extras(o ? o + w : NULL, &l->v[i]);
        w += put_raw(o ? o + w : NULL, "}");
    }
    w += put_raw(o ? o + w : NULL, "]");
    return w;
}

char *cb__creds_serialize(const struct cb__cred_list *l, size_t *len)
{
    size_t n = write_list(NULL, l);
    char *o = cb_xmalloc(n + 1);
    write_list(o, l);
    o[n] = '\0';
    *len = n;
    return o;
}

void cb__cred_clear(struct cb__cred *c)
{
    for (int f = 0; f < CB__F_COUNT; f++) {
        if (c->f[f] != NULL)
            cb_secret_free(c->f[f], c->len[f] + 1);
        c->f[f] = NULL;
        c->len[f] = 0;
    }
    c->allow_http = false;
    c->port = 0;
    c->match[0] = '\0';
}

void cb__cred_set_match(struct cb__cred *c)
{
    if (cb_cred_domain_normalize(c->f[CB__F_DOMAIN], c->match, NULL) < 0)
        c->match[0] = '\0';
}

void cb__cred_list_free(struct cb__cred_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        cb__cred_clear(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

void cb__cred_list_push(struct cb__cred_list *l, struct cb__cred *c)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = cb_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *c;
    memset(c, 0, sizeof(*c));
}
