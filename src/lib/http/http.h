/* Request and response types shared by the HTTP server and the route
 * handlers in src/lib/api/. A handler reads a `struct cb_http_request` and
 * fills a `struct cb_http_response`; the server owns both. */
#ifndef CB_HTTP_HTTP_H
#define CB_HTTP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CB_HTTP_MAX_PARAMS 4

struct cb_http_head;

struct cb_http_param {
    const char *name; /* points into the route pattern */
    size_t name_len;
    char *value; /* owned by the request */
};

struct cb_http_request {
    const char *method;
    const char *path;  /* decoded path, without the query string */
    const char *route; /* the matched pattern, e.g. "/agents/{id}" */
    struct cb_http_param params[CB_HTTP_MAX_PARAMS];
    size_t nparams;
    const char *body; /* on JSON routes; other routes' bodies are dropped (NULL) */
    size_t body_len;  /* also on raw routes: the bytes in body_fd */
    /* On raw routes (CB_ROUTE_RAW): the body, in an unlinked file the
     * request owns, read from offset 0; -1 for an empty body. */
    int body_fd;
    json_t *json; /* parsed body on JSON routes, else NULL; owned by the request */
    const char *request_id;
    const char *raw;                 /* the request head; names and values NUL-terminated */
    const struct cb_http_head *head; /* where the fields are in raw */
    void *app;                       /* the application context given to the server */
};

/* What a stream's producer returns (see struct cb_http_stream). */
enum cb_http_stream_rc {
    CB_HTTP_STREAM_MORE, /* bytes were produced (maybe none); call again at once */
    CB_HTTP_STREAM_IDLE, /* nothing now; call again after a short interval */
    CB_HTTP_STREAM_END,  /* the body is complete after the bytes produced */
    CB_HTTP_STREAM_FAIL, /* the body cannot go on: the connection is cut */
};

/* A response body produced incrementally, for a body that grows while it
 * is sent (a log being followed). The I/O thread that owns the connection
 * calls `produce` whenever everything produced before has been written, so
 * at most `room` bytes per stream are ever buffered and a slow reader only
 * slows its own stream; while the producer is idle it is asked again every
 * CB_HTTP_STREAM_POLL_MS. It runs on an I/O thread: it must not block (a
 * local file read and a short lock are fine). The body goes out with
 * Transfer-Encoding: chunked on HTTP/1.1 (delimited by the connection's
 * end on HTTP/1.0), and the connection closes after it. `free` is called
 * once, on the I/O thread or the thread that drops the response, when the
 * stream ends for any reason: body complete, client gone, server stopping. */
struct cb_http_stream {
    enum cb_http_stream_rc (*produce)(void *ctx, char *out, size_t room, size_t *n);
    void (*free)(void *ctx);
    void *ctx;
};

#define CB_HTTP_STREAM_POLL_MS 100u

struct cb_http_response {
    unsigned status;
    char *body; /* owned by the response */
    size_t body_len;
    const char *content_type;
    char allow[96];       /* Allow header for 405, or empty */
    unsigned retry_after; /* Retry-After seconds, or 0 */
    /* One more header line ("Name: value", no CRLF), made by the handler
     * from its own data (never from the request's), or empty. */
    char extra_header[96];
    /* When set (with status 200 and no body), the body is streamed; the
     * response owns the stream. See cb_http_respond_stream. */
    struct cb_http_stream stream;
};

/* A route handler. It must fill `res` before it returns. */
typedef void (*cb_http_handler_fn)(struct cb_http_request *req, struct cb_http_response *res);

/* The reason phrase of a status ("Not Found"), or "Unknown". */
const char *cb_http_reason(unsigned status);

const char *cb_http_param(const struct cb_http_request *req, const char *name);
/* The query parameter `name`: 0 when absent; 1 with its percent-decoded
 * value ("" for a bare name) in out; -1 when present but unusable (too
 * long for out, a NUL or a bad escape), which a route answers with 400,
 * never by taking it for absent. */
int cb_http_query(const struct cb_http_request *req, const char *name, char *out, size_t size);
/* The value of the first header field called `name` (any case), or NULL. */
const char *cb__http_header(const struct cb_http_request *req, const char *name);

/* Answers 200 with a streamed body of `content_type` (static); the
 * response takes the stream (and frees it even if it is never sent). */
void cb_http_respond_stream(struct cb_http_response *res, const char *content_type,
                            const struct cb_http_stream *stream);

/* Serialises `body` (reference stolen) as compact JSON. */
void cb_http_respond_json(struct cb_http_response *res, unsigned status, json_t *body);
/* Responds with the ApiError shape {"error": msg, "code": code, "details": null}. */
void cb_http_respond_error(struct cb_http_response *res, unsigned status, const char *code,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Like cb_http_respond_error with a details object (reference stolen). */
void cb_http_respond_error_details(struct cb_http_response *res, unsigned status, const char *code,
                                   json_t *details, const char *msg);

#endif
