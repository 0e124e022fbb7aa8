/* libFuzzer target for everything the main process reads from a worker
 * child: frame headers and lengths, result frames, LOG frames and host-call
 * frames, through the real session code (cb__session_run) on a socketpair
 * whose other end sends what the input says (see common/child.h).
 *
 * The input is a list of records: a kind byte, a little-endian u16 length,
 * then that many bytes (fewer at the end of the input).
 *   - kind & 0x80: the bytes go out as they are, so any byte stream
 *     (bogus headers, lengths, cut frames) can be sent;
 *   - otherwise one frame of type kind & 0x0f with the bytes as payload;
 *     a result frame (type 6) with kind & 0x40 gets the stdout and stderr
 *     lengths of its header fixed up to fit the payload, so that results
 *     are accepted and their contents reached.
 * The host-call handler answers "echo" with {"ok": params} and anything
 * else as the server does: "unknown host call method: <method>".
 *
 * Invariants (a broken one calls __builtin_trap()):
 *   - the session ends by itself (the child closes its side), never by
 *     the deadline;
 *   - the main process sends the job first, then only host-call replies,
 *     each one JSON object with exactly one member: "ok", or "error"
 *     holding a string;
 *   - no more replies than host-call frames could have asked for;
 *   - log entries are {"level", "message"} strings, the message at most
 *     16 KiB, and never more of them than host calls counted;
 *   - an accepted result keeps stdout within max_output and a
 *     NUL-terminated message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/child.h"
#include "core/util.h"
#include "sandbox/worker/ipc.h"

#define LOG_MESSAGE_MAX (16u * 1024)

static const struct cb_worker_limits limits = {
    .fuel = 1000, .timeout_ms = 20000, .memory_mb = 0, .max_output = 256, .max_host_calls = 4};

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

static char *echo_handler(void *ud, const char *method, json_t *params)
{
    (void)ud;
    if (strcmp(method, "echo") != 0)
        return cb_host_error_envelope("unknown host call method: %s", method);
    json_t *o = json_pack("{s:O?}", "ok", params);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* A result header with lengths that fit the bytes after it. */
static void fix_result(struct cb_buf *b, size_t at, size_t n)
{
    struct cb__result_header h;
    if (n < sizeof(h))
        return;
    memcpy(&h, b->data + at, sizeof(h));
    uint32_t rest = (uint32_t)(n - sizeof(h));
    h.stdout_len %= rest + 1;
    h.stderr_len = rest - h.stdout_len;
    memcpy(b->data + at, &h, sizeof(h));
}

/* Turns the records into the bytes the child sends. */
static void build(const uint8_t *data, size_t size, struct cb_buf *out)
{
    size_t pos = 0;
    while (pos < size) {
        uint8_t kind = data[pos++];
        size_t n = 0;
        if (size - pos >= 2)
            n = data[pos] | (size_t)data[pos + 1] << 8;
        pos += size - pos >= 2 ? 2 : size - pos;
        if (n > size - pos)
            n = size - pos;
        if (kind & 0x80) {
            cb_buf_append(out, data + pos, n);
        } else {
            fuzz_child_frame(out, kind & 0x0f, data + pos, n);
            if ((kind & 0x0f) == CB__FRAME_RESULT && (kind & 0x40))
                fix_result(out, out->len - n, n);
        }
        pos += n;
    }
}

struct replies {
    size_t n;
    bool job_first;
};

static void check_reply(const char *p, size_t n)
{
    json_t *env = json_loadb(p, n, 0, NULL);
    check(json_is_object(env) && json_object_size(env) == 1);
    json_t *err = json_object_get(env, "error");
    check(json_object_get(env, "ok") != NULL || json_is_string(err));
    json_decref(env);
}

static void on_frame(void *ud, uint32_t type, const char *p, size_t n)
{
    struct replies *r = ud;
    if (r->n++ == 0) {
        r->job_first = type == CB__FRAME_EXEC && n == sizeof(struct cb__exec_header) + 2;
        return;
    }
    check(type == CB__FRAME_HOSTREPLY);
    check_reply(p, n);
}

static void check_logs(const struct cb_worker_result *res)
{
    size_t i;
    json_t *e;
    check(json_array_size(res->logs) <= res->host_calls);
    json_array_foreach(res->logs, i, e)
    {
        check(json_is_string(json_object_get(e, "level")));
        check(json_string_length(json_object_get(e, "message")) <= LOG_MESSAGE_MAX);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cb_buf bytes, got;
    cb_buf_init(&bytes, SIZE_MAX / 2);
    build(data, size, &bytes);
    struct cb_worker_result res;
    fuzz_child_session(bytes.data, bytes.len, &limits, echo_handler, NULL, &res, &got);
    check(!res.timed_out);
    struct replies r = {0};
    bool partial;
    fuzz_child_frames(&got, on_frame, &r, &partial);
    check(r.n >= 1 && r.job_first && !partial);
    /* Each reply answers a frame header of at least 8 bytes. */
    check(r.n - 1 <= bytes.len / 8);
    check_logs(&res);
    if (!res.crashed) {
        check(res.out.len <= limits.max_output);
        check(memchr(res.outcome.message, '\0', sizeof(res.outcome.message)) != NULL);
    }
    cb_worker_result_free(&res);
    cb_buf_free(&bytes);
    cb_buf_free(&got);
    return 0;
}
