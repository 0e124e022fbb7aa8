/* Maps (method, path) to a route. Patterns are literal segments and
 * `{name}` parameters, e.g. "/agents/{id}/start". */
#ifndef CB_HTTP_ROUTER_H
#define CB_HTTP_ROUTER_H

#include "http/http.h"

#include <stddef.h>

enum cb_route_flags {
    CB_ROUTE_PUBLIC = 1 << 0, /* no auth, no concurrency limit */
    CB_ROUTE_JSON = 1 << 1, /* body must be application/json and is parsed; other routes drop it */
    CB_ROUTE_RAW = 1 << 2,  /* body spooled to a file (req->body_fd), any content type */
};

struct cb_route {
    const char *method;
    const char *pattern;
    cb_http_handler_fn handler;
    unsigned flags;
};

struct cb_router;

struct cb_router *cb_router_new(void);
void cb_router_free(struct cb_router *r);
/* The pattern and method strings must outlive the router. */
void cb_router_add(struct cb_router *r, const char *method, const char *pattern,
                   cb_http_handler_fn handler, unsigned flags);

enum cb_route_result {
    CB_ROUTE_FOUND,
    CB_ROUTE_NOT_FOUND,          /* 404 */
    CB_ROUTE_METHOD_NOT_ALLOWED, /* 405; `allow` lists the methods */
};

/* Matches a request. On CB_ROUTE_FOUND, *route is set and the parameters
 * are copied into req->params (freed by cb__router_free_params). */
enum cb_route_result cb_router_match(const struct cb_router *r, const char *method,
                                     const char *path, const struct cb_route **route,
                                     struct cb_http_request *req, char *allow, size_t allow_size);
void cb__router_free_params(struct cb_http_request *req);

#endif
