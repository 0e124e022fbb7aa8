/* Registry logic with a fake loader: loading, manifest precedence,
 * registration, persistence across reopen, reload bookkeeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sched.h>
#include <stdatomic.h>

#include "helpers.h"

static int setup(void **state)
{
    struct fixture *fx = cb_xmalloc(sizeof(*fx));
    fixture_init(fx);
    *state = fx;
    return 0;
}

static void reopen(struct fixture *fx)
{
    fixture_close(fx);
    fixture_open_ok(fx);
}

/* The manifest of a loaded tool as compact JSON (caller frees). */
static char *manifest_of(struct cb_registry *r, const char *name)
{
    struct cb_tool *t = cb_registry_get(r, name);
    assert_non_null(t);
    char *s = json_dumps(t->manifest->doc, JSON_COMPACT);
    cb_tool_unref(t);
    return s;
}

static const char *description_of(struct cb_registry *r, const char *name, char *buf, size_t n)
{
    struct cb_tool *t = cb_registry_get(r, name);
    assert_non_null(t);
    snprintf(buf, n, "%s",
             json_string_value(
                 json_object_get(json_object_get(t->manifest->doc, "tool"), "description")));
    cb_tool_unref(t);
    return buf;
}

static int do_register(struct fixture *fx, const char *json, bool *created, struct cb_error *err)
{
    json_t *m = parse(json);
    int rc = cb_registry_register(fx->reg, m, created, err);
    json_decref(m);
    return rc;
}

static void missing_tool_dir_is_zero_tools(void **state)
{
    struct fixture *fx = *state;
    fx->opts.tool_dir = "/nonexistent/cb-registry-test";
    fx->opts.watch = true;
    fixture_open_ok(fx);
    assert_int_equal(cb_registry_counts(fx->reg).ready, 0);
    json_t *report = cb_registry_reload(fx->reg);
    assert_int_equal(json_integer_value(json_object_get(report, "reloaded")), 0);
    assert_int_equal(json_array_size(json_object_get(report, "tools")), 0);
    json_decref(report);
}

static void open_loads_modules_and_skips_bad_ones(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "echo.wasm", "v1");
    put_file(fx, "alpha.wasm", "a1");
    put_file(fx, "my.tool.wasm", "x");
    put_file(fx, "broken.wasm", "FAIL");
    put_file(fx, "notes.txt", "n");
    put_file(fx, ".wasm", "n");
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/dir.wasm", fx->tool_dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    fixture_open_ok(fx);
    assert_int_equal(cb_registry_counts(fx->reg).ready, 2);
    assert_int_equal(fake_calls(&fx->loader), 3); /* echo, alpha, broken */
    struct cb_tool *t = cb_registry_get(fx->reg, "echo");
    assert_non_null(t);
    assert_string_equal(t->name, "echo");
    assert_string_equal(t->so_path, "/fake/v1.so");
    /* sha256("v1") */
    assert_string_equal(t->sha256,
                        "3bfc269594ef649228e9a74bab00f042efc91d5acc6fbee31a382e80d42388fe");
    cb_tool_unref(t);
    assert_null(cb_registry_get(fx->reg, "broken"));
    assert_null(cb_registry_get(fx->reg, "my.tool"));
    assert_null(cb_registry_get(fx->reg, "nope"));
    struct cb_registry_counts n = cb_registry_counts(fx->reg);
    assert_int_equal(n.ready, 2);
    assert_int_equal(n.compiling, 0);
    assert_int_equal(n.failed, 1);
    json_t *list = cb_registry_manifests(fx->reg);
    assert_int_equal(json_array_size(list), 3);
    json_t *failed = json_array_get(list, 2);
    assert_string_equal(json_string_value(json_object_get(failed, "state")), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(failed, "error")), "fake compile"));
    json_decref(list);
    char *text = render_metrics(fx->metrics);
    assert_non_null(strstr(text, "clawbox_tools_loaded 2\n"));
    assert_non_null(strstr(text, "clawbox_tool_compile_failures_total{tool=\"broken\"} 1\n"));
    free(text);
}

static void sha256_is_of_the_module_bytes(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "abc.wasm", "abc");
    fixture_open_ok(fx);
    struct cb_tool *t = cb_registry_get(fx->reg, "abc");
    assert_non_null(t);
    assert_string_equal(t->sha256,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cb_tool_unref(t);
}

static void manifests_are_sorted_auto_manifests(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "zeta.wasm", "z");
    put_file(fx, "Beta.wasm", "b");
    put_file(fx, "alpha.wasm", "a");
    fixture_open_ok(fx);
    json_t *all = cb_registry_manifests(fx->reg);
    char *text = json_dumps(all, JSON_COMPACT);
    const char *auto_rest = "\",\"description\":\"Auto-loaded WASM tool\",\"version\":\"0.0.0\"},"
                            "\"network\":null,\"credentials\":null,\"resources\":null,"
                            "\"state\":\"ready\",\"manifest_source\":\"auto\"}";
    char want[1024];
    snprintf(want, sizeof(want),
             "[{\"tool\":{\"name\":\"Beta%s,{\"tool\":{\"name\":\"alpha%s,"
             "{\"tool\":{\"name\":\"zeta%s]",
             auto_rest, auto_rest, auto_rest);
    assert_string_equal(text, want);
    free(text);
    json_decref(all);
}

static void file_manifest_beats_auto_and_invalid_ones_fall_back(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "good.wasm", "g");
    put_file(fx, "good.json",
             "{\"tool\":{\"name\":\"good\",\"description\":\"from file\"},"
             "\"network\":{\"allowlist\":[\"api.example.com\"]}}");
    put_file(fx, "bad.wasm", "b");
    put_file(fx, "bad.json", "{\"tool\":{\"name\":\"bad\"},\"network\":{\"allowlist\":[\"*\"]}}");
    put_file(fx, "other.wasm", "o");
    put_file(fx, "other.json", "{\"tool\":{\"name\":\"good\"}}");
    put_file(fx, "junk.wasm", "j");
    put_file(fx, "junk.json", "{not json");
    fixture_open_ok(fx);
    char *m = manifest_of(fx->reg, "good");
    assert_string_equal(m, "{\"tool\":{\"name\":\"good\",\"description\":\"from file\",\"version\":"
                           "\"0.1.0\"},\"network\":{\"allowlist\":[\"api.example.com\"],"
                           "\"max_concurrent\":5},\"credentials\":null,\"resources\":null}");
    free(m);
    char buf[128];
    assert_string_equal(description_of(fx->reg, "bad", buf, sizeof(buf)), "Auto-loaded WASM tool");
    assert_string_equal(description_of(fx->reg, "other", buf, sizeof(buf)),
                        "Auto-loaded WASM tool");
    assert_string_equal(description_of(fx->reg, "junk", buf, sizeof(buf)), "Auto-loaded WASM tool");
    /* an edited manifest file is picked up by a reload without a recompile */
    int calls = fake_calls(&fx->loader);
    put_file(fx, "bad.json", "{\"tool\":{\"name\":\"bad\",\"description\":\"fixed\"}}");
    json_decref(cb_registry_reload(fx->reg));
    assert_string_equal(description_of(fx->reg, "bad", buf, sizeof(buf)), "fixed");
    assert_int_equal(fake_calls(&fx->loader), calls);
}

static void registered_manifest_beats_file_and_survives_reopen(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "echo.wasm", "v1");
    put_file(fx, "echo.json", "{\"tool\":{\"name\":\"echo\",\"description\":\"from file\"}}");
    fixture_open_ok(fx);
    bool created = true;
    struct cb_error err = {0};
    int rc = do_register(fx,
                         "{\"tool\":{\"name\":\"echo\",\"description\":\"registered\"},"
                         "\"resources\":{\"max_memory_mb\":64},\"input_schema\":{\"a\":1}}",
                         &created, &err);
    assert_int_equal(rc, 0);
    assert_false(created); /* the file manifest existed */
    const char *want =
        "{\"tool\":{\"name\":\"echo\",\"description\":\"registered\",\"version\":"
        "\"0.1.0\"},\"network\":null,\"credentials\":null,\"resources\":{"
        "\"default_timeout_ms\":30000,\"max_timeout_ms\":120000,"
        "\"default_memory_mb\":256,\"max_memory_mb\":64},\"input_schema\":{\"a\":1}}";
    char *m = manifest_of(fx->reg, "echo");
    assert_string_equal(m, want);
    free(m);
    /* persisted in the state DB, normalised */
    char *stored = NULL;
    assert_int_equal(cb_state_get(fx->state, CB_STATE_TOOLS, "echo", &stored, &err), 0);
    assert_string_equal(stored, want);
    free(stored);
    reopen(fx);
    m = manifest_of(fx->reg, "echo");
    assert_string_equal(m, want);
    free(m);
    /* a reload of the same module keeps it too */
    char path[256];
    snprintf(path, sizeof(path), "%s/echo.wasm", fx->tool_dir);
    assert_int_equal(utimensat(AT_FDCWD, path, NULL, 0), 0);
    json_decref(cb_registry_reload(fx->reg));
    m = manifest_of(fx->reg, "echo");
    assert_string_equal(m, want);
    free(m);
}

static int expect_sha(const char *name, const char *manifest, const char *sha256, void *ud)
{
    (void)manifest;
    assert_string_equal(name, "web");
    assert_non_null(sha256);
    assert_string_equal(sha256, ud);
    return 0;
}

/* A registered manifest belongs to the module it was registered for: other
 * code installed under the same name does not inherit its allowlist and
 * credentials, across reloads and reopens; the module coming back gets it
 * again. */
static void registered_manifest_is_bound_to_the_module(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "web.wasm", "v1");
    fixture_open_ok(fx);
    struct cb_error err = {0};
    bool created;
    assert_int_equal(do_register(fx,
                                 "{\"tool\":{\"name\":\"web\",\"description\":\"granted\"},"
                                 "\"network\":{\"allowlist\":[\"api.example.com\"]},"
                                 "\"credentials\":{\"available\":[\"token\"]}}",
                                 &created, &err),
                     0);
    char buf[128];
    assert_string_equal(description_of(fx->reg, "web", buf, sizeof(buf)), "granted");
    put_file(fx, "web.wasm", "v2-other-code");
    json_decref(cb_registry_reload(fx->reg));
    _cleanup_free_ char *m = manifest_of(fx->reg, "web");
    assert_string_equal(m, "{\"tool\":{\"name\":\"web\",\"description\":\"Auto-loaded WASM "
                           "tool\",\"version\":\"0.0.0\"},\"network\":null,\"credentials\":null,"
                           "\"resources\":null}");
    /* nor after a restart, and nor with a file manifest beside it */
    put_file(fx, "web.json", "{\"tool\":{\"name\":\"web\",\"description\":\"file\"}}");
    reopen(fx);
    assert_string_equal(description_of(fx->reg, "web", buf, sizeof(buf)), "file");
    /* the original module back: its registration applies again */
    put_file(fx, "web.wasm", "v1");
    json_decref(cb_registry_reload(fx->reg));
    assert_string_equal(description_of(fx->reg, "web", buf, sizeof(buf)), "granted");
    /* the row records which module it is for */
    char sha[65];
    struct cb_tool *t = cb_registry_get(fx->reg, "web");
    snprintf(sha, sizeof(sha), "%s", t->sha256);
    cb_tool_unref(t);
    assert_int_equal(cb_state_list_tools(fx->state, expect_sha, sha, &err), 0);
}

/* A stored manifest without a module hash (from before manifests were bound
 * to modules) is not applied to whatever module has the name. */
static void unbound_stored_manifest_is_ignored(void **state)
{
    struct fixture *fx = *state;
    struct cb_error err = {0};
    assert_int_equal(cb_state_put(fx->state, CB_STATE_TOOLS, "old",
                                  "{\"tool\":{\"name\":\"old\",\"description\":\"old grant\"}}",
                                  &err),
                     0);
    put_file(fx, "old.wasm", "o");
    fixture_open_ok(fx);
    char buf[128];
    assert_string_equal(description_of(fx->reg, "old", buf, sizeof(buf)), "Auto-loaded WASM tool");
}

static void registration_codes(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "early.wasm", "e");
    fixture_open_ok(fx);
    struct cb_error err = {0};
    bool created = true;
    /* loaded at open: its auto manifest counts as existing (reference: 200) */
    assert_int_equal(do_register(fx, "{\"tool\":{\"name\":\"early\"}}", &created, &err), 0);
    assert_false(created);
    /* first loaded by a reload: no manifest before (reference: 201) */
    put_file(fx, "late.wasm", "l");
    json_decref(cb_registry_reload(fx->reg));
    created = false;
    assert_int_equal(do_register(fx, "{\"tool\":{\"name\":\"late\"}}", &created, &err), 0);
    assert_true(created);
    created = true;
    assert_int_equal(do_register(fx, "{\"tool\":{\"name\":\"late\"}}", &created, &err), 0);
    assert_false(created);
    /* not loaded */
    assert_int_equal(do_register(fx, "{\"tool\":{\"name\":\"ghost\"}}", &created, &err), -ENOENT);
    assert_string_equal(err.msg, "tool 'ghost' not loaded — register only loaded tools");
    /* validation comes first */
    assert_int_equal(do_register(fx, "{\"tool\":{\"name\":\"a b\"}}", &created, &err), -EINVAL);
    assert_int_equal(
        do_register(fx, "{\"tool\":{\"name\":\"early\"},\"network\":1}", &created, &err), -EBADMSG);
    assert_string_equal(err.msg, "field 'network' must be an object or null");
    /* a failed registration changes nothing */
    char *stored = NULL;
    assert_int_equal(cb_state_get(fx->state, CB_STATE_TOOLS, "ghost", &stored, &err), -ENOENT);
}

static void wildcard_all_needs_the_server_setting(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "web.wasm", "w");
    fx->opts.allow_wildcard_all = true;
    fixture_open_ok(fx);
    struct cb_error err = {0};
    bool created;
    assert_int_equal(
        do_register(fx, "{\"tool\":{\"name\":\"web\"},\"network\":{\"allowlist\":[\"*\"]}}",
                    &created, &err),
        0);
    /* turned off later: the stored manifest is ignored (deny-all), not used */
    fixture_close(fx);
    fx->opts.allow_wildcard_all = false;
    fixture_open_ok(fx);
    char buf[128];
    assert_string_equal(description_of(fx->reg, "web", buf, sizeof(buf)), "Auto-loaded WASM tool");
    char *stored = NULL;
    assert_int_equal(cb_state_get(fx->state, CB_STATE_TOOLS, "web", &stored, &err), 0);
    free(stored);
}

static void reload_bookkeeping(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "a.wasm", "a1");
    fixture_open_ok(fx);
    assert_int_equal(fake_calls(&fx->loader), 1);
    /* add */
    put_file(fx, "b.wasm", "b1");
    put_file(fx, "c.d.wasm", "x");
    json_t *rep = cb_registry_reload(fx->reg);
    char *text = json_dumps(rep, JSON_COMPACT);
    assert_string_equal(text,
                        "{\"reloaded\":3,\"tools\":[\"a\",\"b\"],\"failed\":[{\"tool\":\"c.d\","
                        "\"error\":\"invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] "
                        "only\"}]}");
    free(text);
    json_decref(rep);
    assert_int_equal(fake_calls(&fx->loader), 2);
    /* unchanged: nothing compiled */
    json_decref(cb_registry_reload(fx->reg));
    assert_int_equal(fake_calls(&fx->loader), 2);
    /* change (other size, so the stamp differs even on a coarse clock) */
    put_file(fx, "a.wasm", "a2-new");
    json_decref(cb_registry_reload(fx->reg));
    assert_int_equal(fake_calls(&fx->loader), 3);
    char *so = loaded_so(fx->reg, "a");
    assert_string_equal(so, "/fake/a2-new.so");
    free(so);
    /* failing change: old version stays, failure reported and counted */
    put_file(fx, "b.wasm", "FAIL-b");
    rep = cb_registry_reload(fx->reg);
    text = json_dumps(json_object_get(rep, "failed"), JSON_COMPACT);
    assert_non_null(strstr(text, "{\"tool\":\"b\",\"error\":\"fake compile error\"}"));
    free(text);
    assert_int_equal(json_array_size(json_object_get(rep, "tools")), 2);
    json_decref(rep);
    so = loaded_so(fx->reg, "b");
    assert_string_equal(so, "/fake/b1.so");
    free(so);
    /* still failing, unchanged: reported again from memory, not rebuilt */
    int calls = fake_calls(&fx->loader);
    rep = cb_registry_reload(fx->reg);
    text = json_dumps(json_object_get(rep, "failed"), JSON_COMPACT);
    assert_non_null(strstr(text, "[{\"tool\":\"b\",\"error\":\"fake compile error\"}"));
    free(text);
    json_decref(rep);
    assert_int_equal(fake_calls(&fx->loader), calls);
    /* delete: unloaded, gauge follows; the manifest row (if any) stays */
    del_file(fx, "a.wasm");
    rep = cb_registry_reload(fx->reg);
    text = json_dumps(json_object_get(rep, "tools"), JSON_COMPACT);
    assert_string_equal(text, "[\"b\"]");
    free(text);
    json_decref(rep);
    assert_null(cb_registry_get(fx->reg, "a"));
    text = render_metrics(fx->metrics);
    assert_non_null(strstr(text, "clawbox_tools_loaded 1\n"));
    assert_non_null(strstr(text, "clawbox_tool_compile_failures_total{tool=\"b\"} 1\n"));
    free(text);
}

static void same_content_is_not_recompiled(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "a.wasm", "same");
    fixture_open_ok(fx);
    struct cb_tool *before = cb_registry_get(fx->reg, "a");
    /* rewritten with identical bytes: new stamp, same hash */
    sleep_ms(10);
    put_file(fx, "a.wasm", "same");
    struct cb_error err = {0};
    assert_int_equal(cb__registry_refresh_one(fx->reg, "a", true, &err), 0);
    assert_int_equal(fake_calls(&fx->loader), 1);
    struct cb_tool *after = cb_registry_get(fx->reg, "a");
    assert_ptr_equal(before, after); /* same object: nothing changed */
    cb_tool_unref(before);
    cb_tool_unref(after);
}

static void held_tool_outlives_replacement_and_unload(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "a.wasm", "old");
    fixture_open_ok(fx);
    struct cb_tool *held = cb_registry_get(fx->reg, "a");
    put_file(fx, "a.wasm", "newer");
    json_decref(cb_registry_reload(fx->reg));
    char *so = loaded_so(fx->reg, "a");
    assert_string_equal(so, "/fake/newer.so");
    free(so);
    del_file(fx, "a.wasm");
    json_decref(cb_registry_reload(fx->reg));
    fixture_close(fx);
    /* still valid after replacement, unload and close */
    assert_string_equal(held->name, "a");
    assert_string_equal(held->so_path, "/fake/old.so");
    assert_non_null(held->manifest);
    cb_tool_unref(held);
}

static void deleted_tool_keeps_its_manifest_for_later(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "a.wasm", "a");
    fixture_open_ok(fx);
    struct cb_error err = {0};
    bool created;
    assert_int_equal(
        do_register(fx, "{\"tool\":{\"name\":\"a\",\"description\":\"mine\"}}", &created, &err), 0);
    del_file(fx, "a.wasm");
    json_decref(cb_registry_reload(fx->reg));
    json_t *all = cb_registry_manifests(fx->reg);
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
    put_file(fx, "a.wasm", "a-again"); /* other code: not its manifest */
    json_decref(cb_registry_reload(fx->reg));
    char buf[64];
    assert_string_equal(description_of(fx->reg, "a", buf, sizeof(buf)), "Auto-loaded WASM tool");
    put_file(fx, "a.wasm", "a"); /* the module it was registered for */
    json_decref(cb_registry_reload(fx->reg));
    assert_string_equal(description_of(fx->reg, "a", buf, sizeof(buf)), "mine");
}

static void stored_rows_that_do_not_validate_are_ignored(void **state)
{
    struct fixture *fx = *state;
    struct cb_error err = {0};
    assert_int_equal(
        cb_state_put(fx->state, CB_STATE_TOOLS, "a", "{\"tool\":{\"name\":\"b\"}}", &err), 0);
    assert_int_equal(cb_state_put(fx->state, CB_STATE_TOOLS, "c", "[1,2]", &err), 0);
    put_file(fx, "a.wasm", "a");
    put_file(fx, "c.wasm", "c");
    fixture_open_ok(fx);
    char buf[64];
    assert_string_equal(description_of(fx->reg, "a", buf, sizeof(buf)), "Auto-loaded WASM tool");
    assert_string_equal(description_of(fx->reg, "c", buf, sizeof(buf)), "Auto-loaded WASM tool");
}

/* A link in tool_dir is never followed: a module link is reported as a
 * failure, a manifest link is ignored (the automatic manifest), and neither
 * target is read. A FIFO manifest does not hang the scan. */
static void links_in_tool_dir_are_not_followed(void **state)
{
    struct fixture *fx = *state;
    _cleanup_free_ char *secret_m = put_outside(
        fx, "secret.json", "{\"tool\":{\"name\":\"x\",\"description\":\"SECRET-desc\"}}");
    _cleanup_free_ char *secret_w = put_outside(fx, "secret.wasm", "SECRET-module");
    put_file(fx, "x.wasm", "x");
    put_link(fx, "x.json", secret_m);
    put_link(fx, "y.wasm", secret_w);
    put_file(fx, "z.wasm", "z");
    char fifo[256];
    snprintf(fifo, sizeof(fifo), "%s/z.json", fx->tool_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    fixture_open_ok(fx);
    char buf[128];
    assert_string_equal(description_of(fx->reg, "x", buf, sizeof(buf)), "Auto-loaded WASM tool");
    assert_string_equal(description_of(fx->reg, "z", buf, sizeof(buf)), "Auto-loaded WASM tool");
    assert_null(cb_registry_get(fx->reg, "y"));
    assert_int_equal(fake_calls(&fx->loader), 2); /* x and z, never the link's target */
    json_t *rep = cb_registry_reload(fx->reg);
    char *text = json_dumps(rep, JSON_COMPACT);
    _cleanup_free_ char *want = cb_xasprintf(
        "{\"reloaded\":3,\"tools\":[\"x\",\"z\"],\"failed\":[{\"tool\":\"y\",\"error\":\"%s/"
        "y.wasm is a symbolic link; links in the tool directory are not followed\"}]}",
        fx->tool_dir);
    assert_string_equal(text, want);
    free(text);
    json_decref(rep);
    /* a link in place of a loaded module is a failing change: nothing is
     * loaded through it, and the version loaded before stays */
    del_file(fx, "x.wasm");
    put_link(fx, "x.wasm", secret_w);
    rep = cb_registry_reload(fx->reg);
    assert_int_equal(json_array_size(json_object_get(rep, "failed")), 2);
    json_decref(rep);
    char *so = loaded_so(fx->reg, "x");
    assert_string_equal(so, "/fake/x.so");
    free(so);
    assert_int_equal(fake_calls(&fx->loader), 2);
}

/* A broken manifest is reported by position and field, never by content:
 * jansson's error text quotes the input ("near '1234...'") and a value
 * check quotes the value. */
static void manifest_errors_quote_nothing_from_the_file(void **state)
{
    struct fixture *fx = *state;
    static const char *const tools[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < CB_ARRAY_LEN(tools); i++) {
        char file[16];
        snprintf(file, sizeof(file), "%s.wasm", tools[i]);
        put_file(fx, file, tools[i]);
    }
    put_file(fx, "a.json", "31323334 master key"); /* "'[' or '{' expected near '3132..'" */
    put_file(fx, "b.json",
             "{\"tool\":{\"name\":\"b\"},\"network\":{\"allowlist\":[\"ok.example.com\","
             "\"SECRET-ENTRY:99\"]}}");
    put_file(fx, "c.json", "{\"tool\":{\"name\":\"SECRETNAME\"}}");
    put_file(fx, "d.json", "{\"tool\":{\"name\":\"d\"},\"network\":{\"allowlist\":[\"*\"]}}");
    put_file(fx, "e.json", "{\"tool\":{\"name\":\"SECRET/NAME\"}}");
    cb_log_setup(false, CB_LOG_WARN);
    struct stderr_capture cap;
    stderr_begin(fx, &cap);
    fixture_open_ok(fx);
    char *log = stderr_end(&cap);
    cb_log_setup(false, CB_LOG_ERROR);
    assert_null(strstr(log, "3132"));
    assert_null(strstr(log, "master"));
    assert_null(strstr(log, "SECRET"));
    assert_non_null(strstr(log, "a.json: invalid JSON syntax at line 1, column"));
    assert_non_null(strstr(log, "b.json: network.allowlist[1] is not a valid entry;"));
    assert_non_null(strstr(log, "c.json: its tool.name is not 'c';"));
    assert_non_null(strstr(log, "d.json: network.allowlist[0] is \"*\", which needs "
                                "proxy.allow_wildcard_all = true;"));
    assert_non_null(strstr(log, "e.json: tool.name is not a valid tool name;"));
    free(log);
}

/* A loader whose module "SLOW" blocks until released: a module that takes
 * long to compile. */
struct gated_loader {
    struct fake_loader base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool released;
};

static int gated_load(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm,
                      size_t len, char **so_path, bool *quick, struct cb_error *err)
{
    struct gated_loader *g = ud;
    if (len == 4 && memcmp(wasm, "SLOW", 4) == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 30;
        pthread_mutex_lock(&g->mu);
        while (!g->released && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&g->mu);
    }
    return fake_load(&g->base, opts, wasm, len, so_path, quick, err);
}

static size_t usable_cpus(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof(set), &set) == 0 ? (size_t)CPU_COUNT(&set) : 1;
}

/* Modules compile in parallel: while one is stuck compiling, the others
 * are loaded and usable, before the initial load is over. */
static void slow_module_does_not_hold_up_the_others(void **state)
{
    struct fixture *fx = *state;
    if (usable_cpus() < 2)
        skip(); /* one job: nothing runs beside the slow module */
    struct gated_loader g = {0};
    pthread_mutex_init(&g.base.mu, NULL);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    put_file(fx, "aaa.wasm", "SLOW"); /* first in name order */
    static const char *const good[] = {"b", "c", "d", "e", "f", "g"};
    for (size_t i = 0; i < CB_ARRAY_LEN(good); i++) {
        char file[16];
        snprintf(file, sizeof(file), "%s.wasm", good[i]);
        put_file(fx, file, good[i]);
    }
    fx->opts.load_in_background = true;
    const struct cb__registry_loader l = {.load = gated_load, .ud = &g};
    struct cb_error err = {0};
    assert_int_equal(cb__registry_open_with(&fx->opts, &l, &fx->reg, &err), 0);
    size_t loaded = 0;
    for (int i = 0; i < 500 && loaded < CB_ARRAY_LEN(good); i++) {
        loaded = 0;
        for (size_t j = 0; j < CB_ARRAY_LEN(good); j++) {
            struct cb_tool *t = cb_registry_get(fx->reg, good[j]);
            loaded += t != NULL;
            cb_tool_unref(t);
        }
        sleep_ms(10);
    }
    assert_int_equal(loaded, CB_ARRAY_LEN(good));
    assert_false(cb_registry_ready(fx->reg));
    assert_null(cb_registry_get(fx->reg, "aaa"));
    /* Listed and counted as compiling, and waited for only up to the time. */
    struct cb_registry_counts n = cb_registry_counts(fx->reg);
    assert_int_equal(n.ready, CB_ARRAY_LEN(good));
    assert_int_equal(n.compiling, 1);
    assert_int_equal(n.failed, 0);
    assert_true(cb_registry_compiling(fx->reg, "aaa"));
    json_t *list = cb_registry_manifests(fx->reg);
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "state")), "compiling");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "tool"), "name")),
                        "aaa");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
                        "ready");
    json_decref(list);
    assert_null(cb_registry_get_wait(fx->reg, "aaa", 50));
    pthread_mutex_lock(&g.mu);
    g.released = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    struct cb_tool *waited = cb_registry_get_wait(fx->reg, "aaa", 10000);
    assert_non_null(waited);
    cb_tool_unref(waited);
    for (int i = 0; i < 500 && !cb_registry_ready(fx->reg); i++)
        sleep_ms(10);
    assert_true(cb_registry_ready(fx->reg));
    assert_false(cb_registry_compiling(fx->reg, "aaa"));
    assert_null(cb_registry_get_wait(fx->reg, "nope", 10000)); /* at once: nothing pending */
    char *so = loaded_so(fx->reg, "aaa");
    assert_string_equal(so, "/fake/SLOW.so");
    free(so);
    fixture_close(fx);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    pthread_mutex_destroy(&g.base.mu);
}

/* A loader with tiers: a module is a quick build until optimize has built
 * it. Optimising "WALL" fails on the wall clock (not the module's fault);
 * optimising "SLOW2" runs out of its budget, and loads fail so after that;
 * optimising "HOLD" lasts until cancelled. */
struct tiered_loader {
    struct fake_loader base;
    pthread_mutex_t mu;
    json_t *optimised; /* content -> true (built) or the failure's code */
    atomic_bool holding;
};

static int tiered_load(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm,
                       size_t len, char **so_path, bool *quick, struct cb_error *err)
{
    struct tiered_loader *t = ud;
    _cleanup_free_ char *key = cb_xstrndup((const char *)wasm, len);
    pthread_mutex_lock(&t->mu);
    json_t *o = json_object_get(t->optimised, key);
    int failed = (int)json_integer_value(o);
    *quick = o == NULL;
    pthread_mutex_unlock(&t->mu);
    if (failed < 0)
        return cb_error_set(err, failed, "compiling used its whole CPU budget (cached)");
    int rc = fake_load(&t->base, opts, wasm, len, so_path, quick, err);
    if (rc == 0 && !*quick) {
        free(*so_path);
        *so_path = cb_xasprintf("/fake/%s.O2.so", key);
    }
    return rc;
}

static int tiered_optimize(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm,
                           size_t len, const atomic_bool *cancel, struct cb_error *err)
{
    (void)opts;
    struct tiered_loader *t = ud;
    _cleanup_free_ char *key = cb_xstrndup((const char *)wasm, len);
    if (strcmp(key, "WALL") == 0)
        return cb_error_set(err, -ETIMEDOUT, "compiling tool timed out");
    if (strcmp(key, "HOLD") == 0) {
        atomic_store(&t->holding, true);
        while (!atomic_load(cancel))
            sleep_ms(5);
        return cb_error_set(err, -ECANCELED, "cancelled");
    }
    bool slow = strcmp(key, "SLOW2") == 0;
    pthread_mutex_lock(&t->mu);
    json_object_set_new(t->optimised, key, slow ? json_integer(-ETIME) : json_true());
    pthread_mutex_unlock(&t->mu);
    return slow ? cb_error_set(err, -ETIME, "compiling used its whole CPU budget") : 0;
}

/* Tools are served from quick builds, then optimised one at a time and
 * swapped in; a module whose optimisation ran out of its budget is refused
 * (and fails so at a reload), another failure keeps the quick build; close
 * cancels the optimisation under way; a reopen loads the optimised build
 * at once. */
static void quick_builds_are_optimised_in_the_background(void **state)
{
    struct fixture *fx = *state;
    struct tiered_loader t = {.optimised = json_object()};
    pthread_mutex_init(&t.base.mu, NULL);
    pthread_mutex_init(&t.mu, NULL);
    put_file(fx, "a.wasm", "alpha");
    put_file(fx, "b.wasm", "WALL");
    put_file(fx, "c.wasm", "SLOW2");
    const struct cb__registry_loader l = {
        .load = tiered_load, .optimize = tiered_optimize, .ud = &t};
    struct cb_error err = {0};
    assert_int_equal(cb__registry_open_with(&fx->opts, &l, &fx->reg, &err), 0);
    /* The three are queued in the order their quick builds end, which the
     * scan's parallel loads do not fix: the holding module comes once they
     * are done, so it cannot stand in front of them. */
    bool done = false;
    for (int i = 0; i < 1000 && !done; i++) {
        sleep_ms(10);
        pthread_mutex_lock(&t.mu);
        done = json_object_size(t.optimised) == 2; /* alpha and SLOW2; WALL fails */
        pthread_mutex_unlock(&t.mu);
        struct cb_tool *c = cb_registry_get(fx->reg, "c");
        done = done && c == NULL;
        if (c != NULL)
            cb_tool_unref(c);
    }
    assert_true(done);
    put_file(fx, "z.wasm", "HOLD");
    json_decref(cb_registry_reload(fx->reg));
    for (int i = 0; i < 1000 && !atomic_load(&t.holding); i++)
        sleep_ms(10);
    assert_true(atomic_load(&t.holding));
    char *so = loaded_so(fx->reg, "a");
    assert_string_equal(so, "/fake/alpha.O2.so");
    free(so);
    so = loaded_so(fx->reg, "b");
    assert_string_equal(so, "/fake/WALL.so");
    free(so);
    assert_null(cb_registry_get(fx->reg, "c"));
    json_t *report = cb_registry_reload(fx->reg);
    json_t *failed = json_object_get(report, "failed");
    assert_int_equal(json_array_size(failed), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(failed, 0), "tool")), "c");
    json_decref(report);
    so = loaded_so(fx->reg, "z");
    assert_string_equal(so, "/fake/HOLD.so");
    free(so);
    uint64_t t0 = cb_now_mono_ns();
    fixture_close(fx);
    assert_true((cb_now_mono_ns() - t0) / 1000000 < 5000);
    atomic_store(&t.holding, false);
    assert_int_equal(cb__registry_open_with(&fx->opts, &l, &fx->reg, &err), 0);
    so = loaded_so(fx->reg, "a");
    assert_string_equal(so, "/fake/alpha.O2.so");
    free(so);
    assert_null(cb_registry_get(fx->reg, "c"));
    fixture_close(fx);
    json_decref(t.optimised);
    pthread_mutex_destroy(&t.mu);
    pthread_mutex_destroy(&t.base.mu);
}

struct hammer {
    struct cb_registry *reg;
    atomic_int stop;
    atomic_int gets;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    while (!h->stop) {
        struct cb_tool *t = cb_registry_get(h->reg, "a");
        if (t != NULL) {
            if (strncmp(t->so_path, "/fake/", 6) != 0)
                abort();
            cb_tool_unref(t);
        }
        json_decref(cb_registry_manifests(h->reg));
        h->gets++;
    }
    return NULL;
}

static void concurrent_gets_during_reloads(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "a.wasm", "a0");
    fixture_open_ok(fx);
    struct hammer h = {.reg = fx->reg};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h), 0);
    struct cb_error err = {0};
    bool created;
    for (int i = 0; i < 50; i++) {
        char content[32];
        snprintf(content, sizeof(content), "a%d%s", i, i % 2 ? "x" : "");
        put_file(fx, "a.wasm", content);
        assert_int_equal(cb__registry_refresh_one(fx->reg, "a", true, &err), 0);
        assert_int_equal(do_register(fx, "{\"tool\":{\"name\":\"a\"}}", &created, &err), 0);
        if (i % 10 == 0) {
            del_file(fx, "a.wasm");
            json_decref(cb_registry_reload(fx->reg));
        }
    }
    h.stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_true(h.gets > 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(missing_tool_dir_is_zero_tools),
        T(open_loads_modules_and_skips_bad_ones),
        T(sha256_is_of_the_module_bytes),
        T(manifests_are_sorted_auto_manifests),
        T(file_manifest_beats_auto_and_invalid_ones_fall_back),
        T(registered_manifest_beats_file_and_survives_reopen),
        T(registration_codes),
        T(wildcard_all_needs_the_server_setting),
        T(reload_bookkeeping),
        T(same_content_is_not_recompiled),
        T(held_tool_outlives_replacement_and_unload),
        T(deleted_tool_keeps_its_manifest_for_later),
        T(stored_rows_that_do_not_validate_are_ignored),
        T(registered_manifest_is_bound_to_the_module),
        T(unbound_stored_manifest_is_ignored),
        T(slow_module_does_not_hold_up_the_others),
        T(quick_builds_are_optimised_in_the_background),
        T(links_in_tool_dir_are_not_followed),
        T(manifest_errors_quote_nothing_from_the_file),
        T(concurrent_gets_during_reloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
