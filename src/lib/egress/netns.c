#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include "core/util.h"
#include "egress/internal.h"
#include "egress/netns.h"

#define DNS_PORT  53
#define RULES_MAX 1024

/* The namespace's rules. nft 1.0.6 rejects `priority dstnat`
 * on the output hook, hence -100. The namespace's own loopback stays
 * local; every other TCP connection goes to the proxy port and every UDP
 * packet to port 53 to the stub (conntrack rewrites the answer's source
 * back); anything else is refused at once rather than left to time out. */
static int rules(uint16_t proxy_port, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "table inet clawbox {\n"
                     "  chain nat_out {\n"
                     "    type nat hook output priority -100; policy accept;\n"
                     "    ip daddr 127.0.0.0/8 return\n"
                     "    ip6 daddr ::1 return\n"
                     "    meta l4proto tcp redirect to :%u\n"
                     "    udp dport 53 redirect to :53\n"
                     "  }\n"
                     "  chain filter_out {\n"
                     "    type filter hook output priority 0; policy drop;\n"
                     "    ip daddr 127.0.0.0/8 accept\n"
                     "    ip6 daddr ::1 accept\n"
                     "    meta l4proto tcp reject with tcp reset\n"
                     "    reject with icmpx admin-prohibited\n"
                     "  }\n"
                     "}\n",
                     (unsigned)proxy_port);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static int load_rules(uint16_t proxy_port, struct cb_error *err)
{
    char text[RULES_MAX];
    if (rules(proxy_port, text, sizeof(text)) < 0)
        return cb_error_set(err, -ENOSPC, "nft rules do not fit");
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (nft == NULL)
        return cb_error_set(err, -ENOMEM, "libnftables: no context");
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    int rc = 0;
    if (nft_run_cmd_from_buffer(nft, text) != 0) {
        const char *e = nft_ctx_get_error_buffer(nft);
        size_t len = e != NULL ? strlen(e) : 0;
        while (len > 0 && e[len - 1] == '\n')
            len--;
        rc = cb_error_set(err, -EINVAL, "loading the nft rules: %.*s", (int)len,
                          len > 0 ? e : "libnftables failed");
    }
    nft_ctx_free(nft);
    return rc;
}

/* A nonblocking, close-on-exec socket bound to the loopback address of
 * its family, listening when it is TCP. */
static int bound_socket(int family, int type, uint16_t port, const char *what, struct cb_error *err)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cb_error_set(err, -errno, "%s: socket: %s", what, strerror(errno));
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int one = 1;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
        (type == SOCK_STREAM && listen(fd, CB_EGRESS_BACKLOG) < 0)) {
        int e = errno;
        close(fd);
        return cb_error_set(err, -e, "%s: %s", what, strerror(e));
    }
    return fd;
}

static int open_sockets(struct cb_egress_netns *ns, struct cb_error *err)
{
    int *fds[] = {&ns->tcp4, &ns->tcp6, &ns->dns4, &ns->dns6};
    static const char *const what[] = {"proxy listener 127.0.0.1", "proxy listener ::1",
                                       "DNS socket 127.0.0.1:53", "DNS socket [::1]:53"};
    for (size_t i = 0; i < CB_ARRAY_LEN(fds); i++) {
        bool tcp = i < 2;
        int fd = bound_socket(i % 2 == 0 ? AF_INET : AF_INET6, tcp ? SOCK_STREAM : SOCK_DGRAM,
                              tcp ? ns->proxy_port : DNS_PORT, what[i], err);
        if (fd < 0)
            return fd;
        *fds[i] = fd;
    }
    return 0;
}

/* Bind-mounts the calling thread's network namespace onto ns->path, a
 * new file, as `ip netns add` does. */
static int pin(struct cb_egress_netns *ns, struct cb_error *err)
{
    int fd = open(ns->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0)
        return cb_error_set(err, -errno, "creating the file: %s", strerror(errno));
    close(fd);
    if (mount("/proc/thread-self/ns/net", ns->path, "none", MS_BIND, NULL) < 0) {
        int e = errno;
        unlink(ns->path);
        return cb_error_set(err, -e, "bind-mounting the namespace: %s", strerror(e));
    }
    return 0;
}

static void unpin(const char *path)
{
    umount2(path, MNT_DETACH);
    unlink(path);
}

/* Closes the fds still held, removes the namespace file when it is ours
 * and frees ns. */
static void release_netns(struct cb_egress_netns *ns, bool pinned)
{
    int fds[] = {ns->tcp4, ns->tcp6, ns->dns4, ns->dns6};
    for (size_t i = 0; i < CB_ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (pinned)
        unpin(ns->path);
    free(ns->path);
    free(ns);
}

struct netns_job {
    struct cb_egress_netns *ns;
    struct cb_error *err;
    int rc;
    bool pinned; /* ns->path is ours to remove */
};

/* The helper thread: every step runs in its new namespace, which the
 * mount and the sockets keep alive once it exits. */
static void *make_namespace(void *arg)
{
    struct netns_job *j = arg;
    if (unshare(CLONE_NEWNET) < 0) {
        j->rc = cb_error_set(j->err, -errno, "unshare(CLONE_NEWNET): %s", strerror(errno));
        return NULL;
    }
    j->rc = pin(j->ns, j->err);
    if (j->rc < 0)
        return NULL;
    j->pinned = true;
    j->rc = cb__egress_rtnl_setup(j->err);
    if (j->rc == 0)
        j->rc = load_rules(j->ns->proxy_port, j->err);
    if (j->rc == 0)
        j->rc = open_sockets(j->ns, j->err);
    return NULL;
}

int cb_egress_netns_create(const struct cb_egress_netns_opts *opts, struct cb_egress_netns **out,
                           struct cb_error *err)
{
    *out = NULL;
    if (opts->dir == NULL || opts->dir[0] != '/' || !cb_name_valid(opts->name))
        return cb_error_set(err, -EINVAL,
                            "network namespace: needs an absolute directory and a valid name");
    uint16_t port = opts->proxy_port != 0 ? opts->proxy_port : CB_EGRESS_PROXY_PORT;
    if (port == DNS_PORT)
        return cb_error_set(err, -EINVAL, "network namespace: the proxy port cannot be 53");
    struct cb_egress_netns *ns = cb_xcalloc(1, sizeof(*ns));
    ns->path = cb_xasprintf("%s/%s", opts->dir, opts->name);
    ns->tcp4 = ns->tcp6 = ns->dns4 = ns->dns6 = -1;
    ns->proxy_port = port;
    struct netns_job j = {.ns = ns, .err = err};
    pthread_t t;
    int e = pthread_create(&t, NULL, make_namespace, &j);
    if (e != 0) {
        j.rc = cb_error_set(err, -e, "network namespace: thread: %s", strerror(e));
    } else {
        pthread_join(t, NULL);
    }
    if (j.rc < 0) {
        cb_error_prefix(err, "network namespace %s", ns->path);
        release_netns(ns, j.pinned);
        return j.rc;
    }
    *out = ns;
    return 0;
}

int cb_egress_netns_join(const char *path, struct cb_error *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd < 0 || setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
    if (fd >= 0)
        close(fd);
    return rc < 0
               ? cb_error_set(err, rc, "joining the network namespace %s: %s", path, strerror(-rc))
               : 0;
}

void cb_egress_netns_remove(const char *path)
{
    unpin(path);
}

void cb_egress_netns_destroy(struct cb_egress_netns *ns)
{
    if (ns != NULL)
        release_netns(ns, true);
}
