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
#include <sys/socket.h>
#include <openssl/types.h>
#include <sys/types.h>

#include "containers/proxysock.h"
#include "egress/sniff.h"

/* What a socket in the accept service's epoll set is: the proxy socket,
 * a transparent-egress listener of the container's network namespace, or
 * one of its DNS stub's UDP sockets. The epoll events point at these. */
enum cb__ct_lsn_kind {
    CB__CT_LSN_SOCKET,
    CB__CT_LSN_TCP,
    CB__CT_LSN_DNS,
};

struct cb__ct_lsn {
    struct cb_ct_proxy *p;
    enum cb__ct_lsn_kind kind;
    int fd; /* -1 when unused or closed */
};

/* DNS denials audited per container and second; the rest are counted and
 * named in the next line written. An audit append waits for a disk sync:
 * the lines are written after the accept thread's batch, outside its
 * lock, and a container asking for names in a loop writes few. */
#define CB__CT_DNS_AUDIT_PER_SECOND 20

struct cb__ct_dns_denial {
    char url[CB_EGRESS_NAME_MAX + 16]; /* "dns:<name>" */
    char why[160];
};

/* The proxy socket, two TCP listeners and two DNS sockets. */
#define CB__CT_LSN_MAX 5

/* A connection, listed in its socket's `conns` while it is open, so that
 * stop can end it. The fd is closed only after it left the list. */
struct cb__ct_conn {
    int fd;
    bool transparent; /* accepted on a transparent-egress listener */
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
    struct cb__ct_lsn lsn[CB__CT_LSN_MAX]; /* lsn[0] is the proxy socket */
    struct cb_egress_netns *netns;         /* NULL: socket only */
    struct cb_egress_pool *pool;           /* the DNS stub's, with netns */
    struct cb_egress_ca *ca;               /* tls = intercept: the container's CA */
    SSL_CTX *tls_ctx;                      /* ... and the server side presenting its leaves */
    /* DNS denial audit lines (proxysock_egress.c; accept thread only). */
    uint64_t dns_window_ns, dns_unaudited;
    unsigned dns_audited;
    struct cb__ct_dns_denial dns_pending[CB__CT_DNS_AUDIT_PER_SECOND];
    unsigned dns_npending;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t calls_done;
    bool stopped;
    unsigned calls; /* on_request calls in progress */
    struct cb__ct_conn *conns;
    unsigned nconns[2];               /* open connections: [0] the socket's, [1] transparent */
    struct cb_ct_proxy *retired_next; /* in the accept service's list */
};

/* Where a transparent connection was sent (proxysock_egress.c). */
struct cb__ct_dest {
    struct sockaddr_storage addr;
    socklen_t len;
    uint16_t port;
    bool explicit_proxy; /* sent to the listener's own address */
    bool from_pool;      /* addr is one the DNS stub gave for `name` */
    /* The pool's name, or else the address as text (no brackets). */
    char name[CB_EGRESS_NAME_MAX + 1];
};

/* Serves requests on c until the connection ends (the caller closes it):
 * the proxy socket's (d NULL: the token is required, the envelope and the
 * forward forms) or a transparent connection's to d (plain HTTP to the
 * destination, absolute-URI and CONNECT requests to the listener; with
 * ssl, the requests of an intercepted TLS connection, sent on as https). */
void cb__ct_conn_serve(struct cb__ct_conn *c, const struct cb__ct_dest *d, SSL *ssl);

/* Serves a connection accepted on a transparent listener. */
void cb__ct_egress_serve(struct cb__ct_conn *c);

/* Answers the datagrams waiting on a DNS socket (accept service thread,
 * under its lock), keeping the audit lines of denials for
 * cb__ct_dns_flush, which writes them (the same thread, without its lock,
 * before p can be freed). */
void cb__ct_dns_serve(struct cb__ct_lsn *l);
void cb__ct_dns_flush(struct cb_ct_proxy *p);

/* The rest of a CONNECT to host:port that was answered 200: the tunnel
 * must carry TLS whose server name is host (none for an IP literal), which
 * is then passed through. */
void cb__ct_egress_tunnel(struct cb__ct_conn *c, const struct cb__ct_dest *d, const char *host,
                          uint16_t port);

/* Audits a transparent connection to d refused for `reason`. */
void cb__ct_egress_refuse(struct cb__ct_conn *c, const struct cb__ct_dest *d, const char *reason);

/* Whether `value` (len bytes, a header's value) is "Bearer <token>" with
 * p's token, p not revoked. Constant time in the token. */
bool cb__ct_proxy_token_ok(struct cb_ct_proxy *p, const char *value, size_t len);

/* Records an authenticated request (on_request). False when p is
 * stopped: then the request is dropped. */
bool cb__ct_proxy_note_request(struct cb_ct_proxy *p);

/* Whether p is stopped (its answers go nowhere). */
bool cb__ct_proxy_stopped(struct cb_ct_proxy *p);

#endif
