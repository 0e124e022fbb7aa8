/* Agent routes: thin wrappers over the agent registry
 * (src/lib/agents/registry.h). Start and stop answer with the container
 * codes for what the container manager refuses. */
#include <errno.h>
#include <string.h>

#include "agents/registry.h"
#include "api/app.h"

static struct cb_agents *agents(struct cb_http_request *req)
{
    return ((struct cb_app *)req->app)->agents;
}

void cb__api_agents_create(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_error err = {0};
    json_t *info = NULL;
    int rc = cb_agents_create(agents(req), req->json, &info, &err);
    if (rc == 0)
        cb_http_respond_json(res, 201, info);
    else if (rc == -EBADMSG)
        cb_http_respond_error(res, 422, "invalid_request", "%s", err.msg);
    else if (rc == -EINVAL || rc == -EXDEV || rc == -ENOENT || rc == -ENOTDIR)
        cb_http_respond_error(res, 400, "invalid_request", "%s", err.msg);
    else if (rc == -EEXIST)
        cb_http_respond_error(res, 409, "conflict", "%s", err.msg);
    else
        cb_http_respond_error(res, 500, "internal_error", "%s", err.msg);
}

void cb__api_agents_list(struct cb_http_request *req, struct cb_http_response *res)
{
    cb_http_respond_json(res, 200, cb_agents_list(agents(req)));
}

void cb__api_agents_get(struct cb_http_request *req, struct cb_http_response *res)
{
    const char *id = cb_http_param(req, "id");
    json_t *info = NULL;
    if (cb_agents_get(agents(req), id, &info) < 0)
        cb_http_respond_error(res, 404, "not_found", "agent not found: %s", id);
    else
        cb_http_respond_json(res, 200, info);
}

void cb__api_agents_delete(struct cb_http_request *req, struct cb_http_response *res)
{
    char p[8];
    int q = cb_http_query(req, "purge", p, sizeof(p));
    if (q < 0 || (q > 0 && strcmp(p, "true") != 0 && strcmp(p, "false") != 0)) {
        cb_http_respond_error(res, 400, "invalid_request", "purge: expected true or false");
        return;
    }
    struct cb_error err = {0};
    int rc = cb_agents_delete(agents(req), cb_http_param(req, "id"),
                              q > 0 && strcmp(p, "true") == 0, &err);
    if (rc == 0)
        res->status = 204;
    else if (rc == -ENOENT)
        cb_http_respond_error(res, 404, "not_found", "%s", err.msg);
    else
        cb_http_respond_error(res, 500, "internal_error", "%s", err.msg);
}

/* A start's or stop's refusal. */
static void op_failed(struct cb_http_response *res, int rc, const struct cb_error *err)
{
    switch (rc) {
    case -ENOENT:
        cb_http_respond_error(res, 404, "not_found", "%s", err->msg);
        break;
    case -EBUSY:
        cb_http_respond_error(res, 409, "invalid_state", "%s", err->msg);
        break;
    case -EBADMSG:
    case -EINVAL:
        cb_http_respond_error(res, 400, "invalid_request", "%s", err->msg);
        break;
    case -EPERM:
    case -ELOOP:
    case -EXDEV: /* the workspace changed since its registration */
        cb_http_respond_error(res, 403, "policy_denied", "%s", err->msg);
        break;
    case -EAGAIN:
        res->retry_after = 1;
        cb_http_respond_error(res, 429, "resource_exhausted", "%s", err->msg);
        break;
    default:
        cb_http_respond_error(res, 500, "container_error", "%s", err->msg);
        break;
    }
}

void cb__api_agents_start(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_error err = {0};
    json_t *info = NULL;
    int rc = cb_agents_start(agents(req), cb_http_param(req, "id"), req->request_id, &info, &err);
    if (rc == 0)
        cb_http_respond_json(res, 200, info);
    else
        op_failed(res, rc, &err);
}

void cb__api_agents_stop(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_error err = {0};
    json_t *info = NULL;
    int rc = cb_agents_stop(agents(req), cb_http_param(req, "id"), req->request_id, &info, &err);
    if (rc == 0)
        cb_http_respond_json(res, 200, info);
    else
        op_failed(res, rc, &err);
}

/* The agent's exec runs in its container, through the container route's
 * handler; only a running agent has one. */
void cb__api_agents_exec(struct cb_http_request *req, struct cb_http_response *res)
{
    const char *id = cb_http_param(req, "id");
    json_t *info = NULL;
    if (cb_agents_get(agents(req), id, &info) < 0) {
        cb_http_respond_error(res, 404, "not_found", "agent not found: %s", id);
        return;
    }
    const char *status = json_string_value(json_object_get(info, "status"));
    const char *ct = json_string_value(json_object_get(info, "container_id"));
    if (status == NULL || strcmp(status, "running") != 0 || ct == NULL)
        cb_http_respond_error(res, 409, "invalid_state", "agent %s is not running (%s)", id,
                              status ? status : "unknown");
    else
        cb__api_exec_in(req, res, ct);
    json_decref(info);
}
