/* The API server: HTTP/1.1 over TCP and a Unix socket, served by a few
 * epoll threads. Public routes run on the I/O threads; protected routes
 * are authenticated there and then run on the limiter's workers, so a slow
 * handler never blocks other clients. Every request head is parsed and
 * checked by http/parse.c before anything acts on it; connections are
 * capped in total and per client address, and a request head or body
 * that does not arrive in time ends its connection. */
#ifndef CB_HTTP_SERVER_H
#define CB_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "http/router.h"

struct cb_metrics;

struct cb_http_server_options {
    const char *host;
    uint16_t port;
    const char *unix_socket; /* NULL = none */
    const char *auth_token;
    size_t max_body_bytes;
    /* The body limit of CB_ROUTE_RAW routes (file uploads); 0 = max_body_bytes. */
    size_t max_raw_body_bytes;
    /* Where a raw route's body is spooled as it arrives (an unlinked file,
     * so no upload is ever held in memory); NULL = /tmp. */
    const char *spool_dir;
    unsigned threads; /* I/O threads; 0 = one per CPU */
    unsigned max_concurrent;
    unsigned max_queued;
    unsigned queue_timeout_ms;
    unsigned max_connections;             /* open at once, both listeners */
    unsigned max_connections_per_address; /* per TCP client address; 0 = no cap */
    unsigned request_head_timeout_ms;     /* from accept, or the last response */
    unsigned request_body_timeout_ms;     /* from the end of the head */
    struct cb_metrics *metrics;           /* may be NULL */
    void *app;                            /* handed to handlers as req->app */
};

struct cb_http_server;

/* Starts listening and serving. The router must outlive the server. */
int cb_http_server_start(const struct cb_http_server_options *opts, const struct cb_router *router,
                         struct cb_http_server **out, struct cb_error *err);
uint16_t cb_http_server_port(const struct cb_http_server *s);
/* Stops accepting new connections. */
void cb_http_server_quiesce(struct cb_http_server *s);
/* Waits until no request is in flight, up to grace_ms. Returns the number
 * still in flight. */
unsigned cb_http_server_drain(struct cb_http_server *s, uint64_t grace_ms);
/* Closes every connection, removes the Unix socket and frees the server.
 * Returns false when a handler still runs a second after the other
 * connections closed: then nothing is freed, and the caller must not free
 * what handlers use (the router, the app) either. */
bool cb_http_server_stop(struct cb_http_server *s);

#endif
