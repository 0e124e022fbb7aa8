#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/config_table.h"

static struct cb_config *load(const char *text, struct cb_config_diag *d, int *rc)
{
    struct cb_config *c = NULL;
    struct cb_error err = {0};
    memset(d, 0, sizeof(*d));
    *rc = cb_config_load_text("t.toml", text, text ? strlen(text) : 0, &c, d, &err);
    return c;
}

static bool has_line(const struct cb_strlist *l, const char *needle)
{
    for (size_t i = 0; i < l->len; i++)
        if (strstr(l->items[i], needle) != NULL)
            return true;
    return false;
}

static void defaults_match_the_reference(void **state)
{
    (void)state;
    struct cb_config_diag d;
    int rc;
    setenv("HOME", "/home/u", 1);
    struct cb_config *c = load(NULL, &d, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(c->server.host, "127.0.0.1");
    assert_int_equal(c->server.port, 9800);
    assert_int_equal(strlen(c->server.auth_token), 64);
    assert_null(c->server.unix_socket);
    assert_int_equal(c->server.max_concurrent_executions, 10);
    assert_string_equal(c->sandbox.tool_dir, "./tools/wasm");
    assert_int_equal(c->sandbox.default_fuel, 100000000);
    assert_int_equal(c->sandbox.default_timeout_ms, 30000);
    assert_true(c->sandbox.watch_tools);
    assert_int_equal(c->sandbox.max_host_calls, 100);
    assert_int_equal(c->proxy.max_response_bytes, 1048576);
    assert_int_equal(c->proxy.default_timeout_ms, 30000);
    assert_false(c->proxy.allow_wildcard_all);
    assert_int_equal(c->proxy.allow_private_cidrs.len, 0);
    assert_string_equal(c->credentials.store_path, "/home/u/.clawbox/credentials.enc");
    assert_string_equal(c->logging.format, "json");
    assert_string_equal(c->logging.level, "info");
    assert_string_equal(c->logging.audit_dir, "./audit");
    assert_int_equal(c->containers.max_containers, 10);
    assert_string_equal(c->containers.workspace_root, "/home/u/.clawbox/workspaces");
    assert_int_equal(c->container_policy.allowed_policies.len, 2);
    assert_string_equal(c->container_policy.allowed_policies.items[0], "wasm_only");
    assert_string_equal(c->container_policy.allowed_policies.items[1], "container");
    assert_int_equal(d.warnings.len + d.errors.len, 0);
    /* Each load generates a fresh random token. */
    struct cb_config *c2 = load(NULL, &d, &rc);
    assert_string_not_equal(c->server.auth_token, c2->server.auth_token);
    cb_config_free(c);
    cb_config_free(c2);
    cb_config_diag_free(&d);
}

static void file_values_and_templates(void **state)
{
    (void)state;
    struct cb_config_diag d;
    int rc;
    struct cb_config *c = load("[server]\nport = 9999\nauth_token = \"tok\"\n"
                               "unix_socket = \"~/s.sock\"\n"
                               "[proxy]\nallow_private_cidrs = [\"127.0.0.0/8\"]\n"
                               "[images.templates.researcher]\nimage = \"alpine:3\"\n"
                               "network_allowlist = [\"api.github.com\"]\n"
                               "command = [\"sh\", \"-c\", \"true\"]\nmax_lifetime_ms = 5000\n"
                               "[images.templates.mini]\nimage = \"busybox\"\n",
                               &d, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(c->server.port, 9999);
    assert_string_equal(c->server.auth_token, "tok");
    assert_string_equal(c->server.unix_socket, "/home/u/s.sock");
    assert_string_equal(c->proxy.allow_private_cidrs.items[0], "127.0.0.0/8");
    assert_int_equal(c->n_templates, 2);
    assert_string_equal(c->templates[0].name, "researcher");
    assert_string_equal(c->templates[0].image, "alpine:3");
    assert_true(c->templates[0].has_command);
    assert_int_equal(c->templates[0].command.len, 3);
    assert_int_equal(c->templates[0].max_lifetime_ms, 5000);
    assert_string_equal(c->templates[1].description, "");
    assert_false(c->templates[1].has_command);
    cb_config_free(c);
    cb_config_diag_free(&d);
}

static void errors_name_key_line_and_range(void **state)
{
    (void)state;
    struct cb_config_diag d;
    int rc;
    struct cb_config *c = load("[server]\nport = 0\nhost = 5\n[sandbox]\n"
                               "default_fuel = -3\nwatch_tools = \"yes\"\n"
                               "[container_policy]\nallowed_policies = [\"root\"]\n"
                               "[images.templates.x]\ndescription = \"no image\"\n",
                               &d, &rc);
    assert_null(c);
    assert_int_equal(rc, -EINVAL);
    assert_true(has_line(&d.errors, "t.toml:2: [server] port = 0 is out of range (allowed "
                                    "1..65535)"));
    assert_true(has_line(&d.errors, "t.toml:3: [server] host must be a string, got integer"));
    assert_true(has_line(&d.errors, "t.toml:5: [sandbox] default_fuel = -3 is out of range"));
    assert_true(has_line(&d.errors, "t.toml:6: [sandbox] watch_tools must be a boolean"));
    assert_true(has_line(&d.errors, "unknown policy 'root'"));
    assert_true(has_line(&d.errors, "[images.templates.x] image is required"));
    assert_int_equal(d.errors.len, 6);
    cb_config_diag_free(&d);
}

static void unknown_keys_are_warnings(void **state)
{
    (void)state;
    struct cb_config_diag d;
    int rc;
    struct cb_config *c = load("top = 1\n[server]\nprot = 1\n[nope]\nx = 1\n"
                               "[containers]\ndefault_image = \"x\"\n",
                               &d, &rc);
    assert_int_equal(rc, 0);
    assert_true(has_line(&d.warnings, "t.toml:1: unknown key 'top'"));
    assert_true(has_line(&d.warnings, "t.toml:3: unknown key 'prot' in [server]"));
    assert_true(has_line(&d.warnings, "unknown section 'nope'"));
    assert_true(has_line(&d.warnings, "t.toml:7: unknown key 'default_image' in [containers]"));
    cb_config_free(c);
    cb_config_diag_free(&d);
}

static void environment_overrides(void **state)
{
    (void)state;
    struct cb_config_diag d;
    int rc;
    setenv("CLAWBOX_PORT", "9999", 1);
    setenv("CLAWBOX_AUTH_TOKEN", "from-env", 1);
    setenv("CLAWBOX_TOOL_DIR", "~/t", 1);
    setenv("CLAWBOX_LOG_LEVEL", "debug", 1);
    struct cb_config *c = load("[server]\nport = 1234\nauth_token = \"file\"\n", &d, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(c->server.port, 9999);
    assert_string_equal(c->server.auth_token, "from-env");
    assert_string_equal(c->sandbox.tool_dir, "/home/u/t");
    assert_string_equal(c->logging.level, "debug");
    cb_config_free(c);
    cb_config_diag_free(&d);
    setenv("CLAWBOX_PORT", "70000", 1);
    c = load(NULL, &d, &rc);
    assert_null(c);
    assert_true(has_line(&d.errors, "environment CLAWBOX_PORT"));
    cb_config_diag_free(&d);
    unsetenv("CLAWBOX_PORT");
    unsetenv("CLAWBOX_AUTH_TOKEN");
    unsetenv("CLAWBOX_TOOL_DIR");
    unsetenv("CLAWBOX_LOG_LEVEL");
}

static void empty_token_and_syntax_errors(void **state)
{
    (void)state;
    struct cb_config_diag d;
    int rc;
    assert_null(load("[server]\nauth_token = \"\"\n", &d, &rc));
    assert_true(has_line(&d.errors, "auth_token must not be empty"));
    cb_config_diag_free(&d);
    assert_null(load("[server]\nport = \n", &d, &rc));
    assert_true(has_line(&d.errors, "line 2"));
    cb_config_diag_free(&d);
    assert_null(load("[server]\nhost = \"a\\u0000b\"\n", &d, &rc));
    assert_true(has_line(&d.errors, "NUL"));
    cb_config_diag_free(&d);
}

static void reference_lists_every_key(void **state)
{
    (void)state;
    struct cb_buf b;
    cb_buf_init(&b, 1 << 20);
    assert_int_equal(cb_config_render_reference(&b), 0);
    for (size_t i = 0; i < cb__config_nopts; i++) {
        char needle[128];
        snprintf(needle, sizeof(needle), "| `%s` |", cb__config_opts[i].key);
        assert_non_null(strstr(b.data, needle));
    }
    assert_non_null(strstr(b.data, "`CLAWBOX_AUTH_TOKEN`"));
    cb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_match_the_reference),
        cmocka_unit_test(file_values_and_templates),
        cmocka_unit_test(errors_name_key_line_and_range),
        cmocka_unit_test(unknown_keys_are_warnings),
        cmocka_unit_test(environment_overrides),
        cmocka_unit_test(empty_token_and_syntax_errors),
        cmocka_unit_test(reference_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
