/* The tool route handlers (src/lib/api/tools.c) over a registry with the
 * fake loader: status codes and bodies of GET /tools, GET /tools/{name},
 * POST /tools/register and POST /tools/reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "api/app.h"
#include "api/tools.h"
#include "helpers.h"

struct api_fixture {
    struct fixture fx;
    struct cb_app app;
};

static int setup(void **state)
{
    struct api_fixture *a = cb_xcalloc(1, sizeof(*a));
    fixture_init(&a->fx);
    put_file(&a->fx, "echo.wasm", "e");
    put_file(&a->fx, "alpha.wasm", "a");
    struct cb_error err = {0};
    if (fixture_open(&a->fx, &err) < 0)
        return -1;
    a->app.registry = a->fx.reg;
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    struct api_fixture *a = *state;
    fixture_free(&a->fx);
    free(a);
    return 0;
}

/* Calls a handler; returns the status and the body in *body (caller frees). */
static unsigned call(struct api_fixture *a, cb_http_handler_fn fn, const char *name,
                     const char *json, char **body)
{
    struct cb_http_request req = {.app = &a->app};
    if (name != NULL) {
        req.params[0] =
            (struct cb_http_param){.name = "name", .name_len = 4, .value = (char *)name};
        req.nparams = 1;
    }
    req.json = json ? parse(json) : NULL;
    struct cb_http_response res = {0};
    fn(&req, &res);
    json_decref(req.json);
    *body = res.body;
    return res.status;
}

/* tool.name of a listed manifest. */
static const char *tool_name(const json_t *m)
{
    return json_string_value(json_object_get(json_object_get(m, "tool"), "name"));
}

static void list_and_get(void **state)
{
    struct api_fixture *a = *state;
    char *body;
    assert_int_equal(call(a, cb__api_tools_list, NULL, NULL, &body), 200);
    json_t *arr = parse(body);
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(tool_name(json_array_get(arr, 0)), "alpha");
    assert_string_equal(tool_name(json_array_get(arr, 1)), "echo");
    json_decref(arr);
    free(body);
    assert_int_equal(call(a, cb__api_tools_get, "echo", NULL, &body), 200);
    assert_non_null(strstr(body, "{\"tool\":{\"name\":\"echo\",\"description\":\"Auto-loaded WASM "
                                 "tool\",\"version\":\"0.0.0\"},\"network\":null,\"credentials\":"
                                 "null,\"resources\":null,\"state\":\"ready\",\"manifest_source\":"
                                 "\"auto\",\"sha256\":\""));
    free(body);
    assert_int_equal(call(a, cb__api_tools_get, "nope", NULL, &body), 404);
    assert_string_equal(body, "{\"error\":\"tool 'nope' not found\",\"code\":\"tool_not_found\","
                              "\"details\":null}");
    free(body);
}

static void register_statuses(void **state)
{
    struct api_fixture *a = *state;
    char *body;
    assert_int_equal(call(a, cb__api_tools_register, NULL, "{\"tool\":{\"name\":\"echo\"}}", &body),
                     200);
    assert_string_equal(body, "{\"status\":\"registered\",\"tool\":\"echo\"}");
    free(body);
    put_file(&a->fx, "late.wasm", "l");
    json_decref(cb_registry_reload(a->fx.reg));
    assert_int_equal(call(a, cb__api_tools_register, NULL, "{\"tool\":{\"name\":\"late\"}}", &body),
                     201);
    free(body);
    assert_int_equal(call(a, cb__api_tools_register, NULL, "{\"tool\":{\"name\":\"a b\"}}", &body),
                     400);
    assert_string_equal(body, "{\"error\":\"invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] "
                              "only\",\"code\":\"invalid_request\",\"details\":null}");
    free(body);
    assert_int_equal(call(a, cb__api_tools_register, NULL,
                          "{\"tool\":{\"name\":\"echo\"},\"network\":{\"allowlist\":[\"*\"]}}",
                          &body),
                     400);
    assert_non_null(strstr(body, "set proxy.allow_wildcard_all = true"));
    free(body);
    assert_int_equal(call(a, cb__api_tools_register, NULL,
                          "{\"tool\":{\"name\":\"echo\"},\"network\":{\"allowlist\":3}}", &body),
                     422);
    assert_string_equal(body, "{\"error\":\"field 'network.allowlist' must be an array of "
                              "strings\",\"code\":\"invalid_request\",\"details\":null}");
    free(body);
    assert_int_equal(call(a, cb__api_tools_register, NULL, "[1]", &body), 422);
    free(body);
    assert_int_equal(
        call(a, cb__api_tools_register, NULL, "{\"tool\":{\"name\":\"ghost\"}}", &body), 404);
    assert_string_equal(body, "{\"error\":\"tool 'ghost' not loaded — register only loaded "
                              "tools\",\"code\":\"tool_not_found\",\"details\":null}");
    free(body);
}

static void reload_report(void **state)
{
    struct api_fixture *a = *state;
    del_file(&a->fx, "alpha.wasm");
    put_file(&a->fx, "bad.wasm", "FAIL");
    char *body;
    assert_int_equal(call(a, cb__api_tools_reload, NULL, NULL, &body), 200);
    assert_string_equal(body, "{\"reloaded\":2,\"tools\":[\"echo\"],\"failed\":[{\"tool\":\"bad\","
                              "\"error\":\"fake compile error\"}]}");
    free(body);
}

static void no_registry_is_500(void **state)
{
    struct api_fixture *a = *state;
    a->app.registry = NULL;
    char *body;
    assert_int_equal(call(a, cb__api_tools_list, NULL, NULL, &body), 500);
    free(body);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(list_and_get),
        T(register_statuses),
        T(reload_report),
        T(no_registry_is_500),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
