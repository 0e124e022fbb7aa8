/* One connection of a container's proxy socket: HTTP/1.1 requests read
 * with the API server's parser (http/parse.h, http/chunked.h), each
 * authenticated with the socket's token and run through the proxy
 * pipeline, in the envelope form (POST /proxy) or the forward form
 * (METHOD /<absolute URL>). See proxysock.h. */
#include "containers/authority.h"
#include "containers/proxysock_internal.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/util.h"
#include "http/chunked.h"
#include "http/http.h"
#include "http/parse.h"
#include "proxy/pipeline.h"

#include <errno.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* A request head must arrive within this, from the connection or the
 * last answer (so it is also how long an idle connection is kept). */
#define HEAD_TIMEOUT_MS 10000
/* A request body must arrive within this, from the end of its head. */
#define BODY_TIMEOUT_MS 60000
/* An answer must be taken within this. */
#define PROXY_SEND_TIMEOUT_MS 60000
/* After an answer that left the request's body unread, what the client
 * still sends is read and dropped for this long before the close. */
#define CONN_LINGER_MS 5000
/* Bytes of an answer's head in the forward form (the upstream's headers
 * are bounded by the proxy: CB_FORWARD_MAX_HEADERS of at most
 * CB_FORWARD_MAX_HEADER_BYTES). */
#define MAX_ANSWER_HEAD (1024u * 1024)
/* Bytes of a JSON answer's head: a few fields of our own. */
#define MAX_JSON_HEAD 512

/* Where the reading of a request's body stands: made anew for each. */
struct req_body {
    size_t off;     /* x->body handed out up to here (chunked) */
    uint64_t total; /* chunked bytes decoded */
    uint64_t left;  /* a Content-Length body's bytes not yet read */
    struct cb_http_chunked chunks;
    bool done;      /* the whole body was read */
    bool too_large; /* the chunked body passed CB_CT_PROXY_MAX_BODY */
    int err;        /* reading it failed: -EPIPE, -EFBIG or a framing error */
    struct cb_error why;
    uint64_t deadline;
};

/* What one connection holds; its buffers serve one request after the
 * other. */
struct ex {
    struct cb__ct_conn *c;
    struct cb_ct_proxy *p;
    const struct cb__ct_dest *dest; /* a transparent connection's; NULL for the socket */
    SSL *ssl;                       /* an intercepted connection's TLS, or NULL */
    char in[CB_HTTP_MAX_HEAD];      /* bytes read and not yet used */
    size_t in_len;
    char raw[CB_HTTP_MAX_HEAD]; /* the current request's head */
    struct cb_http_head head;
    struct cb_buf body; /* the body read whole, or a piece of a chunked one */
    struct req_body rb; /* reading the current request's body */
    bool unread;        /* an answer went out before the request body was read */
    bool close;         /* end the connection after this answer */
    bool answered;      /* an answer went out: the next request is yet to come */
    bool head_sent;     /* the current answer's head went out */
    bool body_follows;  /* ... and its body streams after it */
    char request_id[37];
};

static uint64_t deadline_in(unsigned ms)
{
    return cb_now_mono_ns() + (uint64_t)ms * 1000000u;
}

/* Waits for `events` on fd until the deadline: true when ready. */
static bool wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = cb_now_mono_ns();
        if (now >= deadline)
            return false;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000));
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/* What an SSL call that returned r <= 0 waits for: POLLIN, POLLOUT, or 0
 * when the connection failed or ended. */
static short tls_wants(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
}

/* Reads what is there, up to n bytes (through TLS on an intercepted
 * connection). Returns the bytes read, or 0 when the connection ended,
 * failed or timed out. */
static size_t recv_some(struct ex *x, char *b, size_t n, uint64_t deadline)
{
    int fd = x->c->fd;
    for (;;) {
        short want = POLLIN;
        if (x->ssl != NULL) {
            int r = SSL_read(x->ssl, b, n > INT_MAX ? INT_MAX : (int)n);
            if (r > 0)
                return (size_t)r;
            if ((want = tls_wants(x->ssl, r)) == 0)
                return 0;
        } else {
            ssize_t r = recv(fd, b, n, 0);
            if (r > 0)
                return (size_t)r;
            if (r == 0 || (errno != EAGAIN && errno != EINTR))
                return 0;
        }
        if (!wait_fd(fd, want, deadline))
            return 0;
    }
}

/* A TLS record's most plaintext: buffers that fit go out as one record. */
#define TLS_RECORD 16384u

static bool send_tls(struct ex *x, const struct iovec *iov, int cnt, uint64_t deadline)
{
    char one[TLS_RECORD];
    struct iovec joined;
    size_t total = 0;
    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    if (cnt > 1 && total <= sizeof(one)) {
        joined = (struct iovec){one, 0};
        for (int i = 0; i < cnt; i++) {
            memcpy(one + joined.iov_len, iov[i].iov_base, iov[i].iov_len);
            joined.iov_len += iov[i].iov_len;
        }
        iov = &joined;
        cnt = 1;
    }
    for (int i = 0; i < cnt; i++) {
        for (size_t off = 0; off < iov[i].iov_len;) {
            size_t len = iov[i].iov_len - off;
            int r = SSL_write(x->ssl, (const char *)iov[i].iov_base + off,
                              len > INT_MAX ? INT_MAX : (int)len);
            short want = r > 0 ? 0 : tls_wants(x->ssl, r);
            if (r > 0)
                off += (size_t)r;
            else if (want == 0 || !wait_fd(x->c->fd, want, deadline))
                return false;
        }
    }
    return true;
}

static bool send_all(struct ex *x, struct iovec *iov, int cnt)
{
    int fd = x->c->fd;
    uint64_t deadline = deadline_in(PROXY_SEND_TIMEOUT_MS);
    if (x->ssl != NULL)
        return send_tls(x, iov, cnt, deadline);
    while (cnt > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w >= 0) {
            cnt = cb_iov_advance(&iov, cnt, (size_t)w);
            continue;
        }
        if ((errno != EAGAIN && errno != EINTR) || !wait_fd(fd, POLLOUT, deadline))
            return false;
    }
    return true;
}

/* ------------------------------ answers ------------------------------ */

/* Sends head and body; false (and the connection ends) when it failed. */
static bool send_answer(struct ex *x, struct cb_buf *head, const char *body, size_t len)
{
    struct iovec iov[2] = {{head->data, head->len}, {(void *)body, len}};
    if (send_all(x, iov, len > 0 ? 2 : 1))
        return true;
    x->close = true;
    return false;
}

/* Sends a JSON answer (body stolen; NULL, from a failed json_pack, gets
 * a fixed error text rather than no answer). */
static void send_json(struct ex *x, unsigned status, json_t *body, const char *allow)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        text = cb_xstrdup("{\"error\":\"the answer could not be written as JSON\"}");
    size_t len = strlen(text);
    struct cb_buf h;
    cb_buf_init(&h, MAX_JSON_HEAD);
    cb_buf_printf(&h,
                  "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                  "%s%s%s%s\r\n",
                  status, cb_http_reason(status), len, allow ? "Allow: " : "", allow ? allow : "",
                  allow ? "\r\n" : "", x->close ? "Connection: close\r\n" : "");
    send_answer(x, &h, text, len);
    cb_buf_free(&h);
    free(text);
}

static void send_http_error(struct ex *x, unsigned status, const char *msg)
{
    send_json(x, status, json_pack("{s:o}", "error", cb_json_text(msg, strlen(msg))), NULL);
}

/* Whether an upstream header must not be relayed: it frames the message
 * or manages the connection, which are this server's to say. */
static bool hop_by_hop(const char *name)
{
    static const char *const drop[] = {
        "connection", "content-length", "keep-alive",        "proxy-connection",
        "te",         "trailer",        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < CB_ARRAY_LEN(drop); i++)
        if (strcasecmp(name, drop[i]) == 0)
            return true;
    return false;
}

/* Whether name: value can be written as a field line as it is. */
static bool writable_field(const char *name, const char *v, size_t vlen)
{
    if (*name == '\0')
        return false;
    for (const char *c = name; *c; c++)
        if (!cb__http_is_tchar((unsigned char)*c))
            return false;
    for (size_t i = 0; i < vlen; i++)
        if (!cb__http_is_field_byte((unsigned char)v[i]))
            return false;
    return true;
}

static bool span_is(const char *raw, struct cb_http_span s, const char *text)
{
    return s.len == strlen(text) && memcmp(raw + s.off, text, s.len) == 0;
}

/* The head of a streamed answer (struct cb_proxy_sink): the upstream's
 * status and headers, framed by this server. A whole body goes with it
 * under its length; a body that streams follows in chunks (to an
 * HTTP/1.0 client: raw, ended by closing the connection). */
static bool sink_head(void *ud, long status, const json_t *headers, const char *body, size_t len,
                      bool whole)
{
    struct ex *x = ud;
    bool head_request = span_is(x->raw, x->head.method, "HEAD");
    bool has_body = status != 204 && status != 304;
    struct cb_buf h;
    cb_buf_init(&h, MAX_ANSWER_HEAD);
    cb_buf_printf(&h, "HTTP/1.1 %u %s\r\n", (unsigned)status, cb_http_reason((unsigned)status));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        bool length = strcasecmp(k, "content-length") == 0;
        if ((hop_by_hop(k) && !(length && head_request && has_body)) ||
            !writable_field(k, json_string_value(v), json_string_length(v)))
            continue;
        cb_buf_printf(&h, "%s: %s\r\n", k, json_string_value(v));
    }
    x->head_sent = true;
    x->body_follows = !whole && has_body && !head_request;
    if (whole && has_body && !head_request)
        cb_buf_printf(&h, "Content-Length: %zu\r\n", len);
    else if (x->body_follows && x->head.minor >= 1)
        cb_buf_puts(&h, "Transfer-Encoding: chunked\r\n");
    else if (x->body_follows)
        x->close = true;
    cb_buf_printf(&h, "%s\r\n", x->close ? "Connection: close\r\n" : "");
    bool sent = send_answer(x, &h, body, whole && has_body && !head_request ? len : 0);
    cb_buf_free(&h);
    return sent;
}

/* The next bytes of a streamed body, as a chunk to an HTTP/1.1 client. */
static bool sink_data(void *ud, const char *bytes, size_t len)
{
    struct ex *x = ud;
    if (!x->body_follows)
        return false;
    char size[24];
    struct iovec iov[3] = {{size, 0}, {(void *)bytes, len}, {(char *)"\r\n", 2}};
    bool chunked = x->head.minor >= 1;
    if (chunked)
        iov[0].iov_len = (size_t)snprintf(size, sizeof(size), "%zx\r\n", len);
    if (len > 0 && !send_all(x, chunked ? iov : iov + 1, chunked ? 3 : 1)) {
        x->close = true;
        return false;
    }
    return true;
}

/* Ends a streamed body that came to its end: the last chunk. */
static void end_body(struct ex *x)
{
    static const char last[] = "0\r\n\r\n";
    struct iovec iov = {(void *)last, sizeof(last) - 1};
    if (x->body_follows && x->head.minor >= 1 && !send_all(x, &iov, 1))
        x->close = true;
}

/* ------------------------------ requests ----------------------------- */

/* Reads until `in` holds a complete head and moves it to `raw`. Returns
 * its length, or 0 when the connection ended, timed out or sent a head
 * too large (answered 431). */
static size_t read_head(struct ex *x)
{
    struct cb_http_scan st = {0};
    uint64_t deadline = deadline_in(HEAD_TIMEOUT_MS);
    size_t n;
    /* After an answer the client has rarely sent its next request yet:
     * waiting first saves a read that would find nothing. */
    if (x->answered && x->in_len == 0 && (x->ssl == NULL || !SSL_has_pending(x->ssl)) &&
        !wait_fd(x->c->fd, POLLIN, deadline))
        return 0;
    while ((n = cb__http_find_head_end(x->in, x->in_len, &st)) == 0) {
        if (x->in_len == sizeof(x->in)) {
            x->close = true;
            send_http_error(x, 431, "request head larger than 16384 bytes");
            return 0;
        }
        size_t r = recv_some(x, x->in + x->in_len, sizeof(x->in) - x->in_len, deadline);
        if (r == 0)
            return 0;
        x->in_len += r;
    }
    memcpy(x->raw, x->in, n);
    memmove(x->in, x->in + n, x->in_len - n);
    x->in_len -= n;
    return n;
}

static void take_input(struct ex *x, size_t n)
{
    memmove(x->in, x->in + n, x->in_len - n);
    x->in_len -= n;
}

static void chunk_sink(void *ud, const char *data, size_t n)
{
    struct ex *x = ud;
    x->rb.total += n;
    if (x->rb.total > CB_CT_PROXY_MAX_BODY || cb_buf_append(&x->body, data, n) < 0)
        x->rb.too_large = true;
}

/* The next bytes of a chunked body into x->body, a feed at a time. */
static int next_chunk_piece(struct ex *x)
{
    cb_buf_reset(&x->body);
    x->rb.off = 0;
    while (x->body.len == 0 && !x->rb.done) {
        if (x->in_len == 0 && (x->in_len = recv_some(x, x->in, sizeof(x->in), x->rb.deadline)) == 0)
            return -EPIPE;
        size_t used = 0;
        int r = cb__http_chunked_feed(&x->rb.chunks, x->in, x->in_len, &used, chunk_sink, x,
                                      &x->rb.why);
        if (r < 0)
            return r;
        take_input(x, r == 1 ? used : x->in_len);
        if (x->rb.too_large)
            return -EFBIG;
        x->rb.done = r == 1;
    }
    return 0;
}

/* The request body as the pipeline reads it (struct cb_proxy_body). */
static int body_read(void *ud, char *buf, size_t cap, size_t *n)
{
    struct ex *x = ud;
    *n = 0;
    if (x->rb.err == 0 && x->head.framing == CB_HTTP_CHUNKED && x->rb.off == x->body.len)
        x->rb.err = next_chunk_piece(x);
    if (x->rb.err < 0)
        return x->rb.err;
    if (x->head.framing == CB_HTTP_CHUNKED) {
        *n = x->body.len - x->rb.off < cap ? x->body.len - x->rb.off : cap;
        memcpy(buf, x->body.data + x->rb.off, *n);
        x->rb.off += *n;
        return 0;
    }
    size_t want = x->rb.left < cap ? (size_t)x->rb.left : cap;
    if (want > 0 && x->in_len > 0) {
        *n = x->in_len < want ? x->in_len : want;
        memcpy(buf, x->in, *n);
        take_input(x, *n);
    } else if (want > 0 && (*n = recv_some(x, buf, want, x->rb.deadline)) == 0) {
        return x->rb.err = -EPIPE;
    }
    x->rb.left -= *n;
    x->rb.done = x->rb.left == 0;
    return 0;
}

/* Reads the request's body whole into x->body. Returns 0, or an error
 * of body_read. */
static int read_request_body(struct ex *x)
{
    struct cb_buf whole;
    cb_buf_init(&whole, CB_CT_PROXY_MAX_BODY);
    char piece[16384];
    size_t n = 0;
    int r;
    while ((r = body_read(x, piece, sizeof(piece), &n)) == 0 && n > 0)
        cb_buf_append(&whole, piece, n);
    cb_buf_free(&x->body);
    x->body = whole;
    return r;
}

/* The value of the first field called `name`, or NULL. */
static const char *head_field(const struct ex *x, const char *name, size_t *len)
{
    for (size_t i = 0; i < x->head.nfields; i++) {
        const struct cb_http_field *f = &x->head.fields[i];
        if (cb__http_name_is(x->raw + f->name.off, f->name.len, name)) {
            *len = f->value.len;
            return x->raw + f->value.off;
        }
    }
    return NULL;
}

/* Whether the path names an absolute http(s) URL: the forward form. */
static bool is_forward(const struct ex *x)
{
    const char *path = x->raw + x->head.path.off;
    size_t n = x->head.path.len;
    return (n > 8 && strncasecmp(path, "/http://", 8) == 0) ||
           (n > 9 && strncasecmp(path, "/https://", 9) == 0);
}

/* ---------------------------- the two forms --------------------------- */

/* Checks the envelope as the reference's serde types would: url and
 * method strings, headers a map of strings, body a string, the last two
 * optional or null. NULL when it is good. */
static const char *envelope_problem(const json_t *in)
{
    if (!json_is_object(in))
        return "invalid type: expected an object {\"url\", \"method\", \"headers\", \"body\"}";
    if (!json_is_string(json_object_get(in, "url")))
        return json_object_get(in, "url") ? "invalid type: `url` must be a string"
                                          : "missing field `url`";
    if (!json_is_string(json_object_get(in, "method")))
        return json_object_get(in, "method") ? "invalid type: `method` must be a string"
                                             : "missing field `method`";
    const json_t *h = json_object_get(in, "headers");
    const char *k;
    json_t *v;
    if (h != NULL && !json_is_null(h) && !json_is_object(h))
        return "invalid type: `headers` must be an object of strings";
    json_object_foreach((json_t *)h, k, v)
    {
        if (!json_is_string(v))
            return "invalid type: every value of `headers` must be a string";
    }
    const json_t *b = json_object_get(in, "body");
    if (b != NULL && !json_is_null(b) && !json_is_string(b))
        return "invalid type: `body` must be a string or null";
    return NULL;
}

static void serve_envelope(struct ex *x)
{
    json_error_t je;
    json_t *in = json_loadb(x->body.data ? x->body.data : "", x->body.len,
                            JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (in == NULL) {
        char msg[JSON_ERROR_TEXT_LENGTH + 64];
        snprintf(msg, sizeof(msg), "%s at line %d column %d", je.text, je.line, je.column);
        send_http_error(x, 400, msg);
        return;
    }
    const char *bad = envelope_problem(in);
    if (bad != NULL) {
        json_decref(in);
        send_http_error(x, 400, bad);
        return;
    }
    struct cb_ct_proxy *p = x->p;
    json_t *env = cb_proxy_container_request(p->proxy, p->manifest, p->granted, in, x->request_id);
    json_decref(in);
    json_t *ok = json_object_get(env, "ok");
    if (ok != NULL)
        send_json(x, 200, json_incref(ok), NULL);
    else
        send_json(x, 403, json_incref(env), NULL);
    json_decref(env);
}

/* Adds the request's header fields to `headers` with lower-case names,
 * repeats joined, the token left out. Values are bytes (obs-text
 * included), kept as they came. */
static void forward_headers(const struct ex *x, json_t *headers)
{
    for (size_t i = 0; i < x->head.nfields; i++) {
        const struct cb_http_field *f = &x->head.fields[i];
        const char *name = x->raw + f->name.off, *val = x->raw + f->value.off;
        if (cb__http_name_is(name, f->name.len, "proxy-authorization"))
            continue;
        char *k = cb_xstrndup(name, f->name.len);
        for (char *c = k; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        const json_t *old = json_object_get(headers, k);
        if (old == NULL) {
            json_object_set_new_nocheck(headers, k, json_stringn_nocheck(val, f->value.len));
        } else {
            const char *sep = strcmp(k, "cookie") == 0 ? "; " : ", ";
            struct cb_buf b;
            cb_buf_init(&b, SIZE_MAX);
            cb_buf_append(&b, json_string_value(old), json_string_length(old));
            cb_buf_puts(&b, sep);
            cb_buf_append(&b, val, f->value.len);
            json_object_set_new_nocheck(headers, k, json_stringn_nocheck(b.data, b.len));
            cb_buf_free(&b);
        }
        free(k);
    }
}

/* Answers a request whose body could not be read, when nothing was
 * answered yet. */
static void refuse_body(struct ex *x)
{
    x->close = true;
    x->unread = x->rb.err != -EPIPE;
    if (x->rb.err == -EFBIG)
        send_http_error(x, 413, "request body larger than 10 MiB");
    else if (x->rb.err != -EPIPE)
        send_http_error(x, cb__http_error_status(x->rb.err), x->rb.why.msg);
}

/* Sends the request in x to url[0..len) through the proxy pipeline, its
 * body read as it goes, and relays the answer as it comes: the one path
 * of the forward form and of transparent plain HTTP. */
static void forward(struct ex *x, const char *url, size_t url_len)
{
    const struct cb_http_head *h = &x->head;
    json_t *headers = json_object();
    forward_headers(x, headers);
    json_t *params = json_pack("{s:s%,s:s%,s:o}", "url", url, url_len, "method",
                               x->raw + h->method.off, (size_t)h->method.len, "headers", headers);
    /* "Content-Length: 0" is a body too: an empty one is still sent with
     * its length, as some upstreams require on POST. */
    size_t n = 0;
    bool has_body = h->framing != CB_HTTP_NO_BODY || head_field(x, "content-length", &n) != NULL;
    struct cb_proxy_body body = {body_read,
                                 h->framing == CB_HTTP_LENGTH ? (int64_t)h->content_length : -1, x};
    struct cb_ct_proxy *p = x->p;
    struct cb_proxy_sink sink = {sink_head, sink_data, x};
    x->head_sent = x->body_follows = false;
    json_t *env = cb_proxy_container_stream(p->proxy, p->manifest, p->granted, params,
                                            x->request_id, &sink, has_body ? &body : NULL);
    json_decref(params);
    bool ok = json_object_get(env, "ok") != NULL;
    /* A body left unread would be taken for the next request. */
    if (!x->rb.done)
        x->close = x->unread = true;
    if (!x->head_sent && x->rb.err < 0)
        refuse_body(x);
    else if (!x->head_sent)
        send_json(x, 403, json_incref(env), NULL);
    else if (ok)
        end_body(x);
    else
        x->close = true; /* the body was cut off: the client must see it end early */
    json_decref(env);
}

static void serve_forward(struct ex *x)
{
    const struct cb_http_head *h = &x->head;
    size_t url_off = h->path.off + 1, url_end = h->target.off + h->target.len;
    forward(x, x->raw + url_off, url_end - url_off);
}

/* ----------------------------- a request ----------------------------- */

/* Answers an error before the body was read: a body the client still
 * sends would be taken for the next request, so the connection ends. */
static void refuse_request(struct ex *x, unsigned status, const char *msg, const char *allow)
{
    if (x->head.framing != CB_HTTP_NO_BODY)
        x->close = x->unread = true;
    send_json(x, status, json_pack("{s:s}", "error", msg), allow);
}

/* Counts the request and readies its body: read whole into x->body, or
 * (`stream`) left to body_read. False when it is not to be served
 * (answered already, or the connection ends). */
static bool take_request(struct ex *x, bool stream)
{
    if (!cb__ct_proxy_note_request(x->p)) {
        x->close = true;
        return false;
    }
    cb_buf_reset(&x->body);
    uint64_t left = x->head.framing == CB_HTTP_LENGTH ? x->head.content_length : 0;
    x->rb = (struct req_body){
        .left = left,
        .done =
            x->head.framing == CB_HTTP_NO_BODY || (x->head.framing == CB_HTTP_LENGTH && left == 0),
        .deadline = deadline_in(BODY_TIMEOUT_MS),
    };
    int r = x->rb.left > CB_CT_PROXY_MAX_BODY ? -EFBIG : 0;
    if (r == 0 && x->head.expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {(void *)cont, sizeof(cont) - 1};
        r = send_all(x, &iov, 1) ? 0 : -EPIPE;
    }
    if (r == 0 && !stream)
        r = read_request_body(x);
    if (r < 0) {
        x->rb.err = r;
        refuse_body(x);
        return false;
    }
    cb_uuid_v4(x->request_id);
    return true;
}

/* Routes, authenticates and answers the request in x->head. */
static void serve_request(struct ex *x)
{
    bool forward = is_forward(x);
    if (!forward && !span_is(x->raw, x->head.path, "/proxy")) {
        refuse_request(x, 404,
                       "not found: send POST /proxy with a JSON envelope, or METHOD "
                       "http://localhost/<absolute http(s) URL>",
                       NULL);
        return;
    }
    if (!forward && !span_is(x->raw, x->head.method, "POST")) {
        refuse_request(x, 405, "method not allowed: /proxy takes POST", "POST");
        return;
    }
    size_t len = 0;
    const char *auth = head_field(x, forward ? "proxy-authorization" : "authorization", &len);
    if (!cb__ct_proxy_token_ok(x->p, auth, len)) {
        refuse_request(x, 401, "unauthorized", NULL);
        return;
    }
    if (!take_request(x, forward))
        return;
    if (forward)
        serve_forward(x);
    else
        serve_envelope(x);
}

/* ----------------------- transparent connections ---------------------- */

/* The URL a transparent request goes to, into url; false with the reason
 * in why when it is refused. The proxy connects to the name only: the
 * pool's name for a pool address, which Host (or an absolute target) must
 * repeat; for any other address, that address, which Host must name. A
 * request sent to the listener itself (an explicit proxy client) names
 * its URL in absolute form. */
static bool transparent_url(struct ex *x, struct cb_buf *url, char *why, size_t cap)
{
    const struct cb__ct_dest *d = x->dest;
    const struct cb_http_head *h = &x->head;
    const char *t = x->raw + h->target.off;
    bool tls = x->ssl != NULL;
    uint16_t default_port = tls ? 443 : 80;
    if (h->target.len > 0 && t[0] != '/') {
        /* Absolute form: "http://authority/..." or "https://...". */
        const char *auth = memchr(t, '/', h->target.len);
        size_t skip = auth ? (size_t)(auth - t) + 2 : h->target.len, alen = 0;
        while (skip + alen < h->target.len && t[skip + alen] != '/' && t[skip + alen] != '?')
            alen++;
        bool https = h->target.len > 5 && strncasecmp(t, "https", 5) == 0;
        if (!d->explicit_proxy &&
            !cb__ct_authority_names(t + skip, alen, d->name, d->port, https ? 443 : 80)) {
            snprintf(why, cap,
                     "blocked: the request's URL does not name the destination %s port %u", d->name,
                     (unsigned)d->port);
            return false;
        }
        cb_buf_append(url, t, h->target.len);
        return true;
    }
    if (d->explicit_proxy) {
        snprintf(why, cap,
                 "blocked: a request to the proxy itself must name an absolute http(s) URL or be "
                 "a CONNECT");
        return false;
    }
    size_t hlen = 0;
    const char *host = head_field(x, "host", &hlen);
    if (host == NULL || !cb__ct_authority_names(host, hlen, d->name, d->port, default_port)) {
        snprintf(why, cap,
                 "blocked: the Host header %s the destination %s port %u (only addresses the "
                 "container's DNS gave for that name are accepted)",
                 host ? "does not match" : "is missing for", d->name, (unsigned)d->port);
        return false;
    }
    bool v6 = !d->from_pool && strchr(d->name, ':') != NULL;
    cb_buf_printf(url, "%s://%s%s%s", tls ? "https" : "http", v6 ? "[" : "", d->name,
                  v6 ? "]" : "");
    if (d->port != default_port)
        cb_buf_printf(url, ":%u", (unsigned)d->port);
    cb_buf_append(url, t, h->target.len);
    return true;
}

/* A plain-HTTP request on a transparent connection. */
static void serve_transparent(struct ex *x)
{
    struct cb_buf url;
    char why[CB_EGRESS_NAME_MAX * 2 + 256];
    cb_buf_init(&url, CB_HTTP_MAX_TARGET + CB_EGRESS_NAME_MAX + 32);
    if (!transparent_url(x, &url, why, sizeof(why))) {
        cb__ct_egress_refuse(x->c, x->dest, why);
        refuse_request(x, 403, why, NULL);
    } else if (take_request(x, true)) {
        forward(x, url.data, url.len);
    }
    cb_buf_free(&url);
}

/* A CONNECT on a transparent connection (head[0..n), which the HTTP
 * parser does not take: its target is an authority). "CONNECT
 * host:port HTTP/1.x": refused with 403 unless the allowlist admits host,
 * else answered 200 and passed on as a TLS tunnel. The connection ends
 * with it. */
static void serve_connect(struct ex *x, size_t n)
{
    x->close = true;
    const char *line = x->raw + 8, *end = memchr(line, '\r', n - 8);
    const char *sp = end ? memchr(line, ' ', (size_t)(end - line)) : NULL;
    const char *host;
    size_t hlen;
    uint16_t port;
    if (sp == NULL || (size_t)(end - sp) != 9 || memcmp(sp + 1, "HTTP/1.", 7) != 0 ||
        !cb__ct_authority_split(line, (size_t)(sp - line), &host, &hlen, &port) || port == 0 ||
        !cb__ct_host_bytes(host, hlen)) {
        send_http_error(x, 400, "CONNECT takes host:port, as in CONNECT example.com:443 HTTP/1.1");
        return;
    }
    char name[CB_EGRESS_NAME_MAX + 1], why[CB_EGRESS_NAME_MAX + 128];
    memcpy(name, host, hlen);
    name[hlen] = '\0';
    if (!cb_proxy_container_allows(x->p->proxy, x->p->manifest, name, hlen)) {
        snprintf(why, sizeof(why), "blocked: host %s is not in the container's allowlist", name);
        cb__ct_egress_refuse(x->c, x->dest, why);
        send_http_error(x, 403, why);
        return;
    }
    if (x->in_len > 0) {
        send_http_error(x, 400, "send the tunnel's bytes after the 200 answer to CONNECT");
        return;
    }
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    struct iovec iov = {(void *)ok, sizeof(ok) - 1};
    if (send_all(x, &iov, 1))
        cb__ct_egress_tunnel(x->c, x->dest, name, port);
}

/* Ends a connection whose client may still be sending a body the answer
 * did not wait for: closing with unread bytes would reset the
 * connection, and the answer could be lost with it. So the sending side
 * is shut and what comes is dropped, until the client closes too or
 * CONN_LINGER_MS have passed. */
static void drain_before_close(struct ex *x)
{
    int fd = x->c->fd;
    if (x->ssl != NULL)
        SSL_shutdown(x->ssl);
    shutdown(fd, SHUT_WR);
    uint64_t deadline = deadline_in(CONN_LINGER_MS);
    char drop[16384];
    while (wait_fd(fd, POLLIN, deadline) && recv(fd, drop, sizeof(drop), 0) > 0)
        ;
}

void cb__ct_conn_serve(struct cb__ct_conn *c, const struct cb__ct_dest *d, SSL *ssl)
{
    struct ex *x = cb_xcalloc(1, sizeof(*x));
    x->c = c;
    x->p = c->p;
    x->dest = d;
    x->ssl = ssl;
    cb_buf_init(&x->body, CB_CT_PROXY_MAX_BODY);
    size_t n;
    while (!x->close && (n = read_head(x)) > 0) {
        if (d != NULL && ssl == NULL && n > 8 && memcmp(x->raw, "CONNECT ", 8) == 0) {
            serve_connect(x, n);
            break;
        }
        struct cb_error err = {0};
        int r = cb__http_parse_head(x->raw, n, &x->head, &err);
        x->close = r < 0 || x->head.minor == 0 || !x->head.keep_alive;
        if (r < 0)
            send_http_error(x, cb__http_error_status(r), err.msg);
        else if (d != NULL)
            serve_transparent(x);
        else
            serve_request(x);
        x->answered = true;
        if (cb__ct_proxy_stopped(x->p))
            break;
    }
    if (x->unread)
        drain_before_close(x);
    cb_buf_free(&x->body);
    free(x);
}
