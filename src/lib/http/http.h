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
    size_t body_len;
    json_t *json; /* parsed body on JSON routes, else NULL; owned by the request */
    const char *request_id;
    const char *raw;                 /* the request head; names and values NUL-terminated */
    const struct cb_http_head *head; /* where the fields are in raw */
    void *app;                       /* the application context given to the server */
};

struct cb_http_response {
    unsigned status;
    char *body; /* owned by the response */
    size_t body_len;
    const char *content_type;
    char allow[96];       /* Allow header for 405, or empty */
    unsigned retry_after; /* Retry-After seconds, or 0 */
};

/* A route handler. It must fill `res` before it returns. */
typedef void (*cb_http_handler_fn)(struct cb_http_request *req, struct cb_http_response *res);

/* The reason phrase of a status ("Not Found"), or "Unknown". */
const char *cb_http_reason(unsigned status);

const char *cb_http_param(const struct cb_http_request *req, const char *name);
/* The value of the first header field called `name` (any case), or NULL. */
const char *cb__http_header(const struct cb_http_request *req, const char *name);

/* Serialises `body` (reference stolen) as compact JSON. */
void cb_http_respond_json(struct cb_http_response *res, unsigned status, json_t *body);
/* Responds with the ApiError shape {"error": msg, "code": code, "details": null}. */
void cb_http_respond_error(struct cb_http_response *res, unsigned status, const char *code,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Like cb_http_respond_error with a details object (reference stolen). */
void cb_http_respond_error_details(struct cb_http_response *res, unsigned status, const char *code,
                                   json_t *details, const char *msg);

#endif
