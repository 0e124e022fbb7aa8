/* The audit log's anchor: the seq and hash of its durable head, kept in the
 * state database, so that lines cut from the end of the log are noticed
 * (audit.h, "Anchor"). Best effort on the writer's side: an anchor that
 * cannot be opened or written is logged and left behind, and the log goes
 * on, since refusing to audit would be worse than a weaker audit. */
#include "audit/audit.h"
#include "audit/internal.h"

#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long an anchor write waits for another writer of the state
 * database. It runs on its own thread, never in the append path, so it can
 * wait as long as the state database's other users do. */
#define ANCHOR_BUSY_MS CB_STATE_BUSY_TIMEOUT_MS
/* The anchor is stored at most this often while lines are appended (and
 * at close). Storing it after every sync doubled the cost of an append:
 * each SQLite commit grows the WAL, and ext4 then writes those blocks in
 * the audit file's own fdatasync. So after a crash the anchor may lag by
 * the lines of the last interval. */
#define ANCHOR_INTERVAL_MS 50

/* Stores one anchor; a failure leaves the anchor behind (never wrong) and
 * is logged once, until a store works again. */
static void store(struct cb_audit *a, const struct cb_state_anchor *head, bool reset)
{
    struct cb_error e = {0};
    int r = cb_state_anchor_set(a->anchor, a->anchor_name, head, reset, &e);
    if (r < 0 && !a->anchor_warned)
        cb_log(CB_LOG_WARN,
               "audit log %s: the anchor was not updated (lines cut from the end of the log "
               "may go unnoticed until it is): %s",
               a->dir, e.msg);
    else if (r == 0 && a->anchor_warned)
        cb_log(CB_LOG_INFO, "audit log %s: the anchor is updated again", a->dir);
    a->anchor_warned = r < 0;
}

/* Waits (anchor_mu held) until ANCHOR_INTERVAL_MS after the last store,
 * unless a reset or stop needs the store now. */
static void wait_interval(struct cb_audit *a, uint64_t last_ns)
{
    uint64_t due = last_ns + ANCHOR_INTERVAL_MS * 1000000ull;
    while (!a->anchor_stop && !a->anchor_reset && cb_now_mono_ns() < due) {
        struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
        pthread_cond_timedwait(&a->anchor_cv, &a->anchor_mu, &ts);
    }
}

/* The writer thread: stores the newest posted head, at most once per
 * interval, until told to stop, and what is pending before it stops. */
static void *writer_main(void *arg)
{
    struct cb_audit *a = arg;
    uint64_t last_ns = 0;
    pthread_mutex_lock(&a->anchor_mu);
    for (;;) {
        while (!a->anchor_has_pending && !a->anchor_stop)
            pthread_cond_wait(&a->anchor_cv, &a->anchor_mu);
        if (!a->anchor_has_pending)
            break;
        wait_interval(a, last_ns);
        struct cb_state_anchor head = a->anchor_pending;
        bool reset = a->anchor_reset;
        uint64_t n = a->anchor_posted;
        a->anchor_has_pending = a->anchor_reset = false;
        pthread_mutex_unlock(&a->anchor_mu);
        store(a, &head, reset);
        last_ns = cb_now_mono_ns();
        pthread_mutex_lock(&a->anchor_mu);
        a->anchor_stored = n;
        pthread_cond_broadcast(&a->anchor_done);
    }
    pthread_mutex_unlock(&a->anchor_mu);
    return NULL;
}

static int start_writer(struct cb_audit *a, struct cb_error *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&a->anchor_mu, NULL);
    pthread_cond_init(&a->anchor_cv, &ca);
    pthread_cond_init(&a->anchor_done, NULL);
    pthread_condattr_destroy(&ca);
    int r = pthread_create(&a->anchor_thread, NULL, writer_main, a);
    if (r == 0)
        return 0;
    pthread_mutex_destroy(&a->anchor_mu);
    pthread_cond_destroy(&a->anchor_cv);
    pthread_cond_destroy(&a->anchor_done);
    return cb_error_set(err, -r, "starting the anchor thread: %s", strerror(r));
}

void cb__audit_anchor_open(struct cb_audit *a, const char *db)
{
    struct cb_state_options o = {.busy_timeout_ms = ANCHOR_BUSY_MS, .relaxed_sync = true};
    struct cb_error e = {0};
    char *copy = cb_xstrdup(db);
    char *name = realpath(a->dir, NULL);
    int r = name ? cb_mkdir_p(dirname(copy), 0700, &e)
                 : cb_error_set(&e, -errno, "%s: %s", a->dir, strerror(errno));
    if (r == 0)
        r = cb_state_open_opts(db, &o, &a->anchor, &e);
    a->anchor_name = name;
    if (r == 0)
        r = start_writer(a, &e);
    free(copy);
    if (r < 0) {
        cb_log(CB_LOG_WARN,
               "audit log %s: no anchor (%s): lines cut from the end of the log will not be "
               "noticed",
               a->dir, e.msg);
        cb_state_close(a->anchor);
        a->anchor = NULL;
    }
}

void cb__audit_anchor_close(struct cb_audit *a)
{
    if (a->anchor != NULL) {
        pthread_mutex_lock(&a->anchor_mu);
        a->anchor_stop = true;
        pthread_cond_signal(&a->anchor_cv);
        pthread_mutex_unlock(&a->anchor_mu);
        pthread_join(a->anchor_thread, NULL);
        pthread_mutex_destroy(&a->anchor_mu);
        pthread_cond_destroy(&a->anchor_cv);
        pthread_cond_destroy(&a->anchor_done);
        cb_state_close(a->anchor);
        a->anchor = NULL;
    }
    free(a->anchor_name);
    a->anchor_name = NULL;
}

/* Posts a head; with `reset` it replaces whatever is stored (after a cut
 * was recorded), else the newest post wins and the store only moves
 * forward. Returns the post's number. */
static uint64_t post(struct cb_audit *a, const struct cb_state_anchor *head, bool reset)
{
    pthread_mutex_lock(&a->anchor_mu);
    /* With a post already pending the thread is awake or waiting out the
     * interval, and will take the newest: waking it for every append
     * halved the rate of appends that cost little else. */
    bool wake = reset || !a->anchor_has_pending;
    if (reset || !a->anchor_has_pending || head->lines > a->anchor_pending.lines)
        a->anchor_pending = *head;
    a->anchor_reset = a->anchor_reset || reset;
    a->anchor_has_pending = true;
    uint64_t n = ++a->anchor_posted;
    if (wake)
        pthread_cond_signal(&a->anchor_cv);
    pthread_mutex_unlock(&a->anchor_mu);
    return n;
}

void cb__audit_anchor_post(struct cb_audit *a, const struct cb_state_anchor *head)
{
    if (a->anchor != NULL && head->lines > 0)
        post(a, head, false);
}

/* Posts a reset and waits until it is stored (a rare event, recorded at
 * once so that the next reader of the anchor sees it). */
static void reset_to(struct cb_audit *a, const struct cb_state_anchor *head)
{
    if (a->anchor == NULL)
        return;
    uint64_t n = post(a, head, true);
    pthread_mutex_lock(&a->anchor_mu);
    while (a->anchor_stored < n)
        pthread_cond_wait(&a->anchor_done, &a->anchor_mu);
    pthread_mutex_unlock(&a->anchor_mu);
}

/* The stored anchor, or false when there is none (or it cannot be read,
 * which is logged). */
static bool anchor_read(struct cb_audit *a, struct cb_state_anchor *out)
{
    struct cb_error e = {0};
    if (a->anchor == NULL)
        return false;
    int r = cb_state_anchor_get(a->anchor, a->anchor_name, out, &e);
    if (r < 0 && r != -ENOENT)
        cb_log(CB_LOG_WARN, "audit log %s: reading the anchor: %s", a->dir, e.msg);
    return r == 0;
}

static char *truncation_reason(const struct cb_audit *a, const struct cb_state_anchor *want)
{
    if (want->lines > a->lines)
        return cb_xasprintf("the log ended at line %llu, but it had reached line %llu (hash "
                            "%s): %llu %s cut from its end",
                            (unsigned long long)a->lines, (unsigned long long)want->lines,
                            want->head, (unsigned long long)(want->lines - a->lines),
                            want->lines - a->lines == 1 ? "line was" : "lines were");
    return cb_xasprintf("line %llu of the log is not the line it had (hash %s): the end of the "
                        "log was rewritten",
                        (unsigned long long)a->lines, want->head);
}

/* Appends the line that records the cut, makes it durable and resets the
 * anchor to it: from here the chain goes on, with the evidence in it. */
static int record_truncation(struct cb_audit *a, const struct cb_state_anchor *want,
                             struct cb_error *err)
{
    char *reason = truncation_reason(a, want);
    struct cb_audit_record rec = {
        .kind = CB_AUDIT_AUDIT,
        .method = "AUDIT",
        .decision = "truncated",
        .reason = reason,
        .missing = want->lines > a->lines ? want->lines - a->lines : 0,
    };
    char *line = cb_xmalloc(CB_AUDIT_MAX_LINE + 2);
    int r = cb__audit_write_locked(a, &rec, line, err);
    free(line);
    if (r == 0 && fdatasync(a->fd) < 0)
        r = cb_error_set(err, -errno, "audit log: syncing %s: %s", CB_AUDIT_FILE, strerror(errno));
    if (r == 0) {
        struct cb_state_anchor now = {.lines = a->lines};
        memcpy(now.head, a->head, sizeof(now.head));
        reset_to(a, &now);
        cb_log(CB_LOG_ERROR, "audit log %s: %s; recorded as line %llu", a->dir, reason,
               (unsigned long long)a->lines);
    }
    free(reason);
    return r;
}

int cb__audit_check_chain(struct cb_audit *a, const struct cb_state_anchor *before,
                          struct cb_error *err)
{
    struct cb_state_anchor want = {0}, stored;
    if (before != NULL)
        want = *before;
    if (anchor_read(a, &stored) && stored.lines > want.lines)
        want = stored;
    if (want.lines == 0 || a->lines > want.lines)
        return 0; /* nothing to hold it to, or ahead (the anchor lags) */
    if (a->lines == want.lines && strcmp(a->head, want.head) == 0)
        return 0;
    return record_truncation(a, &want, err);
}
