#include "http/parse.h"
#include "core/utf8.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool cb__http_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool cb__http_is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool cb__http_name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

unsigned cb__http_error_status(int code)
{
    switch (code) {
    case -ENAMETOOLONG:
        return 414;
    case -E2BIG:
        return 431;
    case -EFBIG:
        return 413;
    case -EPROTONOSUPPORT:
        return 505;
    case -EOPNOTSUPP:
        return 417;
    default:
        return 400;
    }
}

size_t cb__http_find_head_end(const char *buf, size_t len, struct cb_http_scan *st)
{
    while (st->line < len) {
        const char *lf = memchr(buf + st->line, '\n', len - st->line);
        if (lf == NULL)
            return 0;
        size_t n = (size_t)(lf - buf) - st->line;
        bool empty = n == 0 || (n == 1 && buf[st->line] == '\r');
        st->line = (size_t)(lf - buf) + 1;
        if (empty && st->content)
            return st->line;
        st->content = st->content || !empty;
    }
    return 0;
}

/* Names a byte that is not allowed where it was found, for a message. */
static const char *describe_byte(unsigned char c, char out[24])
{
    if (c == '\0')
        return "a NUL byte";
    if (c == '\r')
        return "a bare CR";
    if (c == ' ')
        return "a space";
    if (c < 0x20 || c == 0x7f)
        snprintf(out, 24, "control character 0x%02x", c);
    else if (c >= 0x80)
        snprintf(out, 24, "byte 0x%02x", c);
    else
        snprintf(out, 24, "'%c'", c);
    return out;
}

/* Copies up to 32 bytes of a client's token for a message, printable ASCII
 * only (a message must stay valid UTF-8 and free of control characters). */
static const char *printable(const char *p, size_t n, char out[36])
{
    size_t k = n < 32 ? n : 32;
    for (size_t i = 0; i < k; i++)
        out[i] = (p[i] > 0x20 && p[i] < 0x7f) ? p[i] : '?';
    if (k < n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
    return out;
}

/* One line of the head: [start, end) without its line ending. */
struct line {
    size_t start, end, next;
};

static bool next_line(const char *buf, size_t len, size_t pos, struct line *l)
{
    const char *lf = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
    if (lf == NULL)
        return false;
    l->start = pos;
    l->end = (size_t)(lf - buf);
    l->next = l->end + 1;
    if (l->end > pos && buf[l->end - 1] == '\r')
        l->end--;
    return true;
}

/* A CR is allowed only right before an LF. */
static int check_bare_cr(const char *buf, size_t len, struct cb_error *err)
{
    const char *p = buf;
    const char *end = buf + len;
    unsigned line = 1;
    while ((p = memchr(p, '\r', (size_t)(end - p))) != NULL) {
        if (p + 1 == end || p[1] != '\n') {
            for (const char *q = buf; q < p; q++)
                line += *q == '\n';
            return cb_error_set(err, -EINVAL,
                                "bare CR (not followed by LF) in line %u of the "
                                "request head",
                                line);
        }
        p++;
    }
    return 0;
}

static int parse_version(const char *v, size_t n, struct cb_http_head *h, struct cb_error *err)
{
    char tmp[36];
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return cb_error_set(err, -EINVAL, "malformed HTTP version \"%s\"", printable(v, n, tmp));
    if (v[5] != '1' || v[7] > '1')
        return cb_error_set(err, -EPROTONOSUPPORT,
                            "HTTP version %.8s is not supported; use HTTP/1.1 or HTTP/1.0", v);
    h->minor = (unsigned)(v[7] - '0');
    return 0;
}

static int check_method(const char *m, size_t n, struct cb_error *err)
{
    char d[24];
    if (n == 0)
        return cb_error_set(err, -EINVAL, "malformed request line: empty method");
    if (n > CB_HTTP_MAX_METHOD)
        return cb_error_set(err, -EINVAL, "method longer than %u bytes", CB_HTTP_MAX_METHOD);
    for (size_t i = 0; i < n; i++)
        if (!cb__http_is_tchar((unsigned char)m[i]))
            return cb_error_set(err, -EINVAL, "method contains %s",
                                describe_byte((unsigned char)m[i], d));
    return 0;
}

static int parse_request_line(const char *buf, const struct line *l, struct cb_http_head *h,
                              struct cb_error *err)
{
    const char *s = buf + l->start;
    const char *e = buf + l->end;
    const char *sp1 = memchr(s, ' ', (size_t)(e - s));
    if (sp1 == NULL)
        return cb_error_set(err, -EINVAL,
                            "malformed request line: expected METHOD TARGET "
                            "HTTP/1.1");
    int r = check_method(s, (size_t)(sp1 - s), err);
    if (r < 0)
        return r;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1)
        return cb_error_set(err, -EINVAL,
                            "malformed request line: expected METHOD TARGET "
                            "HTTP/1.1");
    if (memchr(sp2 + 1, ' ', (size_t)(e - sp2 - 1)) != NULL)
        return cb_error_set(err, -EINVAL,
                            "malformed request line: more than two spaces (a "
                            "space in the target must be sent as %%20)");
    h->method = (struct cb_http_span){(uint32_t)(s - buf), (uint32_t)(sp1 - s)};
    h->target = (struct cb_http_span){(uint32_t)(sp1 + 1 - buf), (uint32_t)(sp2 - sp1 - 1)};
    return parse_version(sp2 + 1, (size_t)(e - sp2 - 1), h, err);
}

/* Every '%' starts a two-digit escape, and no escape encodes a control
 * character: a decoded NUL would cut the path short, and a decoded CR or
 * LF would reach logs and messages. */
static int check_escapes(const char *p, size_t n, const char *what, struct cb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%')
            continue;
        if (i + 2 >= n)
            return cb_error_set(err, -EINVAL, "bad percent-escape in the %s", what);
        int hi = cb_hex_digit((unsigned char)p[i + 1]);
        int lo = cb_hex_digit((unsigned char)p[i + 2]);
        if (hi < 0 || lo < 0)
            return cb_error_set(err, -EINVAL, "bad percent-escape in the %s", what);
        int v = hi * 16 + lo;
        if (v < 0x20 || v == 0x7f)
            return cb_error_set(err, -EINVAL,
                                "the %s contains an encoded control character (%%%02X)", what, v);
        i += 2;
    }
    return 0;
}

static int check_target_bytes(const char *t, size_t n, struct cb_error *err)
{
    char d[24];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20 || c == 0x7f)
            return cb_error_set(err, -EINVAL, "the request target contains %s",
                                describe_byte(c, d));
        if (c >= 0x80)
            return cb_error_set(err, -EINVAL, "the request target contains %s; percent-encode it",
                                describe_byte(c, d));
        if (c == '#')
            return cb_error_set(err, -EINVAL, "the request target contains '#' (a fragment)");
    }
    return 0;
}

/* Where the path of the target starts: 0 in origin form ("/x"), after the
 * authority in absolute form ("http://host/x", which a server must accept
 * though only proxies are sent it). */
static int path_start(const char *t, size_t n, size_t *start, struct cb_error *err)
{
    size_t skip = 0;
    if (n > 0 && t[0] == '/') {
        *start = 0;
        return 0;
    }
    if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
        skip = 7;
    else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
        skip = 8;
    else
        return cb_error_set(err, -EINVAL,
                            "the request target must be a path starting with '/' "
                            "or an absolute http(s) URL");
    size_t i = skip;
    while (i < n && t[i] != '/' && t[i] != '?')
        i++;
    if (i == skip)
        return cb_error_set(err, -EINVAL, "absolute request target without a host");
    *start = i;
    return 0;
}

static int parse_target(const char *buf, struct cb_http_head *h, struct cb_error *err)
{
    const char *t = buf + h->target.off;
    size_t n = h->target.len;
    size_t start = 0;
    if (n > CB_HTTP_MAX_TARGET)
        return cb_error_set(err, -ENAMETOOLONG, "request target longer than %u bytes",
                            CB_HTTP_MAX_TARGET);
    int r = check_target_bytes(t, n, err);
    if (r == 0)
        r = path_start(t, n, &start, err);
    if (r < 0)
        return r;
    const char *q = memchr(t + start, '?', n - start);
    size_t path_end = q ? (size_t)(q - t) : n;
    h->path = (struct cb_http_span){h->target.off + (uint32_t)start, (uint32_t)(path_end - start)};
    h->has_query = q != NULL;
    if (q != NULL)
        h->query = (struct cb_http_span){h->target.off + (uint32_t)path_end + 1,
                                         (uint32_t)(n - path_end - 1)};
    r = check_escapes(buf + h->path.off, h->path.len, "path", err);
    if (r == 0)
        r = check_escapes(buf + h->query.off, h->query.len, "query", err);
    return r;
}

static int check_name(const char *p, size_t n, struct cb_error *err)
{
    char d[24];
    if (n == 0)
        return cb_error_set(err, -EINVAL, "header line with an empty name");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ' ' || c == '\t')
            return cb_error_set(err, -EINVAL, "whitespace between a header name and its colon");
        if (!cb__http_is_tchar(c))
            return cb_error_set(err, -EINVAL, "a header name contains %s", describe_byte(c, d));
    }
    return 0;
}

static int parse_field(const char *buf, const struct line *l, struct cb_http_head *h,
                       struct cb_error *err)
{
    const char *s = buf + l->start;
    const char *e = buf + l->end;
    char d[24];
    if (*s == ' ' || *s == '\t')
        return cb_error_set(err, -EINVAL,
                            "obsolete line folding (a header line starting with "
                            "whitespace) is not accepted");
    const char *colon = memchr(s, ':', (size_t)(e - s));
    if (colon == NULL)
        return cb_error_set(err, -EINVAL, "header line without a colon");
    int r = check_name(s, (size_t)(colon - s), err);
    if (r < 0)
        return r;
    if (h->nfields == CB_HTTP_MAX_FIELDS)
        return cb_error_set(err, -E2BIG, "more than %u header fields", CB_HTTP_MAX_FIELDS);
    const char *v = colon + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    for (const char *p = v; p < e; p++)
        if (!cb__http_is_field_byte((unsigned char)*p))
            return cb_error_set(err, -EINVAL, "header %.*s contains %s", (int)(colon - s), s,
                                describe_byte((unsigned char)*p, d));
    h->fields[h->nfields++] = (struct cb_http_field){{(uint32_t)(s - buf), (uint32_t)(colon - s)},
                                                     {(uint32_t)(v - buf), (uint32_t)(e - v)}};
    return 0;
}

/* Iterates over the non-empty elements of a comma-separated field value. */
struct list_iter {
    const char *p;
    size_t n, pos;
};

static bool list_next(struct list_iter *it, const char **elem, size_t *len)
{
    while (it->pos < it->n) {
        size_t s = it->pos;
        while (it->pos < it->n && it->p[it->pos] != ',')
            it->pos++;
        size_t e = it->pos;
        it->pos++;
        while (s < e && (it->p[s] == ' ' || it->p[s] == '\t'))
            s++;
        while (e > s && (it->p[e - 1] == ' ' || it->p[e - 1] == '\t'))
            e--;
        if (e > s) {
            *elem = it->p + s;
            *len = e - s;
            return true;
        }
    }
    return false;
}

/* What the fields say about framing and the connection, gathered in one
 * pass before any of it is judged. */
struct facts {
    unsigned n_cl, n_te, n_host, n_auth, n_ctype;
    const struct cb_http_field *cl;
    unsigned te_chunked, te_other;
    const char *te_bad;
    size_t te_bad_len;
    bool conn_close, conn_keep_alive, expect_continue;
    const char *expect_bad;
    size_t expect_bad_len;
};

static void note_te(const char *buf, const struct cb_http_field *f, struct facts *x)
{
    struct list_iter it = {buf + f->value.off, f->value.len, 0};
    const char *e;
    size_t n;
    while (list_next(&it, &e, &n)) {
        if (cb__http_name_is(e, n, "chunked")) {
            x->te_chunked++;
        } else if (x->te_other++ == 0) {
            x->te_bad = e;
            x->te_bad_len = n;
        }
    }
}

static void note_list(const char *buf, const struct cb_http_field *f, bool expect, struct facts *x)
{
    struct list_iter it = {buf + f->value.off, f->value.len, 0};
    const char *e;
    size_t n;
    while (list_next(&it, &e, &n)) {
        if (!expect) {
            x->conn_close |= cb__http_name_is(e, n, "close");
            x->conn_keep_alive |= cb__http_name_is(e, n, "keep-alive");
        } else if (cb__http_name_is(e, n, "100-continue")) {
            x->expect_continue = true;
        } else if (x->expect_bad == NULL) {
            x->expect_bad = e;
            x->expect_bad_len = n;
        }
    }
}

static void gather(const char *buf, const struct cb_http_head *h, struct facts *x)
{
    for (size_t i = 0; i < h->nfields; i++) {
        const struct cb_http_field *f = &h->fields[i];
        const char *name = buf + f->name.off;
        size_t n = f->name.len;
        if (cb__http_name_is(name, n, "Content-Length"))
            x->n_cl++, x->cl = f;
        else if (cb__http_name_is(name, n, "Transfer-Encoding"))
            x->n_te++, note_te(buf, f, x);
        else if (cb__http_name_is(name, n, "Host"))
            x->n_host++;
        else if (cb__http_name_is(name, n, "Authorization"))
            x->n_auth++;
        else if (cb__http_name_is(name, n, "Content-Type"))
            x->n_ctype++;
        else if (cb__http_name_is(name, n, "Connection"))
            note_list(buf, f, false, x);
        else if (cb__http_name_is(name, n, "Expect"))
            note_list(buf, f, true, x);
    }
}

static int judge_chunked(const struct facts *x, struct cb_http_head *h, struct cb_error *err)
{
    char tmp[36];
    if (h->minor == 0)
        return cb_error_set(err, -EINVAL, "Transfer-Encoding in an HTTP/1.0 request");
    if (x->n_cl > 0)
        return cb_error_set(err, -EINVAL, "both Content-Length and Transfer-Encoding");
    if (x->te_other > 0)
        return cb_error_set(err, -EINVAL,
                            "unsupported transfer coding \"%s\"; only chunked is accepted",
                            printable(x->te_bad, x->te_bad_len, tmp));
    if (x->te_chunked != 1)
        return cb_error_set(err, -EINVAL, "Transfer-Encoding must be exactly \"chunked\"");
    h->framing = CB_HTTP_CHUNKED;
    return 0;
}

static int judge_length(const char *buf, const struct facts *x, struct cb_http_head *h,
                        struct cb_error *err)
{
    if (x->n_cl > 1)
        return cb_error_set(err, -EINVAL, "Content-Length given more than once");
    int r = cb_parse_u64(buf + x->cl->value.off, x->cl->value.len, &h->content_length);
    if (r == -ERANGE)
        return cb_error_set(err, -EFBIG, "Content-Length is out of range");
    if (r < 0)
        return cb_error_set(err, -EINVAL, "Content-Length is not a decimal number");
    h->framing = h->content_length > 0 ? CB_HTTP_LENGTH : CB_HTTP_NO_BODY;
    return 0;
}

static int judge_fields(const struct facts *x, struct cb_http_head *h, struct cb_error *err)
{
    char tmp[36];
    if (x->n_host > 1)
        return cb_error_set(err, -EINVAL, "Host given more than once");
    if (x->n_host == 0 && h->minor == 1)
        return cb_error_set(err, -EINVAL, "missing Host header (required in HTTP/1.1)");
    if (x->n_auth > 1)
        return cb_error_set(err, -EINVAL, "Authorization given more than once");
    if (x->n_ctype > 1)
        return cb_error_set(err, -EINVAL, "Content-Type given more than once");
    if (x->expect_bad != NULL && h->minor == 1)
        return cb_error_set(err, -EOPNOTSUPP, "unsupported expectation \"%s\"",
                            printable(x->expect_bad, x->expect_bad_len, tmp));
    h->keep_alive = h->minor == 1 ? !x->conn_close : x->conn_keep_alive && !x->conn_close;
    h->expect_continue = x->expect_continue && h->minor == 1;
    return 0;
}

static int judge(const char *buf, struct cb_http_head *h, struct cb_error *err)
{
    struct facts x = {0};
    gather(buf, h, &x);
    int r = judge_fields(&x, h, err);
    if (r < 0)
        return r;
    if (x.n_te > 0)
        return judge_chunked(&x, h, err);
    if (x.n_cl > 0)
        return judge_length(buf, &x, h, err);
    h->framing = CB_HTTP_NO_BODY;
    return 0;
}

int cb__http_parse_head(const char *buf, size_t len, struct cb_http_head *h, struct cb_error *err)
{
    struct line l;
    size_t pos = 0;
    memset(h, 0, sizeof(*h));
    h->len = len;
    if (len > CB_HTTP_MAX_HEAD)
        return cb_error_set(err, -E2BIG, "request head larger than %u bytes", CB_HTTP_MAX_HEAD);
    int r = check_bare_cr(buf, len, err);
    if (r < 0)
        return r;
    while (next_line(buf, len, pos, &l) && l.end == l.start)
        pos = l.next;
    if (!next_line(buf, len, pos, &l))
        return cb_error_set(err, -EINVAL, "empty request");
    r = parse_request_line(buf, &l, h, err);
    if (r == 0)
        r = parse_target(buf, h, err);
    for (pos = l.next; r == 0 && next_line(buf, len, pos, &l) && l.end > l.start; pos = l.next)
        r = parse_field(buf, &l, h, err);
    return r < 0 ? r : judge(buf, h, err);
}

/* Decodes percent-escapes into out, which has room for n bytes. Returns
 * the decoded length. */
static size_t percent_decode(const char *in, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = in[i] == '%' && i + 2 < n ? cb_hex_digit((unsigned char)in[i + 1]) : -1;
        int lo = hi >= 0 ? cb_hex_digit((unsigned char)in[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
            out[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[k++] = in[i];
        }
    }
    return k;
}

int cb__http_decode_path(const char *raw, size_t len, char **out, struct cb_error *err)
{
    char *p = cb_xmalloc(len + 2);
    size_t n = len == 0 ? 1 : percent_decode(raw, len, p);
    if (len == 0)
        p[0] = '/';
    p[n] = '\0';
    for (size_t i = 0; i < n;) {
        size_t k = cb_utf8_seq_len((const unsigned char *)p + i, n - i);
        if (k == 0) {
            free(p);
            return cb_error_set(err, -EINVAL,
                                "the path is not valid UTF-8 after "
                                "percent-decoding");
        }
        i += k;
    }
    *out = p;
    return 0;
}
