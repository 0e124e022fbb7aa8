#include "sandbox/worker/ipc.h"
#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static int send_iov(int sock, struct iovec *iov, int n, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    if (fd >= 0) {
        memset(cbuf, 0, sizeof(cbuf));
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof(cbuf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    while (n > 0) {
        ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        msg.msg_control = NULL; /* the descriptor goes with the first byte */
        msg.msg_controllen = 0;
        n = cb_iov_advance(&iov, n, (size_t)w);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)n;
    }
    return 0;
}

int cb__ipc_send2(int sock, uint32_t type, const void *a, size_t an, const void *b, size_t bn)
{
    if (an + bn > CB__IPC_MAX_FRAME)
        return -E2BIG;
    uint32_t hdr[2] = {type, (uint32_t)(an + bn)};
    struct iovec iov[3] = {{hdr, sizeof(hdr)}, {(void *)a, an}, {(void *)b, bn}};
    return send_iov(sock, iov, 3, -1);
}

int cb__ipc_send(int sock, uint32_t type, const void *p, size_t n, int fd)
{
    if (n > CB__IPC_MAX_FRAME)
        return -E2BIG;
    uint32_t hdr[2] = {type, (uint32_t)n};
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)p, n}};
    return send_iov(sock, iov, 2, fd);
}

/* Reads exactly n bytes; collects a passed descriptor if one arrives. */
static int read_full(int sock, void *p, size_t n, int *fd_out)
{
    char *q = p;
    while (n > 0) {
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {q, n};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof(cbuf);
        ssize_t r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EPIPE;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
            if (fd_out && *fd_out < 0)
                *fd_out = fd;
            else
                close(fd);
        }
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

static bool readable(void *ud)
{
    char byte;
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    return recvmsg(*(int *)ud, &msg, MSG_PEEK | MSG_DONTWAIT) >= 0 || errno != EAGAIN;
}

void cb__ipc_spin_wait(int sock, unsigned usec)
{
    cb_yield_until(readable, &sock, usec * 1000ull);
}

int cb__ipc_recv(int sock, uint32_t *type, struct cb_buf *payload, int *fd_out)
{
    uint32_t hdr[2];
    if (fd_out)
        *fd_out = -1;
    int r = read_full(sock, hdr, sizeof(hdr), fd_out);
    if (r < 0)
        return r;
    if (hdr[1] > CB__IPC_MAX_FRAME || hdr[1] > payload->max)
        return -EPROTO;
    cb_buf_reset(payload);
    if (hdr[1] > 0) {
        void *dst = cb_buf_extend(payload, hdr[1]);
        r = dst ? read_full(sock, dst, hdr[1], fd_out) : -EPROTO;
        if (r < 0)
            return r;
    }
    *type = hdr[0];
    return 0;
}
