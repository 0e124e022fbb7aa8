/* Tool routes: thin wrappers over the registry (src/lib/sandbox/registry). */
#include "api/tools.h"
#include "audit/audit.h"

#include <errno.h>

#include "api/app.h"
#include "sandbox/manifest.h"
#include "sandbox/registry.h"

/* The registry, or NULL after answering 500 (a server without one). */
static struct cb_registry *registry_of(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_registry *r = ((struct cb_app *)req->app)->registry;
    if (r == NULL)
        cb_http_respond_error(res, 500, "internal_error", "the tool registry is not available");
    return r;
}

void cb__api_tools_list(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_registry *r = registry_of(req, res);
    if (r != NULL)
        cb_http_respond_json(res, 200, cb_registry_manifests(r));
}

void cb__api_tool_not_found(struct cb_http_response *res, struct cb_registry *r, const char *name)
{
    char why[512];
    if (name != NULL && cb_registry_failure(r, name, why, sizeof(why)))
        cb_http_respond_error(res, 404, "tool_not_found",
                              "tool '%s' not found (its module failed "
                              "to load: %s)",
                              name, why);
    else
        cb_http_respond_error(res, 404, "tool_not_found", "tool '%s' not found%s", name ? name : "",
                              name && cb_registry_compiling(r, name)
                                  ? " (it is still being compiled; retry shortly)"
                                  : "");
}

void cb__api_tools_get(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_registry *r = registry_of(req, res);
    if (r == NULL)
        return;
    const char *name = cb_http_param(req, "name");
    json_t *d = cb_registry_describe(r, name);
    if (d == NULL) {
        cb__api_tool_not_found(res, r, name);
        return;
    }
    cb_http_respond_json(res, 200, d);
}

/* Maps a registration error to its status: shape errors are 422 as in the
 * reference's deserialiser, bad values 400, an unloaded tool 404. */
static void register_failed(struct cb_http_response *res, int rc, const struct cb_error *err)
{
    switch (rc) {
    case -EBADMSG:
        cb_http_respond_error(res, 422, "invalid_request", "%s", err->msg);
        break;
    case -EINVAL:
    case -E2BIG:
        cb_http_respond_error(res, 400, "invalid_request", "%s", err->msg);
        break;
    case -ENOENT:
        cb_http_respond_error(res, 404, "tool_not_found", "%s", err->msg);
        break;
    default:
        cb_http_respond_error(res, 500, "internal_error", "%s", err->msg);
        break;
    }
}

/* The audit line of a registration or an unregistration: `done` is the
 * decision when it succeeded, NULL when err says why it was rejected. */
static void audit_registration(struct cb_http_request *req, const struct cb_http_response *res,
                               const char *name, const char *method, const char *done,
                               const struct cb_error *err)
{
    struct cb_audit_record rec = {.kind = CB_AUDIT_REGISTER,
                                  .request_id = req->request_id,
                                  .tool = name,
                                  .method = method,
                                  .decision = done ? done : "rejected",
                                  .reason = done ? NULL : err->msg,
                                  .status = (int)res->status};
    cb__api_audit(req->app, &rec);
}

void cb__api_tools_unregister(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_registry *r = registry_of(req, res);
    if (r == NULL)
        return;
    const char *name = cb_http_param(req, "name");
    struct cb_error err = {0};
    int rc = cb_registry_unregister(r, name, &err);
    if (rc < 0)
        register_failed(res, rc, &err);
    else
        cb_http_respond_json(res, 200,
                             json_pack("{s:s, s:s}", "status", "unregistered", "tool", name));
    audit_registration(req, res, name, "UNREGISTER", rc < 0 ? NULL : "unregistered", &err);
}

void cb__api_tools_register(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_registry *r = registry_of(req, res);
    if (r == NULL)
        return;
    struct cb_error err = {0};
    bool created = false;
    int rc = cb_registry_register(r, req->json, &created, &err);
    const char *name =
        json_string_value(json_object_get(json_object_get(req->json, "tool"), "name"));
    if (rc < 0)
        register_failed(res, rc, &err);
    else
        cb_http_respond_json(res, created ? 201 : 200,
                             json_pack("{s:s, s:s}", "status", "registered", "tool", name));
    audit_registration(req, res, name, "REGISTER", rc < 0 ? NULL : "registered", &err);
}

void cb__api_tools_reload(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_registry *r = registry_of(req, res);
    if (r != NULL)
        cb_http_respond_json(res, 200, cb_registry_reload(r));
}
