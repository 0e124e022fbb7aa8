/* The main process's side of the workers: spawning the zygote, keeping
 * idle children per tool (fresh ones from the zygote, and ones that ended
 * their last job cleanly and may take more), and serving a child's host
 * calls until its result or its deadline. */
#include "core/log.h"
#include "core/util.h"
#include "sandbox/worker.h"
#include "sandbox/worker/ipc.h"
#include "sandbox/worker/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define ZYGOTE_FD 3

/* Fresh children kept ready per tool, idle children kept per tool at
 * most, and tools with a ready queue. */
#define READY_SPARE     2
#define READY_MAX       32
#define READY_TOOLS_MAX 32
/* An idle child beyond the spares is retired after this long. */
#define IDLE_RETIRE_NS (60ull * 1000000000ull)
/* How long an execution waits for the zygote to produce its child. */
#define SPAWN_WAIT_NS (30ull * 1000000000ull)

struct ready_child {
    int fd;
    pid_t pid;
    uint32_t jobs_done;
    uint64_t memory_mb; /* its data-size cap, fixed by its first job */
    uint64_t idle_since_ns;
};

/* Idle children of one tool, a stack (the most recently used on top).
 * `pending` counts spawns asked for and not yet answered. */
struct ready_queue {
    char *path;
    struct ready_child items[READY_MAX];
    size_t n;
    unsigned pending;
    char *error; /* the last spawn failure, for the next waiter */
    uint64_t used;
};

struct cb_worker_pool {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a child arrived, a spawn failed, or the zygote died */
    char *self_exe;
    int zsock;
    pid_t zpid;
    bool zygote_dead;
    pthread_t reader;
    bool has_reader;
    struct ready_queue qs[READY_TOOLS_MAX];
    uint64_t clock;
    uint32_t jobs_per_worker;
    uint64_t last_retire_ns;
};

static void queue_clear(struct ready_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        close(q->items[i].fd); /* a waiting child exits at end of stream */
    free(q->path);
    free(q->error);
    memset(q, 0, sizeof(*q));
}

static struct ready_queue *queue_find(struct cb_worker_pool *p, const char *path)
{
    for (size_t i = 0; i < READY_TOOLS_MAX; i++)
        if (p->qs[i].path && strcmp(p->qs[i].path, path) == 0)
            return &p->qs[i];
    return NULL;
}

/* The queue for path, made (evicting the least recently used) if needed. */
static struct ready_queue *queue_get(struct cb_worker_pool *p, const char *path)
{
    struct ready_queue *q = queue_find(p, path);
    if (q == NULL) {
        q = &p->qs[0];
        for (size_t i = 1; i < READY_TOOLS_MAX; i++)
            if (p->qs[i].used < q->used)
                q = &p->qs[i];
        queue_clear(q);
        q->path = cb_xstrdup(path);
    }
    q->used = ++p->clock;
    return q;
}

/* Files one frame from the zygote under the lock. */
static void on_frame(struct cb_worker_pool *p, uint32_t type, const struct cb_buf *f, int fd)
{
    uint32_t pid = 0;
    const char *path = f->len > sizeof(pid) ? f->data + sizeof(pid) : "";
    if (type == CB__FRAME_SPAWNED && fd >= 0 && f->len > sizeof(pid))
        memcpy(&pid, f->data, sizeof(pid));
    else if (type == CB__FRAME_SPAWN_FAIL)
        path = f->data ? f->data : "";
    struct ready_queue *q = queue_find(p, path);
    if (q != NULL && q->pending > 0)
        q->pending--;
    if (type == CB__FRAME_SPAWNED && q != NULL && pid > 0 && q->n < CB_ARRAY_LEN(q->items)) {
        q->items[q->n++] =
            (struct ready_child){.fd = fd, .pid = (pid_t)pid, .idle_since_ns = cb_now_mono_ns()};
        fd = -1;
    } else if (type == CB__FRAME_SPAWN_FAIL && q != NULL) {
        size_t plen = strlen(path);
        free(q->error);
        q->error = cb_xstrdup(plen + 1 < f->len ? path + plen + 1 : "worker start failed");
    }
    if (fd >= 0)
        close(fd);
}

/* Receives the zygote's answers and files the children by tool. */
static void *reader_main(void *arg)
{
    struct cb_worker_pool *p = arg;
    struct cb_buf f;
    cb_buf_init(&f, CB__IPC_CONTROL_MAX);
    for (;;) {
        uint32_t type = 0;
        int fd = -1;
        int r = cb__ipc_recv(p->zsock, &type, &f, &fd);
        pthread_mutex_lock(&p->lock);
        if (r < 0)
            p->zygote_dead = true;
        else
            on_frame(p, type, &f, fd);
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (r < 0)
            break;
    }
    cb_buf_free(&f);
    return NULL;
}

static int start_zygote(struct cb_worker_pool *p, struct cb_error *err)
{
    int sv[2];
    posix_spawn_file_actions_t fa;
    char *argv[] = {"clawbox", "__zygote", NULL};
    char *envp[] = {NULL};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return cb_error_set(err, -errno, "socketpair: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], ZYGOTE_FD);
    int r = posix_spawn(&p->zpid, p->self_exe, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (r != 0) {
        close(sv[0]);
        return cb_error_set(err, -r, "starting the worker zygote %s: %s", p->self_exe, strerror(r));
    }
    p->zsock = sv[0];
    p->zygote_dead = false;
    r = pthread_create(&p->reader, NULL, reader_main, p);
    if (r != 0)
        return cb_error_set(err, -r, "starting the zygote reader: %s", strerror(r));
    p->has_reader = true;
    return 0;
}

/* Ends the zygote and its reader, and drops every ready child. Called
 * without the lock held. */
static void stop_zygote(struct cb_worker_pool *p)
{
    if (p->zsock >= 0)
        shutdown(p->zsock, SHUT_RDWR); /* the zygote and the reader see end of stream */
    if (p->has_reader)
        pthread_join(p->reader, NULL);
    p->has_reader = false;
    if (p->zsock >= 0)
        close(p->zsock);
    if (p->zpid > 0)
        waitpid(p->zpid, NULL, 0);
    p->zsock = -1;
    p->zpid = 0;
    for (size_t i = 0; i < READY_TOOLS_MAX; i++)
        queue_clear(&p->qs[i]);
}

int cb_worker_pool_new(const char *self_exe, uint32_t jobs_per_worker, struct cb_worker_pool **out,
                       struct cb_error *err)
{
    struct cb_worker_pool *p = cb_xcalloc(1, sizeof(*p));
    p->jobs_per_worker = jobs_per_worker > 0 ? jobs_per_worker : 1;
    pthread_condattr_t ca;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->changed, &ca);
    pthread_condattr_destroy(&ca);
    p->self_exe = cb_xstrdup(self_exe);
    p->zsock = -1;
    int r = start_zygote(p, err);
    if (r < 0) {
        cb_worker_pool_free(p);
        return r;
    }
    *out = p;
    return 0;
}

void cb_worker_pool_free(struct cb_worker_pool *p)
{
    if (p == NULL)
        return;
    stop_zygote(p);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p->self_exe);
    free(p);
}

/* Asks the zygote for one more child of the queue's tool (under the lock). */
static void request_child(struct cb_worker_pool *p, struct ready_queue *q)
{
    if (cb__ipc_send(p->zsock, CB__FRAME_SPAWN, q->path, strlen(q->path) + 1, -1) == 0)
        q->pending++;
}

/* Restarts a dead zygote (under the lock, which it drops meanwhile). */
static int revive_zygote(struct cb_worker_pool *p, struct cb_error *err)
{
    cb_log(CB_LOG_WARN, "worker zygote gone; restarting it");
    pthread_mutex_unlock(&p->lock);
    stop_zygote(p);
    int r = start_zygote(p, err);
    pthread_mutex_lock(&p->lock);
    return r;
}

static void wait_changed(struct cb_worker_pool *p, uint64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

/* Retires children idle for too long beyond each tool's spares, at most
 * once a second (under the lock). The oldest idle are at the bottom. */
static void retire_idle(struct cb_worker_pool *p)
{
    uint64_t now = cb_now_mono_ns();
    if (now - p->last_retire_ns < 1000000000ull)
        return;
    p->last_retire_ns = now;
    for (size_t i = 0; i < READY_TOOLS_MAX; i++) {
        struct ready_queue *q = &p->qs[i];
        size_t old = 0;
        while (q->n - old > READY_SPARE && now - q->items[old].idle_since_ns > IDLE_RETIRE_NS)
            close(q->items[old++].fd);
        memmove(q->items, q->items + old, (q->n - old) * sizeof(q->items[0]));
        q->n -= old;
    }
}

/* Pops an idle child that can run a job with memory_mb: a fresh one, or
 * one whose cap was fixed at the same value (others are retired). */
static bool pop_child(struct ready_queue *q, uint64_t memory_mb, struct ready_child *out)
{
    while (q->n > 0) {
        struct ready_child c = q->items[--q->n];
        if (c.jobs_done == 0 || c.memory_mb == memory_mb) {
            *out = c;
            return true;
        }
        close(c.fd);
    }
    return false;
}

/* Takes an idle child for so_path, waiting for a fresh one if none. */
static int get_child(struct cb_worker_pool *p, const char *so_path, uint64_t memory_mb,
                     struct ready_child *out, struct cb_error *err)
{
    uint64_t deadline = cb_now_mono_ns() + SPAWN_WAIT_NS;
    int r = 0;
    pthread_mutex_lock(&p->lock);
    if (p->zygote_dead)
        r = revive_zygote(p, err);
    retire_idle(p);
    struct ready_queue *q = r == 0 ? queue_get(p, so_path) : NULL;
    while (r == 0 && !pop_child(q, memory_mb, out)) {
        if (q->error) {
            r = cb_error_set(err, -EIO, "worker start failed: %s", q->error);
            free(q->error);
            q->error = NULL;
        } else if (p->zygote_dead || cb_now_mono_ns() >= deadline) {
            r = cb_error_set(err, -EPIPE, "the worker zygote is not answering");
        } else {
            if (q->pending == 0)
                request_child(p, q);
            wait_changed(p, deadline);
            q = queue_get(p, so_path); /* the queue may have been evicted meanwhile */
        }
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

/* Files a child that waits for its next job as idle, or ends it when its
 * tool's queue is gone or full. */
static void give_back(struct cb_worker_pool *p, const char *so_path, struct ready_child *c)
{
    pthread_mutex_lock(&p->lock);
    struct ready_queue *q = queue_find(p, so_path);
    c->idle_since_ns = cb_now_mono_ns();
    if (q != NULL && q->n < READY_MAX)
        q->items[q->n++] = *c;
    else
        close(c->fd);
    pthread_mutex_unlock(&p->lock);
}

/* Asks for replacements of the children used up for so_path. Called after
 * an execution, so the zygote's fork does not compete with it for the
 * CPUs. */
static void replenish(struct cb_worker_pool *p, const char *so_path)
{
    pthread_mutex_lock(&p->lock);
    struct ready_queue *q = queue_find(p, so_path);
    while (q != NULL && q->n + q->pending < READY_SPARE && !p->zygote_dead)
        request_child(p, q);
    pthread_mutex_unlock(&p->lock);
}

void cb_worker_result_free(struct cb_worker_result *res)
{
    if (res == NULL)
        return;
    cb_buf_free(&res->out);
    cb_buf_free(&res->err);
    json_decref(res->logs);
    res->logs = NULL;
}

int cb_worker_execute(struct cb_worker_pool *p, const char *so_path, const char *params,
                      size_t params_len, const struct cb_worker_limits *lim,
                      cb_host_call_fn handler, void *handler_ud, struct cb_worker_result *res,
                      struct cb_error *err)
{
    struct ready_child c;
    memset(res, 0, sizeof(*res));
    cb_buf_init(&res->out, lim->max_output);
    cb_buf_init(&res->err, CB__STDERR_MAX);
    res->logs = json_array();
    int r = get_child(p, so_path, lim->memory_mb, &c, err);
    if (r < 0)
        return r;
    uint32_t jobs_left = p->jobs_per_worker - c.jobs_done - 1;
    if (cb__session_run(c.fd, c.pid, params, params_len, jobs_left, lim, handler, handler_ud,
                        res)) {
        c.jobs_done++;
        c.memory_mb = lim->memory_mb;
        give_back(p, so_path, &c);
    } else {
        close(c.fd);
        replenish(p, so_path);
    }
    return 0;
}
