#include "http/limiter.h"
#include "core/util.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct cb_limiter {
    pthread_mutex_t lock;
    pthread_cond_t work;   /* signalled when a job is queued or on stop */
    pthread_cond_t expiry; /* wakes the janitor when queued jobs start to wait */
    struct cb_limiter_job *head, *tail;
    unsigned queued;
    unsigned running;
    unsigned spinning; /* workers between jobs polling for the next one */
    unsigned max_queued;
    uint64_t timeout_ns;
    int stopping;
    pthread_t *threads;
    unsigned nthreads;
    pthread_t janitor;
    bool has_janitor;
};

/* head and stopping change under the lock, but polling workers read them
 * without it (job_or_stop): so they are written atomically too. */
static void set_head(struct cb_limiter *l, struct cb_limiter_job *j)
{
    __atomic_store_n(&l->head, j, __ATOMIC_RELAXED);
}

static struct cb_limiter_job *pop(struct cb_limiter *l)
{
    struct cb_limiter_job *j = l->head;
    set_head(l, j->next);
    if (l->head == NULL)
        l->tail = NULL;
    l->queued--;
    return j;
}

/* Wakes the janitor when it has something to watch: a queued job and no
 * free worker. Otherwise a free worker takes the head at once, and waking
 * the janitor for every job would cost a thread wake-up each time. (A
 * janitor already in a timed wait for an older head wakes at that
 * deadline and looks again.) */
static void wake_janitor_if_needed(struct cb_limiter *l)
{
    if (l->head != NULL && l->running >= l->nthreads)
        pthread_cond_signal(&l->expiry);
}

/* After a job, a worker polls for the next one for this long, yielding the
 * CPU, before it sleeps: a client that sends requests one after another
 * then finds a running worker instead of waking a sleeping one, which on
 * a virtual machine costs more than the wait. */
#define NEXT_JOB_SPIN_NS (1000u * 1000u)

/* Called with the lock held and no job queued; returns with the lock held.
 * Submit signals only for jobs beyond the number of polling workers (a
 * poller takes the job itself). */
static bool job_or_stop(void *ud)
{
    struct cb_limiter *l = ud;
    return __atomic_load_n(&l->head, __ATOMIC_RELAXED) != NULL ||
           __atomic_load_n(&l->stopping, __ATOMIC_RELAXED);
}

static void poll_for_job(struct cb_limiter *l)
{
    l->spinning++;
    pthread_mutex_unlock(&l->lock);
    cb_yield_until(job_or_stop, l, NEXT_JOB_SPIN_NS);
    pthread_mutex_lock(&l->lock);
    l->spinning--;
}

static void *worker_main(void *arg)
{
    struct cb_limiter *l = arg;
    bool after_job = false;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        if (after_job && l->head == NULL && !l->stopping)
            poll_for_job(l);
        while (l->head == NULL && !l->stopping)
            pthread_cond_wait(&l->work, &l->lock);
        if (l->head == NULL)
            break;
        struct cb_limiter_job *j = pop(l);
        l->running++;
        wake_janitor_if_needed(l);
        pthread_mutex_unlock(&l->lock);
        j->run(j->arg);
        pthread_mutex_lock(&l->lock);
        l->running--;
        after_job = true;
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static void to_timespec(uint64_t mono_ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000u);
    ts->tv_nsec = (long)(mono_ns % 1000000000u);
}

/* Rejects queued jobs whose deadline has passed while every worker is
 * busy (with a free worker, the head is about to run). Jobs are queued in
 * deadline order, so only the head needs watching. */
static void *janitor_main(void *arg)
{
    struct cb_limiter *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stopping) {
        if (l->head == NULL || l->running < l->nthreads) {
            pthread_cond_wait(&l->expiry, &l->lock);
            continue;
        }
        if (l->head->deadline_ns > cb_now_mono_ns()) {
            struct timespec ts;
            to_timespec(l->head->deadline_ns, &ts);
            pthread_cond_timedwait(&l->expiry, &l->lock, &ts);
            continue;
        }
        struct cb_limiter_job *j = pop(l);
        pthread_mutex_unlock(&l->lock);
        j->reject(j->arg);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int cb__limiter_new(unsigned workers, unsigned max_queued, unsigned timeout_ms,
                    struct cb_limiter **out, struct cb_error *err)
{
    struct cb_limiter *l = cb_xcalloc(1, sizeof(*l));
    pthread_condattr_t ca;
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->work, &ca);
    pthread_cond_init(&l->expiry, &ca);
    pthread_condattr_destroy(&ca);
    l->max_queued = max_queued;
    l->timeout_ns = (uint64_t)timeout_ms * 1000000u;
    l->threads = cb_xcalloc(workers, sizeof(pthread_t));
    for (unsigned i = 0; i < workers; i++) {
        int r = pthread_create(&l->threads[i], NULL, worker_main, l);
        if (r != 0) {
            cb__limiter_free(l);
            return cb_error_set(err, -r, "starting worker thread: %s", strerror(r));
        }
        l->nthreads++;
    }
    int r = pthread_create(&l->janitor, NULL, janitor_main, l);
    if (r != 0) {
        cb__limiter_free(l);
        return cb_error_set(err, -r, "starting queue timer thread: %s", strerror(r));
    }
    l->has_janitor = true;
    *out = l;
    return 0;
}

int cb__limiter_submit(struct cb_limiter *l, struct cb_limiter_job *job)
{
    pthread_mutex_lock(&l->lock);
    /* A job fits when a worker slot is free, or, with a non-zero timeout,
     * when fewer than max_queued jobs wait for one. */
    unsigned busy = l->running + l->queued;
    bool fits = busy < l->nthreads || (l->timeout_ns > 0 && busy - l->nthreads < l->max_queued);
    if (l->stopping || !fits) {
        pthread_mutex_unlock(&l->lock);
        return -EAGAIN;
    }
    job->deadline_ns = cb_now_mono_ns() + l->timeout_ns;
    job->next = NULL;
    if (l->tail)
        l->tail->next = job;
    else
        set_head(l, job);
    l->tail = job;
    l->queued++;
    if (l->queued > l->spinning) /* more jobs than polling workers */
        pthread_cond_signal(&l->work);
    wake_janitor_if_needed(l);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

unsigned cb__limiter_load(struct cb_limiter *l)
{
    pthread_mutex_lock(&l->lock);
    unsigned n = l->queued + l->running;
    pthread_mutex_unlock(&l->lock);
    return n;
}

unsigned cb__limiter_polling(struct cb_limiter *l)
{
    pthread_mutex_lock(&l->lock);
    unsigned n = l->spinning;
    pthread_mutex_unlock(&l->lock);
    return n;
}

void cb__limiter_free(struct cb_limiter *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    __atomic_store_n(&l->stopping, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&l->work);
    pthread_cond_broadcast(&l->expiry);
    pthread_mutex_unlock(&l->lock);
    for (unsigned i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
    if (l->has_janitor)
        pthread_join(l->janitor, NULL);
    while (l->head) {
        struct cb_limiter_job *j = pop(l);
        j->reject(j->arg);
    }
    free(l->threads);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->expiry);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
