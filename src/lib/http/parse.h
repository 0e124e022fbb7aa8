/* The HTTP/1.1 request-head parser: pure functions over bytes, no I/O.
 *
 * It is strict where leniency lets two parsers disagree about a message
 * (request smuggling, header injection, truncated values): every field line
 * is checked byte by byte, framing is decided here once (Content-Length or
 * chunked, never both, never guessed), and anything it does not accept is
 * an error with a message that names what was wrong. It is lenient only
 * where RFC 9112 allows it and no framing depends on it: a bare LF ends a
 * line, and empty lines before the request line are skipped.
 *
 * Errors are negative codes that map to a status with
 * cb__http_error_status(): -EINVAL 400, -ENAMETOOLONG 414, -E2BIG 431,
 * -EFBIG 413, -EPROTONOSUPPORT 505, -EOPNOTSUPP 417. */
#ifndef CB_HTTP_PARSE_H
#define CB_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The whole head: request line, fields and the empty line. */
#define CB_HTTP_MAX_HEAD (16u * 1024)
/* The request target. */
#define CB_HTTP_MAX_TARGET (8u * 1024)
/* Header field lines. */
#define CB_HTTP_MAX_FIELDS 100
/* Bytes of a method name. */
#define CB_HTTP_MAX_METHOD 32

/* A piece of the head: offset from its first byte, and length. */
struct cb_http_span {
    uint32_t off;
    uint32_t len;
};

struct cb_http_field {
    struct cb_http_span name;
    struct cb_http_span value; /* without the optional whitespace around it */
};

enum cb_http_framing {
    CB_HTTP_NO_BODY,
    CB_HTTP_LENGTH, /* content_length bytes */
    CB_HTTP_CHUNKED,
};

struct cb_http_head {
    size_t len; /* bytes of the head, the empty line that ends it included */
    struct cb_http_span method;
    struct cb_http_span target; /* as sent */
    struct cb_http_span path;   /* raw path (still percent-encoded); empty = "/" */
    struct cb_http_span query;  /* raw query without the '?' */
    bool has_query;
    unsigned minor; /* HTTP/1.minor: 0 or 1 */
    struct cb_http_field fields[CB_HTTP_MAX_FIELDS];
    size_t nfields;
    enum cb_http_framing framing;
    uint64_t content_length;
    bool keep_alive;      /* the client allows another request on the connection */
    bool expect_continue; /* Expect: 100-continue on HTTP/1.1 */
};

/* Where cb__http_find_head_end stopped; zero it before the first call. */
struct cb_http_scan {
    size_t line;  /* start of the line not yet ended */
    bool content; /* a non-empty line was seen */
};

/* Looks for the empty line that ends a request head in buf[0..len), going
 * on from where the last call on the same bytes stopped (so a head that
 * arrives a byte at a time is scanned once). Returns the head length, or 0
 * when it is not complete yet. */
size_t cb__http_find_head_end(const char *buf, size_t len, struct cb_http_scan *st);

/* Parses and checks a complete head of `len` bytes (as found by
 * cb__http_find_head_end). Returns 0 and fills *h, or a negative code (see
 * above) with err naming what was wrong. */
int cb__http_parse_head(const char *buf, size_t len, struct cb_http_head *h, struct cb_error *err);

/* The status an error code of this module maps to. */
unsigned cb__http_error_status(int code);

/* Percent-decodes a raw path that cb__http_parse_head accepted. Returns 0
 * and a NUL-terminated copy in *out (the caller frees it; an empty path
 * becomes "/"), or -EINVAL when the decoded path is not UTF-8. */
int cb__http_decode_path(const char *raw, size_t len, char **out, struct cb_error *err);

/* Whether a field name equals `name`, ignoring ASCII case. */
bool cb__http_name_is(const char *p, size_t n, const char *name);

/* Whether c may appear in a token (RFC 9110 tchar). */
bool cb__http_is_tchar(unsigned char c);

/* Whether c may appear in a field value (HTAB, SP, VCHAR, obs-text). */
bool cb__http_is_field_byte(unsigned char c);

#endif
