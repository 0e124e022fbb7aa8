/* The zygote: forks single-use children on request. It holds no secrets
 * (it is a fresh exec with an empty environment) and keeps the tools'
 * shared objects open, so a child starts with its tool loaded. A child
 * confines itself at once and waits for its one job; the main process
 * keeps a few of them ready per tool (pool.c), so neither fork, loading
 * the tool nor installing the seccomp filter is on the request path. */
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

struct open_tool {
    char *path;
    void *handle;
    cb_tool_entry_fn entry;
    cb_tool_release_fn release;
    uint64_t used;
};

struct zygote {
    int sock;
    struct sock_fprog filter;
    struct open_tool tools[OPEN_TOOLS_MAX];
    uint64_t clock;
};

static void close_tool(struct open_tool *t)
{
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
    cb_tool_release_fn release = h ? (cb_tool_release_fn)dlsym(h, CB_TOOL_RELEASE_SYMBOL) : NULL;
    if (entry == NULL || release == NULL) {
        snprintf(why, whylen, "loading %s: %s", path, dlerror());
        if (h)
            dlclose(h);
        return NULL;
    }
    close_tool(slot);
    *slot = (struct open_tool){.path = cb_xstrdup(path),
                               .handle = h,
                               .entry = entry,
                               .release = release,
                               .used = ++z->clock};
    return slot;
}

/* Forks a child for the tool; it confines itself and waits for its job.
 * Returns the pid and, in *sock, the main process's end of its socket. */
static pid_t fork_child(struct zygote *z, struct open_tool *t, int *sock)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        close(z->sock);
        close(sv[0]);
        cb__child_main(sv[1], t->entry, t->release, &z->filter);
    }
    int e = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return -e;
    }
    *sock = sv[0];
    return pid;
}

/* Answers one spawn request: SPAWNED (pid, path; the socket attached) or
 * SPAWN_FAIL (path, NUL, reason). */
static void spawn_tool(struct zygote *z, const char *path)
{
    char why[512];
    int sock = -1;
    struct open_tool *t = open_tool(z, path, why, sizeof(why));
    pid_t pid = t ? fork_child(z, t, &sock) : -1;
    if (t && pid < 0)
        snprintf(why, sizeof(why), "fork: %s", strerror((int)-pid));
    if (pid > 0) {
        uint32_t p = (uint32_t)pid;
        struct cb_buf f;
        cb_buf_init(&f, CB__IPC_CONTROL_MAX);
        cb_buf_append(&f, &p, sizeof(p));
        cb_buf_append(&f, path, strlen(path) + 1);
        cb__ipc_send(z->sock, CB__FRAME_SPAWNED, f.data, f.len, sock);
        cb_buf_free(&f);
        close(sock);
    } else {
        cb__ipc_send2(z->sock, CB__FRAME_SPAWN_FAIL, path, strlen(path) + 1, why, strlen(why));
    }
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
    cb_buf_init(&frame, CB__IPC_CONTROL_MAX);
    for (;;) {
        uint32_t type = 0;
        if (cb__ipc_recv(fd, &type, &frame, NULL) < 0)
            break; /* the main process went away */
        if (type == CB__FRAME_SPAWN)
            spawn_tool(&z, frame.data);
    }
    cb_buf_free(&frame);
    for (size_t i = 0; i < OPEN_TOOLS_MAX; i++)
        close_tool(&z.tools[i]);
    free(z.filter.filter);
    return 0;
}
