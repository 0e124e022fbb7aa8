/* The container monitor: one process per container, a fresh exec of
 * clawbox (`__container-monitor`) in its own session, so it holds nothing
 * of the server but its arguments and one pipe.
 *
 * As a child subreaper it runs `create --pid-file` with the container's
 * stdout and stderr on a pipe (create hands its stdio to the container;
 * whatever create itself prints before failing is in the pipe too, and is
 * its error message), opens a pidfd of the container's init (reparented to
 * the monitor when create exits), runs `start`, and tells the launcher "ok
 * PID" or "error ERRNO MESSAGE" over the status pipe (fd 3). Then it
 * copies the pipe into output.log up to the cap, counting the rest, until
 * init has exited (waitid on the pidfd, the real status) and the pipe is
 * drained; reads the OOM count from the memory cgroup; writes exit.json
 * atomically; runs `delete --force`; and exits. Nothing sleeps or polls on
 * a timer: one poll(2) on the pipe and the pidfd. */
#include "containers/runtime.h"
#include "containers/runtime_internal.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/proc.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The monitor's arguments after the verb. */
enum { A_VERB, A_NAME, A_PATH, A_ROOT, A_ID, A_BUNDLE, A_DIR, A_CGROUP, A_CAP, A_COUNT };
#define STATUS_FD  3
#define STATUS_MAX 2048
/* The launcher's wait for "ok": create and start, each under its deadline. */
#define LAUNCH_MS (2 * CB__CT_STEP_MS + 5000)
/* After init's exit every writer in its pid namespace is gone; this only
 * bounds a pipe held by something outside it. */
#define DRAIN_MS      2000
#define CHUNK         65536
#define EXIT_JSON_MAX 4096

struct job {
    struct cb_ct_runtime rt;
    const char *id, *bundle, *dir, *cgroup;
    uint64_t log_cap;
};

/* The output pipe and where it goes. */
struct output {
    int pipe; /* read end, non-blocking; -1 at end of stream */
    int log;
    uint64_t cap, kept, dropped;
};

/* ---- the monitor ---- */

static int parse_args(int argc, char **argv, struct job *j)
{
    if (argc != A_COUNT || fcntl(STATUS_FD, F_GETFD) < 0)
        return -EINVAL;
    *j = (struct job){
        .id = argv[A_ID], .bundle = argv[A_BUNDLE], .dir = argv[A_DIR], .cgroup = argv[A_CGROUP]};
    const char *cap = argv[A_CAP];
    if (snprintf(j->rt.name, sizeof(j->rt.name), "%s", argv[A_NAME]) >= (int)sizeof(j->rt.name) ||
        snprintf(j->rt.path, sizeof(j->rt.path), "%s", argv[A_PATH]) >= (int)sizeof(j->rt.path) ||
        snprintf(j->rt.root, sizeof(j->rt.root), "%s", argv[A_ROOT]) >= (int)sizeof(j->rt.root) ||
        cb_parse_u64(cap, strlen(cap), &j->log_cap) < 0 || strstr(j->cgroup, "..") != NULL)
        return -EINVAL;
    return 0;
}

/* What create printed before it failed: the start of the pipe. */
static void create_message(const struct job *j, int pipe_r, struct cb_error *err)
{
    char out[CB__CT_MSG_MAX], msg[CB__CT_MSG_MAX];
    ssize_t n = cb_read_retry(pipe_r, out, sizeof(out));
    cb__ct_rt_message(out, n > 0 ? (size_t)n : 0, msg, sizeof(msg));
    cb_error_set(err, -EIO, "%s create: %s", j->rt.name,
                 msg[0] != '\0' ? msg : "failed without a message");
}

/* `create`, its stdio (inherited by the container) on the pipe. */
static int create(const struct job *j, int pipe_r, int pipe_w, struct cb_error *err)
{
    _cleanup_free_ char *pid_file = cb_xasprintf("%s/init.pid", j->dir);
    char *argv[] = {(char *)j->rt.path, "--root",     (char *)j->rt.root, "create",      "--bundle",
                    (char *)j->bundle,  "--pid-file", pid_file,           (char *)j->id, NULL};
    char *env[] = {CB__CT_PATH_ENV, NULL};
    struct cb_proc_spec spec = {
        .argv = argv, .env = env, .env_clear = true, .timeout_ms = CB__CT_STEP_MS};
    struct cb_proc_result res;
    if (dup2(pipe_w, 1) < 0 || dup2(pipe_w, 2) < 0)
        return cb_error_set(err, -errno, "redirecting create: %s", strerror(errno));
    int r = cb_proc_run(&spec, &res, err);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
    if (r < 0 || (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0))
        return r;
    create_message(j, pipe_r, err);
    return -EIO;
}

/* A pidfd of the container's init, from the pid file. */
static int open_init(const struct job *j, pid_t *pid, struct cb_error *err)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/init.pid", j->dir);
    struct cb_file f;
    uint64_t v = 0;
    int r = cb_file_load(&f, AT_FDCWD, path, 32, CB_FILE_NOFOLLOW, err);
    if (r == 0 &&
        (cb_parse_u64(f.buf.data, strcspn(f.buf.data, "\n"), &v) < 0 || v == 0 || v > INT32_MAX))
        r = cb_error_set(err, -EIO, "%s: not a pid", path);
    cb_file_close(&f);
    int fd = r == 0 ? pidfd_open((pid_t)v, 0) : -1;
    if (r == 0 && fd < 0)
        r = cb_error_set(err, -errno, "pidfd_open(%" PRIu64 "): %s", v, strerror(errno));
    *pid = (pid_t)v;
    return r < 0 ? r : fd;
}

/* create, the init's pidfd, start. Returns the pidfd or a negative code. */
static int start_container(const struct job *j, int pipe_r, int pipe_w, pid_t *pid,
                           struct cb_error *err)
{
    int r = create(j, pipe_r, pipe_w, err);
    int pidfd = r == 0 ? open_init(j, pid, err) : r;
    if (pidfd < 0)
        return pidfd;
    r = cb__ct_rt_run(&j->rt, (const char *const[]){"start", j->id}, 2, NULL, err);
    if (r < 0) {
        close(pidfd);
        return r;
    }
    return pidfd;
}

static void report(int r, pid_t pid, const struct cb_error *err)
{
    char msg[STATUS_MAX];
    int n = r >= 0 ? snprintf(msg, sizeof(msg), "ok %d", (int)pid)
                   : snprintf(msg, sizeof(msg), "error %d %s", -r, err->msg);
    cb_write_all(STATUS_FD, msg, n < (int)sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    close(STATUS_FD);
}

/* One read of the pipe: kept up to the cap, the rest counted. A log that
 * cannot be written drops, too: the container is never held up. */
static void take(struct output *o)
{
    static char chunk[CHUNK];
    ssize_t n = cb_read_retry(o->pipe, chunk, sizeof(chunk));
    if (n == -EAGAIN)
        return;
    if (n <= 0) {
        close(o->pipe);
        o->pipe = -1;
        return;
    }
    uint64_t room = o->kept < o->cap ? o->cap - o->kept : 0;
    size_t keep = (uint64_t)n < room ? (size_t)n : (size_t)room;
    if (keep > 0 && cb_write_all(o->log, chunk, keep) < 0)
        keep = 0;
    o->kept += keep;
    o->dropped += (uint64_t)n - keep;
}

/* Copies output until init has exited and the pipe is drained; si gets
 * init's exit. */
static int wait_exit(struct output *o, int pidfd, siginfo_t *si)
{
    bool running = true;
    uint64_t drain_end = 0;
    while (running || o->pipe >= 0) {
        int ms = -1;
        if (!running) {
            uint64_t now = cb_now_mono_ns();
            if (now >= drain_end)
                break;
            ms = (int)((drain_end - now) / 1000000u) + 1;
        }
        struct pollfd p[2] = {{o->pipe, POLLIN, 0}, {running ? pidfd : -1, POLLIN, 0}};
        if (poll(p, 2, ms) < 0 && errno != EINTR)
            return -errno;
        if (p[0].revents != 0)
            take(o);
        if (p[1].revents == 0)
            continue;
        int w;
        while ((w = waitid(P_PIDFD, pidfd, si, WEXITED)) < 0 && errno == EINTR)
            ;
        if (w < 0)
            return -errno;
        running = false;
        drain_end = cb_now_mono_ns() + DRAIN_MS * 1000000ull;
    }
    return 0;
}

/* The memory cgroup's OOM kill count, v1 then v2; false when neither
 * can be read. */
static bool oom_killed(const char *cgroup)
{
    static const char *const where[][2] = {{"/sys/fs/cgroup/memory", "memory.oom_control"},
                                           {"/sys/fs/cgroup", "memory.events"}};
    for (size_t i = 0; i < CB_ARRAY_LEN(where); i++) {
        _cleanup_free_ char *path = cb_xasprintf("%s%s/%s", where[i][0], cgroup, where[i][1]);
        struct cb_file f;
        uint64_t n = 0;
        if (cb_file_load(&f, AT_FDCWD, path, 4096, 0, NULL) == 0) {
            const char *s = f.buf.data;
            const char *line = strncmp(s, "oom_kill ", 9) == 0 ? s : strstr(s, "\noom_kill ");
            if (line != NULL) {
                line += line == s ? 9 : 10;
                cb_parse_u64(line, strcspn(line, "\n"), &n);
            }
            cb_file_close(&f);
            return n > 0;
        }
        cb_file_close(&f);
    }
    return false;
}

static int write_exit(const struct job *j, const siginfo_t *si, bool waited, const struct output *o,
                      struct cb_error *err)
{
    int sig = waited && si->si_code != CLD_EXITED ? si->si_status : 0;
    int code = !waited ? -1 : sig != 0 ? 128 + sig : si->si_status;
    json_t *v =
        json_pack("{s:i, s:i, s:b, s:I, s:I, s:I}", "exit_code", code, "signal", sig, "oom_killed",
                  oom_killed(j->cgroup), "output_bytes", (json_int_t)o->kept, "dropped_bytes",
                  (json_int_t)o->dropped, "finished_ms", (json_int_t)cb_now_wall_ms());
    _cleanup_free_ char *text = json_dumps(v, JSON_COMPACT);
    _cleanup_free_ char *path = cb_xasprintf("%s/exit.json", j->dir);
    json_decref(v);
    return cb_write_atomic(path, text, strlen(text), err);
}

static void ignore_signals(void)
{
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, NULL);
    sigaction(SIGHUP, &ign, NULL);
    sigaction(SIGINT, &ign, NULL);
}

/* Runs the container to its end once the output pipe and log are open. */
static int supervise(const struct job *j, struct output *o, int pipe_w)
{
    struct cb_error err = {0};
    pid_t pid = 0;
    int pidfd = start_container(j, o->pipe, pipe_w, &pid, &err);
    close(pipe_w);
    report(pidfd, pid, &err);
    if (pidfd < 0) {
        cb_ct_runtime_delete(&j->rt, j->id, NULL);
        return 1;
    }
    siginfo_t si = {0};
    bool waited = wait_exit(o, pidfd, &si) == 0;
    int r = write_exit(j, &si, waited, o, &err);
    cb_ct_runtime_delete(&j->rt, j->id, NULL);
    return r < 0 || !waited;
}

int cb_ct_monitor_main(int argc, char **argv)
{
    struct job j;
    if (parse_args(argc, argv, &j) < 0)
        return 2;
    close_range(STATUS_FD + 1, ~0u, 0);
    ignore_signals();
    /* init is create's grandchild: only a subreaper gets its status. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    _cleanup_free_ char *log_path = cb_xasprintf("%s/output.log", j.dir);
    struct output o = {.cap = j.log_cap};
    int p[2] = {-1, -1};
    o.log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (o.log < 0 || pipe2(p, O_CLOEXEC) < 0) {
        struct cb_error err;
        report(cb_error_set(&err, -errno, "monitor: %s: %s", o.log < 0 ? log_path : "pipe",
                            strerror(errno)),
               0, &err);
        return 1;
    }
    o.pipe = p[0];
    fcntl(o.pipe, F_SETFL, O_NONBLOCK);
    int rc = supervise(&j, &o, p[1]);
    close(o.log);
    return rc;
}

/* ---- the launcher ---- */

static int spawn_monitor(const char *exe, char **argv, int status_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    char *envp[] = {CB__CT_PATH_ENV, NULL};
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_adddup2(&fa, status_fd, STATUS_FD);
    posix_spawnattr_init(&at);
    /* Its own session: a terminal's ^C or hang-up for the server's group
     * does not reach it. */
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    int r = posix_spawn(pid, exe, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return -r;
}

/* Reads the monitor's report until it closes the pipe. */
static int read_status(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    uint64_t end = cb_now_mono_ns() + LAUNCH_MS * 1000000ull;
    for (;;) {
        uint64_t now = cb_now_mono_ns();
        if (now >= end)
            return -ETIMEDOUT;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) < 0 && errno != EINTR)
            return -errno;
        if (p.revents == 0)
            continue;
        ssize_t n = cb_read_retry(fd, buf + len, cap - 1 - len);
        if (n < 0)
            return (int)n;
        len += (size_t)n;
        if (n == 0 || len == cap - 1)
            break;
    }
    buf[len] = '\0';
    return 0;
}

/* "ok PID" or "error ERRNO MESSAGE". */
static int parse_status(const char *s, pid_t *pid, struct cb_error *err)
{
    uint64_t v;
    if (strncmp(s, "ok ", 3) == 0 && cb_parse_u64(s + 3, strlen(s + 3), &v) == 0 && v > 0 &&
        v <= INT32_MAX) {
        *pid = (pid_t)v;
        return 0;
    }
    size_t digits = strncmp(s, "error ", 6) == 0 ? strspn(s + 6, "0123456789") : 0;
    if (digits == 0 || cb_parse_u64(s + 6, digits, &v) < 0 || v == 0 || v > 4095)
        return cb_error_set(err, -EIO, "the container monitor ended without a report");
    const char *msg = s + 6 + digits;
    return cb_error_set(err, -(int)v, "%s", *msg == ' ' ? msg + 1 : msg);
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int cb_ct_launch(const struct cb_ct_runtime *rt, const struct cb_ct_launch *l,
                 struct cb_ct_started *out, struct cb_error *err)
{
    char cap[24], status[STATUS_MAX];
    int st[2];
    snprintf(cap, sizeof(cap), "%" PRIu64, l->log_cap);
    char *argv[] = {"clawbox",
                    "__container-monitor",
                    (char *)rt->name,
                    (char *)rt->path,
                    (char *)rt->root,
                    (char *)l->id,
                    (char *)l->bundle,
                    (char *)l->dir,
                    (char *)l->cgroup_path,
                    cap,
                    NULL};
    *out = (struct cb_ct_started){.monitor_pid = -1, .monitor_pidfd = -1, .init_pid = -1};
    if (pipe2(st, O_CLOEXEC) < 0)
        return cb_error_set(err, -errno, "launching %s: pipe: %s", l->id, strerror(errno));
    pid_t pid;
    int r = spawn_monitor(l->monitor_exe, argv, st[1], &pid);
    close(st[1]);
    if (r < 0) {
        close(st[0]);
        return cb_error_set(err, r, "launching %s: starting the monitor %s: %s", l->id,
                            l->monitor_exe, strerror(-r));
    }
    int pidfd = pidfd_open(pid, 0);
    r = pidfd < 0 ? cb_error_set(err, -errno, "pidfd_open: %s", strerror(errno))
                  : read_status(st[0], status, sizeof(status));
    close(st[0]);
    if (r == -ETIMEDOUT) {
        kill(pid, SIGKILL);
        cb_ct_runtime_delete(rt, l->id, NULL);
    }
    if (r == 0)
        r = parse_status(status, &out->init_pid, err);
    else if (pidfd >= 0)
        cb_error_set(err, r, "reading the monitor's report: %s", strerror(-r));
    if (r < 0) {
        reap(pid);
        if (pidfd >= 0)
            close(pidfd);
        cb_error_prefix(err, "launching %s", l->id);
        return r;
    }
    out->monitor_pid = pid;
    out->monitor_pidfd = pidfd;
    return 0;
}

int cb_ct_exit_read(const char *dir, struct cb_ct_exit *out, struct cb_error *err)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/exit.json", dir);
    struct cb_file f;
    int r = cb_file_load(&f, AT_FDCWD, path, EXIT_JSON_MAX, CB_FILE_NOFOLLOW, err);
    json_t *v = r == 0 ? json_loadb(f.buf.data, f.buf.len, 0, NULL) : NULL;
    cb_file_close(&f);
    if (r < 0)
        return r;
    json_int_t out_b, drop_b, fin;
    int oom;
    *out = (struct cb_ct_exit){0};
    if (json_unpack(v, "{s:i, s:i, s:b, s:I, s:I, s:I}", "exit_code", &out->exit_code, "signal",
                    &out->signal, "oom_killed", &oom, "output_bytes", &out_b, "dropped_bytes",
                    &drop_b, "finished_ms", &fin) < 0 ||
        out_b < 0 || drop_b < 0 || fin < 0)
        r = cb_error_set(err, -EIO, "%s: not an exit record", path);
    json_decref(v);
    if (r < 0)
        return r;
    out->oom_killed = oom != 0;
    out->output_bytes = (uint64_t)out_b;
    out->dropped_bytes = (uint64_t)drop_b;
    out->finished_ms = (uint64_t)fin;
    return 0;
}
