/* Internal interfaces of the MCP module, shared by its .c files and its
 * unit tests. */
#ifndef CB_MCP_INTERNAL_H
#define CB_MCP_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "mcp/mcp.h"

/* JSON-RPC 2.0 error codes, one server-defined code, and MCP's code for a
 * protocol version the server does not serve (2026-07-28). */
#define CB__MCP_PARSE_ERROR         (-32700)
#define CB__MCP_INVALID_REQUEST     (-32600)
#define CB__MCP_METHOD_NOT_FOUND    (-32601)
#define CB__MCP_INVALID_PARAMS      (-32602)
#define CB__MCP_INTERNAL_ERROR      (-32603)
#define CB__MCP_BUSY                (-32000)
#define CB__MCP_UNSUPPORTED_VERSION (-32022)

/* Reserved request and result _meta keys of the stateless revisions. */
#define CB__MCP_META_VERSION     "io.modelcontextprotocol/protocolVersion"
#define CB__MCP_META_CLIENT_CAPS "io.modelcontextprotocol/clientCapabilities"
#define CB__MCP_META_SERVER_INFO "io.modelcontextprotocol/serverInfo"

/* Cache hints (ttlMs) of 2026-07-28 results. The tool list can change when
 * a tool is added, and this server sends no list_changed notifications, so
 * it stays fresh for a minute only; what server/discover says changes only
 * with the binary. */
#define CB__MCP_LIST_TTL_MS     60000
#define CB__MCP_DISCOVER_TTL_MS 3600000

/* The protocol revisions served, newest first: the stateless 2026-07-28,
 * then the ones negotiated with initialize. */
extern const char *const cb__mcp_versions[];
extern const size_t cb__mcp_nversions;

/* What a revision's answers look like. */
enum cb__mcp_shape {
    CB__MCP_PLAIN,      /* 2025-03-26: content only */
    CB__MCP_STRUCTURED, /* 2025-06-18, 2025-11-25: outputSchema, object structuredContent */
    CB__MCP_MODERN,     /* 2026-07-28: resultType, cache hints, any JSON structuredContent */
};

/* A request being served by a worker thread. */
struct cb__mcp_slot {
    json_t *id; /* the request being served; NULL once answered */
    bool cancelled;
    bool busy; /* a worker holds the slot, from claim to next_or_finish */
};

struct cb_mcp;
struct cb__mcp_rpc_error;
/* Work done off the reader thread: returns the result, or NULL with e set. */
typedef json_t *(*cb__mcp_work_fn)(struct cb_mcp *m, const json_t *params, enum cb__mcp_shape shape,
                                   struct cb__mcp_rpc_error *e);

/* A request waiting for a free worker; run in arrival order. */
struct cb__mcp_queued {
    json_t *id;
    json_t *params;
    cb__mcp_work_fn fn;
    enum cb__mcp_shape shape;
    bool cancelled;
};

struct cb_mcp {
    struct cb_mcp_config cfg;
    pthread_mutex_t out_lock; /* one message at a time on the output */
    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t idle;
    struct cb__mcp_slot *slots;
    unsigned inflight;            /* running and queued */
    struct cb__mcp_queued *queue; /* a ring of cfg.max_queued */
    unsigned queue_head, queued;
    const char *version; /* revision negotiated by initialize (a cb__mcp_versions entry) */
    bool output_failed;
    bool initialized; /* initialize answered: list_changed may be sent */
    /* watch.c */
    pthread_t watch_thread;
    pthread_cond_t watch_cv;
    bool watching, watch_stop;
};

/* watch.c: notifications/tools/list_changed, when cfg.watch_ms is set. */
void cb__mcp_watch_start(struct cb_mcp *m);
void cb__mcp_watch_stop(struct cb_mcp *m);
/* Sends one message (its reference taken) as one line. */
void cb__mcp_send(struct cb_mcp *m, json_t *msg);

/* Room for a clawbox error message plus our advice on what to do. */
#define CB__MCP_MSG_MAX (CB_ERROR_MSG_MAX + 512)

/* A JSON-RPC error to answer with. */
struct cb__mcp_rpc_error {
    int code;
    char msg[CB__MCP_MSG_MAX];
};

/* The revision to answer an initialize with: the requested one when it is
 * served and negotiated by initialize, else the newest such revision. */
const char *cb__mcp_negotiate(const char *requested);
/* The served revision equal to `requested` (a cb__mcp_versions entry), or
 * NULL. */
const char *cb__mcp_served(const char *requested);
/* The answer shape of a served revision. */
enum cb__mcp_shape cb__mcp_shape_of(const char *version);

/* Sends a request to the server through the configured function. */
int cb__mcp_request(struct cb_mcp *m, const char *method, const char *path, const char *body,
                    long *status, struct cb_buf *out, struct cb_error *err);

/* A manifest's schema made usable as an MCP tool schema: a new reference
 * to an object schema of type "object" (the type added when missing), or
 * NULL when the manifest's schema is absent or of another type. */
json_t *cb__mcp_schema(const json_t *schema);
/* The manifest's output schema as the revision's outputSchema (a new
 * reference), or NULL when the revision has none or the manifest has none
 * it can use: 2026-07-28 takes any JSON Schema object as it is, earlier
 * revisions only object schemas (see cb__mcp_schema). */
json_t *cb__mcp_output_schema(const json_t *manifest, enum cb__mcp_shape shape);
/* The MCP tool for a clawbox manifest (new reference), or NULL when the
 * manifest has no name. */
json_t *cb__mcp_tool_from_manifest(const json_t *manifest, enum cb__mcp_shape shape);
/* The tools/list result, tools sorted by name, or NULL with e set. */
json_t *cb__mcp_tools_list(struct cb_mcp *m, enum cb__mcp_shape shape, struct cb__mcp_rpc_error *e);
/* The tools/call result for validated params (always a result: failures
 * are isError results). */
json_t *cb__mcp_tools_call(struct cb_mcp *m, const json_t *params, enum cb__mcp_shape shape);
/* The CallToolResult for an /execute answer. `manifest` may be NULL. */
json_t *cb__mcp_execute_result(long status, const struct cb_buf *body, const json_t *manifest,
                               enum cb__mcp_shape shape);

/* tools.c: the words of results and failures. */
json_t *cb__mcp_text_result(const char *text, bool is_error);
void cb__mcp_add_text(json_t *result, const char *text);
void cb__mcp_unreachable_text(int rc, const struct cb_error *err, char *out, size_t n);
void cb__mcp_http_failure_text(long status, const json_t *doc, char *out, size_t n);

/* A request of a built-in tool to the server; false (with a text saying
 * why) unless it got a 2xx. The caller frees doc. */
struct cb__mcp_answer {
    long status;
    json_t *doc;
    char text[CB__MCP_MSG_MAX];
};
bool cb__mcp_ask(struct cb_mcp *m, const char *method, const char *path, const char *body,
                 struct cb__mcp_answer *a);

/* containers.c: clawbox_spawn_container, clawbox_kill_container and
 * clawbox_list_containers, always listed (after the server's tools, which
 * they shadow). */
void cb__mcp_add_container_tools(json_t *tools);
bool cb__mcp_is_container_tool(const char *name);
json_t *cb__mcp_container_call(struct cb_mcp *m, const char *name, const json_t *args);
/* The container a tool's arguments name, as the path "/containers/ID"
 * in out: container_id, or agent_id (the agent's running container). NULL,
 * or the error result saying what is wrong. */
#define CB__MCP_PLACE_MAX 64
json_t *cb__mcp_place(struct cb_mcp *m, const json_t *args, char out[CB__MCP_PLACE_MAX]);
/* The schema properties container_id and agent_id (new reference). */
json_t *cb__mcp_place_properties(void);

/* files.c: clawbox_read_file and clawbox_write_file, always listed. */
void cb__mcp_add_file_tools(json_t *tools);
bool cb__mcp_is_file_tool(const char *name);
json_t *cb__mcp_file_call(struct cb_mcp *m, const char *name, const json_t *args);

/* agents.c: clawbox_start_agent, clawbox_stop_agent and
 * clawbox_list_agents, always listed like the container tools. */
void cb__mcp_add_agent_tools(json_t *tools);
bool cb__mcp_is_agent_tool(const char *name);
json_t *cb__mcp_agent_call(struct cb_mcp *m, const char *name, const json_t *args);

#endif
