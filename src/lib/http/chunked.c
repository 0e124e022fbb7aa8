#include "http/chunked.h"
#include "core/util.h"
#include "http/parse.h"

#include <errno.h>
#include <stdbool.h>

enum {
    SIZE_FIRST, /* the first hex digit of a chunk size */
    SIZE,       /* more hex digits */
    SIZE_WS,    /* whitespace after the size, before ';' */
    EXT,        /* a chunk extension, up to the end of the line */
    SIZE_LF,    /* a CR ended the size line; the LF must follow */
    DATA,
    DATA_END, /* the CRLF after chunk data */
    DATA_LF,
    TRAILER_START, /* the start of a trailer line, or the final empty line */
    TRAILER_NAME,
    TRAILER_VALUE,
    TRAILER_LF,
    END_LF,
    DONE,
};

static int bad(struct cb_error *err, const char *what)
{
    return cb_error_set(err, -EINVAL, "chunked body: %s", what);
}

/* The state after a chunk-size line: data, or the trailer after the last
 * (zero-size) chunk. */
static int end_size_line(struct cb_http_chunked *st)
{
    st->line = 0;
    return st->size == 0 ? TRAILER_START : DATA;
}

/* One byte of a chunk-size line. Returns the next state or an error. */
static int size_byte(struct cb_http_chunked *st, unsigned char c, struct cb_error *err)
{
    int v = cb_hex_digit(c);
    if (++st->line > CB_HTTP_MAX_CHUNK_LINE)
        return cb_error_set(err, -EINVAL,
                            "chunked body: chunk size line (with extensions) longer than %u "
                            "bytes",
                            CB_HTTP_MAX_CHUNK_LINE);
    if (st->state == SIZE_FIRST || st->state == SIZE) {
        if (v >= 0) {
            if (st->digits++ == 16)
                return bad(err, "chunk size has more than 16 hex digits");
            st->size = st->size * 16 + (unsigned)v;
            return SIZE;
        }
        if (st->state == SIZE_FIRST)
            return bad(err, "chunk size is not a hexadecimal number");
    }
    if (c == '\r')
        return SIZE_LF;
    if (c == '\n')
        return bad(err, "bare LF in a chunk size line");
    if (st->state == EXT)
        return cb__http_is_field_byte(c) ? EXT : bad(err, "control character in a chunk extension");
    if (c == ';')
        return EXT;
    if (c == ' ' || c == '\t')
        return SIZE_WS;
    return bad(err, "chunk size is not a hexadecimal number");
}

/* One byte of the trailer section. */
static int trailer_byte(struct cb_http_chunked *st, unsigned char c, struct cb_error *err)
{
    if (c == '\n' && st->state != TRAILER_LF && st->state != END_LF)
        return bad(err, "bare LF in the trailer section");
    if (++st->trailer > CB_HTTP_MAX_TRAILER)
        return cb_error_set(err, -E2BIG, "chunked body: trailer section larger than %u bytes",
                            CB_HTTP_MAX_TRAILER);
    switch (st->state) {
    case TRAILER_START:
        if (c == '\r')
            return END_LF;
        return cb__http_is_tchar(c) ? TRAILER_NAME : bad(err, "malformed trailer field");
    case TRAILER_NAME:
        if (c == ':')
            return TRAILER_VALUE;
        return cb__http_is_tchar(c) ? TRAILER_NAME : bad(err, "malformed trailer field name");
    case TRAILER_VALUE:
        if (c == '\r')
            return TRAILER_LF;
        return cb__http_is_field_byte(c) ? TRAILER_VALUE
                                         : bad(err, "control character in a trailer field");
    default: /* TRAILER_LF, END_LF */
        if (c != '\n')
            return bad(err, "bare CR in the trailer section");
        return st->state == END_LF ? DONE : TRAILER_START;
    }
}

/* One framing byte (anything but chunk data). */
static int framing_byte(struct cb_http_chunked *st, unsigned char c, struct cb_error *err)
{
    switch (st->state) {
    case SIZE_FIRST:
    case SIZE:
    case SIZE_WS:
    case EXT:
        return size_byte(st, c, err);
    case SIZE_LF:
        return c == '\n' ? end_size_line(st) : bad(err, "bare CR in a chunk size line");
    case DATA_END:
        if (c == '\r')
            return DATA_LF;
        return bad(err, c == '\n' ? "bare LF after chunk data"
                                  : "chunk data longer than its declared size");
    case DATA_LF:
        return c == '\n' ? SIZE_FIRST : bad(err, "bare CR after chunk data");
    default:
        return trailer_byte(st, c, err);
    }
}

int cb__http_chunked_feed(struct cb_http_chunked *st, const char *in, size_t len, size_t *used,
                          cb_http_sink_fn sink, void *ud, struct cb_error *err)
{
    size_t i = 0;
    while (i < len && st->state != DONE) {
        if (st->state == DATA) {
            size_t take = len - i < st->size ? len - i : (size_t)st->size;
            sink(ud, in + i, take);
            i += take;
            st->size -= take;
            if (st->size == 0)
                st->state = DATA_END;
            continue;
        }
        int next = framing_byte(st, (unsigned char)in[i++], err);
        if (next < 0)
            return next;
        if (next == SIZE_FIRST)
            st->digits = 0;
        st->state = next;
    }
    *used = i;
    return st->state == DONE ? 1 : 0;
}
