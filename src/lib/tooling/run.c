/* Running the compiler: fork/exec without a shell, combined output through
 * a pipe into a bounded buffer, a deadline after which the whole process
 * group is killed. An exec failure travels back through a close-on-exec
 * pipe as an errno value, so "clang not found" is an error, not output. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "tooling/internal.h"

/* In the child: never returns. */
static void child(char *const argv[], int out_fd, int err_fd)
{
    setpgid(0, 0);
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || dup2(nul, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(126);
    execvp(argv[0], argv);
    int e = errno;
    ssize_t n = write(err_fd, &e, sizeof(e));
    (void)n;
    _exit(127);
}

/* Reads the child's output until EOF or the deadline. Returns 0 or
 * -ETIMEDOUT. */
static int collect(int fd, unsigned timeout_ms, struct cb_buf *out, bool *truncated)
{
    uint64_t deadline = cb_now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    char chunk[8192];
    for (;;) {
        uint64_t now = cb_now_mono_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {fd, POLLIN, 0};
        int wait_ms = (int)((deadline - now + 999999) / 1000000);
        int pr = poll(&p, 1, wait_ms);
        if (pr < 0 && errno != EINTR)
            return -errno;
        if (pr <= 0)
            continue;
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (!*truncated && cb_buf_append(out, chunk, (size_t)n) < 0) {
            size_t room = out->max > out->len ? out->max - out->len : 0;
            cb_buf_append(out, chunk, room);
            *truncated = true;
        }
    }
}

static int wait_child(pid_t pid, int *status)
{
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* The errno the child sent if exec failed, else 0. */
static int exec_errno(int fd)
{
    int e = 0;
    ssize_t n;
    do
        n = read(fd, &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(e) ? e : 0;
}

static int status_error(const char *prog, int status, struct cb_error *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return cb_error_set(err, -ECHILD, "%s exited with status %d", prog, WEXITSTATUS(status));
    return cb_error_set(err, -ECHILD, "%s was killed by signal %d", prog,
                        WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Waits for the child after its output ended (or the deadline passed) and
 * turns the outcome into an error. */
static int finish(pid_t pid, int rc, int err_fd, char *const argv[], unsigned timeout_ms,
                  struct cb_error *err)
{
    int status = 0;
    if (rc < 0)
        kill(-pid, SIGKILL);
    int wr = wait_child(pid, &status);
    int e = exec_errno(err_fd);
    if (e != 0)
        return cb_error_set(err, -e, "cannot run %s: %s", argv[0], strerror(e));
    if (rc == -ETIMEDOUT)
        return cb_error_set(err, rc, "%s timed out after %u ms", argv[0], timeout_ms);
    if (rc < 0 || wr < 0)
        return cb_error_set(err, rc < 0 ? rc : wr, "waiting for %s: %s", argv[0],
                            strerror(-(rc < 0 ? rc : wr)));
    return status_error(argv[0], status, err);
}

int cb__tooling_run(char *const argv[], unsigned timeout_ms, struct cb_buf *out, bool *truncated,
                    struct cb_error *err)
{
    int out_pipe[2], err_pipe[2];
    *truncated = false;
    if (pipe2(out_pipe, O_CLOEXEC) < 0)
        return cb_error_set(err, -errno, "pipe: %s", strerror(errno));
    if (pipe2(err_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(out_pipe[0]);
        close(out_pipe[1]);
        return cb_error_set(err, -e, "pipe: %s", strerror(e));
    }
    pid_t pid = fork();
    if (pid == 0)
        child(argv, out_pipe[1], err_pipe[1]);
    int fork_errno = errno;
    close(out_pipe[1]);
    close(err_pipe[1]);
    int r;
    if (pid < 0)
        r = cb_error_set(err, -fork_errno, "fork: %s", strerror(fork_errno));
    else
        r = finish(pid, collect(out_pipe[0], timeout_ms, out, truncated), err_pipe[0], argv,
                   timeout_ms, err);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return r;
}
