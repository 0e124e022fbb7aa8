/* The sending side of a streamed response body (struct cb_http_stream):
 * one chunk at a time, framed for Transfer-Encoding: chunked (RFC 9112
 * section 7.1) or sent bare on HTTP/1.0. A chunk is asked of the producer
 * only once the previous one is all written, so a stream never buffers
 * more than one chunk: a slow reader holds back its own producer and
 * nothing else. No I/O here; conn.c writes buf[off..len). */
#ifndef CB_HTTP_STREAM_H
#define CB_HTTP_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"

/* Body bytes asked of the producer per chunk. */
#define CB__STREAM_CHUNK 16384u
/* Room before the data for the chunk-size line ("4000\r\n"). */
#define CB__STREAM_HEADROOM 8u
/* Room after it: the data's CRLF and the last chunk ("0\r\n\r\n"). */
#define CB__STREAM_TAILROOM 8u

struct cb__stream {
    struct cb_http_stream src;
    bool chunked; /* HTTP/1.1: frame the body; HTTP/1.0: send it bare */
    bool ended;   /* the last bytes (and the last chunk) are in buf */
    size_t off, len;
    char buf[CB__STREAM_HEADROOM + CB__STREAM_CHUNK + CB__STREAM_TAILROOM];
};

/* After a stream starts or its producer produced, the producer is asked
 * again every CB__STREAM_SOON_MS, CB__STREAM_SOON_POLLS times, before the
 * polls slow to CB_HTTP_STREAM_POLL_MS: output that follows soon (an
 * exec's first line, the next of a burst) goes out within milliseconds,
 * and a stream that stays idle costs ten wake-ups a second. */
#define CB__STREAM_SOON_MS    2u
#define CB__STREAM_SOON_POLLS 64u

enum cb__stream_step {
    CB__STREAM_SEND,  /* buf[off..len) holds bytes to write */
    CB__STREAM_WAIT,  /* nothing to write now: try again in CB_HTTP_STREAM_POLL_MS */
    CB__STREAM_DONE,  /* the body is all written */
    CB__STREAM_ABORT, /* the producer failed: cut the connection */
};

/* Takes the stream of a response (moving it out of `src`). */
void cb__stream_init(struct cb__stream *st, struct cb_http_stream *src, bool chunked);
/* What to do next. When bytes are still unsent it says SEND; otherwise it
 * asks the producer for the next chunk, or, with `finish` (the server is
 * stopping), ends the body at once after what was sent. */
enum cb__stream_step cb__stream_next(struct cb__stream *st, bool finish);
/* Records n bytes of buf[off..len) as written. */
void cb__stream_sent(struct cb__stream *st, size_t n);
/* Frees the producer's context (once; later calls do nothing). */
void cb__stream_release(struct cb__stream *st);
/* Frees a stream a response still holds (one never sent). */
void cb__http_stream_drop(struct cb_http_stream *s);

#endif
