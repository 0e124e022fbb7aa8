/* The application context shared by every route handler: configuration,
 * state database, metrics and start time. One per running server. */
#ifndef CB_API_APP_H
#define CB_API_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "http/router.h"

struct cb_state;
struct cb_metrics;
struct cb_registry;
struct cb_worker_pool;
struct cb_metric;
struct cb_proxy;
struct cb_audit;
struct cb_secret_store;
struct cb_ct_manager;

struct cb_app {
    const struct cb_config *cfg;
    struct cb_state *state;
    struct cb_metrics *metrics;
    struct cb_registry *registry;
    struct cb_worker_pool *workers;
    struct cb_metric *m_executions; /* clawbox_wasm_executions_total{tool,status} */
    struct cb_metric *m_exec_seconds;
    struct cb_metric *m_fuel;
    struct cb_metric *m_sanitized;   /* clawbox_sanitization_issues_total */
    struct cb_audit *audit;          /* logging.audit_dir */
    struct cb_secret_store *secrets; /* NULL when no master key is set */
    /* /health's credentials component: "healthy" (a key, the store open),
     * "disabled" (no key, no store) or "no_key" (a store but no key). */
    const char *creds_status;
    struct cb_proxy *proxy;           /* the http_request host call */
    struct cb_ct_manager *containers; /* never NULL once open */
    struct cb_agents *agents;
    uint64_t started_ns;
    _Atomic uint64_t db_ok_at_ns; /* last successful state DB check, for /health */
};

/* Creates the data directory and opens the state database, the audit log,
 * the credential store (when a master key is set) and the egress proxy. */
int cb__app_open(const struct cb_config *cfg, struct cb_app **out, struct cb_error *err);
void cb__app_close(struct cb_app *app);

struct cb_audit_record;
/* Appends an audit line; a failure is logged (the log then refuses
 * further appends, which /health does not hide). */
void cb__api_audit(struct cb_app *app, const struct cb_audit_record *rec);

/* Registers every route of the API on the router. */
void cb__api_register(struct cb_router *r);

/* Route handlers. */
void cb__api_health(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_metrics(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_execute(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_spawn(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_list(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_get(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_delete(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_logs(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_exec(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_exec_get(struct cb_http_request *req, struct cb_http_response *res);
/* POST .../exec in container id (containers.c), for the container and
 * the agent routes alike. */
void cb__api_exec_in(struct cb_http_request *req, struct cb_http_response *res, const char *id);
void cb__api_containers_files_get(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_files_put(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_containers_files_delete(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_agents_create(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_agents_list(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_agents_get(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_agents_delete(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_agents_start(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_agents_stop(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_agents_exec(struct cb_http_request *req, struct cb_http_response *res);

/* Registers the test-only routes. Defined only in the end-to-end test
 * binary (clawbox-test, from api/test_routes.c): app.c refers to it
 * weakly, so in the shipped binary it is NULL and no test route exists. */
void cb__api_register_test_routes(struct cb_router *r);

#endif
