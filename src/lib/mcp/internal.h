/* Internal interfaces of the MCP module, shared by its .c files and its
 * unit tests. */
#ifndef CB_MCP_INTERNAL_H
#define CB_MCP_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "mcp/mcp.h"

/* JSON-RPC 2.0 error codes, and one server-defined code. */
#define CB__MCP_PARSE_ERROR      (-32700)
#define CB__MCP_INVALID_REQUEST  (-32600)
#define CB__MCP_METHOD_NOT_FOUND (-32601)
#define CB__MCP_INVALID_PARAMS   (-32602)
#define CB__MCP_INTERNAL_ERROR   (-32603)
#define CB__MCP_BUSY             (-32000)

/* The protocol revisions served, newest first. */
extern const char *const cb__mcp_versions[];
extern const size_t cb__mcp_nversions;

/* A request being served by a worker thread. */
struct cb__mcp_slot {
    json_t *id; /* NULL when the slot is free */
    bool cancelled;
};

struct cb_mcp {
    struct cb_mcp_config cfg;
    pthread_mutex_t out_lock; /* one message at a time on the output */
    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t idle;
    struct cb__mcp_slot *slots;
    unsigned inflight;
    const char *version; /* negotiated revision (a cb__mcp_versions entry) */
    bool output_failed;
};

/* Room for a clawbox error message plus our advice on what to do. */
#define CB__MCP_MSG_MAX (CB_ERROR_MSG_MAX + 512)

/* A JSON-RPC error to answer with. */
struct cb__mcp_rpc_error {
    int code;
    char msg[CB__MCP_MSG_MAX];
};

/* The revision to answer an initialize with: the requested one when it is
 * served, else the newest. */
const char *cb__mcp_negotiate(const char *requested);
/* True when `version` has outputSchema and structuredContent (2025-06-18+). */
bool cb__mcp_has_structured(const char *version);

/* Sends a request to the server through the configured function. */
int cb__mcp_request(struct cb_mcp *m, const char *method, const char *path, const char *body,
                    long *status, struct cb_buf *out, struct cb_error *err);

/* A manifest's schema made usable as an MCP tool schema: a new reference
 * to an object schema of type "object" (the type added when missing), or
 * NULL when the manifest's schema is absent or of another type. */
json_t *cb__mcp_schema(const json_t *schema);
/* The MCP tool for a clawbox manifest (new reference), or NULL when the
 * manifest has no name. */
json_t *cb__mcp_tool_from_manifest(const json_t *manifest, bool structured);
/* The tools/list result, or NULL with e set. */
json_t *cb__mcp_tools_list(struct cb_mcp *m, bool structured, struct cb__mcp_rpc_error *e);
/* The tools/call result for validated params (always a result: failures
 * are isError results). */
json_t *cb__mcp_tools_call(struct cb_mcp *m, const json_t *params, bool structured);
/* The CallToolResult for an /execute answer. `manifest` may be NULL. */
json_t *cb__mcp_execute_result(long status, const struct cb_buf *body, const json_t *manifest,
                               bool structured);

#endif
