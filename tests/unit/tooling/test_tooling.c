/* Tests for src/lib/tooling: scaffolding, project discovery, the compiler
 * runner, building (when clang can target wasm32-wasi), install/remove and
 * tool-directory resolution. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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

#include "core/fs.h"
#include "core/util.h"
#include "tooling/internal.h"
#include "tooling/tooling.h"
#include "rm_tree.h"

static const unsigned char wasm_magic[8] = {0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00};

/* ---- helpers ------------------------------------------------------------ */

static int setup_tmp(void **state)
{
    char *dir = cb_xstrdup("/tmp/cb-tooling-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    *state = dir;
    return 0;
}

static int teardown_tmp(void **state)
{
    rm_tree(*state);
    free(*state);
    return 0;
}

static char *path_in(const char *dir, const char *rel)
{
    return cb_xasprintf("%s/%s", dir, rel);
}

static void write_text(const char *dir, const char *rel, const void *data, size_t len)
{
    _cleanup_free_ char *p = path_in(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    struct cb_error err = {0};
    assert_int_equal(cb_mkdir_p(p, 0755, &err), 0);
    *slash = '/';
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_str(const char *dir, const char *rel, const char *s)
{
    write_text(dir, rel, s, strlen(s));
}

static char *read_all(const char *path, size_t *len)
{
    struct cb_buf b;
    struct cb_error err = {0};
    if (cb__tooling_read(path, 64u << 20, &b, &err) < 0) {
        cb_buf_free(&b);
        return NULL;
    }
    return cb_buf_steal(&b, len);
}

static bool exists(const char *dir, const char *rel)
{
    _cleanup_free_ char *p = path_in(dir, rel);
    return access(p, F_OK) == 0;
}

static json_t *load_json(const char *path)
{
    return json_load_file(path, 0, NULL);
}

static const char *manifest_name(json_t *m)
{
    return json_string_value(json_object_get(json_object_get(m, "tool"), "name"));
}

/* ---- scaffold ----------------------------------------------------------- */

static void scaffold_writes_a_standalone_project(void **state)
{
    const char *tmp = *state;
    struct cb_error err = {0};
    char *path;
    _cleanup_free_ char *parent = path_in(tmp, "a/b");
    assert_int_equal(cb_tooling_scaffold("demo-1", "c", parent, &path, &err), 0);
    _cleanup_free_ char *want = path_in(tmp, "a/b/demo-1");
    assert_string_equal(path, want);

    size_t len, sdk_len;
    _cleanup_free_ char *hdr = path_in(path, "clawbox_tool.h");
    _cleanup_free_ char *h = read_all(hdr, &len);
    _cleanup_free_ char *sdk = read_all(CB_TEST_SDK_HEADER, &sdk_len);
    assert_non_null(h);
    assert_non_null(sdk);
    assert_int_equal(len, sdk_len);
    assert_memory_equal(h, sdk, len);

    _cleanup_free_ char *mpath = path_in(path, "manifest.json");
    json_t *m = load_json(mpath);
    assert_non_null(m);
    assert_string_equal(manifest_name(m), "demo-1");
    json_t *tool = json_object_get(m, "tool");
    assert_string_equal(json_string_value(json_object_get(tool, "description")),
                        "A clawbox WASM tool");
    assert_string_equal(json_string_value(json_object_get(tool, "version")), "0.1.0");
    json_t *schema = json_object_get(m, "input_schema");
    assert_string_equal(json_string_value(json_object_get(schema, "type")), "object");
    json_decref(m);

    _cleanup_free_ char *cpath = path_in(path, "main.c");
    _cleanup_free_ char *c = read_all(cpath, &len);
    assert_non_null(strstr(c, "#define CLAWBOX_TOOL_IMPLEMENTATION"));
    assert_non_null(strstr(c, "cb_json_new_string(\"demo-1\")"));
    assert_non_null(strstr(c, "\"result\", params"));
    assert_null(strstr(c, "@NAME@"));
    _cleanup_free_ char *mk = path_in(path, "Makefile");
    _cleanup_free_ char *make = read_all(mk, &len);
    assert_non_null(strstr(make, "\ndemo-1.wasm: main.c clawbox_tool.h\n\t$(CLANG) "));
    assert_non_null(strstr(make, "--target=wasm32-wasi"));
    assert_non_null(strstr(make, "\nall: demo-1.wasm demo-1.json\n"));
    assert_non_null(strstr(make, "\ndemo-1.json: manifest.json\n\tcp manifest.json $@\n"));
    free(path);
}

static void scaffold_defaults_to_dot_and_c(void **state)
{
    const char *tmp = *state;
    struct cb_error err = {0};
    char *path, cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmp), 0);
    int r = cb_tooling_scaffold("dot", NULL, NULL, &path, &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, 0);
    assert_string_equal(path, "./dot");
    assert_true(exists(tmp, "dot/main.c"));
    free(path);
}

static void scaffold_rejects_bad_input(void **state)
{
    const char *tmp = *state;
    struct cb_error err = {0};
    char *path = (char *)"unchanged";
    assert_int_equal(cb_tooling_scaffold("x", "rust", tmp, &path, &err), -ENOTSUP);
    assert_string_equal(err.msg, "Unsupported language: rust. Use c.");
    assert_null(path);
    assert_false(exists(tmp, "x"));

    static const char *const bad[] = {"",
                                      "a b",
                                      "../x",
                                      "a/b",
                                      "x.y",
                                      "é",
                                      "12345678901234567890123456789012345678901234567890"
                                      "123456789012345"};
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++) {
        assert_int_equal(cb_tooling_scaffold(bad[i], "c", tmp, &path, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "Invalid tool name"));
    }

    assert_int_equal(cb_tooling_scaffold("twice", "c", tmp, &path, &err), 0);
    _cleanup_free_ char *want = cb_xasprintf("Directory already exists: %s", path);
    free(path);
    write_str(tmp, "twice/main.c", "/* edited */\n");
    assert_int_equal(cb_tooling_scaffold("twice", "c", tmp, &path, &err), -EEXIST);
    assert_string_equal(err.msg, want);
    size_t len;
    _cleanup_free_ char *p = path_in(tmp, "twice/main.c");
    _cleanup_free_ char *kept = read_all(p, &len);
    assert_string_equal(kept, "/* edited */\n"); /* never overwritten */
}

/* ---- discovery ---------------------------------------------------------- */

static void make_project(const char *tmp, const char *dir, const char *main_file)
{
    _cleanup_free_ char *m = cb_xasprintf("%s/manifest.json", dir);
    _cleanup_free_ char *c = cb_xasprintf("%s/%s", dir, main_file);
    write_str(tmp, m, "{\"tool\":{\"name\":\"x\"}}");
    write_str(tmp, c, "int main(void) { return 0; }\n");
}

static void find_walks_the_tree(void **state)
{
    const char *tmp = *state;
    make_project(tmp, "src/alpha", "main.c");
    make_project(tmp, "src/nested/deep/beta", "main.cpp");
    make_project(tmp, "src/alpha/inner", "main.c"); /* inside a project: not searched */
    make_project(tmp, "src/.hidden/gamma", "main.c");
    make_project(tmp, "outside/delta", "main.c");
    write_str(tmp, "src/nomain/manifest.json", "{}");
    write_str(tmp, "src/nomanifest/main.c", "");
    _cleanup_free_ char *link = path_in(tmp, "src/link");
    _cleanup_free_ char *target = path_in(tmp, "outside");
    assert_int_equal(symlink(target, link), 0);

    struct cb_tooling_projects ps;
    struct cb_error err = {0};
    _cleanup_free_ char *src = path_in(tmp, "src");
    assert_int_equal(cb_tooling_find(src, NULL, &ps, &err), 0);
    assert_int_equal(ps.len, 2);
    assert_string_equal(ps.items[0].name, "alpha");
    assert_false(ps.items[0].cpp);
    _cleanup_free_ char *alpha_src = path_in(src, "alpha/main.c");
    assert_string_equal(ps.items[0].source, alpha_src);
    assert_string_equal(ps.items[1].name, "beta");
    assert_true(ps.items[1].cpp);
    cb_tooling_projects_free(&ps);

    assert_int_equal(cb_tooling_find(src, "beta", &ps, &err), 0);
    assert_int_equal(ps.len, 1);
    assert_string_equal(ps.items[0].name, "beta");
    cb_tooling_projects_free(&ps);

    assert_int_equal(cb_tooling_find(src, "gamma", &ps, &err), -ENOENT);
    _cleanup_free_ char *want = cb_xasprintf("Tool 'gamma' not found in %s", src);
    assert_string_equal(err.msg, want);
    cb_tooling_projects_free(&ps);

    /* The source may itself be a project. */
    _cleanup_free_ char *alpha = path_in(src, "alpha");
    assert_int_equal(cb_tooling_find(alpha, NULL, &ps, &err), 0);
    assert_int_equal(ps.len, 1);
    assert_string_equal(ps.items[0].name, "alpha");
    cb_tooling_projects_free(&ps);
}

static void find_rejects_duplicates_and_missing_source(void **state)
{
    const char *tmp = *state;
    make_project(tmp, "src/one/same", "main.c");
    make_project(tmp, "src/two/same", "main.c");
    struct cb_tooling_projects ps;
    struct cb_error err = {0};
    _cleanup_free_ char *src = path_in(tmp, "src");
    assert_int_equal(cb_tooling_find(src, NULL, &ps, &err), -EEXIST);
    assert_non_null(strstr(err.msg, "two tool projects are named 'same'"));
    cb_tooling_projects_free(&ps);

    _cleanup_free_ char *missing = path_in(tmp, "nope");
    assert_int_equal(cb_tooling_find(missing, NULL, &ps, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "Source directory not found"));
    cb_tooling_projects_free(&ps);

    _cleanup_free_ char *file = path_in(tmp, "src/one/same/main.c");
    assert_int_equal(cb_tooling_find(file, NULL, &ps, &err), -ENOTDIR);
    cb_tooling_projects_free(&ps);
}

/* ---- the compiler runner ------------------------------------------------ */

static void run_captures_output_and_status(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_error err = {0};
    bool trunc;
    char *ok[] = {"sh", "-c", "echo out; echo err >&2", NULL};
    cb_buf_init(&out, 1024);
    assert_int_equal(cb__tooling_run(ok, 10000, &out, &trunc, &err), 0);
    assert_string_equal(out.data, "out\nerr\n");
    assert_false(trunc);

    char *fail[] = {"sh", "-c", "exit 3", NULL};
    assert_int_equal(cb__tooling_run(fail, 10000, &out, &trunc, &err), -ECHILD);
    assert_string_equal(err.msg, "sh exited with status 3");

    char *missing[] = {"/nonexistent/cc", NULL};
    assert_int_equal(cb__tooling_run(missing, 10000, &out, &trunc, &err), -ENOENT);
    assert_string_equal(err.msg, "cannot run /nonexistent/cc: No such file or directory");
    cb_buf_free(&out);
}

static void run_bounds_output_and_time(void **state)
{
    (void)state;
    struct cb_buf out;
    struct cb_error err = {0};
    bool trunc;
    char *flood[] = {"sh", "-c", "head -c 300000 /dev/zero", NULL};
    cb_buf_init(&out, 1000);
    assert_int_equal(cb__tooling_run(flood, 10000, &out, &trunc, &err), 0);
    assert_true(trunc);
    assert_int_equal(out.len, 1000);

    /* The grandchild (sleep) dies with the group, so the pipe closes. */
    char *slow[] = {"sh", "-c", "sleep 30; echo late", NULL};
    uint64_t t0 = cb_now_mono_ns();
    assert_int_equal(cb__tooling_run(slow, 200, &out, &trunc, &err), -ETIMEDOUT);
    assert_true(cb_now_mono_ns() - t0 < 5000000000ull);
    assert_string_equal(err.msg, "sh timed out after 200 ms");
    cb_buf_free(&out);
}

/* ---- build -------------------------------------------------------------- */

static bool have_wasm_clang(void)
{
    struct cb_buf out;
    struct cb_error err = {0};
    bool trunc;
    char *argv[] = {"clang", "--target=wasm32-wasi", "--print-target-triple", NULL};
    cb_buf_init(&out, 4096);
    int r = cb__tooling_run(argv, 30000, &out, &trunc, &err);
    cb_buf_free(&out);
    return r == 0 && access("/usr/lib/wasm32-wasi/crt1-command.o", F_OK) == 0;
}

static const char echo_c[] = "#define CLAWBOX_TOOL_IMPLEMENTATION\n"
                             "#include \"clawbox_tool.h\"\n"
                             "int main(void)\n{\n    struct cb_tool_error e;\n"
                             "    struct cb_json *p;\n    if (cb_read_params(&p, &e))\n"
                             "        return 1;\n    cb_output(p);\n    cb_json_free(p);\n"
                             "    return 0;\n}\n";

static void build_compiles_with_the_embedded_sdk(void **state)
{
    const char *tmp = *state;
    if (!have_wasm_clang())
        skip();
    /* No clawbox_tool.h in the project: the builder's SDK copy is used. */
    write_str(tmp, "src/good/main.c", echo_c);
    write_str(tmp, "src/good/manifest.json", "{\"tool\": {\"name\": \"good\"}}\n");
    write_str(tmp, "src/broken/main.c", "int main(void) { return x; }\n");
    write_str(tmp, "src/broken/manifest.json", "{\"tool\": {\"name\": \"broken\"}}\n");
    write_str(tmp, "src/misnamed/main.c", echo_c);
    /* 3 MB of data: more than the heap-room memory, so built without it. */
    write_str(tmp, "src/zbig/main.c",
              "static char big[3000000] = {1};\nint main(void) { return big[5]; }\n");
    write_str(tmp, "src/zbig/manifest.json", "{\"tool\": {\"name\": \"zbig\"}}\n");
    write_str(tmp, "src/misnamed/manifest.json", "{\"tool\": {\"name\": \"other\"}}\n");
    struct cb_tooling_projects ps;
    struct cb_tooling_toolchain tc;
    struct cb_tooling_builder b;
    struct cb_error err = {0};
    _cleanup_free_ char *src = path_in(tmp, "src");
    _cleanup_free_ char *outdir = path_in(tmp, "out/wasm");
    assert_int_equal(cb_tooling_find(src, NULL, &ps, &err), 0);
    assert_int_equal(ps.len, 4); /* broken, good, misnamed, zbig */
    cb_tooling_toolchain_default(&tc);
    assert_int_equal(cb_tooling_builder_init(&b, &tc, outdir, &err), 0);
    _cleanup_free_ char *sdk_dir = cb_xstrdup(b.sdk_dir);

    struct cb_buf log;
    cb_buf_init(&log, CB_TOOLING_LOG_MAX);
    assert_int_equal(cb_tooling_build(&b, &ps.items[0], &log, &err), -ECHILD);
    assert_non_null(strstr(log.data, "undeclared identifier 'x'"));
    assert_false(exists(outdir, "broken.wasm"));
    assert_false(exists(outdir, "broken.json"));
    cb_buf_reset(&log);

    assert_int_equal(cb_tooling_build(&b, &ps.items[1], &log, &err), 0);
    size_t len;
    _cleanup_free_ char *wpath = path_in(outdir, "good.wasm");
    _cleanup_free_ char *w = read_all(wpath, &len);
    assert_true(len > 8);
    assert_memory_equal(w, wasm_magic, 8);
    /* Memory section: one memory, no maximum, 32 initial pages (2 MiB). */
    assert_non_null(memmem(w, len, "\x05\x03\x01\x00\x20", 5));
    _cleanup_free_ char *jpath = path_in(outdir, "good.json");
    _cleanup_free_ char *j = read_all(jpath, &len);
    assert_string_equal(j, "{\"tool\": {\"name\": \"good\"}}\n");

    assert_int_equal(cb_tooling_build(&b, &ps.items[2], &log, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "names tool 'other'"));
    cb_buf_reset(&log);
    assert_int_equal(cb_tooling_build(&b, &ps.items[3], &log, &err), 0);
    assert_true(exists(outdir, "zbig.wasm"));
    cb_buf_free(&log);
    cb_tooling_builder_free(&b);
    cb_tooling_projects_free(&ps);
    assert_int_equal(access(sdk_dir, F_OK), -1); /* the temp SDK dir is gone */
}

/* ---- install / remove --------------------------------------------------- */

static void install_copies_module_and_renamed_manifest(void **state)
{
    const char *tmp = *state;
    unsigned char mod[16];
    memcpy(mod, wasm_magic, 8);
    memset(mod + 8, 0x42, 8);
    write_text(tmp, "in/m.wasm", mod, sizeof(mod));
    write_str(tmp, "in/m.json", "{\"tool\": {\"name\": \"m\", \"version\": \"1.2.3\"}}");
    struct cb_tooling_installed res;
    struct cb_error err = {0};
    _cleanup_free_ char *file = path_in(tmp, "in/m.wasm");
    _cleanup_free_ char *tdir = path_in(tmp, "tools/new");
    assert_int_equal(cb_tooling_install("t1", file, tdir, &res, &err), 0);
    _cleanup_free_ char *want = path_in(tdir, "t1.wasm");
    assert_string_equal(res.wasm_path, want);
    size_t len;
    _cleanup_free_ char *got = read_all(res.wasm_path, &len);
    assert_int_equal(len, sizeof(mod));
    assert_memory_equal(got, mod, len);
    struct stat st;
    assert_int_equal(stat(res.wasm_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644); /* a server running as another user can read it */
    json_t *m = load_json(res.manifest_path);
    assert_string_equal(manifest_name(m), "t1"); /* else the server would ignore it */
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "tool"), "version")),
                        "1.2.3");
    json_decref(m);
    cb_tooling_installed_free(&res);

    /* No sibling manifest: only the module. */
    write_text(tmp, "in/bare", mod, sizeof(mod));
    _cleanup_free_ char *bare = path_in(tmp, "in/bare");
    assert_int_equal(cb_tooling_install("t2", bare, tdir, &res, &err), 0);
    assert_null(res.manifest_path);
    assert_false(exists(tdir, "t2.json"));
    cb_tooling_installed_free(&res);
}

static void install_rejects_bad_input(void **state)
{
    const char *tmp = *state;
    struct cb_tooling_installed res;
    struct cb_error err = {0};
    _cleanup_free_ char *tdir = path_in(tmp, "tools");
    write_str(tmp, "in/text.wasm", "#!/bin/sh\necho not wasm\n");
    _cleanup_free_ char *text = path_in(tmp, "in/text.wasm");
    assert_int_equal(cb_tooling_install("t", text, tdir, &res, &err), -ENOEXEC);
    assert_non_null(strstr(err.msg, "is not a WebAssembly module"));

    write_text(tmp, "in/ok.wasm", wasm_magic, 8);
    write_str(tmp, "in/ok.json", "{\"tool\": ");
    _cleanup_free_ char *ok = path_in(tmp, "in/ok.wasm");
    assert_int_equal(cb_tooling_install("t", ok, tdir, &res, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "is not valid JSON"));
    write_str(tmp, "in/ok.json", "[]");
    assert_int_equal(cb_tooling_install("t", ok, tdir, &res, &err), -EBADMSG);

    assert_int_equal(cb_tooling_install("../t", ok, tdir, &res, &err), -EINVAL);
    _cleanup_free_ char *missing = path_in(tmp, "in/missing.wasm");
    assert_int_equal(cb_tooling_install("t", missing, tdir, &res, &err), -ENOENT);
    _cleanup_free_ char *dir = path_in(tmp, "in");
    assert_int_equal(cb_tooling_install("t", dir, tdir, &res, &err), -EINVAL);
    assert_false(exists(tmp, "tools")); /* nothing was installed */
}

static void remove_deletes_module_and_manifest(void **state)
{
    const char *tmp = *state;
    struct cb_error err = {0};
    bool manifest = true;
    write_text(tmp, "tools/a.wasm", wasm_magic, 8);
    write_str(tmp, "tools/a.json", "{}");
    write_text(tmp, "tools/b.wasm", wasm_magic, 8);
    _cleanup_free_ char *tdir = path_in(tmp, "tools");
    assert_int_equal(cb_tooling_remove("a", tdir, &manifest, &err), 0);
    assert_true(manifest);
    assert_false(exists(tdir, "a.wasm"));
    assert_false(exists(tdir, "a.json"));
    assert_int_equal(cb_tooling_remove("b", tdir, &manifest, &err), 0);
    assert_false(manifest);

    assert_int_equal(cb_tooling_remove("a", tdir, &manifest, &err), -ENOENT);
    _cleanup_free_ char *want = cb_xasprintf("Tool 'a' not found in %s", tdir);
    assert_string_equal(err.msg, want);

    static const char *const bad[] = {"../a", "a/b", "a\\b", "..", "", "a b"};
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++)
        assert_int_equal(cb_tooling_remove(bad[i], tdir, &manifest, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "Invalid tool name"));
}

/* ---- tool_dir and default language -------------------------------------- */

static void tool_dir_resolution_order(void **state)
{
    const char *tmp = *state;
    struct cb_error err = {0};
    char *dir, *lang;
    setenv("HOME", tmp, 1);
    unsetenv("CLAWBOX_TOOL_DIR");
    assert_int_equal(cb_tooling_tool_dir("/flag/dir", &dir, &err), 0);
    assert_string_equal(dir, "/flag/dir");
    free(dir);

    assert_int_equal(cb_tooling_tool_dir(NULL, &dir, &err), 0);
    _cleanup_free_ char *home_tools = path_in(tmp, ".clawbox/tools");
    assert_string_equal(dir, home_tools);
    free(dir);
    assert_int_equal(cb_tooling_default_language(&lang, &err), 0);
    assert_string_equal(lang, "c");
    free(lang);

    setenv("CLAWBOX_TOOL_DIR", "/env/dir", 1);
    assert_int_equal(cb_tooling_tool_dir(NULL, &dir, &err), 0);
    assert_string_equal(dir, "/env/dir");
    free(dir);
    unsetenv("CLAWBOX_TOOL_DIR");

    write_str(tmp, ".clawbox/config/clawbox.toml",
              "[sandbox]\ntool_dir = \"/from/config\"\n[tools]\ndefault_language = \"rust\"\n");
    assert_int_equal(cb_tooling_tool_dir(NULL, &dir, &err), 0);
    assert_string_equal(dir, "/from/config");
    free(dir);
    assert_int_equal(cb_tooling_default_language(&lang, &err), 0);
    assert_string_equal(lang, "rust");
    free(lang);

    write_str(tmp, ".clawbox/config/clawbox.toml", "[sandbox]\ntool_dir = 7\n");
    assert_true(cb_tooling_tool_dir(NULL, &dir, &err) < 0);
    assert_null(dir);
    assert_non_null(strstr(err.msg, "tool_dir"));
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup_tmp, teardown_tmp)
        T(scaffold_writes_a_standalone_project),
        T(scaffold_defaults_to_dot_and_c),
        T(scaffold_rejects_bad_input),
        T(find_walks_the_tree),
        T(find_rejects_duplicates_and_missing_source),
        T(run_captures_output_and_status),
        T(run_bounds_output_and_time),
        T(build_compiles_with_the_embedded_sdk),
        T(install_copies_module_and_renamed_manifest),
        T(install_rejects_bad_input),
        T(remove_deletes_module_and_manifest),
        T(tool_dir_resolution_order),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
