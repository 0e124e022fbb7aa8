/* Internal: one execution on a started child, from the main process. */
#ifndef CB_SANDBOX_WORKER_SESSION_H
#define CB_SANDBOX_WORKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/worker.h"

/* Sends the job on `sock`, telling the child how many more it may take
 * after it, and answers host calls through `handler` until the child's
 * result arrives or the deadline passes (the child is then killed). Fills
 * res, including on timeout and crash. Returns true when the child ended
 * the job cleanly and waits for the next one. */
bool cb__session_run(int sock, pid_t pid, const char *params, size_t params_len, uint32_t jobs_left,
                     const struct cb_worker_limits *lim, cb_host_call_fn handler, void *ud,
                     struct cb_worker_result *res);

#endif
