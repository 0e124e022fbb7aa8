#include "proxy/decode.h"
#include "core/util.h"
#include "proxy/forward.h"
#include "proxy/internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* Bytes inflated at a time into a buffer on the stack. */
#define CHUNK 16384
/* Longest coding name quoted back in a message: the header is the
 * upstream's, and an upstream that reflects a credential could put one
 * there; shorter than the shortest piece of a secret that is redacted. */
#define MAX_QUOTED 11

enum coding { IDENTITY, GZIP, DEFLATE, UNKNOWN };

struct token {
    const char *p;
    size_t n;
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The comma-separated names of a header value, trimmed, empty ones
 * skipped. Returns how many, or -1 when there are more than max. */
static int split(const char *s, struct token *t, int max)
{
    int n = 0;
    while (*s) {
        while (*s == ',' || is_ows(*s))
            s++;
        const char *start = s;
        while (*s && *s != ',')
            s++;
        size_t len = (size_t)(s - start);
        while (len > 0 && is_ows(start[len - 1]))
            len--;
        if (len == 0)
            continue;
        if (n == max)
            return -1;
        t[n++] = (struct token){start, len};
    }
    return n;
}

static bool named(struct token t, const char *name)
{
    return t.n == strlen(name) && strncasecmp(t.p, name, t.n) == 0;
}

static enum coding coding_of(struct token t)
{
    if (named(t, "identity"))
        return IDENTITY;
    if (named(t, "gzip") || named(t, "x-gzip"))
        return GZIP;
    if (named(t, "deflate"))
        return DEFLATE;
    return UNKNOWN;
}

/* "deflate" is RFC 1950 zlib; some servers send bare RFC 1951 deflate,
 * which is told apart by the zlib header's check bits. */
static int deflate_bits(const unsigned char *p, size_t len)
{
    bool zlib = len >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && (p[0] * 256 + p[1]) % 31 == 0;
    return zlib ? MAX_WBITS : -MAX_WBITS;
}

struct inflater {
    z_stream zs;
    const unsigned char *rest; /* input not yet handed to zlib */
    size_t rest_len;
};

/* Hands zlib the next piece of input when it has used up the last one
 * (avail_in is an unsigned int). */
static void feed(struct inflater *f)
{
    if (f->zs.avail_in > 0 || f->rest_len == 0)
        return;
    size_t n = f->rest_len < UINT_MAX ? f->rest_len : UINT_MAX;
    f->zs.next_in = (Bytef *)f->rest;
    f->zs.avail_in = (uInt)n;
    f->rest += n;
    f->rest_len -= n;
}

static size_t left(const struct inflater *f)
{
    return f->zs.avail_in + f->rest_len;
}

/* After the end of a stream: gzip may hold another member; anything else
 * that follows is not part of the body. 1 to go on, 0 done, < 0 error. */
static int after_end(struct inflater *f, bool members, const char **why)
{
    if (left(f) == 0)
        return 0;
    feed(f);
    if (members && f->zs.avail_in >= 2 && f->zs.next_in[0] == 0x1f && f->zs.next_in[1] == 0x8b) {
        inflateReset(&f->zs);
        return 1;
    }
    *why = "bytes follow the end of the compressed data";
    return -EBADMSG;
}

/* Inflates with zlib's window bits `bits` into out. */
static int inflate_all(const unsigned char *in, size_t len, int bits, bool members,
                       struct cb_buf *out, const char **why)
{
    struct inflater f = {.rest = in, .rest_len = len};
    if (inflateInit2(&f.zs, bits) != Z_OK)
        return -ENOMEM;
    int r = 0;
    for (;;) {
        unsigned char buf[CHUNK];
        feed(&f);
        f.zs.next_out = buf;
        f.zs.avail_out = sizeof(buf);
        int z = inflate(&f.zs, Z_NO_FLUSH);
        size_t got = sizeof(buf) - f.zs.avail_out;
        if (got > 0 && cb_buf_append(out, buf, got) < 0) {
            r = -EFBIG;
            break;
        }
        if (z == Z_STREAM_END && (r = after_end(&f, members, why)) > 0)
            continue;
        if (z == Z_STREAM_END || r < 0)
            break;
        if (z == Z_OK)
            continue;
        r = -EBADMSG;
        /* zlib's messages are fixed texts, never the data. */
        *why = z == Z_BUF_ERROR && left(&f) == 0 ? "the compressed data is cut short"
               : f.zs.msg                        ? f.zs.msg
                                                 : "the compressed data is corrupt";
        break;
    }
    inflateEnd(&f.zs);
    return r;
}

static int decode_one(enum coding c, const unsigned char *p, size_t len, struct cb_buf *out,
                      const char **why)
{
    if (c == GZIP)
        return inflate_all(p, len, MAX_WBITS + 16, true, out, why);
    return inflate_all(p, len, deflate_bits(p, len), false, out, why);
}

/* A coding name that can be quoted: short, and a plain token. */
static bool quotable(struct token t)
{
    if (t.n > MAX_QUOTED)
        return false;
    for (size_t i = 0; i < t.n; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9') && c != '-' &&
            c != '.' && c != '_')
            return false;
    }
    return true;
}

static int unknown_coding(struct token t, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    return cb_error_set(err, -ENOTSUP,
                        "the response is encoded as %s%s%s, which the proxy cannot decode to scan "
                        "it for credentials; ask for gzip, deflate or identity (Accept-Encoding)",
                        quotable(t) ? "'" : "",
                        quotable(t) ? cb__proxy_quote(t.p, t.n, q) : "an unknown coding",
                        quotable(t) ? "'" : "");
}

/* The codings to undo, last applied first; identity dropped. */
static int plan(const char *codings, enum coding *todo, struct cb_error *err)
{
    struct token t[CB_DECODE_MAX_CODINGS];
    int n = split(codings, t, CB_DECODE_MAX_CODINGS);
    if (n < 0)
        return cb_error_set(err, -ENOTSUP,
                            "the response is encoded more than %d times; the proxy will not "
                            "decode it",
                            CB_DECODE_MAX_CODINGS);
    int k = 0;
    for (int i = n - 1; i >= 0; i--) {
        enum coding c = coding_of(t[i]);
        if (c == UNKNOWN)
            return unknown_coding(t[i], err);
        if (c != IDENTITY)
            todo[k++] = c;
    }
    return k;
}

static int decode_failed(int r, enum coding c, size_t max, const char *why, struct cb_error *err)
{
    const char *name = c == GZIP ? "gzip" : "deflate";
    if (r == -EFBIG)
        return cb_error_set(err, r, "the response exceeds the limit of %zu bytes once decoded (%s)",
                            max, name);
    if (r == -EBADMSG)
        return cb_error_set(err, r, "the response's %s body cannot be decoded: %s", name, why);
    return cb_error_set(err, r, "out of memory decoding the response");
}

int cb__decode_body(const char *codings, const void *in, size_t len, size_t max, struct cb_buf *out,
                    struct cb_error *err)
{
    enum coding todo[CB_DECODE_MAX_CODINGS];
    cb_buf_init(out, max);
    int n = plan(codings ? codings : "", todo, err);
    if (n < 0)
        return n;
    if (n == 0 && cb_buf_append(out, in, len) < 0)
        return cb_error_set(err, -EFBIG, "the response exceeds the limit of %zu bytes", max);
    const unsigned char *p = in;
    for (int i = 0; i < n; i++) {
        struct cb_buf next;
        const char *why = NULL;
        cb_buf_init(&next, max);
        int r = decode_one(todo[i], p, len, &next, &why);
        cb_buf_free(out);
        *out = next;
        if (r < 0) {
            cb_buf_reset(out);
            return decode_failed(r, todo[i], max, why, err);
        }
        p = (const unsigned char *)(out->data ? out->data : "");
        len = out->len;
    }
    return 0;
}

int cb__decode_response(struct cb_forward_response *res, const char *host, size_t max,
                        struct cb_error *err)
{
    const char *codings = json_string_value(json_object_get(res->headers, "content-encoding"));
    if (codings == NULL || res->body.len == 0)
        return 0;
    struct cb_buf out;
    int r = cb__decode_body(codings, res->body.data, res->body.len, max, &out, err);
    if (r < 0) {
        cb_buf_free(&out);
        cb_error_prefix(err, "response from %s", host);
        return r;
    }
    cb_buf_free(&res->body);
    res->body = out;
    json_object_del(res->headers, "content-encoding");
    if (json_object_get(res->headers, "content-length")) {
        char n[32];
        snprintf(n, sizeof(n), "%zu", out.len);
        json_object_set_new(res->headers, "content-length", json_string(n));
    }
    return 0;
}
