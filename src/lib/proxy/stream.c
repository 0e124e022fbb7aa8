/* A container's request with its bodies streamed (pipeline.h,
 * cb_proxy_container_stream): the request body read as it goes up behind
 * a blocking scan, the answer redacted as it comes down and handed to
 * the caller's sink. The stages before forwarding are pipeline.c's. */
#include "core/util.h"
#include "proxy/forward.h"
#include "proxy/pipeline.h"
#include "proxy/pipeline_internal.h"
#include "scan/redact_stream.h"

#include <errno.h>
#include <string.h>

/* Reads the start of a streamed request body: all of it when it ends
 * within the hold, which then is q->body like any other; else
 * q->body_streams. */
int cb__proxy_preread_body(struct cb__proxy_req *q)
{
    const struct cb_proxy_body *b = q->body_src;
    cb_buf_init(&q->pre, CB_REDACT_STREAM_HOLD);
    while (q->pre.len < CB_REDACT_STREAM_HOLD) {
        size_t room = CB_REDACT_STREAM_HOLD - q->pre.len, n = 0;
        room = room < 16384 ? room : 16384;
        char *at = cb_buf_extend(&q->pre, room);
        int r = b->read(b->ud, at, room, &n);
        q->pre.len -= room - n;
        if (r < 0)
            return q->up_err = r;
        if (n == 0) {
            q->body = q->pre.data ? q->pre.data : "";
            q->body_len = q->pre.len;
            return 0;
        }
    }
    q->body_streams = true;
    return 0;
}

static int upload_out(void *ud, const char *data, size_t len)
{
    struct cb__proxy_req *q = ud;
    return cb_buf_append(&q->up_ready, data, len);
}

/* libcurl's read of a body that streams: what the blocking scan let
 * through, read from the source as it is asked for. */
static int upload_read(void *ud, char *buf, size_t cap, size_t *n)
{
    struct cb__proxy_req *q = ud;
    char piece[16384];
    while (q->up_off == q->up_ready.len && !q->up_ended) {
        cb_buf_reset(&q->up_ready);
        q->up_off = 0;
        size_t k = q->pre.len;
        int r = 0;
        if (k > 0) {
            r = cb_redact_stream_write(q->upload, q->pre.data, k, upload_out, q);
            explicit_bzero(q->pre.data, k);
            cb_buf_reset(&q->pre);
        } else if ((r = q->body_src->read(q->body_src->ud, piece, sizeof(piece), &k)) == 0) {
            q->up_ended = k == 0;
            r = k == 0 ? cb_redact_stream_finish(q->upload, upload_out, q)
                       : cb_redact_stream_write(q->upload, piece, k, upload_out, q);
        }
        if (r < 0)
            return q->up_err = r;
    }
    *n = q->up_ready.len - q->up_off < cap ? q->up_ready.len - q->up_off : cap;
    memcpy(buf, q->up_ready.data + q->up_off, *n);
    q->up_off += *n;
    return 0;
}

void cb__proxy_upload_free(struct cb__proxy_req *q)
{
    cb_redact_stream_free(q->upload);
    if (q->up_ready.data)
        explicit_bzero(q->up_ready.data, q->up_ready.len);
    cb_buf_free(&q->up_ready);
    if (q->pre.data)
        explicit_bzero(q->pre.data, q->pre.len);
    cb_buf_free(&q->pre);
}

/* ------------------------- a streamed answer -------------------------- */

/* One streamed answer: the forwarder's bytes go through the redaction
 * stream to the sink. */
struct relay {
    struct cb_proxy *p;
    struct cb__proxy_req *q;
    struct cb_forward_response *res;
    struct cb_redact_stream *rs;
    json_t *headers; /* redacted, made at the first byte of the body */
    bool head_sent;
    int stream_err; /* the redaction stream's or the sink's failure */
    uint64_t bytes; /* decoded bytes from the upstream */
};

static void relay_headers(struct relay *r)
{
    if (r->headers != NULL)
        return;
    r->headers = cb__proxy_answer_headers(r->q->creds->scanner, r->res->headers);
    /* libcurl decoded the body. */
    json_object_del(r->headers, "content-encoding");
}

/* A final status HTTP can relay; another (a 1xx as the last answer, or
 * past 599) fails the request. */
static bool relay_status_ok(const struct relay *r)
{
    return r->res->status >= 200 && r->res->status <= 599;
}

/* Sends the answer's head, with the whole body when `whole` (its audit
 * line first then). */
static int relay_head(struct relay *r, const char *body, size_t len, bool whole)
{
    const struct cb_proxy_sink *k = r->q->sink;
    if (!relay_status_ok(r))
        return -EPROTO;
    r->head_sent = true;
    if (whole)
        cb__proxy_audit(r->p, r->q, "allowed", NULL, (int)r->res->status, r->bytes);
    return k->head(k->ud, r->res->status, r->headers, body, len, whole) ? 0 : -EPIPE;
}

/* Redacted bytes of a body that streams. */
static int relay_out(void *ud, const char *data, size_t len)
{
    struct relay *r = ud;
    const struct cb_proxy_sink *k = r->q->sink;
    int rc = r->head_sent ? 0 : relay_head(r, NULL, 0, false);
    return rc < 0 ? rc : k->data(k->ud, data, len) ? 0 : -EPIPE;
}

/* The last redacted bytes: the whole body when nothing went out yet, so
 * its head says its length. */
static int relay_last(void *ud, const char *data, size_t len)
{
    struct relay *r = ud;
    const struct cb_proxy_sink *k = r->q->sink;
    if (!r->head_sent)
        return relay_head(r, data, len, true);
    return k->data(k->ud, data, len) ? 0 : -EPIPE;
}

static int relay_data(void *ud, const char *data, size_t len)
{
    struct relay *r = ud;
    relay_headers(r);
    r->bytes += len;
    return r->stream_err = cb_redact_stream_write(r->rs, data, len, relay_out, r);
}

/* What went wrong with a streamed answer, for the audit and the caller. */
static void relay_failed(struct relay *r, int rc, struct cb_error *err)
{
    const char *host = r->q->url.host.name;
    if (r->q->up_err == -EACCES) {
        cb__proxy_leak_refusal(r->q, cb_scan_stream_found(r->q->upload), err);
        cb__proxy_audit(r->p, r->q, "leak_blocked", err->msg, 0, 0);
        return;
    }
    if (r->q->up_err < 0)
        cb_error_set(err, r->q->up_err, "the request body for %s could not be read", host);
    else if (r->stream_err == -EPIPE)
        cb_error_set(err, rc, "the client closed the connection before the answer from %s ended",
                     host);
    else if (r->stream_err == -EPROTO)
        cb_error_set(err, rc, "the upstream %s answered with status %ld", host, r->res->status);
    else if (r->stream_err == -EACCES)
        cb_error_set(err, rc,
                     "blocked: the response from %s holds secrets too close together to be "
                     "redacted as it streams; it was cut off",
                     host);
    cb__proxy_audit(r->p, r->q, rc == -EACCES || rc == -ENOTSUP ? "blocked" : "error", err->msg,
                    (int)r->res->status, r->bytes);
}

json_t *cb__proxy_stream_stage(struct cb_proxy *p, struct cb__proxy_req *q,
                               struct cb_forward_request *fr)
{
    struct cb_forward_response res = {0};
    struct relay r = {.p = p, .q = q, .res = &res};
    r.rs = cb_redact_stream_new(q->creds->scanner, CB_REDACT_STREAM_HOLD);
    fr->on_data = relay_data;
    fr->data_ud = &r;
    if (q->body_streams) {
        q->upload = cb_scan_stream_new(q->creds->scanner, CB_REDACT_STREAM_HOLD);
        cb_buf_init(&q->up_ready, CB_REDACT_STREAM_HOLD);
        fr->read_body = upload_read;
        fr->body_ud = q;
        fr->read_len = q->body_src->length;
    }
    struct cb_error err = {0};
    int rc = cb__forward(p->fwd, fr, &res, &err);
    if (rc == 0) {
        relay_headers(&r);
        bool streamed = r.head_sent; /* else relay_last audits before the head */
        rc = cb_redact_stream_finish(r.rs, relay_last, &r);
        if (rc == 0 && !r.head_sent)
            rc = relay_last(&r, "", 0);
        r.stream_err = rc;
        if (rc == 0 && streamed)
            cb__proxy_audit(p, q, "allowed", NULL, (int)res.status, r.bytes);
    }
    json_t *env = rc == 0 ? json_pack("{s:{s:i}}", "ok", "status", (json_int_t)res.status) : NULL;
    if (rc < 0) {
        relay_failed(&r, rc, &err);
        env = cb__proxy_error_envelope(err.msg);
    }
    cb_redact_stream_free(r.rs);
    json_decref(r.headers);
    cb__forward_response_free(&res);
    return env;
}
