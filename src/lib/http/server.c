/* The API server: listening sockets, the I/O threads and their event
 * loops, and the lifecycle (start, quiesce, drain, stop). What happens on
 * a connection is in conn.c, what a request means in exchange.c. */
#include "http/server.h"
#include "core/log.h"
#include "core/util.h"
#include "http/internal.h"
#include "http/listen.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>

/* File descriptors kept for everything but API connections: the state
 * database, the audit log, workers, upstream connections, watches, and
 * the connections beyond max_connections (refused ones draining, the
 * Unix socket's own slots; see conn.c). */
#define FD_RESERVE 1024u
/* After accept fails for lack of descriptors, a thread stops accepting for
 * this long instead of spinning on a listening socket that stays ready. */
#define ACCEPT_PAUSE_MS 100u
/* How long stop waits for the I/O threads to finish their connections. */
#define STOP_WAIT_MS 1000u
#define MAX_EVENTS   64
#define MAX_ACCEPTS  64

void cb__note_refusal(struct cb_http_server *s, const char *reason, const char *msg)
{
    _Atomic uint64_t *last = &s->refusal_logged[strcmp(reason, "limit") == 0];
    uint64_t now = cb_now_mono_ns();
    uint64_t prev = atomic_load(last);
    if ((prev != 0 && now - prev < 60ull * 1000000000u) ||
        !atomic_compare_exchange_strong(last, &prev, now))
        return;
    cb_log(CB_LOG_WARN,
           "refusing connections (%s): %s; further refusals are counted in "
           "clawbox_http_connections_refused_total",
           reason, msg);
}

static void register_metrics(struct cb_http_server *s)
{
    static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30};
    struct cb_metrics *m = s->opts.metrics;
    if (m == NULL)
        return;
    s->m_requests = cb_metrics_counter(m, "clawbox_http_requests_total",
                                       "HTTP requests served, by route pattern and status.",
                                       "route,status", 512);
    s->m_duration = cb_metrics_histogram(m, "clawbox_http_request_duration_seconds",
                                         "Time from request start to response completion.",
                                         "route,status", buckets, CB_ARRAY_LEN(buckets), 512);
    s->m_open = cb_metrics_gauge(m, "clawbox_http_connections", "Open API connections.", NULL, 0);
    s->m_refused = cb_metrics_counter(m, "clawbox_http_connections_refused_total",
                                      "API connections refused at accept, by cap.", "reason", 4);
    s->m_timeouts =
        cb_metrics_counter(m, "clawbox_http_timeouts_total",
                           "API connections closed by a deadline, by phase.", "phase", 8);
}

/* Raises the soft limit on open files so that max_connections fit beside
 * the reserve; returns how many connections the limit allows. */
static unsigned fit_fd_limit(unsigned want)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)want + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return want;
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            cb_log(CB_LOG_INFO, "raised the open-file limit from %llu to %llu",
                   (unsigned long long)old, (unsigned long long)rl.rlim_cur);
        else
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need)
        return want;
    unsigned fit = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE)
                                                : (unsigned)(rl.rlim_cur / 2);
    cb_log(CB_LOG_WARN,
           "the open-file limit (%llu, hard limit %llu) allows %u API connections, not "
           "server.max_connections = %u; raise the limit (ulimit -n, LimitNOFILE=)",
           (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, fit, want);
    return fit;
}

static int listen_all(struct cb_http_server *s, struct cb_error *err)
{
    int r = cb_listen_tcp(s->opts.host, s->opts.port, &s->listen_fd[0], err);
    if (r < 0)
        return r;
    s->port = cb__listen_port(s->listen_fd[0]);
    if (s->opts.unix_socket == NULL)
        return 0;
    r = cb__listen_unix(s->opts.unix_socket, &s->listen_fd[1], err);
    if (r == 0) {
        s->listen_unix[1] = true;
        s->unix_path = cb_xstrdup(s->opts.unix_socket);
    }
    return r;
}

static void watch_listeners(struct cb__io *io)
{
    struct cb_http_server *s = io->srv;
    for (int i = 0; i < 2; i++) {
        if (s->listen_fd[i] < 0)
            continue;
        /* EPOLLEXCLUSIVE: one thread wakes per new connection, not all. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &s->listen_fd[i]};
        epoll_ctl(io->epfd, EPOLL_CTL_ADD, s->listen_fd[i], &ev);
    }
}

static void pause_accept(struct cb__io *io, int e)
{
    struct cb_http_server *s = io->srv;
    for (int i = 0; i < 2; i++)
        if (s->listen_fd[i] >= 0)
            epoll_ctl(io->epfd, EPOLL_CTL_DEL, s->listen_fd[i], NULL);
    io->accept_paused = cb_now_mono_ns() + ACCEPT_PAUSE_MS * 1000000u;
    cb__note_refusal(s, "limit", strerror(e));
}

static void resume_accept(struct cb__io *io)
{
    if (io->accept_paused == 0 || cb_now_mono_ns() < io->accept_paused)
        return;
    io->accept_paused = 0;
    pthread_rwlock_rdlock(&io->srv->listen_lock);
    watch_listeners(io);
    pthread_rwlock_unlock(&io->srv->listen_lock);
}

static void accept_some(struct cb__io *io, int which)
{
    struct cb_http_server *s = io->srv;
    pthread_rwlock_rdlock(&s->listen_lock);
    for (int k = 0; s->listen_fd[which] >= 0 && k < MAX_ACCEPTS; k++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(s->listen_fd[which], (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            cb__conn_accept(io, fd, (struct sockaddr *)&ss, len, s->listen_unix[which]);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            pause_accept(io, errno);
        break;
    }
    pthread_rwlock_unlock(&s->listen_lock);
}

/* Continues the connections limiter workers handed back, oldest first. */
static void take_done(struct cb__io *io)
{
    uint64_t n;
    if (read(io->evfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        cb_log(CB_LOG_ERROR, "reading an HTTP thread's eventfd: %s", strerror(errno));
    pthread_mutex_lock(&io->lock);
    struct cb__conn *list = io->done;
    io->done = NULL;
    pthread_mutex_unlock(&io->lock);
    struct cb__conn *fifo = NULL;
    while (list) {
        struct cb__conn *next = list->done_next;
        list->done_next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        struct cb__conn *next = fifo->done_next;
        cb__conn_resume(fifo);
        fifo = next;
    }
}

static void expire(struct cb__io *io)
{
    uint64_t now = cb_now_mono_ns();
    for (int k = 0; k < CB__NQ; k++)
        while (io->q[k].first != NULL && io->q[k].first->deadline <= now)
            cb__conn_expire(io->q[k].first);
}

/* Milliseconds until the next deadline (rounded up), or -1 for none.
 * While streams end after quiesce, the loop comes round every poll
 * interval to cut the ones stuck behind slow readers. */
static int next_timeout(const struct cb__io *io)
{
    uint64_t next = io->accept_paused;
    if (io->streams > 0 && atomic_load(&io->srv->quiesced))
        next = cb_now_mono_ns() + CB_HTTP_STREAM_POLL_MS * 1000000u;
    for (int k = 0; k < CB__NQ; k++)
        if (io->q[k].first && (next == 0 || io->q[k].first->deadline < next))
            next = io->q[k].first->deadline;
    if (next == 0)
        return -1;
    uint64_t now = cb_now_mono_ns();
    if (next <= now)
        return 0;
    uint64_t ms = (next - now + 999999u) / 1000000u;
    return ms > 60000 ? 60000 : (int)ms;
}

/* On stop: every connection not waiting for a worker goes. */
static void close_idle(struct cb__io *io)
{
    struct cb__conn *c = io->conns;
    while (c) {
        struct cb__conn *next = c->next;
        if (c->state != CB__RUNNING)
            cb__conn_close(c);
        c = next;
    }
}

/* After quiesce: streamed bodies end (see cb__conn_end_stream). */
static void end_streams(struct cb__io *io)
{
    struct cb__conn *c = io->conns;
    while (c && io->streams > 0) {
        struct cb__conn *next = c->next;
        if (c->state == CB__STREAM)
            cb__conn_end_stream(c);
        c = next;
    }
}

static void handle(struct cb__io *io, const struct epoll_event *ev)
{
    struct cb_http_server *s = io->srv;
    void *p = ev->data.ptr;
    if (p == &io->evfd)
        take_done(io);
    else if (p == &s->listen_fd[0] || p == &s->listen_fd[1])
        accept_some(io, p == &s->listen_fd[0] ? 0 : 1);
    else
        cb__conn_event(p, ev->events);
}

static void *io_main(void *arg)
{
    struct cb__io *io = arg;
    struct cb_http_server *s = io->srv;
    struct epoll_event ev[MAX_EVENTS];
    for (;;) {
        if (atomic_load(&s->stopping)) {
            close_idle(io);
            if (io->running == 0)
                break;
        }
        int n = epoll_wait(io->epfd, ev, MAX_EVENTS, next_timeout(io));
        for (int i = 0; i < n; i++)
            handle(io, &ev[i]);
        expire(io);
        resume_accept(io);
        if (io->streams > 0 && atomic_load(&s->quiesced))
            end_streams(io);
    }
    return NULL;
}

static int init_io(struct cb_http_server *s, struct cb__io *io, struct cb_error *err)
{
    io->srv = s;
    io->epfd = epoll_create1(EPOLL_CLOEXEC);
    io->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&io->lock, NULL);
    if (io->epfd < 0 || io->evfd < 0)
        return cb_error_set(err, -errno, "epoll: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &io->evfd};
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->evfd, &ev) < 0)
        return cb_error_set(err, -errno, "epoll: %s", strerror(errno));
    watch_listeners(io);
    int r = pthread_create(&io->thread, NULL, io_main, io);
    if (r != 0)
        return cb_error_set(err, -r, "starting an HTTP thread: %s", strerror(r));
    io->started = true;
    return 0;
}

static unsigned io_threads(const struct cb_http_server_options *o)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (o->threads > 0)
        return o->threads;
    return n > 0 ? (unsigned)n : 1;
}

static int start_threads(struct cb_http_server *s, struct cb_error *err)
{
    s->nio = io_threads(&s->opts);
    s->io = cb_xcalloc(s->nio, sizeof(*s->io));
    /* All first: should one fail, stop closes only what was opened. */
    for (unsigned i = 0; i < s->nio; i++)
        s->io[i].epfd = s->io[i].evfd = -1;
    for (unsigned i = 0; i < s->nio; i++) {
        int r = init_io(s, &s->io[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

int cb_http_server_start(const struct cb_http_server_options *opts, const struct cb_router *router,
                         struct cb_http_server **out, struct cb_error *err)
{
    struct cb_http_server *s = cb_xcalloc(1, sizeof(*s));
    s->opts = *opts;
    s->router = router;
    s->listen_fd[0] = s->listen_fd[1] = -1;
    pthread_rwlock_init(&s->listen_lock, NULL);
    register_metrics(s);
    s->max_connections = fit_fd_limit(opts->max_connections);
    s->peers = cb_peers_new(opts->max_connections_per_address);
    int r = listen_all(s, err);
    if (r == 0)
        r = cb__limiter_new(opts->max_concurrent, opts->max_queued, opts->queue_timeout_ms,
                            &s->limiter, err);
    if (r == 0)
        r = start_threads(s, err);
    if (r < 0) {
        cb_http_server_stop(s);
        return r;
    }
    *out = s;
    return 0;
}

uint16_t cb_http_server_port(const struct cb_http_server *s)
{
    return s->port;
}

void cb_http_server_quiesce(struct cb_http_server *s)
{
    /* Under the write lock no thread is inside accept, so a descriptor
     * number reused after close never reaches one. */
    atomic_store(&s->quiesced, true);
    pthread_rwlock_wrlock(&s->listen_lock);
    for (int i = 0; i < 2; i++) {
        if (s->listen_fd[i] < 0)
            continue;
        for (unsigned k = 0; k < s->nio; k++)
            if (s->io[k].epfd >= 0)
                epoll_ctl(s->io[k].epfd, EPOLL_CTL_DEL, s->listen_fd[i], NULL);
        /* A forked child may hold the socket too: shutdown stops the
         * listening for all holders, close alone would not. */
        shutdown(s->listen_fd[i], SHUT_RDWR);
        close(s->listen_fd[i]);
        s->listen_fd[i] = -1;
    }
    pthread_rwlock_unlock(&s->listen_lock);
    /* Wakes the threads so that streamed bodies end now (io_main). */
    uint64_t one = 1;
    for (unsigned k = 0; k < s->nio; k++)
        if (s->io[k].started && write(s->io[k].evfd, &one, sizeof(one)) < 0)
            cb_log(CB_LOG_ERROR, "waking an HTTP thread: %s", strerror(errno));
}

unsigned cb_http_server_drain(struct cb_http_server *s, uint64_t grace_ms)
{
    uint64_t deadline = cb_now_mono_ns() + grace_ms * 1000000u;
    struct timespec tick = {0, 10 * 1000000};
    while (atomic_load(&s->inflight) > 0 && cb_now_mono_ns() < deadline)
        nanosleep(&tick, NULL);
    return atomic_load(&s->inflight);
}

/* Stops the I/O threads. Returns false when one still waits for a worker
 * after STOP_WAIT_MS: a handler is still running, so nothing may be freed. */
static bool stop_threads(struct cb_http_server *s)
{
    uint64_t one = 1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_WAIT_MS / 1000;
    atomic_store(&s->stopping, true);
    for (unsigned i = 0; i < s->nio; i++)
        if (s->io[i].started && write(s->io[i].evfd, &one, sizeof(one)) < 0)
            cb_log(CB_LOG_ERROR, "waking an HTTP thread: %s", strerror(errno));
    for (unsigned i = 0; i < s->nio; i++) {
        if (s->io[i].started && pthread_timedjoin_np(s->io[i].thread, NULL, &until) != 0)
            return false;
        s->io[i].started = false;
    }
    return true;
}

bool cb_http_server_stop(struct cb_http_server *s)
{
    if (s == NULL)
        return true;
    if (s->unix_path)
        unlink(s->unix_path);
    cb_http_server_quiesce(s);
    if (s->io != NULL && !stop_threads(s))
        return false;
    for (unsigned i = 0; s->io != NULL && i < s->nio; i++) {
        if (s->io[i].epfd >= 0)
            close(s->io[i].epfd);
        if (s->io[i].evfd >= 0)
            close(s->io[i].evfd);
        pthread_mutex_destroy(&s->io[i].lock);
    }
    cb__limiter_free(s->limiter);
    cb__peers_free(s->peers);
    pthread_rwlock_destroy(&s->listen_lock);
    free(s->io);
    free(s->unix_path);
    free(s);
    return true;
}
