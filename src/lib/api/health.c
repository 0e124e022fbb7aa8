/* GET /health and GET /metrics: public, cheap, and served on the I/O
 * threads. */
#include "api/app.h"
#include "containers/manager.h"

#include <stdatomic.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "sandbox/registry.h"
#include "state/state.h"

#define METRICS_MAX_BYTES (8u * 1024 * 1024)

static json_t *component(const char *status, json_t *detail)
{
    return json_pack("{s:s, s:o}", "status", status, "detail", detail ? detail : json_object());
}

/* A successful database check stands for a second, so /health under load
 * does not queue on the database; a failed one is retried every time. */
#define DB_CHECK_FRESH_NS 1000000000ull

static bool db_healthy(struct cb_app *app, struct cb_error *err)
{
    uint64_t now = cb_now_mono_ns();
    if (now - atomic_load(&app->db_ok_at_ns) < DB_CHECK_FRESH_NS)
        return true;
    if (cb_state_check(app->state, err) < 0)
        return false;
    atomic_store(&app->db_ok_at_ns, now);
    return true;
}

/* Adds one component per subsystem; returns whether all are healthy. */
static bool add_components(struct cb_app *app, json_t *components)
{
    struct cb_error err = {0};
    bool db_ok = db_healthy(app, &err);
    json_t *detail = db_ok ? json_object() : json_pack("{s:s}", "error", err.msg);
    json_object_set_new(components, "state_db", component(db_ok ? "healthy" : "unhealthy", detail));
    bool tools_ready = cb_registry_ready(app->registry);
    struct cb_registry_counts n = cb_registry_counts(app->registry);
    json_object_set_new(components, "wasm_engine",
                        component(tools_ready ? "healthy" : "loading",
                                  json_pack("{s:I, s:I, s:I}", "tools_loaded", (json_int_t)n.ready,
                                            "tools_compiling", (json_int_t)n.compiling,
                                            "tools_failed", (json_int_t)n.failed)));
    /* Credentials are optional: their state informs, it never degrades. */
    const char *cs = app->creds_status ? app->creds_status : "disabled";
    json_object_set_new(
        components, "credentials",
        component(cs, strcmp(cs, "no_key") == 0
                          ? json_pack("{s:s}", "hint",
                                      "a credential store exists but no master key is set "
                                      "(credentials.key_file or CLAWBOX_MASTER_KEY): its "
                                      "credentials are never injected; run clawbox doctor")
                          : NULL));
    /* Containers are optional too: a host without a working runtime still
     * serves tools, so their state informs and never degrades. */
    const char *why = NULL;
    const char *rt = cb_ct_manager_runtime(app->containers, &why);
    json_object_set_new(components, "docker",
                        component(rt ? "healthy" : "unavailable",
                                  rt ? json_pack("{s:s, s:I}", "runtime", rt, "active_containers",
                                                 (json_int_t)cb_ct_manager_active(app->containers))
                                     : json_pack("{s:s}", "error", why ? why : "")));
    return db_ok && tools_ready;
}

void cb__api_health(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_app *app = req->app;
    const char *why = NULL;
    json_t *components = json_object();
    bool healthy = add_components(app, components);
    uint64_t uptime = (cb_now_mono_ns() - app->started_ns) / 1000000000u;
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:b, s:b, s:i, s:o}", "status", healthy ? "healthy" : "degraded",
                  "version", CLAWBOX_VERSION, "uptime_seconds", (json_int_t)uptime,
                  "docker_available", cb_ct_manager_runtime(app->containers, &why) != NULL,
                  "wasm_engine_ready", cb_registry_ready(app->registry), "active_containers",
                  (int)cb_ct_manager_active(app->containers), "components", components);
    cb_http_respond_json(res, 200, body);
}

void cb__api_metrics(struct cb_http_request *req, struct cb_http_response *res)
{
    const struct cb_app *app = req->app;
    struct cb_buf b;
    cb_buf_init(&b, METRICS_MAX_BYTES);
    if (cb_metrics_render(app->metrics, &b) < 0) {
        cb_buf_free(&b);
        cb_http_respond_error(res, 500, "internal_error", "metrics exposition is too large");
        return;
    }
    size_t len = 0;
    char *text = cb_buf_steal(&b, &len);
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    res->body = text;
    res->body_len = len;
}
