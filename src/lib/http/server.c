#include "http/server.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "http/limiter.h"
#include "http/listen.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IDLE_CONNECTION_TIMEOUT_S 60
#define MAX_CONNECTIONS           4096

struct cb_http_server {
    struct cb_http_server_options opts;
    const struct cb_router *router;
    struct MHD_Daemon *tcp;
    struct MHD_Daemon *unix_daemon;
    int tcp_fd;
    int unix_fd;
    char *unix_path;
    uint16_t port;
    struct cb_limiter *limiter;
    struct cb_metric *m_requests;
    struct cb_metric *m_duration;
    atomic_uint inflight;
};

enum req_state {
    REQ_READING, /* headers seen, body being read */
    REQ_RUNNING, /* handed to a limiter worker; connection suspended */
    REQ_READY,   /* response filled in, waiting to be queued */
};

struct req_ctx {
    struct cb_http_server *srv;
    struct cb_http_request req;
    struct cb_http_response res;
    const struct cb_route *route;
    struct cb_buf body;
    struct cb_limiter_job job;
    uint64_t start_ns;
    enum req_state state;
    bool recorded; /* metrics and access log written */
    char request_id[37];
    char *path;
};

static void new_request_id(char out[37])
{
    unsigned char b[16];
    char hex[33];
    cb_random_bytes(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40; /* UUID version 4 */
    b[8] = (b[8] & 0x3f) | 0x80;
    cb_hex_encode(b, sizeof(b), hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static void ready_error(struct req_ctx *c, unsigned status, const char *code, const char *msg)
{
    cb_http_respond_error(&c->res, status, code, "%s", msg);
    c->state = REQ_READY;
}

/* Bearer auth with a constant-time compare of the token. */
static bool authorized(struct req_ctx *c)
{
    const char *h = cb_http_header(&c->req, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = c->srv->opts.auth_token;
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return false;
    return cb_const_time_eq(h + 7, strlen(h + 7), token, strlen(token));
}

static bool is_json_content_type(const char *ct)
{
    static const char want[] = "application/json";
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    ct += sizeof(want) - 1;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static bool declared_too_large(struct req_ctx *c)
{
    const char *cl = cb_http_header(&c->req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n;
    return cl != NULL && cb_parse_u64(cl, strlen(cl), &n) == 0 && n > c->srv->opts.max_body_bytes;
}

static void too_large(struct req_ctx *c)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes",
             c->srv->opts.max_body_bytes);
    ready_error(c, 413, "payload_too_large", msg);
}

/* Decides what can be decided from the request line and headers alone:
 * routing, auth, declared size and content type. */
static void begin(struct req_ctx *c)
{
    struct cb_http_server *s = c->srv;
    enum cb_route_result rr = cb_router_match(s->router, c->req.method, c->req.path, &c->route,
                                              &c->req, c->res.allow, sizeof(c->res.allow));
    if (rr == CB_ROUTE_NOT_FOUND) {
        ready_error(c, 404, "not_found", "no route for this path");
        return;
    }
    if (rr == CB_ROUTE_METHOD_NOT_ALLOWED) {
        char msg[160];
        snprintf(msg, sizeof(msg), "method %.16s not allowed here; allowed: %s", c->req.method,
                 c->res.allow);
        ready_error(c, 405, "method_not_allowed", msg);
        return;
    }
    c->req.route = c->route->pattern;
    if (!(c->route->flags & CB_ROUTE_PUBLIC) && !authorized(c))
        ready_error(c, 401, "auth_required", "unauthorized");
    else if (declared_too_large(c))
        too_large(c);
    else if ((c->route->flags & CB_ROUTE_JSON) &&
             !is_json_content_type(cb_http_header(&c->req, MHD_HTTP_HEADER_CONTENT_TYPE)))
        ready_error(c, 415, "unsupported_media_type",
                    "expected request header Content-Type: application/json");
}

static void parse_json_body(struct req_ctx *c)
{
    json_error_t je;
    c->req.json = json_loadb(c->body.data ? c->body.data : "", c->body.len,
                             JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (c->req.json == NULL) {
        char msg[320];
        snprintf(msg, sizeof(msg), "malformed JSON at line %d, column %d: %s", je.line, je.column,
                 je.text);
        ready_error(c, 400, "invalid_request", msg);
    }
}

static void run_handler(void *arg)
{
    struct req_ctx *c = arg;
    c->route->handler(&c->req, &c->res);
    if (c->res.status == 0)
        cb_http_respond_error(&c->res, 500, "internal_error", "handler produced no response");
    c->state = REQ_READY;
}

static void job_run(void *arg)
{
    struct req_ctx *c = arg;
    run_handler(c);
    MHD_resume_connection(c->req.conn);
}

static void job_reject(void *arg)
{
    struct req_ctx *c = arg;
    cb_http_respond_error(&c->res, 503, "resource_exhausted",
                          "server busy: all %u execution slots are in use; retry later",
                          c->srv->opts.max_concurrent);
    c->res.retry_after = 1;
    c->state = REQ_READY;
    MHD_resume_connection(c->req.conn);
}

static void free_body(void *p)
{
    free(p);
}

/* Counts the request in the metrics and writes its access log line, once:
 * when its response is queued, so a client that has its answer sees it in
 * /metrics. */
static void record(struct req_ctx *c)
{
    if (c->recorded)
        return;
    c->recorded = true;
    struct cb_http_server *s = c->srv;
    double secs = (double)(cb_now_mono_ns() - c->start_ns) / 1e9;
    char status[8];
    char dur[32];
    snprintf(status, sizeof(status), "%u", c->res.status);
    snprintf(dur, sizeof(dur), "%.3f", secs * 1000.0);
    const char *route = c->route ? c->route->pattern : "unmatched";
    const char *labels[] = {route, status};
    if (s->m_requests) {
        cb_metric_inc(s->m_requests, labels, 1);
        cb_metric_observe(s->m_duration, labels, secs);
    }
    const char *fields[] = {"request_id",  c->request_id, "method", c->req.method,
                            "path",        c->path,       "status", status,
                            "duration_ms", dur,           NULL};
    cb_log_fields(c->res.status >= 500 ? CB_LOG_WARN : CB_LOG_INFO, "http request", fields);
}

static enum MHD_Result queue(struct req_ctx *c)
{
    struct cb_http_response *r = &c->res;
    char *body = r->body ? r->body : cb_xstrdup("");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(r->body_len, body, free_body);
    r->body = NULL;
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", c->request_id);
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->allow[0] && r->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->retry_after) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    record(c);
    enum MHD_Result ret = MHD_queue_response(c->req.conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Runs a request whose body is complete. */
static enum MHD_Result dispatch(struct req_ctx *c)
{
    if (c->route->flags & CB_ROUTE_JSON)
        parse_json_body(c);
    if (c->state == REQ_READY)
        return queue(c);
    c->req.body = c->body.data;
    c->req.body_len = c->body.len;
    if (c->route->flags & CB_ROUTE_PUBLIC) {
        run_handler(c);
        return queue(c);
    }
    c->state = REQ_RUNNING;
    c->job = (struct cb_limiter_job){job_run, job_reject, c, 0, NULL};
    MHD_suspend_connection(c->req.conn);
    if (cb_limiter_submit(c->srv->limiter, &c->job) < 0)
        job_reject(c);
    return MHD_YES;
}

static struct req_ctx *new_ctx(struct cb_http_server *s, struct MHD_Connection *conn,
                               const char *url, const char *method)
{
    struct req_ctx *c = cb_xcalloc(1, sizeof(*c));
    c->srv = s;
    c->start_ns = cb_now_mono_ns();
    c->state = REQ_READING;
    new_request_id(c->request_id);
    c->path = cb_xstrdup(url);
    c->req.method = method;
    c->req.path = c->path;
    c->req.request_id = c->request_id;
    c->req.conn = conn;
    c->req.app = s->opts.app;
    cb_buf_init(&c->body, s->opts.max_body_bytes);
    atomic_fetch_add(&s->inflight, 1);
    return c;
}

/* Bodies up to this size are read even when the answer is already known:
 * answering before a small body is sent makes clients that write the body
 * after the headers see a reset connection. */
#define EARLY_ANSWER_MIN_BODY (64u * 1024)

/* Whether the request announces a body worth refusing unread: chunked, or
 * a Content-Length above EARLY_ANSWER_MIN_BODY. */
static bool has_large_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    uint64_t n = 0;
    if (te != NULL)
        return true;
    return cl != NULL && cb_parse_u64(cl, strlen(cl), &n) == 0 && n > EARLY_ANSWER_MIN_BODY;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct req_ctx *c = *con_cls;
    if (c == NULL) {
        c = new_ctx(cls, conn, url, method);
        *con_cls = c;
        begin(c);
        /* An early verdict on a request with a large body is sent at once,
         * so the body is never read. Otherwise answer on a later call:
         * queueing a response on the first call costs the connection its
         * keep-alive. */
        return c->state == REQ_READY && has_large_body(conn) ? queue(c) : MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (c->state == REQ_READING && cb_buf_append(&c->body, upload_data, *upload_data_size) < 0)
            too_large(c);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->state == REQ_READING)
        return dispatch(c);
    return c->state == REQ_READY ? queue(c) : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct cb_http_server *s = cls;
    struct req_ctx *c = *con_cls;
    if (c == NULL)
        return;
    if (c->res.status == 0)
        c->res.status = 499; /* the client went away before an answer */
    record(c);
    cb_router_free_params(&c->req);
    json_decref(c->req.json);
    cb_buf_free(&c->body);
    free(c->res.body);
    free(c->path);
    free(c);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    cb_log(CB_LOG_DEBUG, "libmicrohttpd: %s", msg);
}

static struct MHD_Daemon *start_daemon(struct cb_http_server *s, int fd, unsigned threads)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)IDLE_CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)MAX_CONNECTIONS, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_END);
}

static void register_metrics(struct cb_http_server *s)
{
    static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30};
    if (s->opts.metrics == NULL)
        return;
    s->m_requests = cb_metrics_counter(s->opts.metrics, "clawbox_http_requests_total",
                                       "HTTP requests served, by route pattern and status.",
                                       "route,status", 512);
    s->m_duration = cb_metrics_histogram(s->opts.metrics, "clawbox_http_request_duration_seconds",
                                         "Time from request start to response completion.",
                                         "route,status", buckets, CB_ARRAY_LEN(buckets), 512);
}

static int listen_all(struct cb_http_server *s, struct cb_error *err)
{
    int r = cb_listen_tcp(s->opts.host, s->opts.port, &s->tcp_fd, err);
    if (r < 0)
        return r;
    s->port = cb_listen_port(s->tcp_fd);
    if (s->opts.unix_socket == NULL)
        return 0;
    r = cb_listen_unix(s->opts.unix_socket, &s->unix_fd, err);
    if (r == 0)
        s->unix_path = cb_xstrdup(s->opts.unix_socket);
    return r;
}

static unsigned io_threads(const struct cb_http_server_options *o)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (o->threads > 0)
        return o->threads;
    return n > 0 ? (unsigned)n : 1;
}

int cb_http_server_start(const struct cb_http_server_options *opts, const struct cb_router *router,
                         struct cb_http_server **out, struct cb_error *err)
{
    struct cb_http_server *s = cb_xcalloc(1, sizeof(*s));
    s->opts = *opts;
    s->router = router;
    s->tcp_fd = s->unix_fd = -1;
    register_metrics(s);
    int r = listen_all(s, err);
    if (r == 0)
        r = cb_limiter_new(opts->max_concurrent, opts->max_queued, opts->queue_timeout_ms,
                           &s->limiter, err);
    if (r < 0)
        goto fail;
    /* A started daemon owns its listening socket and closes it on stop. */
    s->tcp = start_daemon(s, s->tcp_fd, io_threads(opts));
    if (s->tcp != NULL)
        s->tcp_fd = -1;
    if (s->tcp != NULL && s->unix_fd >= 0) {
        s->unix_daemon = start_daemon(s, s->unix_fd, 1);
        if (s->unix_daemon != NULL)
            s->unix_fd = -1;
    }
    if (s->tcp == NULL || s->unix_fd >= 0) {
        r = cb_error_set(err, -EIO, "libmicrohttpd failed to start");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    cb_http_server_stop(s);
    return r;
}

uint16_t cb_http_server_port(const struct cb_http_server *s)
{
    return s->port;
}

void cb_http_server_quiesce(struct cb_http_server *s)
{
    /* MHD hands the listening sockets back; closing them refuses new
     * connections at the kernel. */
    struct MHD_Daemon *daemons[] = {s->tcp, s->unix_daemon};
    for (size_t i = 0; i < CB_ARRAY_LEN(daemons); i++) {
        MHD_socket fd = daemons[i] ? MHD_quiesce_daemon(daemons[i]) : MHD_INVALID_SOCKET;
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

unsigned cb_http_server_drain(struct cb_http_server *s, uint64_t grace_ms)
{
    uint64_t deadline = cb_now_mono_ns() + grace_ms * 1000000u;
    struct timespec tick = {0, 10 * 1000000};
    while (atomic_load(&s->inflight) > 0 && cb_now_mono_ns() < deadline)
        nanosleep(&tick, NULL);
    return atomic_load(&s->inflight);
}

void cb_http_server_stop(struct cb_http_server *s)
{
    if (s == NULL)
        return;
    if (s->unix_path)
        unlink(s->unix_path);
    if (atomic_load(&s->inflight) > 0) {
        /* Handlers still running past the grace period: libmicrohttpd
         * cannot stop with suspended connections, and the workers cannot
         * be joined. The process is about to exit, so leave them be. */
        return;
    }
    if (s->unix_daemon)
        MHD_stop_daemon(s->unix_daemon);
    if (s->tcp)
        MHD_stop_daemon(s->tcp);
    cb_limiter_free(s->limiter);
    if (s->tcp_fd >= 0)
        close(s->tcp_fd);
    if (s->unix_fd >= 0)
        close(s->unix_fd);
    free(s->unix_path);
    free(s);
}
