/* `clawbox add tool` / `remove tool`: installing modules into a tool_dir. */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "config/env.h"
#include "config/config.h"
#include "core/fs.h"
#include "core/home.h"
#include "core/util.h"
#include "sandbox/wasm.h"
#include "tooling/internal.h"
#include "tooling/tooling.h"

/* Loads the home config ($HOME/.clawbox/config/clawbox.toml) into *c, or
 * sets *c to NULL when that file does not exist. */
static int load_home_config(struct cb_config **c, struct cb_error *err)
{
    _cleanup_free_ char *path = cb_home_path(CB_HOME_CONFIG);
    struct cb_config_diag d = {0};
    *c = NULL;
    if (access(path, F_OK) != 0)
        return 0;
    int r = cb_config_load(path, c, &d, err);
    if (r < 0 && d.errors.len > 0)
        cb_error_set(err, r, "%s", d.errors.items[0]);
    cb_config_diag_free(&d);
    return r;
}

int cb_tooling_tool_dir(const char *flag, char **out, struct cb_error *err)
{
    struct cb_config *c;
    *out = NULL;
    if (flag != NULL) {
        *out = cb_xstrdup(flag);
        return 0;
    }
    int r = load_home_config(&c, err);
    if (r < 0)
        return r;
    const char *env = cb_config_env(CB_ENV_TOOL_DIR);
    if (c != NULL)
        *out = cb_xstrdup(c->sandbox.tool_dir);
    else if (env != NULL)
        *out = cb_xstrdup(env);
    else
        *out = cb_home_path(CB_HOME_TOOLS);
    cb_config_free(c);
    return 0;
}

int cb_tooling_default_language(char **out, struct cb_error *err)
{
    struct cb_config *c;
    *out = NULL;
    int r = load_home_config(&c, err);
    if (r < 0)
        return r;
    *out = cb_xstrdup(c && c->tools.default_language ? c->tools.default_language : "c");
    cb_config_free(c);
    return 0;
}

void cb_tooling_installed_free(struct cb_tooling_installed *r)
{
    if (r == NULL)
        return;
    free(r->wasm_path);
    free(r->manifest_path);
    r->wasm_path = r->manifest_path = NULL;
}

/* The manifest beside a module: foo.wasm -> foo.json (else foo.x.json). */
static char *sibling_manifest(const char *wasm_file)
{
    size_t n = strlen(wasm_file);
    if (n > 5 && strcmp(wasm_file + n - 5, ".wasm") == 0)
        n -= 5;
    return cb_xasprintf("%.*s.json", (int)n, wasm_file);
}

/* Replaces b's text with the manifest j, re-serialised. */
static void reserialise(json_t *j, struct cb_buf *b)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        abort(); /* out of memory: fatal, as everywhere */
    cb_buf_free(b);
    cb_buf_init(b, strlen(text) + 1);
    cb_buf_puts(b, text);
    cb_buf_puts(b, "\n");
    free(text);
}

/* Checks the manifest text in b and makes its tool.name `name`. */
static int fix_manifest(const char *path, const char *name, struct cb_buf *b, struct cb_error *err)
{
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &je);
    json_t *tool = json_object_get(j, "tool");
    const char *have = json_string_value(json_object_get(tool, "name"));
    int r = 0;
    if (j == NULL)
        r = cb_error_set(err, -EBADMSG, "%s is not valid JSON (line %d): %s", path, je.line,
                         je.text);
    else if (!json_is_object(tool))
        r = cb_error_set(err, -EBADMSG, "%s has no \"tool\" object", path);
    else if (have == NULL || strcmp(have, name) != 0) {
        json_object_set_new(tool, "name", json_string(name));
        reserialise(j, b);
    }
    json_decref(j);
    return r;
}

/* Reads and checks the module; b is always initialised. */
static int read_module(const char *file, struct cb_buf *b, struct cb_error *err)
{
    static const unsigned char magic[8] = {0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00};
    int r = cb__tooling_read(file, CB_WASM_MAX_MODULE, b, err);
    if (r == 0 && (b->len < sizeof(magic) || memcmp(b->data, magic, sizeof(magic)) != 0))
        r = cb_error_set(err, -ENOEXEC,
                         "%s is not a WebAssembly module (no \\0asm version 1 header)", file);
    return r;
}

/* Reads the optional sibling manifest into m; *found says if there is one. */
static int read_manifest(const char *path, const char *name, struct cb_buf *m, bool *found,
                         struct cb_error *err)
{
    struct cb_error e2 = {0};
    int r = cb__tooling_read(path, CB_TOOLING_MANIFEST_MAX, m, &e2);
    *found = r != -ENOENT;
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return cb_error_set(err, r, "%s", e2.msg);
    return fix_manifest(path, name, m, err);
}

static int install_files(const char *tool_dir, const char *name, const struct cb_buf *wasm,
                         const struct cb_buf *manifest, struct cb_tooling_installed *out,
                         struct cb_error *err)
{
    int r = cb_mkdir_p(tool_dir, 0755, err);
    if (r < 0)
        return r;
    out->wasm_path = cb_xasprintf("%s/%s.wasm", tool_dir, name);
    /* The manifest first: the watcher then loads the module with it. */
    if (manifest != NULL) {
        out->manifest_path = cb_xasprintf("%s/%s.json", tool_dir, name);
        r = cb__tooling_write_atomic(out->manifest_path, manifest->data, manifest->len, 0644, err);
    }
    if (r == 0)
        r = cb__tooling_write_atomic(out->wasm_path, wasm->data, wasm->len, 0644, err);
    return r;
}

int cb_tooling_install(const char *name, const char *wasm_file, const char *tool_dir,
                       struct cb_tooling_installed *out, struct cb_error *err)
{
    struct cb_buf wasm, manifest;
    bool found = false;
    memset(out, 0, sizeof(*out));
    cb_buf_init(&wasm, 0);
    cb_buf_init(&manifest, 0);
    int r = cb__tooling_check_name(name, err);
    if (r == 0)
        r = read_module(wasm_file, &wasm, err);
    _cleanup_free_ char *mpath = sibling_manifest(wasm_file);
    if (r == 0)
        r = read_manifest(mpath, name, &manifest, &found, err);
    if (r == 0)
        r = install_files(tool_dir, name, &wasm, found ? &manifest : NULL, out, err);
    cb_buf_free(&wasm);
    cb_buf_free(&manifest);
    if (r < 0)
        cb_tooling_installed_free(out);
    return r;
}

int cb_tooling_remove(const char *name, const char *tool_dir, bool *manifest, struct cb_error *err)
{
    *manifest = false;
    if (name != NULL && (strchr(name, '/') || strchr(name, '\\') || strstr(name, "..")))
        return cb_error_set(
            err, -EINVAL, "Invalid tool name '%.80s': it must not contain '/', '\\' or '..'", name);
    int r = cb__tooling_check_name(name, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *wasm = cb_xasprintf("%s/%s.wasm", tool_dir, name);
    _cleanup_free_ char *json = cb_xasprintf("%s/%s.json", tool_dir, name);
    if (unlink(wasm) < 0) {
        int e = errno;
        if (e == ENOENT)
            return cb_error_set(err, -ENOENT, "Tool '%s' not found in %s", name, tool_dir);
        return cb_error_set(err, -e, "cannot remove %s: %s", wasm, strerror(e));
    }
    if (unlink(json) == 0)
        *manifest = true;
    else if (errno != ENOENT)
        return cb_error_set(err, -errno, "cannot remove %s: %s", json, strerror(errno));
    return 0;
}
