/* The egress proxy pipeline behind the `http_request` host call (see
 * docs/api.md, "Host calls"). One request goes through a fixed order of stages: parse the
 * URL, rate limit per tool, the tool's allowlist, its limit of requests in
 * flight (network.max_concurrent), the leak scan of what the tool sends,
 * DNS resolution and the address policy, header filtering,
 * credential injection, forwarding, redaction of the response, and one
 * audit line. Any stage may refuse; the refusal is returned to the tool as
 * {"error": "<reason>"} in words a model can act on. */
#ifndef CB_PROXY_PIPELINE_H
#define CB_PROXY_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>

#include "config/config.h"
#include "core/error.h"

struct cb_secret_store;
struct cb_master_key;
struct cb_audit;
struct cb_proxy;
struct cb_leak_scanner;
struct cb_manifest;

/* Builds the proxy from the config. `store` (credentials to inject and to
 * scan for) and `audit` are borrowed and may be NULL; both must outlive the
 * proxy. With a store and its `key` (copied; may be NULL), the proxy
 * watches credentials.store_path: a request at most once a second stats
 * it, and when it changed the store is read again and the leak scanner
 * rebuilt; a reload that changed any credential writes one audit line
 * naming those added, removed and changed (never values). The caller must
 * not modify `store` itself: changes come through the file. Requests in
 * flight keep the credentials they started with. A
 * reload that fails (wrong key, corrupt or vanished file) keeps the loaded
 * credentials and logs an error. Returns NULL with err set for a bad
 * proxy.* setting. */
struct cb_proxy *cb_proxy_new(const struct cb_config *cfg, struct cb_secret_store *store,
                              const struct cb_master_key *key, struct cb_audit *audit,
                              struct cb_error *err);
void cb_proxy_free(struct cb_proxy *p);

/* The leak scanner of the current credentials (every stored secret, as
 * the proxy scans for them), with a reference the caller drops with
 * cb_leak_scanner_free. Like a request, it may first reload a changed
 * store. Never NULL. Thread-safe. */
struct cb_leak_scanner *cb_proxy_scanner_get(struct cb_proxy *p);

/* Why a credential named `name` cannot be injected, or NULL when the store
 * holds it: no master key (so no store is open), or no such name in the
 * store. The text is static. Thread-safe. */
const char *cb_proxy_credential_problem(struct cb_proxy *p, const char *name);

/* Runs one http_request host call for the tool of `manifest` (its name is
 * also the rate limit key; its network.allowlist says where it may go).
 * `granted` is an array of credential names the tool may use for this
 * request (already the intersection of the request's capabilities and the
 * manifest; NULL = none). Returns a new envelope: {"ok": {"status",
 * "headers", "body"}} or {"error": "..."}; the caller owns it. Thread-safe. */
json_t *cb_proxy_http_request(struct cb_proxy *p, const struct cb_manifest *manifest,
                              const json_t *granted, const json_t *params, const char *request_id);

/* The same request for a container's proxy socket: `manifest` carries the
 * container's allowlist, its name is the container id (the audit's tool
 * field) and its origin names that list for denials ("blocked: host H is
 * not in the allowlist for container ID; to allow it, add H to
 * <origin>"). Rate limit and in-flight slots are keyed
 * by the container, apart from any tool's. params' "body" may hold any
 * bytes. Thread-safe. */
json_t *cb_proxy_container_request(struct cb_proxy *p, const struct cb_manifest *manifest,
                                   const json_t *granted, const json_t *params,
                                   const char *request_id);

/* Where a streamed answer goes (cb_proxy_container_stream). Both
 * return false when the client is gone, which ends the transfer. */
struct cb_proxy_sink {
    /* The answer's head: its status and headers (redacted; names lower
     * case; the framing ones, Content-Length and Transfer-Encoding, left
     * for the caller to drop; Content-Encoding gone, as the body comes
     * decoded). With `whole`, body[0..len) is the whole body, redacted,
     * and data is not called; else the body follows through data. */
    bool (*head)(void *ud, long status, const json_t *headers, const char *body, size_t len,
                 bool whole);
    /* The next redacted bytes of the body. */
    bool (*data)(void *ud, const char *bytes, size_t len);
    void *ud;
};

/* A request body read as it goes (cb_proxy_container_stream): read fills
 * buf[0..cap) and sets *n, 0 at the body's end; a negative return ends
 * the request (the caller knows why). length: the body's, or -1 when
 * it is not known (sent on chunked). */
struct cb_proxy_body {
    int (*read)(void *ud, char *buf, size_t cap, size_t *n);
    int64_t length;
    void *ud;
};

/* cb_proxy_container_request with the answer streamed: the
 * upstream's body goes to `sink` redacted as it arrives (scan/redact_stream.h),
 * with memory bounded whatever its size (up to proxy.max_response_bytes
 * decoded). A body that ends within the hold comes whole. Returns
 * {"ok": {"status"}} after the last byte went to the sink, or
 * {"error": "..."}; an error after the head went out means the body was
 * cut off, so the caller must end the connection. The audit line is
 * written before the head when the body is whole, else at the end.
 *
 * With `body` (NULL: params' "body", or none), the request body is read
 * from it: one that ends within CB_REDACT_STREAM_HOLD bytes is read
 * first and scanned whole, before anything is resolved or contacted;
 * a longer one goes upstream as it is read, scanned through a blocking
 * stream (scan/redact_stream.h), and a secret in it aborts the transfer
 * before any byte of its window went out (a leak_blocked audit line and
 * an error). The body may be left partly unread on any error. */
json_t *cb_proxy_container_stream(struct cb_proxy *p, const struct cb_manifest *manifest,
                                  const json_t *granted, const json_t *params,
                                  const char *request_id, const struct cb_proxy_sink *sink,
                                  const struct cb_proxy_body *body);

/* Transparent egress: what a container's network namespace
 * needs besides whole HTTP requests, under the same policy. */

/* Whether the container of `manifest` may reach host[0..len) by its
 * allowlist (the DNS stub's question: nothing is resolved). */
bool cb_proxy_container_allows(struct cb_proxy *p, const struct cb_manifest *manifest,
                               const char *host, size_t len);

/* Writes one audit line of the container's egress that no request went
 * with (a DNS name refused, a connection that is neither HTTP nor TLS),
 * the URL and reason redacted like a request's. */
void cb_proxy_container_audit(struct cb_proxy *p, const struct cb_manifest *manifest,
                              const char *request_id, const char *method, const char *url,
                              const char *decision, const char *reason);

/* Opens a TCP connection for a container's TLS passthrough to
 * host[0..len):port: rate limit, allowlist, resolution and address
 * policy as for a request, then a connect bounded by the proxy's timeout.
 * Writes the audit line (its reason `note` when allowed: what is not
 * inspected). Returns the connected nonblocking fd, or a negative errno
 * with the reason in err (-EACCES: refused by the policy). */
int cb_proxy_container_tunnel(struct cb_proxy *p, const struct cb_manifest *manifest,
                              const char *host, size_t len, uint16_t port, const char *request_id,
                              const char *note, struct cb_error *err);

#endif
