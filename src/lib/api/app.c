#include "api/app.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "api/images.h"
#include "api/tools.h"
#include "audit/audit.h"
#include "agents/registry.h"
#include "containers/manager.h"
#include "proxy/pipeline.h"
#include "secrets/secrets.h"
#include "metrics/metrics.h"
#include "sandbox/registry.h"
#include "sandbox/worker.h"
#include "state/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Deep enough for real recursive programs, far below the native stack. */
#define TOOL_MAX_CALL_DEPTH     5000
#define TOOL_RELOAD_DEBOUNCE_MS 200

/* NULL unless the binary links api/test_routes.c (see app.h). */
#pragma weak cb__api_register_test_routes

static void register_app_metrics(struct cb_app *app)
{
    static const double secs[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,   0.5,   1,      2.5,   5,    10,    30,   120};
    static const double fuel[] = {1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};
    app->m_executions =
        cb_metrics_counter(app->metrics, "clawbox_wasm_executions_total",
                           "Tool executions by tool and outcome.", "tool,status", 1024);
    app->m_exec_seconds = cb_metrics_histogram(
        app->metrics, "clawbox_wasm_execution_duration_seconds",
        "Wall-clock time of tool executions.", "tool,status", secs, CB_ARRAY_LEN(secs), 1024);
    app->m_fuel = cb_metrics_histogram(app->metrics, "clawbox_wasm_fuel_consumed",
                                       "Fuel consumed by tool executions.", "tool,status", fuel,
                                       CB_ARRAY_LEN(fuel), 1024);
    app->m_sanitized =
        cb_metrics_counter(app->metrics, "clawbox_sanitization_issues_total",
                           "Executions whose output had at least one sanitization issue.", NULL, 1);
}

static int open_sandbox(struct cb_app *app, struct cb_error *err)
{
    const struct cb_config *cfg = app->cfg;
    char *cache = cfg->sandbox.cache_dir ? cb_xstrdup(cfg->sandbox.cache_dir)
                                         : cb_xasprintf("%s/cache", cfg->server.data_dir);
    struct cb_registry_opts o = {
        .tool_dir = cfg->sandbox.tool_dir,
        .cache_dir = cache,
        .state = app->state,
        .metrics = app->metrics,
        .max_memory_pages = (uint32_t)(cfg->sandbox.max_memory_mb * 16),
        .compile_timeout_ms = (unsigned)cfg->sandbox.compile_timeout_ms,
        .max_call_depth = TOOL_MAX_CALL_DEPTH,
        .allow_wildcard_all = cfg->proxy.allow_wildcard_all,
        .watch = cfg->sandbox.watch_tools,
        .debounce_ms = TOOL_RELOAD_DEBOUNCE_MS,
        .load_in_background = true,
    };
    int r = cb_worker_pool_new("/proc/self/exe", (uint32_t)cfg->sandbox.executions_per_worker,
                               &app->workers, err);
    if (r == 0)
        r = cb_registry_open(&o, &app->registry, err);
    free(cache);
    return r;
}

/* The credential store is optional: without a master key (credentials.
 * key_file, else CLAWBOX_MASTER_KEY) the proxy injects nothing. With one, a
 * missing file is an empty store and a wrong key or bad key file stops the
 * server, since it would otherwise run without the credentials. */
static int open_secrets(struct cb_app *app, struct cb_master_key *key, struct cb_error *err)
{
    const char *key_file = app->cfg->credentials.key_file;
    int r =
        key_file ? cb_master_key_from_file(key_file, key, err) : cb_master_key_from_env(key, err);
    if (r == -ENOENT) {
        struct stat st;
        bool store = stat(app->cfg->credentials.store_path, &st) == 0;
        app->creds_status = store ? "no_key" : "disabled";
        if (store)
            cb_log(CB_LOG_WARN,
                   "credential store %s exists but no master key is set (credentials.key_file "
                   "or CLAWBOX_MASTER_KEY): none of its credentials will be injected",
                   app->cfg->credentials.store_path);
        cb_error_clear(err);
        return 0;
    }
    app->creds_status = "healthy";
    if (r < 0)
        return r;
    r = cb_secret_store_open(app->cfg->credentials.store_path, key, &app->secrets, err);
    if (r < 0)
        cb_error_prefix(err, "opening credential store %s", app->cfg->credentials.store_path);
    return r;
}

static int open_proxy(struct cb_app *app, struct cb_error *err)
{
    const struct cb_config *cfg = app->cfg;
    char *db = cb_xasprintf("%s/state.db", cfg->server.data_dir);
    struct cb_audit_options ao = {
        .dir = cfg->logging.audit_dir,
        .max_file_bytes = cfg->logging.audit_max_file_bytes,
        .anchor_db = db, /* the chain's head, so that a cut log is noticed */
    };
    int r = cb_audit_open(&ao, &app->audit, err);
    free(db);
    if (r < 0) {
        cb_error_prefix(err, "opening audit log in %s", cfg->logging.audit_dir);
        return r;
    }
    struct cb_master_key key = {0};
    r = open_secrets(app, &key, err);
    if (r == 0)
        app->proxy = cb_proxy_new(cfg, app->secrets, &key, app->audit, err);
    cb_master_key_wipe(&key);
    if (r < 0)
        return r;
    return app->proxy ? 0 : -EINVAL;
}

int cb__app_open(const struct cb_config *cfg, struct cb_app **out, struct cb_error *err)
{
    struct cb_app *app = cb_xcalloc(1, sizeof(*app));
    app->cfg = cfg;
    app->started_ns = cb_now_mono_ns();
    app->metrics = cb_metrics_new();
    int r = cb_mkdir_p(cfg->server.data_dir, 0700, err);
    if (r == 0) {
        char *db = cb_xasprintf("%s/state.db", cfg->server.data_dir);
        r = cb_state_open(db, &app->state, err);
        free(db);
    }
    register_app_metrics(app);
    if (r == 0)
        r = open_proxy(app, err);
    if (r == 0)
        r = open_sandbox(app, err);
    if (r == 0) {
        struct cb_ct_manager_options co = {
            .cfg = cfg,
            .state = app->state,
            .proxy = app->proxy,
            .audit = app->audit,
            .metrics = app->metrics,
            .monitor_exe = "/proc/self/exe",
        };
        r = cb_ct_manager_open(&co, &app->containers, err);
    }
    if (r == 0)
        r = cb_agents_open(app->state, cfg, app->containers, &app->agents, err);
    if (r < 0) {
        cb__app_close(app);
        return r;
    }
    *out = app;
    return 0;
}

void cb__app_close(struct cb_app *app)
{
    if (app == NULL)
        return;
    cb_agents_shutdown(app->agents);      /* before the manager it starts agents on */
    cb_ct_manager_close(app->containers); /* before the proxy its sockets use */
    cb_agents_free(app->agents);          /* after: the manager calls back into it */
    cb_registry_close(app->registry);
    cb_worker_pool_free(app->workers);
    cb_state_close(app->state);
    cb_proxy_free(app->proxy);
    cb_secret_store_free(app->secrets);
    cb_audit_close(app->audit);
    cb_metrics_free(app->metrics);
    free(app);
}

void cb__api_audit(struct cb_app *app, const struct cb_audit_record *rec)
{
    struct cb_error err = {0};
    if (app->audit != NULL && cb_audit_append(app->audit, rec, &err) < 0)
        cb_log(CB_LOG_ERROR, "audit log write failed: %s", err.msg);
}

void cb__api_register(struct cb_router *r)
{
    cb_router_add(r, "GET", "/health", cb__api_health, CB_ROUTE_PUBLIC);
    cb_router_add(r, "GET", "/metrics", cb__api_metrics, CB_ROUTE_PUBLIC);
    cb_router_add(r, "POST", "/execute", cb__api_execute, CB_ROUTE_JSON);
    cb_router_add(r, "GET", "/tools", cb__api_tools_list, 0);
    cb_router_add(r, "GET", "/tools/{name}", cb__api_tools_get, 0);
    cb_router_add(r, "POST", "/tools/register", cb__api_tools_register, CB_ROUTE_JSON);
    cb_router_add(r, "DELETE", "/tools/{name}/registration", cb__api_tools_unregister, 0);
    cb_router_add(r, "POST", "/tools/reload", cb__api_tools_reload, 0);
    cb_router_add(r, "POST", "/containers/spawn", cb__api_containers_spawn, CB_ROUTE_JSON);
    cb_router_add(r, "GET", "/containers", cb__api_containers_list, 0);
    cb_router_add(r, "GET", "/containers/{id}", cb__api_containers_get, 0);
    cb_router_add(r, "DELETE", "/containers/{id}", cb__api_containers_delete, 0);
    cb_router_add(r, "GET", "/containers/{id}/logs", cb__api_containers_logs, 0);
    cb_router_add(r, "POST", "/containers/{id}/exec", cb__api_containers_exec, CB_ROUTE_JSON);
    cb_router_add(r, "GET", "/containers/{id}/execs/{exec_id}", cb__api_containers_exec_get, 0);
    cb_router_add(r, "GET", "/containers/{id}/files", cb__api_containers_files_get, 0);
    cb_router_add(r, "PUT", "/containers/{id}/files", cb__api_containers_files_put, CB_ROUTE_RAW);
    cb_router_add(r, "DELETE", "/containers/{id}/files", cb__api_containers_files_delete, 0);
    cb_router_add(r, "GET", "/images", cb__api_images_list, 0);
    cb_router_add(r, "POST", "/agents", cb__api_agents_create, CB_ROUTE_JSON);
    cb_router_add(r, "GET", "/agents", cb__api_agents_list, 0);
    cb_router_add(r, "GET", "/agents/{id}", cb__api_agents_get, 0);
    cb_router_add(r, "DELETE", "/agents/{id}", cb__api_agents_delete, 0);
    cb_router_add(r, "POST", "/agents/{id}/start", cb__api_agents_start, 0);
    cb_router_add(r, "POST", "/agents/{id}/stop", cb__api_agents_stop, 0);
    cb_router_add(r, "POST", "/agents/{id}/exec", cb__api_agents_exec, CB_ROUTE_JSON);
    if (cb__api_register_test_routes != NULL)
        cb__api_register_test_routes(r);
}
