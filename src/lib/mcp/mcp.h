/* MCP server mode: makes the tools of a running `clawbox serve` available to
 * Model Context Protocol clients over newline-delimited JSON-RPC 2.0 on
 * stdio. Both eras of the protocol are served in one process: the
 * stateless 2026-07-28 revision, whose requests name their revision in
 * params._meta (server/discover, no handshake), and the initialize-based
 * 2025-11-25, 2025-06-18 and 2025-03-26 for requests that do not. The loop
 * reads requests on one thread and runs each request that talks to the
 * server (tools/list, tools/call) on a worker thread of its own, so a slow
 * tool never holds up `ping` or another call. Every message goes out whole
 * on one line, under a lock. Diagnostics go to the log (stderr), never to
 * the output. */
#ifndef CB_MCP_MCP_H
#define CB_MCP_MCP_H

#include <stddef.h>

#include "client/client.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"

/* Longest request line accepted; longer lines are answered with -32700. */
#define CB_MCP_MAX_LINE (10u * 1024 * 1024)
/* Requests served by worker threads at once; more wait in a queue of up to
 * CB_MCP_MAX_QUEUED, and only beyond that are refused (-32000 busy). */
#define CB_MCP_MAX_INFLIGHT 16
#define CB_MCP_MAX_QUEUED   256

/* Sends one HTTP request to clawbox serve, with cb_client_request's
 * contract. Called from worker threads. */
typedef int (*cb_mcp_request_fn)(void *ud, const char *method, const char *path,
                                 const char *json_body, long *status, struct cb_buf *out,
                                 struct cb_error *err);
/* Writes one message (without the newline). Called with the output lock
 * held. Returns 0 or a negative code. */
typedef int (*cb_mcp_emit_fn)(void *ud, const char *msg, size_t len);

struct cb_mcp_config {
    const struct cb_client *client; /* used when `request` is NULL */
    cb_mcp_request_fn request;
    void *request_ud;
    cb_mcp_emit_fn emit; /* NULL: write lines to out_fd */
    void *emit_ud;
    int out_fd;
    unsigned max_inflight; /* 0: CB_MCP_MAX_INFLIGHT */
    unsigned max_queued;   /* 0: CB_MCP_MAX_QUEUED */
    /* How often cb_mcp_serve asks the server whether its tools changed, to
     * send notifications/tools/list_changed; 0: never (and listChanged is
     * false in the capabilities). */
    unsigned watch_ms;
    /* The configuration whose [images.templates] clawbox_spawn_container
     * starts; NULL: none. */
    const struct cb_config *config;
};

struct cb_mcp;

/* Creates a server; the config (and the client it points to) must outlive
 * it. */
struct cb_mcp *cb_mcp_new(const struct cb_mcp_config *cfg);
/* Waits for the requests in flight, then frees the server. Accepts NULL. */
void cb_mcp_free(struct cb_mcp *m);

/* Handles one input line (a JSON-RPC message). Requests that reach the
 * server are answered later, from a worker thread. */
void cb__mcp_handle(struct cb_mcp *m, const char *line, size_t len);
/* Answers a line that was over the length limit. */
void cb__mcp_line_too_long(struct cb_mcp *m, size_t max_line);
/* Waits until no request is in flight. */
void cb__mcp_wait_idle(struct cb_mcp *m);

/* Reads lines from in_fd until end of input, then waits for the requests
 * in flight. Returns 0, or a negative code with err set when reading or
 * writing fails. */
int cb_mcp_serve(struct cb_mcp *m, int in_fd, size_t max_line, struct cb_error *err);

#endif
