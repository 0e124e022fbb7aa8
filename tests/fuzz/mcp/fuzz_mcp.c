/* libFuzzer target for `clawbox mcp`: the input is what an MCP client
 * writes on stdin, read by the real loop (cb_mcp_serve: the line reader,
 * JSON-RPC framing, the protocol revisions, tools/list and tools/call with
 * their arguments). The HTTP side is the module's own request hook,
 * answered by a stand-in for `clawbox serve`:
 *   GET /tools            three manifests;
 *   GET /tools/{name}     "echo" (with an output schema), "plain", "creds"
 *                         (credentials.available), "broken" (not JSON),
 *                         anything else 404 tool_not_found;
 *   POST /execute         what the tool would answer, taken from the
 *                         arguments: "__down" fails the connection,
 *                         "__status" (an integer) answers with that status
 *                         and "__body" (a string) as the raw body, else 200
 *                         with "output" (or all the arguments) as the tool's
 *                         output and "__truncated" as output_truncated.
 *
 * Invariants (a broken one calls __builtin_trap()):
 *   - every /execute body is one JSON object with a string "tool", an
 *     object "params" and, when present, capabilities.credentials a list
 *     of strings;
 *   - every message written is one line of one JSON-RPC 2.0 object with
 *     an id (string, integer or null) and exactly one of "result" and
 *     "error"; an error has an integer code and a string message; a
 *     tools/call result's content is a list of text blocks;
 *   - no more messages than input lines. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "mcp/mcp.h"

#define MAX_LINE (64u * 1024)
/* What a pipe holds by default (pipe(7)). */
#define PIPE_HOLDS 65536u

static const char manifests[] =
    "[{\"tool\":{\"name\":\"echo\",\"description\":\"echoes\"},"
    "\"input_schema\":{\"type\":\"object\"},\"output_schema\":{\"type\":\"object\"}},"
    "{\"tool\":{\"name\":\"plain\"},\"input_schema\":{\"type\":\"string\"}},"
    "{\"tool\":{\"name\":\"creds\"},\"credentials\":{\"available\":[\"alpha\",5,\"beta\"]}},"
    "{\"tool\":{}}]";

struct run {
    pthread_mutex_t lock;
    size_t messages;
};

struct writer {
    int fd;
    const uint8_t *p;
    size_t n;
};

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

static void reply(long *status, struct cb_buf *out, long code, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    *status = code;
    cb_buf_append(out, text, strlen(text));
    free(text);
}

static void not_found(long *status, struct cb_buf *out, const char *name)
{
    reply(status, out, 404,
          json_pack("{s:s, s:s}", "error", "tool not found", "code", "tool_not_found"));
    (void)name;
}

static void manifest(const char *name, long *status, struct cb_buf *out)
{
    json_t *all = json_loads(manifests, 0, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m)
    {
        const char *n = json_string_value(json_object_get(json_object_get(m, "tool"), "name"));
        if (n != NULL && strcmp(n, name) == 0) {
            reply(status, out, 200, json_incref(m));
            json_decref(all);
            return;
        }
    }
    json_decref(all);
    if (strcmp(name, "broken") == 0) {
        *status = 200;
        cb_buf_puts(out, "{\"tool\":");
    } else {
        not_found(status, out, name);
    }
}

static void check_execute_body(const json_t *req)
{
    check(json_is_object(req));
    check(json_is_string(json_object_get(req, "tool")));
    check(json_is_object(json_object_get(req, "params")));
    const json_t *caps = json_object_get(req, "capabilities");
    if (caps == NULL)
        return;
    const json_t *creds = json_object_get(caps, "credentials");
    size_t i;
    const json_t *c;
    check(json_is_array(creds));
    json_array_foreach(creds, i, c)
    {
        check(json_is_string(c));
    }
}

static int execute(const char *body, long *status, struct cb_buf *out, struct cb_error *err)
{
    json_t *req = json_loads(body ? body : "", 0, NULL);
    check_execute_body(req);
    json_t *args = json_object_get(req, "params");
    json_t *code = json_object_get(args, "__status");
    const char *raw = json_string_value(json_object_get(args, "__body"));
    int rc = 0;
    if (json_object_get(args, "__down") != NULL) {
        rc = cb_error_set(err, -ECONNREFUSED, "cannot reach clawbox: Connection refused");
    } else if (json_is_integer(code)) {
        *status = (long)json_integer_value(code);
        cb_buf_puts(out, raw ? raw : "");
    } else {
        json_t *output = json_object_get(args, "output");
        reply(status, out, 200,
              json_pack("{s:s, s:O, s:{s:b}}", "status", "ok", "output", output ? output : args,
                        "metadata", "output_truncated",
                        json_is_true(json_object_get(args, "__truncated"))));
    }
    json_decref(req);
    return rc;
}

static int request(void *ud, const char *method, const char *path, const char *body, long *status,
                   struct cb_buf *out, struct cb_error *err)
{
    (void)ud;
    if (strcmp(method, "GET") == 0 && strcmp(path, "/tools") == 0) {
        reply(status, out, 200, json_loads(manifests, 0, NULL));
        return 0;
    }
    if (strcmp(method, "GET") == 0 && strncmp(path, "/tools/", 7) == 0) {
        manifest(path + 7, status, out);
        return 0;
    }
    check(strcmp(method, "POST") == 0 && strcmp(path, "/execute") == 0);
    return execute(body, status, out, err);
}

static void check_content(const json_t *result)
{
    const json_t *content = json_object_get(result, "content");
    if (content == NULL)
        return;
    size_t i;
    const json_t *b;
    check(json_is_array(content) && json_is_boolean(json_object_get(result, "isError")));
    json_array_foreach(content, i, b)
    {
        check(strcmp(json_string_value(json_object_get(b, "type")), "text") == 0);
        check(json_is_string(json_object_get(b, "text")));
    }
}

static int emit(void *ud, const char *msg, size_t len)
{
    struct run *r = ud;
    check(memchr(msg, '\n', len) == NULL);
    json_t *j = json_loadb(msg, len, 0, NULL);
    check(json_is_object(j));
    check(strcmp(json_string_value(json_object_get(j, "jsonrpc")), "2.0") == 0);
    const json_t *id = json_object_get(j, "id");
    check(json_is_string(id) || json_is_integer(id) || json_is_null(id));
    const json_t *result = json_object_get(j, "result");
    const json_t *error = json_object_get(j, "error");
    check((result == NULL) != (error == NULL));
    if (error != NULL)
        check(json_is_integer(json_object_get(error, "code")) &&
              json_is_string(json_object_get(error, "message")));
    else
        check_content(result);
    json_decref(j);
    pthread_mutex_lock(&r->lock);
    r->messages++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void *write_input(void *arg)
{
    struct writer *w = arg;
    for (size_t pos = 0; pos < w->n;) {
        ssize_t k = write(w->fd, w->p + pos, w->n - pos);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            break;
        pos += (size_t)k;
    }
    close(w->fd);
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A reference to curl's global state for the whole run, so that each
 * server's curl_global_init/cleanup pair is only a count; jansson with the
 * aborting allocator, as `clawbox mcp` runs it; and only errors
 * in the log (the tool list's warnings would drown the fuzzer's output). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cb_json_setup();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cb_log_setup(false, CB_LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        __builtin_trap();
    struct run r = {.lock = PTHREAD_MUTEX_INITIALIZER};
    /* An input the pipe holds is written up front; a thread writes a
     * larger one while the loop reads. */
    struct writer w = {fds[1], data, size};
    pthread_t t;
    bool threaded = size > PIPE_HOLDS;
    if (!threaded)
        write_input(&w);
    else if (pthread_create(&t, NULL, write_input, &w) != 0)
        __builtin_trap();
    struct cb_mcp_config cfg = {.request = request, .emit = emit, .emit_ud = &r, .max_inflight = 4};
    struct cb_mcp *m = cb_mcp_new(&cfg);
    struct cb_error err = {0};
    check(cb_mcp_serve(m, fds[0], MAX_LINE, &err) == 0);
    cb_mcp_free(m);
    if (threaded)
        pthread_join(t, NULL);
    close(fds[0]);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    check(r.messages <= lines);
    return 0;
}
