/* Container routes: thin wrappers over the container manager
 * (src/lib/containers/manager.h), which maps every outcome to an errno
 * this file turns into the reference's status and code. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "containers/manager.h"
#include "core/util.h"

#define TAIL_MAX 100000

static void failed(struct cb_http_response *res, int rc, const struct cb_error *err)
{
    switch (rc) {
    case -EBADMSG:
        cb_http_respond_error(res, 422, "invalid_request", "%s", err->msg);
        break;
    case -EINVAL:
        cb_http_respond_error(res, 400, "invalid_request", "%s", err->msg);
        break;
    case -EPERM:
        cb_http_respond_error(res, 403, "policy_denied", "%s", err->msg);
        break;
    case -EAGAIN:
        res->retry_after = 1;
        cb_http_respond_error(res, 429, "resource_exhausted", "%s", err->msg);
        break;
    case -ENOENT:
        cb_http_respond_error(res, 404, "not_found", "%s", err->msg);
        break;
    case -ESRCH:
        cb_http_respond_error(res, 409, "conflict", "%s", err->msg);
        break;
    case -EACCES:
        cb_http_respond_error(res, 403, "policy_denied", "%s", err->msg);
        break;
    case -EFBIG:
        cb_http_respond_error(res, 413, "payload_too_large", "%s", err->msg);
        break;
    case -EISDIR:
    case -ENOTDIR:
    case -ELOOP:
    case -ENAMETOOLONG:
        cb_http_respond_error(res, 400, "invalid_request", "%s", err->msg);
        break;
    default:
        cb_http_respond_error(res, 500, "container_error", "%s", err->msg);
        break;
    }
}

static struct cb_ct_manager *manager(struct cb_http_request *req)
{
    return ((struct cb_app *)req->app)->containers;
}

void cb__api_containers_spawn(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_error err = {0};
    json_t *info = NULL;
    int rc = cb_ct_spawn(manager(req), req->json, req->request_id, NULL, &info, &err);
    if (rc < 0)
        failed(res, rc, &err);
    else
        cb_http_respond_json(res, 201, info);
}

void cb__api_containers_list(struct cb_http_request *req, struct cb_http_response *res)
{
    cb_http_respond_json(res, 200, cb_ct_list(manager(req)));
}

void cb__api_containers_get(struct cb_http_request *req, struct cb_http_response *res)
{
    const char *id = cb_http_param(req, "id");
    json_t *info = NULL;
    if (cb_ct_get(manager(req), id, &info) < 0)
        cb_http_respond_error(res, 404, "not_found", "Container not found");
    else
        cb_http_respond_json(res, 200, info);
}

void cb__api_containers_delete(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_error err = {0};
    json_t *out = NULL;
    int rc = cb_ct_delete(manager(req), cb_http_param(req, "id"), req->request_id, &out, &err);
    if (rc < 0)
        failed(res, rc, &err);
    else
        cb_http_respond_json(res, 200, out);
}

/* ?follow=: 1|true or 0|false (absent = false); -1 for anything else. */
static int parse_follow(struct cb_http_request *req)
{
    char f[8];
    int q = cb_http_query(req, "follow", f, sizeof(f));
    if (q == 0)
        return 0;
    if (q > 0 && (strcmp(f, "1") == 0 || strcmp(f, "true") == 0))
        return 1;
    if (q > 0 && (strcmp(f, "0") == 0 || strcmp(f, "false") == 0))
        return 0;
    return -1;
}

/* What a reader's answer (1 at the end, 0 for more, -errno) means to the
 * stream; no bytes yet is a pause. */
static enum cb_http_stream_rc stream_rc(int rc, size_t n)
{
    if (rc < 0)
        return CB_HTTP_STREAM_FAIL;
    if (rc == 1)
        return CB_HTTP_STREAM_END;
    return n > 0 ? CB_HTTP_STREAM_MORE : CB_HTTP_STREAM_IDLE;
}

static enum cb_http_stream_rc follow_produce(void *ctx, char *out, size_t room, size_t *n)
{
    return stream_rc(cb_ct_follow_read(ctx, out, room, n), *n);
}

static void follow_free(void *ctx)
{
    cb_ct_follow_free(ctx);
}

/* Streams the log as it grows (chunked), on the I/O thread (http.h): this
 * worker only opens the follower. */
static void follow(struct cb_http_request *req, struct cb_http_response *res, size_t tail)
{
    struct cb_error err = {0};
    struct cb_ct_follow *f = NULL;
    int rc = cb_ct_logs_follow(manager(req), cb_http_param(req, "id"), tail, &f, &err);
    if (rc < 0) {
        failed(res, rc, &err);
        return;
    }
    struct cb_http_stream st = {follow_produce, follow_free, f};
    cb_http_respond_stream(res, "text/plain; charset=utf-8", &st);
}

void cb__api_containers_logs(struct cb_http_request *req, struct cb_http_response *res)
{
    char t[16];
    uint64_t tail = 0;
    int q = cb_http_query(req, "tail", t, sizeof(t));
    if (q < 0 || (q > 0 && (cb_parse_u64(t, strlen(t), &tail) < 0 || tail > TAIL_MAX))) {
        cb_http_respond_error(res, 400, "invalid_request",
                              "tail: expected a number of lines from 0 to %d", TAIL_MAX);
        return;
    }
    int fl = parse_follow(req);
    if (fl < 0) {
        cb_http_respond_error(res, 400, "invalid_request", "follow: expected 1, true, 0 or false");
        return;
    }
    if (fl == 1) {
        follow(req, res, (size_t)tail);
        return;
    }
    struct cb_error err = {0};
    char *text = NULL;
    int rc = cb_ct_logs(manager(req), cb_http_param(req, "id"), (size_t)tail, &text, &err);
    if (rc < 0) {
        failed(res, rc, &err);
        return;
    }
    res->status = 200;
    res->content_type = "text/plain; charset=utf-8";
    res->body = text;
    res->body_len = strlen(text);
}

static enum cb_http_stream_rc exec_produce(void *ctx, char *out, size_t room, size_t *n)
{
    return stream_rc(cb_ct_exec_stream_read(ctx, out, room, n), *n);
}

static void exec_free(void *ctx)
{
    cb_ct_exec_stream_free(ctx);
}

/* Whether the client asked for the exec's events as they come. */
static bool wants_ndjson(struct cb_http_request *req)
{
    const char *accept = cb__http_header(req, "Accept");
    return accept != NULL && strstr(accept, "application/x-ndjson") != NULL;
}

static void exec_id_header(struct cb_http_response *res, const char *exec_id)
{
    snprintf(res->extra_header, sizeof(res->extra_header), "X-Clawbox-Exec-Id: %s",
             exec_id ? exec_id : "");
}

/* The exec runs on a thread of its own (exec_stream.c); this worker only
 * starts it, and the I/O thread hands out its events. */
static void exec_stream(struct cb_http_request *req, struct cb_http_response *res, const char *id)
{
    struct cb_error err = {0};
    struct cb_ct_exec_stream *s = NULL;
    int rc = cb_ct_exec_stream(manager(req), id, req->json, req->request_id, &s, &err);
    if (rc < 0) {
        failed(res, rc, &err);
        return;
    }
    exec_id_header(res, cb_ct_exec_stream_id(s));
    struct cb_http_stream st = {exec_produce, exec_free, s};
    cb_http_respond_stream(res, "application/x-ndjson", &st);
}

/* "detach": true answers 202 at once; the exec goes on without the
 * request. */
static void exec_detached(struct cb_http_request *req, struct cb_http_response *res, const char *id)
{
    struct cb_error err = {0};
    json_t *out = NULL;
    int rc = cb_ct_exec_detach(manager(req), id, req->json, req->request_id, &out, &err);
    if (rc < 0) {
        failed(res, rc, &err);
        return;
    }
    exec_id_header(res, json_string_value(json_object_get(out, "exec_id")));
    cb_http_respond_json(res, 202, out);
}

void cb__api_exec_in(struct cb_http_request *req, struct cb_http_response *res, const char *id)
{
    if (json_is_true(json_object_get(req->json, "detach"))) {
        exec_detached(req, res, id);
        return;
    }
    if (wants_ndjson(req)) {
        exec_stream(req, res, id);
        return;
    }
    struct cb_error err = {0};
    json_t *out = NULL;
    int rc = cb_ct_exec(manager(req), id, req->json, req->request_id, &out, &err);
    if (rc < 0) {
        failed(res, rc, &err);
        return;
    }
    exec_id_header(res, json_string_value(json_object_get(out, "exec_id")));
    cb_http_respond_json(res, 200, out);
}

void cb__api_containers_exec(struct cb_http_request *req, struct cb_http_response *res)
{
    cb__api_exec_in(req, res, cb_http_param(req, "id"));
}

void cb__api_containers_exec_get(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_error err = {0};
    json_t *out = NULL;
    int rc = cb_ct_exec_info(manager(req), cb_http_param(req, "id"), cb_http_param(req, "exec_id"),
                             &out, &err);
    if (rc < 0)
        failed(res, rc, &err);
    else
        cb_http_respond_json(res, 200, out);
}

/* The path query parameter of the files routes; false (answered) when it
 * is missing or unusable. */
static bool file_path(struct cb_http_request *req, struct cb_http_response *res, char *out,
                      size_t cap)
{
    if (cb_http_query(req, "path", out, cap) == 1)
        return true;
    cb_http_respond_error(res, 400, "invalid_request",
                          "path: expected an absolute path inside the container, such as "
                          "?path=/tmp/notes.txt (at most %zu bytes)",
                          cap - 1);
    return false;
}

#define FILE_PATH_CAP 4097

static enum cb_http_stream_rc file_produce(void *ctx, char *out, size_t room, size_t *n)
{
    int rc = cb_ct_file_read(ctx, out, room, n);
    return rc == 0 && *n == 0 ? CB_HTTP_STREAM_MORE : stream_rc(rc, *n);
}

static void file_free(void *ctx)
{
    cb_ct_file_free(ctx);
}

void cb__api_containers_files_get(struct cb_http_request *req, struct cb_http_response *res)
{
    char path[FILE_PATH_CAP], l[8];
    if (!file_path(req, res, path, sizeof(path)))
        return;
    int q = cb_http_query(req, "list", l, sizeof(l));
    bool list = q == 1 && (strcmp(l, "1") == 0 || strcmp(l, "true") == 0);
    if (q < 0 || (q == 1 && !list && strcmp(l, "0") != 0 && strcmp(l, "false") != 0)) {
        cb_http_respond_error(res, 400, "invalid_request", "list: expected 1, true, 0 or false");
        return;
    }
    struct cb_error err = {0};
    struct cb_ct_file *f = NULL;
    json_t *out = NULL;
    int rc = cb_ct_files(manager(req), cb_http_param(req, "id"),
                         list ? CB_CT_FILES_LIST : CB_CT_FILES_READ, path, -1, 0, &f, &out, &err);
    if (rc < 0)
        failed(res, rc, &err);
    else if (list)
        cb_http_respond_json(res, 200, out);
    else /* sent from the I/O thread (http.h), out of the copy file_out.c made */
        cb_http_respond_stream(
            res, cb_ct_file_text(f) ? "text/plain; charset=utf-8" : "application/octet-stream",
            &(struct cb_http_stream){file_produce, file_free, f});
}

void cb__api_containers_files_put(struct cb_http_request *req, struct cb_http_response *res)
{
    char path[FILE_PATH_CAP];
    if (!file_path(req, res, path, sizeof(path)))
        return;
    struct cb_error err = {0};
    json_t *out = NULL;
    int rc = cb_ct_files(manager(req), cb_http_param(req, "id"), CB_CT_FILES_WRITE, path,
                         req->body_fd, req->body_len, NULL, &out, &err);
    if (rc < 0)
        failed(res, rc, &err);
    else
        cb_http_respond_json(res, 201, out);
}

void cb__api_containers_files_delete(struct cb_http_request *req, struct cb_http_response *res)
{
    char path[FILE_PATH_CAP];
    if (!file_path(req, res, path, sizeof(path)))
        return;
    struct cb_error err = {0};
    int rc = cb_ct_files(manager(req), cb_http_param(req, "id"), CB_CT_FILES_REMOVE, path, -1, 0,
                         NULL, NULL, &err);
    if (rc < 0)
        failed(res, rc, &err);
    else
        res->status = 204;
}
