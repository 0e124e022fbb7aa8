/* The main process's side of the workers: spawning the zygote, asking it
 * for a child per execution, and serving the child's host calls until its
 * result or its deadline. */
#include "core/log.h"
#include "core/util.h"
#include "sandbox/worker.h"
#include "sandbox/worker/ipc.h"
#include "sandbox/worker/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define ZYGOTE_FD  3
#define STDERR_CAP (64u * 1024)

struct cb_worker_pool {
    pthread_mutex_t lock;
    char *self_exe;
    int zsock;
    pid_t zpid;
};

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
    return 0;
}

static void stop_zygote(struct cb_worker_pool *p)
{
    if (p->zsock >= 0)
        close(p->zsock); /* the zygote exits at end of stream */
    if (p->zpid > 0)
        waitpid(p->zpid, NULL, 0);
    p->zsock = -1;
    p->zpid = 0;
}

int cb_worker_pool_new(const char *self_exe, struct cb_worker_pool **out, struct cb_error *err)
{
    struct cb_worker_pool *p = cb_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
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
    pthread_mutex_destroy(&p->lock);
    free(p->self_exe);
    free(p);
}

/* One request/answer with the zygote. */
static int ask_zygote(struct cb_worker_pool *p, const char *so_path, int *fd, pid_t *pid,
                      struct cb_error *err)
{
    struct cb_buf ans;
    uint32_t type = 0;
    cb_buf_init(&ans, 4096);
    int r = cb__ipc_send(p->zsock, CB__FRAME_SPAWN, so_path, strlen(so_path) + 1, -1);
    if (r == 0)
        r = cb__ipc_recv(p->zsock, &type, &ans, fd);
    if (r == 0 && type == CB__FRAME_SPAWNED && ans.len == sizeof(uint32_t) && *fd >= 0) {
        uint32_t v;
        memcpy(&v, ans.data, sizeof(v));
        *pid = (pid_t)v;
    } else if (r == 0) {
        r = cb_error_set(err, -EIO, "worker start failed: %.*s", (int)ans.len,
                         ans.data ? ans.data : "");
    }
    cb_buf_free(&ans);
    return r;
}

/* Gets a fresh child for so_path, restarting the zygote once if it died. */
static int get_child(struct cb_worker_pool *p, const char *so_path, int *fd, pid_t *pid,
                     struct cb_error *err)
{
    pthread_mutex_lock(&p->lock);
    int r = -EPIPE;
    for (int attempt = 0; attempt < 2 && (r == -EPIPE || r == -ECONNRESET); attempt++) {
        if (attempt > 0 || p->zsock < 0) {
            cb_log(CB_LOG_WARN, "worker zygote gone; restarting it");
            stop_zygote(p);
            r = start_zygote(p, err);
            if (r < 0)
                break;
        }
        r = ask_zygote(p, so_path, fd, pid, err);
    }
    if (r == -EPIPE || r == -ECONNRESET)
        cb_error_set(err, r, "the worker zygote is not answering");
    pthread_mutex_unlock(&p->lock);
    return r;
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
                      struct cb_error *err);

int cb_worker_execute(struct cb_worker_pool *p, const char *so_path, const char *params,
                      size_t params_len, const struct cb_worker_limits *lim,
                      cb_host_call_fn handler, void *handler_ud, struct cb_worker_result *res,
                      struct cb_error *err)
{
    int fd = -1;
    pid_t pid = 0;
    memset(res, 0, sizeof(*res));
    cb_buf_init(&res->out, lim->max_output);
    cb_buf_init(&res->err, STDERR_CAP);
    res->logs = json_array();
    int r = get_child(p, so_path, &fd, &pid, err);
    if (r < 0)
        return r;
    r = cb__session_run(fd, pid, params, params_len, lim, handler, handler_ud, res);
    close(fd);
    return r;
}
