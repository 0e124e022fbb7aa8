/* Internal: what a forked worker child does (runs in the zygote's fork). */
#ifndef CB_SANDBOX_WORKER_CHILD_H
#define CB_SANDBOX_WORKER_CHILD_H

#include <linux/filter.h>

#include "sandbox/tool_abi.h"

/* Receives the execution, confines itself, runs the tool once and sends
 * the result on `sock`. Never returns. */
void cb__child_main(int sock, cb_tool_entry_fn entry, const struct sock_fprog *filter)
    __attribute__((noreturn));

#endif
