#include "sandbox/worker/child.h"
#include "core/buf.h"
#include "core/util.h"
#include "sandbox/worker/ipc.h"
#include "sandbox/worker/seccomp.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define CB_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CB_UNDER_ASAN 1
#endif
#endif

/* How long a host call waits for its answer in a yield loop before
 * sleeping in recvmsg. Answers from the main process mostly come within
 * this time, and a thread that stays runnable needs no wake-up: on a
 * virtual machine, waking an idle vCPU costs more than the round trip
 * (bench/proxy, proxied GET: about 1.3 ms without, 0.8 ms with).
 * sched_yield hands the CPU to any runnable task, so under load the wait
 * costs next to nothing (wrk -c8 on the same path: 1388 req/s without,
 * 1406 with; a pause-instruction spin gave 913). */
#define HOST_REPLY_SPIN_US 500

struct child {
    int sock;
    uint32_t host_calls;     /* this job's, counted as the main process counts them */
    uint32_t max_host_calls; /* this job's limit */
    struct cb_buf out;
    struct cb_buf err;
    bool truncated;
    struct cb_buf job;   /* the exec frame: header + params (the tool's stdin) */
    struct cb_buf reply; /* the last host-call reply */
};

static int write_out(void *ud, int fd, const uint8_t *p, size_t n)
{
    struct child *c = ud;
    struct cb_buf *b = fd == 2 ? &c->err : &c->out;
    if (cb_buf_append(b, p, n) == 0)
        return 0;
    if (fd != 2)
        c->truncated = true;
    /* Keep what fits, so the caller sees the first max bytes. */
    cb_buf_append(b, p, b->max - b->len);
    return -1;
}

static bool is_log_call(const uint8_t *req, size_t len)
{
    json_t *env = json_loadb((const char *)req, len, 0, NULL);
    const char *method = json_string_value(json_object_get(env, "method"));
    bool log = method != NULL && strcmp(method, "log") == 0;
    json_decref(env);
    return log;
}

/* Forwards a host call to the main process and waits for its answer. A
 * "log" call within the limit is sent without waiting: its answer is
 * always the same, and the main process records it in order with the
 * other frames. */
static int host_call(void *ud, const uint8_t *req, size_t req_len, uint8_t **resp, size_t *resp_len)
{
    struct child *c = ud;
    uint32_t type = 0;
    if (++c->host_calls <= c->max_host_calls && is_log_call(req, req_len)) {
        if (cb__ipc_send(c->sock, CB__FRAME_LOG, req, req_len, -1) < 0)
            _exit(3);
        *resp = (uint8_t *)cb_xstrdup(CB__LOG_REPLY);
        *resp_len = strlen(CB__LOG_REPLY);
        return 0;
    }
    if (cb__ipc_send(c->sock, CB__FRAME_HOSTCALL, req, req_len, -1) < 0)
        _exit(3);
    cb__ipc_spin_wait(c->sock, HOST_REPLY_SPIN_US);
    if (cb__ipc_recv(c->sock, &type, &c->reply, NULL) < 0 || type != CB__FRAME_HOSTREPLY)
        _exit(3);
    *resp = (uint8_t *)cb_xstrndup(c->reply.data, c->reply.len);
    *resp_len = c->reply.len;
    return 0;
}

static void free_resp(void *ud, uint8_t *resp)
{
    (void)ud;
    free(resp);
}

static void limit(int resource, uint64_t soft, uint64_t hard)
{
    struct rlimit rl = {soft, hard};
    setrlimit(resource, &rl);
}

/* The first job fixes the limits that hold for the worker's life. CPU time
 * is cumulative, so each job gets its allowance on top of what the worker
 * has used; the last job also fixes the hard limit. */
static void apply_rlimits(int sock, const struct cb__exec_header *h, bool first)
{
    if (first) {
#ifndef CB_UNDER_ASAN
        /* Private writable memory: heap, stacks and the accessible part of
         * linear memory, whose 8 GiB reservations are not counted. (The
         * sanitizer maps terabytes of shadow up front.) */
        if (h->memory_bytes > 0)
            limit(RLIMIT_DATA, h->memory_bytes, h->memory_bytes);
#endif
        limit(RLIMIT_NOFILE, (uint64_t)sock + 1, (uint64_t)sock + 1);
        limit(RLIMIT_CORE, 0, 0);
        limit(RLIMIT_FSIZE, 0, 0);
        limit(RLIMIT_NPROC, 0, 0);
    }
    struct timespec used = {0};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
    uint64_t cpu = (uint64_t)used.tv_sec + 1 + h->cpu_seconds;
    limit(RLIMIT_CPU, cpu, h->jobs_left == 0 ? cpu : RLIM_INFINITY);
}

static void send_outcome(struct child *c, const struct cb_tool_outcome *o, bool reusable)
{
    struct cb__result_header h = {.status = (uint32_t)o->status,
                                  .exit_code = o->exit_code,
                                  .fuel_consumed = o->fuel_consumed,
                                  .truncated = c->truncated,
                                  .stdout_len = (uint32_t)c->out.len,
                                  .stderr_len = (uint32_t)c->err.len,
                                  .reusable = reusable};
    memcpy(h.message, o->message, sizeof(h.message));
    h.message[sizeof(h.message) - 1] = '\0';
    struct cb_buf all;
    cb_buf_init(&all, CB__IPC_MAX_FRAME);
    cb_buf_append(&all, c->out.data ? c->out.data : "", c->out.len);
    cb_buf_append(&all, c->err.data ? c->err.data : "", c->err.len);
    cb__ipc_send2(c->sock, CB__FRAME_RESULT, &h, sizeof(h), all.data ? all.data : "", all.len);
    cb_buf_free(&all);
}

/* Runs one job and sends its result. Returns true when the worker may
 * take another: the main process allows more and the tool ended cleanly
 * (returned or exited), not by a trap that unwound through the shim. */
static bool run_job(struct child *c, cb_tool_entry_fn entry, bool first)
{
    struct cb__exec_header h;
    memcpy(&h, c->job.data, sizeof(h));
    cb_buf_free(&c->out);
    cb_buf_free(&c->err);
    cb_buf_init(&c->out, h.max_output);
    cb_buf_init(&c->err, CB__STDERR_MAX);
    c->truncated = false;
    c->host_calls = 0;
    c->max_host_calls = h.max_host_calls;
    apply_rlimits(c->sock, &h, first);
    struct cb_tool_env env = {.abi_version = CB_TOOL_ABI_VERSION,
                              .stdin_data = c->job.data + sizeof(h),
                              .stdin_len = c->job.len - sizeof(h),
                              .fuel = h.fuel,
                              .write_out = write_out,
                              .host_call = host_call,
                              .free_resp = free_resp,
                              .ud = c};
    struct cb_tool_outcome o = {0};
    entry(&env, &o);
    bool again = h.jobs_left > 0 && (o.status == CB_TOOL_OK || o.status == CB_TOOL_EXIT_NONZERO);
    send_outcome(c, &o, again);
    return again;
}

void cb__child_main(int sock, cb_tool_entry_fn entry, cb_tool_release_fn release,
                    const struct sock_fprog *filter)
{
    struct child c = {.sock = sock};
    /* Confined before the first job arrives: a waiting child is as locked
     * down as a running one. A closed socket (the zygote evicting the
     * tool, the main process retiring the worker, or exiting) ends it. */
    if (cb__seccomp_load(filter) < 0)
        _exit(4);
    cb_buf_init(&c.job, CB__IPC_MAX_FRAME);
    cb_buf_init(&c.reply, CB__IPC_MAX_FRAME);
    for (bool first = true;; first = false) {
        uint32_t type = 0;
        if (cb__ipc_recv(sock, &type, &c.job, NULL) < 0)
            _exit(first ? 2 : 0);
        if (type != CB__FRAME_EXEC || c.job.len < sizeof(struct cb__exec_header))
            _exit(2);
        if (!run_job(&c, entry, first))
            _exit(0);
        /* The instance's teardown (zeroing its memory) comes after the
         * result is on its way, not before it. */
        release();
    }
}
