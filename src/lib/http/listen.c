#include "http/listen.h"
#include "core/util.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define LISTEN_BACKLOG 1024

int cb_listen_tcp(const char *host, uint16_t port, int *fd, struct cb_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int gr = getaddrinfo(host, portstr, &hints, &res);
    if (gr != 0)
        return cb_error_set(err, -EINVAL, "cannot resolve listen address %s: %s", host,
                            gai_strerror(gr));
    int s = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
        freeaddrinfo(res);
        return cb_error_set(err, -errno, "socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, res->ai_addr, res->ai_addrlen) < 0 || listen(s, LISTEN_BACKLOG) < 0) {
        int e = errno;
        close(s);
        freeaddrinfo(res);
        return cb_error_set(err, -e, "cannot listen on %s:%u: %s%s", host, port, strerror(e),
                            e == EADDRINUSE ? " (is another server running there? choose another "
                                              "port with serve --port N or [server] port)"
                                            : "");
    }
    freeaddrinfo(res);
    *fd = s;
    return 0;
}

uint16_t cb__listen_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Whether some process accepts connections on the socket at addr. */
static bool socket_is_live(const struct sockaddr_un *addr)
{
    _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return s >= 0 && connect(s, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
}

/* Removes a stale socket at the path; refuses anything else. */
static int clear_path(const struct sockaddr_un *addr, struct cb_error *err)
{
    struct stat st;
    const char *path = addr->sun_path;
    if (lstat(path, &st) < 0)
        return errno == ENOENT
                   ? 0
                   : cb_error_set(err, -errno, "unix socket %s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return cb_error_set(err, -EEXIST,
                            "unix socket path %s exists and is not a socket; refusing to "
                            "delete it",
                            path);
    if (socket_is_live(addr))
        return cb_error_set(err, -EADDRINUSE, "unix socket %s is in use by another running server",
                            path);
    if (unlink(path) < 0)
        return cb_error_set(err, -errno, "removing stale socket %s: %s", path, strerror(errno));
    return 0;
}

int cb__listen_unix(const char *path, int *fd, struct cb_error *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return cb_error_set(err, -ENAMETOOLONG, "unix socket path is longer than %zu bytes: %s",
                            sizeof(addr.sun_path) - 1, path);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int r = clear_path(&addr, err);
    if (r < 0)
        return r;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return cb_error_set(err, -errno, "socket: %s", strerror(errno));
    /* The umask makes bind create the node as 0600 directly. This runs
     * during start-up, before any other thread creates files. */
    mode_t old = umask(0177);
    int br = bind(s, (struct sockaddr *)&addr, sizeof(addr));
    int e = errno;
    umask(old);
    if (br < 0 || listen(s, LISTEN_BACKLOG) < 0) {
        e = br < 0 ? e : errno;
        close(s);
        return cb_error_set(err, -e, "cannot listen on unix socket %s: %s", path, strerror(e));
    }
    *fd = s;
    return 0;
}
