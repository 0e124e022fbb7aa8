/* tools/list and tools/call: clawbox manifests as MCP tools, and /execute
 * answers as CallToolResults. Every failure reaches the model as readable
 * text ("<code>: <message>" or what to do), never as a raw HTTP body. */
#include "mcp/internal.h"

#include "core/log.h"
#include "core/utf8.h"
#include "core/util.h"
#include "sandbox/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Longest tool name looked up with GET /tools/{name}; longer names (and
 * names with other characters) go straight to /execute, which refuses
 * them. */
#define TOOL_NAME_MAX 64

json_t *cb__mcp_schema(const json_t *schema)
{
    if (!json_is_object(schema))
        return NULL;
    const json_t *type = json_object_get(schema, "type");
    if (type == NULL) {
        json_t *copy = json_deep_copy(schema);
        json_object_set_new(copy, "type", json_string("object"));
        return copy;
    }
    if (json_is_string(type) && strcmp(json_string_value(type), "object") == 0)
        return json_deep_copy(schema);
    return NULL;
}

json_t *cb__mcp_output_schema(const json_t *manifest, enum cb__mcp_shape shape)
{
    const json_t *schema = json_object_get(manifest, "output_schema");
    if (shape == CB__MCP_PLAIN)
        return NULL;
    if (shape == CB__MCP_MODERN)
        return json_is_object(schema) ? json_deep_copy(schema) : NULL;
    return cb__mcp_schema(schema);
}

json_t *cb__mcp_tool_from_manifest(const json_t *manifest, enum cb__mcp_shape shape)
{
    const json_t *meta = json_object_get(manifest, "tool");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *desc = json_string_value(json_object_get(meta, "description"));
    const char *state = json_string_value(json_object_get(manifest, "state"));
    if (name == NULL || name[0] == '\0' || (state != NULL && strcmp(state, "failed") == 0))
        return NULL;
    if (state != NULL && strcmp(state, "compiling") == 0)
        desc = "Still being compiled by clawbox; a call waits until it is ready.";
    json_t *in = cb__mcp_schema(json_object_get(manifest, "input_schema"));
    if (in == NULL && json_object_get(manifest, "input_schema") != NULL)
        cb_log(CB_LOG_WARN,
               "mcp: tool %s: input_schema is not an object schema; using "
               "{\"type\":\"object\"}",
               name);
    json_t *tool = json_pack("{s:s, s:o}", "name", name, "inputSchema",
                             in ? in : json_pack("{s:s}", "type", "object"));
    if (desc != NULL)
        json_object_set_new(tool, "description", json_string(desc));
    json_t *out = cb__mcp_output_schema(manifest, shape);
    if (out != NULL)
        json_object_set_new(tool, "outputSchema", out);
    return tool;
}

/* ---- failure texts ---- */

/* Why a request did not reach the server, and what to do about it. */
void cb__mcp_unreachable_text(int rc, const struct cb_error *err, char *out, size_t n)
{
    if (rc == -ECONNREFUSED)
        snprintf(out, n,
                 "%s. The clawbox server is not running: start it with `clawbox serve` "
                 "(clawbox mcp connects to --host/--port, or --socket)",
                 err->msg);
    else
        snprintf(out, n, "%s", err->msg);
}

/* "<code>: <message>" of an ApiError answer, with a hint for auth. */
void cb__mcp_http_failure_text(long status, const json_t *doc, char *out, size_t n)
{
    const char *msg = json_string_value(json_object_get(doc, "error"));
    const char *code = json_string_value(json_object_get(doc, "code"));
    if (msg == NULL) {
        snprintf(out, n, "clawbox answered HTTP %ld without an error description", status);
        return;
    }
    snprintf(out, n, "%s: %s%s", code ? code : "error", msg,
             status == 401 ? " (clawbox mcp sends the token from --token, $CLAWBOX_AUTH_TOKEN "
                             "or ~/.clawbox/token; it must match the server's auth_token)"
                           : "");
}

static json_t *parse_body(const struct cb_buf *body)
{
    return json_loadb(body->data ? body->data : "", body->len, 0, NULL);
}

/* ---- tools/list ---- */

static int tool_by_name(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "name")),
                  json_string_value(json_object_get(y, "name")));
}

/* The tools in a deterministic order (by name), whatever order the server
 * lists them in, so that clients can cache the list (2026-07-28 asks for
 * this; it does no harm to earlier revisions). */
static json_t *tools_from(const json_t *manifests, enum cb__mcp_shape shape)
{
    json_t *all = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(manifests, i, m)
    {
        json_t *t = cb__mcp_tool_from_manifest(m, shape);
        /* A tool named like a built-in one (container, agent, file) is
         * shadowed, as in the reference. */
        const char *name = json_string_value(json_object_get(t, "name"));
        if (t != NULL && !cb__mcp_is_container_tool(name) && !cb__mcp_is_agent_tool(name) &&
            !cb__mcp_is_file_tool(name))
            json_array_append_new(all, t);
        else
            json_decref(t);
    }
    cb__mcp_add_container_tools(all);
    cb__mcp_add_agent_tools(all);
    cb__mcp_add_file_tools(all);
    size_t n = json_array_size(all);
    json_t **sorted = cb_xcalloc(n ? n : 1, sizeof(*sorted));
    for (i = 0; i < n; i++)
        sorted[i] = json_array_get(all, i);
    qsort(sorted, n, sizeof(*sorted), tool_by_name);
    json_t *tools = json_array();
    for (i = 0; i < n; i++)
        json_array_append(tools, sorted[i]);
    free(sorted);
    json_decref(all);
    return json_pack("{s:o}", "tools", tools);
}

json_t *cb__mcp_tools_list(struct cb_mcp *m, enum cb__mcp_shape shape, struct cb__mcp_rpc_error *e)
{
    struct cb_error err = {0};
    struct cb_buf body;
    long status = 0;
    json_t *result = NULL;
    cb_buf_init(&body, CB_CLIENT_MAX_RESPONSE);
    int rc = cb__mcp_request(m, "GET", "/tools", NULL, &status, &body, &err);
    json_t *doc = rc == 0 ? parse_body(&body) : NULL;
    e->code = CB__MCP_INTERNAL_ERROR;
    if (rc < 0)
        cb__mcp_unreachable_text(rc, &err, e->msg, sizeof(e->msg));
    else if (status < 200 || status > 299)
        cb__mcp_http_failure_text(status, doc, e->msg, sizeof(e->msg));
    else if (!json_is_array(doc))
        snprintf(e->msg, sizeof(e->msg),
                 "clawbox answered GET /tools with something else "
                 "than a list of manifests");
    else
        result = tools_from(doc, shape);
    json_decref(doc);
    cb_buf_free(&body);
    return result;
}

/* ---- tools/call ---- */

/* A text block. Messages may hold bytes from outside (or be cut inside a
 * character), so invalid UTF-8 is replaced rather than lost. */
static json_t *text_block(const char *text)
{
    size_t len;
    char *clean = cb_utf8_lossy(text, strlen(text), &len);
    json_t *b = json_pack("{s:s, s:s%}", "type", "text", "text", clean, len);
    free(clean);
    return b;
}

/* A result with one text block. */
json_t *cb__mcp_text_result(const char *text, bool is_error)
{
    return json_pack("{s:[o], s:b}", "content", text_block(text), "isError", is_error);
}

void cb__mcp_add_text(json_t *result, const char *text)
{
    json_array_append_new(json_object_get(result, "content"), text_block(text));
}

/* The output as text: a string as it is, other JSON compact. */
static char *output_text(const json_t *output)
{
    if (json_is_string(output))
        return cb_xstrndup(json_string_value(output), json_string_length(output));
    char *s = json_dumps(output, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : cb_xstrdup("null");
}

/* A tool that prints {"error": "..."} reports its own failure (the
 * http_request tool's proxy denial, bad input): the model gets the message
 * as words, and the whole object as JSON when it says more. */
static json_t *tool_error_result(const json_t *output, const char *msg)
{
    json_t *r = cb__mcp_text_result(msg, true);
    if (json_object_size(output) > 1) {
        char *all = output_text(output);
        cb__mcp_add_text(r, all);
        free(all);
    }
    return r;
}

/* With an output schema, the output is also structuredContent: any JSON
 * value from 2026-07-28 on, only an object before (the schema was made an
 * object schema, so anything else breaks it). */
static json_t *output_result(const json_t *output, const json_t *manifest, enum cb__mcp_shape shape)
{
    const char *tool_err = json_string_value(json_object_get(output, "error"));
    if (tool_err != NULL)
        return tool_error_result(output, tool_err);
    json_t *schema = cb__mcp_output_schema(manifest, shape);
    bool has_schema = schema != NULL;
    json_decref(schema);
    char *text = output_text(output);
    json_t *r;
    if (has_schema && shape != CB__MCP_MODERN && !json_is_object(output)) {
        char msg[CB__MCP_MSG_MAX];
        snprintf(msg, sizeof(msg),
                 "the tool's output is not the JSON object its output_schema "
                 "promises; the output follows");
        r = cb__mcp_text_result(msg, true);
        cb__mcp_add_text(r, text);
    } else {
        r = cb__mcp_text_result(text, false);
        if (has_schema)
            json_object_set(r, "structuredContent", (json_t *)output);
    }
    free(text);
    return r;
}

json_t *cb__mcp_execute_result(long status, const struct cb_buf *body, const json_t *manifest,
                               enum cb__mcp_shape shape)
{
    char msg[CB__MCP_MSG_MAX];
    json_t *doc = parse_body(body);
    const json_t *output = json_object_get(doc, "output");
    json_t *r;
    if (status < 200 || status > 299) {
        cb__mcp_http_failure_text(status, doc, msg, sizeof(msg));
        r = cb__mcp_text_result(msg, true);
    } else if (output == NULL) {
        r = cb__mcp_text_result("clawbox answered /execute without an output", true);
    } else {
        r = output_result(output, manifest, shape);
        if (json_is_true(json_object_get(json_object_get(doc, "metadata"), "output_truncated")))
            cb__mcp_add_text(r, "(clawbox: the output was cut at the server's output limit)");
    }
    json_decref(doc);
    return r;
}

static bool lookup_name(const char *name)
{
    size_t n = strlen(name);
    return n <= TOOL_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* Fetches the tool's manifest into *manifest. Returns NULL on success, or
 * the error result to answer with (unknown tool, server down). */
static json_t *fetch_manifest(struct cb_mcp *m, const char *name, json_t **manifest)
{
    char path[16 + TOOL_NAME_MAX];
    char msg[CB__MCP_MSG_MAX];
    struct cb_error err = {0};
    struct cb_buf body;
    long status = 0;
    json_t *r = NULL;
    snprintf(path, sizeof(path), "/tools/%s", name);
    cb_buf_init(&body, CB_CLIENT_MAX_RESPONSE);
    int rc = cb__mcp_request(m, "GET", path, NULL, &status, &body, &err);
    json_t *doc = rc == 0 ? parse_body(&body) : NULL;
    if (rc < 0) {
        cb__mcp_unreachable_text(rc, &err, msg, sizeof(msg));
        r = cb__mcp_text_result(msg, true);
    } else if (status < 200 || status > 299) {
        cb__mcp_http_failure_text(status, doc, msg, sizeof(msg));
        r = cb__mcp_text_result(msg, true);
    } else {
        *manifest = json_incref(doc);
    }
    json_decref(doc);
    cb_buf_free(&body);
    return r;
}

/* The /execute body. The manifest's credentials.available names are
 * requested on every call: the server injects them only into requests to
 * the domains each credential is bound to, so the tool never sees them. */
static char *execute_body(const char *name, const json_t *args, const json_t *manifest)
{
    json_t *req = json_pack("{s:s, s:o}", "tool", name, "params",
                            json_is_object(args) ? json_incref((json_t *)args) : json_object());
    const json_t *avail = cb_manifest_doc_credentials(manifest);
    json_t *creds = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(avail, i, c)
    {
        if (json_is_string(c))
            json_array_append(creds, (json_t *)c);
    }
    if (json_array_size(creds) > 0)
        json_object_set_new(req, "capabilities", json_pack("{s:O}", "credentials", creds));
    json_decref(creds);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
}

json_t *cb__mcp_tools_call(struct cb_mcp *m, const json_t *params, enum cb__mcp_shape shape)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    if (cb__mcp_is_container_tool(name))
        return cb__mcp_container_call(m, name, json_object_get(params, "arguments"));
    if (cb__mcp_is_agent_tool(name))
        return cb__mcp_agent_call(m, name, json_object_get(params, "arguments"));
    if (cb__mcp_is_file_tool(name))
        return cb__mcp_file_call(m, name, json_object_get(params, "arguments"));
    json_t *manifest = NULL;
    json_t *r = lookup_name(name) ? fetch_manifest(m, name, &manifest) : NULL;
    if (r != NULL)
        return r;
    char *req = execute_body(name, json_object_get(params, "arguments"), manifest);
    struct cb_error err = {0};
    struct cb_buf body;
    long status = 0;
    cb_buf_init(&body, CB_CLIENT_MAX_RESPONSE);
    int rc = cb__mcp_request(m, "POST", "/execute", req, &status, &body, &err);
    if (rc < 0) {
        char msg[CB__MCP_MSG_MAX];
        cb__mcp_unreachable_text(rc, &err, msg, sizeof(msg));
        r = cb__mcp_text_result(msg, true);
    } else {
        r = cb__mcp_execute_result(status, &body, manifest, shape);
    }
    cb_buf_free(&body);
    free(req);
    json_decref(manifest);
    return r;
}
