#include "api/serve.h"
#include "api/app.h"
#include "containers/runtime.h"
#include "core/log.h"
#include "http/server.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    /* Threads created from here on inherit the mask, so only sigwait sees
     * the shutdown signals. */
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void fill_options(const struct cb_config *cfg, struct cb_app *app,
                         struct cb_http_server_options *o)
{
    *o = (struct cb_http_server_options){
        .host = cfg->server.host,
        .port = (uint16_t)cfg->server.port,
        .unix_socket = cfg->server.unix_socket,
        .auth_token = cfg->server.auth_token,
        .max_body_bytes = cfg->server.max_body_bytes,
        .max_raw_body_bytes = cfg->containers.max_file_bytes,
        .spool_dir = cfg->server.data_dir,
        .threads = (unsigned)cfg->server.http_threads,
        .max_concurrent = (unsigned)cfg->server.max_concurrent_executions,
        .max_queued = (unsigned)cfg->server.max_queued_requests,
        .queue_timeout_ms = (unsigned)cfg->server.queue_timeout_ms,
        .max_connections = (unsigned)cfg->server.max_connections,
        .max_connections_per_address = (unsigned)cfg->server.max_connections_per_address,
        .request_head_timeout_ms = (unsigned)cfg->server.request_head_timeout_ms,
        .request_body_timeout_ms = (unsigned)cfg->server.request_body_timeout_ms,
        .metrics = app->metrics,
        .app = app,
    };
}

static void log_listening(const struct cb_config *cfg, struct cb_http_server *srv)
{
    char url[300];
    char port[8];
    snprintf(port, sizeof(port), "%u", cb_http_server_port(srv));
    snprintf(url, sizeof(url), "http://%s:%s", cfg->server.host, port);
    const char *fields[] = {"url", url, "unix_socket",
                            cfg->server.unix_socket ? cfg->server.unix_socket : "", NULL};
    cb_log_fields(CB_LOG_INFO, "clawbox " CLAWBOX_VERSION " listening", fields);
}

static void shut_down(const struct cb_config *cfg, struct cb_http_server *srv)
{
    cb_http_server_quiesce(srv);
    unsigned left = cb_http_server_drain(srv, cfg->server.shutdown_grace_ms);
    if (left > 0)
        cb_log(CB_LOG_WARN, "shutdown grace period over with %u request(s) still running", left);
    if (cb_http_server_stop(srv))
        return;
    /* A handler still runs and uses the app, the router and cfg: none of
     * them may be freed, and exit() would run library destructors
     * (OpenSSL's among them) under it. So the process ends here. */
    cb_log(CB_LOG_WARN, "exiting with request handlers still running");
    _exit(0);
}

/* crun needs a private mount namespace on hybrid cgroup hosts, entered
 * while the process has one thread. Without it containers may still work
 * with runc, so a failure is only logged. */
static void prepare_containers(const struct cb_config *cfg)
{
    struct cb_error err = {0};
    if (strcmp(cfg->containers.runtime, "none") != 0 && geteuid() == 0 &&
        cb_ct_mountns_prepare(&err) < 0)
        cb_log(CB_LOG_WARN, "containers: %s", err.msg);
}

int cb_serve(const struct cb_config *cfg, struct cb_error *err)
{
    sigset_t set;
    int sig = 0;
    struct cb_app *app = NULL;
    struct cb_http_server *srv = NULL;
    struct cb_http_server_options opts;
    block_signals(&set);
    prepare_containers(cfg);
    int r = cb__app_open(cfg, &app, err);
    if (r < 0)
        return r;
    struct cb_router *router = cb_router_new();
    cb__api_register(router);
    fill_options(cfg, app, &opts);
    r = cb_http_server_start(&opts, router, &srv, err);
    if (r < 0)
        goto out;
    log_listening(cfg, srv);
    sigwait(&set, &sig);
    cb_log(CB_LOG_INFO, "received %s; shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    shut_down(cfg, srv);
    cb_log(CB_LOG_INFO, "shutdown complete");
out:
    cb_router_free(router);
    cb__app_close(app);
    return r;
}
