#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http/router.h"

static void h_a(struct cb_http_request *req, struct cb_http_response *res)
{
    (void)req;
    (void)res;
}

static struct cb_router *make(void)
{
    struct cb_router *r = cb_router_new();
    cb_router_add(r, "GET", "/health", h_a, CB_ROUTE_PUBLIC);
    cb_router_add(r, "GET", "/tools", h_a, 0);
    cb_router_add(r, "POST", "/tools/register", h_a, CB_ROUTE_JSON);
    cb_router_add(r, "GET", "/tools/{name}", h_a, 0);
    cb_router_add(r, "GET", "/agents/{id}", h_a, 0);
    cb_router_add(r, "DELETE", "/agents/{id}", h_a, 0);
    cb_router_add(r, "POST", "/agents/{id}/start", h_a, 0);
    return r;
}

static enum cb_route_result run(struct cb_router *r, const char *m, const char *p,
                                const struct cb_route **route, struct cb_http_request *req,
                                char *allow)
{
    memset(req, 0, sizeof(*req));
    return cb_router_match(r, m, p, route, req, allow, 96);
}

static void literal_and_param_routes(void **state)
{
    (void)state;
    struct cb_router *r = make();
    const struct cb_route *route = NULL;
    struct cb_http_request req;
    char allow[96];
    assert_int_equal(run(r, "GET", "/health", &route, &req, allow), CB_ROUTE_FOUND);
    assert_string_equal(route->pattern, "/health");
    assert_int_equal(run(r, "GET", "/agents/abc-123", &route, &req, allow), CB_ROUTE_FOUND);
    assert_string_equal(route->pattern, "/agents/{id}");
    assert_string_equal(cb_http_param(&req, "id"), "abc-123");
    assert_null(cb_http_param(&req, "name"));
    cb__router_free_params(&req);
    assert_int_equal(run(r, "POST", "/agents/x/start", &route, &req, allow), CB_ROUTE_FOUND);
    assert_string_equal(cb_http_param(&req, "id"), "x");
    cb__router_free_params(&req);
    cb_router_free(r);
}

static void not_found_cases(void **state)
{
    (void)state;
    struct cb_router *r = make();
    const struct cb_route *route = NULL;
    struct cb_http_request req;
    char allow[96];
    const char *paths[] = {"/",       "/nope",    "/health/",          "/healthz",
                           "/agents", "/agents/", "/agents/a/b/start", "//health",
                           "health",  ""};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(run(r, "GET", paths[i], &route, &req, allow), CB_ROUTE_NOT_FOUND);
    cb_router_free(r);
}

static void method_not_allowed_lists_methods(void **state)
{
    (void)state;
    struct cb_router *r = make();
    const struct cb_route *route = NULL;
    struct cb_http_request req;
    char allow[96];
    assert_int_equal(run(r, "POST", "/health", &route, &req, allow), CB_ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET");
    assert_int_equal(run(r, "PUT", "/agents/7", &route, &req, allow), CB_ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET, DELETE");
    assert_int_equal(req.nparams, 0);
    /* The literal /tools/register wins over /tools/{name}. */
    assert_int_equal(run(r, "GET", "/tools/register", &route, &req, allow),
                     CB_ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "POST");
    assert_int_equal(run(r, "GET", "/tools/echo", &route, &req, allow), CB_ROUTE_FOUND);
    assert_string_equal(cb_http_param(&req, "name"), "echo");
    cb__router_free_params(&req);
    cb_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_and_param_routes),
        cmocka_unit_test(not_found_cases),
        cmocka_unit_test(method_not_allowed_lists_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
