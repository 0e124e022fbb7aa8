/* The passthrough byte relay (splice.h). */
#include "egress/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "core/util.h"

struct dir {
    int src, dst;
    size_t off, len; /* the undelivered bytes are buf[off..off+len) */
    bool eof;        /* src has ended its sending */
    bool shut;       /* dst has been shut for writing */
    uint64_t bytes;
    unsigned char buf[CB_EGRESS_SPLICE_BUF];
};

struct cb_egress_splice {
    struct dir d[2];
    uint64_t idle_ns, last_ns;
};

static bool nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

int cb_egress_splice_new(int client, int upstream, uint64_t idle_ms, struct cb_egress_splice **out,
                         struct cb_error *err)
{
    *out = NULL;
    if (idle_ms == 0 || idle_ms > UINT64_MAX / 1000000u)
        return cb_error_set(err, -EINVAL, "egress splice: idle timeout out of range");
    if (!nonblocking(client) || !nonblocking(upstream))
        return cb_error_set(err, -EINVAL, "egress splice: both sockets must be nonblocking");
    struct cb_egress_splice *s = cb_xcalloc(1, sizeof(*s));
    s->d[CB_EGRESS_SPLICE_UP].src = client;
    s->d[CB_EGRESS_SPLICE_UP].dst = upstream;
    s->d[CB_EGRESS_SPLICE_DOWN].src = upstream;
    s->d[CB_EGRESS_SPLICE_DOWN].dst = client;
    s->idle_ns = idle_ms * 1000000u;
    s->last_ns = cb_now_mono_ns();
    *out = s;
    return 0;
}

void cb_egress_splice_free(struct cb_egress_splice *s)
{
    free(s);
}

static bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* One recv into an empty buffer, one send of what it holds, and the
 * shutdown once src has ended and all is sent. Returns whether a byte or
 * an end moved, or a negative errno. */
static int splice_pump(struct dir *d, const char *name, struct cb_error *err)
{
    bool moved = false;
    if (d->len == 0 && !d->eof) {
        ssize_t n = recv(d->src, d->buf, sizeof(d->buf), 0);
        if (n > 0) {
            d->off = 0;
            d->len = (size_t)n;
            moved = true;
        } else if (n == 0) {
            d->eof = moved = true;
        } else if (!would_block(errno)) {
            return cb_error_set(err, -errno, "egress splice: %s: recv: %s", name, strerror(errno));
        }
    }
    if (d->len > 0) {
        ssize_t n = send(d->dst, d->buf + d->off, d->len, MSG_NOSIGNAL);
        if (n > 0) {
            d->off += (size_t)n;
            d->len -= (size_t)n;
            d->bytes += (uint64_t)n;
            moved = true;
        } else if (n < 0 && !would_block(errno)) {
            return cb_error_set(err, -errno, "egress splice: %s: send: %s", name, strerror(errno));
        }
    }
    if (d->eof && d->len == 0 && !d->shut) {
        /* ENOTCONN: the peer is gone already, which is the end we want. */
        if (shutdown(d->dst, SHUT_WR) < 0 && errno != ENOTCONN)
            return cb_error_set(err, -errno, "egress splice: %s: shutdown: %s", name,
                                strerror(errno));
        d->shut = moved = true;
    }
    return moved;
}

int cb_egress_splice_step(struct cb_egress_splice *s, short events[2], struct cb_error *err)
{
    static const char *names[2] = {"client to upstream", "upstream to client"};
    bool moved = false;
    for (int i = 0; i < 2; i++) {
        int r = splice_pump(&s->d[i], names[i], err);
        if (r < 0)
            return r;
        moved |= r > 0;
    }
    uint64_t now = cb_now_mono_ns();
    if (moved)
        s->last_ns = now;
    if (s->d[0].shut && s->d[1].shut)
        return 0;
    if (now - s->last_ns >= s->idle_ns)
        return cb_error_set(err, -ETIMEDOUT, "egress splice: idle for %llu ms",
                            (unsigned long long)(s->idle_ns / 1000000u));
    events[0] = events[1] = 0;
    for (int i = 0; i < 2; i++) {
        const struct dir *d = &s->d[i];
        /* d->src is fd i, d->dst the other one. */
        if (d->len == 0 && !d->eof)
            events[i] |= POLLIN;
        if (d->len > 0)
            events[1 - i] |= POLLOUT;
    }
    return 1;
}

uint64_t cb_egress_splice_deadline_ns(const struct cb_egress_splice *s)
{
    return s->last_ns + s->idle_ns;
}

void cb_egress_splice_bytes(const struct cb_egress_splice *s, uint64_t *up, uint64_t *down)
{
    *up = s->d[CB_EGRESS_SPLICE_UP].bytes;
    *down = s->d[CB_EGRESS_SPLICE_DOWN].bytes;
}
