/* The child reports a failure before exec (or before fn) through a
 * close-on-exec pipe, as an errno value and the step that failed, or, when
 * posix_spawn started it, as that call's result, so "cc not found" is an
 * error and not output. The parent feeds stdin and reads the output in one
 * poll loop, so neither side can block the other, then waits for the exit
 * until the deadline. */
#include "core/proc.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NO_DEADLINE UINT64_MAX

enum step { STEP_STDIO, STEP_CWD, STEP_ENV, STEP_RLIMIT, STEP_EXEC };

static const char *const step_names[] = {
    [STEP_STDIO] = "redirecting stdio",
    [STEP_CWD] = "changing directory",
    [STEP_ENV] = "setting the environment",
    [STEP_RLIMIT] = "setting a resource limit",
};

struct failure {
    int err;
    int step;
};

/* The parent's ends: stdin (-1 once closed), output, failure report. */
struct ends {
    int in, out, report;
};

/* ---- the child ---- */

static _Noreturn void proc_fail(int report_fd, enum step step)
{
    struct failure f = {errno, step};
    ssize_t n = write(report_fd, &f, sizeof(f));
    (void)n;
    _exit(127);
}

/* Signals clawbox ignores or blocks would stay so across exec. */
static void reset_signals(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static int apply_limit(const struct cb_proc_rlimit *l)
{
    struct rlimit cur, lim;
    if (getrlimit(l->resource, &cur) < 0)
        return -1;
    lim.rlim_max = l->hard < cur.rlim_max ? l->hard : cur.rlim_max;
    lim.rlim_cur = l->soft < lim.rlim_max ? l->soft : lim.rlim_max;
    return setrlimit(l->resource, &lim);
}

/* Descriptors of clawbox (client connections, listeners) must not live on
 * in the child: before exec they are marked close-on-exec, which keeps the
 * report pipe open until exec; before fn they are closed. */
static void close_inherited(bool for_exec)
{
    if (close_range(3, ~0u, for_exec ? CLOSE_RANGE_CLOEXEC : 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++) {
        if (for_exec)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        else
            close(fd);
    }
}

static _Noreturn void child(const struct cb_proc_spec *spec, int in_fd, int out_fd, int report_fd)
{
    if (!spec->in_caller_group)
        setpgid(0, 0);
    reset_signals();
    if (dup2(in_fd, 0) < 0 || (out_fd >= 0 && (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)))
        proc_fail(report_fd, STEP_STDIO);
    if (spec->cwd != NULL && chdir(spec->cwd) < 0)
        proc_fail(report_fd, STEP_CWD);
    if (spec->env_clear && clearenv() != 0)
        proc_fail(report_fd, STEP_ENV);
    for (char *const *e = spec->env; e != NULL && *e != NULL; e++)
        if (putenv(*e) != 0)
            proc_fail(report_fd, STEP_ENV);
    /* The limits come last: nothing between them and exec allocates, so
     * an address space limit below what clawbox uses (the child is a copy
     * of it until exec; ASan reserves terabytes) does no harm. */
    for (size_t i = 0; i < spec->n_rlimits; i++)
        if (apply_limit(&spec->rlimits[i]) < 0)
            proc_fail(report_fd, STEP_RLIMIT);
    if (spec->fn != NULL) {
        close_inherited(false);
        _exit(spec->fn(spec->arg));
    }
    close_inherited(true);
    execvp(spec->argv[0], spec->argv);
    proc_fail(report_fd, STEP_EXEC);
}

/* ---- the child, by posix_spawn ---- */

/* A run of a program by path with no cwd, rlimits or environment to
 * merge needs nothing that only a forked child can do, and posix_spawn
 * (a vfork: nothing of clawbox's memory is copied, which a fork of a big
 * process pays for on every run) does the rest: process group, signals,
 * stdio, descriptors. A failed exec is its return value. */
static bool spawnable(const struct cb_proc_spec *spec)
{
    return spec->fn == NULL && spec->cwd == NULL && spec->n_rlimits == 0 &&
           (spec->env_clear || spec->env == NULL) && strchr(spec->argv[0], '/') != NULL;
}

static int spawn(const struct cb_proc_spec *spec, int in_fd, int out_fd, pid_t *pid)
{
    extern char **environ;
    static char *const no_env[] = {NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (out_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    }
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (!spec->in_caller_group)
        flags |= POSIX_SPAWN_SETPGROUP; /* group 0: its own */
    posix_spawnattr_setflags(&at, flags);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    char *const *envp = !spec->env_clear ? environ : spec->env != NULL ? spec->env : no_env;
    int r = posix_spawn(pid, spec->argv[0], &fa, &at, spec->argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return r;
}

/* ---- the parent ---- */

static int remaining_ms(uint64_t deadline)
{
    if (deadline == NO_DEADLINE)
        return -1;
    uint64_t now = cb_now_mono_ns();
    return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* How often a run that can be cancelled looks at its flag. */
#define CANCEL_POLL_MS 100

static bool cancelled(const struct cb_proc_spec *spec)
{
    return spec->cancel != NULL && atomic_load(spec->cancel);
}

/* How long to wait for an event: until the deadline, but at most
 * CANCEL_POLL_MS when the run can be cancelled. */
static int wait_ms(const struct cb_proc_spec *spec, uint64_t deadline)
{
    int ms = remaining_ms(deadline);
    return spec->cancel != NULL && (ms < 0 || ms > CANCEL_POLL_MS) ? CANCEL_POLL_MS : ms;
}

static void keep(const struct cb_proc_spec *spec, struct cb_proc_result *res, const char *p,
                 size_t n)
{
    struct cb_buf *b = spec->output;
    if (spec->on_output != NULL)
        spec->on_output(p, n, spec->on_output_ud);
    if (b == NULL || res->truncated || cb_buf_append(b, p, n) == 0)
        return;
    cb_buf_append(b, p, b->max > b->len ? b->max - b->len : 0);
    res->truncated = true;
}

static void close_stdin(struct ends *e)
{
    if (e->in >= 0)
        close(e->in);
    e->in = -1;
}

/* Sends what the child has room for; closes stdin when all is sent or the
 * child stopped reading. */
static void proc_feed(struct ends *e, const struct cb_proc_spec *spec, size_t *sent)
{
    const char *p = spec->stdin_data;
    ssize_t n = 0;
    if (*sent < spec->stdin_len)
        n = send(e->in, p + *sent, spec->stdin_len - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
        *sent += (size_t)n;
    if (*sent == spec->stdin_len || (n < 0 && errno != EAGAIN && errno != EINTR))
        close_stdin(e);
}

/* Feeds stdin and reads the output until it ends (or, with no output to
 * read, until stdin is done). Returns 0 then, -ETIMEDOUT at the deadline,
 * or -errno. */
static int proc_pump(struct ends *e, const struct cb_proc_spec *spec, uint64_t deadline,
                     struct cb_proc_result *res)
{
    char chunk[8192];
    size_t sent = 0;
    while (e->out >= 0 || e->in >= 0) {
        if (remaining_ms(deadline) == 0)
            return -ETIMEDOUT;
        if (cancelled(spec))
            return -ECANCELED;
        struct pollfd p[2] = {{e->out, POLLIN, 0}, {e->in, POLLOUT, 0}};
        int ready = poll(p, 2, wait_ms(spec, deadline)); /* poll skips a negative fd */
        if (ready < 0 && errno != EINTR)
            return -errno;
        if (ready <= 0)
            continue; /* the deadline and the flag are checked at the top */
        if (e->in >= 0 && p[1].revents != 0)
            proc_feed(e, spec, &sent);
        if (e->out < 0 || p[0].revents == 0)
            continue;
        ssize_t n = read(e->out, chunk, sizeof(chunk));
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -errno;
        if (n > 0)
            keep(spec, res, chunk, (size_t)n);
    }
    return 0;
}

static uint64_t cpu_ms(const struct rusage *ru)
{
    return (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000u +
           (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000u;
}

/* Until the child has exited, the deadline has passed or it is time to
 * look at the cancel flag: a poll of its pidfd, or without one a
 * millisecond's sleep. */
static void wait_a_while(const struct cb_proc_spec *spec, int pidfd, uint64_t deadline)
{
    struct pollfd p = {pidfd, POLLIN, 0};
    if (pidfd < 0 || poll(&p, 1, wait_ms(spec, deadline)) < 0)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static int wait_loop(const struct cb_proc_spec *spec, pid_t pid, int pidfd, uint64_t deadline,
                     struct cb_proc_result *res)
{
    bool block = deadline == NO_DEADLINE && spec->cancel == NULL;
    struct rusage ru;
    for (;;) {
        pid_t r = wait4(pid, &res->status, block ? 0 : WNOHANG, &ru);
        if (r == pid) {
            res->cpu_ms = cpu_ms(&ru);
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        if (remaining_ms(deadline) == 0)
            return -ETIMEDOUT;
        if (cancelled(spec))
            return -ECANCELED;
        if (r == 0)
            wait_a_while(spec, pidfd, deadline);
    }
}

/* Waits for the child's exit until the deadline or the cancel flag.
 * Returns 0, -ETIMEDOUT, -ECANCELED or -errno. */
static int wait_until(const struct cb_proc_spec *spec, pid_t pid, uint64_t deadline,
                      struct cb_proc_result *res)
{
    bool block = deadline == NO_DEADLINE && spec->cancel == NULL;
    int pidfd = block ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
    int rc = wait_loop(spec, pid, pidfd, deadline, res);
    if (pidfd >= 0)
        close(pidfd);
    return rc;
}

static void kill_child(const struct cb_proc_spec *spec, pid_t pid, struct cb_proc_result *res)
{
    struct rusage ru;
    if (!spec->in_caller_group)
        kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (wait4(pid, &res->status, 0, &ru) < 0)
        if (errno != EINTR)
            return;
    res->cpu_ms = cpu_ms(&ru);
}

/* The failure the child reported before exec, if any. */
static bool reported(int fd, struct failure *f)
{
    ssize_t n;
    do
        n = read(fd, f, sizeof(*f));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*f);
}

static int outcome(const struct cb_proc_spec *spec, int rc, int report_fd, struct cb_error *err)
{
    const char *name = spec->argv[0];
    struct failure f;
    if (reported(report_fd, &f)) {
        if (f.step == STEP_EXEC)
            return cb_error_set(err, -f.err, "cannot run %s: %s", name, strerror(f.err));
        return cb_error_set(err, -f.err, "cannot run %s: %s: %s", name, step_names[f.step],
                            strerror(f.err));
    }
    if (rc == -ETIMEDOUT)
        return cb_error_set(err, rc, "%s timed out after %u ms", name, spec->timeout_ms);
    if (rc == -ECANCELED)
        return cb_error_set(err, rc, "%s was cancelled", name);
    if (rc < 0)
        return cb_error_set(err, rc, "waiting for %s: %s", name, strerror(-rc));
    return 0;
}

/* The child's ends of stdin, output and report (in[0], out[1], report[1])
 * and the parent's (in[1], out[0], report[0]); stdin is a socket so that a
 * child that stops reading costs an EPIPE and not a SIGPIPE. */
static int open_ends(const struct cb_proc_spec *spec, int in[2], int out[2], int report[2])
{
    in[0] = in[1] = out[0] = out[1] = report[0] = report[1] = -1;
    if (spec->stdin_data != NULL) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
            return -errno;
    } else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        return -errno;
    }
    if ((spec->output != NULL && pipe2(out, O_CLOEXEC) < 0) || pipe2(report, O_CLOEXEC) < 0)
        return -errno;
    return 0;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

int cb_proc_run(const struct cb_proc_spec *spec, struct cb_proc_result *res, struct cb_error *err)
{
    int fds[6];
    int *in = fds, *out = fds + 2, *report = fds + 4;
    *res = (struct cb_proc_result){0};
    int rc = open_ends(spec, in, out, report);
    if (rc < 0) {
        close_all(fds, 6);
        return cb_error_set(err, rc, "running %s: %s", spec->argv[0], strerror(-rc));
    }
    uint64_t deadline = NO_DEADLINE;
    if (spec->timeout_ms != 0)
        deadline = cb_now_mono_ns() + (uint64_t)spec->timeout_ms * 1000000u;
    pid_t pid = -1;
    int spawn_errno = 0;
    bool by_spawn = spawnable(spec);
    if (by_spawn) {
        spawn_errno = spawn(spec, in[0], out[1], &pid);
    } else if ((pid = fork()) == 0) {
        child(spec, in[0], out[1], report[1]);
    } else if (pid < 0) {
        spawn_errno = errno;
    }
    close_all((int[]){in[0], out[1], report[1]}, 3);
    struct ends e = {in[1], out[0], report[0]};
    if (spawn_errno != 0 && by_spawn) {
        rc = cb_error_set(err, -spawn_errno, "cannot run %s: %s", spec->argv[0],
                          strerror(spawn_errno));
    } else if (spawn_errno != 0) {
        rc = cb_error_set(err, -spawn_errno, "fork: %s", strerror(spawn_errno));
    } else {
        if (!spec->in_caller_group)
            setpgid(pid, pid); /* also in the child: whichever runs first */
        rc = proc_pump(&e, spec, deadline, res);
        close_stdin(&e);
        if (rc == 0)
            rc = wait_until(spec, pid, deadline, res);
        if (rc < 0)
            kill_child(spec, pid, res);
        rc = outcome(spec, rc, e.report, err);
    }
    close_stdin(&e);
    close_all((int[]){e.out, e.report}, 2);
    return rc;
}
