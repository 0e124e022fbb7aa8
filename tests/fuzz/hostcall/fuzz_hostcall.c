/* libFuzzer target for host-call envelopes as the main process handles
 * them: each input line is one envelope ({"method": ..., "params": ...}),
 * sent by a compromised child over the real session code
 * (cb__session_run, see common/child.h) as a host-call frame, or as a LOG
 * frame (one the child claims to have answered itself) when the line
 * starts with '#'. A well-formed result frame follows the last line. The
 * host calls go to the server's handler: http_request reaches a real proxy
 * that lets nothing out (common/proxy.h), any other method is refused.
 *
 * Invariants (a broken one calls __builtin_trap()):
 *   - the session ends by itself, never by the deadline;
 *   - each host-call frame gets exactly one reply, in order, until the
 *     session ends (all of them when the result was accepted); a LOG frame
 *     gets none;
 *   - a reply is one JSON object with exactly one member: "error" holding
 *     a non-empty string, or "ok" only for a "log" call;
 *   - log entries are {"level", "message"} strings. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/child.h"
#include "../common/proxy.h"
#include "core/json.h"
#include "core/util.h"
#include "sandbox/worker/ipc.h"

#define MAX_CALLS 256

static const struct cb_worker_limits limits = {
    .fuel = 1000, .timeout_ms = 20000, .memory_mb = 0, .max_output = 1024, .max_host_calls = 8};

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

/* The server's host-call handler, as api/execute.c has it (static there). */
static char *host_call(void *ud, const char *method, json_t *params)
{
    const struct fuzz_proxy *fp = ud;
    if (strcmp(method, "http_request") != 0)
        return cb_host_error_envelope("unknown host call method: %s", method);
    json_t *env =
        cb_proxy_http_request(fp->proxy, fp->manifest, fp->granted, params, "fuzz-request");
    char *s = cb_json_dump_or(env, JSON_COMPACT, "{\"error\":\"http_request failed\"}");
    json_decref(env);
    return s;
}

/* What the child sent, one entry per host-call frame: whether an "ok"
 * reply may answer it (a call to "log"). */
struct calls {
    bool may_ok[MAX_CALLS];
    size_t n;
    size_t replies;
};

static bool is_log_call(const char *p, size_t n)
{
    json_t *env = json_loadb(p, n, 0, NULL);
    const char *m = json_string_value(json_object_get(env, "method"));
    bool log = m != NULL && strcmp(m, "log") == 0;
    json_decref(env);
    return log;
}

/* Turns the lines into frames and ends with a result. */
static void build(const char *data, size_t size, struct cb_buf *out, struct calls *c)
{
    const char *p = data, *end = data + size;
    while (p < end && c->n < MAX_CALLS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len > 0 && p[0] == '#') {
            fuzz_child_frame(out, CB__FRAME_LOG, p + 1, len - 1);
        } else {
            fuzz_child_frame(out, CB__FRAME_HOSTCALL, p, len);
            c->may_ok[c->n++] = is_log_call(p, len);
        }
        p += len + 1;
    }
    struct cb__result_header h = {.status = CB_TOOL_OK, .stdout_len = 2, .reusable = 1};
    struct cb_buf f;
    cb_buf_init(&f, sizeof(h) + 2);
    cb_buf_append(&f, &h, sizeof(h));
    cb_buf_append(&f, "{}", 2);
    fuzz_child_frame(out, CB__FRAME_RESULT, f.data, f.len);
    cb_buf_free(&f);
}

static void on_frame(void *ud, uint32_t type, const char *p, size_t n)
{
    struct calls *c = ud;
    if (type == CB__FRAME_EXEC)
        return;
    check(type == CB__FRAME_HOSTREPLY && c->replies < c->n);
    json_t *env = json_loadb(p, n, 0, NULL);
    check(json_is_object(env) && json_object_size(env) == 1);
    const char *err = json_string_value(json_object_get(env, "error"));
    check((err != NULL && err[0] != '\0') ||
          (c->may_ok[c->replies] && json_object_get(env, "ok") != NULL));
    json_decref(env);
    c->replies++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fuzz_proxy *fp = fuzz_proxy_get();
    struct calls c = {0};
    struct cb_buf bytes, got;
    cb_buf_init(&bytes, SIZE_MAX / 2);
    build((const char *)data, size, &bytes, &c);
    struct cb_worker_result res;
    bool reusable =
        fuzz_child_session(bytes.data, bytes.len, &limits, host_call, (void *)fp, &res, &got);
    check(!res.timed_out);
    bool partial;
    fuzz_child_frames(&got, on_frame, &c, &partial);
    check(!partial);
    if (!res.crashed)
        check(reusable && c.replies == c.n && strcmp(res.out.data, "{}") == 0);
    size_t i;
    json_t *e;
    json_array_foreach(res.logs, i, e)
    {
        check(json_is_string(json_object_get(e, "level")));
        check(json_is_string(json_object_get(e, "message")));
    }
    cb_worker_result_free(&res);
    cb_buf_free(&bytes);
    cb_buf_free(&got);
    return 0;
}
