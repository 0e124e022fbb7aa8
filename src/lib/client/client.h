/* The HTTP client used by the CLI verbs (and later `clawbox mcp`) to talk
 * to a running `clawbox serve`, over TCP or the Unix socket. */
#ifndef CB_CLIENT_CLIENT_H
#define CB_CLIENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

/* Largest response body the client accepts. */
#define CB_CLIENT_MAX_RESPONSE (64u * 1024 * 1024)

struct cb_client {
    const char *host;
    unsigned port;
    const char *unix_socket; /* when set, used instead of host:port */
    const char *token;       /* NULL = send no Authorization header */
    long timeout_ms;
};

/* Sends one request. Returns 0 with *status and the body in `out` for any
 * HTTP answer; -ECONNREFUSED (or another negative code) with err set when
 * the server could not be reached. */
int cb_client_request(const struct cb_client *c, const char *method, const char *path,
                      const char *json_body, long *status, struct cb_buf *out,
                      struct cb_error *err);

/* The same with a body read from fd as it is sent (never held whole),
 * as application/octet-stream: `size` bytes, or, with size -1 (a pipe),
 * chunked until fd ends. *sent counts the bytes read; a read error fails
 * the request with its errno. */
int cb_client_upload(const struct cb_client *c, const char *method, const char *path, int fd,
                     int64_t size, uint64_t *sent, long *status, struct cb_buf *out,
                     struct cb_error *err);

/* Receives a streamed body as it arrives; returns 0, or -1 to stop. */
typedef int (*cb_client_sink_fn)(void *ud, const char *data, size_t n);

/* Sends a request whose answer may stream for as long as the server keeps
 * it open (a followed log, a streamed exec), with a JSON body (or NULL)
 * and an Accept header (or NULL): a 2xx body goes to `sink` as it
 * arrives, any other status's body to `out`. Only connecting is under
 * timeout_ms; the transfer has no time limit. Returns as
 * cb_client_request does. */
int cb_client_stream_request(const struct cb_client *c, const char *method, const char *path,
                             const char *json_body, const char *accept, cb_client_sink_fn sink,
                             void *ud, long *status, struct cb_buf *out, struct cb_error *err);

/* Finds the auth token: the `flag` value, else $CLAWBOX_AUTH_TOKEN, else the
 * token file written by `clawbox init` ($HOME/.clawbox/token). Returns a new
 * string, or NULL with err set. */
char *cb_client_resolve_token(const char *flag, struct cb_error *err);

#endif
