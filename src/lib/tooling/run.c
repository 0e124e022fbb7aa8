/* Running the compiler through core/proc, and turning how it ended into
 * the tooling's errors. */
#include <errno.h>
#include <sys/wait.h>

#include "core/proc.h"
#include "tooling/internal.h"

static int status_error(const char *prog, int status, struct cb_error *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return cb_error_set(err, -ECHILD, "%s exited with status %d", prog, WEXITSTATUS(status));
    return cb_error_set(err, -ECHILD, "%s was killed by signal %d", prog,
                        WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int cb__tooling_run(char *const argv[], unsigned timeout_ms, struct cb_buf *out, bool *truncated,
                    struct cb_error *err)
{
    const struct cb_proc_spec spec = {.argv = argv, .timeout_ms = timeout_ms, .output = out};
    struct cb_proc_result res;
    int r = cb_proc_run(&spec, &res, err);
    *truncated = res.truncated;
    return r < 0 ? r : status_error(argv[0], res.status, err);
}
