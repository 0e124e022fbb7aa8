/* Runs one compiled tool in the current process: dlopen the .so, call its
 * entry point once, collect stdout/stderr within caps. Meant to run inside
 * a single-use worker process (wasm2c's runtime keeps process globals). */
#ifndef CB_SANDBOX_RUNNER_H
#define CB_SANDBOX_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "sandbox/tool_abi.h"

struct cb_run_request {
    const char *so_path;
    const char *stdin_data;
    size_t stdin_len;
    uint64_t fuel;
    size_t max_stdout; /* bytes kept; more sets stdout_truncated */
    size_t max_stderr;
    /* host_call handler; same contract as cb_tool_env.host_call */
    int (*host_call)(void *ud, const uint8_t *req, size_t req_len, uint8_t **resp,
                     size_t *resp_len);
    void *host_ud;
};

struct cb_run_result {
    struct cb_tool_outcome outcome;
    struct cb_buf out; /* stdout */
    struct cb_buf err; /* stderr */
    bool stdout_truncated;
    bool stderr_truncated;
};

/* Loads and runs the tool. Returns 0 when the tool ran (whatever its
 * outcome), or a negative code when it could not be loaded. */
int cb_run_tool(const struct cb_run_request *req, struct cb_run_result *res, struct cb_error *err);
void cb_run_result_free(struct cb_run_result *res);

#endif
