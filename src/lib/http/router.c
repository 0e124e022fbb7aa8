#include "http/router.h"
#include "core/util.h"

#include <string.h>

struct cb_router {
    struct cb_route *routes;
    size_t len;
};

struct cb_router *cb_router_new(void)
{
    return cb_xcalloc(1, sizeof(struct cb_router));
}

void cb_router_free(struct cb_router *r)
{
    if (r == NULL)
        return;
    free(r->routes);
    free(r);
}

void cb_router_add(struct cb_router *r, const char *method, const char *pattern,
                   cb_http_handler_fn handler, unsigned flags)
{
    r->routes = cb_xrealloc(r->routes, (r->len + 1) * sizeof(*r->routes));
    r->routes[r->len++] = (struct cb_route){method, pattern, handler, flags};
}

/* Length of the segment starting at s (up to '/' or the end). */
static size_t seg_len(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash ? (size_t)(slash - s) : strlen(s);
}

/* Matches path against pattern segment by segment. When req is non-NULL
 * the parameter values are copied into it. An empty parameter value never
 * matches. */
static bool match(const char *pattern, const char *path, struct cb_http_request *req)
{
    const char *p = pattern;
    const char *u = path;
    while (*p == '/' && *u == '/') {
        p++;
        u++;
        size_t pl = seg_len(p);
        size_t ul = seg_len(u);
        if (pl > 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ul == 0 || (req && req->nparams == CB_HTTP_MAX_PARAMS))
                return false;
            if (req)
                req->params[req->nparams++] =
                    (struct cb_http_param){p + 1, pl - 2, cb_xstrndup(u, ul)};
        } else if (pl != ul || memcmp(p, u, pl) != 0) {
            return false;
        }
        p += pl;
        u += ul;
    }
    return *p == '\0' && *u == '\0';
}

static void add_allow(char *allow, size_t size, const char *method)
{
    size_t used = strlen(allow);
    size_t need = strlen(method) + (used ? 2 : 0);
    if (strstr(allow, method) != NULL || used + need + 1 > size)
        return;
    if (used)
        memcpy(allow + used, ", ", 2);
    memcpy(allow + used + (used ? 2 : 0), method, strlen(method) + 1);
}

/* One pass over the routes that are literal (`literal` true) or that have
 * parameters. */
static enum cb_route_result match_pass(const struct cb_router *r, bool literal, const char *method,
                                       const char *path, const struct cb_route **route,
                                       struct cb_http_request *req, char *allow, size_t allow_size)
{
    bool path_known = false;
    for (size_t i = 0; i < r->len; i++) {
        if ((strchr(r->routes[i].pattern, '{') == NULL) != literal ||
            !match(r->routes[i].pattern, path, NULL))
            continue;
        path_known = true;
        if (strcmp(r->routes[i].method, method) == 0) {
            match(r->routes[i].pattern, path, req);
            *route = &r->routes[i];
            return CB_ROUTE_FOUND;
        }
        add_allow(allow, allow_size, r->routes[i].method);
    }
    return path_known ? CB_ROUTE_METHOD_NOT_ALLOWED : CB_ROUTE_NOT_FOUND;
}

/* A literal pattern that matches the path takes precedence over every
 * parameterised one, so GET /tools/register is 405 even though
 * GET /tools/{name} exists. */
enum cb_route_result cb_router_match(const struct cb_router *r, const char *method,
                                     const char *path, const struct cb_route **route,
                                     struct cb_http_request *req, char *allow, size_t allow_size)
{
    allow[0] = '\0';
    enum cb_route_result res = match_pass(r, true, method, path, route, req, allow, allow_size);
    if (res != CB_ROUTE_NOT_FOUND)
        return res;
    return match_pass(r, false, method, path, route, req, allow, allow_size);
}

void cb__router_free_params(struct cb_http_request *req)
{
    for (size_t i = 0; i < req->nparams; i++)
        free(req->params[i].value);
    req->nparams = 0;
}
