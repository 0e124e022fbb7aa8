/* Shared by runtime.c and monitor.c: running one runtime command. */
#ifndef CB_CONTAINERS_RUNTIME_INTERNAL_H
#define CB_CONTAINERS_RUNTIME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "containers/runtime.h"
#include "core/buf.h"
#include "core/error.h"

/* Deadline of one runtime command (create, start, kill, delete, list). */
#define CB__CT_STEP_MS 30000u
/* Output of a runtime command kept for its error message. */
#define CB__CT_MSG_MAX 4096u
/* The only environment a runtime or a monitor gets: nothing of the
 * server's (which may hold secrets) reaches them. */
#define CB__CT_PATH     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CB__CT_PATH_ENV "PATH=" CB__CT_PATH

/* The monitor zygote (monitor.c), started once by the first launch
 * (launch.c): `clawbox __container-monitor` with its socket at fd 3. It
 * forks one monitor per container, so a launch pays a fork of a small
 * process instead of an exec of clawbox. Frames are sandbox/worker/ipc.h's.
 * A LAUNCH frame carries the job's fields, each NUL-terminated, in the
 * order below, and the status pipe's write end; the LAUNCHED answer is a
 * struct cb__ct_launched with the monitor's pidfd attached. The monitor
 * writes "ok PID" or "error ERRNO MESSAGE" to the status pipe, then closes
 * it. */
#define CB__CT_ZYGOTE_FD 3
enum { CB__CT_FRAME_LAUNCH = 1, CB__CT_FRAME_LAUNCHED = 2 };
enum {
    CB__CT_F_NAME,
    CB__CT_F_PATH,
    CB__CT_F_ROOT,
    CB__CT_F_ID,
    CB__CT_F_BUNDLE,
    CB__CT_F_DIR,
    CB__CT_F_CGROUP,
    CB__CT_F_LOG_CAP,
    CB__CT_F_NETNS, /* "" = none */
    CB__CT_F_COUNT
};
#define CB__CT_LAUNCH_MAX 16384
#define CB__CT_STATUS_MAX 2048
struct cb__ct_launched {
    int32_t err; /* 0 or a negative errno: fork failed */
    int32_t pid;
};

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
