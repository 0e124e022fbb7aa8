/* The MCP protocol layer against a fake clawbox server: framing errors,
 * version negotiation, the stateless 2026-07-28 revision (server/discover,
 * per-request _meta, UnsupportedProtocolVersionError) beside the
 * initialize-based ones, the manifest -> tool mapping, /execute -> result
 * mapping, server down, and concurrency (a held tool call must not delay
 * ping; the in-flight bound; cancellation). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "mcp/internal.h"

struct fake {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *out;      /* messages sent by the server */
    json_t *requests; /* [{method, path, body}] received by the fake */
    json_t *manifests;
    bool down;
    bool hold; /* POST /execute of "slow" waits for release */
    bool held; /* a slow call is waiting */
};

static const char manifests_json[] =
    "[{\"tool\":{\"name\":\"echo\",\"description\":\"Echoes.\"},"
    "  \"input_schema\":{\"type\":\"object\",\"additionalProperties\":true},"
    "  \"output_schema\":{\"type\":\"object\",\"required\":[\"echo\"]}},"
    " {\"tool\":{\"name\":\"text\",\"description\":\"Plain text.\"}},"
    " {\"tool\":{\"name\":\"denied\",\"description\":\"Fetches.\"},"
    "  \"credentials\":{\"available\":[\"gh\"]},"
    "  \"output_schema\":{\"type\":\"object\",\"properties\":{\"error\":{\"type\":\"string\"}}}},"
    " {\"tool\":{\"name\":\"weird\"},\"input_schema\":{\"type\":\"string\"},"
    "  \"output_schema\":{\"properties\":{}}},"
    " {\"tool\":{\"name\":\"slow\"}},"
    " {\"tool\":{\"description\":\"no name, skipped\"}}]";

static json_t *find_manifest(struct fake *f, const char *name)
{
    size_t i;
    json_t *mf;
    json_array_foreach(f->manifests, i, mf)
    {
        const char *n = json_string_value(json_object_get(json_object_get(mf, "tool"), "name"));
        if (n && strcmp(n, name) == 0)
            return mf;
    }
    return NULL;
}

static void answer(struct cb_buf *out, long *status, long code, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    cb_buf_puts(out, s);
    free(s);
    json_decref(doc);
    *status = code;
}

static void not_found(struct cb_buf *out, long *status, const char *tool)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "tool '%s' not found", tool);
    answer(out, status, 404,
           json_pack("{s:s, s:s, s:n}", "error", msg, "code", "tool_not_found", "details"));
}

static json_t *run_tool(struct fake *f, const char *tool, json_t *params)
{
    if (strcmp(tool, "echo") == 0)
        return json_pack("{s:s, s:O}", "tool", "echo", "echo", params);
    if (strcmp(tool, "text") == 0)
        return json_string("plain\ntext");
    if (strcmp(tool, "denied") == 0)
        return json_pack("{s:s}", "error", "network access denied: no allowlist");
    if (strcmp(tool, "weird") == 0)
        return json_integer(42);
    pthread_mutex_lock(&f->lock);
    f->held = true;
    pthread_cond_broadcast(&f->cond);
    while (f->hold)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
    return json_pack("{s:b}", "slow", 1);
}

static void execute(struct fake *f, const char *body, long *status, struct cb_buf *out)
{
    json_t *req = json_loads(body, 0, NULL);
    const char *tool = json_string_value(json_object_get(req, "tool"));
    if (find_manifest(f, tool) == NULL) {
        not_found(out, status, tool);
    } else {
        json_t *output = run_tool(f, tool, json_object_get(req, "params"));
        answer(out, status, 200, json_pack("{s:s, s:o}", "status", "ok", "output", output));
    }
    json_decref(req);
}

static int fake_request(void *ud, const char *method, const char *path, const char *body,
                        long *status, struct cb_buf *out, struct cb_error *err)
{
    struct fake *f = ud;
    pthread_mutex_lock(&f->lock);
    json_array_append_new(
        f->requests, json_pack("{s:s, s:s, s:s?}", "method", method, "path", path, "body", body));
    bool down = f->down;
    pthread_mutex_unlock(&f->lock);
    if (down)
        return cb_error_set(err, -ECONNREFUSED,
                            "cannot reach clawbox at http://127.0.0.1:9: Connection refused");
    if (strcmp(path, "/tools") == 0) {
        pthread_mutex_lock(&f->lock);
        json_t *copy = json_deep_copy(f->manifests); /* a test may change them meanwhile */
        pthread_mutex_unlock(&f->lock);
        answer(out, status, 200, copy);
    } else if (strcmp(path, "/agents") == 0) {
        answer(out, status, 200,
               json_pack("[{s:s, s:s, s:s, s:s, s:s, s:n}]", "agent_id", "a-1", "name", "Coder",
                         "status", "running", "container_id", "clawbox-x", "last_activity",
                         "2026-12-07T01:02:03.456Z", "error"));
    } else if (strcmp(path, "/agents/a-1/start") == 0 || strcmp(path, "/agents/a-1/stop") == 0) {
        bool start = strstr(path, "start") != NULL;
        answer(out, status, 200,
               json_pack("{s:s, s:s, s:o, s:s}", "agent_id", "a-1", "status",
                         start ? "running" : "idle", "container_id",
                         start ? json_string("clawbox-x") : json_null(), "workspace_path",
                         "/ws/a-1"));
    } else if (strncmp(path, "/agents/", 8) == 0) {
        answer(out, status, 409,
               json_pack("{s:s, s:s, s:n}", "error", "invalid state: agent b is idle", "code",
                         "invalid_state", "details"));
    } else if (strncmp(path, "/tools/", 7) == 0) {
        json_t *mf = find_manifest(f, path + 7);
        if (mf)
            answer(out, status, 200, json_incref(mf));
        else
            not_found(out, status, path + 7);
    } else {
        execute(f, body, status, out);
    }
    return 0;
}

static int fake_emit(void *ud, const char *msg, size_t len)
{
    struct fake *f = ud;
    assert_null(memchr(msg, '\n', len));
    json_t *j = json_loadb(msg, len, 0, NULL);
    assert_non_null(j);
    pthread_mutex_lock(&f->lock);
    json_array_append_new(f->out, j);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

struct ctx {
    struct fake f;
    struct cb_mcp_config cfg;
    struct cb_mcp *m;
};

static struct ctx *ctx_new(unsigned max_inflight, unsigned max_queued)
{
    struct ctx *c = cb_xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->f.lock, NULL);
    pthread_cond_init(&c->f.cond, NULL);
    c->f.out = json_array();
    c->f.requests = json_array();
    c->f.manifests = json_loads(manifests_json, 0, NULL);
    assert_non_null(c->f.manifests);
    c->cfg = (struct cb_mcp_config){.request = fake_request,
                                    .request_ud = &c->f,
                                    .emit = fake_emit,
                                    .emit_ud = &c->f,
                                    .max_inflight = max_inflight,
                                    .max_queued = max_queued};
    c->m = cb_mcp_new(&c->cfg);
    return c;
}

static int setup(void **state)
{
    *state = ctx_new(0, 0);
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    cb_mcp_free(c->m);
    json_decref(c->f.out);
    json_decref(c->f.requests);
    json_decref(c->f.manifests);
    pthread_cond_destroy(&c->f.cond);
    pthread_mutex_destroy(&c->f.lock);
    free(c);
    return 0;
}

static void send_line(struct ctx *c, const char *line)
{
    cb__mcp_handle(c->m, line, strlen(line));
}

/* The message answering `id` (an integer; -1 for null), or NULL. */
static json_t *reply(struct ctx *c, json_int_t id)
{
    json_t *found = NULL;
    size_t i;
    json_t *msg;
    pthread_mutex_lock(&c->f.lock);
    json_array_foreach(c->f.out, i, msg)
    {
        json_t *mid = json_object_get(msg, "id");
        if ((id < 0 && json_is_null(mid)) ||
            (json_is_integer(mid) && json_integer_value(mid) == id))
            found = msg;
    }
    pthread_mutex_unlock(&c->f.lock);
    return found;
}

static int error_code(json_t *msg)
{
    assert_non_null(msg);
    assert_string_equal(json_string_value(json_object_get(msg, "jsonrpc")), "2.0");
    return (int)json_integer_value(json_object_get(json_object_get(msg, "error"), "code"));
}

static json_t *result_of(struct ctx *c, json_int_t id)
{
    cb__mcp_wait_idle(c->m);
    json_t *msg = reply(c, id);
    assert_non_null(msg);
    json_t *r = json_object_get(msg, "result");
    assert_non_null(r);
    return r;
}

static void initialize(struct ctx *c, const char *version)
{
    char line[300];
    snprintf(line, sizeof(line),
             "{\"jsonrpc\":\"2.0\",\"id\":100,\"method\":\"initialize\",\"params\":"
             "{\"protocolVersion\":\"%s\",\"capabilities\":{},"
             "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}",
             version);
    send_line(c, line);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
}

/* Sends a request in the 2026-07-28 style: `params` (the members before
 * _meta, with a trailing comma, or "") plus _meta with the protocol
 * version, the client capabilities and the client info. */
static void send_stateless(struct ctx *c, int id, const char *method, const char *version,
                           const char *params)
{
    char line[1024];
    snprintf(line, sizeof(line),
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\",\"params\":{%s\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"%s\","
             "\"io.modelcontextprotocol/clientCapabilities\":{},"
             "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}}",
             id, method, params, version);
    send_line(c, line);
}

/* A 2026-07-28 result: complete, and naming the server in _meta. */
static void assert_modern_result(json_t *r)
{
    assert_string_equal(json_string_value(json_object_get(r, "resultType")), "complete");
    json_t *info = json_object_get(json_object_get(r, "_meta"), CB__MCP_META_SERVER_INFO);
    assert_string_equal(json_string_value(json_object_get(info, "name")), "clawbox");
    assert_non_null(json_string_value(json_object_get(info, "version")));
}

static void assert_all_versions(json_t *list)
{
    json_t *want = json_pack("[s,s,s,s]", "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26");
    assert_true(json_equal(list, want));
    json_decref(want);
}

static const char *text_of(json_t *result, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(result, "content"), i), "text"));
}

/* ---- tests ---- */

static void negotiates_versions(void **state)
{
    struct ctx *c = *state;
    const char *cases[][2] = {{"2025-03-26", "2025-03-26"},
                              {"2025-06-18", "2025-06-18"},
                              {"2025-11-25", "2025-11-25"},
                              {"2099-01-01", "2025-11-25"},
                              /* initialize never selects the stateless revision */
                              {"2026-07-28", "2025-11-25"},
                              {"2024-11-05", "2025-11-25"}};
    for (size_t i = 0; i < CB_ARRAY_LEN(cases); i++) {
        json_array_clear(c->f.out);
        initialize(c, cases[i][0]);
        assert_int_equal(json_array_size(c->f.out), 1); /* no answer to the notification */
        json_t *r = result_of(c, 100);
        assert_string_equal(json_string_value(json_object_get(r, "protocolVersion")), cases[i][1]);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(r, "serverInfo"), "name")),
            "clawbox");
        assert_non_null(json_object_get(json_object_get(r, "capabilities"), "tools"));
    }
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}");
    assert_int_equal(error_code(reply(c, 1)), CB__MCP_INVALID_PARAMS);
}

static void framing_errors(void **state)
{
    struct ctx *c = *state;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,");
    assert_int_equal(error_code(reply(c, -1)), CB__MCP_PARSE_ERROR);
    json_array_clear(c->f.out);
    send_line(c, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]");
    assert_int_equal(error_code(reply(c, -1)), CB__MCP_INVALID_REQUEST);
    json_array_clear(c->f.out);
    cb__mcp_line_too_long(c->m, 10);
    assert_int_equal(error_code(reply(c, -1)), CB__MCP_PARSE_ERROR);
    json_array_clear(c->f.out);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}");
    assert_int_equal(error_code(reply(c, -1)), CB__MCP_INVALID_REQUEST);
    send_line(c, "{\"jsonrpc\":\"1.0\",\"id\":2,\"method\":\"ping\"}");
    assert_int_equal(error_code(reply(c, 2)), CB__MCP_INVALID_REQUEST);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/read\"}");
    assert_int_equal(error_code(reply(c, 3)), CB__MCP_METHOD_NOT_FOUND);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\",\"params\":[1]}");
    assert_int_equal(error_code(reply(c, 4)), CB__MCP_INVALID_PARAMS);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"echo\",\"arguments\":[1]}}");
    assert_int_equal(error_code(reply(c, 5)), CB__MCP_INVALID_PARAMS);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{}}");
    assert_int_equal(error_code(reply(c, 6)), CB__MCP_INVALID_PARAMS);
    size_t n = json_array_size(c->f.out);
    /* Notifications, responses and blank lines get no answer. */
    send_line(c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/whatever\"}");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}");
    send_line(c, "  \r");
    assert_int_equal(json_array_size(c->f.out), n);
    assert_int_equal(json_array_size(c->f.requests), 0);
}

static void simple_methods(void **state)
{
    struct ctx *c = *state;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}\r");
    json_t *msg = json_array_get(c->f.out, 0);
    assert_string_equal(json_string_value(json_object_get(msg, "id")), "p");
    assert_int_equal(json_object_size(json_object_get(msg, "result")), 0);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/list\"}");
    assert_int_equal(json_array_size(json_object_get(result_of(c, 2), "resources")), 0);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"prompts/list\"}");
    assert_int_equal(json_array_size(json_object_get(result_of(c, 3), "prompts")), 0);
}

static json_t *tool_named(json_t *tools, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    }
    fail_msg("tool %s not listed", name);
    return NULL;
}

static void lists_tools(void **state)
{
    struct ctx *c = *state;
    initialize(c, "2025-06-18");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
    json_t *tools = json_object_get(result_of(c, 1), "tools");
    /* and the container, agent and file tools */
    assert_int_equal(json_array_size(tools), 5 + 4 + 3 + 2);
    assert_non_null(tool_named(tools, "clawbox_spawn_container"));
    json_t *exec = tool_named(tools, "clawbox_exec");
    /* command; container_id or agent_id */
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(exec, "inputSchema"), "required")), 1);
    assert_non_null(json_object_get(
        json_object_get(json_object_get(exec, "inputSchema"), "properties"), "agent_id"));
    assert_non_null(tool_named(tools, "clawbox_read_file"));
    assert_non_null(tool_named(tools, "clawbox_write_file"));
    json_t *echo = tool_named(tools, "echo");
    assert_string_equal(json_string_value(json_object_get(echo, "description")), "Echoes.");
    assert_true(json_is_true(
        json_object_get(json_object_get(echo, "inputSchema"), "additionalProperties")));
    assert_non_null(json_object_get(json_object_get(echo, "outputSchema"), "required"));
    json_t *text = tool_named(tools, "text");
    json_t *want = json_pack("{s:s}", "type", "object");
    assert_true(json_equal(json_object_get(text, "inputSchema"), want));
    assert_null(json_object_get(text, "outputSchema"));
    json_t *weird = tool_named(tools, "weird");
    assert_true(json_equal(json_object_get(weird, "inputSchema"), want));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(weird, "outputSchema"), "type")),
        "object");
    assert_null(json_object_get(weird, "description"));
    json_decref(want);
}

/* 2025-03-26 has neither outputSchema nor structuredContent. */
static void old_revision_is_unstructured(void **state)
{
    struct ctx *c = *state;
    initialize(c, "2025-03-26");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
    json_t *echo = tool_named(json_object_get(result_of(c, 1), "tools"), "echo");
    assert_null(json_object_get(echo, "outputSchema"));
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"echo\",\"arguments\":{\"a\":1}}}");
    json_t *r = result_of(c, 2);
    assert_null(json_object_get(r, "structuredContent"));
    assert_string_equal(text_of(r, 0), "{\"tool\":\"echo\",\"echo\":{\"a\":1}}");
}

static void calls_echo_with_structured_content(void **state)
{
    struct ctx *c = *state;
    initialize(c, "2025-11-25");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"echo\",\"arguments\":{\"hello\":\"world\"}}}");
    json_t *r = result_of(c, 1);
    assert_false(json_is_true(json_object_get(r, "isError")));
    json_t *sc = json_object_get(r, "structuredContent");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sc, "echo"), "hello")),
                        "world");
    json_t *parsed = json_loads(text_of(r, 0), 0, NULL);
    assert_true(json_equal(parsed, sc));
    json_decref(parsed);
    /* Missing arguments are sent as {}. */
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"echo\"}}");
    sc = json_object_get(result_of(c, 2), "structuredContent");
    assert_true(json_is_object(json_object_get(sc, "echo")));
}

static void agent_tools_answer_in_words(void **state)
{
    struct ctx *c = *state;
    initialize(c, "2025-11-25");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"clawbox_list_agents\"}}");
    json_t *r = result_of(c, 1);
    assert_false(json_is_true(json_object_get(r, "isError")));
    assert_non_null(strstr(text_of(r, 0), "a-1  running  Coder"));
    assert_non_null(strstr(text_of(r, 0), "container clawbox-x"));
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"clawbox_start_agent\",\"arguments\":{\"agent_id\":\"a-1\"}}}");
    r = result_of(c, 2);
    assert_false(json_is_true(json_object_get(r, "isError")));
    assert_non_null(strstr(text_of(r, 0), "Agent a-1 is running in container clawbox-x"));
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"clawbox_stop_agent\",\"arguments\":{\"agent_id\":\"a-1\"}}}");
    r = result_of(c, 3);
    assert_non_null(strstr(text_of(r, 0), "Agent a-1 is stopped (idle)"));
    /* The server's refusal, and an id refused before any request. */
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"clawbox_stop_agent\",\"arguments\":{\"agent_id\":\"b\"}}}");
    r = result_of(c, 4);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_non_null(strstr(text_of(r, 0), "invalid state"));
    size_t before = json_array_size(c->f.requests);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"clawbox_start_agent\",\"arguments\":{\"agent_id\":\"../x\"}}}");
    r = result_of(c, 5);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_non_null(strstr(text_of(r, 0), "agent_id"));
    assert_int_equal(json_array_size(c->f.requests), before);
}

static void string_output_is_text(void **state)
{
    struct ctx *c = *state;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"text\",\"arguments\":{}}}");
    json_t *r = result_of(c, 1);
    assert_string_equal(text_of(r, 0), "plain\ntext");
    assert_null(json_object_get(r, "structuredContent"));
    assert_false(json_is_true(json_object_get(r, "isError")));
}

/* A tool whose output breaks its own output_schema gets isError, with the
 * output still shown. */
static void non_object_output_with_schema(void **state)
{
    struct ctx *c = *state;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"weird\"}}");
    json_t *r = result_of(c, 1);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_string_equal(text_of(r, 1), "42");
    assert_null(json_object_get(r, "structuredContent"));
}

static void unknown_tool_is_error_result(void **state)
{
    struct ctx *c = *state;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"nope\"}}");
    json_t *r = result_of(c, 1);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_string_equal(text_of(r, 0), "tool_not_found: tool 'nope' not found");
    /* A name that cannot be looked up goes to /execute, which refuses it. */
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"../x y\"}}");
    r = result_of(c, 2);
    assert_string_equal(text_of(r, 0), "tool_not_found: tool '../x y' not found");
}

static void denial_is_readable_and_credentials_requested(void **state)
{
    struct ctx *c = *state;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"denied\",\"arguments\":{\"url\":\"https://example.com\"}}}");
    json_t *r = result_of(c, 1);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_string_equal(text_of(r, 0), "network access denied: no allowlist");
    json_t *last = json_array_get(c->f.requests, json_array_size(c->f.requests) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "path")), "/execute");
    json_t *body = json_loads(json_string_value(json_object_get(last, "body")), 0, NULL);
    json_t *want = json_pack("{s:s, s:{s:s}, s:{s:[s]}}", "tool", "denied", "params", "url",
                             "https://example.com", "capabilities", "credentials", "gh");
    assert_true(json_equal(body, want));
    json_decref(body);
    json_decref(want);
}

static void server_down(void **state)
{
    struct ctx *c = *state;
    c->f.down = true;
    initialize(c, "2025-06-18");
    assert_non_null(result_of(c, 100));
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"echo\"}}");
    json_t *r = result_of(c, 1);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_non_null(strstr(text_of(r, 0), "start it with `clawbox serve`"));
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    cb__mcp_wait_idle(c->m);
    json_t *msg = reply(c, 2);
    assert_int_equal(error_code(msg), CB__MCP_INTERNAL_ERROR);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(msg, "error"), "message")),
               "clawbox serve"));
}

static size_t count_method(struct ctx *c, const char *method)
{
    size_t n = 0, i;
    json_t *msg;
    pthread_mutex_lock(&c->f.lock);
    json_array_foreach(c->f.out, i, msg)
    {
        const char *m = json_string_value(json_object_get(msg, "method"));
        n += m != NULL && strcmp(m, method) == 0;
    }
    pthread_mutex_unlock(&c->f.lock);
    return n;
}

/* With watch_ms, an initialised session hears about a changed tool list
 * once per change, and initialize says listChanged. */
static void list_changed_is_announced(void **state)
{
    struct ctx *c = *state;
    c->m->cfg.watch_ms = 10;
    cb__mcp_watch_start(c->m);
    initialize(c, "2025-06-18");
    json_t *tools = json_object_get(json_object_get(result_of(c, 100), "capabilities"), "tools");
    assert_true(json_is_true(json_object_get(tools, "listChanged")));
    usleep(100 * 1000);
    assert_int_equal(count_method(c, "notifications/tools/list_changed"), 0);
    pthread_mutex_lock(&c->f.lock);
    json_array_append_new(c->f.manifests, json_pack("{s:{s:s}}", "tool", "name", "added"));
    pthread_mutex_unlock(&c->f.lock);
    for (int i = 0; i < 5000 && count_method(c, "notifications/tools/list_changed") == 0; i++)
        usleep(1000);
    usleep(100 * 1000);
    assert_int_equal(count_method(c, "notifications/tools/list_changed"), 1);
    cb__mcp_watch_stop(c->m);
}

/* ---- 2026-07-28 ---- */

static void discover_without_initialize(void **state)
{
    struct ctx *c = *state;
    send_stateless(c, 1, "server/discover", "2026-07-28", "");
    json_t *r = result_of(c, 1);
    assert_modern_result(r);
    assert_all_versions(json_object_get(r, "supportedVersions"));
    json_t *tools = json_object_get(json_object_get(r, "capabilities"), "tools");
    assert_true(json_is_false(json_object_get(tools, "listChanged")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "serverInfo"), "name")), "clawbox");
    assert_non_null(json_string_value(json_object_get(r, "instructions")));
    assert_int_equal(json_integer_value(json_object_get(r, "ttlMs")), CB__MCP_DISCOVER_TTL_MS);
    assert_string_equal(json_string_value(json_object_get(r, "cacheScope")), "public");
    assert_null(json_object_get(r, "protocolVersion"));
    /* Discovery needs no server, and is not a handshake. */
    assert_int_equal(json_array_size(c->f.requests), 0);
    /* Without _meta it is a malformed 2026-07-28 request. */
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server/discover\"}");
    assert_int_equal(error_code(reply(c, 2)), CB__MCP_INVALID_PARAMS);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"server/discover\","
                 "\"params\":{\"_meta\":{\"progressToken\":1}}}");
    assert_int_equal(error_code(reply(c, 3)), CB__MCP_INVALID_PARAMS);
}

static void stateless_tools_list(void **state)
{
    struct ctx *c = *state;
    send_stateless(c, 1, "tools/list", "2026-07-28", "");
    json_t *r = result_of(c, 1);
    assert_modern_result(r);
    assert_int_equal(json_integer_value(json_object_get(r, "ttlMs")), CB__MCP_LIST_TTL_MS);
    assert_string_equal(json_string_value(json_object_get(r, "cacheScope")), "private");
    assert_null(json_object_get(r, "nextCursor"));
    json_t *tools = json_object_get(r, "tools");
    const char *order[] = {"clawbox_exec",
                           "clawbox_kill_container",
                           "clawbox_list_agents",
                           "clawbox_list_containers",
                           "clawbox_read_file",
                           "clawbox_spawn_container",
                           "clawbox_start_agent",
                           "clawbox_stop_agent",
                           "clawbox_write_file",
                           "denied",
                           "echo",
                           "slow",
                           "text",
                           "weird"};
    assert_int_equal(json_array_size(tools), CB_ARRAY_LEN(order));
    for (size_t i = 0; i < CB_ARRAY_LEN(order); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(tools, i), "name")),
                            order[i]);
    json_t *echo = tool_named(tools, "echo");
    assert_non_null(json_object_get(json_object_get(echo, "outputSchema"), "required"));
    /* Any JSON Schema object is an outputSchema now, and stays as it is. */
    json_t *weird = tool_named(tools, "weird");
    json_t *want = json_pack("{s:{}}", "properties");
    assert_true(json_equal(json_object_get(weird, "outputSchema"), want));
    json_decref(want);
    /* No cursor was handed out, so none is valid. */
    send_stateless(c, 2, "tools/list", "2026-07-28", "\"cursor\":\"x\",");
    assert_int_equal(error_code(reply(c, 2)), CB__MCP_INVALID_PARAMS);
    send_stateless(c, 3, "prompts/list", "2026-07-28", "");
    r = result_of(c, 3);
    assert_modern_result(r);
    assert_int_equal(json_array_size(json_object_get(r, "prompts")), 0);
    assert_non_null(json_object_get(r, "ttlMs"));
}

static void stateless_tools_call(void **state)
{
    struct ctx *c = *state;
    send_stateless(c, 1, "tools/call", "2026-07-28",
                   "\"name\":\"echo\",\"arguments\":{\"hello\":\"world\"},");
    json_t *r = result_of(c, 1);
    assert_modern_result(r);
    assert_false(json_is_true(json_object_get(r, "isError")));
    json_t *sc = json_object_get(r, "structuredContent");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sc, "echo"), "hello")),
                        "world");
    json_t *parsed = json_loads(text_of(r, 0), 0, NULL);
    assert_true(json_equal(parsed, sc));
    json_decref(parsed);
    /* structuredContent may be any JSON value in 2026-07-28. */
    send_stateless(c, 2, "tools/call", "2026-07-28", "\"name\":\"weird\",");
    r = result_of(c, 2);
    assert_false(json_is_true(json_object_get(r, "isError")));
    assert_int_equal(json_integer_value(json_object_get(r, "structuredContent")), 42);
    assert_string_equal(text_of(r, 0), "42");
    /* Tool errors are still results. */
    send_stateless(c, 3, "tools/call", "2026-07-28", "\"name\":\"nope\",");
    r = result_of(c, 3);
    assert_modern_result(r);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_string_equal(text_of(r, 0), "tool_not_found: tool 'nope' not found");
}

static void stateless_call_server_down(void **state)
{
    struct ctx *c = *state;
    c->f.down = true;
    send_stateless(c, 1, "tools/call", "2026-07-28", "\"name\":\"echo\",\"arguments\":{},");
    json_t *r = result_of(c, 1);
    assert_modern_result(r);
    assert_true(json_is_true(json_object_get(r, "isError")));
    assert_non_null(strstr(text_of(r, 0), "start it with `clawbox serve`"));
    /* A failed tools/list is a JSON-RPC error, with no resultType. */
    send_stateless(c, 2, "tools/list", "2026-07-28", "");
    cb__mcp_wait_idle(c->m);
    assert_int_equal(error_code(reply(c, 2)), CB__MCP_INTERNAL_ERROR);
    assert_null(json_object_get(reply(c, 2), "result"));
}

static void unsupported_version(void **state)
{
    struct ctx *c = *state;
    const char *methods[] = {"server/discover", "tools/list", "tools/call", "ping"};
    for (size_t i = 0; i < CB_ARRAY_LEN(methods); i++) {
        send_stateless(c, (int)i + 1, methods[i], "1900-01-01", "\"name\":\"echo\",");
        json_t *msg = reply(c, (json_int_t)i + 1);
        assert_int_equal(error_code(msg), CB__MCP_UNSUPPORTED_VERSION);
        json_t *err = json_object_get(msg, "error");
        assert_string_equal(json_string_value(json_object_get(err, "message")),
                            "Unsupported protocol version");
        json_t *data = json_object_get(err, "data");
        assert_all_versions(json_object_get(data, "supported"));
        assert_string_equal(json_string_value(json_object_get(data, "requested")), "1900-01-01");
    }
    /* A version that is not a string, and missing client capabilities. */
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/list\",\"params\":"
                 "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":20260728,"
                 "\"io.modelcontextprotocol/clientCapabilities\":{}}}}");
    assert_int_equal(error_code(reply(c, 10)), CB__MCP_INVALID_PARAMS);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"tools/list\",\"params\":"
                 "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}}");
    json_t *msg = reply(c, 11);
    assert_int_equal(error_code(msg), CB__MCP_INVALID_PARAMS);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(msg, "error"), "message")),
               "clientCapabilities"));
    cb__mcp_wait_idle(c->m);
    assert_int_equal(json_array_size(c->f.requests), 0);
}

/* ping and initialize are not part of 2026-07-28: ping is unknown there,
 * and initialize always takes the handshake path. */
static void stateless_has_no_ping(void **state)
{
    struct ctx *c = *state;
    send_stateless(c, 1, "ping", "2026-07-28", "");
    assert_int_equal(error_code(reply(c, 1)), CB__MCP_METHOD_NOT_FOUND);
    send_stateless(c, 2, "logging/setLevel", "2026-07-28", "\"level\":\"debug\",");
    assert_int_equal(error_code(reply(c, 2)), CB__MCP_METHOD_NOT_FOUND);
}

/* The two eras side by side in one process: a stateless request does not
 * change the session's revision, and the session's does not leak into a
 * stateless request. */
static void eras_do_not_mix(void **state)
{
    struct ctx *c = *state;
    initialize(c, "2025-03-26");
    assert_string_equal(json_string_value(json_object_get(result_of(c, 100), "protocolVersion")),
                        "2025-03-26");
    send_stateless(c, 1, "tools/list", "2026-07-28", "");
    json_t *echo = tool_named(json_object_get(result_of(c, 1), "tools"), "echo");
    assert_non_null(json_object_get(echo, "outputSchema"));
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    json_t *r = result_of(c, 2);
    assert_null(json_object_get(r, "resultType"));
    assert_null(json_object_get(r, "ttlMs"));
    assert_null(json_object_get(tool_named(json_object_get(r, "tools"), "echo"), "outputSchema"));
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}");
    assert_int_equal(json_object_size(json_object_get(reply(c, 3), "result")), 0);
    /* A _meta without a protocol version (progressToken only, as the
     * handshake revisions send it) keeps the session's revision. */
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"echo\",\"_meta\":{\"progressToken\":7}}}");
    r = result_of(c, 4);
    assert_null(json_object_get(r, "structuredContent"));
    assert_null(json_object_get(r, "resultType"));
}

/* A handshake revision named in _meta is served statelessly, in that
 * revision's shapes; server/discover listed it. */
static void handshake_revision_in_meta(void **state)
{
    struct ctx *c = *state;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":"
                 "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2025-03-26\"}}}");
    json_t *r = result_of(c, 1);
    assert_null(json_object_get(r, "resultType"));
    assert_null(json_object_get(tool_named(json_object_get(r, "tools"), "echo"), "outputSchema"));
    send_stateless(c, 2, "ping", "2025-11-25", "");
    assert_non_null(json_object_get(reply(c, 2), "result"));
}

static void wait_held(struct ctx *c)
{
    pthread_mutex_lock(&c->f.lock);
    while (!c->f.held)
        pthread_cond_wait(&c->f.cond, &c->f.lock);
    pthread_mutex_unlock(&c->f.lock);
}

static void release(struct ctx *c)
{
    pthread_mutex_lock(&c->f.lock);
    c->f.hold = false;
    pthread_cond_broadcast(&c->f.cond);
    pthread_mutex_unlock(&c->f.lock);
}

static void slow_call_does_not_block(void **state)
{
    struct ctx *c = *state;
    c->f.hold = true;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"slow\"}}");
    wait_held(c);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"text\"}}");
    /* ping is answered at once, and the second call while the first waits. */
    assert_non_null(reply(c, 2));
    for (int i = 0; i < 5000 && reply(c, 3) == NULL; i++)
        usleep(1000);
    assert_non_null(reply(c, 3));
    assert_null(reply(c, 1));
    release(c);
    json_t *r = result_of(c, 1);
    assert_string_equal(text_of(r, 0), "{\"slow\":true}");
}

static void wait_reply(struct ctx *c, int id)
{
    for (int i = 0; i < 5000 && reply(c, id) == NULL; i++)
        usleep(1000);
}

/* Beyond the workers, requests wait in a bounded queue; beyond that they
 * are refused. Cancelled requests, running or queued, get no answer. */
static void inflight_queue_bound_and_cancel(void **state)
{
    (void)state;
    struct ctx *c = ctx_new(1, 1);
    c->f.hold = true;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"slow\"}}");
    wait_held(c);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"text\"}}");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"text\"}}");
    assert_int_equal(error_code(reply(c, 3)), CB__MCP_BUSY);
    assert_null(reply(c, 2)); /* queued, not refused */
    release(c);
    wait_reply(c, 2);
    assert_non_null(result_of(c, 1));
    assert_non_null(result_of(c, 2));

    c->f.held = false;
    c->f.hold = true;
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"slow\"}}");
    wait_held(c);
    send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":"
                 "{\"name\":\"text\"}}");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
                 "{\"requestId\":4,\"reason\":\"user\"}}");
    send_line(c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
                 "{\"requestId\":5,\"reason\":\"user\"}}");
    release(c);
    cb__mcp_wait_idle(c->m);
    assert_null(reply(c, 4));
    assert_null(reply(c, 5));
    void *s = c;
    teardown(&s);
}

/* The whole loop over real file descriptors, with a too-long line. */
static void serve_reads_until_eof(void **state)
{
    (void)state;
    FILE *in = tmpfile(), *out = tmpfile();
    fputs("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n", in);
    for (int i = 0; i < 300; i++)
        fputs("xxxxxxxxxx", in);
    fputs("\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", in);
    fflush(in);
    rewind(in);
    struct cb_mcp_config cfg = {.out_fd = fileno(out)};
    struct cb_mcp *m = cb_mcp_new(&cfg);
    struct cb_error err = {0};
    assert_int_equal(cb_mcp_serve(m, fileno(in), 1000, &err), 0);
    cb_mcp_free(m);
    rewind(out);
    char line[512];
    const char *want[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"request too "
        "large: a line is over 1000 bytes\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n"};
    for (size_t i = 0; i < CB_ARRAY_LEN(want); i++) {
        assert_non_null(fgets(line, sizeof(line), out));
        assert_string_equal(line, want[i]);
    }
    assert_null(fgets(line, sizeof(line), out));
    fclose(in);
    fclose(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(negotiates_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(framing_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(simple_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(lists_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(old_revision_is_unstructured, setup, teardown),
        cmocka_unit_test_setup_teardown(calls_echo_with_structured_content, setup, teardown),
        cmocka_unit_test_setup_teardown(string_output_is_text, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_tools_answer_in_words, setup, teardown),
        cmocka_unit_test_setup_teardown(non_object_output_with_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_tool_is_error_result, setup, teardown),
        cmocka_unit_test_setup_teardown(denial_is_readable_and_credentials_requested, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(server_down, setup, teardown),
        cmocka_unit_test_setup_teardown(discover_without_initialize, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_tools_list, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_tools_call, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_call_server_down, setup, teardown),
        cmocka_unit_test_setup_teardown(unsupported_version, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_has_no_ping, setup, teardown),
        cmocka_unit_test_setup_teardown(eras_do_not_mix, setup, teardown),
        cmocka_unit_test_setup_teardown(handshake_revision_in_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_call_does_not_block, setup, teardown),
        cmocka_unit_test(inflight_queue_bound_and_cancel),
        cmocka_unit_test_setup_teardown(list_changed_is_announced, setup, teardown),
        cmocka_unit_test(serve_reads_until_eof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
