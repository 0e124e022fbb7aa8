/* `clawbox build`: compiles one tool project to wasm32-wasi with clang. */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "config/env.h"
#include "core/fs.h"
#include "core/util.h"
#include "tooling/internal.h"
#include "tooling/tooling.h"

void cb_tooling_toolchain_default(struct cb_tooling_toolchain *tc)
{
    tc->cc = "clang";
    tc->cxx = "clang++";
    tc->sysroot = "/usr";
    tc->timeout_ms = CB_TOOLING_COMPILE_TIMEOUT;
}

int cb_tooling_builder_init(struct cb_tooling_builder *b, const struct cb_tooling_toolchain *tc,
                            const char *outdir, struct cb_error *err)
{
    memset(b, 0, sizeof(*b));
    int r = cb_mkdir_p(outdir, 0755, err);
    if (r < 0)
        return r;
    const char *tmp = cb_config_env(CB_ENV_TMPDIR);
    char *dir = cb_xasprintf("%s/clawbox-sdk-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        r = cb_error_set(err, -errno, "creating a temporary directory: %s", strerror(errno));
        free(dir);
        return r;
    }
    _cleanup_free_ char *h = cb__tooling_join(dir, "clawbox_tool.h");
    r = cb__tooling_write_new(h, cb__tooling_sdk, cb__tooling_sdk_len, 0644, err);
    if (r < 0) {
        rmdir(dir);
        free(dir);
        return r;
    }
    b->tc = *tc;
    b->outdir = cb_xstrdup(outdir);
    b->sdk_dir = dir;
    return 0;
}

void cb_tooling_builder_free(struct cb_tooling_builder *b)
{
    if (b == NULL)
        return;
    if (b->sdk_dir != NULL) {
        _cleanup_free_ char *h = cb__tooling_join(b->sdk_dir, "clawbox_tool.h");
        unlink(h);
        rmdir(b->sdk_dir);
    }
    free(b->sdk_dir);
    free(b->outdir);
    memset(b, 0, sizeof(*b));
}

/* Reads the project's manifest.json into m and checks that it is a JSON
 * object whose tool.name, if present, is the project's name. */
static int check_manifest(const struct cb_tooling_project *p, struct cb_buf *m,
                          struct cb_error *err)
{
    _cleanup_free_ char *path = cb__tooling_join(p->dir, "manifest.json");
    int r = cb__tooling_read(path, CB_TOOLING_MANIFEST_MAX, m, err);
    if (r < 0)
        return r;
    json_error_t je;
    json_t *j = json_loadb(m->data, m->len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j))
        r = cb_error_set(err, -EBADMSG, "%s: %s (line %d)", path, j ? "not a JSON object" : je.text,
                         j ? 1 : je.line);
    const char *name = json_string_value(json_object_get(json_object_get(j, "tool"), "name"));
    if (r == 0 && name != NULL && strcmp(name, p->name) != 0)
        r = cb_error_set(err, -EINVAL,
                         "%s names tool '%.80s', but the directory (the tool's name) is '%s'", path,
                         name, p->name);
    json_decref(j);
    return r;
}

/* 2 MiB of initial linear memory: the 1 MiB stack, the data and about
 * 900 KiB of heap, so that a typical run never grows its memory (growing
 * costs system calls and page faults in every execution). */
#define HEAP_ROOM_FLAG "-Wl,--initial-memory=2097152"

/* Runs the compiler for p, writing the module to `out`. With heap_room,
 * the module starts with HEAP_ROOM_FLAG's memory. */
static int compile_once(struct cb_tooling_builder *b, const struct cb_tooling_project *p,
                        const char *out, bool heap_room, struct cb_buf *log, struct cb_error *err)
{
    _cleanup_free_ char *sysroot = cb_xasprintf("--sysroot=%s", b->tc.sysroot);
    _cleanup_free_ char *inc_proj = cb_xasprintf("-I%s", p->dir);
    _cleanup_free_ char *inc_sdk = cb_xasprintf("-I%s", b->sdk_dir);
    const char *argv[] = {
        p->cpp ? b->tc.cxx : b->tc.cc,
        "--target=wasm32-wasi",
        sysroot,
        p->cpp ? "-std=c++17" : "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        inc_proj,
        inc_sdk,
        /* libc's DWARF quadruples the module; the name section stays. */
        "-Wl,--strip-debug",
        /* wasm-ld's 64 KiB stack is too small for recursive JSON code. */
        "-Wl,-z,stack-size=1048576",
        p->source,
        "-o",
        out,
        /* No wasm exception support here (a no-op for C). */
        "-fno-exceptions",
        heap_room ? HEAP_ROOM_FLAG : NULL,
        NULL,
    };
    bool truncated;
    int r = cb__tooling_run((char *const *)argv, b->tc.timeout_ms, log, &truncated, err);
    if (truncated)
        cb_buf_puts(log, "\n[output truncated]\n");
    return r;
}

/* Compiles with heap room, or without it when the module's data and stack
 * alone need more (wasm-ld then says "initial memory too small"). */
static int compile_project(struct cb_tooling_builder *b, const struct cb_tooling_project *p,
                           const char *out, struct cb_buf *log, struct cb_error *err)
{
    static const char too_small[] = "initial memory too small";
    int r = compile_once(b, p, out, true, log, err);
    if (r < 0 && log->len > 0 && memmem(log->data, log->len, too_small, sizeof(too_small) - 1)) {
        cb_buf_reset(log);
        cb_error_clear(err);
        r = compile_once(b, p, out, false, log, err);
    }
    return r;
}

int cb_tooling_build(struct cb_tooling_builder *b, const struct cb_tooling_project *p,
                     struct cb_buf *log, struct cb_error *err)
{
    struct cb_buf manifest;
    int r = cb__tooling_check_name(p->name, err);
    if (r == 0)
        r = check_manifest(p, &manifest, err);
    else
        cb_buf_init(&manifest, 0);
    _cleanup_free_ char *wasm = cb_xasprintf("%s/%s.wasm", b->outdir, p->name);
    _cleanup_free_ char *json = cb_xasprintf("%s/%s.json", b->outdir, p->name);
    /* Not ending in .wasm, so a watcher on outdir ignores it. */
    _cleanup_free_ char *tmp = cb_xasprintf("%s.tmp.%d", wasm, (int)getpid());
    if (r == 0)
        r = compile_project(b, p, tmp, log, err);
    if (r == 0)
        r = cb__tooling_write_atomic(json, manifest.data, manifest.len, 0644, err);
    if (r == 0 && rename(tmp, wasm) < 0)
        r = cb_error_set(err, -errno, "renaming %s to %s: %s", tmp, wasm, strerror(errno));
    if (r < 0)
        unlink(tmp);
    cb_buf_free(&manifest);
    return r;
}
