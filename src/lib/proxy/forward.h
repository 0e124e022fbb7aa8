/* Sends one already-vetted request upstream with libcurl: the address is
 * pinned (the connection may only go to the address that passed the
 * address policy), redirects are not followed, proxy environment
 * variables are ignored, and the response body is capped while it
 * streams. Connections are reused across requests of one trust domain
 * (a pool: one tool with one set of injected credentials) and never
 * across two: should anything ever let a request leave bytes on a
 * connection, they can only reach a request of the same domain. */
#ifndef CB_PROXY_FORWARD_H
#define CB_PROXY_FORWARD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/error.h"

/* Response headers kept, and the bytes of any one header. */
#define CB_FORWARD_MAX_HEADERS      100
#define CB_FORWARD_MAX_HEADER_BYTES 8192

struct cb_forward_request {
    const char *pool; /* trust domain: requests of different pools never
                         share a connection or a TLS session */
    const char *url;  /* canonical URL to send */
    const char *host; /* lower-case host name, for pinning */
    uint16_t port;
    const struct sockaddr *addr; /* the checked address to connect to */
    socklen_t addr_len;
    const char *method;
    const char *const *headers; /* "Name: value" lines, already filtered: none
                                   may frame the message (Content-Length,
                                   Transfer-Encoding, ...), libcurl does */
    size_t n_headers;
    const char *body; /* NULL = none (or read_body) */
    size_t body_len;
    /* A body read as it goes out, when body is NULL: read_body fills
     * buf[0..cap) and sets *n (0 at its end); a negative return aborts
     * the transfer, and cb__forward returns it. read_len: the body's
     * length, or -1 to send it chunked. */
    int (*read_body)(void *ud, char *buf, size_t cap, size_t *n);
    void *body_ud;
    int64_t read_len;
    uint64_t timeout_ms;
    size_t max_response_bytes;
    const char *ca_bundle; /* NULL = system CAs */
    /* Streaming: when set, the body is not kept in the response but given
     * to on_data as it arrives, decoded (libcurl asks for and undoes
     * every content coding it knows, and fails on any other), the
     * response's status and headers complete by the first call. The cap
     * counts decoded bytes. A negative return aborts the transfer, and
     * cb__forward returns it. */
    int (*on_data)(void *ud, const char *data, size_t len);
    void *data_ud;
};

struct cb_forward_response {
    long status;     /* set from the status line as soon as it arrives */
    json_t *headers; /* object: lower-case name -> value (repeats joined by ", ") */
    struct cb_buf body;
};

struct cb_forwarder;

struct cb_forwarder *cb_forwarder_new(void);
void cb__forwarder_free(struct cb_forwarder *f);

/* Returns 0 with the upstream's answer (any status, 3xx included, with its
 * Location header), or a negative code with err saying what failed in
 * words a model can act on (timeout, size cap, connection refused, TLS). */
int cb__forward(struct cb_forwarder *f, const struct cb_forward_request *req,
                struct cb_forward_response *res, struct cb_error *err);
void cb__forward_response_free(struct cb_forward_response *res);

#endif
