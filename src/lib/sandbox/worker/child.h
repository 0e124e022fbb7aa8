/* Internal: what a forked worker child does (runs in the zygote's fork). */
#ifndef CB_SANDBOX_WORKER_CHILD_H
#define CB_SANDBOX_WORKER_CHILD_H

#include <linux/filter.h>

#include "sandbox/tool_abi.h"

/* Confines itself, then runs jobs received on `sock` one at a time, each
 * in a fresh instance of the tool, sending each result back, until the
 * main process sends no more or a job does not end cleanly. Never
 * returns. */
void cb__child_main(int sock, cb_tool_entry_fn entry, cb_tool_release_fn release,
                    const struct sock_fprog *filter) __attribute__((noreturn));

#endif
