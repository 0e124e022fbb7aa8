/* The hot-reload watcher: one thread that waits on inotify for tool_dir and
 * on an eventfd for shutdown.
 *
 * Debounce is per file and on the trailing edge: an event for <name>.wasm
 * or <name>.json (re)arms that name's timer, and the name is refreshed only
 * once debounce_ms pass without another event for it. So a file copied in
 * several writes is loaded once, from its final content (the reference's
 * leading-edge debounce loaded the first, partial write and dropped the
 * rest). Refreshing compiles on this thread; the old version keeps serving
 * meanwhile, and stays if the new one fails. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "sandbox/registry/internal.h"

/* Names waiting for their debounce; past this a full rescan is scheduled. */
#define PENDING_MAX 256
#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ONLYDIR)
#define EVENT_BUF (64u * 1024)

struct pending {
    char name[65]; /* a valid tool name */
    uint64_t due_ns;
};

struct cb__watch {
    struct cb_registry *r;
    pthread_t thread;
    int ifd; /* inotify; -1 once the directory is gone */
    int efd; /* shutdown */
    uint64_t debounce_ns;
    struct pending pend[PENDING_MAX];
    size_t npend;
    bool rescan; /* the queue overflowed: rescan everything */
    uint64_t rescan_due_ns;
    _Alignas(struct inotify_event) char buf[EVENT_BUF];
};

static void schedule(struct cb__watch *w, const char *name, uint64_t now)
{
    uint64_t due = now + w->debounce_ns;
    for (size_t i = 0; i < w->npend; i++) {
        if (strcmp(w->pend[i].name, name) == 0) {
            w->pend[i].due_ns = due;
            return;
        }
    }
    if (w->npend == PENDING_MAX) {
        w->rescan = true;
        w->rescan_due_ns = due;
        return;
    }
    size_t len = strnlen(name, sizeof(w->pend[0].name) - 1); /* valid names fit */
    memcpy(w->pend[w->npend].name, name, len);
    w->pend[w->npend].name[len] = '\0';
    w->pend[w->npend++].due_ns = due;
}

/* Schedules the tool a directory entry belongs to, if any. */
static void on_entry(struct cb__watch *w, const char *file, uint64_t now)
{
    size_t len = strnlen(file, NAME_MAX + 1);
    if (len <= 5)
        return;
    const char *ext = file + len - 5;
    if (strcmp(ext, ".wasm") != 0 && strcmp(ext, ".json") != 0)
        return;
    char stem[NAME_MAX + 1];
    snprintf(stem, sizeof(stem), "%.*s", (int)(len - 5), file);
    if (cb_tool_name_valid(stem))
        schedule(w, stem, now);
}

static void on_event(struct cb__watch *w, const struct inotify_event *ev, uint64_t now)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        w->rescan = true;
        w->rescan_due_ns = now + w->debounce_ns;
    } else if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
        cb_log(CB_LOG_WARN, "tool directory %s went away; hot reload stopped", w->r->opts.tool_dir);
        close(w->ifd);
        w->ifd = -1;
    } else if (ev->len > 0) {
        on_entry(w, ev->name, now);
    }
}

static void drain_events(struct cb__watch *w)
{
    char *buf = w->buf;
    while (w->ifd >= 0) {
        ssize_t n = cb_read_retry(w->ifd, buf, sizeof(w->buf));
        if (n <= 0)
            return;
        uint64_t now = cb_now_mono_ns();
        for (char *p = buf; p < buf + n && w->ifd >= 0;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            on_event(w, ev, now);
            p += sizeof(*ev) + ev->len;
        }
    }
}

/* Refreshes every name whose quiet period is over, together (the
 * registry compiles them in parallel). */
static void run_due(struct cb__watch *w)
{
    char *due[PENDING_MAX];
    size_t ndue = 0;
    uint64_t now = cb_now_mono_ns();
    for (size_t i = 0; i < w->npend;) {
        if (w->pend[i].due_ns > now) {
            i++;
            continue;
        }
        due[ndue++] = cb_xstrdup(w->pend[i].name);
        w->pend[i] = w->pend[--w->npend];
    }
    if (ndue > 0)
        cb__registry_refresh(w->r, due, ndue);
    for (size_t i = 0; i < ndue; i++)
        free(due[i]);
    if (w->rescan && w->rescan_due_ns <= cb_now_mono_ns()) {
        w->rescan = false;
        json_decref(cb__registry_scan(w->r));
    }
}

/* Milliseconds until the next due timer, rounded up; -1 if none. */
static int watch_next_timeout(const struct cb__watch *w)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < w->npend; i++)
        if (w->pend[i].due_ns < next)
            next = w->pend[i].due_ns;
    if (w->rescan && w->rescan_due_ns < next)
        next = w->rescan_due_ns;
    if (next == UINT64_MAX)
        return -1;
    uint64_t now = cb_now_mono_ns();
    return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

static void *watch_main(void *arg)
{
    struct cb__watch *w = arg;
    for (;;) {
        struct pollfd fds[2] = {{.fd = w->efd, .events = POLLIN}, {.fd = w->ifd, .events = POLLIN}};
        int n = poll(fds, w->ifd >= 0 ? 2 : 1, watch_next_timeout(w));
        if (n < 0 && errno != EINTR) {
            cb_log(CB_LOG_ERROR, "tool watcher: poll: %s", strerror(errno));
            return NULL;
        }
        if (n > 0 && fds[0].revents != 0)
            return NULL;
        if (n > 0 && fds[1].revents != 0)
            drain_events(w);
        run_due(w);
    }
}

static int open_fds(struct cb__watch *w, const char *dir, struct cb_error *err)
{
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ifd < 0)
        return cb_error_set(err, -errno, "inotify_init1: %s", strerror(errno));
    if (inotify_add_watch(w->ifd, dir, WATCH_MASK) < 0)
        return cb_error_set(err, -errno, "watching %s: %s", dir, strerror(errno));
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0)
        return cb_error_set(err, -errno, "eventfd: %s", strerror(errno));
    return 0;
}

static void free_watch(struct cb__watch *w)
{
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->efd >= 0)
        close(w->efd);
    free(w);
}

int cb__watch_start(struct cb_registry *r, struct cb__watch **out, struct cb_error *err)
{
    *out = NULL;
    struct cb__watch *w = cb_xcalloc(1, sizeof(*w));
    w->r = r;
    w->ifd = w->efd = -1;
    w->debounce_ns = (uint64_t)r->opts.debounce_ms * 1000000u;
    int rc = open_fds(w, r->opts.tool_dir, err);
    if (rc == -ENOENT || rc == -ENOTDIR) {
        cb_log(CB_LOG_INFO, "tool directory %s does not exist; hot reload is off",
               r->opts.tool_dir);
        free_watch(w);
        return 0;
    }
    if (rc == 0 && (rc = -pthread_create(&w->thread, NULL, watch_main, w)) < 0)
        cb_error_set(err, rc, "pthread_create: %s", strerror(-rc));
    if (rc < 0) {
        cb_error_prefix(err, "starting the tool watcher");
        free_watch(w);
        return rc;
    }
    *out = w;
    return 0;
}

void cb__watch_stop(struct cb__watch *w)
{
    if (w == NULL)
        return;
    uint64_t one = 1;
    (void)cb_write_retry(w->efd, &one, sizeof(one));
    pthread_join(w->thread, NULL);
    free_watch(w);
}
