#include "child.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/worker/ipc.h"
#include "sandbox/worker/session.h"

/* The child's end: what is left to send, and what came back. */
struct io {
    int fd;
    const char *p;
    size_t n;
    struct cb_buf *got;
};

/* Inputs up to DIRECT_MAX bytes are written before the session starts,
 * into send buffers of SOCKBUF bytes that also hold every reply (a reply
 * costs at most a few KiB of buffer, and there is at most one per 8 input
 * bytes), so no thread is needed. */
#define DIRECT_MAX (64u * 1024)
#define SOCKBUF    (32 * 1024 * 1024)

static pthread_once_t zombie_once = PTHREAD_ONCE_INIT;
static pid_t zombie;

/* cb__session_run signals the pid it is given when a child misbehaves, and
 * the main process's rules say a misbehaving child is killed. The pid given
 * is a child of ours that has already exited and is never reaped: it stays
 * ours (a zombie's pid is not reused), so the signal can reach nothing
 * else. */
static void make_zombie(void)
{
    zombie = fork();
    if (zombie == 0)
        _exit(0);
    siginfo_t si;
    if (zombie < 0 || waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT) < 0) {
        perror("fuzz harness: cannot make the stand-in child (is SIGCHLD ignored?)");
        abort();
    }
}

static void take(struct io *io)
{
    char buf[65536];
    ssize_t r = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        io->fd = -1;
        return;
    }
    if (r > 0 && io->got->len + (size_t)r <= FUZZ_CHILD_MAX_GOT)
        cb_buf_append(io->got, buf, (size_t)r);
}

static void give(struct io *io, int fd)
{
    ssize_t w = send(fd, io->p, io->n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
        io->p += w;
        io->n -= (size_t)w;
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        io->n = 0; /* the main process is gone */
    }
    if (io->n == 0)
        shutdown(fd, SHUT_WR);
}

/* Sends everything, then half-closes, while reading whatever the main
 * process sends until it closes its end. */
static void *child_io(void *arg)
{
    struct io *io = arg;
    int fd = io->fd;
    if (io->n == 0)
        shutdown(fd, SHUT_WR);
    while (io->fd >= 0) {
        bool sending = io->n > 0;
        struct pollfd pfd = {fd, (short)(POLLIN | (sending ? POLLOUT : 0)), 0};
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            take(io);
        if (sending && io->fd >= 0 && (pfd.revents & (POLLOUT | POLLERR)))
            give(io, fd);
    }
    return NULL;
}

/* Gives both ends send buffers that hold a whole exchange. Needs
 * CAP_NET_ADMIN (SO_SNDBUFFORCE); returns false without it. */
static bool big_buffers(const int sv[2])
{
    int size = SOCKBUF;
    return setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) == 0 &&
           setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) == 0;
}

bool fuzz_child_session(const void *bytes, size_t len, const struct cb_worker_limits *lim,
                        cb_host_call_fn handler, void *ud, struct cb_worker_result *res,
                        struct cb_buf *got)
{
    pthread_once(&zombie_once, make_zombie);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    memset(res, 0, sizeof(*res));
    cb_buf_init(&res->out, lim->max_output);
    cb_buf_init(&res->err, 64u * 1024);
    res->logs = json_array();
    cb_buf_init(got, FUZZ_CHILD_MAX_GOT);
    struct io io = {sv[1], bytes, len, got};
    /* Fast path: everything written up front, the replies collected after
     * the session; else a thread does both while the session runs. */
    bool direct = len <= DIRECT_MAX && big_buffers(sv);
    if (direct)
        give(&io, sv[1]);
    pthread_t t;
    bool threaded = !direct || io.n > 0;
    if (threaded && pthread_create(&t, NULL, child_io, &io) != 0)
        abort();
    bool reusable = cb__session_run(sv[0], zombie, "{}", 2, 1, lim, handler, ud, res);
    close(sv[0]);
    if (threaded)
        pthread_join(t, NULL);
    while (!threaded && io.fd >= 0)
        take(&io);
    close(sv[1]);
    return reusable;
}

size_t fuzz_child_frames(const struct cb_buf *got,
                         void (*fn)(void *ud, uint32_t type, const char *p, size_t n), void *ud,
                         bool *partial)
{
    size_t pos = 0, count = 0;
    uint32_t hdr[2];
    while (got->len - pos >= sizeof(hdr)) {
        memcpy(hdr, got->data + pos, sizeof(hdr));
        if (got->len - pos - sizeof(hdr) < hdr[1])
            break;
        fn(ud, hdr[0], got->data + pos + sizeof(hdr), hdr[1]);
        pos += sizeof(hdr) + hdr[1];
        count++;
    }
    *partial = pos != got->len;
    return count;
}

void fuzz_child_frame(struct cb_buf *b, uint32_t type, const void *p, size_t n)
{
    uint32_t hdr[2] = {type, (uint32_t)n};
    cb_buf_append(b, hdr, sizeof(hdr));
    cb_buf_append(b, p, n);
}
