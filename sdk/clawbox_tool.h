/* clawbox_tool.h: a single-header C SDK for clawbox tools (wasm32-wasip1).
 *
 * A tool reads its params as compact JSON on stdin, writes its result to
 * stdout and may call the host through the import clawbox.host_call. This
 * header gives a tool author:
 *
 *   - bounded input:   cb_read_input(), cb_read_params()
 *   - JSON values:     parse (depth-limited, strict RFC 8259, UTF-8
 *                      checked), build, query, serialise compact or pretty
 *   - output:          cb_output(), cb_output_error()
 *   - host calls:      cb_host_call(), clawbox_log(), cb_http_request()
 *   - small helpers:   growable bounded buffer (struct clawbox_buf), UTF-8
 *
 * Usage (stb style): every file may include the header for declarations;
 * exactly one file of the tool defines CLAWBOX_TOOL_IMPLEMENTATION before
 * including it, to compile the implementation:
 *
 *     #define CLAWBOX_TOOL_IMPLEMENTATION
 *     #include "clawbox_tool.h"
 *
 * The header compiles as C11 and as C++ (the C++ example tool uses it).
 * Outside wasm (e.g. native unit tests) host_call is an ordinary extern
 * function the test program must define.
 *
 * Error contract: a function that can fail returns 0 or a negative errno
 * value (or NULL) and, when given one, fills a struct cb_tool_error. Memory
 * exhaustion while *building* values is fatal (the tool traps, which the
 * server reports as execution_error); the parser and serialiser fail
 * cleanly instead, because their input size is not under the tool's
 * control. See docs/writing-tools.md. */
#ifndef CLAWBOX_TOOL_H
#define CLAWBOX_TOOL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits. Each may be overridden by defining it before the include. */
#ifndef CB_TOOL_MAX_INPUT
#define CB_TOOL_MAX_INPUT (16u * 1024 * 1024) /* stdin bytes */
#endif
#ifndef CB_JSON_MAX_DEPTH
#define CB_JSON_MAX_DEPTH 128 /* nesting of arrays/objects when parsing */
#endif
#ifndef CB_JSON_MAX_OUTPUT
#define CB_JSON_MAX_OUTPUT (32u * 1024 * 1024) /* serialised JSON bytes */
#endif
#ifndef CB_HOST_RESPONSE_CAP
#define CB_HOST_RESPONSE_CAP (64u * 1024) /* first host_call buffer */
#endif
#ifndef CB_HOST_RESPONSE_MAX
#define CB_HOST_RESPONSE_MAX (32u * 1024 * 1024) /* largest retry buffer */
#endif

/* The one clawbox import. Returns the number of response bytes written, or
 * -1 for out-of-bounds pointers or a request the ABI rejects. */
#if defined(__wasm__)
__attribute__((import_module("clawbox"), import_name("host_call"))) int
host_call(const char *req, int req_len, char *resp, int resp_cap);
#else
int host_call(const char *req, int req_len, char *resp, int resp_cap);
#endif

/* An error message; offset/line/column (1-based, bytes) are set only by the
 * JSON parser and are 0 otherwise. */
struct cb_tool_error {
    char msg[512];
    size_t offset;
    size_t line;
    size_t column;
};

/* ---- bounded growable buffer ------------------------------------------ */

/* data is always NUL-terminated once anything was appended. After a failed
 * append, `failed` stays set and later appends are no-ops. */
struct clawbox_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
    int failed; /* 0, -ENOSPC (limit) or -ENOMEM */
};

void clawbox_buf_init(struct clawbox_buf *b, size_t max);
int clawbox_buf_append(struct clawbox_buf *b, const void *p, size_t n);
int clawbox_buf_putc(struct clawbox_buf *b, char c);
int clawbox_buf_puts(struct clawbox_buf *b, const char *s);
int clawbox_buf_printf(struct clawbox_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int clawbox_buf_put_utf8(struct clawbox_buf *b, uint32_t cp); /* invalid cp → U+FFFD */
/* Appends s as a quoted, escaped JSON string; invalid UTF-8 → U+FFFD. */
int clawbox_buf_json_string(struct clawbox_buf *b, const char *s, size_t len);
/* Hands the data (malloc'd, NUL-terminated, never NULL) to the caller. */
char *clawbox_buf_steal(struct clawbox_buf *b, size_t *len);
void clawbox_buf_free(struct clawbox_buf *b);

/* ---- UTF-8 ------------------------------------------------------------ */

/* Decodes one scalar value at s; returns its length (1-4), or 0 if the
 * bytes there are not valid UTF-8 (overlong, surrogate, > U+10FFFF, cut). */
size_t cb_utf8_decode(const char *s, size_t len, uint32_t *cp);
int cb_utf8_valid(const char *s, size_t len);
/* Largest n <= max (and <= len) such that s[0..n) ends on a character
 * boundary of valid UTF-8 text s. */
size_t cb_utf8_truncate(const char *s, size_t len, size_t max);

/* ---- JSON values ------------------------------------------------------ */

enum cb_json_type {
    CB_JSON_NULL,
    CB_JSON_BOOL,
    CB_JSON_NUMBER,
    CB_JSON_STRING,
    CB_JSON_ARRAY,
    CB_JSON_OBJECT,
};

struct cb_json;

/* An object member (key set) or array element (key NULL). Keys are decoded
 * UTF-8, NUL-terminated, but may contain NUL bytes: use key_len. */
struct cb_json_member {
    char *key;
    size_t key_len;
    struct cb_json *value;
};

/* A JSON value. The fields are readable; change values only through the
 * functions below. Objects keep member order and, when parsed, duplicate
 * keys (lookups return the last one, as most parsers do). */
struct cb_json {
    enum cb_json_type type;
    int boolean;
    double number;
    /* STRING: decoded bytes, NUL-terminated (may contain NULs; use
     * text_len). NUMBER: the source lexeme when parsed (serialised
     * verbatim, so big integers survive a round trip), else NULL. */
    char *text;
    size_t text_len;
    struct cb_json_member *items; /* ARRAY and OBJECT */
    size_t count;
    size_t cap;
};

/* Parses exactly one JSON value (surrounding whitespace allowed) from
 * s[0..len). Returns a tree the caller frees with cb_json_free, or NULL
 * with err->msg and the position of the problem. */
struct cb_json *cb_json_parse(const char *s, size_t len, struct cb_tool_error *err);
struct cb_json *cb_json_parse_depth(const char *s, size_t len, int max_depth,
                                    struct cb_tool_error *err);
void cb_json_free(struct cb_json *v);
struct cb_json *cb_json_clone(const struct cb_json *v);

/* Builders. They never return NULL (out of memory is fatal). */
struct cb_json *cb_json_new_null(void);
struct cb_json *cb_json_new_bool(int b);
struct cb_json *cb_json_new_number(double d);
struct cb_json *cb_json_new_int(long long i);
struct cb_json *cb_json_new_string(const char *s); /* s NULL → "" */
struct cb_json *cb_json_new_stringn(const char *s, size_t len);
struct cb_json *cb_json_new_array(void);
struct cb_json *cb_json_new_object(void);
/* Take ownership of v (also on failure, when v is freed). Return 0, or
 * -EINVAL if the container has the wrong type. cb_json_set replaces an
 * existing member with the same key. */
int cb_json_append(struct cb_json *arr, struct cb_json *v);
int cb_json_set(struct cb_json *obj, const char *key, struct cb_json *v);
int cb_json_setn(struct cb_json *obj, const char *key, size_t key_len, struct cb_json *v);

/* Queries. All accept NULL and values of the wrong type. */
const char *cb_json_type_name(enum cb_json_type t);
struct cb_json *cb_json_get(const struct cb_json *obj, const char *key);
struct cb_json *cb_json_getn(const struct cb_json *obj, const char *key, size_t key_len);
struct cb_json *cb_json_at(const struct cb_json *arr, size_t i);
size_t cb_json_count(const struct cb_json *v); /* elements/members, else 0 */
int cb_json_is(const struct cb_json *v, enum cb_json_type t);
const char *cb_json_str(const struct cb_json *v); /* NULL unless a string */
size_t cb_json_strlen(const struct cb_json *v);
int cb_json_number(const struct cb_json *v, double *out); /* 0 or -EINVAL */
/* 0 if v is a number with an exact integer value in long long range. */
int cb_json_integer(const struct cb_json *v, long long *out);
int cb_json_bool(const struct cb_json *v, int *out); /* 0 or -EINVAL */

/* Serialises v: indent 0 = compact, 1..16 = pretty with that many spaces.
 * Non-finite numbers become null. Returns a malloc'd NUL-terminated string,
 * or NULL if the result would exceed CB_JSON_MAX_OUTPUT or memory runs out. */
char *cb_json_serialize(const struct cb_json *v, int indent, size_t *len);
int cb_json_write(struct clawbox_buf *b, const struct cb_json *v, int indent);

/* ---- input and output ------------------------------------------------- */

/* Reads all of stdin (at most CB_TOOL_MAX_INPUT bytes) into a malloc'd,
 * NUL-terminated buffer. */
int cb_read_input(char **data, size_t *len, struct cb_tool_error *err);
/* Reads and parses the params; empty stdin gives a JSON null. */
int cb_read_params(struct cb_json **params, struct cb_tool_error *err);
int cb_write_stdout(const char *data, size_t len);
/* Writes v as compact JSON and a newline to stdout. */
int cb_output(const struct cb_json *v);
/* Writes {"error": "<message>"}. Tools report bad input this way and exit
 * 0, so the model sees the message (see docs/writing-tools.md). */
int cb_output_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- host calls ------------------------------------------------------- */

/* Sends {"method": method, "params": params} (params NULL → null) and
 * unwraps the envelope. Returns the "ok" value (caller frees; a JSON null
 * for {"ok":null}), or NULL with err->msg = the host's "error" text or a
 * description of what went wrong. If the host says the response did not
 * fit the buffer, the call is retried once with a buffer of the stated
 * size (up to CB_HOST_RESPONSE_MAX); clawbox answers that retry with the
 * response it held, so the request is not sent again. */
struct cb_json *cb_host_call(const char *method, const struct cb_json *params,
                             struct cb_tool_error *err);
/* Logs to the execution's metadata.logs. Returns 0 or -EIO. */
int clawbox_log(const char *level, const char *message);
int clawbox_logf(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct cb_http_request {
    const char *url;
    const char *method;            /* NULL → "GET" */
    const struct cb_json *headers; /* object of strings, or NULL */
    const char *body;              /* NULL → no body */
    size_t body_len;
};

/* Fields point into `value`, the whole "ok" object, which the response
 * owns. */
struct cb_http_response {
    int status;
    const struct cb_json *headers; /* object (lower-case names) or NULL */
    const char *body;              /* never NULL after success */
    size_t body_len;
    struct cb_json *value;
};

/* Performs an HTTP request through the host's proxy. Returns 0 and fills
 * *resp (free with cb_http_response_free), or -EIO with err->msg (e.g.
 * "network access denied: ..."). */
int cb_http_request(const struct cb_http_request *req, struct cb_http_response *resp,
                    struct cb_tool_error *err);
void cb_http_response_free(struct cb_http_response *resp);

/* ---- deprecated names ------------------------------------------------- */

/* The buffer and log functions were called cb_buf* and cb_log*, the names
 * of clawbox's own internal buffer and logger. The old names still work in
 * this release and go in the next one; define CLAWBOX_NO_DEPRECATED to
 * check that a tool no longer uses them. */
#ifndef CLAWBOX_NO_DEPRECATED
#define cb_buf             clawbox_buf
#define cb_buf_init        clawbox_buf_init
#define cb_buf_append      clawbox_buf_append
#define cb_buf_putc        clawbox_buf_putc
#define cb_buf_puts        clawbox_buf_puts
#define cb_buf_printf      clawbox_buf_printf
#define cb_buf_put_utf8    clawbox_buf_put_utf8
#define cb_buf_json_string clawbox_buf_json_string
#define cb_buf_steal       clawbox_buf_steal
#define cb_buf_free        clawbox_buf_free
#define cb_log             clawbox_log
#define cb_logf            clawbox_logf
#endif

#ifdef __cplusplus
}
#endif

/* ======================================================================= */
#ifdef CLAWBOX_TOOL_IMPLEMENTATION

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors and allocation ---------------------------------------------- */

static void cb__verrf(struct cb_tool_error *err, const char *fmt, va_list ap)
{
    if (!err)
        return;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    err->offset = err->line = err->column = 0;
}

static void cb__errf(struct cb_tool_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cb__errf(struct cb_tool_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cb__verrf(err, fmt, ap);
    va_end(ap);
}

static void cb__oom(void)
{
    static const char msg[] = "clawbox tool: out of memory\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    abort();
}

static void *cb__xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        cb__oom();
    return p;
}

static struct cb_json *cb__node(enum cb_json_type t)
{
    struct cb_json *v = (struct cb_json *)calloc(1, sizeof(*v));
    if (v)
        v->type = t;
    return v;
}

static struct cb_json *cb__xnode(enum cb_json_type t)
{
    struct cb_json *v = cb__node(t);
    if (!v)
        cb__oom();
    return v;
}

/* ---- buffer ------------------------------------------------------------ */

void clawbox_buf_init(struct clawbox_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->failed = 0;
}

static int clawbox__buf_reserve(struct clawbox_buf *b, size_t n)
{
    if (b->failed)
        return b->failed;
    if (n > b->max || b->len + n > b->max) {
        b->failed = -ENOSPC;
        return b->failed;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = (char *)realloc(b->data, cap);
    if (!p) {
        b->failed = -ENOMEM;
        return b->failed;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int clawbox_buf_append(struct clawbox_buf *b, const void *p, size_t n)
{
    int rc = clawbox__buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int clawbox_buf_putc(struct clawbox_buf *b, char c)
{
    return clawbox_buf_append(b, &c, 1);
}

int clawbox_buf_puts(struct clawbox_buf *b, const char *s)
{
    return clawbox_buf_append(b, s, strlen(s));
}

int clawbox_buf_printf(struct clawbox_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = clawbox__buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int clawbox_buf_put_utf8(struct clawbox_buf *b, uint32_t cp)
{
    char s[4];
    size_t n;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        s[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (char)(0xC0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (char)(0xE0 | (cp >> 12));
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        s[0] = (char)(0xF0 | (cp >> 18));
        s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return clawbox_buf_append(b, s, n);
}

char *clawbox_buf_steal(struct clawbox_buf *b, size_t *len)
{
    char *p = b->data;
    if (!p) {
        p = (char *)cb__xmalloc(1);
        p[0] = '\0';
    }
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void clawbox_buf_free(struct clawbox_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

size_t cb_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0)
        return 0;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    size_t n;
    uint32_t c, min;
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
        n = 2, c = u[0] & 0x1F, min = 0x80;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        n = 3, c = u[0] & 0x0F, min = 0x800;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        n = 4, c = u[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (u[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

int cb_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = cb_utf8_decode(s + i, len - i, &cp);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

size_t cb_utf8_truncate(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    /* Back up over continuation bytes to the start of the cut character. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* ---- JSON: serialising ------------------------------------------------- */

int clawbox_buf_json_string(struct clawbox_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, run = 0;
    clawbox_buf_putc(b, '"');
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++, run++;
            continue;
        }
        clawbox_buf_append(b, s + i - run, run);
        run = 0;
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = cb_utf8_decode(s + i, len - i, &cp);
            if (n) {
                clawbox_buf_append(b, s + i, n);
                i += n;
            } else {
                clawbox_buf_puts(b, "\xEF\xBF\xBD");
                i++;
            }
            continue;
        }
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0';
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        }
        clawbox_buf_append(b, esc, n);
        i++;
    }
    clawbox_buf_append(b, s + i - run, run);
    return clawbox_buf_putc(b, '"');
}

static void cb__write_number(struct clawbox_buf *b, const struct cb_json *v)
{
    if (v->text) {
        clawbox_buf_append(b, v->text, v->text_len);
        return;
    }
    if (!isfinite(v->number)) {
        clawbox_buf_puts(b, "null");
        return;
    }
    char tmp[40];
    /* Shortest of %.15g..%.17g that reads back as the same double. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v->number);
        if (strtod(tmp, NULL) == v->number)
            break;
    }
    clawbox_buf_puts(b, tmp);
}

static void cb__newline(struct clawbox_buf *b, int indent, int level)
{
    if (indent <= 0)
        return;
    clawbox_buf_putc(b, '\n');
    for (int i = 0; i < indent * level; i++)
        clawbox_buf_putc(b, ' ');
}

static void cb__write_value(struct clawbox_buf *b, const struct cb_json *v, int indent, int level)
{
    if (b->failed)
        return;
    switch (v ? v->type : CB_JSON_NULL) {
    case CB_JSON_NULL:
        clawbox_buf_puts(b, "null");
        return;
    case CB_JSON_BOOL:
        clawbox_buf_puts(b, v->boolean ? "true" : "false");
        return;
    case CB_JSON_NUMBER:
        cb__write_number(b, v);
        return;
    case CB_JSON_STRING:
        clawbox_buf_json_string(b, v->text, v->text_len);
        return;
    case CB_JSON_ARRAY:
    case CB_JSON_OBJECT:
        break;
    }
    int obj = v->type == CB_JSON_OBJECT;
    clawbox_buf_putc(b, obj ? '{' : '[');
    for (size_t i = 0; i < v->count && !b->failed; i++) {
        if (i)
            clawbox_buf_putc(b, ',');
        cb__newline(b, indent, level + 1);
        if (obj) {
            clawbox_buf_json_string(b, v->items[i].key, v->items[i].key_len);
            clawbox_buf_puts(b, indent > 0 ? ": " : ":");
        }
        cb__write_value(b, v->items[i].value, indent, level + 1);
    }
    if (v->count)
        cb__newline(b, indent, level);
    clawbox_buf_putc(b, obj ? '}' : ']');
}

int cb_json_write(struct clawbox_buf *b, const struct cb_json *v, int indent)
{
    if (indent > 16)
        indent = 16;
    cb__write_value(b, v, indent, 0);
    return b->failed;
}

char *cb_json_serialize(const struct cb_json *v, int indent, size_t *len)
{
    struct clawbox_buf b;
    clawbox_buf_init(&b, CB_JSON_MAX_OUTPUT);
    if (cb_json_write(&b, v, indent)) {
        clawbox_buf_free(&b);
        return NULL;
    }
    return clawbox_buf_steal(&b, len);
}

/* ---- JSON: parsing ----------------------------------------------------- */

struct cb__jp {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    int max_depth;
    struct cb_tool_error *err;
    int failed;
};

/* Records the first error with its position; later calls are ignored. */
static void cb__jp_fail(struct cb__jp *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cb__jp_fail(struct cb__jp *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (!p->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    cb__verrf(p->err, fmt, ap);
    va_end(ap);
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->s[i] == '\n')
            line++, col = 1;
        else if (((unsigned char)p->s[i] & 0xC0) != 0x80)
            col++; /* count characters, not continuation bytes */
    }
    p->err->offset = pos;
    p->err->line = line;
    p->err->column = col;
}

static void cb__jp_ws(struct cb__jp *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Describes the byte at pos for error messages. */
static const char *cb__jp_what(struct cb__jp *p, char *tmp, size_t n)
{
    if (p->pos >= p->len)
        return "end of input";
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x21 && c < 0x7F)
        snprintf(tmp, n, "'%c'", c);
    else
        snprintf(tmp, n, "byte 0x%02x", c);
    return tmp;
}

static struct cb_json *cb__jp_value(struct cb__jp *p);

static int cb__hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parses the hex digits of a \uXXXX escape at p->pos (just past the 'u'),
 * including a following low surrogate. Lone surrogates are rejected. */
static int cb__jp_unicode(struct cb__jp *p, struct clawbox_buf *b)
{
    size_t start = p->pos - 2;
    uint32_t cp, lo;
    if (p->len - p->pos < 4 || cb__hex4(p->s + p->pos, &cp)) {
        cb__jp_fail(p, start, "invalid \\u escape");
        return -1;
    }
    p->pos += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cb__jp_fail(p, start, "lone low surrogate in \\u escape");
        return -1;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
            cb__hex4(p->s + p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
            cb__jp_fail(p, start, "lone high surrogate in \\u escape");
            return -1;
        }
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    return clawbox_buf_put_utf8(b, cp);
}

static int cb__jp_escape(struct cb__jp *p, struct clawbox_buf *b)
{
    size_t start = p->pos;
    p->pos++; /* the backslash */
    if (p->pos >= p->len) {
        cb__jp_fail(p, start, "unterminated string");
        return -1;
    }
    char c = p->s[p->pos++];
    switch (c) {
    case '"':
        return clawbox_buf_putc(b, '"');
    case '\\':
        return clawbox_buf_putc(b, '\\');
    case '/':
        return clawbox_buf_putc(b, '/');
    case 'b':
        return clawbox_buf_putc(b, '\b');
    case 'f':
        return clawbox_buf_putc(b, '\f');
    case 'n':
        return clawbox_buf_putc(b, '\n');
    case 'r':
        return clawbox_buf_putc(b, '\r');
    case 't':
        return clawbox_buf_putc(b, '\t');
    case 'u':
        return cb__jp_unicode(p, b);
    default:
        cb__jp_fail(p, start, "invalid escape sequence");
        return -1;
    }
}

/* Parses a string at p->pos (the opening quote) into a malloc'd buffer. */
static char *cb__jp_string(struct cb__jp *p, size_t *out_len)
{
    struct clawbox_buf b;
    size_t start = p->pos;
    clawbox_buf_init(&b, p->len);
    clawbox_buf_append(&b, "", 0);
    p->pos++;
    for (;;) {
        size_t run = p->pos;
        while (p->pos < p->len) {
            unsigned char c = (unsigned char)p->s[p->pos];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
                break;
            p->pos++;
        }
        clawbox_buf_append(&b, p->s + run, p->pos - run);
        if (p->pos >= p->len) {
            cb__jp_fail(p, start, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            if (b.failed) {
                cb__jp_fail(p, start, "out of memory");
                break;
            }
            return clawbox_buf_steal(&b, out_len);
        }
        if (c == '\\') {
            if (cb__jp_escape(p, &b) && !p->failed)
                cb__jp_fail(p, start, "out of memory");
        } else if (c < 0x20) {
            cb__jp_fail(p, p->pos, "control character in string (must be escaped)");
        } else {
            uint32_t cp;
            size_t n = cb_utf8_decode(p->s + p->pos, p->len - p->pos, &cp);
            if (!n)
                cb__jp_fail(p, p->pos, "invalid UTF-8 in string");
            else
                clawbox_buf_append(&b, p->s + p->pos, n);
            p->pos += n;
        }
        if (p->failed)
            break;
    }
    clawbox_buf_free(&b);
    return NULL;
}

static size_t cb__jp_digits(struct cb__jp *p)
{
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++, n++;
    return n;
}

static struct cb_json *cb__jp_number(struct cb__jp *p)
{
    size_t start = p->pos;
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '0') {
        p->pos++;
    } else if (!cb__jp_digits(p)) {
        cb__jp_fail(p, start, "invalid number");
        return NULL;
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (!cb__jp_digits(p)) {
            cb__jp_fail(p, start, "invalid number: digits expected after '.'");
            return NULL;
        }
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (!cb__jp_digits(p)) {
            cb__jp_fail(p, start, "invalid number: digits expected in exponent");
            return NULL;
        }
    }
    size_t n = p->pos - start;
    struct cb_json *v = cb__node(CB_JSON_NUMBER);
    char *text = (char *)malloc(n + 1);
    if (!v || !text) {
        free(v);
        free(text);
        cb__jp_fail(p, start, "out of memory");
        return NULL;
    }
    memcpy(text, p->s + start, n);
    text[n] = '\0';
    v->text = text;
    v->text_len = n;
    v->number = strtod(text, NULL);
    return v;
}

static struct cb_json *cb__jp_literal(struct cb__jp *p)
{
    static const struct {
        const char *word;
        enum cb_json_type type;
        int b;
    } lits[] = {{"true", CB_JSON_BOOL, 1}, {"false", CB_JSON_BOOL, 0}, {"null", CB_JSON_NULL, 0}};
    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
        size_t n = strlen(lits[i].word);
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, lits[i].word, n) == 0) {
            struct cb_json *v = cb__node(lits[i].type);
            if (!v) {
                cb__jp_fail(p, p->pos, "out of memory");
                return NULL;
            }
            v->boolean = lits[i].b;
            p->pos += n;
            return v;
        }
    }
    char tmp[16];
    cb__jp_fail(p, p->pos, "expected a JSON value, got %s", cb__jp_what(p, tmp, sizeof(tmp)));
    return NULL;
}

/* Appends (key, value) to a container; on failure frees both. */
static int cb__push(struct cb_json *c, char *key, size_t key_len, struct cb_json *v)
{
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        struct cb_json_member *m = NULL;
        if (cap <= SIZE_MAX / sizeof(*m))
            m = (struct cb_json_member *)realloc(c->items, cap * sizeof(*m));
        if (!m) {
            free(key);
            cb_json_free(v);
            return -ENOMEM;
        }
        c->items = m;
        c->cap = cap;
    }
    c->items[c->count].key = key;
    c->items[c->count].key_len = key_len;
    c->items[c->count].value = v;
    c->count++;
    return 0;
}

/* Parses the elements of an array or members of an object after the
 * opening bracket, into c. */
static int cb__jp_members(struct cb__jp *p, struct cb_json *c)
{
    int obj = c->type == CB_JSON_OBJECT;
    char close = obj ? '}' : ']';
    char tmp[16];
    cb__jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        if (obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                cb__jp_fail(p, p->pos, "expected a string key, got %s",
                            cb__jp_what(p, tmp, sizeof(tmp)));
                return -1;
            }
            if (!(key = cb__jp_string(p, &key_len)))
                return -1;
            cb__jp_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                cb__jp_fail(p, p->pos, "expected ':', got %s", cb__jp_what(p, tmp, sizeof(tmp)));
                return -1;
            }
            p->pos++;
        }
        struct cb_json *v = cb__jp_value(p);
        if (!v) {
            free(key);
            return -1;
        }
        if (cb__push(c, key, key_len, v)) {
            cb__jp_fail(p, p->pos, "out of memory");
            return -1;
        }
        cb__jp_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            cb__jp_ws(p);
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        cb__jp_fail(p, p->pos, "expected ',' or '%c', got %s", close,
                    cb__jp_what(p, tmp, sizeof(tmp)));
        return -1;
    }
}

static struct cb_json *cb__jp_container(struct cb__jp *p, enum cb_json_type t)
{
    if (++p->depth > p->max_depth) {
        cb__jp_fail(p, p->pos, "nesting too deep (max %d)", p->max_depth);
        return NULL;
    }
    p->pos++;
    struct cb_json *c = cb__node(t);
    if (!c) {
        cb__jp_fail(p, p->pos, "out of memory");
        return NULL;
    }
    if (cb__jp_members(p, c)) {
        cb_json_free(c);
        return NULL;
    }
    p->depth--;
    return c;
}

static struct cb_json *cb__jp_value(struct cb__jp *p)
{
    cb__jp_ws(p);
    if (p->pos >= p->len) {
        cb__jp_fail(p, p->pos, "unexpected end of input");
        return NULL;
    }
    char c = p->s[p->pos];
    if (c == '{')
        return cb__jp_container(p, CB_JSON_OBJECT);
    if (c == '[')
        return cb__jp_container(p, CB_JSON_ARRAY);
    if (c == '-' || (c >= '0' && c <= '9'))
        return cb__jp_number(p);
    if (c == '"') {
        size_t len, start = p->pos;
        char *s = cb__jp_string(p, &len);
        if (!s)
            return NULL;
        struct cb_json *v = cb__node(CB_JSON_STRING);
        if (!v) {
            free(s);
            cb__jp_fail(p, start, "out of memory");
            return NULL;
        }
        v->text = s;
        v->text_len = len;
        return v;
    }
    return cb__jp_literal(p);
}

struct cb_json *cb_json_parse_depth(const char *s, size_t len, int max_depth,
                                    struct cb_tool_error *err)
{
    struct cb__jp p;
    memset(&p, 0, sizeof(p));
    p.s = s ? s : "";
    p.len = s ? len : 0;
    p.max_depth = max_depth;
    p.err = err;
    struct cb_json *v = cb__jp_value(&p);
    if (!v)
        return NULL;
    cb__jp_ws(&p);
    if (p.pos < p.len) {
        char tmp[16];
        cb__jp_fail(&p, p.pos, "unexpected %s after the JSON value",
                    cb__jp_what(&p, tmp, sizeof(tmp)));
        cb_json_free(v);
        return NULL;
    }
    return v;
}

struct cb_json *cb_json_parse(const char *s, size_t len, struct cb_tool_error *err)
{
    return cb_json_parse_depth(s, len, CB_JSON_MAX_DEPTH, err);
}

/* ---- JSON: values ------------------------------------------------------ */

void cb_json_free(struct cb_json *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->count; i++) {
        free(v->items[i].key);
        cb_json_free(v->items[i].value);
    }
    free(v->items);
    free(v->text);
    free(v);
}

static char *cb__xmemdup(const char *s, size_t n)
{
    char *p = (char *)cb__xmalloc(n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct cb_json *cb_json_clone(const struct cb_json *v)
{
    if (!v)
        return cb_json_new_null();
    struct cb_json *c = cb__xnode(v->type);
    c->boolean = v->boolean;
    c->number = v->number;
    if (v->text) {
        c->text = cb__xmemdup(v->text, v->text_len);
        c->text_len = v->text_len;
    }
    for (size_t i = 0; i < v->count; i++) {
        char *key = v->items[i].key ? cb__xmemdup(v->items[i].key, v->items[i].key_len) : NULL;
        if (cb__push(c, key, v->items[i].key_len, cb_json_clone(v->items[i].value)))
            cb__oom();
    }
    return c;
}

struct cb_json *cb_json_new_null(void)
{
    return cb__xnode(CB_JSON_NULL);
}

struct cb_json *cb_json_new_bool(int b)
{
    struct cb_json *v = cb__xnode(CB_JSON_BOOL);
    v->boolean = b != 0;
    return v;
}

struct cb_json *cb_json_new_number(double d)
{
    struct cb_json *v = cb__xnode(CB_JSON_NUMBER);
    v->number = d;
    return v;
}

struct cb_json *cb_json_new_int(long long i)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", i);
    struct cb_json *v = cb__xnode(CB_JSON_NUMBER);
    v->number = (double)i;
    v->text = cb__xmemdup(tmp, (size_t)n);
    v->text_len = (size_t)n;
    return v;
}

struct cb_json *cb_json_new_stringn(const char *s, size_t len)
{
    struct cb_json *v = cb__xnode(CB_JSON_STRING);
    v->text = cb__xmemdup(s ? s : "", s ? len : 0);
    v->text_len = s ? len : 0;
    return v;
}

struct cb_json *cb_json_new_string(const char *s)
{
    return cb_json_new_stringn(s, s ? strlen(s) : 0);
}

struct cb_json *cb_json_new_array(void)
{
    return cb__xnode(CB_JSON_ARRAY);
}

struct cb_json *cb_json_new_object(void)
{
    return cb__xnode(CB_JSON_OBJECT);
}

int cb_json_append(struct cb_json *arr, struct cb_json *v)
{
    if (!arr || arr->type != CB_JSON_ARRAY) {
        cb_json_free(v);
        return -EINVAL;
    }
    if (cb__push(arr, NULL, 0, v))
        cb__oom();
    return 0;
}

int cb_json_setn(struct cb_json *obj, const char *key, size_t key_len, struct cb_json *v)
{
    if (!obj || obj->type != CB_JSON_OBJECT || !key) {
        cb_json_free(v);
        return -EINVAL;
    }
    for (size_t i = 0; i < obj->count; i++) {
        if (obj->items[i].key_len == key_len && memcmp(obj->items[i].key, key, key_len) == 0) {
            cb_json_free(obj->items[i].value);
            obj->items[i].value = v;
            return 0;
        }
    }
    if (cb__push(obj, cb__xmemdup(key, key_len), key_len, v))
        cb__oom();
    return 0;
}

int cb_json_set(struct cb_json *obj, const char *key, struct cb_json *v)
{
    return cb_json_setn(obj, key, key ? strlen(key) : 0, v);
}

const char *cb_json_type_name(enum cb_json_type t)
{
    switch (t) {
    case CB_JSON_NULL:
        return "null";
    case CB_JSON_BOOL:
        return "boolean";
    case CB_JSON_NUMBER:
        return "number";
    case CB_JSON_STRING:
        return "string";
    case CB_JSON_ARRAY:
        return "array";
    case CB_JSON_OBJECT:
        return "object";
    }
    return "unknown";
}

struct cb_json *cb_json_getn(const struct cb_json *obj, const char *key, size_t key_len)
{
    if (!obj || obj->type != CB_JSON_OBJECT || !key)
        return NULL;
    for (size_t i = obj->count; i-- > 0;) {
        if (obj->items[i].key_len == key_len && memcmp(obj->items[i].key, key, key_len) == 0)
            return obj->items[i].value;
    }
    return NULL;
}

struct cb_json *cb_json_get(const struct cb_json *obj, const char *key)
{
    return cb_json_getn(obj, key, key ? strlen(key) : 0);
}

struct cb_json *cb_json_at(const struct cb_json *arr, size_t i)
{
    if (!arr || arr->type != CB_JSON_ARRAY || i >= arr->count)
        return NULL;
    return arr->items[i].value;
}

size_t cb_json_count(const struct cb_json *v)
{
    if (!v || (v->type != CB_JSON_ARRAY && v->type != CB_JSON_OBJECT))
        return 0;
    return v->count;
}

int cb_json_is(const struct cb_json *v, enum cb_json_type t)
{
    return v && v->type == t;
}

const char *cb_json_str(const struct cb_json *v)
{
    return cb_json_is(v, CB_JSON_STRING) ? v->text : NULL;
}

size_t cb_json_strlen(const struct cb_json *v)
{
    return cb_json_is(v, CB_JSON_STRING) ? v->text_len : 0;
}

int cb_json_number(const struct cb_json *v, double *out)
{
    if (!cb_json_is(v, CB_JSON_NUMBER))
        return -EINVAL;
    *out = v->number;
    return 0;
}

int cb_json_integer(const struct cb_json *v, long long *out)
{
    if (!cb_json_is(v, CB_JSON_NUMBER))
        return -EINVAL;
    if (v->text && !memchr(v->text, '.', v->text_len) && !memchr(v->text, 'e', v->text_len) &&
        !memchr(v->text, 'E', v->text_len)) {
        errno = 0;
        long long i = strtoll(v->text, NULL, 10);
        if (errno == ERANGE)
            return -ERANGE;
        *out = i;
        return 0;
    }
    double d = v->number;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return -EINVAL;
    *out = (long long)d;
    return 0;
}

int cb_json_bool(const struct cb_json *v, int *out)
{
    if (!cb_json_is(v, CB_JSON_BOOL))
        return -EINVAL;
    *out = v->boolean;
    return 0;
}

/* ---- input and output -------------------------------------------------- */

int cb_read_input(char **data, size_t *len, struct cb_tool_error *err)
{
    struct clawbox_buf b;
    char chunk[16384];
    clawbox_buf_init(&b, CB_TOOL_MAX_INPUT);
    clawbox_buf_append(&b, "", 0);
    for (;;) {
        ssize_t n = read(0, chunk, sizeof(chunk));
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cb__errf(err, "reading stdin: %s", strerror(errno));
            clawbox_buf_free(&b);
            return -EIO;
        }
        if (clawbox_buf_append(&b, chunk, (size_t)n)) {
            int rc = b.failed;
            if (rc == -ENOSPC)
                cb__errf(err, "input exceeds %u bytes", (unsigned)CB_TOOL_MAX_INPUT);
            else
                cb__errf(err, "out of memory reading stdin");
            clawbox_buf_free(&b);
            return rc;
        }
    }
    *data = clawbox_buf_steal(&b, len);
    return 0;
}

int cb_read_params(struct cb_json **params, struct cb_tool_error *err)
{
    char *data;
    size_t len, i = 0;
    int rc = cb_read_input(&data, &len, err);
    if (rc)
        return rc;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    *params = i == len ? cb_json_new_null() : cb_json_parse(data, len, err);
    free(data);
    return *params ? 0 : -EINVAL;
}

int cb_write_stdout(const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(1, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EIO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int cb_output(const struct cb_json *v)
{
    struct clawbox_buf b;
    clawbox_buf_init(&b, CB_JSON_MAX_OUTPUT);
    int rc = cb_json_write(&b, v, 0);
    if (!rc)
        rc = clawbox_buf_putc(&b, '\n');
    if (!rc)
        rc = cb_write_stdout(b.data, b.len);
    clawbox_buf_free(&b);
    if (rc == -ENOSPC || rc == -ENOMEM)
        return cb_output_error("output too large to serialise");
    return rc;
}

int cb_output_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct clawbox_buf b;
    clawbox_buf_init(&b, sizeof(msg) * 8);
    clawbox_buf_puts(&b, "{\"error\":");
    clawbox_buf_json_string(&b, msg, strlen(msg));
    clawbox_buf_puts(&b, "}\n");
    int rc = b.failed ? b.failed : cb_write_stdout(b.data, b.len);
    clawbox_buf_free(&b);
    return rc;
}

/* ---- host calls -------------------------------------------------------- */

/* If msg is clawbox's "response of N bytes does not fit the buffer of M
 * bytes", returns N; else 0. */
static size_t cb__needed_size(const char *msg, size_t len)
{
    static const char pre[] = "response of ";
    static const char post[] = " bytes does not fit";
    size_t i = sizeof(pre) - 1, n = 0;
    if (len < i || memcmp(msg, pre, i) != 0)
        return 0;
    size_t digits = i;
    while (i < len && msg[i] >= '0' && msg[i] <= '9' && i - digits < 12)
        n = n * 10 + (size_t)(msg[i++] - '0');
    if (i == digits || len - i < sizeof(post) - 1 || memcmp(msg + i, post, sizeof(post) - 1))
        return 0;
    return n;
}

/* Removes and returns the value of member `key` of envelope env. */
static struct cb_json *cb__detach(struct cb_json *env, const char *key)
{
    for (size_t i = env->count; i-- > 0;) {
        if (env->items[i].key_len == strlen(key) &&
            memcmp(env->items[i].key, key, strlen(key)) == 0) {
            struct cb_json *v = env->items[i].value;
            env->items[i].value = NULL;
            return v ? v : cb_json_new_null();
        }
    }
    return NULL;
}

/* One host_call with a buffer of cap bytes. Returns the parsed envelope
 * or NULL with err set. */
static struct cb_json *cb__host_call_once(const char *req, size_t req_len, size_t cap,
                                          struct cb_tool_error *err)
{
    struct cb_tool_error perr;
    char *resp = (char *)malloc(cap);
    if (!resp) {
        cb__errf(err, "out of memory for a %zu-byte host_call buffer", cap);
        return NULL;
    }
    int n = host_call(req, (int)req_len, resp, (int)cap);
    struct cb_json *env = NULL;
    if (n < 0)
        cb__errf(err, "host_call rejected the request");
    else if ((size_t)n > cap)
        cb__errf(err, "host_call returned an invalid length %d", n);
    else if (!(env = cb_json_parse(resp, (size_t)n, &perr)))
        cb__errf(err,
                 (size_t)n == cap ? "host_call response truncated at %zu bytes"
                                  : "host_call returned invalid JSON (%zu bytes)",
                 (size_t)n);
    else if (env->type != CB_JSON_OBJECT) {
        cb__errf(err, "host_call returned a malformed envelope");
        cb_json_free(env);
        env = NULL;
    }
    free(resp);
    return env;
}

static char *cb__host_request(const char *method, const struct cb_json *params, size_t *len)
{
    struct clawbox_buf b;
    clawbox_buf_init(&b, INT_MAX);
    clawbox_buf_puts(&b, "{\"method\":");
    clawbox_buf_json_string(&b, method, strlen(method));
    clawbox_buf_puts(&b, ",\"params\":");
    cb_json_write(&b, params, 0);
    clawbox_buf_putc(&b, '}');
    if (b.failed) {
        clawbox_buf_free(&b);
        return NULL;
    }
    return clawbox_buf_steal(&b, len);
}

struct cb_json *cb_host_call(const char *method, const struct cb_json *params,
                             struct cb_tool_error *err)
{
    size_t req_len, cap = CB_HOST_RESPONSE_CAP;
    struct cb_json *result = NULL;
    char *req = cb__host_request(method ? method : "", params, &req_len);
    if (!req) {
        cb__errf(err, "host_call request too large");
        return NULL;
    }
    for (int attempt = 0; attempt < 2 && !result; attempt++) {
        struct cb_json *env = cb__host_call_once(req, req_len, cap, err);
        if (!env)
            break;
        if ((result = cb__detach(env, "ok")) != NULL) {
            cb_json_free(env);
            break;
        }
        const struct cb_json *e = cb_json_get(env, "error");
        if (!cb_json_str(e)) {
            cb__errf(err, "host_call returned a malformed envelope");
        } else {
            size_t need = cb__needed_size(e->text, e->text_len);
            cb__errf(err, "%s", e->text);
            if (need > cap && need <= CB_HOST_RESPONSE_MAX)
                cap = need;
            else
                attempt = 2;
        }
        cb_json_free(env);
    }
    free(req);
    return result;
}

int clawbox_log(const char *level, const char *message)
{
    struct cb_tool_error err;
    struct cb_json *p = cb_json_new_object();
    cb_json_set(p, "level", cb_json_new_string(level ? level : "info"));
    cb_json_set(p, "message", cb_json_new_string(message));
    struct cb_json *r = cb_host_call("log", p, &err);
    cb_json_free(p);
    if (!r)
        return -EIO;
    cb_json_free(r);
    return 0;
}

int clawbox_logf(const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return clawbox_log(level, msg);
}

static int cb__http_unpack(struct cb_json *v, struct cb_http_response *resp,
                           struct cb_tool_error *err)
{
    long long status;
    const struct cb_json *body = cb_json_get(v, "body");
    const struct cb_json *headers = cb_json_get(v, "headers");
    if (!cb_json_is(v, CB_JSON_OBJECT) || cb_json_integer(cb_json_get(v, "status"), &status) ||
        status < 0 || status > 999) {
        cb__errf(err, "malformed http_request response");
        cb_json_free(v);
        return -EIO;
    }
    resp->value = v;
    resp->status = (int)status;
    resp->headers = cb_json_is(headers, CB_JSON_OBJECT) ? headers : NULL;
    resp->body = cb_json_str(body) ? body->text : "";
    resp->body_len = cb_json_strlen(body);
    return 0;
}

int cb_http_request(const struct cb_http_request *req, struct cb_http_response *resp,
                    struct cb_tool_error *err)
{
    memset(resp, 0, sizeof(*resp));
    if (!req || !req->url) {
        cb__errf(err, "missing url");
        return -EINVAL;
    }
    struct cb_json *p = cb_json_new_object();
    cb_json_set(p, "url", cb_json_new_string(req->url));
    cb_json_set(p, "method", cb_json_new_string(req->method ? req->method : "GET"));
    if (req->headers)
        cb_json_set(p, "headers", cb_json_clone(req->headers));
    if (req->body)
        cb_json_set(p, "body", cb_json_new_stringn(req->body, req->body_len));
    struct cb_json *v = cb_host_call("http_request", p, err);
    cb_json_free(p);
    if (!v)
        return -EIO;
    return cb__http_unpack(v, resp, err);
}

void cb_http_response_free(struct cb_http_response *resp)
{
    if (!resp)
        return;
    cb_json_free(resp->value);
    memset(resp, 0, sizeof(*resp));
}

#ifdef __cplusplus
}
#endif

#endif /* CLAWBOX_TOOL_IMPLEMENTATION */
#endif /* CLAWBOX_TOOL_H */
