/* What the parts of the proxy socket share: the socket's lifecycle and
 * accept service (proxysock.c) and the serving of one connection
 * (proxysock_conn.c). */
#ifndef CB_CONTAINERS_PROXYSOCK_INTERNAL_H
#define CB_CONTAINERS_PROXYSOCK_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "containers/proxysock.h"

/* A connection, listed in its socket's `conns` while it is open, so that
 * stop can end it. The fd is closed only after it left the list. */
struct cb__ct_conn {
    int fd;
    struct cb_ct_proxy *p;
    struct cb__ct_conn *prev, *next;
    struct cb__ct_conn *queue_next; /* waiting for an idle thread */
};

struct cb_ct_proxy {
    /* The owner (until stop), the accept service (until it has forgotten
     * the listener) and each open connection. */
    atomic_uint refs;
    char *id;
    char *dir;
    char *sock_path;
    char token[CB_CT_PROXY_TOKEN_LEN + 1];
    atomic_bool revoked;
    struct cb_manifest *manifest;
    json_t *granted;
    struct cb_proxy *proxy;
    void (*on_request)(void *ud);
    void *ud;
    uid_t peer_uid_min, peer_uid_max;
    int listen_fd;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t calls_done;
    bool stopped;
    unsigned calls; /* on_request calls in progress */
    struct cb__ct_conn *conns;
    unsigned nconns;
    struct cb_ct_proxy *retired_next; /* in the accept service's list */
};

/* Serves requests on c until the connection ends (the caller closes it). */
void cb__ct_conn_serve(struct cb__ct_conn *c);

/* Whether `value` (len bytes, a header's value) is "Bearer <token>" with
 * p's token, p not revoked. Constant time in the token. */
bool cb__ct_proxy_token_ok(struct cb_ct_proxy *p, const char *value, size_t len);

/* Records an authenticated request (on_request). False when p is
 * stopped: then the request is dropped. */
bool cb__ct_proxy_note_request(struct cb_ct_proxy *p);

/* Whether p is stopped (its answers go nowhere). */
bool cb__ct_proxy_stopped(struct cb_ct_proxy *p);

#endif
