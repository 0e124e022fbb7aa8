/* In-process runner of a compiled tool.
 *
 * One run at a time per process: wasm2c 1.0.32 keeps the trap jmp_buf, the
 * call-depth counter and the function-type registry in process globals,
 * and the shim keeps its WASI state (stdin position, exit status) in
 * globals too. Each run resets them and makes a fresh instance, so runs
 * one after another are fine; runs on two threads at once are not. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "sandbox/runner.h"

static const char no_host_call[] = "{\"error\":\"host_call is not available in this context\"}";

struct run_ctx {
    const struct cb_run_request *req;
    struct cb_run_result *res;
};

/* Keeps what fits under the cap, then tells the shim the write failed. */
static int append_capped(struct cb_buf *b, bool *truncated, const uint8_t *p, size_t n)
{
    size_t room = b->max - b->len;

    if (n <= room)
        return cb_buf_append(b, p, n) == 0 ? 0 : -1;
    cb_buf_append(b, p, room);
    *truncated = true;
    return -1;
}

static int write_out(void *ud, int fd, const uint8_t *p, size_t n)
{
    struct run_ctx *ctx = ud;

    if (fd == 1)
        return append_capped(&ctx->res->out, &ctx->res->stdout_truncated, p, n);
    return append_capped(&ctx->res->err, &ctx->res->stderr_truncated, p, n);
}

static int host_call(void *ud, const uint8_t *req, size_t req_len, uint8_t **resp, size_t *resp_len)
{
    struct run_ctx *ctx = ud;

    if (ctx->req->host_call)
        return ctx->req->host_call(ctx->req->host_ud, req, req_len, resp, resp_len);
    *resp_len = sizeof(no_host_call) - 1;
    *resp = cb_xmalloc(*resp_len);
    memcpy(*resp, no_host_call, *resp_len);
    return 0;
}

static void free_resp(void *ud, uint8_t *resp)
{
    (void)ud;
    free(resp);
}

static int call_entry(void *so, const struct cb_run_request *req, struct cb_run_result *res,
                      struct cb_error *err)
{
    cb_tool_entry_fn entry = (cb_tool_entry_fn)dlsym(so, CB_TOOL_ENTRY_SYMBOL);
    struct run_ctx ctx = {req, res};
    struct cb_tool_env env = {
        .abi_version = CB_TOOL_ABI_VERSION,
        .stdin_data = req->stdin_data,
        .stdin_len = req->stdin_len,
        .fuel = req->fuel,
        .write_out = write_out,
        .host_call = host_call,
        .free_resp = free_resp,
        .ud = &ctx,
    };

    cb_tool_release_fn release = (cb_tool_release_fn)dlsym(so, CB_TOOL_RELEASE_SYMBOL);
    int rc = 0;

    if (!entry || !release)
        return cb_error_set(err, -EINVAL, "%s is not a clawbox tool (no %s or %s)", req->so_path,
                            CB_TOOL_ENTRY_SYMBOL, CB_TOOL_RELEASE_SYMBOL);
    if (entry(&env, &res->outcome) < 0)
        rc = cb_error_set(err, -EINVAL, "running %s: %s", req->so_path, res->outcome.message);
    release();
    return rc;
}

int cb_run_tool(const struct cb_run_request *req, struct cb_run_result *res, struct cb_error *err)
{
    void *so;
    int rc;

    memset(res, 0, sizeof(*res));
    cb_buf_init(&res->out, req->max_stdout);
    cb_buf_init(&res->err, req->max_stderr);
    so = dlopen(req->so_path, RTLD_NOW | RTLD_LOCAL);
    if (!so)
        return cb_error_set(err, -ENOEXEC, "loading tool %s: %s", req->so_path, dlerror());
    rc = call_entry(so, req, res, err);
    dlclose(so);
    return rc;
}

void cb_run_result_free(struct cb_run_result *res)
{
    if (!res)
        return;
    cb_buf_free(&res->out);
    cb_buf_free(&res->err);
}
