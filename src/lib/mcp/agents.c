/* The three agent tools every tools/list offers: clawbox_start_agent,
 * clawbox_stop_agent and clawbox_list_agents, over the /agents routes.
 * Their results are sentences and a table a model can read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/config.h"
#include "core/buf.h"
#include "core/util.h"
#include "mcp/internal.h"

#define START       "clawbox_start_agent"
#define STOP        "clawbox_stop_agent"
#define LIST_AGENTS "clawbox_list_agents"

static json_t *id_tool(const char *name, const char *description)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}}, s:[s]}}", "name", name, "description",
                     description, "inputSchema", "type", "object", "properties", "agent_id", "type",
                     "string", "description", "the agent's id (clawbox_list_agents)", "required",
                     "agent_id");
}

void cb__mcp_add_agent_tools(json_t *tools)
{
    json_array_append_new(tools, id_tool(START, "Start a registered agent: its container runs "
                                                "with its workspace until it is stopped, goes "
                                                "idle or ends."));
    json_array_append_new(tools, id_tool(STOP, "Stop a running agent; its workspace is kept."));
    json_array_append_new(tools,
                          json_pack("{s:s, s:s, s:{s:s, s:{}}}", "name", LIST_AGENTS, "description",
                                    "List the registered agents with their status.", "inputSchema",
                                    "type", "object", "properties"));
}

bool cb__mcp_is_agent_tool(const char *name)
{
    return name &&
           (strcmp(name, START) == 0 || strcmp(name, STOP) == 0 || strcmp(name, LIST_AGENTS) == 0);
}

static const char *arg_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* POST /agents/{id}/start or /stop, told in words. */
static json_t *start_stop(struct cb_mcp *m, const json_t *args, bool start)
{
    const char *id = json_string_value(json_object_get(args, "agent_id"));
    struct cb_error err = {0};
    if (id == NULL || cb_agent_id_check(id, &err) < 0)
        return cb__mcp_text_result("Error: agent_id must be an agent's id: 1-64 letters, digits "
                                   "and hyphens (clawbox_list_agents shows them)",
                                   true);
    char path[CB_AGENT_ID_MAX + 32];
    snprintf(path, sizeof(path), "/agents/%s/%s", id, start ? "start" : "stop");
    struct cb__mcp_answer a = {0};
    json_t *r;
    if (!cb__mcp_ask(m, "POST", path, NULL, &a)) {
        r = cb__mcp_text_result(a.text, true);
    } else if (start) {
        snprintf(a.text, sizeof(a.text),
                 "Agent %s is %s in container %s; its workspace %s is mounted in it. %s stops "
                 "it.",
                 id, arg_str(a.doc, "status"),
                 json_is_string(json_object_get(a.doc, "container_id"))
                     ? arg_str(a.doc, "container_id")
                     : "(none: it has ended already)",
                 arg_str(a.doc, "workspace_path"), STOP);
        r = cb__mcp_text_result(a.text, false);
    } else {
        snprintf(a.text, sizeof(a.text),
                 "Agent %s is stopped (%s); its container is removed, its workspace %s kept.", id,
                 arg_str(a.doc, "status"), arg_str(a.doc, "workspace_path"));
        r = cb__mcp_text_result(a.text, false);
    }
    json_decref(a.doc);
    return r;
}

static json_t *list_agents(struct cb_mcp *m)
{
    struct cb__mcp_answer a = {0};
    if (!cb__mcp_ask(m, "GET", "/agents", NULL, &a)) {
        json_decref(a.doc);
        return cb__mcp_text_result(a.text, true);
    }
    struct cb_buf b;
    cb_buf_init(&b, CB_CLIENT_MAX_RESPONSE);
    size_t i;
    const json_t *g;
    json_array_foreach(a.doc, i, g)
    {
        cb_buf_printf(&b, "%s  %s  %s  last active %s", arg_str(g, "agent_id"),
                      arg_str(g, "status"), arg_str(g, "name"), arg_str(g, "last_activity"));
        const char *ct = arg_str(g, "container_id"), *why = arg_str(g, "error");
        if (ct[0])
            cb_buf_printf(&b, "  container %s", ct);
        if (why[0])
            cb_buf_printf(&b, "  (%s)", why);
        cb_buf_puts(&b, "\n");
    }
    json_t *r = cb__mcp_text_result(b.len ? b.data : "No agents.", false);
    cb_buf_free(&b);
    json_decref(a.doc);
    return r;
}

json_t *cb__mcp_agent_call(struct cb_mcp *m, const char *name, const json_t *args)
{
    if (strcmp(name, START) == 0)
        return start_stop(m, args, true);
    if (strcmp(name, STOP) == 0)
        return start_stop(m, args, false);
    return list_agents(m);
}
