/* The global limit on protected work. A fixed set of worker threads (one
 * per allowed concurrent request) runs jobs from a bounded FIFO queue. A
 * job that waits longer than the queue timeout, or finds the queue full,
 * is rejected instead of run. Either `run` or `reject` is called exactly
 * once per submitted job, on a limiter thread. */
#ifndef CB_HTTP_LIMITER_H
#define CB_HTTP_LIMITER_H

#include <stdint.h>

#include "core/error.h"

struct cb_limiter_job {
    void (*run)(void *arg);
    void (*reject)(void *arg);
    void *arg;
    uint64_t deadline_ns; /* set by the limiter */
    struct cb_limiter_job *next;
};

struct cb_limiter;

int cb__limiter_new(unsigned workers, unsigned max_queued, unsigned timeout_ms,
                    struct cb_limiter **out, struct cb_error *err);
/* Queues a job. Returns 0, or -EAGAIN when the queue is full (the job is
 * not taken and the caller rejects it itself). */
int cb__limiter_submit(struct cb_limiter *l, struct cb_limiter_job *job);
/* Jobs queued or running right now, and workers that just finished a job
 * and poll for the next one: only tests read them, to see the queue and the
 * workers' state, which are private to limiter.c. */
unsigned cb__limiter_load(struct cb_limiter *l);
unsigned cb__limiter_polling(struct cb_limiter *l);
/* Stops the threads after running jobs finish; queued jobs are rejected. */
void cb__limiter_free(struct cb_limiter *l);

#endif
