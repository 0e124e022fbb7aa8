/* ContainerSpawnRequest parsing: shapes (422), values (400), defaults and
 * the server's caps; the exec body's detach. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "containers/request.h"

static struct cb_config *cfg;

static int setup(void **state)
{
    (void)state;
    static const char text[] =
        "[containers]\ndefault_timeout_ms = 30000\nmax_timeout_ms = 60000\nmax_memory_mb = 1024\n"
        "max_output_bytes = 4096\n";
    struct cb_config_diag d = {0};
    struct cb_error err = {0};
    int r = cb_config_load_text("t.toml", text, sizeof(text) - 1, &cfg, &d, &err);
    cb_config_diag_free(&d);
    return r;
}

static int teardown(void **state)
{
    (void)state;
    cb_config_free(cfg);
    return 0;
}

/* Parses `text`; returns the code and leaves the message in *err. */
static int parse(const char *text, struct cb_ct_request *r, struct cb_error *err)
{
    json_error_t je;
    json_t *body = json_loads(text, JSON_ALLOW_NUL, &je);
    assert_non_null(body);
    int rc = cb_ct_request_parse(body, cfg, r, err);
    /* The strings point into body: keep it alive for the caller's checks. */
    static json_t *last;
    json_decref(last);
    last = body;
    return rc;
}

static void minimal_request_gets_defaults(void **state)
{
    (void)state;
    struct cb_ct_request r;
    struct cb_error err;
    assert_int_equal(parse("{\"task\": \"t\"}", &r, &err), 0);
    assert_string_equal(r.task, "t");
    assert_string_equal(r.image, "clawbox/agent-base:latest");
    assert_int_equal(r.policy, CB_CT_WASM_ONLY);
    assert_int_equal(r.timeout_ms, 30000);
    assert_int_equal(r.memory_mb, 512);
    assert_int_equal(r.cpu_shares, 1024);
    assert_int_equal(r.max_output_bytes, 4096);
    assert_null(r.command);
    assert_int_equal(r.n_env, 0);
    cb_ct_request_clear(&r);
}

static void full_request_is_read_and_capped(void **state)
{
    (void)state;
    struct cb_ct_request r;
    struct cb_error err;
    assert_int_equal(
        parse(
            "{\"task\": \"x\", \"image\": \"alpine:3\", \"policy\": \"Container-Direct\","
            " \"capabilities\": {\"credentials\": [\"gh\"], \"network\": {\"allowlist\": [\"*\"]},"
            " \"resources\": {\"timeout_ms\": 999999999, \"memory_mb\": 0, \"cpu_shares\": 512,"
            " \"max_output_bytes\": 100}}, \"env\": {\"A\": \"1\", \"B\": \"\"},"
            " \"command\": [\"sh\", \"-c\", \"echo hi\"], \"unknown\": 1}",
            &r, &err),
        0);
    assert_string_equal(r.image, "alpine:3");
    assert_int_equal(r.policy, CB_CT_CONTAINER_DIRECT);
    assert_int_equal(r.n_credentials, 1);
    assert_string_equal(r.credentials[0], "gh");
    assert_int_equal(r.timeout_ms, 60000);
    assert_int_equal(r.memory_mb, 512); /* 0 is the default, never unlimited */
    assert_int_equal(r.cpu_shares, 512);
    assert_int_equal(r.max_output_bytes, 100);
    assert_int_equal(r.n_env, 2);
    assert_string_equal(r.env_keys[0], "A");
    assert_string_equal(r.env_values[1], "");
    assert_int_equal(r.n_command, 3);
    assert_string_equal(r.command[2], "echo hi");
    cb_ct_request_clear(&r);
}

static void memory_above_the_maximum_is_capped(void **state)
{
    (void)state;
    struct cb_ct_request r;
    struct cb_error err;
    assert_int_equal(
        parse("{\"task\": \"\", \"capabilities\": {\"resources\": {\"memory_mb\": 4096}}}", &r,
              &err),
        0);
    assert_int_equal(r.memory_mb, 1024);
    cb_ct_request_clear(&r);
}

static void policies_and_aliases(void **state)
{
    (void)state;
    enum cb_ct_policy p;
    assert_int_equal(cb_ct_policy_parse("wasm", &p), 0);
    assert_int_equal(p, CB_CT_WASM_ONLY);
    assert_int_equal(cb_ct_policy_parse("WasmOnly", &p), 0);
    assert_int_equal(p, CB_CT_WASM_ONLY);
    assert_int_equal(cb_ct_policy_parse("direct", &p), 0);
    assert_int_equal(p, CB_CT_CONTAINER_DIRECT);
    assert_int_equal(cb_ct_policy_parse("CONTAINER", &p), 0);
    assert_int_equal(p, CB_CT_CONTAINER);
    assert_int_equal(cb_ct_policy_parse("root", &p), -EINVAL);
    assert_int_equal(cb_ct_policy_parse("", &p), -EINVAL);
    assert_string_equal(cb_ct_policy_name(CB_CT_CONTAINER_DIRECT), "container_direct");
}

struct bad {
    const char *body;
    int code;
    const char *names; /* the message names this */
};

static void bad_input_names_the_field(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"[]", -EBADMSG, "JSON object"},
        {"{}", -EBADMSG, "task: missing"},
        {"{\"task\": 3}", -EBADMSG, "task: expected a string"},
        {"{\"task\": null}", -EBADMSG, "task: expected a string"},
        {"{\"task\": \"a\\u0000b\"}", -EBADMSG, "task"},
        {"{\"task\": \"\", \"image\": 1}", -EBADMSG, "image"},
        {"{\"task\": \"\", \"image\": \"\"}", -EINVAL, "image: must not be empty"},
        {"{\"task\": \"\", \"policy\": \"root\"}", -EBADMSG, "unknown policy 'root'"},
        {"{\"task\": \"\", \"capabilities\": []}", -EBADMSG, "capabilities: expected an object"},
        {"{\"task\": \"\", \"capabilities\": {\"credentials\": [1]}}", -EBADMSG,
         "capabilities.credentials[0]"},
        {"{\"task\": \"\", \"capabilities\": {\"resources\": {\"timeout_ms\": -1}}}", -EBADMSG,
         "capabilities.resources.timeout_ms"},
        {"{\"task\": \"\", \"capabilities\": {\"resources\": {\"timeout_ms\": 0}}}", -EINVAL,
         "at least 1"},
        {"{\"task\": \"\", \"capabilities\": {\"resources\": {\"cpu_shares\": 1}}}", -EINVAL,
         "cpu_shares"},
        {"{\"task\": \"\", \"capabilities\": {\"resources\": {\"memory_mb\": \"1\"}}}", -EBADMSG,
         "memory_mb"},
        {"{\"task\": \"\", \"env\": [\"A=1\"]}", -EBADMSG, "env: expected an object"},
        {"{\"task\": \"\", \"env\": {\"A\": 1}}", -EBADMSG, "env.A"},
        {"{\"task\": \"\", \"command\": \"sh\"}", -EBADMSG, "command: expected an array"},
        {"{\"task\": \"\", \"command\": []}", -EINVAL, "command: must not be empty"},
        {"{\"task\": \"\", \"command\": [\"sh\", null]}", -EBADMSG, "command[1]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cb_ct_request r;
        struct cb_error err = {0};
        int rc = parse(cases[i].body, &r, &err);
        if (rc != cases[i].code || strstr(err.msg, cases[i].names) == NULL)
            fail_msg("%s: got %d '%s'", cases[i].body, rc, err.msg);
        assert_null(r.command);
    }
}

static void oversized_input_is_refused(void **state)
{
    (void)state;
    static char body[CB_CT_STRINGS_BYTES + 4096];
    struct cb_ct_request r;
    struct cb_error err;
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"task\": \"\", \"command\": [\"");
    memset(body + n, 'a', CB_CT_STRINGS_BYTES);
    memcpy(body + n + CB_CT_STRINGS_BYTES, "\"]}", 4);
    assert_int_equal(parse(body, &r, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "exceed"));
    n = (size_t)snprintf(body, sizeof(body), "{\"task\": \"");
    memset(body + n, 't', CB_CT_TASK_MAX + 1);
    memcpy(body + n + CB_CT_TASK_MAX + 1, "\"}", 3);
    assert_int_equal(parse(body, &r, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "task: longer than"));
}

/* The exec body's detach: a boolean, false when absent or null. */
static void exec_detach(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int rc;
        bool detach;
    } cases[] = {
        {"{\"command\": [\"/bin/true\"]}", 0, false},
        {"{\"command\": [\"/bin/true\"], \"detach\": null}", 0, false},
        {"{\"command\": [\"/bin/true\"], \"detach\": false}", 0, false},
        {"{\"command\": [\"/bin/true\"], \"detach\": true}", 0, true},
        {"{\"command\": [\"/bin/true\"], \"detach\": \"yes\"}", -EBADMSG, false},
        {"{\"command\": [\"/bin/true\"], \"detach\": 1}", -EBADMSG, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = json_loads(cases[i].body, 0, NULL);
        assert_non_null(body);
        struct cb_ct_exec_request q;
        struct cb_error err = {0};
        assert_int_equal(cb_ct_exec_request_parse(body, cfg, &q, &err), cases[i].rc);
        if (cases[i].rc == 0)
            assert_int_equal(q.detach, cases[i].detach);
        else
            assert_non_null(strstr(err.msg, "detach"));
        cb_ct_exec_request_clear(&q);
        json_decref(body);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_request_gets_defaults),
        cmocka_unit_test(full_request_is_read_and_capped),
        cmocka_unit_test(memory_above_the_maximum_is_capped),
        cmocka_unit_test(policies_and_aliases),
        cmocka_unit_test(bad_input_names_the_field),
        cmocka_unit_test(oversized_input_is_refused),
        cmocka_unit_test(exec_detach),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
