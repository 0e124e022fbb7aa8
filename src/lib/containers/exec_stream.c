/* POST /containers/{id}/exec answered as NDJSON (Accept:
 * application/x-ndjson): the exec runs on a thread of its own, which
 * turns its output into lines of events as it arrives and queues them;
 * the HTTP server's I/O thread takes them from the queue
 * (cb_ct_exec_stream_read) without ever waiting.
 *
 * The output is redacted by whole lines (containers/logs.c's line
 * redactor, one per stream): a partial line is held until its end, or
 * until the hold is full, or the exec ends. The queue is bounded: while
 * it is full the exec's output is not read, so a slow reader holds back
 * its own command and nothing else. A reader that goes away (the stream
 * freed before its end) ends the exec as its timeout would.
 *
 * Each release redacts with up to 16 KiB of context, so releases are
 * spaced: output after a quiet RELEASE_GAP_MS goes out at once, output
 * that follows sooner waits for the end of that gap (or a full hold).
 * A command printing a line per millisecond thus costs the server at most
 * 1000 / RELEASE_GAP_MS releases a second per stream, not one per line.
 * Output switching between stdout and stderr is released at each switch,
 * to keep the order it arrived in. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "containers/internal.h"
#include "core/log.h"
#include "core/util.h"

/* Event bytes waiting for the reader before the exec's output waits. */
#define QUEUE_MAX (256u * 1024u)
/* The least time between two releases of one stream. */
#define RELEASE_GAP_MS 5u

struct cb_ct_exec_stream {
    struct cb__ct_exec *x;
    char exec_id[CB__CT_EXEC_ID_LEN];
    struct cb__ct_exec_sink sink;
    int wake_fd; /* the exec's: room in the queue, or the reader gone */
    atomic_bool gone;
    /* Under lock: the queue of event lines, and who still holds this. */
    pthread_mutex_t lock;
    char *q;
    size_t q_off, q_len, q_cap;
    bool ended;   /* the exit event is queued */
    bool waiting; /* the exec waits for room */
    int refs;     /* the reader and the exec's thread */
    /* The exec's thread only. */
    struct cb__ct_lines lines[2]; /* stdout, stderr */
    uint64_t released_ns[2];      /* each stream's last release (monotonic) */
    bool held[2];                 /* bytes came since it */
};

static void wake(struct cb_ct_exec_stream *s)
{
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        cb_log(CB_LOG_WARN, "exec stream: wake: %s", strerror(errno));
}

static void unref(struct cb_ct_exec_stream *s)
{
    pthread_mutex_lock(&s->lock);
    int left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left > 0)
        return;
    for (int i = 0; i < 2; i++)
        cb__ct_lines_clear(&s->lines[i]);
    close(s->wake_fd);
    pthread_mutex_destroy(&s->lock);
    free(s->q);
    free(s);
}

/* Queues one event as a line (ev's reference stolen). */
static void emit(struct cb_ct_exec_stream *s, json_t *ev)
{
    char *line = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (line == NULL)
        return;
    size_t n = strlen(line);
    pthread_mutex_lock(&s->lock);
    if (s->q_off > 0) {
        memmove(s->q, s->q + s->q_off, s->q_len - s->q_off);
        s->q_len -= s->q_off;
        s->q_off = 0;
    }
    if (s->q_len + n + 1 > s->q_cap) {
        s->q_cap = s->q_len + n + 1 + QUEUE_MAX / 4;
        s->q = cb_xrealloc(s->q, s->q_cap);
    }
    memcpy(s->q + s->q_len, line, n);
    s->q[s->q_len + n] = '\n';
    s->q_len += n + 1;
    pthread_mutex_unlock(&s->lock);
    explicit_bzero(line, n);
    free(line);
}

/* The redacted text stream i has ready, as its event. */
static void send_ready(struct cb_ct_exec_stream *s, int i)
{
    const char *text = NULL;
    size_t n = cb__ct_lines_ready(&s->lines[i], &text);
    if (n == 0)
        return;
    emit(s, json_pack("{s:s, s:s%}", "type", i ? "stderr" : "stdout", "data", text, n));
    s->lines[i].ready_off += n;
}

static void release(struct cb_ct_exec_stream *s, int i)
{
    cb__ct_lines_release(&s->lines[i], false);
    send_ready(s, i);
    s->released_ns[i] = cb_now_mono_ns();
    s->held[i] = false;
}

static void on_output(void *ud, bool is_err, const char *data, size_t len)
{
    struct cb_ct_exec_stream *s = ud;
    struct cb__ct_lines *l = &s->lines[is_err];
    /* What the other stream holds came first: out it goes, so events keep
     * the order the output arrived in (alternating streams are released
     * at each switch). */
    if (s->held[!is_err])
        release(s, !is_err);
    while (len > 0) {
        if (l->hold_len == CB__CT_LINES_HOLD)
            release(s, is_err);
        size_t k = CB__CT_LINES_HOLD - l->hold_len;
        k = k < len ? k : len;
        memcpy(l->hold + l->hold_len, data, k);
        l->hold_len += k;
        data += k;
        len -= k;
    }
    s->held[is_err] = true;
    if (cb_now_mono_ns() - s->released_ns[is_err] >= RELEASE_GAP_MS * 1000000ull)
        release(s, is_err);
}

static int on_due(void *ud)
{
    struct cb_ct_exec_stream *s = ud;
    int wait = -1;
    for (int i = 0; i < 2; i++) {
        if (!s->held[i])
            continue;
        uint64_t at = s->released_ns[i] + RELEASE_GAP_MS * 1000000ull, now = cb_now_mono_ns();
        if (now >= at) {
            release(s, i);
            continue;
        }
        int ms = (int)((at - now + 999999) / 1000000);
        wait = wait < 0 || ms < wait ? ms : wait;
    }
    return wait;
}

static bool on_full(void *ud)
{
    struct cb_ct_exec_stream *s = ud;
    pthread_mutex_lock(&s->lock);
    /* With its reader gone nothing drains the queue: the exec (killed by
     * on_cancelled) must still drain its pipes and end. */
    bool full = !atomic_load(&s->gone) && s->q_len - s->q_off >= QUEUE_MAX;
    s->waiting = full;
    pthread_mutex_unlock(&s->lock);
    return full;
}

static bool on_cancelled(void *ud)
{
    struct cb_ct_exec_stream *s = ud;
    return atomic_load(&s->gone);
}

static void *exec_thread(void *arg)
{
    struct cb_ct_exec_stream *s = arg;
    struct cb__ct_exec_outcome o;
    cb__ct_exec_finish(s->x, &o);
    for (int i = 0; i < 2; i++) {
        cb__ct_lines_release(&s->lines[i], true);
        send_ready(s, i);
    }
    emit(s,
         json_pack("{s:s, s:o, s:I, s:b, s:b}", "type", "exit", "code",
                   o.code >= 0 ? json_integer(o.code) : json_null(), "duration_ms",
                   (json_int_t)o.duration_ms, "timed_out", o.timed_out, "truncated", o.truncated));
    pthread_mutex_lock(&s->lock);
    s->ended = true;
    pthread_mutex_unlock(&s->lock);
    cb__ct_exec_free(s->x); /* last: the manager may close once it is freed */
    unref(s);
    return NULL;
}

static struct cb_ct_exec_stream *stream_new(struct cb_ct_manager *m)
{
    struct cb_ct_exec_stream *s = cb_xcalloc(1, sizeof(*s));
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    atomic_init(&s->gone, false);
    pthread_mutex_init(&s->lock, NULL);
    s->refs = 1;
    for (int i = 0; i < 2; i++)
        cb__ct_lines_init(&s->lines[i], m);
    s->sink = (struct cb__ct_exec_sink){.output = on_output,
                                        .full = on_full,
                                        .cancelled = on_cancelled,
                                        .due = on_due,
                                        .wake_fd = s->wake_fd,
                                        .ud = s};
    return s;
}

int cb_ct_exec_stream(struct cb_ct_manager *m, const char *id, const json_t *body,
                      const char *request_id, struct cb_ct_exec_stream **out, struct cb_error *err)
{
    struct cb_ct_exec_stream *s = stream_new(m);
    int rc = s->wake_fd < 0 ? cb_error_set(err, -errno, "exec: eventfd: %s", strerror(errno)) : 0;
    if (rc == 0)
        rc = cb__ct_exec_start(m, id, body, request_id, &s->sink, &s->x, err);
    if (rc < 0) {
        unref(s);
        return rc;
    }
    memcpy(s->exec_id, cb__ct_exec_id(s->x), sizeof(s->exec_id));
    emit(s, json_pack("{s:s, s:s}", "type", "start", "exec_id", s->exec_id));
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    s->refs = 2;
    int e = pthread_create(&t, &at, exec_thread, s);
    pthread_attr_destroy(&at);
    if (e != 0) { /* it is ended at once, as if its reader had gone */
        atomic_store(&s->gone, true);
        s->refs = 1;
        struct cb__ct_exec_outcome o;
        cb__ct_exec_finish(s->x, &o);
        cb__ct_exec_free(s->x);
        unref(s);
        return cb_error_set(err, -e, "exec: thread: %s", strerror(e));
    }
    *out = s;
    return 0;
}

int cb_ct_exec_stream_read(struct cb_ct_exec_stream *s, char *out, size_t room, size_t *n)
{
    pthread_mutex_lock(&s->lock);
    size_t have = s->q_len - s->q_off;
    *n = have < room ? have : room;
    if (*n > 0)
        memcpy(out, s->q + s->q_off, *n);
    s->q_off += *n;
    bool end = s->ended && s->q_off == s->q_len;
    if (s->waiting && have - *n < QUEUE_MAX / 2) {
        s->waiting = false;
        wake(s);
    }
    pthread_mutex_unlock(&s->lock);
    return end;
}

/* ---- detached ---- */

static void *detached_thread(void *arg)
{
    struct cb__ct_exec_outcome o;
    cb__ct_exec_finish(arg, &o);
    cb__ct_exec_free(arg);
    return NULL;
}

static void no_output(void *ud, bool is_err, const char *data, size_t len)
{
    (void)ud, (void)is_err, (void)data, (void)len; /* it writes to the container's log */
}

int cb_ct_exec_detach(struct cb_ct_manager *m, const char *id, const json_t *body,
                      const char *request_id, json_t **result, struct cb_error *err)
{
    static const struct cb__ct_exec_sink sink = {.output = no_output, .wake_fd = -1};
    struct cb__ct_exec *x = NULL;
    int rc = cb__ct_exec_start(m, id, body, request_id, &sink, &x, err);
    if (rc < 0)
        return rc;
    *result = json_pack("{s:s, s:b}", "exec_id", cb__ct_exec_id(x), "detached", true);
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &at, detached_thread, x);
    pthread_attr_destroy(&at);
    if (e != 0) { /* run here to its end, rather than leave it unwatched */
        json_decref(*result);
        detached_thread(x);
        return cb_error_set(err, -e, "exec: thread: %s", strerror(e));
    }
    return 0;
}

const char *cb_ct_exec_stream_id(const struct cb_ct_exec_stream *s)
{
    return s->exec_id;
}

void cb_ct_exec_stream_free(struct cb_ct_exec_stream *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->gone, true);
    wake(s);
    unref(s);
}
