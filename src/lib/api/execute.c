/* POST /execute: runs a registered tool once in a single-use worker and
 * answers with the ExecuteResponse shape of the reference. */
#include "api/app.h"
#include "api/tools.h"
#include "api/validate.h"
#include "audit/audit.h"
#include "config/config.h"
#include "core/json.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "proxy/pipeline.h"
#include "sandbox/manifest.h"
#include "sandbox/registry.h"
#include "sandbox/worker.h"
#include "scan/leak.h"
#include "scan/sanitize.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Tool stdout kept (the reference's cap); more sets output_truncated. */
#define CB_EXECUTE_MAX_OUTPUT (1024u * 1024)

struct exec_ctx {
    const struct cb_manifest *manifest;
    json_t *credentials; /* granted credential names */
    struct cb_proxy *proxy;
    const char *request_id;
};

/* Host calls other than log: http_request goes through the egress proxy,
 * which enforces the tool's allowlist and injects its credentials. */
static char *execute_host_call(void *ud, const char *method, json_t *params)
{
    struct exec_ctx *x = ud;
    if (strcmp(method, "http_request") != 0)
        return cb_host_error_envelope("unknown host call method: %s", method);
    json_t *env =
        cb_proxy_http_request(x->proxy, x->manifest, x->credentials, params, x->request_id);
    char *s = cb_json_dump_or(env, JSON_COMPACT, "{\"error\":\"http_request failed\"}");
    json_decref(env);
    return s;
}

/* Sorts the names in the request's capabilities.credentials: *granted (a
 * new array) gets those the manifest's credentials.available also lists,
 * in request order, for the proxy to inject; *refused (NULL when empty)
 * gets, for each one the request cannot use, its name and why. */
static void sort_credentials(struct cb_app *app, const struct cb_manifest *manifest, json_t *caps,
                             json_t **granted, json_t **refused)
{
    *granted = json_array();
    *refused = NULL;
    size_t i;
    json_t *want;
    json_array_foreach(json_object_get(caps, "credentials"), i, want)
    {
        const char *name = json_string_value(want);
        const char *why = NULL;
        /* A name with a NUL in it is not one the manifest lists. */
        if (name == NULL || strlen(name) != json_string_length(want))
            why = "not a credential name";
        else if (!cb_manifest_has_credential(manifest, name))
            why = "the tool's manifest does not list it in credentials.available";
        else {
            json_array_append(*granted, want);
            why = cb_proxy_credential_problem(app->proxy, name);
        }
        if (why == NULL)
            continue;
        if (*refused == NULL)
            *refused = json_array();
        json_array_append_new(*refused, json_pack("{s:O, s:s}", "name", want, "reason", why));
    }
}

/* An output object with an "error" member is the tool reporting a failure
 * (a refused request included): its value as text, else NULL. */
static json_t *tool_error(json_t *output)
{
    json_t *e = json_is_object(output) ? json_object_get(output, "error") : NULL;
    if (e == NULL || json_is_null(e))
        return NULL;
    if (json_is_string(e))
        return json_incref(e);
    char *text = cb_json_dump_or(e, JSON_COMPACT, "error");
    json_t *j = json_string(text);
    free(text);
    return j;
}

static uint64_t or_default(uint64_t v, uint64_t fallback)
{
    return v > 0 ? v : fallback;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Per-tool resources from the manifest, capped by the server's maxima. */
static void worker_limits_for(const struct cb_config *cfg, const struct cb_manifest *manifest,
                              struct cb_worker_limits *lim)
{
    const struct cb_manifest_resources *res = &manifest->resources;
    /* The manifest's maxima cap its defaults, as the server's cap both. */
    uint64_t timeout = min_u64(or_default(res->default_timeout_ms, cfg->sandbox.default_timeout_ms),
                               or_default(res->max_timeout_ms, UINT64_MAX));
    uint64_t memory = min_u64(or_default(res->default_memory_mb, cfg->sandbox.max_memory_mb),
                              or_default(res->max_memory_mb, UINT64_MAX));
    *lim = (struct cb_worker_limits){
        .fuel = cfg->sandbox.default_fuel,
        .timeout_ms = min_u64(timeout, cfg->sandbox.max_timeout_ms),
        .memory_mb = min_u64(memory, cfg->sandbox.max_memory_mb),
        .max_output = CB_EXECUTE_MAX_OUTPUT,
        .max_host_calls = (uint32_t)cfg->sandbox.max_host_calls,
    };
}

/* The tool's stdout as JSON when it parses, else as a (lossy UTF-8) string. */
static json_t *output_value(const struct cb_buf *out)
{
    const char *s = out->data ? out->data : "";
    json_t *v = json_loadb(s, out->len, JSON_DECODE_ANY, NULL);
    return v != NULL ? v : cb_json_text(s, out->len);
}

/* Sanitizes the output and the logs against every stored secret (in every
 * form the proxy's scanner knows: a tool may have been handed a credential
 * by a reflecting upstream) and the patterns. On success *output, *logs and
 * *report are new references. */
static int sanitize(struct cb_app *app, struct cb_worker_result *r, json_t **output, json_t **logs,
                    json_t **report, struct cb_error *err)
{
    struct cb_leak_scanner *sc = app->proxy ? cb_proxy_scanner_get(app->proxy) : NULL;
    json_t *raw = output_value(&r->out);
    int rc = cb_sanitize_output(sc, raw, output, report, err);
    json_decref(raw);
    if (rc == 0)
        rc = cb_sanitize_logs(sc, r->logs, *report, logs, err);
    cb_leak_scanner_free(sc);
    if (rc < 0) {
        json_decref(*output);
        json_decref(*report);
    }
    return rc;
}

/* Answers 200 with the tool's output and logs after sanitization: stored
 * secrets and credential patterns are redacted, injection patterns
 * blocked, and text whose redaction broke its JSON is returned as
 * redacted text (fail closed). */
static void respond_ok(struct cb_http_request *req, struct cb_http_response *res,
                       struct cb_worker_result *r, uint64_t ms, json_t *refused)
{
    struct cb_error err = {0};
    json_t *output = NULL, *logs = NULL, *report = NULL;
    if (sanitize(req->app, r, &output, &logs, &report, &err) < 0) {
        cb_http_respond_error(res, 500, "internal_error", "sanitizing the tool output: %s",
                              err.msg);
        return;
    }
    if (json_integer_value(json_object_get(report, "issues_found")) > 0)
        cb_metric_inc(((struct cb_app *)req->app)->m_sanitized, NULL, 1);
    json_t *meta = json_pack("{s:I, s:I, s:o, s:o, s:b}", "execution_time_ms", (json_int_t)ms,
                             "fuel_consumed", (json_int_t)r->outcome.fuel_consumed, "logs", logs,
                             "sanitization", report, "output_truncated", r->output_truncated);
    json_t *terr = tool_error(output);
    if (terr != NULL)
        json_object_set_new(meta, "tool_error", terr);
    if (refused != NULL)
        json_object_set(meta, "credentials_refused", refused);
    json_t *body = json_pack("{s:s, s:s, s:o, s:n, s:o}", "request_id", req->request_id, "status",
                             "ok", "output", output, "error", "metadata", meta);
    cb_http_respond_json(res, 200, body);
}

/* Maps a failed outcome to its ApiError; returns the metric status. */
static const char *respond_failure(struct cb_http_response *res, const struct cb_worker_result *r,
                                   const struct cb_worker_limits *lim)
{
    const struct cb_tool_outcome *o = &r->outcome;
    if (r->timed_out) {
        cb_http_respond_error(res, 408, "timeout", "execution timed out after %" PRIu64 " ms",
                              lim->timeout_ms);
        return "timeout";
    }
    if (r->crashed) {
        cb_http_respond_error(res, 500, "execution_error",
                              "the tool's worker process died (killed by the sandbox or out of "
                              "memory)");
        return "error";
    }
    switch (o->status) {
    case CB_TOOL_FUEL_EXHAUSTED:
        cb_http_respond_error(res, 408, "fuel_exhausted", "fuel exhausted (budget %" PRIu64 ")",
                              lim->fuel);
        return "fuel_exhausted";
    case CB_TOOL_EXIT_NONZERO:
        cb_http_respond_error(res, 500, "execution_error", "tool exited with code %u",
                              o->exit_code);
        return "error";
    case CB_TOOL_NO_START:
        cb_http_respond_error(res, 500, "execution_error", "module has no _start export");
        return "error";
    default:
        cb_http_respond_error(res, 500, "execution_error", "tool trapped: %s", o->message);
        return "error";
    }
}

/* Counts the execution in the metrics and writes its audit line, whatever
 * its outcome. */
static void record(struct cb_http_request *req, const struct cb_http_response *res,
                   const char *tool, const char *status, double secs, uint64_t fuel)
{
    struct cb_app *app = req->app;
    const char *labels[] = {tool, status};
    cb_metric_inc(app->m_executions, labels, 1);
    cb_metric_observe(app->m_exec_seconds, labels, secs);
    cb_metric_observe(app->m_fuel, labels, (double)fuel);
    struct cb_audit_record rec = {.kind = CB_AUDIT_EXECUTE,
                                  .request_id = req->request_id,
                                  .tool = tool,
                                  .method = "EXECUTE",
                                  .decision = status,
                                  .status = (int)res->status,
                                  .bytes = res->body_len,
                                  .duration_ms = (uint64_t)(secs * 1000.0)};
    cb__api_audit(app, &rec);
}

static void run_tool(struct cb_http_request *req, struct cb_http_response *res,
                     struct cb_tool *tool, json_t *params)
{
    struct cb_app *app = req->app;
    struct cb_worker_limits lim;
    struct cb_worker_result r;
    struct cb_error err = {0};
    json_t *caps = json_object_get(req->json, "capabilities");
    json_t *granted, *refused;
    sort_credentials(app, tool->manifest, caps, &granted, &refused);
    struct exec_ctx x = {tool->manifest, granted, app->proxy, req->request_id};
    uint64_t start = cb_now_mono_ns();
    char *text = cb_json_dump_or(params, JSON_COMPACT | JSON_ENCODE_ANY, "null");
    worker_limits_for(app->cfg, tool->manifest, &lim);
    int rc = cb_worker_execute(app->workers, tool->so_path, text, strlen(text), &lim,
                               execute_host_call, &x, &r, &err);
    free(text);
    json_decref(granted);
    uint64_t ns = cb_now_mono_ns() - start;
    const char *status = "ok";
    if (rc < 0) {
        cb_http_respond_error(res, 500, "internal_error", "%s", err.msg);
        status = "error";
    } else if (!r.timed_out && !r.crashed && r.outcome.status == CB_TOOL_OK) {
        respond_ok(req, res, &r, ns / 1000000, refused);
    } else {
        status = respond_failure(res, &r, &lim);
    }
    record(req, res, tool->name, status, (double)ns / 1e9, rc < 0 ? 0 : r.outcome.fuel_consumed);
    cb_worker_result_free(&r);
    json_decref(refused);
}

void cb__api_execute(struct cb_http_request *req, struct cb_http_response *res)
{
    struct cb_app *app = req->app;
    const char *name = NULL;
    if (!cb__api_body_object(req, res) || !cb__api_get_string(req, res, "tool", true, &name))
        return;
    json_t *caps = json_object_get(req->json, "capabilities");
    if (caps != NULL && !json_is_null(caps) && !json_is_object(caps)) {
        cb__api_invalid_field(res, "capabilities", "field 'capabilities' must be an object");
        return;
    }
    /* A tool still compiling is waited for, up to the default timeout. */
    struct cb_tool *tool =
        cb_registry_get_wait(app->registry, name, app->cfg->sandbox.default_timeout_ms);
    if (tool == NULL) {
        cb__api_tool_not_found(res, app->registry, name);
        record(req, res, "unknown", "not_found", 0, 0);
        return;
    }
    run_tool(req, res, tool, json_object_get(req->json, "params"));
    cb_tool_unref(tool);
}
