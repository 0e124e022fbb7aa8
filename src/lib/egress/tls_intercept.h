/* Both TLS ends of an intercepted connection (tls =
 * "intercept"), with OpenSSL.
 *
 * Toward the container, clawbox is the server: one SSL_CTX per container
 * CA (tls_ca.h) presents, for each handshake, the leaf of the name the
 * ClientHello asks for (SNI), which must be the name the listener peeked
 * and judged. A ClientHello without SNI is refused with an
 * unrecognized_name alert unless the caller says the connection was made
 * to an IP literal, whose leaf then names that address. Only TLS 1.2 and
 * 1.3, and ALPN selects http/1.1 or nothing: the pipeline behind speaks
 * HTTP/1.x.
 *
 * Toward the upstream, clawbox is the client: one SSL_CTX verifying
 * against the system store plus proxy.ca_bundle when set, with SNI and
 * host name (or IP address) verification on every connection.
 *
 * A handshake is begun on a connected nonblocking fd and driven by
 * cb_egress_tls_step until done, so that it fits an event loop;
 * cb_egress_tls_finish does the same on the calling thread, bounded by a
 * timeout. The fd stays the caller's: SSL_free does not close it.
 * OpenSSL writes to it with write(2), so the process must ignore SIGPIPE
 * (serve does). */
#ifndef CB_EGRESS_TLS_INTERCEPT_H
#define CB_EGRESS_TLS_INTERCEPT_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "egress/tls_ca.h"

/* A server context presenting ca's leaves; ca must outlive it. Returns 0
 * with *out set (SSL_CTX_free), or -EIO. */
int cb_egress_tls_server_ctx(struct cb_egress_ca *ca, SSL_CTX **out, struct cb_error *err);

/* Starts the server side of a handshake on fd, whose first bytes (a
 * ClientHello, peeked and not consumed) are still to be read.
 * name[0..len) is what the listener judged: the SNI it peeked
 * (cb_egress_tls_sni), which the handshake's SNI must then equal (case
 * aside); or, for a ClientHello without SNI, the IP literal the client
 * connected to, the only case in which no SNI is accepted. With len 0,
 * any SNI gets its leaf and a ClientHello without SNI is refused. Returns
 * 0 with *out set (SSL_free), -EINVAL for a name over 253 bytes, or -EIO. */
int cb_egress_tls_accept_begin(SSL_CTX *ctx, int fd, const char *name, size_t len, SSL **out,
                               struct cb_error *err);
/* The fd of either begin function must be nonblocking (else -EINVAL). */

/* A client context for upstreams: the system's trusted CAs and, when
 * ca_bundle is not NULL, the certificates of that PEM file as well
 * (proxy.ca_bundle). Returns 0 with *out set (SSL_CTX_free), -ENOENT when
 * the bundle cannot be read, or -EIO. */
int cb_egress_tls_client_ctx(const char *ca_bundle, SSL_CTX **out, struct cb_error *err);

/* Starts the client side of a handshake on fd toward host[0..len): a host
 * name (sent as SNI and checked against the certificate's names) or an IP
 * literal (checked against its IP addresses; no SNI). Returns 0 with *out
 * set (SSL_free), -EINVAL for an empty or too long host, or -EIO. */
int cb_egress_tls_connect_begin(SSL_CTX *ctx, int fd, const char *host, size_t len, SSL **out,
                                struct cb_error *err);

/* Advances a handshake begun above by what the fd allows without waiting.
 * Returns 0 when it is complete; 1 when it waits for the fd, with *events
 * set to POLLIN or POLLOUT; or a negative errno with the reason in err:
 * -EPROTO for a TLS failure (an alert sent or received; a refused SNI; a
 * certificate that does not verify, named in the message), -ECONNRESET
 * when the peer went away. After a failure, free the SSL. */
int cb_egress_tls_step(SSL *ssl, short *events, struct cb_error *err);

/* cb_egress_tls_step until done on the calling thread, waiting with poll.
 * Returns 0, -ETIMEDOUT once timeout_ms have passed, or what step says. */
int cb_egress_tls_finish(SSL *ssl, uint64_t timeout_ms, struct cb_error *err);

#endif
