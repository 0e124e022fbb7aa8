#include "proxy/inflight.h"

#include <pthread.h>
#include <string.h>

#include "core/util.h"

struct flight {
    struct flight *next;
    uint64_t n;
    size_t len;
    char key[];
};

struct cb_proxy_inflight {
    pthread_mutex_t lock;
    struct flight *head; /* keys holding a slot: a short list */
};

struct cb_proxy_inflight *cb_proxy_inflight_new(void)
{
    struct cb_proxy_inflight *f = cb_xcalloc(1, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

void cb__proxy_inflight_free(struct cb_proxy_inflight *f)
{
    if (f == NULL)
        return;
    while (f->head != NULL) {
        struct flight *e = f->head;
        f->head = e->next;
        free(e);
    }
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* The link that points at key's entry (or at NULL). Caller holds the lock. */
static struct flight **find_flight(struct cb_proxy_inflight *f, const char *key, size_t len)
{
    struct flight **pp = &f->head;
    while (*pp != NULL && ((*pp)->len != len || memcmp((*pp)->key, key, len) != 0))
        pp = &(*pp)->next;
    return pp;
}

bool cb__proxy_inflight_take(struct cb_proxy_inflight *f, const char *key, size_t len, uint64_t max,
                             uint64_t *held)
{
    pthread_mutex_lock(&f->lock);
    struct flight **pp = find_flight(f, key, len);
    uint64_t n = *pp != NULL ? (*pp)->n : 0;
    bool ok = n < max;
    if (ok && *pp == NULL) {
        struct flight *e = cb_xcalloc(1, sizeof(*e) + len);
        memcpy(e->key, key, len);
        e->len = len;
        e->next = f->head;
        f->head = e;
        pp = &f->head;
    }
    if (ok)
        (*pp)->n++;
    pthread_mutex_unlock(&f->lock);
    if (!ok && held != NULL)
        *held = n;
    return ok;
}

void cb__proxy_inflight_put(struct cb_proxy_inflight *f, const char *key, size_t len)
{
    pthread_mutex_lock(&f->lock);
    struct flight **pp = find_flight(f, key, len);
    struct flight *e = *pp;
    if (e != NULL && --e->n == 0) {
        *pp = e->next;
        free(e);
    }
    pthread_mutex_unlock(&f->lock);
}
