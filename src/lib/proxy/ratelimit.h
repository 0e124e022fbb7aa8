/* Per-key token buckets for the egress proxy: one bucket per
 * tool name or container id, created full on first use, holding at most
 * `burst` tokens and refilled at `rate` tokens per second, fractionally.
 * Each request takes one token; with less than one left it is refused,
 * with the time until the next token.
 *
 * The number of buckets is bounded. A bucket that has refilled to `burst`
 * is indistinguishable from a new one, so such buckets are dropped first
 * whenever room is needed, which changes no decision. Only if every bucket
 * is still refilling is the least recently used one dropped (its key then
 * starts over with a full bucket).
 *
 * Thread-safe. Time comes from a monotonic clock, injectable for tests. */
#ifndef CB_PROXY_RATELIMIT_H
#define CB_PROXY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CB_PROXY_RATELIMIT_DEFAULT_KEYS 4096
#define CB_PROXY_RATELIMIT_KEY_MAX      256

/* Returns monotonic nanoseconds. */
typedef uint64_t (*cb_proxy_clock_fn)(void *arg);

struct cb_proxy_ratelimit_config {
    double rate;             /* tokens per second (proxy.rate_limit), > 0 */
    double burst;            /* capacity (proxy.rate_limit_burst), >= 1 */
    size_t max_keys;         /* 0 = CB_PROXY_RATELIMIT_DEFAULT_KEYS */
    cb_proxy_clock_fn clock; /* NULL = cb_now_mono_ns */
    void *clock_arg;
};

struct cb_proxy_ratelimit;

/* Returns 0, or -EINVAL for a rate or burst out of range. */
int cb__proxy_ratelimit_new(const struct cb_proxy_ratelimit_config *cfg,
                            struct cb_proxy_ratelimit **out, struct cb_error *err);
void cb__proxy_ratelimit_free(struct cb_proxy_ratelimit *rl);

/* Takes one token for `key` (len bytes; an empty key means "default").
 * `who` names the key in the message ("tool web_fetch"); NULL quotes the
 * key. Returns 0, or -EAGAIN with "rate limited: tool web_fetch exceeded 10
 * requests/s (burst 50); retry in 0.1 s" and, when retry_ms is non-NULL, the
 * wait in milliseconds (rounded up). -EINVAL for a key longer than
 * CB_PROXY_RATELIMIT_KEY_MAX. */
int cb__proxy_ratelimit_take(struct cb_proxy_ratelimit *rl, const char *key, size_t len,
                             const char *who, uint64_t *retry_ms, struct cb_error *err);

/* Buckets held right now: only tests read it, to see which buckets room
 * was made from, the table being private to ratelimit.c. */
size_t cb__proxy_ratelimit_count(struct cb_proxy_ratelimit *rl);

#endif
