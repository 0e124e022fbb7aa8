/* The whole egress pipeline (cb_proxy_http_request) with real parts: a
 * credential store on disk, an audit log, and a loopback upstream that the
 * config exempts with proxy.allow_private_cidrs. Each test checks what the
 * tool gets back, what the upstream saw (or that it saw nothing), and the
 * audit line the decision wrote. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "config/config.h"
#include "core/util.h"
#include "proxy/pipeline.h"
#include "sandbox/manifest.h"
#include "scan/leak.h"
#include "secrets/secrets.h"
#include "upstream.h"
#include "rm_tree.h"

#define KEY_HEX "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60"
/* Injected for 127.0.0.1 as "X-Alpha: Key <value>". */
#define ALPHA "alpha-secret-value-0123456789"
/* Injected for 127.0.0.1 as "Authorization: Bearer <value>". */
#define BETA "beta-secret-value-9876543210"
/* For another domain: never sent to 127.0.0.1. */
#define GAMMA    "gamma-secret-value-5555555555"
#define BETA_B64 "YmV0YS1zZWNyZXQtdmFsdWUtOTg3NjU0MzIxMA=="
#define DELTA    "delta-secret-value-4444"
#define ALPHA2   "alpha-rotated-value-0000"
/* For 127.0.0.1 but https only: never sent over http. */
#define EPSILON "epsilon-https-only-value-31415"
/* For 127.0.0.1 over http, bound to port 1: never sent to the upstream. */
#define ZETA "zeta-port-one-value-27182"
/* For 127.0.0.1 over http, bound to the upstream's port. */
#define ETA  "eta-upstream-port-value-16180"
#define TOOL "fetcher"

static struct {
    char dir[64];
    char store_path[128];
    char audit_dir[128];
    struct cb_master_key key;
    struct cb_config *cfg;
    struct cb_secret_store *store;
    struct cb_audit *audit;
    struct cb_proxy *proxy;
    struct test_upstream up;
    struct cb_manifest *manifest;
} g;

/* ------------------------------ fixture ------------------------------ */

/* /slow answers once the test opens this gate. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = open;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.mu);
}

/* The upstream: /echo-secret sends back the bearer token it was sent,
 * plain and (for beta) base64, in its body and in a header, and
 * /name-secret as the name of a header; /slow waits for the gate;
 * anything else gets "hello". */
static void answer(int c, const char *path, const char *request, void *arg)
{
    (void)arg;
    if (strcmp(path, "/slow") == 0) {
        pthread_mutex_lock(&gate.mu);
        while (!gate.open)
            pthread_cond_wait(&gate.cond, &gate.mu);
        pthread_mutex_unlock(&gate.mu);
    }
    if (strcmp(path, "/name-secret") == 0) {
        const char *auth = strcasestr(request, "\nauthorization: ");
        char line[256] = "", head[512];
        if (auth != NULL)
            sscanf(auth + 1, "%*s %*s %255[^\r]", line);
        snprintf(head, sizeof(head), "X-%s: named\r\n", line);
        test_upstream_reply(c, 200, head, "hello", 5);
        return;
    }
    if (strcmp(path, "/echo-secret") != 0) {
        test_upstream_reply(c, 200, "Content-Type: text/plain\r\n", "hello", 5);
        return;
    }
    const char *auth = strcasestr(request, "\nauthorization: ");
    char line[256] = "", head[512], body[1024];
    if (auth != NULL)
        sscanf(auth + 1, "%*s %*s %255[^\r]", line);
    snprintf(head, sizeof(head), "X-Echo: %s\r\n", line);
    int n =
        snprintf(body, sizeof(body), "plain=%s b64=%s", line, strcmp(line, BETA) ? "" : BETA_B64);
    test_upstream_reply(c, 200, head, body, (size_t)n);
}

/* Edits the store file through a handle of its own, as `clawbox creds`
 * does from another process: the proxy's store is never modified. */
static struct cb_secret_store *writer(void)
{
    struct cb_secret_store *w = NULL;
    struct cb_error err = {0};
    if (cb_secret_store_open(g.store_path, &g.key, &w, &err) < 0)
        fail_msg("store: %s", err.msg);
    return w;
}

static void put_ex(struct cb_secret_store *w, const char *name, const char *domain,
                   const char *header, const char *prefix, const char *value, bool allow_http,
                   uint16_t port)
{
    struct cb_cred_spec spec = {name,  domain,        header,     prefix,
                                value, strlen(value), allow_http, port};
    struct cb_error err = {0};
    if (cb_secret_store_put(w, &spec, &err) < 0)
        fail_msg("store: %s", err.msg);
}

/* The loopback upstream speaks plain http, so these credentials allow it. */
static void put(struct cb_secret_store *w, const char *name, const char *domain, const char *header,
                const char *prefix, const char *value)
{
    put_ex(w, name, domain, header, prefix, value, true, 0);
}

static void save(struct cb_secret_store *w)
{
    struct cb_error err = {0};
    if (cb_secret_store_save(w, &err) < 0)
        fail_msg("store: %s", err.msg);
    cb_secret_store_free(w);
}

static struct cb_config *config(unsigned rate, unsigned burst)
{
    char *text = cb_xasprintf("[proxy]\nallow_private_cidrs = [\"127.0.0.0/8\"]\n"
                              "default_timeout_ms = 5000\nrate_limit = %u\nrate_limit_burst = %u\n"
                              "[credentials]\nstore_path = \"%s\"\n[logging]\naudit_dir = \"%s\"\n",
                              rate, burst, g.store_path, g.audit_dir);
    struct cb_config *cfg = NULL;
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    if (cb_config_load_text("test.toml", text, strlen(text), &cfg, &diag, &err) < 0)
        fail_msg("config: %s", err.msg);
    cb_config_diag_free(&diag);
    free(text);
    return cfg;
}

/* The manifest of TOOL with these network and credentials members. */
static struct cb_manifest *manifest(const char *members)
{
    char *text =
        cb_xasprintf("{\"tool\": {\"name\": \"" TOOL "\"}%s%s}", *members ? ", " : "", members);
    json_t *in = json_loads(text, 0, NULL);
    struct cb_manifest *m = NULL;
    struct cb_error err = {0};
    if (in == NULL || cb_manifest_parse(in, false, &m, &err) < 0)
        fail_msg("manifest %s: %s", text, err.msg);
    json_decref(in);
    free(text);
    return m;
}

static struct cb_proxy *proxy_new(const struct cb_config *cfg)
{
    struct cb_error err = {0};
    struct cb_proxy *p = cb_proxy_new(cfg, g.store, &g.key, g.audit, &err);
    if (p == NULL)
        fail_msg("proxy: %s", err.msg);
    return p;
}

static int setup(void **state)
{
    (void)state;
    struct cb_error err = {0};
    snprintf(g.dir, sizeof(g.dir), "/tmp/cb-pipeline-XXXXXX");
    if (mkdtemp(g.dir) == NULL || test_upstream_start(&g.up, answer, NULL) < 0)
        return -1;
    snprintf(g.store_path, sizeof(g.store_path), "%s/creds.enc", g.dir);
    snprintf(g.audit_dir, sizeof(g.audit_dir), "%s/audit", g.dir);
    struct cb_audit_options ao = {g.audit_dir, 0};
    if (cb__master_key_parse_hex(KEY_HEX, strlen(KEY_HEX), &g.key, &err) < 0)
        return -1;
    struct cb_secret_store *w = writer();
    put(w, "alpha", "127.0.0.1", "X-Alpha", "Key ", ALPHA);
    put(w, "beta", "127.0.0.1", NULL, NULL, BETA);
    put(w, "gamma", "api.example.com", "X-Gamma", "", GAMMA);
    put_ex(w, "epsilon", "127.0.0.1", "X-Epsilon", "", EPSILON, false, 0);
    put_ex(w, "zeta", "127.0.0.1", "X-Zeta", "", ZETA, true, 1);
    put_ex(w, "eta", "127.0.0.1", "X-Eta", "", ETA, true, (uint16_t)g.up.port);
    save(w);
    if (cb_secret_store_open(g.store_path, &g.key, &g.store, &err) < 0 ||
        cb_audit_open(&ao, &g.audit, &err) < 0)
        return -1;
    g.cfg = config(1000, 1000);
    g.proxy = proxy_new(g.cfg);
    g.manifest = manifest("\"network\": {\"allowlist\": [\"127.0.0.1\", \"nowhere.invalid\", "
                          "\"169.254.169.254\"]}");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cb_proxy_free(g.proxy);
    cb_config_free(g.cfg);
    cb_audit_close(g.audit);
    cb_secret_store_free(g.store);
    cb_manifest_unref(g.manifest);
    test_upstream_stop(&g.up);
    rm_tree(g.dir);
    return 0;
}

/* ------------------------------ helpers ------------------------------ */

/* Runs one request through `p` as TOOL; params is a JSON text in which
 * {port} stands for the upstream's port, granted a JSON array or NULL. */
static json_t *request_via(struct cb_proxy *p, const char *granted, const char *params_tmpl)
{
    char params[2048];
    size_t n = 0;
    for (const char *t = params_tmpl; *t && n + 8 < sizeof(params);) {
        if (strncmp(t, "{port}", 6) == 0) {
            n += (size_t)snprintf(params + n, sizeof(params) - n, "%u", g.up.port);
            t += 6;
        } else {
            params[n++] = *t++;
        }
    }
    params[n] = '\0';
    json_t *pj = json_loads(params, 0, NULL), *gj = granted ? json_loads(granted, 0, NULL) : NULL;
    assert_non_null(pj);
    json_t *env = cb_proxy_http_request(p, g.manifest, gj, pj, "req-1");
    json_decref(pj);
    json_decref(gj);
    assert_non_null(env);
    return env;
}

static json_t *request(const char *granted, const char *params_tmpl)
{
    return request_via(g.proxy, granted, params_tmpl);
}

/* The refusal text of env, which must be an error envelope. */
static const char *error_of(json_t *env)
{
    const char *msg = json_string_value(json_object_get(env, "error"));
    if (msg == NULL)
        fail_msg("expected an error, got %s", json_dumps(env, 0));
    return msg;
}

static json_t *ok_of(json_t *env)
{
    json_t *ok = json_object_get(env, "ok");
    if (ok == NULL)
        fail_msg("expected a response, got %s", json_dumps(env, 0));
    return ok;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "(null)";
}

static int collect_line(const char *line, size_t len, void *ctx)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    assert_non_null(j);
    json_array_append_new(ctx, j);
    return 0;
}

/* The newest n audit lines, parsed, oldest first (the caller decrefs). */
static json_t *audit_tail(size_t n)
{
    json_t *lines = json_array();
    assert_int_equal(cb_audit_tail(g.audit_dir, n, collect_line, lines, NULL), 0);
    return lines;
}

static json_t *last_audit(void)
{
    json_t *lines = audit_tail(1), *line = json_incref(json_array_get(lines, 0));
    json_decref(lines);
    assert_non_null(line);
    return line;
}

static size_t count_kind(const char *kind)
{
    json_t *lines = audit_tail(CB_AUDIT_MAX_TAIL), *l;
    size_t i, n = 0;
    json_array_foreach(lines, i, l) n += strcmp(str(l, "kind"), kind) == 0;
    json_decref(lines);
    return n;
}

/* The newest audit line is a proxy line for TOOL with this decision. */
static json_t *expect_audit(const char *decision)
{
    json_t *a = last_audit();
    assert_string_equal(str(a, "kind"), "proxy");
    assert_string_equal(str(a, "tool"), TOOL);
    assert_string_equal(str(a, "request_id"), "req-1");
    assert_string_equal(str(a, "decision"), decision);
    assert_int_equal(json_is_true(json_object_get(a, "blocked")), strcmp(decision, "allowed") != 0);
    assert_int_equal(json_is_true(json_object_get(a, "leak_detected")),
                     strcmp(decision, "leak_blocked") == 0);
    return a;
}

/* No file in the audit directory holds any secret's bytes. */
static void audit_has_no_secrets(void)
{
    static const char *const secrets[] = {ALPHA,  BETA,    GAMMA, BETA_B64, DELTA,
                                          ALPHA2, EPSILON, ZETA,  ETA};
    char path[256];
    snprintf(path, sizeof(path), "%s/audit.jsonl", g.audit_dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    for (size_t i = 0; i < CB_ARRAY_LEN(secrets); i++)
        assert_null(strstr(buf, secrets[i]));
}

/* ------------------------------- tests ------------------------------- */

static void allowed_get(void **state)
{
    (void)state;
    unsigned before = test_upstream_requests(&g.up);
    json_t *env = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/hello?q=1\"}");
    json_t *ok = ok_of(env);
    assert_int_equal(json_integer_value(json_object_get(ok, "status")), 200);
    assert_string_equal(str(ok, "body"), "hello");
    assert_string_equal(str(json_object_get(ok, "headers"), "content-type"), "text/plain");
    assert_int_equal(test_upstream_requests(&g.up), before + 1);
    char *seen = test_upstream_last(&g.up);
    assert_true(strncmp(seen, "GET /hello?q=1 HTTP/1.1\r\n", 25) == 0);
    free(seen);
    json_t *a = expect_audit("allowed");
    assert_int_equal(json_integer_value(json_object_get(a, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(a, "bytes")), 5);
    assert_string_equal(str(a, "method"), "GET");
    assert_non_null(strstr(str(a, "url"), "/hello?q=[REDACTED]"));
    assert_true(json_is_null(json_object_get(a, "credential_injected")));
    json_decref(a);
    json_decref(env);
}

static void allowlist_denial_names_the_host(void **state)
{
    (void)state;
    unsigned before = test_upstream_requests(&g.up);
    json_t *env = request(NULL, "{\"url\": \"http://localhost:{port}/\"}");
    const char *msg = error_of(env);
    assert_non_null(strstr(msg, "localhost"));
    assert_non_null(strstr(msg, "not in the allowlist"));
    assert_non_null(strstr(msg, TOOL));
    json_t *a = expect_audit("blocked");
    assert_string_equal(str(a, "reason"), msg);
    json_decref(a);
    json_decref(env);
    /* A tool whose manifest has no allowlist reaches nothing. */
    struct cb_manifest *saved = g.manifest;
    g.manifest = manifest("");
    env = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/\"}");
    assert_non_null(strstr(error_of(env), "(the allowlist is empty, so every host is denied); "
                                          "to allow it, add 127.0.0.1 to network.allowlist in "
                                          "the manifest registered through the API"));
    assert_non_null(strstr(error_of(env), "or run: clawbox tools allow"));
    json_decref(env);
    cb_manifest_unref(g.manifest);
    g.manifest = saved;
    assert_int_equal(test_upstream_requests(&g.up), before);
}

/* Allowed by the allowlist, refused by the address policy (only
 * 127.0.0.0/8 is exempt), before any connection. */
static void address_policy_blocks_metadata(void **state)
{
    (void)state;
    json_t *env = request(NULL, "{\"url\": \"http://169.254.169.254/latest/meta-data/\"}");
    const char *msg = error_of(env);
    assert_non_null(strstr(msg, "blocked"));
    assert_non_null(strstr(msg, "169.254.169.254"));
    json_t *a = expect_audit("blocked");
    assert_string_equal(str(a, "reason"), msg);
    json_decref(a);
    json_decref(env);
}

/* Nothing listens on port 1: the failure reaches the tool and the audit
 * log as an error, not as a response. */
static void upstream_failure_is_an_error(void **state)
{
    (void)state;
    json_t *env = request(NULL, "{\"url\": \"http://127.0.0.1:1/\"}");
    const char *msg = error_of(env);
    assert_non_null(strstr(msg, "127.0.0.1"));
    json_t *a = expect_audit("error");
    assert_string_equal(str(a, "reason"), msg);
    assert_int_equal(json_integer_value(json_object_get(a, "status")), 0);
    json_decref(a);
    json_decref(env);
}

/* A secret in what the tool sends (any part, any encoding) stops the
 * request before DNS and before any connection: nowhere.invalid would
 * fail to resolve if the scan came later. */
static void leak_blocked_before_any_connection(void **state)
{
    (void)state;
    static const char *const leaks[] = {
        "{\"url\": \"http://127.0.0.1:{port}/x?k=" ALPHA "\"}",
        "{\"url\": \"http://nowhere.invalid:{port}/x?k=" ALPHA "\"}",
        "{\"url\": \"http://127.0.0.1:{port}/\", \"method\": \"POST\", \"body\": \"t=" BETA_B64
        "\"}",
        "{\"url\": \"http://127.0.0.1:{port}/\", \"headers\": {\"X-Leak\": \"" GAMMA "\"}}",
    };
    unsigned before = test_upstream_requests(&g.up);
    for (size_t i = 0; i < CB_ARRAY_LEN(leaks); i++) {
        json_t *env = request("[\"alpha\"]", leaks[i]);
        const char *msg = error_of(env);
        assert_non_null(strstr(msg, "contains a credential ("));
        assert_non_null(strstr(msg, "secrets must not appear in tool requests"));
        json_t *a = expect_audit("leak_blocked");
        assert_int_equal(json_integer_value(json_object_get(a, "status")), 0);
        assert_true(json_is_null(json_object_get(a, "credential_injected")));
        json_decref(a);
        json_decref(env);
    }
    assert_int_equal(test_upstream_requests(&g.up), before);
    audit_has_no_secrets();
}

/* Only granted credentials for the request's host are injected, replacing
 * the tool's own header of that name; beta (not granted) and gamma (other
 * domain) are not sent. */
static void injects_granted_credentials_for_their_domain_only(void **state)
{
    (void)state;
    json_t *env = request("[\"alpha\", \"gamma\", \"missing\"]",
                          "{\"url\": \"http://127.0.0.1:{port}/\", "
                          "\"headers\": {\"x-alpha\": \"tool-own\", \"X-Other\": \"kept\"}}");
    ok_of(env);
    char *seen = test_upstream_last(&g.up);
    assert_non_null(strstr(seen, "\r\nX-Alpha: Key " ALPHA "\r\n"));
    assert_null(strcasestr(seen, "tool-own"));
    assert_non_null(strstr(seen, "\r\nX-Other: kept\r\n"));
    assert_null(strstr(seen, BETA));
    assert_null(strstr(seen, GAMMA));
    assert_null(strcasestr(seen, "x-gamma"));
    free(seen);
    json_t *a = expect_audit("allowed");
    assert_string_equal(str(a, "credential_injected"), "alpha");
    json_decref(a);
    json_decref(env);
    /* With beta granted, the tool's own Authorization is replaced. */
    env = request("[\"beta\"]", "{\"url\": \"http://127.0.0.1:{port}/\", "
                                "\"headers\": {\"Authorization\": \"Bearer mine\"}}");
    ok_of(env);
    seen = test_upstream_last(&g.up);
    char *first = strcasestr(seen, "\nauthorization:");
    assert_non_null(first);
    assert_null(strcasestr(first + 1, "\nauthorization:"));
    assert_non_null(strstr(seen, "\r\nAuthorization: Bearer " BETA "\r\n"));
    assert_null(strstr(seen, "mine"));
    free(seen);
    json_decref(env);
    audit_has_no_secrets();
}

/* A credential goes over plain http only when it allows it, and only to
 * its port when it is bound to one; held back, it is not in the audit
 * line's credential_injected either, and the request still goes out. */
static void injects_only_over_allowed_transport(void **state)
{
    (void)state;
    static const struct {
        const char *granted, *header, *value;
        bool sent;
    } cases[] = {
        {"[\"epsilon\"]", "x-epsilon", EPSILON, false},
        {"[\"zeta\"]", "x-zeta", ZETA, false},
        {"[\"eta\"]", "x-eta", ETA, true},
    };
    for (size_t i = 0; i < CB_ARRAY_LEN(cases); i++) {
        unsigned before = test_upstream_requests(&g.up);
        json_t *env = request(cases[i].granted, "{\"url\": \"http://127.0.0.1:{port}/\"}");
        ok_of(env);
        assert_int_equal(test_upstream_requests(&g.up), before + 1);
        char *seen = test_upstream_last(&g.up);
        if (cases[i].sent) {
            assert_non_null(strstr(seen, cases[i].value));
        } else if (strstr(seen, cases[i].value) != NULL || strcasestr(seen, cases[i].header)) {
            fail_msg("%s was injected:\n%s", cases[i].granted, seen);
        }
        free(seen);
        json_t *a = expect_audit("allowed");
        if (cases[i].sent)
            assert_string_equal(str(a, "credential_injected"), "eta");
        else
            assert_true(json_is_null(json_object_get(a, "credential_injected")));
        json_decref(a);
        json_decref(env);
    }
    audit_has_no_secrets();
}

/* The tool cannot set Host (it must match the URL that was checked) nor
 * hop-by-hop headers. */
static void host_and_hop_by_hop_headers_stripped(void **state)
{
    (void)state;
    json_t *env = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/\", \"headers\": {"
                                "\"Host\": \"evil.example\", \"Connection\": \"x-secret\", "
                                "\"Keep-Alive\": \"timeout=5\", \"TE\": \"trailers\", "
                                "\"Trailer\": \"X-T\", \"Upgrade\": \"h2c\", "
                                "\"Proxy-Authorization\": \"Basic eA==\", "
                                "\"X-Kept\": \"yes\"}}");
    ok_of(env);
    char *seen = test_upstream_last(&g.up);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", g.up.port);
    assert_non_null(strstr(seen, host));
    static const char *const gone[] = {
        "evil.example", "x-secret",   "\nconnection:", "\nkeep-alive:",      "\nte:",
        "\ntrailer:",   "\nupgrade:", "h2c",           "proxy-authorization"};
    for (size_t i = 0; i < CB_ARRAY_LEN(gone); i++)
        if (strcasestr(seen, gone[i]) != NULL)
            fail_msg("'%s' reached the upstream:\n%s", gone[i], seen);
    assert_non_null(strstr(seen, "\r\nX-Kept: yes\r\n"));
    free(seen);
    json_decref(env);
}

/* Only the proxy frames what it sends: the tool's Content-Length,
 * Transfer-Encoding, Expect, and the headers its Connection header names
 * never reach the upstream, and the body goes with its own length. */
static void framing_headers_are_the_proxys(void **state)
{
    (void)state;
    json_t *env = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/\", \"method\": \"POST\", "
                                "\"body\": \"hello\", \"headers\": {"
                                "\"Content-Length\": \"0\", \"content-length\": \"1\", "
                                "\"Transfer-Encoding\": \"chunked\", \"Expect\": \"100-continue\", "
                                "\"connection\": \"X-Named , close\", \"X-Named\": \"v\", "
                                "\"X-Kept\": \"yes\"}}");
    ok_of(env);
    char *seen = test_upstream_last(&g.up);
    assert_non_null(strstr(seen, "\r\nContent-Length: 5\r\n"));
    static const char *const gone[] = {"chunked",   "100-continue", "x-named",
                                       "length: 0", "length: 1",    "close"};
    for (size_t i = 0; i < CB_ARRAY_LEN(gone); i++)
        if (strcasestr(seen, gone[i]) != NULL)
            fail_msg("'%s' reached the upstream:\n%s", gone[i], seen);
    assert_non_null(strstr(seen, "\r\nX-Kept: yes\r\n"));
    free(seen);
    json_decref(env);
}

/* CONNECT would make the connection a tunnel and TRACE would echo the
 * injected credential: both are refused before anything is sent. */
static void connect_and_trace_refused(void **state)
{
    (void)state;
    static const char *const methods[] = {"CONNECT", "trace", "Connect"};
    for (size_t i = 0; i < CB_ARRAY_LEN(methods); i++) {
        char params[160];
        snprintf(params, sizeof(params),
                 "{\"url\": \"http://127.0.0.1:{port}/\", \"method\": \"%s\"}", methods[i]);
        json_t *env = request(NULL, params);
        assert_non_null(strstr(error_of(env), "is not allowed through the proxy"));
        json_decref(env);
    }
}

/* The upstream echoes the injected secret, plain and base64, in its body
 * and a header: the tool sees [REDACTED] instead. */
static void response_redacted(void **state)
{
    (void)state;
    json_t *env = request("[\"beta\"]", "{\"url\": \"http://127.0.0.1:{port}/echo-secret\"}");
    json_t *ok = ok_of(env);
    assert_string_equal(str(ok, "body"), "plain=[REDACTED] b64=[REDACTED]");
    assert_string_equal(str(json_object_get(ok, "headers"), "x-echo"), "[REDACTED]");
    char *text = json_dumps(env, 0);
    assert_null(strstr(text, BETA));
    assert_null(strstr(text, BETA_B64));
    free(text);
    json_t *a = expect_audit("allowed");
    assert_string_equal(str(a, "credential_injected"), "beta");
    json_decref(a);
    json_decref(env);
}

/* A header named after the secret is renamed to its redaction. */
static void response_header_name_redacted(void **state)
{
    (void)state;
    json_t *env = request("[\"beta\"]", "{\"url\": \"http://127.0.0.1:{port}/name-secret\"}");
    json_t *headers = json_object_get(ok_of(env), "headers");
    assert_string_equal(str(headers, "x-[REDACTED]"), "named");
    char *text = json_dumps(env, 0);
    assert_null(strcasestr(text, BETA));
    free(text);
    json_decref(expect_audit("allowed"));
    json_decref(env);
}

static void rate_limit_denies_with_reason(void **state)
{
    (void)state;
    struct cb_config *cfg = config(1, 2);
    struct cb_proxy *p = proxy_new(cfg);
    unsigned before = test_upstream_requests(&g.up);
    for (int i = 0; i < 2; i++)
        json_decref(request_via(p, NULL, "{\"url\": \"http://127.0.0.1:{port}/\"}"));
    json_t *env = request_via(p, NULL, "{\"url\": \"http://127.0.0.1:{port}/\"}");
    const char *want = "rate limited: tool " TOOL " exceeded 1 requests/s (burst 2); retry in ";
    assert_true(strncmp(error_of(env), want, strlen(want)) == 0);
    assert_int_equal(test_upstream_requests(&g.up), before + 2);
    json_t *a = expect_audit("blocked");
    assert_non_null(strstr(str(a, "reason"), "rate limited"));
    json_decref(a);
    json_decref(env);
    cb_proxy_free(p);
    cb_config_free(cfg);
}

static void *slow_request(void *arg)
{
    *(json_t **)arg = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/slow\"}");
    return NULL;
}

/* network.max_concurrent: with one request of the tool in flight, a second
 * is refused at once, before any connection, and audited; once the first
 * is done the next goes through. */
static void max_concurrent_refuses_past_the_limit(void **state)
{
    (void)state;
    struct cb_manifest *saved = g.manifest;
    g.manifest = manifest("\"network\": {\"allowlist\": [\"127.0.0.1\"], \"max_concurrent\": 1}");
    gate_set(false);
    unsigned before = test_upstream_requests(&g.up);
    json_t *slow = NULL;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_request, &slow), 0);
    for (int i = 0; i < 1000 && test_upstream_requests(&g.up) == before; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    assert_int_equal(test_upstream_requests(&g.up), before + 1);
    json_t *env = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/\"}");
    assert_string_equal(error_of(env),
                        "blocked: tool " TOOL " has 1 requests in flight through the proxy, its "
                        "limit (network.max_concurrent = 1); retry when one has finished");
    json_t *a = expect_audit("blocked");
    assert_string_equal(str(a, "reason"), error_of(env));
    json_decref(a);
    json_decref(env);
    gate_set(true);
    pthread_join(t, NULL);
    assert_int_equal(json_integer_value(json_object_get(ok_of(slow), "status")), 200);
    json_decref(slow);
    assert_int_equal(test_upstream_requests(&g.up), before + 1);
    env = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/\"}");
    ok_of(env);
    json_decref(env);
    /* 0 allows none */
    cb_manifest_unref(g.manifest);
    g.manifest = manifest("\"network\": {\"allowlist\": [\"127.0.0.1\"], \"max_concurrent\": 0}");
    env = request(NULL, "{\"url\": \"http://127.0.0.1:{port}/\"}");
    assert_non_null(strstr(error_of(env), "(network.max_concurrent = 0)"));
    json_decref(env);
    assert_int_equal(test_upstream_requests(&g.up), before + 2);
    cb_manifest_unref(g.manifest);
    g.manifest = saved;
}

static void sleep_past_store_check(void)
{
    struct timespec ts = {1, 150 * 1000000L}; /* the proxy stats the store once a second */
    nanosleep(&ts, NULL);
}

/* A change to the store file is picked up by the next request and audited
 * by name (before that request's own line); a rewrite that changes
 * nothing writes no line. */
static void store_reload_is_audited_by_name(void **state)
{
    (void)state;
    struct cb_secret_store *w = writer();
    put(w, "delta", "127.0.0.1", "X-Delta", "", DELTA);
    put(w, "alpha", "127.0.0.1", "X-Alpha", "Key ", ALPHA2);
    assert_int_equal(cb_secret_store_remove(w, "gamma"), 0);
    save(w);
    size_t before = count_kind("credential");
    sleep_past_store_check();
    json_t *env = request("[\"delta\", \"alpha\"]", "{\"url\": \"http://127.0.0.1:{port}/\"}");
    ok_of(env);
    json_decref(env);
    char *seen = test_upstream_last(&g.up);
    assert_non_null(strstr(seen, "\r\nX-Delta: " DELTA "\r\n"));
    assert_non_null(strstr(seen, "\r\nX-Alpha: Key " ALPHA2 "\r\n"));
    free(seen);
    json_t *t = audit_tail(2), *r = json_array_get(t, 0), *a = json_array_get(t, 1);
    assert_string_equal(str(r, "kind"), "credential");
    assert_string_equal(str(r, "method"), "CREDENTIAL");
    assert_string_equal(str(r, "decision"), "reload");
    assert_true(json_is_null(json_object_get(r, "tool")));
    char *lists = json_dumps(r, JSON_COMPACT);
    assert_non_null(strstr(lists, "\"added\":[\"delta\"],\"removed\":[\"gamma\"],"
                                  "\"changed\":[\"alpha\"]"));
    free(lists);
    assert_non_null(strstr(str(r, "reason"), "1 added, 1 removed, 1 changed"));
    assert_string_equal(str(a, "kind"), "proxy");
    assert_string_equal(str(a, "credential_injected"), "delta,alpha");
    json_decref(t);
    assert_int_equal(count_kind("credential"), before + 1);

    save(writer()); /* a new file, the same credentials */
    sleep_past_store_check();
    json_decref(request(NULL, "{\"url\": \"http://127.0.0.1:{port}/\"}"));
    assert_int_equal(count_kind("credential"), before + 1);
    audit_has_no_secrets();
}

/* The scanner handed to /execute follows the store: it finds a secret
 * added to the file and no longer the one removed, and a reference taken
 * before a reload stays usable after it. */
static void scanner_follows_the_store(void **state)
{
    (void)state;
    struct cb_leak_report rep;
    struct cb_leak_scanner *before = cb_proxy_scanner_get(g.proxy);
    assert_int_equal(cb_leak_scan(before, "x " DELTA " y", strlen(DELTA) + 4, &rep, NULL), 1);
    assert_string_equal(rep.findings[0].name, "delta");
    assert_int_equal(cb_leak_scan(before, "x " GAMMA " y", strlen(GAMMA) + 4, &rep, NULL), 0);
    struct cb_secret_store *w = writer();
    put(w, "iota", "127.0.0.1", "X-Iota", "", "iota-added-later-8f7e6d5c4b");
    save(w);
    sleep_past_store_check();
    struct cb_leak_scanner *after = cb_proxy_scanner_get(g.proxy);
    const char *rev = "rev: b4c5d6e7f8-retal-dedda-atoi";
    assert_int_equal(cb_leak_scan(after, rev, strlen(rev), &rep, NULL), 1);
    assert_string_equal(rep.findings[0].name, "iota");
    assert_int_equal(cb_leak_scan(before, rev, strlen(rev), &rep, NULL), 0);
    cb_leak_scanner_free(before);
    cb_leak_scanner_free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allowed_get),
        cmocka_unit_test(allowlist_denial_names_the_host),
        cmocka_unit_test(address_policy_blocks_metadata),
        cmocka_unit_test(upstream_failure_is_an_error),
        cmocka_unit_test(leak_blocked_before_any_connection),
        cmocka_unit_test(injects_granted_credentials_for_their_domain_only),
        cmocka_unit_test(injects_only_over_allowed_transport),
        cmocka_unit_test(host_and_hop_by_hop_headers_stripped),
        cmocka_unit_test(framing_headers_are_the_proxys),
        cmocka_unit_test(connect_and_trace_refused),
        cmocka_unit_test(response_redacted),
        cmocka_unit_test(response_header_name_redacted),
        cmocka_unit_test(rate_limit_denies_with_reason),
        cmocka_unit_test(max_concurrent_refuses_past_the_limit),
        cmocka_unit_test(store_reload_is_audited_by_name),
        cmocka_unit_test(scanner_follows_the_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
