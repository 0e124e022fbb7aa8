#include "proxy/ratelimit.h"
#include "proxy/internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/util.h"

struct bucket {
    struct bucket *next; /* hash chain */
    double tokens;
    uint64_t last_ns;
    size_t len;
    char key[];
};

struct cb_proxy_ratelimit {
    pthread_mutex_t lock;
    double rate, burst;
    size_t max_keys, count;
    cb_proxy_clock_fn clock;
    void *clock_arg;
    size_t nslots; /* a power of two */
    struct bucket **slots;
};

static uint64_t default_clock(void *arg)
{
    (void)arg;
    return cb_now_mono_ns();
}

int cb__proxy_ratelimit_new(const struct cb_proxy_ratelimit_config *cfg,
                            struct cb_proxy_ratelimit **out, struct cb_error *err)
{
    *out = NULL;
    if (!(cfg->rate > 0) || !isfinite(cfg->rate))
        return cb_error_set(err, -EINVAL, "proxy.rate_limit must be more than 0 requests/s");
    if (!(cfg->burst >= 1) || !isfinite(cfg->burst))
        return cb_error_set(err, -EINVAL, "proxy.rate_limit_burst must be at least 1");
    struct cb_proxy_ratelimit *rl = cb_xcalloc(1, sizeof(*rl));
    pthread_mutex_init(&rl->lock, NULL);
    rl->rate = cfg->rate;
    rl->burst = cfg->burst;
    rl->max_keys = cfg->max_keys ? cfg->max_keys : CB_PROXY_RATELIMIT_DEFAULT_KEYS;
    rl->clock = cfg->clock ? cfg->clock : default_clock;
    rl->clock_arg = cfg->clock_arg;
    rl->nslots = 16;
    while (rl->nslots < rl->max_keys && rl->nslots < ((size_t)1 << 20))
        rl->nslots *= 2;
    rl->slots = cb_xcalloc(rl->nslots, sizeof(*rl->slots));
    *out = rl;
    return 0;
}

void cb__proxy_ratelimit_free(struct cb_proxy_ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->nslots; i++) {
        struct bucket *b = rl->slots[i];
        while (b) {
            struct bucket *next = b->next;
            free(b);
            b = next;
        }
    }
    free(rl->slots);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

/* Keys are server-chosen names, so flooding is not a concern. */
static size_t key_slot(const struct cb_proxy_ratelimit *rl, const char *key, size_t len)
{
    return (size_t)cb_fnv1a(CB_FNV1A_INIT, key, len) & (rl->nslots - 1);
}

/* The chain link that points at the key's bucket (or at NULL). */
static struct bucket **find_bucket(struct cb_proxy_ratelimit *rl, const char *key, size_t len)
{
    struct bucket **pp = &rl->slots[key_slot(rl, key, len)];
    while (*pp && ((*pp)->len != len || memcmp((*pp)->key, key, len) != 0))
        pp = &(*pp)->next;
    return pp;
}

/* The bucket's tokens at `now`, capped at the burst. A clock that went
 * backwards adds nothing. */
static double tokens_at(const struct cb_proxy_ratelimit *rl, const struct bucket *b, uint64_t now)
{
    double t = b->tokens;
    if (now > b->last_ns)
        t += (double)(now - b->last_ns) * rl->rate / 1e9;
    return t < rl->burst ? t : rl->burst;
}

static void refill(const struct cb_proxy_ratelimit *rl, struct bucket *b, uint64_t now)
{
    b->tokens = tokens_at(rl, b, now);
    if (now > b->last_ns)
        b->last_ns = now;
}

static size_t sweep_locked(struct cb_proxy_ratelimit *rl, uint64_t now)
{
    size_t dropped = 0;
    for (size_t i = 0; i < rl->nslots; i++) {
        struct bucket **pp = &rl->slots[i];
        while (*pp) {
            struct bucket *b = *pp;
            if (tokens_at(rl, b, now) < rl->burst) {
                pp = &b->next;
                continue;
            }
            *pp = b->next;
            free(b);
            dropped++;
        }
    }
    rl->count -= dropped;
    return dropped;
}

static void evict_lru_locked(struct cb_proxy_ratelimit *rl)
{
    struct bucket **victim = NULL;
    for (size_t i = 0; i < rl->nslots; i++)
        for (struct bucket **pp = &rl->slots[i]; *pp; pp = &(*pp)->next)
            if (victim == NULL || (*pp)->last_ns < (*victim)->last_ns)
                victim = pp;
    if (victim == NULL)
        return;
    struct bucket *b = *victim;
    *victim = b->next;
    free(b);
    rl->count--;
}

/* Finds or creates the key's bucket, making room if the table is full. */
static struct bucket *bucket_for(struct cb_proxy_ratelimit *rl, const char *key, size_t len,
                                 uint64_t now)
{
    struct bucket **pp = find_bucket(rl, key, len);
    if (*pp)
        return *pp;
    if (rl->count >= rl->max_keys && sweep_locked(rl, now) == 0)
        evict_lru_locked(rl);
    pp = find_bucket(rl, key, len);
    struct bucket *b = cb_xmalloc(sizeof(*b) + len + 1);
    b->next = NULL;
    b->tokens = rl->burst;
    b->last_ns = now;
    b->len = len;
    memcpy(b->key, key, len);
    b->key[len] = '\0';
    *pp = b;
    rl->count++;
    return b;
}

/* Takes a token, or returns the seconds until one is available. */
static double take_locked(struct cb_proxy_ratelimit *rl, const char *key, size_t len)
{
    uint64_t now = rl->clock(rl->clock_arg);
    struct bucket *b = bucket_for(rl, key, len, now);
    refill(rl, b, now);
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    return (1 - b->tokens) / rl->rate;
}

int cb__proxy_ratelimit_take(struct cb_proxy_ratelimit *rl, const char *key, size_t len,
                             const char *who, uint64_t *retry_ms, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    if (len == 0) {
        key = "default";
        len = strlen(key);
    }
    if (len > CB_PROXY_RATELIMIT_KEY_MAX)
        return cb_error_set(err, -EINVAL, "rate limit key is longer than %d bytes",
                            CB_PROXY_RATELIMIT_KEY_MAX);
    pthread_mutex_lock(&rl->lock);
    double wait = take_locked(rl, key, len);
    pthread_mutex_unlock(&rl->lock);
    if (retry_ms)
        *retry_ms = (uint64_t)ceil(wait * 1000);
    if (wait <= 0)
        return 0;
    /* Rounded up to a tenth, so "retry in 0.0 s" never appears. */
    double tenths = ceil(wait * 10);
    return cb_error_set(err, -EAGAIN,
                        "rate limited: %s exceeded %g requests/s (burst %g); retry in %.1f s",
                        who ? who : cb__proxy_quote(key, len, q), rl->rate, rl->burst,
                        (tenths < 1 ? 1 : tenths) / 10);
}

size_t cb__proxy_ratelimit_count(struct cb_proxy_ratelimit *rl)
{
    pthread_mutex_lock(&rl->lock);
    size_t n = rl->count;
    pthread_mutex_unlock(&rl->lock);
    return n;
}
