/* The zygote: hands out one single-use child per execution. It holds no
 * secrets (it is a fresh exec with an empty environment) and keeps the
 * tools' shared objects open, and for each tool a few children already
 * forked and confined, waiting for their one job; so neither fork, nor
 * loading the tool, nor installing the seccomp filter is on the request
 * path. After handing a child out it forks its replacement. */
#include "core/buf.h"
#include "core/util.h"
#include "sandbox/worker.h"
#include "sandbox/worker/child.h"
#include "sandbox/worker/ipc.h"
#include "sandbox/worker/seccomp.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OPEN_TOOLS_MAX 64
/* Children kept waiting per tool. */
#define READY_PER_TOOL 2

struct ready_child {
    int sock; /* the main process's end */
    pid_t pid;
};

struct open_tool {
    char *path;
    void *handle;
    cb_tool_entry_fn entry;
    uint64_t used;
    struct ready_child ready[READY_PER_TOOL];
    size_t n_ready;
};

struct zygote {
    int sock;
    struct sock_fprog filter;
    struct open_tool tools[OPEN_TOOLS_MAX];
    uint64_t clock;
};

/* Closing a waiting child's socket makes it exit (end of stream). */
static void close_tool(struct open_tool *t)
{
    for (size_t i = 0; i < t->n_ready; i++)
        close(t->ready[i].sock);
    if (t->handle)
        dlclose(t->handle);
    free(t->path);
    memset(t, 0, sizeof(*t));
}

/* Returns the tool at path, loading it if needed and evicting the least
 * recently used tool when the table is full; NULL with why set. */
static struct open_tool *open_tool(struct zygote *z, const char *path, char *why, size_t whylen)
{
    struct open_tool *slot = &z->tools[0];
    for (size_t i = 0; i < OPEN_TOOLS_MAX; i++) {
        struct open_tool *t = &z->tools[i];
        if (t->path && strcmp(t->path, path) == 0) {
            t->used = ++z->clock;
            return t;
        }
        if (t->used < slot->used)
            slot = t;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cb_tool_entry_fn entry = h ? (cb_tool_entry_fn)dlsym(h, CB_TOOL_ENTRY_SYMBOL) : NULL;
    if (entry == NULL) {
        snprintf(why, whylen, "loading %s: %s", path, dlerror());
        if (h)
            dlclose(h);
        return NULL;
    }
    close_tool(slot);
    *slot = (struct open_tool){
        .path = cb_xstrdup(path), .handle = h, .entry = entry, .used = ++z->clock};
    return slot;
}

/* Forks a child for the tool; it confines itself and waits for its job.
 * Returns 0 and the main process's end of its socket, or -errno. */
static int fork_child(struct zygote *z, struct open_tool *t, struct ready_child *out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        close(z->sock);
        close(sv[0]);
        for (size_t i = 0; i < OPEN_TOOLS_MAX; i++)
            for (size_t j = 0; j < z->tools[i].n_ready; j++)
                close(z->tools[i].ready[j].sock);
        cb__child_main(sv[1], t->entry, &z->filter);
    }
    int e = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return -e;
    }
    *out = (struct ready_child){sv[0], pid};
    return 0;
}

static void refill(struct zygote *z, struct open_tool *t)
{
    while (t->n_ready < READY_PER_TOOL && fork_child(z, t, &t->ready[t->n_ready]) == 0)
        t->n_ready++;
}

static void fail(struct zygote *z, const char *why)
{
    cb__ipc_send(z->sock, CB__FRAME_SPAWN_FAIL, why, strlen(why), -1);
}

static void spawn(struct zygote *z, const char *path)
{
    char why[512];
    struct ready_child c;
    struct open_tool *t = open_tool(z, path, why, sizeof(why));
    if (t == NULL) {
        fail(z, why);
        return;
    }
    if (t->n_ready > 0) {
        c = t->ready[--t->n_ready];
    } else {
        int r = fork_child(z, t, &c);
        if (r < 0) {
            snprintf(why, sizeof(why), "fork: %s", strerror(-r));
            fail(z, why);
            return;
        }
    }
    uint32_t p = (uint32_t)c.pid;
    cb__ipc_send(z->sock, CB__FRAME_SPAWNED, &p, sizeof(p), c.sock);
    close(c.sock);
    refill(z, t);
}

int cb_zygote_main(int fd)
{
    struct zygote z = {.sock = fd};
    struct cb_error err = {0};
    struct sigaction sa = {.sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT};
    struct cb_buf frame;
    /* Nothing but stdio and the socket may reach a child. */
    close_range((unsigned)fd + 1, ~0U, 0);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (cb__seccomp_build(&z.filter, &err) < 0) {
        fprintf(stderr, "clawbox zygote: %s\n", err.msg);
        return 1;
    }
    cb_buf_init(&frame, 8192);
    for (;;) {
        uint32_t type = 0;
        if (cb__ipc_recv(fd, &type, &frame, NULL) < 0)
            break; /* the main process went away */
        if (type == CB__FRAME_SPAWN)
            spawn(&z, frame.data);
    }
    cb_buf_free(&frame);
    for (size_t i = 0; i < OPEN_TOOLS_MAX; i++)
        close_tool(&z.tools[i]);
    free(z.filter.filter);
    return 0;
}
