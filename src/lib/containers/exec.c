/* POST /containers/{id}/exec: a process run inside a running container
 * by the runtime's own exec (`RUNTIME exec --process P.json ID`), with the
 * process spec of the container's bundle (its user, capabilities, rlimits,
 * no_new_privileges and environment) and the request's command, cwd and
 * env on top; the runtime puts it into the container's namespaces, cgroup
 * and seccomp filter.
 *
 * Ending it: crun makes the exec'd process lead a session of its own and
 * runc leaves it in the runtime's, which clawbox starts as a new session;
 * so every process the exec started shares one session that holds nothing
 * else. At the exec's end, its timeout or its failure, every process of
 * that session is killed (found through /proc, as the host sees them): a
 * background `sleep &` dies with the exec. Under crun, an exec'd process
 * that ended before its session was read leaves the session's leader
 * unknown: its processes are then those whose session leader's pid lies
 * just below the exec'd process's, started after the runtime (see
 * kill_exec). A process that made a session
 * of its own escapes; the container's pids limit bounds it, and it dies
 * with the container. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit.h"
#include "containers/bundle.h"
#include "containers/internal.h"
#include "containers/request.h"
#include "containers/runtime_internal.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "egress/netns.h"

/* After the runtime ended (and the session was killed), how long the
 * output may take to reach its end of file. */
#define DRAIN_MS 2000
#define SPEC_MAX (1024 * 1024)

/* ---- the runtime's exec, and its output ---- */

struct stream {
    int fd;
    size_t total; /* bytes handed to the sink, at most run.cap */
};

struct run {
    pid_t rt;           /* the runtime's exec process, leading a session of its own */
    int rt_fd, proc_fd; /* pidfds of the runtime and of the exec'd process */
    int in;             /* -1 once all is sent */
    int log_fd;         /* detached: the container's output pipe, else -1 */
    struct stream out, err;
    const struct cb__ct_exec_sink *sink;
    size_t cap; /* [containers] max_exec_output_bytes, per stream */
    const char *stdin_data;
    size_t stdin_len, sent;
    bool truncated, timed_out, cancelled, rt_done, proc_done;
    int status;
    const char *pid_file; /* where the runtime writes the exec'd process's pid */
    pid_t proc;           /* the exec'd process, once known */
    pid_t sid;            /* its session, read as soon as it is known */
    bool sid_read;        /* ... while it lived */
    long long rt_start;   /* when the runtime started (clock ticks after boot) */
    ino_t ns;             /* the container's PID namespace */
};

/* The exec'd process, from the runtime's pid file, once it is there. */
static void learn_proc(struct run *r)
{
    if (r->proc > 0)
        return;
    char buf[32];
    int fd = open(r->pid_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    if (fd >= 0)
        close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
        n--;
    uint64_t pid;
    if (n <= 0 || cb_parse_u64(buf, (size_t)n, &pid) < 0 || pid <= 1 || pid > INT32_MAX)
        return;
    r->proc = (pid_t)pid;
    r->proc_fd = (int)syscall(SYS_pidfd_open, r->proc, 0);
    long long sid = cb__ct_stat_field(r->proc, 3, NULL);
    r->sid = sid > 1 ? (pid_t)sid : r->proc;
    r->sid_read = sid > 1 && r->proc_fd >= 0;
    if (r->proc_fd < 0 || sid < 0) /* it has ended already */
        r->proc_done = true;
}

/* How far below the exec'd process the crun process that leads its
 * session may be: it forks the exec'd process right after its setsid,
 * so only what other processes of the host forked meanwhile lies
 * between. */
#define SESSION_LEADER_SPAN 16

/* crun puts the exec'd process into a session of its own (led by a crun
 * process that is gone by then); runc leaves it in the runtime's, which
 * clawbox made a new one. When the exec'd process ended before its
 * session was read, what it left behind is recognised by its session's
 * leader, a pid between the runtime's and the exec'd process's (crun's
 * process that forked it), and by having started after the runtime. */
static void kill_exec(struct run *r)
{
    learn_proc(r);
    pid_t sids[] = {r->sid, r->rt};
    struct cb__ct_sessions s = {sids, CB_ARRAY_LEN(sids), 0, 0, 0};
    if (!r->sid_read && r->proc > r->rt && r->rt_start > 0) {
        s.lo = r->proc - r->rt > SESSION_LEADER_SPAN ? r->proc - SESSION_LEADER_SPAN : r->rt;
        s.hi = r->proc;
        s.since = r->rt_start;
    }
    cb__ct_kill_sessions(r->ns, &s);
}

static int spawn_runtime(struct run *r, char *const *argv, struct cb_error *err)
{
    static char *const env[] = {CB__CT_PATH_ENV, NULL};
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
    int rc = 0;
    bool piped = r->log_fd < 0; /* else its output goes to the container's log */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
        (piped && (pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0)))
        rc = cb_error_set(err, -errno, "exec: pipes: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, piped ? out[1] : r->log_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, piped ? er[1] : r->log_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    int e = rc == 0 ? posix_spawn(&r->rt, argv[0], &fa, &at, argv, env) : 0;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc == 0 && e != 0)
        rc = cb_error_set(err, -e, "exec: cannot run %s: %s", argv[0], strerror(e));
    for (int *fd = (int[]){in[0], out[1], er[1]}, i = 0; i < 3; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    r->in = in[1];
    r->out.fd = out[0];
    r->err.fd = er[0];
    r->rt_fd = rc == 0 ? (int)syscall(SYS_pidfd_open, r->rt, 0) : -1;
    r->rt_start = rc == 0 ? cb__ct_stat_field(r->rt, 19, NULL) : -1;
    if (rc == 0 && r->rt_fd < 0) {
        rc = cb_error_set(err, -errno, "exec: pidfd_open: %s", strerror(errno));
        kill(r->rt, SIGKILL);
        waitpid(r->rt, NULL, 0);
    }
    if (r->stdin_len == 0 && r->in >= 0) {
        close(r->in);
        r->in = -1;
    }
    return rc;
}

/* Reads what s holds and hands it to the sink, up to the cap; past it
 * the output is still read (so that the process is not held up) and
 * dropped. */
static void take_stream(struct run *r, struct stream *s)
{
    char chunk[16384];
    ssize_t n = read(s->fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close(s->fd);
        s->fd = -1;
        return;
    }
    size_t keep = r->cap - s->total < (size_t)n ? r->cap - s->total : (size_t)n;
    if (keep < (size_t)n)
        r->truncated = true;
    s->total += keep;
    if (keep > 0)
        r->sink->output(r->sink->ud, s == &r->err, chunk, keep);
}

static void exec_feed(struct run *r)
{
    ssize_t n =
        send(r->in, r->stdin_data + r->sent, r->stdin_len - r->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
        r->sent += (size_t)n;
    if (r->sent == r->stdin_len || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(r->in);
        r->in = -1;
    }
}

/* The runtime ended (reaped): what is left of the exec is killed, so that
 * the output ends too. */
static void runtime_ended(struct run *r)
{
    while (waitpid(r->rt, &r->status, 0) < 0 && errno == EINTR)
        ;
    r->rt_done = true;
    kill_exec(r);
}

/* The exec'd process ended: the processes it left behind are killed (runc
 * waits for them, as their subreaper, before it ends). */
static void proc_ended(struct run *r)
{
    r->proc_done = true;
    kill_exec(r);
}

/* The deadline passed, or the reader went away: the whole exec is
 * killed. */
static void end_now(struct run *r)
{
    kill_exec(r);
    kill(r->rt, SIGKILL);
    runtime_ended(r);
}

static void timed_out(struct run *r)
{
    r->timed_out = true;
    end_now(r);
}

static void exec_cancelled(struct run *r)
{
    r->cancelled = true;
    end_now(r);
}

/* Until the runtime ended and the output reached its end (or DRAIN_MS
 * after the runtime ended), feeding stdin; the deadline kills the exec.
 * The pid file is looked at every millisecond until the exec'd process is
 * known, so that its session is read while it lives. While the sink is
 * full the output is not read (the process then waits on its pipe) and
 * the drain waits for the sink up to the deadline. */
static void exec_pump(struct run *r, uint64_t deadline)
{
    const struct cb__ct_exec_sink *k = r->sink;
    uint64_t drain_until = UINT64_MAX;
    while (r->out.fd >= 0 || r->err.fd >= 0 || !r->rt_done) {
        bool full = k->full != NULL && k->full(k->ud);
        uint64_t now = cb_now_mono_ns();
        if (!r->rt_done && now >= deadline)
            timed_out(r);
        if (!r->rt_done && k->cancelled != NULL && k->cancelled(k->ud))
            exec_cancelled(r);
        if (r->rt_done && drain_until == UINT64_MAX)
            drain_until = now + (uint64_t)DRAIN_MS * 1000000u;
        if (r->rt_done && now >= drain_until && (!full || now >= deadline))
            break;
        if (!r->rt_done && r->proc <= 0) {
            learn_proc(r);
            /* It ended before its pid file was read: what it left behind
             * goes now (runc would wait for it, as its subreaper). */
            if (r->proc_done)
                kill_exec(r);
        }
        uint64_t until = r->rt_done ? drain_until : deadline;
        if (r->rt_done && full && deadline > until)
            until = deadline;
        /* At most a minute per wait: a far deadline never overflows. */
        uint64_t wait_ms = until > now ? (until - now + 999999) / 1000000 : 0;
        int ms = wait_ms > 60000 ? 60000 : (int)wait_ms;
        if (r->proc <= 0 && !r->rt_done && ms > 1)
            ms = 1;
        int due = k->due != NULL ? k->due(k->ud) : -1;
        if (due >= 0 && due < ms)
            ms = due;
        struct pollfd p[6] = {{full ? -1 : r->out.fd, POLLIN, 0},
                              {full ? -1 : r->err.fd, POLLIN, 0},
                              {r->in, POLLOUT, 0},
                              {r->rt_done ? -1 : r->rt_fd, POLLIN, 0},
                              {r->proc_done ? -1 : r->proc_fd, POLLIN, 0},
                              {k->wake_fd, POLLIN, 0}};
        if (poll(p, 6, ms) <= 0)
            continue;
        if (p[5].revents) {
            uint64_t v;
            if (read(k->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                cb_log(CB_LOG_WARN, "exec: wake: %s", strerror(errno));
        }
        if (p[0].revents)
            take_stream(r, &r->out);
        if (p[1].revents)
            take_stream(r, &r->err);
        if (p[2].revents && r->in >= 0)
            exec_feed(r);
        if (p[4].revents && !r->proc_done)
            proc_ended(r);
        if (p[3].revents && !r->rt_done)
            runtime_ended(r);
    }
}

static void run_close(struct run *r)
{
    for (int *fd = (int[]){r->in, r->out.fd, r->err.fd, r->rt_fd, r->proc_fd, r->log_fd}, i = 0;
         i < 6; i++)
        if (fd[i] >= 0)
            close(fd[i]);
}

/* The write end of the pipe the container's init writes its output to
 * (its fd 1), which its monitor copies into the container's log under
 * its cap: a detached exec's output goes there. Only a pipe is opened,
 * never a file the container may have put at its fd 1. */
static int open_log_pipe(pid_t init, int *out, struct cb_error *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/1", (int)init);
    struct stat a, b;
    int p = open(path, O_PATH | O_CLOEXEC);
    if (p < 0 || fstat(p, &a) < 0 || !S_ISFIFO(a.st_mode)) {
        if (p >= 0)
            close(p);
        return cb_error_set(err, -EIO, "exec: the container's output is not a pipe to its log");
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", p);
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    close(p);
    if (fd < 0 || fstat(fd, &b) < 0 || b.st_ino != a.st_ino || b.st_dev != a.st_dev) {
        if (fd >= 0)
            close(fd);
        return cb_error_set(err, -EIO, "exec: cannot open the container's output pipe");
    }
    fcntl(fd, F_SETFL, 0); /* its own open file: the container's stays as it is */
    *out = fd;
    return 0;
}

/* ---- the process spec ---- */

/* The bundle's process with the request's command, cwd and env. */
static int process_spec(const char *dir, const struct cb_ct_exec_request *q, char **out,
                        struct cb_error *err)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/bundle/config.json", dir);
    struct cb_file f;
    int rc = cb_file_load(&f, AT_FDCWD, path, SPEC_MAX, CB_FILE_NOFOLLOW, err);
    json_t *cfg = rc == 0 ? json_loadb(f.buf.data, f.buf.len, 0, NULL) : NULL;
    cb_file_close(&f);
    json_t *proc = cfg ? json_object_get(cfg, "process") : NULL;
    if (rc == 0 && !json_is_object(proc))
        rc = cb_error_set(err, -EIO, "exec: the container's bundle has no process");
    for (size_t i = 0; rc == 0 && i < q->n_env; i++)
        rc = cb_ct_env_check(q->env_keys[i], err);
    if (rc == 0) {
        json_t *args = json_array();
        for (size_t i = 0; i < q->n_command; i++)
            json_array_append_new(args, json_string(q->command[i]));
        json_object_set_new(proc, "args", args);
        if (q->cwd != NULL)
            json_object_set_new(proc, "cwd", json_string(q->cwd));
        json_t *env = json_object_get(proc, "env");
        if (!json_is_array(env))
            json_object_set_new(proc, "env", env = json_array());
        for (size_t i = 0; i < q->n_env; i++)
            json_array_append_new(env, json_sprintf("%s=%s", q->env_keys[i], q->env_values[i]));
        json_object_del(proc, "terminal");
        json_object_del(proc, "consoleSize");
        *out = json_dumps(proc, JSON_COMPACT);
    }
    json_decref(cfg);
    return rc;
}

/* ---- the whole exec ---- */

/* A new root-only file (no sync: it lives for the exec only). */
static int write_new(const char *path, const char *text, struct cb_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : cb_write_all(fd, text, strlen(text));
    if (fd >= 0)
        close(fd);
    return rc < 0 ? cb_error_set(err, rc, "exec: writing %s: %s", path, strerror(-rc)) : 0;
}

struct spawn_in {
    struct run *r;
    char *const *argv;
    const char *netns;
    struct cb_error *err;
    int rc;
};

static void *spawn_in_netns(void *arg)
{
    struct spawn_in *s = arg;
    s->rc = cb_egress_netns_join(s->netns, s->err);
    if (s->rc == 0)
        s->rc = spawn_runtime(s->r, s->argv, s->err);
    return NULL;
}

/* The runtime, started inside netns when there is one: from a thread of
 * its own that joins it (the server's other threads keep theirs). A
 * namespace that cannot be joined fails the exec. */
static int start_runtime(struct run *r, char *const *argv, const char *netns, struct cb_error *err)
{
    if (netns == NULL)
        return spawn_runtime(r, argv, err);
    struct spawn_in s = {.r = r, .argv = argv, .netns = netns, .err = err};
    pthread_t t;
    int e = pthread_create(&t, NULL, spawn_in_netns, &s);
    if (e != 0)
        return cb_error_set(err, -e, "exec: thread: %s", strerror(e));
    pthread_join(t, NULL);
    return s.rc;
}

struct cb__ct_exec {
    struct cb_ct_manager *m;
    char id[CB__CT_ID_MAX];
    char *request_id;
    json_t *body; /* q's strings point into it */
    struct cb_ct_exec_request q;
    struct cb__ct_exec_target t;
    bool entered; /* holds a place among the container's execs */
    char *spec_path, *pid_path;
    struct run r;
    uint64_t start, deadline;
    bool ran; /* finished, its end recorded */
};

const char *cb__ct_exec_id(const struct cb__ct_exec *x)
{
    return x->t.exec_id;
}

void cb__ct_exec_free(struct cb__ct_exec *x)
{
    if (x == NULL)
        return;
    if (x->spec_path)
        unlink(x->spec_path);
    if (x->pid_path)
        unlink(x->pid_path);
    run_close(&x->r);
    if (x->entered)
        cb__ct_exec_leave(x->m, x->id, x->t.exec_id, x->ran);
    cb__ct_exec_target_clear(&x->t);
    cb_ct_exec_request_clear(&x->q);
    json_decref(x->body);
    free(x->spec_path);
    free(x->pid_path);
    free(x->request_id);
    free(x);
}

static void audit_exec(struct cb__ct_exec *x, const struct cb__ct_exec_outcome *o)
{
    if (x->m->audit == NULL)
        return;
    struct cb_audit_record rec = {
        .kind = CB_AUDIT_CONTAINER,
        .request_id = x->request_id,
        .tool = x->id,
        .method = "exec",
        .url = x->q.command[0],
        .decision = o->cancelled   ? "cancelled"
                    : o->timed_out ? "timed_out"
                                   : "exited",
        .status = o->code >= 0 ? o->code : 0,
        .bytes = x->r.out.total + x->r.err.total,
        .duration_ms = o->duration_ms,
    };
    struct cb_error err = {0};
    if (cb_audit_append_as(x->m->audit, &rec, x->m->cfg->logging.proxy_audit_sync, &err) < 0)
        cb_log(CB_LOG_ERROR, "audit: %s", err.msg);
}

/* Writes the process spec and starts the runtime's exec of it. */
static int launch(struct cb__ct_exec *x, struct cb_error *err)
{
    _cleanup_free_ char *spec = NULL;
    int rc = process_spec(x->t.dir, &x->q, &spec, err);
    if (rc < 0)
        return rc;
    x->spec_path = cb_xasprintf("%s/%s.json", x->t.dir, x->t.exec_id);
    x->pid_path = cb_xasprintf("%s/%s.pid", x->t.dir, x->t.exec_id);
    rc = write_new(x->spec_path, spec, err);
    struct cb_ct_manager *m = x->m;
    char *argv[16];
    if (rc == 0 && m->be.exec_argv(m->be.impl, x->id, x->spec_path, x->pid_path, argv, 16) < 0)
        rc = cb_error_set(err, -EIO, "exec: the runtime cannot exec");
    if (rc == 0 && x->q.detach)
        rc = open_log_pipe(x->t.init_pid, &x->r.log_fd, err);
    x->r.ns = cb__ct_pid_ns(x->t.init_pid);
    /* The pipe and the namespace were found through the init's pid. */
    if (rc == 0 && !cb__ct_init_alive(x->t.init_pidfd))
        rc = cb_error_set(err, -ESRCH, "container %s is not running", x->id);
    x->r.pid_file = x->pid_path;
    x->start = cb_now_mono_ns();
    /* Saturating: max_timeout_ms may be set past what nanoseconds hold. */
    x->deadline = x->q.timeout_ms > (UINT64_MAX - x->start) / 1000000u
                      ? UINT64_MAX
                      : x->start + x->q.timeout_ms * 1000000u;
    return rc == 0 ? start_runtime(&x->r, argv, x->t.netns, err) : rc;
}

int cb__ct_exec_start(struct cb_ct_manager *m, const char *id, const json_t *body,
                      const char *request_id, const struct cb__ct_exec_sink *sink,
                      struct cb__ct_exec **out, struct cb_error *err)
{
    struct cb__ct_exec *x = cb_xcalloc(1, sizeof(*x));
    x->m = m;
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->request_id = request_id ? cb_xstrdup(request_id) : NULL;
    x->body = json_incref((json_t *)body); /* only its count changes */
    x->r = (struct run){
        .in = -1, .rt_fd = -1, .proc_fd = -1, .log_fd = -1, .out.fd = -1, .err.fd = -1};
    x->r.sink = sink;
    x->r.cap = m->cfg->containers.max_exec_output_bytes;
    int rc = cb_ct_exec_request_parse(body, m->cfg, &x->q, err);
    if (rc < 0) {
        x->q = (struct cb_ct_exec_request){0};
        cb__ct_exec_free(x);
        return rc;
    }
    x->r.stdin_data = x->q.stdin_data;
    x->r.stdin_len = x->q.stdin_len;
    rc = cb__ct_exec_enter(m, id, &x->q, &x->t, err);
    x->entered = rc == 0;
    if (rc == 0)
        rc = launch(x, err);
    if (rc < 0) {
        cb__ct_exec_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

void cb__ct_exec_finish(struct cb__ct_exec *x, struct cb__ct_exec_outcome *o)
{
    struct run *r = &x->r;
    exec_pump(r, x->deadline);
    bool exited = WIFEXITED(r->status) && !r->timed_out && !r->cancelled;
    *o = (struct cb__ct_exec_outcome){
        .code = exited ? WEXITSTATUS(r->status) : -1,
        .duration_ms = (cb_now_mono_ns() - x->start) / 1000000u,
        .timed_out = r->timed_out,
        .cancelled = r->cancelled,
        .truncated = r->truncated,
    };
    x->ran = true;
    cb__ct_exec_ended(x->m, x->id, x->t.exec_id, o);
    audit_exec(x, o);
}

/* ---- answered once ---- */

struct collect {
    struct cb_buf out, err;
};

static void collect_output(void *ud, bool is_err, const char *data, size_t len)
{
    struct collect *c = ud;
    cb_buf_append(is_err ? &c->err : &c->out, data,
                  len); /* within the cap, as take_stream() keeps it */
}

int cb_ct_exec(struct cb_ct_manager *m, const char *id, const json_t *body, const char *request_id,
               json_t **result, struct cb_error *err)
{
    struct collect c;
    cb_buf_init(&c.out, m->cfg->containers.max_exec_output_bytes);
    cb_buf_init(&c.err, m->cfg->containers.max_exec_output_bytes);
    struct cb__ct_exec_sink sink = {.output = collect_output, .wake_fd = -1, .ud = &c};
    struct cb__ct_exec *x = NULL;
    int rc = cb__ct_exec_start(m, id, body, request_id, &sink, &x, err);
    if (rc == 0) {
        struct cb__ct_exec_outcome o;
        char exec_id[CB__CT_EXEC_ID_LEN];
        memcpy(exec_id, cb__ct_exec_id(x), sizeof(exec_id));
        cb__ct_exec_finish(x, &o);
        cb__ct_exec_free(x);
        *result = json_pack("{s:s, s:o, s:o, s:o, s:I, s:b, s:b}", "exec_id", exec_id, "stdout",
                            cb__ct_redact_text(m, c.out.data, c.out.len), "stderr",
                            cb__ct_redact_text(m, c.err.data, c.err.len), "exit_code",
                            o.code >= 0 ? json_integer(o.code) : json_null(), "duration_ms",
                            (json_int_t)o.duration_ms, "truncated", o.truncated, "timed_out",
                            o.timed_out);
    }
    cb_buf_free(&c.out);
    cb_buf_free(&c.err);
    return rc;
}
