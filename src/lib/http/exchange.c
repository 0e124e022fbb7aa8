/* The request exchange: what a parsed request means (route, auth, size,
 * content type), where it runs (inline for public routes, on a limiter
 * worker otherwise) and how it is recorded (access log, metrics). */
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "http/internal.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Streamed responses open at once, server-wide. Each holds its connection
 * and whatever its producer keeps open (a log file), and costs its I/O
 * thread a call every CB_HTTP_STREAM_POLL_MS: beyond this many, a handler's
 * stream is refused with 503 rather than letting followers eat the
 * descriptor reserve (see FD_RESERVE in server.c). */
#define MAX_STREAMS 256u

void cb__req_fail(struct cb__req *r, unsigned status, const char *code, const char *msg)
{
    cb__http_stream_drop(&r->res.stream);
    cb_http_respond_error(&r->res, status, code, "%s", msg);
    r->state = CB__REQ_READY;
}

/* Bearer auth with a constant-time compare of the token. */
static bool authorized(struct cb__req *r)
{
    const char *h = cb__http_header(&r->req, "Authorization");
    const char *token = r->srv->opts.auth_token;
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return false;
    return cb_const_time_eq(h + 7, strlen(h + 7), token, strlen(token));
}

static bool is_json_content_type(const char *ct)
{
    static const char want[] = "application/json";
    if (ct == NULL)
        return false;
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    ct += sizeof(want) - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* The request's body limit, its route's once it is routed. */
static size_t body_limit(const struct cb__req *r)
{
    const struct cb_http_server_options *o = &r->srv->opts;
    if (r->route != NULL && (r->route->flags & CB_ROUTE_RAW) && o->max_raw_body_bytes > 0)
        return o->max_raw_body_bytes;
    return o->max_body_bytes;
}

static void too_large(struct cb__req *r)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes", body_limit(r));
    cb__req_fail(r, 413, "payload_too_large", msg);
}

/* Decides what can be decided from the request line and headers alone:
 * routing, auth, declared size and content type. */
static void begin(struct cb__req *r)
{
    struct cb_http_server *s = r->srv;
    enum cb_route_result rr = cb_router_match(s->router, r->req.method, r->req.path, &r->route,
                                              &r->req, r->res.allow, sizeof(r->res.allow));
    if (rr == CB_ROUTE_NOT_FOUND) {
        cb__req_fail(r, 404, "not_found", "no route for this path");
        return;
    }
    if (rr == CB_ROUTE_METHOD_NOT_ALLOWED) {
        char msg[160];
        snprintf(msg, sizeof(msg), "method %.16s not allowed here; allowed: %s", r->req.method,
                 r->res.allow);
        cb__req_fail(r, 405, "method_not_allowed", msg);
        return;
    }
    r->req.route = r->route->pattern;
    r->body.max = body_limit(r);
    if (!(r->route->flags & CB_ROUTE_PUBLIC) && !authorized(r))
        cb__req_fail(r, 401, "auth_required", "unauthorized");
    else if (r->head.framing == CB_HTTP_LENGTH && r->head.content_length > r->body.max)
        too_large(r);
    else if ((r->route->flags & CB_ROUTE_JSON) &&
             !is_json_content_type(cb__http_header(&r->req, "Content-Type")))
        cb__req_fail(r, 415, "unsupported_media_type",
                     "expected request header Content-Type: application/json");
}

static struct cb__req *alloc_req(struct cb_http_server *s)
{
    struct cb__req *r = cb_xcalloc(1, sizeof(*r));
    r->srv = s;
    r->start_ns = cb_now_mono_ns();
    r->state = CB__REQ_READING;
    cb_uuid_v4(r->request_id);
    r->req.request_id = r->request_id;
    r->req.app = r->srv->opts.app;
    cb_buf_init(&r->body, r->srv->opts.max_body_bytes);
    r->body_fd = -1;
    r->req.body_fd = -1;
    return r;
}

/* Copies the head and NUL-terminates the method, the names and the values
 * in the copy (each is followed by a byte of the head that is not part of
 * it: a space, the colon, whitespace or the line end). */
static char *copy_head(const char *buf, const struct cb_http_head *h)
{
    char *raw = cb_xmalloc(h->len + 1);
    memcpy(raw, buf, h->len);
    raw[h->len] = '\0';
    raw[h->method.off + h->method.len] = '\0';
    for (size_t i = 0; i < h->nfields; i++) {
        raw[h->fields[i].name.off + h->fields[i].name.len] = '\0';
        raw[h->fields[i].value.off + h->fields[i].value.len] = '\0';
    }
    return raw;
}

struct cb__req *cb__req_new(struct cb__conn *c, const char *buf, const struct cb_http_head *h)
{
    struct cb__req *r = alloc_req(c->io->srv);
    struct cb_error err = {0};
    r->conn = c;
    r->head = *h;
    r->raw = copy_head(buf, h);
    r->req.raw = r->raw;
    r->req.head = &r->head;
    r->req.method = r->raw + h->method.off;
    r->counted = true;
    atomic_fetch_add(&r->srv->inflight, 1);
    if (cb__http_decode_path(buf + h->path.off, h->path.len, &r->path, &err) < 0) {
        r->path = cb_xstrdup("-");
        r->req.path = r->path;
        r->malformed = true;
        cb__req_fail(r, 400, "invalid_request", err.msg);
        return r;
    }
    r->req.path = r->path;
    begin(r);
    return r;
}

struct cb__req *cb__req_refused(struct cb_http_server *s, unsigned status, const char *code,
                                const char *msg)
{
    struct cb__req *r = alloc_req(s);
    r->path = cb_xstrdup("-");
    r->req.path = r->path;
    r->req.method = "-";
    cb__req_fail(r, status, code, msg);
    return r;
}

/* Appends body bytes to the spool file; the request fails with 507 when
 * the disk takes no more (or the file cannot be made). */
static void spool(struct cb__req *r, const char *data, size_t n)
{
    const char *dir = r->srv->opts.spool_dir ? r->srv->opts.spool_dir : "/tmp";
    struct cb_error err = {0};
    int rc = r->body_fd >= 0 ? r->body_fd : cb_tmpfile(dir, &err);
    if (rc >= 0)
        r->body_fd = rc;
    if (rc >= 0 && (rc = cb_write_all(r->body_fd, data, n)) < 0)
        cb_error_set(&err, rc, "writing to %s: %s", dir, strerror(-rc));
    if (rc < 0) {
        char msg[sizeof(err.msg) + 64];
        snprintf(msg, sizeof(msg), "the request body could not be stored: %s", err.msg);
        bool full = rc == -ENOSPC || rc == -EDQUOT;
        cb__req_fail(r, full ? 507 : 500, full ? "insufficient_storage" : "internal_error", msg);
    }
}

/* Only JSON routes (as req->json) and raw routes read a body. On the
 * others it is counted against the limit and dropped: anyone may send a
 * body to /health, and keeping it would let a few hundred connections hold
 * gigabytes. A raw route's body goes to a file as it arrives. */
void cb__req_body(struct cb__req *r, const char *data, size_t n)
{
    if (r->state != CB__REQ_READING)
        return;
    r->body_bytes += n;
    if (r->body_bytes > body_limit(r))
        too_large(r);
    else if (r->route->flags & CB_ROUTE_RAW)
        spool(r, data, n);
    else if (r->route->flags & CB_ROUTE_JSON)
        cb_buf_append(&r->body, data, n);
}

static void parse_json_body(struct cb__req *r)
{
    json_error_t je;
    r->req.json = json_loadb(r->body.data ? r->body.data : "", r->body.len,
                             JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (r->req.json == NULL) {
        char msg[320];
        snprintf(msg, sizeof(msg), "malformed JSON at line %d, column %d: %s", je.line, je.column,
                 je.text);
        cb__req_fail(r, 400, "invalid_request", msg);
    }
}

/* A handler answered with a stream: it is counted against MAX_STREAMS,
 * or refused. */
static void admit_stream(struct cb__req *r)
{
    struct cb_http_server *s = r->srv;
    if (r->res.status != 200 || r->res.body != NULL) {
        cb__req_fail(r, 500, "internal_error", "handler produced a malformed streamed response");
        return;
    }
    if (atomic_fetch_add(&s->streams, 1) >= MAX_STREAMS) {
        atomic_fetch_sub(&s->streams, 1);
        char msg[128];
        snprintf(msg, sizeof(msg), "server busy: all %u streaming slots are in use; retry later",
                 MAX_STREAMS);
        cb__req_fail(r, 503, "resource_exhausted", msg);
        r->res.retry_after = 1;
        return;
    }
    r->streamed = true;
}

static void run_handler(struct cb__req *r)
{
    r->route->handler(&r->req, &r->res);
    if (r->res.status == 0)
        cb__req_fail(r, 500, "internal_error", "handler produced no response");
    else if (r->res.stream.produce)
        admit_stream(r);
    r->state = CB__REQ_READY;
}

void cb__req_start_stream(struct cb__req *r)
{
    if (strcmp(r->req.method, "HEAD") == 0) {
        cb__http_stream_drop(&r->res.stream);
        return;
    }
    r->stream = cb_xmalloc(sizeof(*r->stream));
    cb__stream_init(r->stream, &r->res.stream, r->head.minor != 0);
}

static void job_run(void *arg)
{
    struct cb__req *r = arg;
    run_handler(r);
    cb__conn_handback(r->conn);
}

static void job_reject(void *arg)
{
    struct cb__req *r = arg;
    cb_http_respond_error(&r->res, 503, "resource_exhausted",
                          "server busy: all %u execution slots are in use; retry later",
                          r->srv->opts.max_concurrent);
    r->res.retry_after = 1;
    r->state = CB__REQ_READY;
    cb__conn_handback(r->conn);
}

bool cb__req_prepare(struct cb__req *r)
{
    if (r->state == CB__REQ_READY)
        return true;
    if (r->route->flags & CB_ROUTE_JSON)
        parse_json_body(r);
    if (r->state == CB__REQ_READY)
        return true;
    r->req.body = r->body.data;
    r->req.body_len = r->body.len;
    if (r->route->flags & CB_ROUTE_RAW) {
        r->req.body_fd = r->body_fd;
        r->req.body_len = (size_t)r->body_bytes;
    }
    if (r->route->flags & CB_ROUTE_PUBLIC) {
        run_handler(r);
        return true;
    }
    return false;
}

void cb__req_submit(struct cb__req *r)
{
    r->state = CB__REQ_RUNNING;
    r->job = (struct cb_limiter_job){job_run, job_reject, r, 0, NULL};
    if (cb__limiter_submit(r->srv->limiter, &r->job) < 0)
        job_reject(r);
}

void cb__req_record(struct cb__req *r)
{
    if (r->recorded)
        return;
    r->recorded = true;
    struct cb_http_server *s = r->srv;
    double secs = (double)(cb_now_mono_ns() - r->start_ns) / 1e9;
    char status[8];
    char dur[32];
    snprintf(status, sizeof(status), "%u", r->res.status);
    snprintf(dur, sizeof(dur), "%.3f", secs * 1000.0);
    const char *route = r->route ? r->route->pattern : "unmatched";
    const char *labels[] = {route, status};
    if (s->m_requests) {
        cb_metric_inc(s->m_requests, labels, 1);
        cb_metric_observe(s->m_duration, labels, secs);
    }
    const char *fields[] = {"request_id",  r->request_id, "method", r->req.method,
                            "path",        r->path,       "status", status,
                            "duration_ms", dur,           NULL};
    cb_log_fields(r->res.status >= 500 ? CB_LOG_WARN : CB_LOG_INFO, "http request", fields);
}

void cb__req_free(struct cb__req *r)
{
    if (r == NULL)
        return;
    if (r->res.status == 0)
        r->res.status = 499; /* the client went away before an answer */
    cb__req_record(r);
    if (r->counted)
        atomic_fetch_sub(&r->srv->inflight, 1);
    if (r->streamed)
        atomic_fetch_sub(&r->srv->streams, 1);
    if (r->stream) {
        cb__stream_release(r->stream);
        free(r->stream);
    }
    cb__http_stream_drop(&r->res.stream);
    cb__router_free_params(&r->req);
    json_decref(r->req.json);
    cb_buf_free(&r->body);
    if (r->body_fd >= 0)
        close(r->body_fd);
    free(r->res.body);
    free(r->raw);
    free(r->path);
    free(r);
}
