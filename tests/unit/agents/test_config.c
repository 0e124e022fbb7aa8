/* AgentConfig: the agent's own fields, the spawn fields checked by the
 * container parser, the stored form, and the workspace kept beneath
 * workspace_root whatever links or paths a client sends. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agents/config.h"
#include "config/config.h"
#include "core/fs.h"

static struct cb_config *cfg;
static char tmp[] = "/tmp/cb-agents-XXXXXX";
static char root[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    static const char text[] = "[containers]\ndefault_timeout_ms = 30000\nmax_timeout_ms = 60000\n";
    struct cb_config_diag d = {0};
    struct cb_error err = {0};
    int r = cb_config_load_text("t.toml", text, sizeof(text) - 1, &cfg, &d, &err);
    cb_config_diag_free(&d);
    if (r < 0)
        fprintf(stderr, "config: %s\n", err.msg);
    if (r < 0 || mkdtemp(tmp) == NULL)
        return -1;
    snprintf(root, sizeof(root), "%s/ws", tmp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cb_config_free(cfg);
    return cb_rm_tree(tmp);
}

static int parse(const char *text, struct cb_agent_config *c, struct cb_error *err)
{
    json_error_t je;
    json_t *body = json_loads(text, JSON_ALLOW_NUL, &je);
    assert_non_null(body);
    int rc = cb_agent_config_parse(body, cfg, c, err);
    json_decref(body);
    return rc;
}

static void expect_error(const char *text, int code, const char *words)
{
    struct cb_agent_config c;
    struct cb_error err = {0};
    assert_int_equal(parse(text, &c, &err), code);
    if (strstr(err.msg, words) == NULL)
        fail_msg("'%s' does not say '%s'", err.msg, words);
}

static void minimal_config_gets_defaults(void **state)
{
    (void)state;
    struct cb_agent_config c;
    struct cb_error err = {0};
    assert_int_equal(parse("{\"agent_id\": \"a-1\", \"name\": \"A\"}", &c, &err), 0);
    assert_string_equal(c.id, "a-1");
    assert_string_equal(c.name, "A");
    assert_null(c.workspace.host_path);
    assert_string_equal(c.workspace.mount_point, "/workspace");
    assert_false(c.workspace.read_only);
    assert_int_equal(c.lifecycle.max_idle_ms, 3600000);
    assert_int_equal(c.lifecycle.max_lifetime_ms, 0);
    assert_false(c.lifecycle.restart_on_crash);
    assert_int_equal(c.lifecycle.max_restarts, 3);
    assert_string_equal(json_string_value(json_object_get(c.spawn, "task")), "agent:a-1");
    assert_string_equal(json_string_value(json_object_get(c.spawn, "policy")), "container");
    cb_agent_config_clear(&c);
}

static void ids_follow_the_reference_rule(void **state)
{
    (void)state;
    expect_error("{\"agent_id\": \"\", \"name\": \"A\"}", -EINVAL, "1-64");
    char text[256];
    snprintf(text, sizeof(text), "{\"agent_id\": \"%065d\", \"name\": \"A\"}", 0);
    expect_error(text, -EINVAL, "1-64");
    expect_error("{\"agent_id\": \"a..b\", \"name\": \"A\"}", -EINVAL, "path traversal");
    expect_error("{\"agent_id\": \"a/b\", \"name\": \"A\"}", -EINVAL, "path traversal");
    expect_error("{\"agent_id\": \"a\\\\b\", \"name\": \"A\"}", -EINVAL, "path traversal");
    expect_error("{\"agent_id\": \"a_b\", \"name\": \"A\"}", -EINVAL, "hyphens");
    expect_error("{\"agent_id\": \"a\\u00e9\", \"name\": \"A\"}", -EINVAL, "hyphens");
    expect_error("{\"agent_id\": \"a\\u0000b\", \"name\": \"A\"}", -EBADMSG, "NUL");
    expect_error("{\"agent_id\": 5, \"name\": \"A\"}", -EBADMSG, "agent_id");
    expect_error("{\"name\": \"A\"}", -EBADMSG, "agent_id: missing");
    expect_error("{\"agent_id\": \"a\"}", -EBADMSG, "name: missing");
    expect_error("[]", -EBADMSG, "JSON object");
    snprintf(text, sizeof(text), "{\"agent_id\": \"%064d\", \"name\": \"A\"}", 0);
    struct cb_agent_config c;
    struct cb_error err;
    assert_int_equal(parse(text, &c, &err), 0);
    cb_agent_config_clear(&c);
}

static void workspace_and_lifecycle_are_checked(void **state)
{
    (void)state;
    const char *pre = "{\"agent_id\": \"a\", \"name\": \"A\", ";
    const struct {
        const char *rest;
        int code;
        const char *words;
    } cases[] = {
        {"\"workspace\": 1}", -EBADMSG, "workspace: expected"},
        {"\"workspace\": {\"mount_point\": \"work\"}}", -EINVAL, "absolute"},
        {"\"workspace\": {\"mount_point\": \"/\"}}", -EINVAL, "absolute"},
        {"\"workspace\": {\"mount_point\": \"/a/../proc\"}}", -EINVAL, "'..'"},
        {"\"workspace\": {\"mount_point\": \"/a//b\"}}", -EINVAL, "empty"},
        {"\"workspace\": {\"mount_point\": \"/proc/x\"}}", -EINVAL, "reserved"},
        {"\"workspace\": {\"mount_point\": \"/run/clawbox\"}}", -EINVAL, "reserved"},
        {"\"workspace\": {\"mount_point\": \"/run\"}}", -EINVAL, "reserved"},
        {"\"workspace\": {\"mount_point\": \"/etc\"}}", -EINVAL, "reserved"},
        {"\"workspace\": {\"mount_point\": \"/tmp\"}}", -EINVAL, "reserved"},
        {"\"workspace\": {\"mount_point\": \"/etc/hosts\"}}", -EINVAL, "reserved"},
        {"\"workspace\": {\"host_path\": \"\"}}", -EINVAL, "host_path"},
        {"\"workspace\": {\"read_only\": \"yes\"}}", -EBADMSG, "read_only"},
        {"\"lifecycle\": []}", -EBADMSG, "lifecycle: expected"},
        {"\"lifecycle\": {\"max_idle_ms\": -1}}", -EBADMSG, "max_idle_ms"},
        {"\"lifecycle\": {\"max_idle_ms\": 0}}", -EINVAL, "at least 1"},
        {"\"lifecycle\": {\"max_lifetime_ms\": 0}}", -EINVAL, "max_lifetime_ms"},
        {"\"lifecycle\": {\"max_restarts\": 101}}", -EINVAL, "at most 100"},
        {"\"lifecycle\": {\"restart_on_crash\": 1}}", -EBADMSG, "restart_on_crash"},
        /* The spawn fields go through the container parser. */
        {"\"env\": {\"A\": 1}}", -EBADMSG, "env.A"},
        {"\"policy\": \"bogus\"}", -EBADMSG, "unknown policy"},
        {"\"command\": []}", -EINVAL, "command"},
        {"\"capabilities\": {\"resources\": {\"timeout_ms\": 0}}}", -EINVAL, "timeout_ms"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "%s%s", pre, cases[i].rest);
        expect_error(text, cases[i].code, cases[i].words);
    }
}

static void stored_form_reads_back_the_same(void **state)
{
    (void)state;
    struct cb_agent_config a, b;
    struct cb_error err = {0};
    assert_int_equal(
        parse(
            "{\"agent_id\": \"a\", \"name\": \"A\", \"image\": \"clawbox/x:1\", "
            "\"env\": {\"K\": \"v\"}, \"command\": [\"sleep\", \"9\"], \"policy\": \"container\", "
            "\"workspace\": {\"host_path\": \"shared\", \"mount_point\": \"/w\", "
            "\"read_only\": true}, \"lifecycle\": {\"max_idle_ms\": 500, \"max_lifetime_ms\": 900, "
            "\"restart_on_crash\": true, \"max_restarts\": 2}}",
            &a, &err),
        0);
    json_t *j = cb_agent_config_json(&a);
    assert_int_equal(cb_agent_config_parse(j, cfg, &b, &err), 0);
    json_t *k = cb_agent_config_json(&b);
    assert_true(json_equal(j, k));
    assert_true(json_equal(a.spawn, b.spawn));
    assert_string_equal(b.workspace.host_path, "shared");
    assert_string_equal(b.workspace.mount_point, "/w");
    assert_true(b.workspace.read_only);
    assert_int_equal(b.lifecycle.max_idle_ms, 500);
    assert_int_equal(b.lifecycle.max_lifetime_ms, 900);
    assert_true(b.lifecycle.restart_on_crash);
    assert_int_equal(b.lifecycle.max_restarts, 2);
    json_decref(j);
    json_decref(k);
    cb_agent_config_clear(&a);
    cb_agent_config_clear(&b);
}

/* Opens the workspace of a config with this host_path (NULL: default). */
static int open_ws(const char *host_path, char *path, struct cb_error *err)
{
    struct cb_agent_config c;
    char text[PATH_MAX + 128];
    if (host_path != NULL)
        snprintf(text, sizeof(text),
                 "{\"agent_id\": \"ag\", \"name\": \"A\", \"workspace\": {\"host_path\": \"%s\"}}",
                 host_path);
    else
        snprintf(text, sizeof(text), "{\"agent_id\": \"ag\", \"name\": \"A\"}");
    assert_int_equal(parse(text, &c, err), 0);
    int fd = cb_agent_workspace_open(root, &c, path, err);
    cb_agent_config_clear(&c);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? fd : 0;
}

static void workspace_stays_beneath_the_root(void **state)
{
    (void)state;
    char path[CB_AGENT_PATH_MAX], want[PATH_MAX + 32], p[PATH_MAX + 32];
    struct cb_error err = {0};
    /* The default directory is created, root and all. */
    assert_int_equal(open_ws(NULL, path, &err), 0);
    snprintf(want, sizeof(want), "%s/ag", root);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    /* A directory inside, by relative and by absolute path. */
    snprintf(p, sizeof(p), "%s/shared", root);
    assert_int_equal(mkdir(p, 0750), 0);
    assert_int_equal(open_ws("shared", path, &err), 0);
    assert_string_equal(path, p);
    assert_int_equal(open_ws(p, path, &err), 0);
    assert_string_equal(path, p);
    /* Escapes: outside, "..", a link to outside, a missing directory. */
    assert_int_equal(open_ws("/etc", path, &err), -EXDEV);
    assert_non_null(strstr(err.msg, "outside workspace_root"));
    assert_int_equal(open_ws("../", path, &err), -EXDEV);
    assert_int_equal(open_ws(".", path, &err), -EXDEV);
    assert_non_null(strstr(err.msg, "not workspace_root itself"));
    assert_int_equal(open_ws(root, path, &err), -EXDEV);
    snprintf(p, sizeof(p), "%s/shared/../../ws/ag", root);
    assert_int_equal(open_ws(p, path, &err), -EXDEV);
    snprintf(p, sizeof(p), "%s/escape", root);
    assert_int_equal(symlink(tmp, p), 0);
    assert_int_equal(open_ws("escape", path, &err), -EXDEV);
    assert_non_null(strstr(err.msg, "leads outside"));
    snprintf(p, sizeof(p), "%s/abs", root);
    assert_int_equal(symlink("/", p), 0);
    assert_int_equal(open_ws("abs/etc", path, &err), -EXDEV);
    assert_int_equal(open_ws("missing", path, &err), -ENOENT);
    /* A link that stays inside is followed. */
    snprintf(p, sizeof(p), "%s/inside", root);
    assert_int_equal(symlink("shared", p), 0);
    assert_int_equal(open_ws("inside", path, &err), 0);
    snprintf(want, sizeof(want), "%s/shared", root);
    assert_string_equal(path, want);
}

/* At a start the workspace is opened again by its registered path, with
 * no symbolic link on the way. */
static void workspace_reopen_refuses_links(void **state)
{
    (void)state;
    char path[CB_AGENT_PATH_MAX], p[PATH_MAX + 32], moved[PATH_MAX + 32];
    struct cb_error err = {0};
    assert_int_equal(open_ws(NULL, path, &err), 0); /* <root>/ag */
    int fd = cb_agent_workspace_reopen(root, path, false, &err);
    assert_true(fd >= 0);
    close(fd);
    /* Swapped for a link to a directory inside the root: still refused. */
    snprintf(p, sizeof(p), "%s/ag", root);
    snprintf(moved, sizeof(moved), "%s/ag-moved", root);
    assert_int_equal(rename(p, moved), 0);
    assert_int_equal(symlink("ag-moved", p), 0);
    assert_int_equal(cb_agent_workspace_reopen(root, path, true, &err), -ELOOP);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_int_equal(unlink(p), 0);
    /* Missing: made again when it is the default one, else -ENOENT. */
    assert_int_equal(cb_agent_workspace_reopen(root, path, false, &err), -ENOENT);
    fd = cb_agent_workspace_reopen(root, path, true, &err);
    assert_true(fd >= 0);
    close(fd);
    /* A path that is not beneath the root, or the root itself. */
    assert_int_equal(cb_agent_workspace_reopen(root, "/etc", false, &err), -EXDEV);
    assert_int_equal(cb_agent_workspace_reopen(root, root, false, &err), -EXDEV);
    snprintf(p, sizeof(p), "%s/../x", root);
    assert_int_equal(cb_agent_workspace_reopen(root, p, false, &err), -EXDEV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_config_gets_defaults),
        cmocka_unit_test(ids_follow_the_reference_rule),
        cmocka_unit_test(workspace_and_lifecycle_are_checked),
        cmocka_unit_test(stored_form_reads_back_the_same),
        cmocka_unit_test(workspace_stays_beneath_the_root),
        cmocka_unit_test(workspace_reopen_refuses_links),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
