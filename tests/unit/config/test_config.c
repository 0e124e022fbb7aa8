#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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
                               "[containers]\nmax_container = 3\n",
                               &d, &rc);
    assert_int_equal(rc, 0);
    assert_true(has_line(&d.warnings, "t.toml:1: unknown key 'top'"));
    assert_true(has_line(&d.warnings, "t.toml:3: unknown key 'prot' in [server]"));
    assert_true(has_line(&d.warnings, "unknown section 'nope'"));
    assert_true(has_line(&d.warnings, "t.toml:7: unknown key 'max_container' in [containers]"));
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

/* A regular file whose read(2) fails with EIO: sysfs has one on most
 * machines (a runtime-PM attribute of a device without runtime PM). */
static const char *eio_file(void)
{
    static const char *const candidates[] = {
        "/sys/devices/software/power/autosuspend_delay_ms",
        "/sys/devices/platform/power/autosuspend_delay_ms",
        "/sys/devices/system/cpu/power/autosuspend_delay_ms",
    };
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        char c;
        int fd = open(candidates[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, &c, 1);
        int e = errno;
        close(fd);
        if (n < 0 && e == EIO)
            return candidates[i];
    }
    return NULL;
}

/* A config that cannot be read is an error naming the file and why, never
 * an empty (all defaults) config. */
static void read_errors_are_errors(void **state)
{
    (void)state;
    struct cb_config *c = NULL;
    struct cb_config_diag d = {0};
    struct cb_error err = {0};
    assert_int_equal(cb_config_load("/tmp", &c, &d, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "/tmp: not a regular file"));
    assert_null(c);
    cb_config_diag_free(&d);
    const char *eio = eio_file();
    if (eio == NULL)
        skip();
    memset(&d, 0, sizeof(d));
    assert_int_equal(cb_config_load(eio, &c, &d, &err), -EIO);
    assert_null(c);
    assert_non_null(strstr(err.msg, eio));
    assert_non_null(strstr(err.msg, strerror(EIO)));
    assert_true(has_line(&d.errors, strerror(EIO)));
    cb_config_diag_free(&d);
}

static void load_file_with_mode(const char *path, const char *text, mode_t mode,
                                struct cb_config_diag *d)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    struct cb_config *c = NULL;
    struct cb_error err = {0};
    memset(d, 0, sizeof(*d));
    assert_int_equal(cb_config_load(path, &c, d, &err), 0);
    cb_config_free(c);
}

/* A config holding auth_token that other users can read (or write) gets a
 * warning naming the file and its mode; 0600, or a file without the token,
 * gets none. */
static void readable_token_file_warns(void **state)
{
    (void)state;
    char dir[] = "/tmp/cb-config-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.toml", dir);
    static const char token[] = "[server]\nauth_token = \"0123456789abcdef\"\n";
    struct cb_config_diag d;
    static const mode_t loose[] = {0644, 0640, 0604, 0620};
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        char mode[16];
        snprintf(mode, sizeof(mode), "mode is %04o", (unsigned)loose[i]);
        load_file_with_mode(path, token, loose[i], &d);
        assert_int_equal(d.warnings.len, 1);
        assert_true(has_line(&d.warnings, path));
        assert_true(has_line(&d.warnings, mode));
        assert_true(has_line(&d.warnings, "chmod 600"));
        assert_false(has_line(&d.warnings, "0123456789abcdef"));
        cb_config_diag_free(&d);
    }
    load_file_with_mode(path, token, 0600, &d);
    assert_int_equal(d.warnings.len, 0);
    cb_config_diag_free(&d);
    load_file_with_mode(path, "[server]\nport = 9801\n", 0644, &d);
    assert_int_equal(d.warnings.len, 0);
    cb_config_diag_free(&d);
    unlink(path);
    rmdir(dir);
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
        cmocka_unit_test(read_errors_are_errors),
        cmocka_unit_test(readable_token_file_warns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
