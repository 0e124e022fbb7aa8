#include "http/peers.h"
#include "core/util.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define NBUCKETS 1024

struct peer_entry {
    struct cb_peer_key key;
    unsigned count;
    struct peer_entry *next;
};

struct cb_peers {
    pthread_mutex_t lock;
    unsigned limit;
    struct peer_entry *buckets[NBUCKETS];
};

struct cb_peers *cb_peers_new(unsigned limit)
{
    struct cb_peers *p = cb_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->limit = limit;
    return p;
}

void cb__peers_free(struct cb_peers *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        for (struct peer_entry *e = p->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

bool cb__peer_key_from(const struct sockaddr *sa, socklen_t len, struct cb_peer_key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        k->addr[10] = k->addr[11] = 0xff;
        memcpy(k->addr + 12, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(k->addr, &in6->sin6_addr, 16);
        if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            memset(k->addr + 8, 0, 8); /* the /64 prefix */
        return true;
    }
    return false;
}

static size_t peer_bucket(const struct cb_peer_key *k)
{
    return cb_fnv1a(CB_FNV1A_INIT, k->addr, sizeof(k->addr)) % NBUCKETS;
}

static struct peer_entry **find_peer(struct cb_peers *p, const struct cb_peer_key *k)
{
    struct peer_entry **e = &p->buckets[peer_bucket(k)];
    while (*e != NULL && memcmp((*e)->key.addr, k->addr, sizeof(k->addr)) != 0)
        e = &(*e)->next;
    return e;
}

bool cb__peers_acquire(struct cb_peers *p, const struct cb_peer_key *k)
{
    pthread_mutex_lock(&p->lock);
    struct peer_entry **slot = find_peer(p, k);
    bool ok = *slot == NULL || p->limit == 0 || (*slot)->count < p->limit;
    if (ok && *slot == NULL) {
        *slot = cb_xcalloc(1, sizeof(**slot));
        (*slot)->key = *k;
    }
    if (ok)
        (*slot)->count++;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void cb__peers_release(struct cb_peers *p, const struct cb_peer_key *k)
{
    pthread_mutex_lock(&p->lock);
    struct peer_entry **slot = find_peer(p, k);
    struct peer_entry *e = *slot;
    if (e != NULL && --e->count == 0) {
        *slot = e->next;
        free(e);
    }
    pthread_mutex_unlock(&p->lock);
}

unsigned cb__peers_count(struct cb_peers *p, const struct cb_peer_key *k)
{
    pthread_mutex_lock(&p->lock);
    struct peer_entry *e = *find_peer(p, k);
    unsigned n = e ? e->count : 0;
    pthread_mutex_unlock(&p->lock);
    return n;
}
