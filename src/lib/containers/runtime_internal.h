/* Shared by runtime.c and monitor.c: running one runtime command. */
#ifndef CB_CONTAINERS_RUNTIME_INTERNAL_H
#define CB_CONTAINERS_RUNTIME_INTERNAL_H

#include <stddef.h>

#include "containers/runtime.h"
#include "core/buf.h"
#include "core/error.h"

/* Deadline of one runtime command (create, start, kill, delete, list). */
#define CB__CT_STEP_MS 30000u
/* Output of a runtime command kept for its error message. */
#define CB__CT_MSG_MAX 4096u
/* The only environment a runtime or a monitor gets: nothing of the
 * server's (which may hold secrets) reaches them. */
#define CB__CT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Runs `rt->path --root rt->root args...` (n_args <= 12) with a clean
 * environment and the step deadline. Returns 0 when it exited 0; else an
 * error naming the command with the runtime's own message. out, when not
 * NULL, receives stdout and stderr up to its maximum. */
int cb__ct_rt_run(const struct cb_ct_runtime *rt, const char *const *args, size_t n_args,
                  struct cb_buf *out, struct cb_error *err);

/* The message in a runtime's output, written NUL-terminated to dst: the
 * last non-empty line, or from runc's `level=error msg="..."` form the
 * quoted text. Empty when out holds none. */
void cb__ct_rt_message(const char *out, size_t n, char *dst, size_t cap);

#endif
