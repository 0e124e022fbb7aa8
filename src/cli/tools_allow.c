/* clawbox tools allow|disallow NAME HOST: adds a host to a tool's
 * network.allowlist, or takes it out, where the tool's manifest lives: the
 * registered manifest through the API, else the tool's <name>.json (made
 * from the manifest in force when there is none). */
#include "cli.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/util.h"
#include "proxy/allowlist.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_MAX_CONCURRENT 5

static const char *str_field(const json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v ? v : "";
}

static json_t *fetch_json(struct cli_conn *c, const char *method, const char *path,
                          const char *body, int *rc)
{
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    *rc = cli_request(c, method, path, body, &out);
    json_t *j = *rc == 0 ? json_loadb(out.data, out.len, 0, NULL) : NULL;
    cb_buf_free(&out);
    if (*rc == 0 && j == NULL)
        *rc = cli_fail("the server's answer to %s %s is not JSON", method, path);
    return j;
}

/* Adds host to (or removes it from) doc's network.allowlist; returns
 * whether that changed anything. */
static bool edit_allowlist(json_t *doc, const char *host, bool allow)
{
    json_t *net = json_object_get(doc, "network");
    if (!json_is_object(net)) {
        if (!allow)
            return false;
        net = json_pack("{s:[], s:i}", "allowlist", "max_concurrent", DEFAULT_MAX_CONCURRENT);
        json_object_set_new(doc, "network", net);
    }
    json_t *list = json_object_get(net, "allowlist");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v) || strcmp(json_string_value(v), host) != 0)
            continue;
        if (allow)
            return false;
        json_array_remove(list, i);
        return true;
    }
    if (allow)
        json_array_append_new(list, cb_json_text(host, strlen(host)));
    return allow;
}

static int save_registered(struct cli_conn *c, json_t *doc)
{
    char *text = cb_json_dump_or(doc, JSON_COMPACT, "{}");
    int rc;
    json_decref(fetch_json(c, "POST", "/tools/register", text, &rc));
    free(text);
    return rc;
}

/* Writes the manifest file and has the server load it at once. */
static int save_file(struct cli_conn *c, json_t *doc, const char *file, const char *name)
{
    char *text = cb_json_dump_or(doc, JSON_INDENT(2), "{}");
    struct cb_error err = {0};
    int rc = cb_write_atomic(file, text, strlen(text), &err);
    free(text);
    if (rc < 0)
        return cli_fail("cannot write %s: %s (is the server on another machine? edit it there, "
                        "or register the manifest with clawbox tools register)",
                        file, err.msg);
    json_t *report = fetch_json(c, "POST", "/tools/reload", NULL, &rc);
    json_t *f = cli_reload_entry(report, "failed", name);
    if (f != NULL)
        rc = cli_fail("the server refused tool '%s': %s", name, str_field(f, "error"));
    json_decref(report);
    return rc;
}

int cli_tools_allow(struct cli_conn *c, bool allow, const char *name, const char *host)
{
    struct cb_error err = {0};
    if (allow && cb_proxy_allowlist_entry_check(host, strlen(host), false, &err) < 0)
        return cli_fail("%s", err.msg);
    char *path = cb_xasprintf("/tools/%s", name);
    int rc;
    json_t *d = fetch_json(c, "GET", path, NULL, &rc);
    free(path);
    if (d == NULL)
        return rc;
    bool registered = strcmp(str_field(d, "manifest_source"), "registered") == 0;
    char *file = cb_xstrdup(str_field(d, "manifest_file"));
    /* Only ever NAME.json: the path comes from the server. */
    const char *base = strrchr(file, '/');
    bool named = base != NULL && strncmp(base + 1, name, strlen(name)) == 0 &&
                 strcmp(base + 1 + strlen(name), ".json") == 0;
    if (!registered && !named) {
        free(file);
        json_decref(d);
        return cli_fail("the server did not say where tool %s's manifest file is", name);
    }
    static const char *const added[] = {"state", "manifest_source", "sha256", "manifest_file"};
    for (size_t i = 0; i < CB_ARRAY_LEN(added); i++)
        json_object_del(d, added[i]);
    const char *where = registered ? "the registered manifest" : file;
    if (!edit_allowlist(d, host, allow))
        fprintf(stderr, "%s is already %s for tool %s (%s)\n", host,
                allow ? "allowed" : "not allowed", name, where);
    else if ((rc = registered ? save_registered(c, d) : save_file(c, d, file, name)) == 0)
        fprintf(stderr, "✓ %s %s for tool %s in %s\n", allow ? "Allowed" : "Disallowed", host, name,
                where);
    free(file);
    json_decref(d);
    return rc;
}
