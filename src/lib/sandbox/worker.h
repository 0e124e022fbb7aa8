/* Tool execution in worker processes.
 *
 * At start the server spawns a zygote: a fresh exec of clawbox itself
 * (`clawbox __zygote`) with an empty environment and no inherited file
 * descriptors but one socket, so it never holds a secret. The zygote forks
 * children that load a tool's shared object (kept open in the zygote, so
 * the child inherits it) and drop to a seccomp filter before their first
 * job. A child runs jobs of its one tool one at a time, each in a fresh
 * instance (new linear memory, globals and tables), under rlimits, for at
 * most `jobs_per_worker` jobs; a job that does not end cleanly (trap,
 * fuel, timeout, crash) ends the child. The child talks to the main
 * process directly over its own socket: host calls go to the main
 * process, which answers them; the result comes back at the end. The main
 * process kills the child at the deadline. */
#ifndef CB_SANDBOX_WORKER_H
#define CB_SANDBOX_WORKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "sandbox/tool_abi.h"

struct cb_worker_pool;

struct cb_worker_limits {
    uint64_t fuel;
    uint64_t timeout_ms;
    uint64_t memory_mb; /* data-size cap of the child beyond its baseline */
    size_t max_output;  /* stdout bytes kept */
    uint32_t max_host_calls;
};

/* Answers one host call for the main process. `req` is the raw envelope;
 * the handler returns a malloc'd response envelope. Counting and the call
 * limit are done by the pool before the handler is called. */
typedef char *(*cb_host_call_fn)(void *ud, const char *method, json_t *params);

struct cb_worker_result {
    struct cb_tool_outcome outcome;
    bool timed_out;
    bool crashed; /* the child died without a result (signal, seccomp) */
    int signal;
    struct cb_buf out;
    struct cb_buf err;
    bool output_truncated;
    json_t *logs; /* array of {"level","message"} from the log host method */
    uint32_t host_calls;
};

/* Returns a malloc'd host-call error envelope {"error": "<message>"}. */
char *cb_host_error_envelope(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* `self_exe` is the clawbox binary to exec as the zygote (normally
 * /proc/self/exe); a child runs at most `jobs_per_worker` executions
 * (1 = one process per execution). */
int cb_worker_pool_new(const char *self_exe, uint32_t jobs_per_worker, struct cb_worker_pool **out,
                       struct cb_error *err);
void cb_worker_pool_free(struct cb_worker_pool *p);

/* Runs the tool at so_path once, in an idle child of that tool. Returns 0 when the tool ran
 * (whatever its outcome: see res), or a negative code when no worker could be started. */
int cb_worker_execute(struct cb_worker_pool *p, const char *so_path, const char *params,
                      size_t params_len, const struct cb_worker_limits *lim,
                      cb_host_call_fn handler, void *handler_ud, struct cb_worker_result *res,
                      struct cb_error *err);
void cb_worker_result_free(struct cb_worker_result *res);

/* The zygote's main loop (the `clawbox __zygote` verb). `fd` is its socket
 * to the main process. Returns the process exit code. */
int cb_zygote_main(int fd);

#endif
