/* Lexical layer of the TOML reader: error helpers, the encoding check,
 * whitespace and comments, keys and strings. Numbers, booleans and dates are
 * in toml_value.c. */
#include "config/toml_scan.h"
#include "core/utf8.h"
#include "core/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Columns count characters, not bytes, so they match what an editor shows. */
static int column(const struct cb__toml_scan *s)
{
    int col = 1;
    for (const char *q = s->line_start; q < s->p; q++)
        if (((unsigned char)*q & 0xC0) != 0x80)
            col++;
    return col;
}

__attribute__((format(printf, 3, 0))) static int vfail(struct cb_error *err, const char *where,
                                                       const char *fmt, va_list ap)
{
    char msg[CB_ERROR_MSG_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    return cb_error_set(err, -EINVAL, "%s: %s", where, msg);
}

int cb__toml_fail(struct cb__toml_scan *s, const char *fmt, ...)
{
    char where[64];
    snprintf(where, sizeof(where), "line %d, column %d", s->line, column(s));
    va_list ap;
    va_start(ap, fmt);
    int r = vfail(s->err, where, fmt, ap);
    va_end(ap);
    return r;
}

int cb__toml_fail_line(struct cb__toml_scan *s, int line, const char *fmt, ...)
{
    char where[32];
    snprintf(where, sizeof(where), "line %d", line);
    va_list ap;
    va_start(ap, fmt);
    int r = vfail(s->err, where, fmt, ap);
    va_end(ap);
    return r;
}

static bool is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
}

/* TOML allows no raw control character other than tab and newline anywhere
 * (comments and strings included), so one pass up front lets the grammar code
 * assume clean text. */
int cb__toml_check_text(const char *data, size_t len, struct cb_error *err)
{
    struct cb__toml_scan s = {data, data + len, data, 1, err};
    while (s.p < s.end) {
        unsigned char c = (unsigned char)*s.p;
        size_t n = cb_utf8_seq_len((const unsigned char *)s.p, (size_t)(s.end - s.p));
        if (c == '\n') {
            s.line++;
            s.line_start = s.p + 1;
        } else if (c == '\r' && (s.p + 1 == s.end || s.p[1] != '\n')) {
            return cb__toml_fail(&s, "carriage return not followed by a line feed");
        } else if (is_control(c)) {
            return cb__toml_fail(&s, "control character U+%04X is not allowed", c);
        } else if (n == 0) {
            return cb__toml_fail(&s, "invalid UTF-8");
        }
        s.p += n ? n : 1;
    }
    return 0;
}

bool cb__toml_eof(const struct cb__toml_scan *s)
{
    return s->p >= s->end;
}

bool cb__toml_at_newline(const struct cb__toml_scan *s)
{
    return s->p < s->end && (*s->p == '\n' || *s->p == '\r');
}

void cb__toml_newline(struct cb__toml_scan *s)
{
    s->p += *s->p == '\r' ? 2 : 1;
    s->line++;
    s->line_start = s->p;
}

void cb__toml_skip_ws(struct cb__toml_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
        s->p++;
}

void cb__toml_skip_comment(struct cb__toml_scan *s)
{
    if (s->p < s->end && *s->p == '#')
        while (s->p < s->end && *s->p != '\n' && *s->p != '\r')
            s->p++;
}

void cb__toml_skip_blank(struct cb__toml_scan *s)
{
    for (;;) {
        cb__toml_skip_ws(s);
        cb__toml_skip_comment(s);
        if (!cb__toml_at_newline(s))
            return;
        cb__toml_newline(s);
    }
}

const char *cb__toml_describe(const struct cb__toml_scan *s, char *buf, size_t n)
{
    unsigned char c = s->p < s->end ? (unsigned char)*s->p : 0;
    if (s->p >= s->end)
        snprintf(buf, n, "end of input");
    else if (cb__toml_at_newline(s))
        snprintf(buf, n, "end of line");
    else if (c == ' ' || c == '\t')
        snprintf(buf, n, "whitespace");
    else if (c > 0x20 && c < 0x7F)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "a non-ASCII character");
    return buf;
}

static int append(struct cb__toml_scan *s, struct cb_buf *out, const char *p, size_t n)
{
    if (cb_buf_append(out, p, n) < 0)
        return cb__toml_fail(s, "string is too long");
    return 0;
}

/* \uXXXX or \UXXXXXXXX; the cursor is just past the 'u' or 'U'. */
static int unicode_escape(struct cb__toml_scan *s, int ndigits, struct cb_buf *out)
{
    const char *start = s->p - 2;
    uint32_t cp = 0;
    for (int i = 0; i < ndigits; i++, s->p++) {
        int d = s->p < s->end ? cb_hex_digit((unsigned char)*s->p) : -1;
        if (d < 0)
            return cb__toml_fail(s, "\\%c escape needs %d hex digits", start[1], ndigits);
        cp = cp * 16 + (uint32_t)d;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        s->p = start;
        return cb__toml_fail(s, "escape \\%c%.*s is not a Unicode scalar value", start[1], ndigits,
                             start + 2);
    }
    char u[4];
    return append(s, out, u, cb_utf8_put(cp, u));
}

/* One escape sequence; the cursor is at the backslash. */
static int escape(struct cb__toml_scan *s, struct cb_buf *out)
{
    static const char from[] = "btnfr\"\\";
    static const char to[] = "\b\t\n\f\r\"\\";
    char what[32];
    s->p++;
    char e = s->p < s->end ? *s->p : 0;
    const char *hit = e ? memchr(from, e, sizeof(from) - 1) : NULL;
    if (hit) {
        s->p++;
        return append(s, out, &to[hit - from], 1);
    }
    if (e == 'u' || e == 'U') {
        s->p++;
        return unicode_escape(s, e == 'u' ? 4 : 8, out);
    }
    cb__toml_describe(s, what, sizeof(what));
    s->p--;
    return cb__toml_fail(s, "invalid escape sequence: backslash followed by %s", what);
}

/* Appends the bytes from the cursor up to the first byte in `stop` (or a
 * newline, or the end). */
static int take_run(struct cb__toml_scan *s, const char *stop, struct cb_buf *out)
{
    const char *run = s->p;
    while (s->p < s->end && *s->p != '\n' && *s->p != '\r' && strchr(stop, *s->p) == NULL)
        s->p++;
    return append(s, out, run, (size_t)(s->p - run));
}

/* "..." or '...' on one line; escapes only in the double-quoted form. */
static int single_line(struct cb__toml_scan *s, struct cb_buf *out)
{
    char q = *s->p;
    const char *stop = q == '"' ? "\"\\" : "'";
    s->p++;
    for (;;) {
        if (take_run(s, stop, out) < 0)
            return -EINVAL;
        if (s->p >= s->end || cb__toml_at_newline(s))
            return cb__toml_fail(s, "string is not closed before the end of the line");
        if (*s->p == q) {
            s->p++;
            return 0;
        }
        if (escape(s, out) < 0)
            return -EINVAL;
    }
}

/* A run of quotes inside a multi-line string. Up to two quotes may sit right
 * before the closing delimiter, so a run of 3 to 5 closes the string. Returns
 * 1 when closed, 0 when the quotes were content. */
static int ml_quotes(struct cb__toml_scan *s, struct cb_buf *out)
{
    char q = *s->p;
    size_t n = 0;
    while (s->p + n < s->end && s->p[n] == q)
        n++;
    if (n > 5)
        return cb__toml_fail(s, "too many quotes in a row in a multi-line string");
    const char *run = s->p;
    s->p += n;
    if (append(s, out, run, n >= 3 ? n - 3 : n) < 0)
        return -EINVAL;
    return n >= 3;
}

/* A backslash in a multi-line basic string: either an escape or a
 * line-ending backslash, which swallows all whitespace and newlines after it. */
static int ml_backslash(struct cb__toml_scan *s, struct cb_buf *out)
{
    const char *q = s->p + 1;
    while (q < s->end && (*q == ' ' || *q == '\t'))
        q++;
    if (q == s->end || (*q != '\n' && *q != '\r'))
        return escape(s, out);
    s->p = q;
    for (;;) {
        cb__toml_skip_ws(s);
        if (!cb__toml_at_newline(s))
            return 0;
        cb__toml_newline(s);
    }
}

/* """...""" or '''...'''. A newline right after the opening delimiter is
 * dropped; CRLF inside is stored as LF. */
static int multi_line(struct cb__toml_scan *s, struct cb_buf *out)
{
    bool basic = *s->p == '"';
    int line = s->line;
    s->p += 3;
    if (cb__toml_at_newline(s))
        cb__toml_newline(s);
    for (;;) {
        int r = take_run(s, basic ? "\"\\" : "'", out);
        if (r == 0 && s->p >= s->end)
            return cb__toml_fail_line(s, line, "multi-line string is never closed");
        if (r == 0 && cb__toml_at_newline(s)) {
            r = append(s, out, "\n", 1);
            cb__toml_newline(s);
        } else if (r == 0 && *s->p == '\\') {
            r = ml_backslash(s, out);
        } else if (r == 0) {
            r = ml_quotes(s, out);
            if (r == 1)
                return 0;
        }
        if (r < 0)
            return r;
    }
}

static bool triple_quote(const struct cb__toml_scan *s)
{
    return s->end - s->p >= 3 && s->p[1] == s->p[0] && s->p[2] == s->p[0];
}

int cb__toml_string(struct cb__toml_scan *s, struct cb_buf *out)
{
    return triple_quote(s) ? multi_line(s, out) : single_line(s, out);
}

static bool is_bare(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int cb__toml_key_part(struct cb__toml_scan *s, struct cb_buf *out)
{
    char what[32];
    const char *start = s->p;
    if (s->p < s->end && (*s->p == '"' || *s->p == '\'')) {
        if (triple_quote(s))
            return cb__toml_fail(s, "a multi-line string cannot be a key");
        return single_line(s, out);
    }
    while (s->p < s->end && is_bare(*s->p))
        s->p++;
    if (s->p == start)
        return cb__toml_fail(s, "expected a key, found %s",
                             cb__toml_describe(s, what, sizeof(what)));
    return append(s, out, start, (size_t)(s->p - start));
}
