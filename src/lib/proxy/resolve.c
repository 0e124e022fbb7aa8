#include "proxy/resolve.h"

#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define BUCKETS 256u

struct cache_entry {
    struct cache_entry *next;
    uint64_t expires_ns;
    struct cb_proxy_addrs addrs;
    char name[];
};

struct cb_proxy_resolver {
    pthread_mutex_t lock;
    uint64_t ttl_ns;
    cb_proxy_lookup_fn lookup;
    size_t n;
    struct cache_entry *bucket[BUCKETS];
};

static int system_lookup(const char *name, struct cb_proxy_addrs *out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(name, NULL, &hints, &res);
    if (g != 0)
        return g;
    out->n = 0;
    for (struct addrinfo *ai = res; ai != NULL && out->n < CB_PROXY_RESOLVE_MAX_ADDRS;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(out->addr[0]))
            continue;
        memcpy(&out->addr[out->n], ai->ai_addr, ai->ai_addrlen);
        out->len[out->n++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    return out->n > 0 ? 0 : EAI_NONAME;
}

struct cb_proxy_resolver *cb__proxy_resolver_new(uint64_t ttl_ms, cb_proxy_lookup_fn lookup)
{
    struct cb_proxy_resolver *r = cb_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->ttl_ns = ttl_ms * 1000000u;
    r->lookup = lookup ? lookup : system_lookup;
    return r;
}

/* Drops the entries that expired by now, or, when none had, all of them:
 * the table stays within its bound at the cost of lookups. */
static void prune(struct cb_proxy_resolver *r, uint64_t now, bool all)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct cache_entry **e = &r->bucket[b]; *e != NULL;) {
            struct cache_entry *old = *e;
            if (!all && old->expires_ns > now) {
                e = &old->next;
                continue;
            }
            *e = old->next;
            free(old);
            r->n--;
        }
    }
}

void cb__proxy_resolver_free(struct cb_proxy_resolver *r)
{
    if (r == NULL)
        return;
    prune(r, 0, true);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int cb__proxy_resolve(struct cb_proxy_resolver *r, const char *name, struct cb_proxy_addrs *out)
{
    size_t len = strlen(name);
    size_t b = cb_fnv1a(CB_FNV1A_INIT, name, len) % BUCKETS;
    uint64_t now = cb_now_mono_ns();
    pthread_mutex_lock(&r->lock);
    for (struct cache_entry *e = r->bucket[b]; e != NULL; e = e->next) {
        if (e->expires_ns > now && strcmp(e->name, name) == 0) {
            *out = e->addrs;
            pthread_mutex_unlock(&r->lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&r->lock);
    /* Looked up without the lock: a slow DNS answer holds up no other
     * name. Two requests may look the same name up at once; the later
     * answer is kept. */
    int g = r->lookup(name, out);
    if (g != 0)
        return g;
    struct cache_entry *fresh = cb_xmalloc(sizeof(*fresh) + len + 1);
    fresh->addrs = *out;
    fresh->expires_ns = cb_now_mono_ns() + r->ttl_ns;
    memcpy(fresh->name, name, len + 1);
    pthread_mutex_lock(&r->lock);
    for (struct cache_entry **e = &r->bucket[b]; *e != NULL; e = &(*e)->next) {
        if (strcmp((*e)->name, name) == 0) {
            struct cache_entry *old = *e;
            *e = old->next;
            free(old);
            r->n--;
            break;
        }
    }
    if (r->n >= CB_PROXY_RESOLVE_MAX_NAMES)
        prune(r, now, false);
    if (r->n >= CB_PROXY_RESOLVE_MAX_NAMES)
        prune(r, now, true);
    fresh->next = r->bucket[b];
    r->bucket[b] = fresh;
    r->n++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}
