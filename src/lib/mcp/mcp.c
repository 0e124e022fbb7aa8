#include "mcp/internal.h"
#include "mcp/reader.h"

#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

const char *const cb__mcp_versions[] = {"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"};
const size_t cb__mcp_nversions = CB_ARRAY_LEN(cb__mcp_versions);

static const char instructions[] =
    "Each tool runs once in a clawbox WebAssembly sandbox with no network access beyond its "
    "manifest's allowlist.";

const char *cb__mcp_served(const char *requested)
{
    for (size_t i = 0; requested != NULL && i < cb__mcp_nversions; i++)
        if (strcmp(requested, cb__mcp_versions[i]) == 0)
            return cb__mcp_versions[i];
    return NULL;
}

enum cb__mcp_shape cb__mcp_shape_of(const char *version)
{
    /* Revisions are dates, so they compare as strings. */
    if (strcmp(version, "2026-07-28") >= 0)
        return CB__MCP_MODERN;
    return strcmp(version, "2025-06-18") >= 0 ? CB__MCP_STRUCTURED : CB__MCP_PLAIN;
}

/* initialize selects the handshake revisions only: a client asking it for
 * 2026-07-28 gets the newest of those, as from a server without it. */
const char *cb__mcp_negotiate(const char *requested)
{
    const char *v = cb__mcp_served(requested);
    if (v != NULL && cb__mcp_shape_of(v) != CB__MCP_MODERN)
        return v;
    for (size_t i = 0; i < cb__mcp_nversions; i++)
        if (cb__mcp_shape_of(cb__mcp_versions[i]) != CB__MCP_MODERN)
            return cb__mcp_versions[i];
    return cb__mcp_versions[0];
}

int cb__mcp_request(struct cb_mcp *m, const char *method, const char *path, const char *body,
                    long *status, struct cb_buf *out, struct cb_error *err)
{
    if (m->cfg.request != NULL)
        return m->cfg.request(m->cfg.request_ud, method, path, body, status, out, err);
    return cb_client_request(m->cfg.client, method, path, body, status, out, err);
}

/* ---- output ---- */

static int write_message(int fd, const char *msg, size_t len)
{
    struct iovec iov[2] = {{(void *)msg, len}, {"\n", 1}};
    return cb_writev_all(fd, iov, 2);
}

/* Sends one message and drops the reference. Compact JSON escapes every
 * newline inside strings, so a message is always exactly one line. */
void cb__mcp_send(struct cb_mcp *m, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (text == NULL) {
        cb_log(CB_LOG_ERROR, "mcp: could not serialise a response");
        return;
    }
    pthread_mutex_lock(&m->out_lock);
    int rc = m->cfg.emit ? m->cfg.emit(m->cfg.emit_ud, text, strlen(text))
                         : write_message(m->cfg.out_fd, text, strlen(text));
    pthread_mutex_unlock(&m->out_lock);
    free(text);
    if (rc < 0) {
        pthread_mutex_lock(&m->lock);
        m->output_failed = true;
        pthread_mutex_unlock(&m->lock);
    }
}

/* `id` may be NULL (sent as null); the result reference is taken. */
static void send_result(struct cb_mcp *m, const json_t *id, json_t *result)
{
    json_t *msg = json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
    cb__mcp_send(m, msg);
}

/* Sends an error; `data` (taken, may be NULL) becomes error.data. */
static void send_error_v(struct cb_mcp *m, const json_t *id, int code, json_t *data,
                         const char *fmt, va_list ap)
{
    char text[CB__MCP_MSG_MAX];
    vsnprintf(text, sizeof(text), fmt, ap);
    json_t *err = json_pack("{s:i, s:s%}", "code", code, "message", text, strlen(text));
    if (err == NULL) /* the text was not valid UTF-8 */
        err = json_pack("{s:i, s:s}", "code", code, "message", "error (message not valid UTF-8)");
    if (data != NULL)
        json_object_set_new(err, "data", data);
    cb__mcp_send(m, json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", id, "error", err));
}

static void send_error(struct cb_mcp *m, const json_t *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void send_error(struct cb_mcp *m, const json_t *id, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(m, id, code, NULL, fmt, ap);
    va_end(ap);
}

static void send_error_data(struct cb_mcp *m, const json_t *id, int code, json_t *data,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void send_error_data(struct cb_mcp *m, const json_t *id, int code, json_t *data,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(m, id, code, data, fmt, ap);
    va_end(ap);
}

static json_t *server_info(void)
{
    return json_pack("{s:s, s:s, s:s}", "name", "clawbox", "title", "clawbox sandboxed tools",
                     "version", CLAWBOX_VERSION);
}

static json_t *all_versions(void)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cb__mcp_nversions; i++)
        json_array_append_new(a, json_string(cb__mcp_versions[i]));
    return a;
}

/* Marks a 2026-07-28 result: every result says it is complete (this
 * server never asks for more input) and names the server in its _meta. */
static json_t *complete(json_t *result)
{
    json_object_set_new(result, "resultType", json_string("complete"));
    json_object_set_new(result, "_meta",
                        json_pack("{s:o}", CB__MCP_META_SERVER_INFO, server_info()));
    return result;
}

/* The ttlMs and cacheScope that 2026-07-28 requires on list results. */
static json_t *cacheable(json_t *result, json_int_t ttl_ms, const char *scope)
{
    json_object_set_new(result, "ttlMs", json_integer(ttl_ms));
    json_object_set_new(result, "cacheScope", json_string(scope));
    return result;
}

/* Sends a result shaped for the request's revision (reference taken). */
static void answer(struct cb_mcp *m, const json_t *id, enum cb__mcp_shape shape, json_t *result)
{
    send_result(m, id, shape == CB__MCP_MODERN ? complete(result) : result);
}

/* ---- lifecycle ---- */

struct cb_mcp *cb_mcp_new(const struct cb_mcp_config *cfg)
{
    struct cb_mcp *m = cb_xcalloc(1, sizeof(*m));
    m->cfg = *cfg;
    if (m->cfg.max_inflight == 0)
        m->cfg.max_inflight = CB_MCP_MAX_INFLIGHT;
    if (m->cfg.max_queued == 0)
        m->cfg.max_queued = CB_MCP_MAX_QUEUED;
    m->slots = cb_xcalloc(m->cfg.max_inflight, sizeof(*m->slots));
    m->queue = cb_xcalloc(m->cfg.max_queued, sizeof(*m->queue));
    m->version = cb__mcp_negotiate(NULL);
    pthread_mutex_init(&m->out_lock, NULL);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->idle, NULL);
    /* Worker threads use curl; its global set-up is not thread-safe. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return m;
}

void cb__mcp_wait_idle(struct cb_mcp *m)
{
    pthread_mutex_lock(&m->lock);
    while (m->inflight > 0)
        pthread_cond_wait(&m->idle, &m->lock);
    pthread_mutex_unlock(&m->lock);
}

void cb_mcp_free(struct cb_mcp *m)
{
    if (m == NULL)
        return;
    cb__mcp_wait_idle(m);
    pthread_cond_destroy(&m->idle);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->out_lock);
    free(m->slots);
    free(m->queue);
    free(m);
    curl_global_cleanup();
}

/* ---- worker threads ---- */

typedef cb__mcp_work_fn work_fn;

struct mcp_job {
    struct cb_mcp *m;
    unsigned slot;
    json_t *params;
    work_fn fn;
    enum cb__mcp_shape shape;
};

/* One request being dispatched. */
struct mcp_req {
    const json_t *id;
    const json_t *params;
    const char *version; /* the revision serving it (a cb__mcp_versions entry) */
    enum cb__mcp_shape shape;
    bool stateless; /* the version came from params._meta, not initialize */
};

/* Where a new request goes: a free worker slot (its index), the queue
 * (QUEUED), or nowhere (FULL). One lock covers the choice and the hand-over
 * in next_or_finish, so a request is never queued behind a worker that has
 * just seen an empty queue, and a slot is never given out twice. */
enum { QUEUED = -1, FULL = -2 };

static int claim(struct cb_mcp *m, const struct mcp_req *r, work_fn fn)
{
    int got = FULL;
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < m->cfg.max_inflight && got == FULL; i++)
        if (!m->slots[i].busy) {
            m->slots[i] = (struct cb__mcp_slot){json_deep_copy(r->id), false, true};
            got = (int)i;
        }
    if (got == FULL && m->queued < m->cfg.max_queued) {
        unsigned at = (m->queue_head + m->queued++) % m->cfg.max_queued;
        m->queue[at] = (struct cb__mcp_queued){json_deep_copy(r->id), json_deep_copy(r->params), fn,
                                               r->shape, false};
        got = QUEUED;
    }
    if (got != FULL)
        m->inflight++;
    pthread_mutex_unlock(&m->lock);
    return got;
}

/* Takes the answer's id off a slot, which stays reserved for its worker.
 * Returns the id (the caller's reference), or NULL when the client
 * cancelled the request, which then gets no answer. */
static json_t *take_id(struct cb_mcp *m, unsigned slot)
{
    pthread_mutex_lock(&m->lock);
    json_t *id = m->slots[slot].id;
    if (m->slots[slot].cancelled) {
        json_decref(id);
        id = NULL;
    }
    m->slots[slot].id = NULL;
    pthread_mutex_unlock(&m->lock);
    return id;
}

/* Ends the job that just answered: hands its slot to the oldest queued
 * request (filling j; queued requests the client cancelled are dropped
 * unanswered) and returns true, or, with the queue empty, frees the slot,
 * counts the job done and returns false; the thread must not touch m
 * after that, since cb_mcp_free may be waiting for exactly this. */
static bool next_or_finish(struct mcp_job *j)
{
    struct cb_mcp *m = j->m;
    pthread_mutex_lock(&m->lock);
    m->inflight--; /* the job just finished */
    bool found = false;
    while (m->queued > 0 && !found) {
        struct cb__mcp_queued *q = &m->queue[m->queue_head];
        m->queue_head = (m->queue_head + 1) % m->cfg.max_queued;
        m->queued--;
        if (q->cancelled) {
            json_decref(q->id);
            json_decref(q->params);
            m->inflight--;
            continue;
        }
        m->slots[j->slot].id = q->id;
        m->slots[j->slot].cancelled = false;
        j->params = q->params;
        j->fn = q->fn;
        j->shape = q->shape;
        found = true;
    }
    if (!found)
        m->slots[j->slot].busy = false;
    if (m->inflight == 0)
        pthread_cond_broadcast(&m->idle);
    pthread_mutex_unlock(&m->lock);
    return found;
}

static void *run_mcp_job(void *arg)
{
    struct mcp_job *j = arg;
    do {
        struct cb__mcp_rpc_error e = {0};
        json_t *result = j->fn(j->m, j->params, j->shape, &e);
        json_t *id = take_id(j->m, j->slot);
        if (id != NULL && result != NULL)
            answer(j->m, id, j->shape, result);
        else if (id != NULL)
            send_error(j->m, id, e.code, "%s", e.msg);
        else
            json_decref(result);
        json_decref(id);
        json_decref(j->params);
    } while (next_or_finish(j));
    free(j);
    return NULL;
}

/* Runs fn on a detached thread, answering the request when it is done. */
static void start_job(struct cb_mcp *m, const struct mcp_req *r, work_fn fn)
{
    const json_t *id = r->id;
    int slot = claim(m, r, fn);
    if (slot == QUEUED)
        return;
    if (slot == FULL) {
        send_error(m, id, CB__MCP_BUSY, "busy: %u requests are running and %u waiting; retry later",
                   m->cfg.max_inflight, m->cfg.max_queued);
        return;
    }
    struct mcp_job *j = cb_xmalloc(sizeof(*j));
    *j = (struct mcp_job){m, (unsigned)slot, json_deep_copy(r->params), fn, r->shape};
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, run_mcp_job, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        /* No worker: this request, and any queued behind it meanwhile, are
         * answered from here as their job would be. */
        json_decref(take_id(m, (unsigned)slot));
        json_decref(j->params);
        send_error(m, id, CB__MCP_INTERNAL_ERROR, "cannot start a thread: %s", strerror(rc));
        while (next_or_finish(j)) {
            json_t *qid = take_id(m, j->slot);
            if (qid != NULL)
                send_error(m, qid, CB__MCP_INTERNAL_ERROR, "cannot start a thread: %s",
                           strerror(rc));
            json_decref(qid);
            json_decref(j->params);
        }
        free(j);
    }
}

/* ---- methods ---- */

static json_t *work_tools_list(struct cb_mcp *m, const json_t *params, enum cb__mcp_shape shape,
                               struct cb__mcp_rpc_error *e)
{
    (void)params;
    json_t *r = cb__mcp_tools_list(m, shape, e);
    if (r != NULL && shape == CB__MCP_MODERN)
        cacheable(r, CB__MCP_LIST_TTL_MS, "private");
    return r;
}

static json_t *work_tools_call(struct cb_mcp *m, const json_t *params, enum cb__mcp_shape shape,
                               struct cb__mcp_rpc_error *e)
{
    (void)e;
    return cb__mcp_tools_call(m, params, shape);
}

/* The handshake of the revisions before 2026-07-28. It sets the revision
 * of the requests that do not name one in params._meta. */
static void do_initialize(struct cb_mcp *m, const json_t *id, const json_t *params)
{
    const char *req = json_string_value(json_object_get(params, "protocolVersion"));
    if (req == NULL) {
        send_error(m, id, CB__MCP_INVALID_PARAMS,
                   "initialize: params.protocolVersion must be a string");
        return;
    }
    const char *v = cb__mcp_negotiate(req);
    pthread_mutex_lock(&m->lock);
    m->version = v;
    pthread_mutex_unlock(&m->lock);
    send_result(m, id,
                json_pack("{s:s, s:{s:{s:b}}, s:o, s:s}", "protocolVersion", v, "capabilities",
                          "tools", "listChanged", m->cfg.watch_ms > 0, "serverInfo", server_info(),
                          "instructions", instructions));
    pthread_mutex_lock(&m->lock);
    m->initialized = true;
    pthread_mutex_unlock(&m->lock);
}

/* server/discover (2026-07-28): every revision served, what the server
 * offers, and who it is. Identity is in _meta, where 2026-07-28 puts it,
 * and also in serverInfo, where the release candidate had it. */
static void do_discover(struct cb_mcp *m, const struct mcp_req *r)
{
    if (!r->stateless) {
        send_error(m, r->id, CB__MCP_INVALID_PARAMS,
                   "server/discover: params._meta must carry \"" CB__MCP_META_VERSION
                   "\" and \"" CB__MCP_META_CLIENT_CAPS "\"");
        return;
    }
    json_t *res = json_pack("{s:o, s:{s:{s:b}}, s:o, s:s}", "supportedVersions", all_versions(),
                            "capabilities", "tools", "listChanged", 0, "serverInfo", server_info(),
                            "instructions", instructions);
    send_result(m, r->id, complete(cacheable(res, CB__MCP_DISCOVER_TTL_MS, "public")));
}

static void do_tools_list(struct cb_mcp *m, const struct mcp_req *r)
{
    /* Every tool comes in one page, so no cursor was ever handed out. */
    if (r->shape == CB__MCP_MODERN && json_object_get(r->params, "cursor") != NULL)
        send_error(m, r->id, CB__MCP_INVALID_PARAMS,
                   "tools/list: invalid cursor; this server lists every tool in one page");
    else
        start_job(m, r, work_tools_list);
}

static void do_tools_call(struct cb_mcp *m, const struct mcp_req *r)
{
    const char *name = json_string_value(json_object_get(r->params, "name"));
    const json_t *args = json_object_get(r->params, "arguments");
    if (name == NULL || name[0] == '\0')
        send_error(m, r->id, CB__MCP_INVALID_PARAMS,
                   "tools/call: params.name must be a non-empty string");
    else if (args != NULL && !json_is_object(args) && !json_is_null(args))
        send_error(m, r->id, CB__MCP_INVALID_PARAMS,
                   "tools/call: params.arguments must be an object");
    else
        start_job(m, r, work_tools_call);
}

/* resources/list, resources/templates/list and prompts/list: empty. */
static void empty_list(struct cb_mcp *m, const struct mcp_req *r, const char *key)
{
    json_t *res = json_pack("{s:[]}", key);
    if (r->shape == CB__MCP_MODERN)
        cacheable(res, CB__MCP_LIST_TTL_MS, "public");
    answer(m, r->id, r->shape, res);
}

static void do_method(struct cb_mcp *m, const char *method, const struct mcp_req *r)
{
    bool modern = r->shape == CB__MCP_MODERN;
    if (strcmp(method, "server/discover") == 0)
        do_discover(m, r);
    else if (strcmp(method, "ping") == 0 && !modern)
        send_result(m, r->id, json_object());
    else if (strcmp(method, "tools/list") == 0)
        do_tools_list(m, r);
    else if (strcmp(method, "tools/call") == 0)
        do_tools_call(m, r);
    else if (strcmp(method, "resources/list") == 0)
        empty_list(m, r, "resources");
    else if (strcmp(method, "resources/templates/list") == 0)
        empty_list(m, r, "resourceTemplates");
    else if (strcmp(method, "prompts/list") == 0)
        empty_list(m, r, "prompts");
    else if (modern && strcmp(method, "ping") == 0)
        send_error(m, r->id, CB__MCP_METHOD_NOT_FOUND,
                   "method not found: ping (MCP %s has no ping)", r->version);
    else
        send_error(m, r->id, CB__MCP_METHOD_NOT_FOUND, "method not found: %s", method);
}

/* The revision a request names in params._meta. Returns it, or NULL after
 * answering: UnsupportedProtocolVersionError for a revision not served,
 * -32602 for a version that is not a string or, from 2026-07-28 on,
 * missing client capabilities. */
static const char *meta_version(struct cb_mcp *m, const char *method, const json_t *id,
                                const json_t *meta)
{
    const char *req = json_string_value(json_object_get(meta, CB__MCP_META_VERSION));
    if (req == NULL) {
        send_error(m, id, CB__MCP_INVALID_PARAMS,
                   "%s: params._meta[\"" CB__MCP_META_VERSION "\"] must be a string", method);
        return NULL;
    }
    const char *v = cb__mcp_served(req);
    if (v == NULL) {
        send_error_data(m, id, CB__MCP_UNSUPPORTED_VERSION,
                        json_pack("{s:o, s:s}", "supported", all_versions(), "requested", req),
                        "Unsupported protocol version");
        return NULL;
    }
    if (cb__mcp_shape_of(v) == CB__MCP_MODERN &&
        !json_is_object(json_object_get(meta, CB__MCP_META_CLIENT_CAPS))) {
        send_error(m, id, CB__MCP_INVALID_PARAMS,
                   "%s: params._meta[\"" CB__MCP_META_CLIENT_CAPS "\"] must be an object", method);
        return NULL;
    }
    return v;
}

static const char *session_version(struct cb_mcp *m)
{
    pthread_mutex_lock(&m->lock);
    const char *v = m->version;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* A request naming its revision in params._meta is served statelessly by
 * that revision, whatever initialize said; one that does not keeps the
 * revision of the session (initialize's, or the newest handshake one).
 * initialize itself always selects the session's revision. */
static void do_request(struct cb_mcp *m, const char *method, const json_t *id, const json_t *params)
{
    const json_t *meta = json_object_get(params, "_meta");
    struct mcp_req r = {.id = id, .params = params};
    if (strcmp(method, "initialize") == 0) {
        do_initialize(m, id, params);
        return;
    }
    r.stateless = json_object_get(meta, CB__MCP_META_VERSION) != NULL;
    r.version = r.stateless ? meta_version(m, method, id, meta) : session_version(m);
    if (r.version == NULL)
        return;
    r.shape = cb__mcp_shape_of(r.version);
    do_method(m, method, &r);
}

/* A cancelled request still runs to its end, but gets no answer. */
static void cancel(struct cb_mcp *m, const json_t *params)
{
    const json_t *rid = json_object_get(params, "requestId");
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; rid != NULL && i < m->cfg.max_inflight; i++)
        if (m->slots[i].id != NULL && json_equal(m->slots[i].id, (json_t *)rid))
            m->slots[i].cancelled = true;
    for (unsigned i = 0; rid != NULL && i < m->queued; i++) {
        struct cb__mcp_queued *q = &m->queue[(m->queue_head + i) % m->cfg.max_queued];
        if (json_equal(q->id, (json_t *)rid))
            q->cancelled = true;
    }
    pthread_mutex_unlock(&m->lock);
}

static void do_notification(struct cb_mcp *m, const char *method, const json_t *params)
{
    if (strcmp(method, "notifications/cancelled") == 0)
        cancel(m, params);
    else if (strcmp(method, "notifications/initialized") != 0)
        cb_log(CB_LOG_DEBUG, "mcp: ignoring notification %s", method);
}

/* ---- framing ---- */

static bool valid_request_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

/* Checks the envelope and dispatches one parsed message. */
static void dispatch_message(struct cb_mcp *m, const json_t *msg)
{
    const json_t *id = json_object_get(msg, "id");
    const json_t *method = json_object_get(msg, "method");
    const json_t *params = json_object_get(msg, "params");
    const char *ver = json_string_value(json_object_get(msg, "jsonrpc"));
    const json_t *reply_id = valid_request_id(id) ? id : NULL;
    if (method == NULL && (json_object_get(msg, "result") || json_object_get(msg, "error"))) {
        cb_log(CB_LOG_DEBUG, "mcp: ignoring a response; this server sends no requests");
        return;
    }
    if (ver == NULL || strcmp(ver, "2.0") != 0 || !json_is_string(method) ||
        (id != NULL && !valid_request_id(id)))
        send_error(m, reply_id, CB__MCP_INVALID_REQUEST,
                   "invalid request: need jsonrpc \"2.0\", a string method and a string or "
                   "integer id");
    else if (id == NULL && (params == NULL || json_is_object(params)))
        do_notification(m, json_string_value(method), params);
    else if (id == NULL)
        cb_log(CB_LOG_DEBUG, "mcp: ignoring a notification whose params are not an object");
    else if (params != NULL && !json_is_object(params))
        send_error(m, reply_id, CB__MCP_INVALID_PARAMS, "%s: params must be an object",
                   json_string_value(method));
    else
        do_request(m, json_string_value(method), id, params);
}

void cb__mcp_handle(struct cb_mcp *m, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    while (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
        line++;
        len--;
    }
    if (len == 0)
        return;
    json_error_t je;
    json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (msg == NULL) {
        send_error(m, NULL, CB__MCP_PARSE_ERROR, "parse error at column %d: %s", je.column,
                   je.text);
        return;
    }
    if (json_is_object(msg))
        dispatch_message(m, msg);
    else
        send_error(m, NULL, CB__MCP_INVALID_REQUEST,
                   "invalid request: expected one JSON-RPC object (batches are not supported)");
    json_decref(msg);
}

void cb__mcp_line_too_long(struct cb_mcp *m, size_t max_line)
{
    send_error(m, NULL, CB__MCP_PARSE_ERROR, "request too large: a line is over %zu bytes",
               max_line);
}

static bool output_failed(struct cb_mcp *m)
{
    pthread_mutex_lock(&m->lock);
    bool f = m->output_failed;
    pthread_mutex_unlock(&m->lock);
    return f;
}

int cb_mcp_serve(struct cb_mcp *m, int in_fd, size_t max_line, struct cb_error *err)
{
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    const char *line;
    size_t len;
    int rc;
    cb__mcp_reader_init(r, in_fd, max_line);
    cb__mcp_watch_start(m);
    while ((rc = cb__mcp_reader_next(r, &line, &len, err)) != 0) {
        if (rc == 1)
            cb__mcp_handle(m, line, len);
        else if (rc == -E2BIG)
            cb__mcp_line_too_long(m, max_line);
        else
            break;
        if (output_failed(m)) {
            rc = cb_error_set(err, -EPIPE, "writing to the output failed; the client is gone");
            break;
        }
    }
    cb__mcp_watch_stop(m);
    cb__mcp_reader_free(r);
    free(r);
    cb__mcp_wait_idle(m);
    return rc < 0 ? rc : 0;
}
