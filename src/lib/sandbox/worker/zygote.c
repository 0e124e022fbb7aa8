/* The zygote: forks one single-use child per execution. It holds no
 * secrets (it is a fresh exec with an empty environment) and keeps the
 * tools' shared objects open so children start without loading them. */
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
    uint64_t used;
};

struct zygote {
    int sock;
    struct sock_fprog filter;
    struct open_tool tools[OPEN_TOOLS_MAX];
    uint64_t clock;
};

/* Returns the entry point of the tool at path, loading it if needed and
 * evicting the least recently used tool when the table is full. */
static cb_tool_entry_fn open_tool(struct zygote *z, const char *path, char *why, size_t whylen)
{
    struct open_tool *slot = &z->tools[0];
    for (size_t i = 0; i < OPEN_TOOLS_MAX; i++) {
        struct open_tool *t = &z->tools[i];
        if (t->path && strcmp(t->path, path) == 0) {
            t->used = ++z->clock;
            return t->entry;
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
    if (slot->handle)
        dlclose(slot->handle);
    free(slot->path);
    *slot = (struct open_tool){cb_xstrdup(path), h, entry, ++z->clock};
    return entry;
}

static void spawn(struct zygote *z, const char *path)
{
    char why[512];
    int sv[2];
    cb_tool_entry_fn entry = open_tool(z, path, why, sizeof(why));
    if (entry == NULL) {
        cb__ipc_send(z->sock, CB__FRAME_SPAWN_FAIL, why, strlen(why), -1);
        return;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(why, sizeof(why), "socketpair: %s", strerror(errno));
        cb__ipc_send(z->sock, CB__FRAME_SPAWN_FAIL, why, strlen(why), -1);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(z->sock);
        close(sv[0]);
        cb__child_main(sv[1], entry, &z->filter);
    }
    close(sv[1]);
    if (pid < 0) {
        snprintf(why, sizeof(why), "fork: %s", strerror(errno));
        cb__ipc_send(z->sock, CB__FRAME_SPAWN_FAIL, why, strlen(why), -1);
    } else {
        uint32_t p = (uint32_t)pid;
        cb__ipc_send(z->sock, CB__FRAME_SPAWNED, &p, sizeof(p), sv[0]);
    }
    close(sv[0]);
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
    for (size_t i = 0; i < OPEN_TOOLS_MAX; i++) {
        if (z.tools[i].handle)
            dlclose(z.tools[i].handle);
        free(z.tools[i].path);
    }
    free(z.filter.filter);
    return 0;
}
