/* The process side of containers: the monitor zygote and the monitors.
 *
 * The zygote (`clawbox __container-monitor`, exec'd once by the first
 * launch, in its own session, with an empty environment) forks a monitor
 * per container on request and reaps them. It holds nothing of the server
 * but its socket. A monitor outlives the server and the zygote: nothing
 * ties its life to theirs.
 *
 * A monitor, as a child subreaper, runs `create --pid-file` with the
 * container's stdout and stderr on a pipe (create hands its stdio to the
 * container; whatever create itself prints before failing is in the pipe
 * too, and is its error message), opens a pidfd of the container's init
 * (reparented to the monitor when create exits), runs `start`, and
 * reports over the status pipe. Then it copies the pipe into output.log up
 * to the cap, counting the rest, until init has exited (waitid on the
 * pidfd: the real status) and the pipe is drained; reads the OOM count
 * from the memory cgroup; writes exit.json atomically; closes the status
 * pipe, so the server sees the end without waiting for the runtime's
 * delete; runs `delete --force`; and exits. Nothing sleeps or polls on a timer: one poll(2) on
 * the pipe and the pidfd. */
#include "containers/runtime.h"
#include "containers/runtime_internal.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/proc.h"
#include "core/util.h"
#include "egress/netns.h"
#include "sandbox/worker/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* waitid()'s idtype for a pidfd: P_PIDFD, an enumerator of glibc's idtype_t
 * (not a macro) since 2.36 and unknown before. */
#define PIDFD_IDTYPE 3

/* After init's exit every writer in its pid namespace is gone; this only
 * bounds a pipe held by something outside it. */
#define MONITOR_DRAIN_MS 2000
#define OUTPUT_CHUNK     65536

struct job {
    struct cb_ct_runtime rt;
    const char *id, *bundle, *dir, *cgroup;
    const char *netns; /* "" = the runtime makes or joins the container's own */
    uint64_t log_cap;
    int status_fd;
};

/* The output pipe and where it goes. */
struct output {
    int pipe; /* read end, non-blocking; -1 at end of stream */
    int log;
    uint64_t cap, kept, dropped;
};

/* ---- the monitor ---- */

/* The job from a LAUNCH frame: CB__CT_F_COUNT NUL-terminated fields. */
static int parse_job(const struct cb_buf *b, int status_fd, struct job *j)
{
    const char *f[CB__CT_F_COUNT], *p = b->data, *end = b->data + b->len;
    for (int i = 0; i < CB__CT_F_COUNT; i++) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        if (nul == NULL)
            return -EPROTO;
        f[i] = p;
        p = nul + 1;
    }
    *j = (struct job){.id = f[CB__CT_F_ID],
                      .bundle = f[CB__CT_F_BUNDLE],
                      .dir = f[CB__CT_F_DIR],
                      .cgroup = f[CB__CT_F_CGROUP],
                      .netns = f[CB__CT_F_NETNS],
                      .status_fd = status_fd};
    const char *cap = f[CB__CT_F_LOG_CAP];
    struct cb_ct_runtime *rt = &j->rt;
    if (p != end ||
        snprintf(rt->name, sizeof(rt->name), "%s", f[CB__CT_F_NAME]) >= (int)sizeof(rt->name) ||
        snprintf(rt->path, sizeof(rt->path), "%s", f[CB__CT_F_PATH]) >= (int)sizeof(rt->path) ||
        snprintf(rt->root, sizeof(rt->root), "%s", f[CB__CT_F_ROOT]) >= (int)sizeof(rt->root) ||
        cb_parse_u64(cap, strlen(cap), &j->log_cap) < 0 || strstr(j->cgroup, "..") != NULL)
        return -EPROTO;
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
    int r = j->netns[0] != '\0' ? cb_egress_netns_join(j->netns, err) : 0;
    if (r == 0)
        r = create(j, pipe_r, pipe_w, err);
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

/* A success keeps the pipe open until the exit is recorded. */
static void report_job(const struct job *j, int r, pid_t pid, const struct cb_error *err)
{
    char msg[CB__CT_STATUS_MAX];
    int n = r >= 0 ? snprintf(msg, sizeof(msg), "ok %d\n", (int)pid)
                   : snprintf(msg, sizeof(msg), "error %d %s", -r, err->msg);
    cb_write_all(j->status_fd, msg, n < (int)sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    if (r < 0)
        close(j->status_fd);
}

/* One read of the pipe: kept up to the cap, the rest counted. A log that
 * cannot be written drops, too: the container is never held up. */
static void take_output(struct output *o)
{
    static char chunk[OUTPUT_CHUNK];
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
            take_output(o);
        if (p[1].revents == 0)
            continue;
        int w;
        while ((w = waitid(PIDFD_IDTYPE, pidfd, si, WEXITED)) < 0 && errno == EINTR)
            ;
        if (w < 0)
            return -errno;
        running = false;
        drain_end = cb_now_mono_ns() + MONITOR_DRAIN_MS * 1000000ull;
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
    /* Not fsynced: an exit record has no use after a host crash (the
     * container is gone with the host). */
    return cb_write_replace(path, text, strlen(text), err);
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
    report_job(j, pidfd, pid, &err);
    if (pidfd < 0) {
        cb_ct_runtime_delete(&j->rt, j->id, NULL);
        return 1;
    }
    siginfo_t si = {0};
    bool waited = wait_exit(o, pidfd, &si) == 0;
    int r = write_exit(j, &si, waited, o, &err);
    close(j->status_fd);
    cb_ct_runtime_delete(&j->rt, j->id, NULL);
    return r < 0 || !waited;
}

/* The monitor for one job, in a child of the zygote. Returns its exit
 * code. */
static int monitor_run(const struct job *j)
{
    /* init is create's grandchild: only a subreaper gets its status. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    _cleanup_free_ char *log_path = cb_xasprintf("%s/output.log", j->dir);
    struct output o = {.cap = j->log_cap};
    int p[2] = {-1, -1};
    o.log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (o.log < 0 || pipe2(p, O_CLOEXEC) < 0) {
        struct cb_error err;
        report_job(j,
                   cb_error_set(&err, -errno, "monitor: %s: %s", o.log < 0 ? log_path : "pipe",
                                strerror(errno)),
                   0, &err);
        return 1;
    }
    o.pipe = p[0];
    fcntl(o.pipe, F_SETFL, O_NONBLOCK);
    int rc = supervise(j, &o, p[1]);
    close(o.log);
    return rc;
}

/* ---- the zygote ---- */

static _Noreturn void monitor_child(int sock, int sfd, const struct cb_buf *req, int status_fd)
{
    sigset_t none;
    sigemptyset(&none);
    close(sock);
    close(sfd);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct job j;
    _exit(parse_job(req, status_fd, &j) < 0 ? 2 : monitor_run(&j));
}

/* The answer to a LAUNCH: the pid and a pidfd, taken before the zygote
 * can reap the child, so it names this process and no other. */
static void answer_spawn(int sock, pid_t pid, int err)
{
    struct cb__ct_launched a = {err, pid};
    int pidfd = pid > 0 ? pidfd_open(pid, 0) : -1;
    if (pid > 0 && pidfd < 0) {
        a.err = -errno;
        kill(pid, SIGKILL);
    }
    cb__ipc_send(sock, CB__CT_FRAME_LAUNCHED, &a, sizeof(a), pidfd);
    if (pidfd >= 0)
        close(pidfd);
}

/* Forks a monitor per LAUNCH frame until the server closes the socket;
 * reaps the monitors as they end (SIGCHLD through a signalfd). */
static int zygote_main(int sock)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    struct cb_buf req;
    cb_buf_init(&req, CB__CT_LAUNCH_MAX);
    for (;;) {
        struct pollfd p[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        struct signalfd_siginfo si;
        while (sfd >= 0 && read(sfd, &si, sizeof(si)) > 0)
            ;
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (p[0].revents == 0)
            continue;
        uint32_t type;
        int fd;
        if (cb__ipc_recv(sock, &type, &req, &fd) < 0)
            break; /* the server has gone */
        if (type != CB__CT_FRAME_LAUNCH || fd < 0) {
            answer_spawn(sock, 0, -EPROTO);
        } else {
            pid_t pid = fork();
            if (pid == 0)
                monitor_child(sock, sfd, &req, fd);
            answer_spawn(sock, pid, pid < 0 ? -errno : 0);
        }
        if (fd >= 0)
            close(fd);
    }
    cb_buf_free(&req);
    return 0;
}

int cb_ct_monitor_main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1 || fcntl(CB__CT_ZYGOTE_FD, F_GETFD) < 0)
        return 2;
    close_range(CB__CT_ZYGOTE_FD + 1, ~0u, 0);
    ignore_signals();
    return zygote_main(CB__CT_ZYGOTE_FD);
}
