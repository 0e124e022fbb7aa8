/* A container's proxy socket: its directory and socket, the accept
 * service that all sockets share, and the end of it all (stop, drain).
 * Serving a connection is in proxysock_conn.c. */
#include "containers/proxysock.h"
#include "containers/proxysock_internal.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "egress/netns.h"
#include "egress/pool.h"
#include "egress/tls_ca.h"
#include "egress/tls_intercept.h"
#include "sandbox/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCK_NAME "proxy.sock"
/* The interception CA's certificate, beside the socket (tls = intercept). */
#define CA_NAME "ca.pem"
/* Open connections: per socket, and for all sockets together (each is a
 * thread while it is open). Past either, a connection gets a 503. */
#define MAX_CONNS_PER_SOCKET 32
/* A container's transparent connections, counted apart from its socket's:
 * programs that know nothing of the proxy open many at once (a package
 * manager's parallel downloads). */
#define MAX_EGRESS_CONNS 64
#define MAX_CONNS        512
/* Threads kept waiting for the next connection once theirs ended, for
 * all sockets together, and how long one waits before it exits. A new
 * thread runs the pipeline on a cold stack and malloc cache, which cost
 * about 200 us per request on the 2-core test VM (curl makes a new
 * connection per command). */
#define MAX_IDLE_THREADS  4
#define THREAD_IDLE_MS    10000
#define PROXYSOCK_BACKLOG 64
#define EPOLL_BATCH       16
/* Names a container's DNS stub remembers (egress/pool.h): past this the
 * least recently used gives its address up. */
#define POOL_NAMES 4096

/* The accept service: one thread and one epoll set for every socket,
 * started with the first socket and kept for the life of the process. */
static struct {
    pthread_once_t once;
    int init_error; /* negative errno when the service could not start */
    pthread_mutex_t mu;
    pthread_cond_t idle; /* conns dropped to 0 (CLOCK_MONOTONIC) */
    int epfd;
    int evfd;            /* wakes the thread to forget retired sockets */
    unsigned conns;      /* open connections of every socket */
    pthread_cond_t work; /* a connection was queued (CLOCK_MONOTONIC) */
    unsigned idle_threads;
    struct cb__ct_conn *queue, *queue_last; /* for idle threads */
    unsigned queued;
    /* Stopped sockets whose listener was taken out of the epoll set; the
     * thread drops their reference after the batch of events it holds,
     * which may still name them. */
    struct cb_ct_proxy *retired;
} svc = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .evfd = -1};

static void proxy_unref(struct cb_ct_proxy *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (size_t i = 0; i < CB__CT_LSN_MAX; i++)
        if (p->lsn[i].fd >= 0)
            close(p->lsn[i].fd);
    cb_egress_netns_destroy(p->netns);
    cb_egress_pool_free(p->pool);
    SSL_CTX_free(p->tls_ctx);
    cb_egress_ca_free(p->ca);
    cb_manifest_unref(p->manifest);
    json_decref(p->granted);
    explicit_bzero(p->token, sizeof(p->token));
    pthread_cond_destroy(&p->calls_done);
    pthread_mutex_destroy(&p->mu);
    free(p->id);
    free(p->dir);
    free(p->sock_path);
    free(p);
}

/* ------------------------------ requests ------------------------------ */

bool cb__ct_proxy_token_ok(struct cb_ct_proxy *p, const char *value, size_t len)
{
    if (value == NULL || len < 7 || strncasecmp(value, "Bearer ", 7) != 0)
        return false;
    bool ok = cb_const_time_eq(value + 7, len - 7, p->token, CB_CT_PROXY_TOKEN_LEN);
    return ok && !atomic_load(&p->revoked);
}

bool cb__ct_proxy_note_request(struct cb_ct_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    bool live = !p->stopped;
    if (live)
        p->calls++;
    pthread_mutex_unlock(&p->mu);
    if (!live)
        return false;
    if (p->on_request != NULL)
        p->on_request(p->ud);
    pthread_mutex_lock(&p->mu);
    if (--p->calls == 0)
        pthread_cond_broadcast(&p->calls_done);
    pthread_mutex_unlock(&p->mu);
    return true;
}

bool cb__ct_proxy_stopped(struct cb_ct_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    bool s = p->stopped;
    pthread_mutex_unlock(&p->mu);
    return s;
}

const char *cb_ct_proxy_netns_path(const struct cb_ct_proxy *p)
{
    return p->netns != NULL ? p->netns->path : NULL;
}

void cb_ct_proxy_revoke(struct cb_ct_proxy *p)
{
    atomic_store(&p->revoked, true);
}

/* ---------------------------- connections ---------------------------- */

/* Ends a connection: out of its socket's list, closed, and counted out
 * of the service (after the socket's reference is dropped, so that a
 * drain that saw no connections left also saw every socket freed). */
static void conn_end(struct cb__ct_conn *c)
{
    struct cb_ct_proxy *p = c->p;
    pthread_mutex_lock(&p->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->nconns[c->transparent]--;
    pthread_mutex_unlock(&p->mu);
    close(c->fd);
    free(c);
    proxy_unref(p);
    pthread_mutex_lock(&svc.mu);
    if (--svc.conns == 0)
        pthread_cond_broadcast(&svc.idle);
    pthread_mutex_unlock(&svc.mu);
}

/* The next queued connection, after waiting up to THREAD_IDLE_MS as one
 * of the idle threads; NULL when there are enough of those already or
 * none came. */
static struct cb__ct_conn *next_conn(void)
{
    struct timespec until = cb_mono_deadline(THREAD_IDLE_MS);
    pthread_mutex_lock(&svc.mu);
    if (svc.queue == NULL && svc.idle_threads >= MAX_IDLE_THREADS) {
        pthread_mutex_unlock(&svc.mu);
        return NULL;
    }
    svc.idle_threads++;
    while (svc.queue == NULL && pthread_cond_timedwait(&svc.work, &svc.mu, &until) != ETIMEDOUT) {
    }
    svc.idle_threads--;
    struct cb__ct_conn *c = svc.queue;
    if (c != NULL) {
        svc.queue = c->queue_next;
        if (svc.queue == NULL)
            svc.queue_last = NULL;
        svc.queued--;
    }
    pthread_mutex_unlock(&svc.mu);
    return c;
}

static void *conn_main(void *arg)
{
    for (struct cb__ct_conn *c = arg; c != NULL; c = next_conn()) {
        if (c->transparent)
            cb__ct_egress_serve(c);
        else
            cb__ct_conn_serve(c, NULL, NULL);
        conn_end(c);
    }
    return NULL;
}

/* Hands c to an idle thread, if one is free. Called with svc.mu held. */
static bool queue_conn(struct cb__ct_conn *c)
{
    if (svc.idle_threads <= svc.queued)
        return false;
    if (svc.queue_last)
        svc.queue_last->queue_next = c;
    else
        svc.queue = c;
    svc.queue_last = c;
    svc.queued++;
    pthread_cond_signal(&svc.work);
    return true;
}

/* Whether the peer is root or one of the container's uids. */
static bool peer_allowed(const struct cb_ct_proxy *p, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return false;
    if (cred.uid == 0 || (cred.uid >= p->peer_uid_min && cred.uid <= p->peer_uid_max))
        return true;
    cb_log(CB_LOG_WARN,
           "proxy socket of container %s: refused a connection from uid %u (pid %d), which is "
           "neither root nor one of the container's uids %u-%u",
           p->id, (unsigned)cred.uid, (int)cred.pid, (unsigned)p->peer_uid_min,
           (unsigned)p->peer_uid_max);
    return false;
}

static void refuse_busy(int fd)
{
    static const char body[] =
        "{\"error\":\"too many connections to the proxy socket; retry shortly\"}";
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
    (void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int spawn_conn(struct cb__ct_conn *c)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    return r;
}

/* Serves a new connection on an idle thread or a new one. Called with
 * svc.mu and p->mu held. */
static void conn_start(struct cb_ct_proxy *p, int fd, bool transparent)
{
    unsigned cap = transparent ? MAX_EGRESS_CONNS : MAX_CONNS_PER_SOCKET;
    if (p->nconns[transparent] >= cap || svc.conns >= MAX_CONNS) {
        if (!transparent) /* a transparent client may not speak HTTP */
            refuse_busy(fd);
        close(fd);
        return;
    }
    struct cb__ct_conn *c = cb_xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->transparent = transparent;
    c->p = p;
    atomic_fetch_add(&p->refs, 1);
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    p->nconns[transparent]++;
    svc.conns++;
    if (queue_conn(c))
        return;
    int r = spawn_conn(c);
    if (r == 0)
        return;
    cb_log(CB_LOG_ERROR, "proxy socket of container %s: cannot start a thread: %s", p->id,
           strerror(r));
    p->conns = c->next;
    if (c->next)
        c->next->prev = NULL;
    p->nconns[transparent]--;
    svc.conns--;
    atomic_fetch_sub(&p->refs, 1); /* the owner's reference remains */
    if (!transparent)
        refuse_busy(fd);
    close(fd);
    free(c);
}

/* Accepts what is waiting on listener l (edge-triggered: all of it).
 * Called with svc.mu held. A transparent listener's peers are the
 * container's namespace itself: no credentials to check. */
static void accept_all(struct cb__ct_lsn *l)
{
    struct cb_ct_proxy *p = l->p;
    bool transparent = l->kind == CB__CT_LSN_TCP;
    pthread_mutex_lock(&p->mu);
    while (!p->stopped) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                cb_log(CB_LOG_ERROR, "proxy socket of container %s: accept: %s", p->id,
                       strerror(errno));
            break;
        }
        if (!transparent && !peer_allowed(p, fd)) {
            close(fd);
            continue;
        }
        /* An answer's last segment must not wait for the client's delayed
         * ACK of the one before (40 ms a request on keep-alive). */
        int one = 1;
        if (transparent)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_start(p, fd, transparent);
    }
    pthread_mutex_unlock(&p->mu);
}

/* -------------------------- accept service --------------------------- */

static void *service_main(void *arg)
{
    (void)arg;
    struct epoll_event ev[EPOLL_BATCH];
    for (;;) {
        int n = epoll_wait(svc.epfd, ev, EPOLL_BATCH, -1);
        if (n < 0 && errno != EINTR) {
            cb_log(CB_LOG_ERROR, "proxy sockets: epoll_wait: %s", strerror(errno));
            sleep(1);
        }
        pthread_mutex_lock(&svc.mu);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL) {
                uint64_t v;
                (void)!read(svc.evfd, &v, sizeof(v));
            } else if (((struct cb__ct_lsn *)ev[i].data.ptr)->kind == CB__CT_LSN_DNS) {
                cb__ct_dns_serve(ev[i].data.ptr);
            } else {
                accept_all(ev[i].data.ptr);
            }
        }
        struct cb_ct_proxy *retired = svc.retired;
        svc.retired = NULL;
        pthread_mutex_unlock(&svc.mu);
        /* Every p named here is alive: a retired one is dropped below. */
        for (int i = 0; i < n; i++) {
            struct cb__ct_lsn *l = ev[i].data.ptr;
            if (l != NULL && l->kind == CB__CT_LSN_DNS)
                cb__ct_dns_flush(l->p);
        }
        while (retired != NULL) {
            struct cb_ct_proxy *next = retired->retired_next;
            proxy_unref(retired);
            retired = next;
        }
    }
    return NULL;
}

static void service_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&svc.idle, &ca);
    pthread_cond_init(&svc.work, &ca);
    pthread_condattr_destroy(&ca);
    svc.epfd = epoll_create1(EPOLL_CLOEXEC);
    svc.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (svc.epfd < 0 || svc.evfd < 0 || epoll_ctl(svc.epfd, EPOLL_CTL_ADD, svc.evfd, &ev) < 0) {
        svc.init_error = -errno;
        return;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int r = pthread_create(&t, &attr, service_main, NULL);
    pthread_attr_destroy(&attr);
    if (r != 0)
        svc.init_error = -r;
}

static int service_add(struct cb_ct_proxy *p, struct cb_error *err)
{
    pthread_once(&svc.once, service_init);
    if (svc.init_error < 0)
        return cb_error_set(err, svc.init_error, "cannot start the proxy socket service: %s",
                            strerror(-svc.init_error));
    atomic_fetch_add(&p->refs, 1);
    pthread_mutex_lock(&svc.mu);
    int r = 0;
    size_t i;
    for (i = 0; i < CB__CT_LSN_MAX && r == 0; i++) {
        struct cb__ct_lsn *l = &p->lsn[i];
        /* A DNS socket is served a batch at a time: level-triggered. */
        struct epoll_event ev = {.events = l->kind == CB__CT_LSN_DNS ? EPOLLIN : EPOLLIN | EPOLLET,
                                 .data.ptr = l};
        if (l->fd >= 0 && epoll_ctl(svc.epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
            r = -errno;
    }
    while (r < 0 && i-- > 0)
        if (p->lsn[i].fd >= 0)
            epoll_ctl(svc.epfd, EPOLL_CTL_DEL, p->lsn[i].fd, NULL);
    pthread_mutex_unlock(&svc.mu);
    if (r == 0)
        return 0;
    atomic_fetch_sub(&p->refs, 1);
    return cb_error_set(err, r, "epoll_ctl: %s", strerror(-r));
}

/* Takes p's listeners out of the epoll set and closes them; the service
 * drops its reference once it holds no event naming p. */
static void service_remove(struct cb_ct_proxy *p)
{
    pthread_mutex_lock(&svc.mu);
    for (size_t i = 0; i < CB__CT_LSN_MAX; i++) {
        if (p->lsn[i].fd < 0)
            continue;
        epoll_ctl(svc.epfd, EPOLL_CTL_DEL, p->lsn[i].fd, NULL);
        close(p->lsn[i].fd);
        p->lsn[i].fd = -1;
    }
    p->retired_next = svc.retired;
    svc.retired = p;
    pthread_mutex_unlock(&svc.mu);
    uint64_t one = 1;
    (void)!write(svc.evfd, &one, sizeof(one));
}

/* ---------------------------- the socket ----------------------------- */

static int check_options(const struct cb_ct_proxy_options *o, struct cb_error *err)
{
    if (o->container_id == NULL || o->container_id[0] == '\0')
        return cb_error_set(err, -EINVAL, "no container id");
    if (o->dir == NULL || o->dir[0] != '/')
        return cb_error_set(err, -EINVAL, "the socket directory must be an absolute path");
    if (strlen(o->dir) + sizeof("/" SOCK_NAME) > sizeof(((struct sockaddr_un *)0)->sun_path))
        return cb_error_set(err, -ENAMETOOLONG, "socket path %s/%s is longer than %zu bytes",
                            o->dir, SOCK_NAME, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    if (o->token == NULL || strlen(o->token) != CB_CT_PROXY_TOKEN_LEN)
        return cb_error_set(err, -EINVAL, "the token must be %d hex digits", CB_CT_PROXY_TOKEN_LEN);
    for (size_t i = 0; i < CB_CT_PROXY_TOKEN_LEN; i++)
        if (cb_hex_digit((unsigned char)o->token[i]) < 0)
            return cb_error_set(err, -EINVAL, "the token must be %d hex digits",
                                CB_CT_PROXY_TOKEN_LEN);
    if (o->manifest == NULL || o->proxy == NULL)
        return cb_error_set(err, -EINVAL, "no manifest or no proxy");
    if (o->granted != NULL && !json_is_array(o->granted))
        return cb_error_set(err, -EINVAL, "granted credentials must be an array of names");
    if (o->peer_uid_min > o->peer_uid_max)
        return cb_error_set(err, -EINVAL, "peer uid range %u-%u is empty",
                            (unsigned)o->peer_uid_min, (unsigned)o->peer_uid_max);
    return 0;
}

/* Opens the directory, making it if needed, closed to everyone but its
 * owner while the socket is set up (0700). An existing directory is
 * reused (not a symlink), and a stale socket in it removed. */
static int open_dir(const char *dir, int *out, struct cb_error *err)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return cb_error_set(err, -errno, "cannot create %s: %s", dir, strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cb_error_set(err, -errno, "cannot open %s: %s", dir, strerror(errno));
    struct stat st;
    int r = fchmod(fd, 0700) < 0 ? -errno : 0;
    if (r == 0 && fstatat(fd, SOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode))
            r = -EEXIST;
        else if (unlinkat(fd, SOCK_NAME, 0) < 0)
            r = -errno;
    }
    if (r < 0) {
        close(fd);
        return cb_error_set(err, r, "cannot prepare %s: %s", dir,
                            r == -EEXIST ? SOCK_NAME " exists and is not a socket" : strerror(-r));
    }
    *out = fd;
    return 0;
}

/* Binds and listens on dir/proxy.sock with its owner and mode set before
 * listen, then opens the directory to the group. Only the directory's
 * owner could reach the socket in between (0700). */
static int make_socket(struct cb_ct_proxy *p, int dirfd, gid_t gid, struct cb_error *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, p->sock_path, strlen(p->sock_path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return cb_error_set(err, -errno, "socket: %s", strerror(errno));
    p->lsn[0].fd = s;
    const char *step = "bind";
    if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        goto fail;
    step = "chown";
    if (fchownat(dirfd, SOCK_NAME, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) < 0)
        goto fail;
    step = "chmod";
    if (fchmodat(dirfd, SOCK_NAME, 0660, 0) < 0)
        goto fail;
    step = "listen";
    if (listen(s, PROXYSOCK_BACKLOG) < 0)
        goto fail;
    step = "chown of the directory";
    if (fchown(dirfd, geteuid(), gid) < 0)
        goto fail;
    step = "chmod of the directory";
    if (fchmod(dirfd, 0710) < 0)
        goto fail;
    return 0;
fail:
    return cb_error_set(err, -errno, "%s of %s: %s", step, p->sock_path, strerror(errno));
}

/* Takes the namespace's sockets into p's listeners. */
static void take_netns(struct cb_ct_proxy *p, struct cb_egress_netns *ns)
{
    if (ns == NULL)
        return;
    p->netns = ns;
    p->pool = cb_egress_pool_new(POOL_NAMES);
    int *fds[] = {&ns->tcp4, &ns->tcp6, &ns->dns4, &ns->dns6};
    for (size_t i = 0; i < CB_ARRAY_LEN(fds); i++) {
        p->lsn[1 + i].kind = i < 2 ? CB__CT_LSN_TCP : CB__CT_LSN_DNS;
        p->lsn[1 + i].fd = *fds[i];
        *fds[i] = -1;
    }
}

static struct cb_ct_proxy *proxy_new(const struct cb_ct_proxy_options *o)
{
    struct cb_ct_proxy *p = cb_xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->id = cb_xstrdup(o->container_id);
    p->dir = cb_xstrdup(o->dir);
    p->sock_path = cb_xasprintf("%s/%s", o->dir, SOCK_NAME);
    memcpy(p->token, o->token, CB_CT_PROXY_TOKEN_LEN);
    p->manifest = cb_manifest_ref(o->manifest);
    p->granted = o->granted ? json_deep_copy(o->granted) : json_array();
    p->proxy = o->proxy;
    p->on_request = o->on_request;
    p->ud = o->ud;
    p->peer_uid_min = o->peer_uid_min;
    p->peer_uid_max = o->peer_uid_max;
    for (size_t i = 0; i < CB__CT_LSN_MAX; i++)
        p->lsn[i] = (struct cb__ct_lsn){.p = p, .kind = CB__CT_LSN_SOCKET, .fd = -1};
    take_netns(p, o->netns);
    p->ca = o->ca;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->calls_done, NULL);
    return p;
}

/* The interception's server context, and the CA's certificate written
 * where the container finds it (readable by all: it is no secret). */
static int start_intercept(struct cb_ct_proxy *p, int dirfd, struct cb_error *err)
{
    if (p->ca == NULL)
        return 0;
    int r = cb_egress_tls_server_ctx(p->ca, &p->tls_ctx, err);
    if (r < 0)
        return r;
    size_t len;
    const char *pem = cb_egress_ca_pem(p->ca, &len);
    int fd = openat(dirfd, CA_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return cb_error_set(err, -errno, "creating %s: %s", CA_NAME, strerror(errno));
    ssize_t w = cb_write_retry(fd, pem, len);
    r = w < 0 ? (int)w : (size_t)w != len ? -EIO : fchmod(fd, 0644) < 0 ? -errno : 0;
    close(fd);
    return r < 0 ? cb_error_set(err, r, "writing %s: %s", CA_NAME, strerror(-r)) : 0;
}

int cb_ct_proxy_start(const struct cb_ct_proxy_options *o, struct cb_ct_proxy **out,
                      struct cb_error *err)
{
    int r = check_options(o, err);
    if (r < 0) {
        cb_egress_netns_destroy(o->netns);
        cb_egress_ca_free(o->ca);
        goto fail;
    }
    int dirfd = -1;
    r = open_dir(o->dir, &dirfd, err);
    if (r < 0) {
        cb_egress_netns_destroy(o->netns);
        cb_egress_ca_free(o->ca);
        goto fail;
    }
    struct cb_ct_proxy *p = proxy_new(o);
    r = make_socket(p, dirfd, o->gid, err);
    if (r == 0)
        r = start_intercept(p, dirfd, err);
    if (r == 0)
        r = service_add(p, err);
    if (r == 0) {
        close(dirfd);
        *out = p;
        return 0;
    }
    unlinkat(dirfd, SOCK_NAME, 0);
    unlinkat(dirfd, CA_NAME, 0);
    close(dirfd);
    rmdir(o->dir);
    proxy_unref(p);
fail:
    cb_error_prefix(err, "proxy socket of container %s",
                    o->container_id ? o->container_id : "(none)");
    return r;
}

void cb_ct_proxy_stop(struct cb_ct_proxy *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopped = true;
    for (struct cb__ct_conn *c = p->conns; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (p->calls > 0)
        pthread_cond_wait(&p->calls_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    service_remove(p);
    /* The namespace file is a mount point in the container's directory,
     * which the caller removes next. */
    cb_egress_netns_destroy(p->netns);
    p->netns = NULL;
    if (unlink(p->sock_path) < 0 && errno != ENOENT)
        cb_log(CB_LOG_WARN, "removing %s: %s", p->sock_path, strerror(errno));
    if (p->ca != NULL) {
        char *ca = cb_xasprintf("%s/%s", p->dir, CA_NAME);
        unlink(ca);
        free(ca);
    }
    if (rmdir(p->dir) < 0 && errno != ENOENT)
        cb_log(CB_LOG_WARN, "removing %s: %s", p->dir, strerror(errno));
    proxy_unref(p);
}

unsigned cb_ct_proxy_drain(uint64_t grace_ms)
{
    struct timespec until = cb_mono_deadline(grace_ms);
    pthread_mutex_lock(&svc.mu);
    while (svc.conns > 0 && pthread_cond_timedwait(&svc.idle, &svc.mu, &until) != ETIMEDOUT) {
    }
    unsigned left = svc.conns;
    pthread_mutex_unlock(&svc.mu);
    return left;
}
