/* A container's proxy socket: the Unix socket bind-mounted at
 * /run/clawbox/proxy.sock, through which a container (which has no other
 * network) reaches the outside, one request at a time through the proxy
 * pipeline (proxy/pipeline.h) under the container's allowlist and
 * credentials.
 *
 * Two request forms (docs/api.md, "The container proxy socket"):
 *  - `POST /proxy` with the JSON envelope {url, method, headers?, body?}
 *    and `Authorization: Bearer <token>`: 200 {"status","headers","body"};
 *  - the forward form, `METHOD /<absolute http(s) URL>` with any headers
 *    and body and the token in `Proxy-Authorization: Bearer <token>`,
 *    answered with the upstream's status, headers and body.
 * Refusals by the proxy are 403 {"error": "<reason>"}, a missing or wrong
 * token 401 {"error":"unauthorized"}.
 *
 * Only root and the container's own host uids may connect: the socket's
 * directory is root:<gid> 0710 and the socket root:<gid> 0660 (both set
 * before the socket accepts), and every connection's SO_PEERCRED uid is
 * checked on accept.
 *
 * All sockets share one accept thread (an epoll set); a connection is
 * served by a thread of its own while it is open (a few such threads, for
 * all sockets together, wait a while for the next connection), so an
 * idle container costs a listening socket and no thread. Connections are
 * capped per socket (32) and in all (512); past a cap they get a 503.
 *
 * With a network namespace (transparent egress), its listeners
 * and DNS sockets are served the same way under the same policy: the DNS
 * sockets on the accept thread, each TCP connection on a connection
 * thread (64 per container besides the socket's, closed past the cap). */
#ifndef CB_CONTAINERS_PROXYSOCK_H
#define CB_CONTAINERS_PROXYSOCK_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

struct cb_egress_ca;
struct cb_egress_netns;
struct cb_manifest;
struct cb_proxy;

/* The token's length: 64 hex digits. */
#define CB_CT_PROXY_TOKEN_LEN 64
/* Bytes of a request body, in either form (the reference's limit). */
#define CB_CT_PROXY_MAX_BODY (10u * 1024 * 1024)

struct cb_ct_proxy_options {
    const char *container_id;
    const char *dir; /* created root:gid 0710; socket dir/proxy.sock root:gid 0660 */
    gid_t gid;       /* the container's host gid (its uid 1000) */
    uid_t peer_uid_min, peer_uid_max; /* SO_PEERCRED uids accepted besides 0 */
    const char *token;                /* CB_CT_PROXY_TOKEN_LEN hex digits */
    /* The allowlist etc.; name = container id, origin = where its
     * allowlist is set (named in denials). A reference is taken. */
    struct cb_manifest *manifest;
    const json_t *granted;  /* credential names (array), copied; NULL = none */
    struct cb_proxy *proxy; /* must outlive every request: see cb_ct_proxy_drain */
    /* Called on a connection thread for each authenticated request, never
     * after cb_ct_proxy_stop returned. It must be quick and must not take a
     * lock held by a caller of cb_ct_proxy_stop (stop waits for a call in
     * progress). May be NULL. */
    void (*on_request)(void *ud);
    void *ud;
    /* Transparent egress: the container's network namespace,
     * taken over whether start succeeds or not. Its proxy listeners and
     * DNS sockets are served under the same policy as the socket, and stop
     * destroys it. NULL: socket only. */
    struct cb_egress_netns *netns;
    /* With netns, tls = "intercept": the container's CA, taken like netns.
     * Its certificate is written to dir/ca.pem (0644), and TLS the policy
     * admits is terminated with its leaves and run through the pipeline.
     * NULL: TLS is passed through. */
    struct cb_egress_ca *ca;
};

struct cb_ct_proxy;

/* Creates the directory (its parent must exist; an existing directory is
 * reused, a stale socket in it replaced: a restarted server serves an
 * adopted container's bind-mounted directory again) and the socket, and
 * starts serving it. Returns
 * 0 and *out, or a negative code with err saying what failed (nothing is
 * left behind then). */
int cb_ct_proxy_start(const struct cb_ct_proxy_options *o, struct cb_ct_proxy **out,
                      struct cb_error *err);

/* The file of the container's network namespace (for the OCI config), or
 * NULL when p has none. Owned by p. */
const char *cb_ct_proxy_netns_path(const struct cb_ct_proxy *p);

/* From now on every request is 401 (the container ended). Thread-safe. */
void cb_ct_proxy_revoke(struct cb_ct_proxy *p);

/* Stops accepting, ends every connection of this socket, unlinks the
 * socket and removes the directory, and frees p; accepts NULL. Requests
 * already in the proxy pipeline finish in the background (their answers
 * are dropped): cb_ct_proxy_drain waits for them. */
void cb_ct_proxy_stop(struct cb_ct_proxy *p);

/* Waits up to grace_ms until no connection of any proxy socket is open,
 * and returns how many still are. Call it after stopping the sockets and
 * before freeing the struct cb_proxy they use (server shutdown). */
unsigned cb_ct_proxy_drain(uint64_t grace_ms);

#endif
