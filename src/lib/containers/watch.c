/* The watcher: one thread that sleeps in epoll on every monitor's exit
 * pipe and pidfd and wakes at the next deadline (a container's timeout, a finished
 * container's retention). Nothing is polled. Everything it changes in a
 * container happens under the manager's lock before the change is
 * announced, because a DELETE waiting for that announcement frees the
 * container right after. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "containers/images.h"
#include "containers/internal.h"
#include "containers/proxysock.h"
#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"

#define MAX_SLEEP_MS 60000
#define MAX_BATCH    16

int cb__ct_watch_add(struct cb_ct_manager *m, struct cb__ct *c)
{
    c->watch_exit.c = c->watch_gone.c = c;
    struct epoll_event ex = {.events = EPOLLIN, .data.ptr = &c->watch_exit};
    struct epoll_event gone = {.events = EPOLLIN, .data.ptr = &c->watch_gone};
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, c->run.exit_fd, &ex) < 0)
        return -errno;
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, c->run.monitor_pidfd, &gone) < 0) {
        int r = -errno;
        epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->run.exit_fd, NULL);
        return r;
    }
    return 0;
}

static void stop_watching(struct cb_ct_manager *m, int *fd)
{
    if (*fd < 0)
        return;
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

void cb__ct_unwatch(struct cb_ct_manager *m, struct cb__ct *c)
{
    stop_watching(m, &c->run.exit_fd);
    stop_watching(m, &c->run.monitor_pidfd);
}

void cb__ct_watch_poke(struct cb_ct_manager *m)
{
    uint64_t one = 1;
    if (m->wakefd >= 0 && write(m->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        cb_log(CB_LOG_WARN, "waking the container watcher: %s", strerror(errno));
}

void cb__ct_kill(struct cb_ct_manager *m, struct cb__ct *c, enum cb__ct_status as)
{
    char id[CB__CT_ID_MAX];
    pthread_mutex_lock(&m->lock);
    bool send = c->status == CB__CT_RUNNING && c->kill_as == CB__CT_NONE;
    if (send)
        c->kill_as = as;
    memcpy(id, c->id, sizeof(id));
    pthread_mutex_unlock(&m->lock);
    struct cb_error err = {0};
    /* It may have ended meanwhile: the monitor then reports that end. */
    if (send && m->be.kill(m->be.impl, id, SIGKILL, &err) < 0)
        cb_log(CB_LOG_DEBUG, "container %s: kill: %s", id, err.msg);
}

/* What an end means, and the words for it. Under m->lock. */
static void watch_judge(struct cb__ct *c, bool recorded, const char *why)
{
    if (!recorded) {
        c->status = c->kill_as != CB__CT_NONE ? c->kill_as : CB__CT_FAILED;
        c->error = cb_xasprintf("its monitor ended without recording an exit: %s", why);
        return;
    }
    if (c->kill_as != CB__CT_NONE)
        c->status = c->kill_as;
    else if (c->exit.signal == 0 && c->exit.exit_code == 0)
        c->status = CB__CT_COMPLETED;
    else
        c->status = CB__CT_FAILED;
    if (c->status == CB__CT_TIMED_OUT)
        c->error = cb_xstrdup("killed at its timeout");
    else if (c->exit.oom_killed)
        c->error = cb_xasprintf("killed: out of memory (limit %" PRIu64 " MiB)", c->memory_mb);
    else if (c->status == CB__CT_FAILED && c->exit.signal != 0)
        c->error = cb_xasprintf("killed by signal %d", c->exit.signal);
    else if (c->status == CB__CT_FAILED)
        c->error = cb_xasprintf("exited with status %d", c->exit.exit_code);
}

/* The exit pipe's end: exit.json holds what the monitor saw (or it died
 * without writing it). The end is seen from now on, while the monitor
 * deletes the container. */
static void exited(struct cb_ct_manager *m, struct cb__ct *c)
{
    struct cb_ct_exit ex = {0};
    struct cb_error err = {0};
    bool recorded = m->be.exit_read(m->be.impl, c->dir, &ex, &err) == 0;
    pthread_mutex_lock(&m->lock);
    cb__ct_wait_idle(m, c); /* the spawn's audit line goes first */
    stop_watching(m, &c->run.exit_fd);
    c->exit = ex;
    c->exited = recorded;
    watch_judge(c, recorded, err.msg);
    c->finished_ms = cb_now_wall_ms();
    if (c->px)
        cb_ct_proxy_revoke(c->px);
    cb_image_free(c->img); /* the image may be removed now */
    c->img = NULL;
    cb_metric_inc(m->m_total, (const char *[]){cb__ct_status_name(c->status)}, 1);
    /* The end is seen at once; its record and audit line follow, with c
     * kept alive by busy. */
    char *record = cb__ct_record(c);
    c->busy++;
    /* The owner hears of ends it did not cause by closing the manager. */
    bool tell = c->on_end != NULL && !m->stopping;
    struct cb_ct_end end = {
        .container_id = c->id,
        .owner = c->owner,
        .status = cb__ct_status_name(c->status),
        .exit_code = recorded ? c->exit.exit_code : -1,
        .error = c->error,
    };
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    cb__ct_store(m, c->id, record, NULL);
    cb__ct_audit(m, c, NULL, "exit");
    if (tell) /* c stays (busy), and nothing of end changes once ended */
        c->on_end(c->ud, &end);
    pthread_mutex_lock(&m->lock);
    c->busy--;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
}

/* The monitor has ended (it is not our child: nothing to reap): the
 * container is deleted and its place is free. A DELETE waiting for this
 * may free c as soon as the lock is let go; one that gave up waiting left
 * c to be removed here. */
static void gone(struct cb_ct_manager *m, struct cb__ct *c)
{
    pthread_mutex_lock(&m->lock);
    bool exit_seen = c->run.exit_fd < 0;
    pthread_mutex_unlock(&m->lock);
    if (!exit_seen) /* the pipe's end comes in a later batch */
        exited(m, c);
    pthread_mutex_lock(&m->lock);
    stop_watching(m, &c->run.monitor_pidfd);
    if (c->init_pidfd >= 0)
        close(c->init_pidfd);
    c->init_pidfd = -1;
    cb__ct_release(m, c);
    bool drop = c->abandoned;
    if (drop) {
        cb__ct_wait_idle(m, c); /* the DELETE's answer is made */
        cb__ct_unlink(m, c);
    }
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    if (drop) {
        cb__ct_remove_files(m, c);
        cb__ct_free(c);
    }
}

struct due {
    char kill[MAX_BATCH][CB__CT_ID_MAX];
    size_t n_kill;
    struct cb__ct *drop[MAX_BATCH];
    size_t n_drop;
    int sleep_ms;
};

static void min_ms(int *sleep_ms, uint64_t ms)
{
    if (ms < (uint64_t)*sleep_ms)
        *sleep_ms = (int)ms;
}

/* Collects timeouts that are due and finished containers past their
 * retention, and how long to sleep until the next one. */
static void collect_due(struct cb_ct_manager *m, struct due *d)
{
    uint64_t now = cb_now_mono_ns(), wall = cb_now_wall_ms();
    uint64_t keep = m->cfg->containers.retention_ms;
    d->n_kill = d->n_drop = 0;
    d->sleep_ms = MAX_SLEEP_MS;
    pthread_mutex_lock(&m->lock);
    for (struct cb__ct *c = m->list, *next; c; c = next) {
        next = c->next;
        if (c->status == CB__CT_RUNNING && c->kill_as == CB__CT_NONE) {
            if (c->deadline_ns > now) {
                min_ms(&d->sleep_ms, (c->deadline_ns - now) / 1000000 + 1);
            } else if (d->n_kill < MAX_BATCH) {
                c->kill_as = CB__CT_TIMED_OUT;
                memcpy(d->kill[d->n_kill++], c->id, CB__CT_ID_MAX);
            }
        } else if (c->finished_ms != 0 && !c->deleting && c->busy == 0 &&
                   c->run.monitor_pidfd < 0) {
            if (c->finished_ms + keep > wall)
                min_ms(&d->sleep_ms, c->finished_ms + keep - wall);
            else if (d->n_drop < MAX_BATCH) {
                cb__ct_unlink(m, c);
                d->drop[d->n_drop++] = c;
            }
        }
    }
    if (d->n_kill == MAX_BATCH || d->n_drop == MAX_BATCH)
        d->sleep_ms = 0;
    pthread_mutex_unlock(&m->lock);
}

static void act(struct cb_ct_manager *m, struct due *d)
{
    struct cb_error err = {0};
    for (size_t i = 0; i < d->n_kill; i++) {
        cb_log(CB_LOG_INFO, "container %s reached its timeout: killing it", d->kill[i]);
        if (m->be.kill(m->be.impl, d->kill[i], SIGKILL, &err) < 0)
            cb_log(CB_LOG_DEBUG, "container %s: kill: %s", d->kill[i], err.msg);
    }
    for (size_t i = 0; i < d->n_drop; i++) {
        cb__ct_remove_files(m, d->drop[i]);
        cb__ct_free(d->drop[i]);
    }
}

static void *watch(void *arg)
{
    struct cb_ct_manager *m = arg;
    struct epoll_event evs[MAX_BATCH];
    struct due d;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        bool quit = !m->watching;
        pthread_mutex_unlock(&m->lock);
        if (quit)
            return NULL;
        collect_due(m, &d);
        act(m, &d);
        int n = epoll_wait(m->epfd, evs, MAX_BATCH, d.sleep_ms);
        /* Sorted before anything is done: after gone(c) a DELETE may free
         * c, so no event of the batch is looked at after it, and an exit
         * in the same batch is seen before the end of its monitor. */
        struct cb__ct *exits[MAX_BATCH], *gones[MAX_BATCH];
        size_t n_exits = 0, n_gones = 0;
        for (int i = 0; i < n; i++) {
            struct cb__ct_watch *w = evs[i].data.ptr;
            if (w == NULL) {
                uint64_t v;
                if (read(m->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    cb_log(CB_LOG_WARN, "container watcher: %s", strerror(errno));
            } else if (w == &w->c->watch_exit) {
                exits[n_exits++] = w->c;
            } else {
                gones[n_gones++] = w->c;
            }
        }
        for (size_t i = 0; i < n_exits; i++)
            exited(m, exits[i]);
        for (size_t i = 0; i < n_gones; i++)
            gone(m, gones[i]);
    }
}

int cb__ct_watch_start(struct cb_ct_manager *m, struct cb_error *err)
{
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    m->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->epfd < 0 || m->wakefd < 0)
        return cb_error_set(err, -errno, "container watcher: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->wakefd, &ev) < 0)
        return cb_error_set(err, -errno, "container watcher: %s", strerror(errno));
    m->watching = true;
    int r = pthread_create(&m->watcher, NULL, watch, m);
    if (r != 0) {
        m->watching = false;
        return cb_error_set(err, -r, "container watcher: %s", strerror(r));
    }
    return 0;
}

void cb__ct_watch_stop(struct cb_ct_manager *m)
{
    pthread_mutex_lock(&m->lock);
    bool was = m->watching;
    m->watching = false;
    pthread_mutex_unlock(&m->lock);
    if (was) {
        cb__ct_watch_poke(m);
        pthread_join(m->watcher, NULL);
    }
    for (struct cb__ct *c = m->list; c; c = c->next)
        cb__ct_unwatch(m, c);
    if (m->epfd >= 0)
        close(m->epfd);
    if (m->wakefd >= 0)
        close(m->wakefd);
    m->epfd = m->wakefd = -1;
}
