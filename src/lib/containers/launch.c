/* The server's side of the monitors: the zygote (started by the first
 * launch, restarted when it has died) and exit.json.
 *
 * Exec'ing clawbox costs more than the runtime's whole lifecycle on a
 * busy machine (it loads some forty shared libraries), so a monitor is a
 * fork of the zygote instead: a launch sends the job and the status
 * pipe's write end, gets the monitor's pid and pidfd back, and reads the
 * monitor's report from the pipe. */
#include "containers/runtime.h"
#include "containers/runtime_internal.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/util.h"
#include "sandbox/worker/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The wait for the report: create and start, each under its deadline. */
#define LAUNCH_MS     (2 * CB__CT_STEP_MS + 5000)
#define EXIT_JSON_MAX 4096

/* One zygote per process; launches from several threads take turns. */
static struct {
    pthread_mutex_t lock;
    pid_t pid;
    int sock;
} zygote = {PTHREAD_MUTEX_INITIALIZER, -1, -1};

static int zygote_start(const char *exe, struct cb_error *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return cb_error_set(err, -errno, "socketpair: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    char *argv[] = {"clawbox", "__container-monitor", NULL};
    char *envp[] = {CB__CT_PATH_ENV, NULL};
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_adddup2(&fa, sv[1], CB__CT_ZYGOTE_FD);
    posix_spawnattr_init(&at);
    /* Its own session: a terminal's ^C or hang-up for the server's group
     * reaches neither it nor the monitors it forks. */
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    int r = posix_spawn(&zygote.pid, exe, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    if (r != 0) {
        close(sv[0]);
        return cb_error_set(err, -r, "starting the container monitor %s: %s", exe, strerror(r));
    }
    zygote.sock = sv[0];
    return 0;
}

static void zygote_stop(void)
{
    close(zygote.sock); /* it exits at the end of its stream */
    while (waitpid(zygote.pid, NULL, 0) < 0 && errno == EINTR)
        ;
    zygote.sock = -1;
    zygote.pid = -1;
}

/* Has the zygote fork a monitor for req. A zygote found dead (the send
 * fails) is replaced once; one that dies after taking the request is not
 * asked again, as it may have forked the monitor already. */
static int zygote_launch(const char *exe, const struct cb_buf *req, int status_fd,
                         struct cb__ct_launched *a, int *pidfd, struct cb_error *err)
{
    struct cb_buf reply;
    uint32_t type = 0;
    int r = 0;
    cb_buf_init(&reply, sizeof(*a));
    pthread_mutex_lock(&zygote.lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (zygote.sock < 0 && (r = zygote_start(exe, err)) < 0)
            break;
        r = cb__ipc_send(zygote.sock, CB__CT_FRAME_LAUNCH, req->data, req->len, status_fd);
        bool sent = r == 0;
        if (sent)
            r = cb__ipc_recv(zygote.sock, &type, &reply, pidfd);
        if (r == 0)
            break;
        zygote_stop();
        cb_error_set(err, r, "the container monitor zygote: %s", strerror(-r));
        if (sent)
            break;
    }
    pthread_mutex_unlock(&zygote.lock);
    if (r == 0 && (type != CB__CT_FRAME_LAUNCHED || reply.len != sizeof(*a) || *pidfd < 0)) {
        struct cb__ct_launched bad = {-EPROTO, 0};
        memcpy(&bad, reply.data, reply.len == sizeof(bad) ? sizeof(bad) : 0);
        r = cb_error_set(err, bad.err < 0 ? bad.err : -EPROTO, "forking a monitor: %s",
                         strerror(bad.err < 0 ? -bad.err : EPROTO));
    } else if (r == 0) {
        memcpy(a, reply.data, sizeof(*a));
    }
    cb_buf_free(&reply);
    return r;
}

/* The job as NUL-terminated fields, in CB__CT_F_* order. */
static void job_fields(const struct cb_ct_runtime *rt, const struct cb_ct_launch *l,
                       struct cb_buf *b)
{
    char cap[24];
    snprintf(cap, sizeof(cap), "%" PRIu64, l->log_cap);
    const char *f[CB__CT_F_COUNT] = {[CB__CT_F_NAME] = rt->name,
                                     [CB__CT_F_PATH] = rt->path,
                                     [CB__CT_F_ROOT] = rt->root,
                                     [CB__CT_F_ID] = l->id,
                                     [CB__CT_F_BUNDLE] = l->bundle,
                                     [CB__CT_F_DIR] = l->dir,
                                     [CB__CT_F_CGROUP] = l->cgroup_path,
                                     [CB__CT_F_LOG_CAP] = cap,
                                     [CB__CT_F_NETNS] = l->netns_path ? l->netns_path : ""};
    for (int i = 0; i < CB__CT_F_COUNT; i++)
        cb_buf_append(b, f[i], strlen(f[i]) + 1);
}

/* Reads the monitor's report: "ok PID\n" (the pipe stays open until the
 * exit is recorded) or an error up to the end of the stream. */
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
        if (n == 0 || len == cap - 1 ||
            (len > 3 && memcmp(buf, "ok ", 3) == 0 && buf[len - 1] == '\n'))
            break;
    }
    buf[len] = '\0';
    return 0;
}

/* "ok PID\n" or "error ERRNO MESSAGE". */
static int parse_status(const char *s, pid_t *pid, struct cb_error *err)
{
    uint64_t v;
    if (strncmp(s, "ok ", 3) == 0 && cb_parse_u64(s + 3, strcspn(s + 3, "\n"), &v) == 0 && v > 0 &&
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

int cb_ct_launch(const struct cb_ct_runtime *rt, const struct cb_ct_launch *l,
                 struct cb_ct_started *out, struct cb_error *err)
{
    char status[CB__CT_STATUS_MAX];
    int st[2], pidfd = -1;
    struct cb_buf req;
    struct cb__ct_launched a;
    *out = (struct cb_ct_started){
        .monitor_pid = -1, .monitor_pidfd = -1, .exit_fd = -1, .init_pid = -1};
    if (pipe2(st, O_CLOEXEC) < 0)
        return cb_error_set(err, -errno, "launching %s: pipe: %s", l->id, strerror(errno));
    cb_buf_init(&req, CB__CT_LAUNCH_MAX);
    job_fields(rt, l, &req);
    int r = zygote_launch(l->monitor_exe, &req, st[1], &a, &pidfd, err);
    cb_buf_free(&req);
    close(st[1]);
    if (r == 0 && l->meanwhile != NULL)
        l->meanwhile(l->ud);
    if (r == 0 && (r = read_status(st[0], status, sizeof(status))) < 0)
        cb_error_set(err, r, "reading the monitor's report: %s", strerror(-r));
    if (r == -ETIMEDOUT) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        cb_ct_runtime_delete(rt, l->id, NULL);
    }
    if (r == 0)
        r = parse_status(status, &out->init_pid, err);
    if (r < 0) {
        close(st[0]);
        if (pidfd >= 0)
            close(pidfd);
        cb_error_prefix(err, "launching %s", l->id);
        return r;
    }
    out->monitor_pid = a.pid;
    out->monitor_pidfd = pidfd;
    out->exit_fd = st[0];
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
