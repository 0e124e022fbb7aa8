/* clawbox_read_file and clawbox_write_file: a file of a running container
 * (or agent) through /containers/{id}/files. The server resolves the path
 * inside the container, redacts text and refuses what may not be read or
 * written; here the answers become words: a text file's content, a
 * directory's listing, or what was written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "core/util.h"
#include "mcp/internal.h"

#define READ  "clawbox_read_file"
#define WRITE "clawbox_write_file"
/* A files URL: the route, the id and the escaped path (4096 bytes, at
 * most three each escaped). */
#define URL_MAX 16384

static json_t *tool(const char *name, const char *description, const char *extra,
                    const char *extra_type, const char *extra_description, bool extra_required)
{
    json_t *props = cb__mcp_place_properties();
    json_object_set_new(props, "path",
                        json_pack("{s:s, s:s}", "type", "string", "description",
                                  "an absolute path in the container, such as /tmp/notes.txt"));
    json_object_set_new(
        props, extra,
        json_pack("{s:s, s:s}", "type", extra_type, "description", extra_description));
    json_t *required =
        extra_required ? json_pack("[s, s]", "path", extra) : json_pack("[s]", "path");
    return json_pack("{s:s, s:s, s:{s:s, s:o, s:o}}", "name", name, "description", description,
                     "inputSchema", "type", "object", "properties", props, "required", required);
}

void cb__mcp_add_file_tools(json_t *tools)
{
    json_array_append_new(tools,
                          tool(READ,
                               "Read a file of a running container or agent (as its user; secrets "
                               "redacted), or list a directory with list: true.",
                               "list", "boolean", "list the directory at path instead", false));
    json_array_append_new(
        tools, tool(WRITE,
                    "Write a text file in a running container or agent: only its /tmp and an "
                    "agent's writable workspace take writes. An existing file is replaced.",
                    "content", "string", "the file's whole text", true));
}

bool cb__mcp_is_file_tool(const char *name)
{
    return name && (strcmp(name, READ) == 0 || strcmp(name, WRITE) == 0);
}

/* "/containers/ID/files?path=P" (and "&list=1"), or an error result. */
static json_t *files_url(struct cb_mcp *m, const json_t *args, bool list, struct cb_buf *url)
{
    const char *path = json_string_value(json_object_get(args, "path"));
    if (path == NULL || path[0] != '/')
        return cb__mcp_text_result("Error: path must be an absolute path such as /tmp/notes.txt",
                                   true);
    char place[CB__MCP_PLACE_MAX];
    json_t *wrong = cb__mcp_place(m, args, place);
    if (wrong != NULL)
        return wrong;
    cb_buf_printf(url, "%s/files?path=", place);
    if (cb_buf_put_query(url, path) < 0 || (list && cb_buf_puts(url, "&list=1") < 0))
        return cb__mcp_text_result("Error: path is too long", true);
    return NULL;
}

/* The request; false with the failure's words in text. */
static bool ask_raw(struct cb_mcp *m, const char *method, const char *url, const char *body,
                    struct cb_buf *out, char *text, size_t n)
{
    struct cb_error err = {0};
    long status = 0;
    int rc = cb__mcp_request(m, method, url, body, &status, out, &err);
    if (rc < 0) {
        cb__mcp_unreachable_text(rc, &err, text, n);
        return false;
    }
    if (status >= 200 && status <= 299)
        return true;
    json_t *doc = json_loadb(out->data ? out->data : "", out->len, 0, NULL);
    cb__mcp_http_failure_text(status, doc, text, n);
    json_decref(doc);
    return false;
}

static json_t *listing(const char *path, const struct cb_buf *body)
{
    json_t *doc = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    struct cb_buf b;
    cb_buf_init(&b, CB_CLIENT_MAX_RESPONSE);
    cb_buf_printf(&b, "%s:\n", path);
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(doc, "entries"), i, e)
    {
        cb_buf_printf(&b, "%s  %s  %" JSON_INTEGER_FORMAT " bytes\n",
                      json_string_value(json_object_get(e, "name")),
                      json_string_value(json_object_get(e, "type")),
                      json_integer_value(json_object_get(e, "size")));
    }
    if (i == 0)
        cb_buf_puts(&b, "(empty)\n");
    if (json_is_true(json_object_get(doc, "truncated")))
        cb_buf_puts(&b, "(more entries past the server's limit)\n");
    json_t *r = cb__mcp_text_result(b.data, false);
    cb_buf_free(&b);
    json_decref(doc);
    return r;
}

static json_t *files_read(struct cb_mcp *m, const json_t *args)
{
    bool list = json_is_true(json_object_get(args, "list"));
    const char *path = json_string_value(json_object_get(args, "path"));
    struct cb_buf url, out;
    cb_buf_init(&url, URL_MAX);
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    char text[CB__MCP_MSG_MAX];
    json_t *r = files_url(m, args, list, &url);
    if (r == NULL && !ask_raw(m, "GET", url.data, NULL, &out, text, sizeof(text)))
        r = cb__mcp_text_result(text, true);
    if (r == NULL && list) {
        r = listing(path, &out);
    } else if (r == NULL && cb_utf8_valid_len(out.data ? out.data : "", out.len) != out.len) {
        snprintf(text, sizeof(text), "%s is a binary file of %zu bytes: not shown as text.", path,
                 out.len);
        r = cb__mcp_text_result(text, false);
    } else if (r == NULL) {
        snprintf(text, sizeof(text), "%s (%zu bytes):", path, out.len);
        r = cb__mcp_text_result(text, false);
        char *content = cb_xstrndup(out.data ? out.data : "", out.len);
        cb__mcp_add_text(r, content);
        free(content);
    }
    cb_buf_free(&url);
    cb_buf_free(&out);
    return r;
}

static json_t *files_write(struct cb_mcp *m, const json_t *args)
{
    const char *content = json_string_value(json_object_get(args, "content"));
    if (content == NULL)
        return cb__mcp_text_result("Error: content is required: the file's text", true);
    struct cb_buf url, out;
    cb_buf_init(&url, URL_MAX);
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    char text[CB__MCP_MSG_MAX];
    json_t *r = files_url(m, args, false, &url);
    if (r == NULL && !ask_raw(m, "PUT", url.data, content, &out, text, sizeof(text)))
        r = cb__mcp_text_result(text, true);
    if (r == NULL) {
        snprintf(text, sizeof(text), "Wrote %zu bytes to %s.", strlen(content),
                 json_string_value(json_object_get(args, "path")));
        r = cb__mcp_text_result(text, false);
    }
    cb_buf_free(&url);
    cb_buf_free(&out);
    return r;
}

json_t *cb__mcp_file_call(struct cb_mcp *m, const char *name, const json_t *args)
{
    return strcmp(name, READ) == 0 ? files_read(m, args) : files_write(m, args);
}
