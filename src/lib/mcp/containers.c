/* The container tools every tools/list offers: the reference's three
 * (spec §12.3), clawbox_spawn_container (from an image template of the
 * config), clawbox_kill_container and clawbox_list_containers, and
 * clawbox_exec (a command in a running container). Their results are
 * sentences and tables a model can read, not raw HTTP bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/config.h"
#include "config/templates.h"
#include "core/buf.h"
#include "core/util.h"
#include "mcp/internal.h"

/* The answer naming the templates there are. */
#define TEMPLATE_LIST_MAX (64 * 1024)

#define SPAWN           "clawbox_spawn_container"
#define KILL            "clawbox_kill_container"
#define LIST_CONTAINERS "clawbox_list_containers"
#define EXEC            "clawbox_exec"

void cb__mcp_add_container_tools(json_t *tools)
{
    json_array_append_new(
        tools,
        json_pack("{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[s]}}", "name", SPAWN,
                  "description",
                  "Start a hardened container from an image template of the clawbox "
                  "configuration; its only way out is clawbox's proxy.",
                  "inputSchema", "type", "object", "properties", "template", "type", "string",
                  "description", "name of an [images.templates.NAME] entry", "task", "type",
                  "string", "description", "what the container is for", "required", "template"));
    json_array_append_new(
        tools, json_pack("{s:s, s:s, s:{s:s, s:{s:{s:s}}, s:[s]}}", "name", KILL, "description",
                         "Kill and remove a container; returns its last output.", "inputSchema",
                         "type", "object", "properties", "container_id", "type", "string",
                         "required", "container_id"));
    json_array_append_new(tools, json_pack("{s:s, s:s, s:{s:s, s:{}}}", "name", LIST_CONTAINERS,
                                           "description",
                                           "List the containers clawbox runs or ran, with their "
                                           "status.",
                                           "inputSchema", "type", "object", "properties"));
    json_t *props = cb__mcp_place_properties();
    json_object_set_new(props, "command",
                        json_pack("{s:s, s:{s:s}, s:s}", "type", "array", "items", "type", "string",
                                  "description", "the program and its arguments"));
    json_object_set_new(props, "timeout_ms",
                        json_pack("{s:s, s:s}", "type", "integer", "description",
                                  "how long it may run (default: the server's)"));
    json_array_append_new(
        tools,
        json_pack("{s:s, s:s, s:{s:s, s:o, s:[s]}}", "name", EXEC, "description",
                  "Run a command in a running container or agent (as its user, in its "
                  "sandbox) and return its exit code, stdout and stderr (secrets "
                  "redacted). No shell: use [\"/bin/sh\", \"-c\", \"...\"] for one. "
                  "Everything the command started is killed when it ends or times out.",
                  "inputSchema", "type", "object", "properties", props, "required", "command"));
}

bool cb__mcp_is_container_tool(const char *name)
{
    return name && (strcmp(name, SPAWN) == 0 || strcmp(name, KILL) == 0 ||
                    strcmp(name, LIST_CONTAINERS) == 0 || strcmp(name, EXEC) == 0);
}

bool cb__mcp_ask(struct cb_mcp *m, const char *method, const char *path, const char *body,
                 struct cb__mcp_answer *a)
{
    struct cb_error err = {0};
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cb__mcp_request(m, method, path, body, &a->status, &out, &err);
    a->doc = rc == 0 ? json_loadb(out.data ? out.data : "", out.len, 0, NULL) : NULL;
    cb_buf_free(&out);
    if (rc < 0) {
        cb__mcp_unreachable_text(rc, &err, a->text, sizeof(a->text));
        return false;
    }
    if (a->status < 200 || a->status > 299) {
        cb__mcp_http_failure_text(a->status, a->doc, a->text, sizeof(a->text));
        return false;
    }
    return true;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_t *bad_id(void)
{
    return cb__mcp_text_result("Error: container_id must be a container id such as "
                               "clawbox-<uuid> (clawbox_list_containers shows them)",
                               true);
}

static json_t *no_template(const struct cb_config *cfg, const char *name)
{
    struct cb_buf b;
    cb_buf_init(&b, TEMPLATE_LIST_MAX);
    cb_buf_printf(&b, "Error: template '%s' not found. Available templates: [", name ? name : "");
    for (size_t i = 0; cfg && i < cfg->n_templates; i++)
        cb_buf_printf(&b, "%s%s", i ? ", " : "", cfg->templates[i].name);
    cb_buf_puts(&b, "]");
    json_t *r = cb__mcp_text_result(b.data, true);
    cb_buf_free(&b);
    return r;
}

static json_t *spawn_container(struct cb_mcp *m, const json_t *args)
{
    const char *name = json_string_value(json_object_get(args, "template"));
    const struct cb_image_template *t = cb_template_find(m->cfg.config, name);
    if (t == NULL)
        return no_template(m->cfg.config, name);
    json_t *req = cb_template_spawn_body(t, json_string_value(json_object_get(args, "task")));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct cb__mcp_answer a = {0};
    json_t *r;
    if (cb__mcp_ask(m, "POST", "/containers/spawn", body, &a)) {
        snprintf(a.text, sizeof(a.text),
                 "Started container %s from %s (status %s). Programs in it reach allowed hosts "
                 "through %s; %s returns its output.",
                 str(a.doc, "container_id"), str(a.doc, "image"), str(a.doc, "status"),
                 str(a.doc, "proxy_socket"), KILL);
        r = cb__mcp_text_result(a.text, false);
    } else {
        r = cb__mcp_text_result(a.text, true);
    }
    json_decref(a.doc);
    free(body);
    return r;
}

static json_t *kill_container(struct cb_mcp *m, const json_t *args)
{
    const char *id = json_string_value(json_object_get(args, "container_id"));
    if (!cb_name_valid(id))
        return bad_id();
    char path[96];
    snprintf(path, sizeof(path), "/containers/%s", id);
    struct cb__mcp_answer a = {0};
    if (!cb__mcp_ask(m, "DELETE", path, NULL, &a)) {
        json_decref(a.doc);
        return cb__mcp_text_result(a.text, true);
    }
    const json_t *out = json_object_get(a.doc, "output");
    snprintf(a.text, sizeof(a.text), "Killed and removed container %s. %s", id,
             json_is_string(out) && json_string_length(out) > 0 ? "Its output:"
                                                                : "It printed nothing.");
    json_t *r = cb__mcp_text_result(a.text, false);
    if (json_is_string(out) && json_string_length(out) > 0)
        cb__mcp_add_text(r, json_string_value(out));
    json_decref(a.doc);
    return r;
}

static json_t *list_containers(struct cb_mcp *m)
{
    struct cb__mcp_answer a = {0};
    if (!cb__mcp_ask(m, "GET", "/containers", NULL, &a)) {
        json_decref(a.doc);
        return cb__mcp_text_result(a.text, true);
    }
    struct cb_buf b;
    cb_buf_init(&b, CB_CLIENT_MAX_RESPONSE);
    size_t i;
    const json_t *c;
    json_array_foreach(a.doc, i, c)
    {
        cb_buf_printf(&b, "%s  %s  %s  created %s", str(c, "container_id"), str(c, "status"),
                      str(c, "image"), str(c, "created_at"));
        const char *task = str(c, "task_summary"), *why = str(c, "error");
        if (task[0])
            cb_buf_printf(&b, "  task: %.200s", task);
        if (why[0])
            cb_buf_printf(&b, "  (%s)", why);
        cb_buf_puts(&b, "\n");
    }
    json_t *r = cb__mcp_text_result(b.len ? b.data : "No containers.", false);
    cb_buf_free(&b);
    json_decref(a.doc);
    return r;
}

json_t *cb__mcp_place_properties(void)
{
    return json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "container_id", "type", "string",
                     "description", "a running container (clawbox_list_containers); or give",
                     "agent_id", "type", "string", "description",
                     "a running agent, for its container (clawbox_list_agents)");
}

json_t *cb__mcp_place(struct cb_mcp *m, const json_t *args, char out[CB__MCP_PLACE_MAX])
{
    const char *ct = json_string_value(json_object_get(args, "container_id"));
    const char *agent = json_string_value(json_object_get(args, "agent_id"));
    struct cb_error err = {0};
    if ((ct == NULL) == (agent == NULL))
        return cb__mcp_text_result("Error: give either container_id or agent_id", true);
    if (ct != NULL && !cb_name_valid(ct))
        return bad_id();
    if (agent != NULL && cb_agent_id_check(agent, &err) < 0)
        return cb__mcp_text_result("Error: agent_id must be an agent's id: 1-64 letters, digits "
                                   "and hyphens (clawbox_list_agents shows them)",
                                   true);
    if (ct != NULL) {
        snprintf(out, CB__MCP_PLACE_MAX, "/containers/%s", ct);
        return NULL;
    }
    char path[CB_AGENT_ID_MAX + 16];
    snprintf(path, sizeof(path), "/agents/%s", agent);
    struct cb__mcp_answer a = {0};
    json_t *r = NULL;
    const char *id = NULL;
    if (!cb__mcp_ask(m, "GET", path, NULL, &a)) {
        r = cb__mcp_text_result(a.text, true);
    } else if (!cb_name_valid(id = json_string_value(json_object_get(a.doc, "container_id")))) {
        snprintf(a.text, sizeof(a.text),
                 "Error: agent %s is %s, with no container: clawbox_start_agent starts it", agent,
                 str(a.doc, "status"));
        r = cb__mcp_text_result(a.text, true);
    } else {
        snprintf(out, CB__MCP_PLACE_MAX, "/containers/%s", id);
    }
    json_decref(a.doc);
    return r;
}

/* The exit code, then stdout and stderr as texts of their own. */
static json_t *exec_result(const json_t *doc)
{
    char head[256];
    const json_t *code = json_object_get(doc, "exit_code");
    json_int_t ms = json_integer_value(json_object_get(doc, "duration_ms"));
    if (json_is_true(json_object_get(doc, "timed_out")))
        snprintf(head, sizeof(head),
                 "The command ran out of time after %" JSON_INTEGER_FORMAT
                 " ms and was killed, with everything it started.",
                 ms);
    else if (!json_is_integer(code))
        snprintf(head, sizeof(head),
                 "The command was killed (no exit code) after %" JSON_INTEGER_FORMAT " ms.", ms);
    else
        snprintf(head, sizeof(head),
                 "Exit code %" JSON_INTEGER_FORMAT " after %" JSON_INTEGER_FORMAT " ms.",
                 json_integer_value(code), ms);
    json_t *r = cb__mcp_text_result(head, false);
    const char *names[] = {"stdout", "stderr"};
    for (size_t i = 0; i < 2; i++) {
        const char *text = str(doc, names[i]);
        if (text[0] == '\0')
            continue;
        char *t = cb_xasprintf("%s:\n%s", names[i], text);
        cb__mcp_add_text(r, t);
        free(t);
    }
    if (json_is_true(json_object_get(doc, "truncated")))
        cb__mcp_add_text(r, "(output past the server's limit was dropped)");
    return r;
}

static json_t *exec_in(struct cb_mcp *m, const json_t *args)
{
    char place[CB__MCP_PLACE_MAX];
    json_t *wrong = cb__mcp_place(m, args, place);
    if (wrong != NULL)
        return wrong;
    json_t *req = json_pack("{s:O}", "command", json_object_get(args, "command"));
    const json_t *t = json_object_get(args, "timeout_ms");
    if (t != NULL)
        json_object_set(req, "timeout_ms", (json_t *)t);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL)
        return cb__mcp_text_result("Error: command is required: an array of strings", true);
    char path[CB__MCP_PLACE_MAX + 8];
    snprintf(path, sizeof(path), "%s/exec", place);
    struct cb__mcp_answer a = {0};
    json_t *r = cb__mcp_ask(m, "POST", path, body, &a) ? exec_result(a.doc)
                                                       : cb__mcp_text_result(a.text, true);
    json_decref(a.doc);
    free(body);
    return r;
}

json_t *cb__mcp_container_call(struct cb_mcp *m, const char *name, const json_t *args)
{
    if (strcmp(name, SPAWN) == 0)
        return spawn_container(m, args);
    if (strcmp(name, EXEC) == 0)
        return exec_in(m, args);
    if (strcmp(name, KILL) == 0)
        return kill_container(m, args);
    return list_containers(m);
}
