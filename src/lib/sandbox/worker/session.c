/* One execution from the main process's side: send the job to the child,
 * answer its host calls, and collect its result before the deadline. */
#include "core/json.h"
#include "core/utf8.h"
#include "core/util.h"
#include "sandbox/worker.h"
#include "sandbox/worker/ipc.h"
#include "sandbox/worker/session.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#define LOG_MESSAGE_MAX (16u * 1024)
/* Writable memory a child needs besides the tool's linear memory. */
#define CHILD_BASE_BYTES (256ull * 1024 * 1024)

struct session {
    int sock;
    int pidfd;
    pid_t pid;
    uint64_t deadline_ns;
    const struct cb_worker_limits *lim;
    cb_host_call_fn handler;
    void *handler_ud;
    struct cb_worker_result *res;
    bool reusable; /* the child said it waits for another job */
};

/* The envelope sent when building the real one failed. */
#define FALLBACK_ENVELOPE "{\"error\":\"host call failed\"}"

char *cb_host_error_envelope(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    cb_utf8_vformat(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = cb_json_dump_or(o, JSON_COMPACT, FALLBACK_ENVELOPE);
    json_decref(o);
    return s;
}

static char *do_log(struct session *s, json_t *params)
{
    const char *level = json_string_value(json_object_get(params, "level"));
    const char *msg = json_string_value(json_object_get(params, "message"));
    size_t len = msg ? cb_utf8_cut(msg, strlen(msg), LOG_MESSAGE_MAX) : 0;
    json_t *entry = json_object();
    json_object_set_new(entry, "level", json_string(level ? level : "info"));
    json_object_set_new(entry, "message", cb_json_text(msg ? msg : "", len));
    json_array_append_new(s->res->logs, entry);
    return cb_xstrdup(CB__LOG_REPLY);
}

/* Parses and answers one host call envelope. A frame the child answered
 * itself (log_only) must hold a "log" call within the limit; NULL means
 * it did not. */
static char *dispatch(struct session *s, const char *req, size_t len, bool log_only)
{
    json_error_t je;
    bool within = s->res->host_calls++ < s->lim->max_host_calls;
    json_t *env = within ? json_loadb(req, len, 0, &je) : NULL;
    const char *method = json_string_value(json_object_get(env, "method"));
    bool log = method != NULL && strcmp(method, "log") == 0;
    char *out;
    if (log_only && !log)
        out = NULL;
    else if (!within)
        out = cb_host_error_envelope("host_call limit exceeded (max %u)", s->lim->max_host_calls);
    else if (env == NULL)
        out = cb_host_error_envelope("invalid host_call request: %s", je.text);
    else if (method == NULL)
        out = cb_host_error_envelope("invalid host_call request: missing string field 'method'");
    else if (log)
        out = do_log(s, json_object_get(env, "params"));
    else if (s->handler)
        out = s->handler(s->handler_ud, method, json_object_get(env, "params"));
    else
        out = cb_host_error_envelope("unknown host call method: %s", method);
    json_decref(env);
    return out;
}

static void kill_session_child(struct session *s)
{
    if (s->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
    else
        kill(s->pid, SIGKILL);
}

static int parse_result(struct session *s, const struct cb_buf *f)
{
    struct cb__result_header h;
    struct cb_worker_result *res = s->res;
    if (f->len < sizeof(h))
        return -EPROTO;
    memcpy(&h, f->data, sizeof(h));
    if ((uint64_t)h.stdout_len + h.stderr_len != f->len - sizeof(h))
        return -EPROTO;
    res->outcome.status = (enum cb_tool_status)h.status;
    res->outcome.exit_code = h.exit_code;
    res->outcome.fuel_consumed = h.fuel_consumed;
    memcpy(res->outcome.message, h.message, sizeof(h.message));
    res->outcome.message[sizeof(h.message) - 1] = '\0';
    res->output_truncated = h.truncated != 0;
    s->reusable = h.reusable != 0;
    cb_buf_append(&res->out, f->data + sizeof(h), h.stdout_len);
    cb_buf_append(&res->err, f->data + sizeof(h) + h.stdout_len, h.stderr_len);
    return 0;
}

/* Waits until the socket is readable or the deadline passes. */
static int wait_readable(struct session *s)
{
    for (;;) {
        uint64_t now = cb_now_mono_ns();
        if (now >= s->deadline_ns)
            return -ETIMEDOUT;
        struct pollfd pfd = {s->sock, POLLIN, 0};
        int ms = (int)((s->deadline_ns - now + 999999) / 1000000);
        int r = poll(&pfd, 1, ms);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

/* Serves frames until the result arrives. */
static int serve(struct session *s)
{
    struct cb_buf f;
    cb_buf_init(&f, CB__IPC_MAX_FRAME);
    int r;
    for (;;) {
        uint32_t type = 0;
        r = wait_readable(s);
        if (r == 0)
            r = cb__ipc_recv(s->sock, &type, &f, NULL);
        if (r < 0)
            break;
        if (type == CB__FRAME_RESULT) {
            r = parse_result(s, &f);
            break;
        }
        if (type == CB__FRAME_LOG) {
            char *ignored = dispatch(s, f.data, f.len, true);
            if (ignored == NULL) {
                r = -EPROTO;
                break;
            }
            free(ignored);
            continue;
        }
        if (type != CB__FRAME_HOSTCALL) {
            r = -EPROTO;
            break;
        }
        char *reply = dispatch(s, f.data, f.len, false);
        if (reply == NULL)
            reply = cb_xstrdup(FALLBACK_ENVELOPE);
        r = cb__ipc_send(s->sock, CB__FRAME_HOSTREPLY, reply, strlen(reply), -1);
        free(reply);
        if (r < 0)
            break;
    }
    cb_buf_free(&f);
    return r;
}

static int send_job(struct session *s, const char *params, size_t len, uint32_t jobs_left)
{
    const struct cb_worker_limits *l = s->lim;
    struct cb__exec_header h = {.fuel = l->fuel,
                                .memory_bytes = CHILD_BASE_BYTES + l->memory_mb * 1024 * 1024,
                                .max_output = l->max_output,
                                .cpu_seconds = l->timeout_ms / 1000 + 2,
                                .jobs_left = jobs_left,
                                .max_host_calls = l->max_host_calls};
    return cb__ipc_send2(s->sock, CB__FRAME_EXEC, &h, sizeof(h), params, len);
}

bool cb__session_run(int sock, pid_t pid, const char *params, size_t params_len, uint32_t jobs_left,
                     const struct cb_worker_limits *lim, cb_host_call_fn handler, void *ud,
                     struct cb_worker_result *res)
{
    struct session s = {.sock = sock,
                        .pid = pid,
                        .pidfd = (int)syscall(SYS_pidfd_open, pid, 0),
                        .deadline_ns = cb_now_mono_ns() + lim->timeout_ms * 1000000ull,
                        .lim = lim,
                        .handler = handler,
                        .handler_ud = ud,
                        .res = res};
    int r = send_job(&s, params, params_len, jobs_left);
    if (r == 0)
        r = serve(&s);
    if (r == -ETIMEDOUT)
        res->timed_out = true;
    else if (r < 0)
        res->crashed = true;
    if (r < 0)
        kill_session_child(&s);
    if (s.pidfd >= 0)
        close(s.pidfd);
    return r == 0 && s.reusable && jobs_left > 0;
}
