#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "core/util.h"
#include "egress/internal.h"
#include "egress/pool.h"
#include "egress/sniff.h"

#define NO_SLOT UINT32_MAX
/* 198.18.0.0 */
#define V4_BASE 0xc6120000u
static const uint8_t v6_prefix[8] = {0xfd, 0x63, 0x6c, 0x61, 0x77, 0x62, 0x6f, 0x78};

struct pool_slot {
    char *name; /* NULL while free */
    size_t len;
    uint64_t hash;
    uint32_t prev, next; /* the recency list, most recent first */
    uint32_t chain;      /* the next slot in the same bucket */
};

struct cb_egress_pool {
    pthread_mutex_t mu;
    uint32_t cap, used;
    /* The hash is seeded per pool: the container chooses the names. */
    uint64_t seed;
    uint32_t nbuckets; /* a power of two */
    uint32_t *buckets;
    struct pool_slot *slots;
    uint32_t head, tail;
};

struct cb_egress_pool *cb_egress_pool_new(uint32_t capacity)
{
    if (capacity == 0 || capacity > CB_EGRESS_POOL_MAX)
        return NULL;
    struct cb_egress_pool *p = cb_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    p->cap = capacity;
    p->head = p->tail = NO_SLOT;
    p->nbuckets = 16;
    while (p->nbuckets < capacity * 2u)
        p->nbuckets *= 2;
    p->buckets = cb_xmalloc(p->nbuckets * sizeof(*p->buckets));
    memset(p->buckets, 0xff, p->nbuckets * sizeof(*p->buckets));
    p->slots = cb_xcalloc(capacity, sizeof(*p->slots));
    if (cb_random_bytes(&p->seed, sizeof(p->seed)) < 0)
        abort(); /* getrandom cannot fail once the pool is initialised */
    return p;
}

void cb_egress_pool_free(struct cb_egress_pool *p)
{
    if (p == NULL)
        return;
    for (uint32_t i = 0; i < p->used; i++)
        free(p->slots[i].name);
    free(p->slots);
    free(p->buckets);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void unlink_lru(struct cb_egress_pool *p, uint32_t i)
{
    struct pool_slot *s = &p->slots[i];
    if (s->prev != NO_SLOT)
        p->slots[s->prev].next = s->next;
    else
        p->head = s->next;
    if (s->next != NO_SLOT)
        p->slots[s->next].prev = s->prev;
    else
        p->tail = s->prev;
}

static void push_front(struct cb_egress_pool *p, uint32_t i)
{
    struct pool_slot *s = &p->slots[i];
    s->prev = NO_SLOT;
    s->next = p->head;
    if (p->head != NO_SLOT)
        p->slots[p->head].prev = i;
    p->head = i;
    if (p->tail == NO_SLOT)
        p->tail = i;
}

static void touch(struct cb_egress_pool *p, uint32_t i)
{
    if (p->head == i)
        return;
    unlink_lru(p, i);
    push_front(p, i);
}

static uint32_t *bucket_of(struct cb_egress_pool *p, uint64_t h)
{
    return &p->buckets[h & (p->nbuckets - 1)];
}

static uint32_t find_slot(struct cb_egress_pool *p, const char *name, size_t len, uint64_t h)
{
    for (uint32_t i = *bucket_of(p, h); i != NO_SLOT; i = p->slots[i].chain) {
        struct pool_slot *s = &p->slots[i];
        if (s->hash == h && s->len == len && memcmp(s->name, name, len) == 0)
            return i;
    }
    return NO_SLOT;
}

/* Frees the least recently used slot and returns it. */
static uint32_t evict(struct cb_egress_pool *p)
{
    uint32_t i = p->tail;
    struct pool_slot *s = &p->slots[i];
    uint32_t *link = bucket_of(p, s->hash);
    while (*link != i)
        link = &p->slots[*link].chain;
    *link = s->chain;
    unlink_lru(p, i);
    free(s->name);
    s->name = NULL;
    return i;
}

static uint32_t assign(struct cb_egress_pool *p, const char *name, size_t len, uint64_t h)
{
    uint32_t i = p->used < p->cap ? p->used++ : evict(p);
    struct pool_slot *s = &p->slots[i];
    s->name = cb_xstrndup(name, len);
    s->len = len;
    s->hash = h;
    uint32_t *b = bucket_of(p, h);
    s->chain = *b;
    *b = i;
    push_front(p, i);
    return i;
}

static void slot_addrs(uint32_t i, struct in_addr *v4, struct in6_addr *v6)
{
    uint32_t host = i + 1;
    v4->s_addr = htonl(V4_BASE + host);
    memset(v6, 0, sizeof(*v6));
    memcpy(v6->s6_addr, v6_prefix, sizeof(v6_prefix));
    for (int k = 0; k < 4; k++)
        v6->s6_addr[15 - k] = (uint8_t)(host >> (8 * k));
}

int cb__egress_pool_addr(struct cb_egress_pool *p, const char *name, size_t len, struct in_addr *v4,
                         struct in6_addr *v6)
{
    if (len == 0 || len > CB_EGRESS_NAME_MAX)
        return -EINVAL;
    uint64_t h = cb_fnv1a(p->seed, name, len);
    pthread_mutex_lock(&p->mu);
    uint32_t i = find_slot(p, name, len, h);
    if (i == NO_SLOT)
        i = assign(p, name, len, h);
    else
        touch(p, i);
    pthread_mutex_unlock(&p->mu);
    slot_addrs(i, v4, v6);
    return 0;
}

/* The slot an address stands for, or NO_SLOT when it is outside the ranges. */
static uint32_t slot_of(const struct sockaddr *sa)
{
    uint64_t host;
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        if (a < V4_BASE)
            return NO_SLOT;
        host = a - V4_BASE;
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v6_prefix, sizeof(v6_prefix)) != 0 || a[8] | a[9] | a[10] | a[11])
            return NO_SLOT;
        host = (uint64_t)a[12] << 24 | (uint64_t)a[13] << 16 | (uint64_t)a[14] << 8 | a[15];
    } else {
        return NO_SLOT;
    }
    if (host == 0 || host > CB_EGRESS_POOL_MAX)
        return NO_SLOT;
    return (uint32_t)(host - 1);
}

int cb_egress_pool_name(struct cb_egress_pool *p, const struct sockaddr *sa, char *out, size_t cap)
{
    uint32_t i = slot_of(sa);
    int rc = -ENOENT;
    pthread_mutex_lock(&p->mu);
    if (i < p->used && p->slots[i].name != NULL) {
        struct pool_slot *s = &p->slots[i];
        rc = -ENOSPC;
        if (s->len < cap) {
            memcpy(out, s->name, s->len);
            out[s->len] = '\0';
            rc = (int)s->len;
            touch(p, i);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}
