/* Internal: one execution on a started child, from the main process. */
#ifndef CB_SANDBOX_WORKER_SESSION_H
#define CB_SANDBOX_WORKER_SESSION_H

#include <sys/types.h>

#include "sandbox/worker.h"

/* Sends the job on `sock`, answers host calls through `handler` until the
 * child's result arrives or the deadline passes (the child is then
 * killed). Fills res; returns 0 whenever an outcome is known, including
 * timeout and crash. */
int cb__session_run(int sock, pid_t pid, const char *params, size_t params_len,
                    const struct cb_worker_limits *lim, cb_host_call_fn handler, void *ud,
                    struct cb_worker_result *res);

#endif
