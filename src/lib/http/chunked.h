/* The chunked transfer coding of a request body (RFC 9112 section 7.1),
 * decoded incrementally: bytes can arrive split anywhere. A pure state
 * machine, no I/O and no allocation. Chunk extensions are checked for
 * control characters and bounded, never interpreted; trailer fields are
 * checked like header fields and dropped. Every line ends with CRLF, as
 * the grammar says: the bare LF that a request head may end lines with is
 * refused here, because a proxy in front that reads it as part of an
 * extension or of the data would frame the body differently. */
#ifndef CB_HTTP_CHUNKED_H
#define CB_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Bytes of one chunk-size line, extensions included. */
#define CB_HTTP_MAX_CHUNK_LINE 4096
/* Bytes of the trailer section. */
#define CB_HTTP_MAX_TRAILER (16u * 1024)

/* Decoder state; zero it before the first call. */
struct cb_http_chunked {
    int state;
    uint64_t size; /* the chunk being read: its size, then what is left of it */
    unsigned digits;
    size_t line;    /* bytes of the current chunk-size line */
    size_t trailer; /* bytes of the trailer section */
};

/* Receives decoded body bytes. */
typedef void (*cb_http_sink_fn)(void *ud, const char *data, size_t n);

/* Decodes in[0..len) from where the last call stopped and hands chunk data
 * to sink. Returns 1 when the body is complete (*used is the bytes of `in`
 * that belonged to it; the rest is the next request), 0 when all of `in`
 * was consumed and more is needed, or -EINVAL (malformed) / -E2BIG
 * (trailer section too large) with err naming what was wrong. */
int cb__http_chunked_feed(struct cb_http_chunked *st, const char *in, size_t len, size_t *used,
                          cb_http_sink_fn sink, void *ud, struct cb_error *err);

#endif
