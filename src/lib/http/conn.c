/* Connections of the API server: reading request heads and bodies under
 * deadlines, writing responses, keep-alive and closing. Everything here
 * runs on the connection's I/O thread, except cb__conn_handback (a limiter
 * worker that owns the connection while its request runs).
 *
 * The functions that move a connection on return whether the caller may
 * keep working on it: false when it waits for the socket, went to a
 * worker, or was closed (and freed). */
#include "core/log.h"
#include "core/util.h"
#include "http/internal.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RBUF_INITIAL 4096u
/* Refused requests whose body is at most this big have it read anyway, so
 * the connection stays open: answering before a small body is sent makes
 * clients that write the body after the headers see a reset connection. */
#define EARLY_ANSWER_MIN_BODY (64u * 1024)
/* A response must be written within this time. */
#define SEND_TIMEOUT_MS 60000u
/* After a response that ends a connection whose client may still be
 * sending, what it sends is read and dropped for this long, so closing does
 * not reset the connection before the client has read the response. */
#define LINGER_MS 2000u
/* Refused connections that may drain at once (each holds a descriptor
 * from the reserve, see FD_RESERVE in server.c). */
#define REFUSED_LINGER_MAX 256u
/* Connections over the Unix socket (mode 0600: local clients of the
 * server's own user) may go this far past server.max_connections, so that
 * TCP clients holding every slot cannot lock them out. From the reserve
 * too. */
#define UNIX_SLOTS 64u
/* Chunks a stream writes in one go before it lets its thread's other
 * connections have a turn (it waits for EPOLLOUT, which comes at once):
 * producing a chunk may cost a redaction (a log follower's), so a big
 * backlog is sent in turns. */
#define STREAM_BURST 4

static uint64_t ms_to_ns(uint64_t ms)
{
    return ms * 1000000u;
}

/* The Date field value, formatted once a second per thread. */
static const char *http_date(void)
{
    static __thread time_t cached = -1;
    static __thread char text[40];
    time_t now = time(NULL);
    if (now != cached) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }
    return text;
}

static void q_remove(struct cb__conn *c)
{
    if (c->q < 0)
        return;
    struct cb__queue *q = &c->io->q[c->q];
    if (c->qprev)
        c->qprev->qnext = c->qnext;
    else
        q->first = c->qnext;
    if (c->qnext)
        c->qnext->qprev = c->qprev;
    else
        q->last = c->qprev;
    c->qprev = c->qnext = NULL;
    c->q = -1;
}

/* Puts the connection at the end of a deadline queue. */
static void q_push(struct cb__conn *c, enum cb__deadline which, uint64_t timeout_ms)
{
    q_remove(c);
    struct cb__queue *q = &c->io->q[which];
    c->q = (int)which;
    c->deadline = cb_now_mono_ns() + ms_to_ns(timeout_ms);
    c->qprev = q->last;
    if (q->last)
        q->last->qnext = c;
    else
        q->first = c;
    q->last = c;
}

/* Sets the epoll interest: EPOLLIN, EPOLLOUT, or 0 for none (the socket
 * leaves the set, so even a hang-up does not wake the thread). Should the
 * kernel refuse (fs.epoll.max_user_watches), the connection's deadline
 * still ends it. */
static void want(struct cb__conn *c, uint32_t events)
{
    if (events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    int op = events == 0 ? EPOLL_CTL_DEL : c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(c->io->epfd, op, c->fd, &ev) < 0)
        cb_log(CB_LOG_WARN, "epoll_ctl on an API connection: %s", strerror(errno));
    c->events = events;
}

static void count_timeout(struct cb__conn *c, const char *phase)
{
    struct cb_http_server *s = c->io->srv;
    const char *labels[] = {phase};
    if (s->m_timeouts)
        cb_metric_inc(s->m_timeouts, labels, 1);
}

static void consume(struct cb__conn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

/* Ends a connection's socket. Another process may hold the same socket
 * (a child forked at the time, before its exec or for good), and then
 * close() alone neither ends the TCP connection nor drops the socket from
 * the epoll set, whose next event would name a freed connection: so the
 * socket leaves the set and is shut down first. */
static void end_socket(struct cb__io *io, int fd, bool in_epoll)
{
    if (in_epoll)
        epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
    shutdown(fd, SHUT_RDWR);
    close(fd);
}

void cb__conn_close(struct cb__conn *c)
{
    struct cb__io *io = c->io;
    struct cb_http_server *s = io->srv;
    q_remove(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        io->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->state == CB__STREAM)
        io->streams--;
    cb__req_free(c->req);
    end_socket(c->io, c->fd, c->events != 0);
    if (c->counted)
        cb__peers_release(s->peers, &c->peer);
    if (c->refused)
        atomic_fetch_sub(&s->refused_lingering, 1);
    else
        atomic_fetch_sub(&s->connections, 1);
    if (s->m_open)
        cb_metric_inc(s->m_open, NULL, -1);
    free(c->rbuf);
    free(c);
}

/* Waits for the next request head, under the head deadline. Bytes already
 * buffered (a pipelined request) count as its start. */
static void wait_head(struct cb__conn *c)
{
    c->state = CB__HEAD;
    c->got_bytes = c->rlen > 0;
    c->scan = (struct cb_http_scan){0};
    q_push(c, CB__Q_HEAD, c->io->srv->opts.request_head_timeout_ms);
    want(c, EPOLLIN);
}

/* Stops writing: shuts the sending side and drops what the client still
 * sends until it closes or LINGER_MS pass. */
static void linger(struct cb__conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->state = CB__LINGER;
    c->rlen = 0;
    q_push(c, CB__Q_LINGER, LINGER_MS);
    want(c, EPOLLIN);
}

/* The bytes of the response body to write: none for HEAD requests and
 * for statuses without a body. */
static size_t body_to_send(const struct cb__req *r)
{
    if (!cb__response_has_body(r->res.status) || strcmp(r->req.method, "HEAD") == 0)
        return 0;
    return r->res.body_len;
}

/* Formats the response head and records the request; the response is then
 * written from r->out and r->res.body. */
static void prepare_send(struct cb__conn *c)
{
    struct cb__req *r = c->req;
    bool close =
        c->close_after || !r->head.keep_alive || atomic_load(&c->io->srv->quiesced) || r->streamed;
    c->close_after = close;
    cb__response_head(r, http_date(), close, r->head.minor == 0 && !close);
    cb__req_record(r);
    if (r->streamed)
        cb__req_start_stream(r);
    c->sent = 0;
}

/* Writes what the socket takes. Returns 1 when the response is all
 * written, 0 when the socket is full, -1 on an error. */
static int write_some(struct cb__conn *c)
{
    struct cb__req *r = c->req;
    size_t body = body_to_send(r);
    while (c->sent < r->out_len + body) {
        struct iovec iov[2];
        size_t n = 0;
        if (c->sent < r->out_len)
            iov[n++] = (struct iovec){r->out + c->sent, r->out_len - c->sent};
        size_t done = c->sent > r->out_len ? c->sent - r->out_len : 0;
        if (body > done)
            iov[n++] = (struct iovec){r->res.body + done, body - done};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t k = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->sent += (size_t)k;
    }
    return 1;
}

/* The response is written: the request is over. */
static bool sent_all(struct cb__conn *c)
{
    if (c->state == CB__STREAM) { /* counted once: close below must not */
        c->io->streams--;
        c->state = CB__SEND;
    }
    cb__req_free(c->req);
    c->req = NULL;
    if (!c->close_after) {
        wait_head(c);
        return c->rlen > 0;
    }
    if (c->unread || c->rlen > 0)
        linger(c);
    else
        cb__conn_close(c);
    return false;
}

/* A streamed body waits: for the socket (EPOLLOUT, under the send
 * deadline, which each wait restarts) or for its producer (the next poll).
 * Either way a client that hangs up is noticed (see stream_event). */
static void stream_wait(struct cb__conn *c, bool for_socket, bool blocked)
{
    c->blocked = blocked;
    if (for_socket)
        q_push(c, CB__Q_SEND, SEND_TIMEOUT_MS);
    else if (c->quiet++ < CB__STREAM_SOON_POLLS)
        q_push(c, CB__Q_STREAM_SOON, CB__STREAM_SOON_MS);
    else
        q_push(c, CB__Q_STREAM, CB_HTTP_STREAM_POLL_MS);
    want(c, (for_socket ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP);
}

/* Writes a streamed body as far as the socket and the producer go. Once
 * the server is quiescing, the body ends after what was already produced,
 * so that drain does not wait for followers. */
static bool pump(struct cb__conn *c)
{
    struct cb__stream *st = c->req->stream;
    bool finish = atomic_load(&c->io->srv->quiesced);
    for (int chunks = 0;;) {
        enum cb__stream_step step = st ? cb__stream_next(st, finish) : CB__STREAM_DONE;
        if (step == CB__STREAM_DONE)
            return sent_all(c);
        if (step == CB__STREAM_ABORT) {
            cb__conn_close(c);
            return false;
        }
        if (step == CB__STREAM_WAIT || chunks == STREAM_BURST) {
            stream_wait(c, step != CB__STREAM_WAIT, false);
            return false;
        }
        ssize_t k = send(c->fd, st->buf + st->off, st->len - st->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            stream_wait(c, true, true);
            return false;
        }
        if (k < 0) {
            cb__conn_close(c);
            return false;
        }
        cb__stream_sent(st, (size_t)k);
        c->quiet = 0;
        chunks += st->off == st->len;
    }
}

/* The head of a streamed response is written: the body follows. */
static bool start_stream(struct cb__conn *c)
{
    c->state = CB__STREAM;
    c->quiet = 0;
    c->io->streams++;
    return pump(c);
}

/* Events on a streamed body's connection. Whatever the client sends is
 * read and dropped (the connection closes after the body); its end, or an
 * error, ends the stream: a follower that goes away must not keep its
 * producer running. */
static void stream_event(struct cb__conn *c, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        char scratch[4096];
        /* A bounded number of reads per event (the interest is level
         * triggered, so the rest comes back): a client that never stops
         * sending does not hold this thread's other connections. */
        for (int reads = 0; reads < 16; reads++) {
            ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            cb__conn_close(c);
            return;
        }
        c->unread = true;
    }
    if (events & EPOLLOUT)
        pump(c);
}

void cb__conn_end_stream(struct cb__conn *c)
{
    if (c->blocked)
        cb__conn_close(c);
    else
        pump(c);
}

/* Continues writing after write_some returned rc. */
static bool after_write(struct cb__conn *c, int rc)
{
    if (rc < 0) {
        cb__conn_close(c);
        return false;
    }
    if (rc == 1)
        return c->req->stream ? start_stream(c) : sent_all(c);
    if (c->state != CB__SEND) {
        c->state = CB__SEND;
        q_push(c, CB__Q_SEND, SEND_TIMEOUT_MS);
        want(c, EPOLLOUT);
    }
    return false;
}

static bool start_send(struct cb__conn *c)
{
    q_remove(c);
    prepare_send(c);
    return after_write(c, write_some(c));
}

/* Answers a request that cannot go on: the connection closes after the
 * answer, and the client may still be sending. */
static bool answer_and_close(struct cb__conn *c)
{
    c->unread = true;
    c->close_after = true;
    return start_send(c);
}

static bool refuse_head(struct cb__conn *c, unsigned status, const char *code, const char *msg)
{
    c->req = cb__req_refused(c->io->srv, status, code, msg);
    c->req->conn = c;
    return answer_and_close(c);
}

/* The body is complete: runs the request, here or on a limiter worker. */
static bool finish_body(struct cb__conn *c)
{
    struct cb__req *r = c->req;
    q_remove(c);
    if (cb__req_prepare(r))
        return start_send(c);
    /* From here on the worker owns the connection. */
    c->state = CB__RUNNING;
    c->io->running++;
    want(c, 0);
    cb__req_submit(r);
    return false;
}

static void body_sink(void *ud, const char *data, size_t n)
{
    struct cb__conn *c = ud;
    if (c->state == CB__BODY)
        cb__req_body(c->req, data, n);
}

/* Takes body bytes from the buffer. */
static bool take_body(struct cb__conn *c)
{
    struct cb__req *r = c->req;
    struct cb_error err = {0};
    size_t used = c->rlen;
    int rc = 0;
    if (r->head.framing == CB_HTTP_LENGTH) {
        used = c->rlen < c->body_left ? c->rlen : (size_t)c->body_left;
        body_sink(c, c->rbuf, used);
        c->body_left -= used;
        rc = c->body_left == 0;
    } else {
        rc = cb__http_chunked_feed(&c->chunked, c->rbuf, c->rlen, &used, body_sink, c, &err);
    }
    if (rc < 0) {
        unsigned status = cb__http_error_status(rc);
        cb__req_fail(r, status, status == 413 ? "payload_too_large" : "invalid_request", err.msg);
        return answer_and_close(c);
    }
    consume(c, used);
    if (rc == 1)
        return finish_body(c);
    /* Refused while its body still arrives (past the size limit): the
     * answer goes now, and the rest of the body is not read. */
    return c->state == CB__BODY && r->state == CB__REQ_READY ? answer_and_close(c) : false;
}

static bool send_continue(struct cb__conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ssize_t k = send(c->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    return k == (ssize_t)sizeof(msg) - 1;
}

static bool read_body(struct cb__conn *c, enum cb__conn_state state)
{
    c->state = state;
    c->body_left = c->req->head.content_length;
    c->chunked = (struct cb_http_chunked){0};
    q_push(c, CB__Q_BODY, c->io->srv->opts.request_body_timeout_ms);
    want(c, EPOLLIN);
    return c->rlen > 0;
}

/* A request refused on its head: a small body is read and dropped to keep
 * the connection; otherwise the answer goes at once and the connection
 * closes. */
static bool answer_early(struct cb__conn *c)
{
    const struct cb_http_head *h = &c->req->head;
    if (h->framing == CB_HTTP_NO_BODY)
        return start_send(c);
    if (h->framing == CB_HTTP_LENGTH && h->content_length <= EARLY_ANSWER_MIN_BODY &&
        !h->expect_continue)
        return read_body(c, CB__DISCARD);
    return answer_and_close(c);
}

static bool start_request(struct cb__conn *c, size_t len)
{
    struct cb__io *io = c->io;
    q_remove(c);
    c->req = cb__req_new(c, c->rbuf, &io->head);
    consume(c, len);
    const struct cb_http_head *h = &c->req->head;
    if (c->req->malformed)
        return answer_and_close(c);
    if (c->req->state == CB__REQ_READY)
        return answer_early(c);
    if (h->framing == CB_HTTP_NO_BODY)
        return finish_body(c);
    if (h->expect_continue && !send_continue(c)) {
        cb__conn_close(c);
        return false;
    }
    return read_body(c, CB__BODY);
}

/* Looks for a complete head in the buffer and starts its request. */
static bool take_head(struct cb__conn *c)
{
    char msg[96];
    struct cb_error err = {0};
    size_t len = cb__http_find_head_end(c->rbuf, c->rlen, &c->scan);
    if (len == 0 && c->rlen >= CB_HTTP_MAX_HEAD) {
        bool line = memchr(c->rbuf, '\n', c->rlen) != NULL;
        snprintf(msg, sizeof(msg), "request %s longer than %u bytes", line ? "head" : "line",
                 CB_HTTP_MAX_HEAD);
        return refuse_head(c, line ? 431 : 414, "invalid_request", msg);
    }
    if (len == 0)
        return false;
    int r = cb__http_parse_head(c->rbuf, len, &c->io->head, &err);
    if (r < 0) {
        unsigned status = cb__http_error_status(r);
        return refuse_head(c, status, status == 413 ? "payload_too_large" : "invalid_request",
                           err.msg);
    }
    return start_request(c, len);
}

/* Works through the buffered bytes as far as they go. */
static void process(struct cb__conn *c)
{
    for (;;) {
        bool more = false;
        if (c->state == CB__HEAD)
            more = take_head(c);
        else if (c->state == CB__BODY || c->state == CB__DISCARD)
            more = take_body(c);
        if (!more)
            return;
    }
}

static void grow_rbuf(struct cb__conn *c)
{
    size_t cap = c->rcap ? c->rcap * 2 : RBUF_INITIAL;
    if (cap > CB_HTTP_MAX_HEAD)
        cap = CB_HTTP_MAX_HEAD;
    c->rbuf = cb_xrealloc(c->rbuf, cap);
    c->rcap = cap;
}

static void conn_read_more(struct cb__conn *c)
{
    if (c->state == CB__LINGER)
        c->rlen = 0;
    /* A full buffer can only hold an unfinished head below the limit
     * (take_head refuses one at the limit); a body is read in big reads. */
    if (c->rlen == c->rcap || (c->state != CB__HEAD && c->rcap < CB_HTTP_MAX_HEAD))
        grow_rbuf(c);
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        cb__conn_close(c);
        return;
    }
    c->rlen += (size_t)n;
    if (c->state == CB__HEAD)
        c->got_bytes = true;
    process(c);
}

void cb__conn_event(struct cb__conn *c, uint32_t events)
{
    if (c->state == CB__SEND) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP) && after_write(c, write_some(c)))
            process(c);
        return;
    }
    if (c->state == CB__STREAM) {
        stream_event(c, events);
        return;
    }
    conn_read_more(c);
}

void cb__conn_expire(struct cb__conn *c)
{
    struct cb_http_server *s = c->io->srv;
    char msg[96];
    switch (c->q) {
    case CB__Q_HEAD:
        q_remove(c);
        count_timeout(c, c->got_bytes ? "head" : "idle");
        if (!c->got_bytes) {
            cb__conn_close(c);
            return;
        }
        snprintf(msg, sizeof(msg), "request head not complete within %u ms",
                 s->opts.request_head_timeout_ms);
        refuse_head(c, 408, "timeout", msg);
        return;
    case CB__Q_BODY:
        count_timeout(c, "body");
        snprintf(msg, sizeof(msg), "request body not complete within %u ms",
                 s->opts.request_body_timeout_ms);
        cb__req_fail(c->req, 408, "timeout", msg);
        answer_and_close(c);
        return;
    case CB__Q_SEND:
        count_timeout(c, "send");
        cb__conn_close(c);
        return;
    case CB__Q_STREAM:
    case CB__Q_STREAM_SOON:
        q_remove(c);
        pump(c);
        return;
    default:
        cb__conn_close(c);
        return;
    }
}

void cb__conn_handback(struct cb__conn *c)
{
    struct cb__io *io = c->io;
    prepare_send(c);
    c->send_rc = write_some(c);
    pthread_mutex_lock(&io->lock);
    bool was_empty = io->done == NULL;
    c->done_next = io->done;
    io->done = c;
    pthread_mutex_unlock(&io->lock);
    /* c now belongs to the I/O thread again. */
    uint64_t one = 1;
    if (was_empty && write(io->evfd, &one, sizeof(one)) < 0)
        cb_log(CB_LOG_ERROR, "waking an HTTP thread: %s", strerror(errno));
}

void cb__conn_resume(struct cb__conn *c)
{
    c->io->running--;
    if (atomic_load(&c->io->srv->stopping)) {
        cb__conn_close(c);
        return;
    }
    if (after_write(c, c->send_rc))
        process(c);
}

static struct cb__conn *new_conn(struct cb__io *io, int fd);

/* Answers a connection over a cap with 503. Nothing is read, logged or
 * counted as a request: a flood of refusals must stay cheap. The socket
 * then drains for LINGER_MS (a request the client sends meanwhile would
 * otherwise reset the connection and lose the answer), but only up to
 * REFUSED_LINGER_MAX at once; past that it closes at once. */
static void refuse_conn(struct cb__io *io, int fd, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse_conn(struct cb__io *io, int fd, const char *reason, const char *fmt, ...)
{
    struct cb_http_server *s = io->srv;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct cb__req *r = cb__req_refused(s, 503, "resource_exhausted", msg);
    r->res.retry_after = 1;
    r->recorded = true;
    cb__response_head(r, http_date(), true, false);
    struct iovec iov[2] = {{r->out, r->out_len}, {r->res.body, r->res.body_len}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t sent = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    cb__req_free(r);
    const char *labels[] = {reason};
    if (s->m_refused)
        cb_metric_inc(s->m_refused, labels, 1);
    cb__note_refusal(s, reason, msg);
    if (sent > 0 && atomic_fetch_add(&s->refused_lingering, 1) < REFUSED_LINGER_MAX) {
        struct cb__conn *c = new_conn(io, fd);
        c->refused = true;
        linger(c);
        return;
    }
    if (sent > 0)
        atomic_fetch_sub(&s->refused_lingering, 1);
    end_socket(io, fd, false);
}

static struct cb__conn *new_conn(struct cb__io *io, int fd)
{
    struct cb__conn *c = cb_xcalloc(1, sizeof(*c));
    c->io = io;
    c->fd = fd;
    c->q = -1;
    c->next = io->conns;
    if (io->conns)
        io->conns->prev = c;
    io->conns = c;
    if (io->srv->m_open)
        cb_metric_inc(io->srv->m_open, NULL, 1);
    return c;
}

void cb__conn_accept(struct cb__io *io, int fd, const struct sockaddr *sa, socklen_t salen,
                     bool is_unix)
{
    struct cb_http_server *s = io->srv;
    struct cb_peer_key key = {{0}};
    bool counted = !is_unix && cb__peer_key_from(sa, salen, &key);
    unsigned cap = s->max_connections + (is_unix ? UNIX_SLOTS : 0);
    if (atomic_fetch_add(&s->connections, 1) >= cap) {
        atomic_fetch_sub(&s->connections, 1);
        refuse_conn(io, fd, "limit", "the server is at its limit of %u connections; retry later",
                    s->max_connections);
        return;
    }
    if (counted && !cb__peers_acquire(s->peers, &key)) {
        atomic_fetch_sub(&s->connections, 1);
        refuse_conn(io, fd, "per_address",
                    "too many connections from this address (limit %u); close some and retry",
                    s->opts.max_connections_per_address);
        return;
    }
    int one = 1;
    if (!is_unix)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct cb__conn *c = new_conn(io, fd);
    c->peer = key;
    c->counted = counted;
    wait_head(c);
}
