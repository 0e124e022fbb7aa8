#include "http/stream.h"

#include <stdio.h>
#include <string.h>

void cb__http_stream_drop(struct cb_http_stream *s)
{
    if (s->free)
        s->free(s->ctx);
    *s = (struct cb_http_stream){0};
}

void cb__stream_init(struct cb__stream *st, struct cb_http_stream *src, bool chunked)
{
    st->src = *src;
    *src = (struct cb_http_stream){0};
    st->chunked = chunked;
    st->ended = false;
    st->off = st->len = 0;
}

void cb__stream_release(struct cb__stream *st)
{
    cb__http_stream_drop(&st->src);
}

static void stream_append(struct cb__stream *st, const char *s)
{
    size_t n = strlen(s);
    memcpy(st->buf + st->len, s, n);
    st->len += n;
}

/* Frames n bytes of data at buf + HEADROOM, and the last chunk when the
 * body ends with them. */
static void frame(struct cb__stream *st, size_t n, bool last)
{
    st->off = CB__STREAM_HEADROOM;
    st->len = CB__STREAM_HEADROOM + n;
    if (!st->chunked)
        return;
    if (n > 0) {
        char line[CB__STREAM_HEADROOM + 1];
        int k = snprintf(line, sizeof(line), "%zx\r\n", n);
        st->off -= (size_t)k;
        memcpy(st->buf + st->off, line, (size_t)k);
        stream_append(st, "\r\n");
    }
    if (last)
        stream_append(st, "0\r\n\r\n");
}

enum cb__stream_step cb__stream_next(struct cb__stream *st, bool finish)
{
    if (st->off < st->len)
        return CB__STREAM_SEND;
    if (st->ended)
        return CB__STREAM_DONE;
    size_t n = 0;
    enum cb_http_stream_rc rc = CB_HTTP_STREAM_END;
    if (!finish && st->src.produce)
        rc = st->src.produce(st->src.ctx, st->buf + CB__STREAM_HEADROOM, CB__STREAM_CHUNK, &n);
    if (rc == CB_HTTP_STREAM_FAIL)
        return CB__STREAM_ABORT;
    if (n > CB__STREAM_CHUNK)
        n = CB__STREAM_CHUNK;
    st->ended = rc == CB_HTTP_STREAM_END;
    if (n == 0 && !st->ended)
        return CB__STREAM_WAIT;
    frame(st, n, st->ended);
    return st->off < st->len ? CB__STREAM_SEND : CB__STREAM_DONE;
}

void cb__stream_sent(struct cb__stream *st, size_t n)
{
    st->off += n < st->len - st->off ? n : st->len - st->off;
}
