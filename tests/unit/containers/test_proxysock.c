/* A container's proxy socket over real sockets: the proxy pipeline with a
 * credential store and an audit log on disk, a loopback upstream that the
 * config exempts with proxy.allow_private_cidrs, and clients that speak
 * HTTP/1.1 on the Unix socket (forked ones with other uids for the peer
 * check). Must run as root (the socket's group is set with chown). At the
 * end it prints the median time of a GET through the socket and of the
 * same GET straight to the upstream, both with libcurl. */
#include <curl/curl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "config/config.h"
#include "containers/proxysock.h"
#include "core/util.h"
#include "proxy/pipeline.h"
#include "proxy/upstream.h"
#include "rm_tree.h"
#include "sandbox/manifest.h"
#include "secrets/secrets.h"

#define KEY_HEX "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60"
#define TOKEN   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define WRONG   "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CT_ID   "clawbox-5b0c1f6e-3a4d-4c2b-9d7e-1f2a3b4c5d6e"
/* Injected for 127.0.0.1 as "X-Alpha: Key <value>" when granted. */
#define ALPHA "alpha-secret-value-0123456789"
#define GID   4242u
/* The container's host uids. */
#define UID_MIN 300000u
#define UID_MAX 365535u

static struct {
    char dir[64];
    char sock_dir[128];
    char sock[200];
    char store_path[128];
    char audit_dir[128];
    struct cb_master_key key;
    struct cb_config *cfg;
    struct cb_secret_store *store;
    struct cb_audit *audit;
    struct cb_proxy *proxy;
    struct cb_manifest *manifest;
    struct test_upstream up;
    struct cb_ct_proxy *ct;
    atomic_uint activity; /* on_request calls */
} g;

/* ------------------------------ upstream ----------------------------- */

/* /slow answers once the test opens this gate. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, true};

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = open;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.mu);
}

/* /echo sends back the request's body (bytes, NULs included) with
 * X-Seen-Method; /slow waits for the gate; anything else gets "hello". */
static void answer(int c, const char *path, const char *request, void *arg)
{
    (void)arg;
    if (strcmp(path, "/slow") == 0) {
        pthread_mutex_lock(&gate.mu);
        while (!gate.open)
            pthread_cond_wait(&gate.cond, &gate.mu);
        pthread_mutex_unlock(&gate.mu);
    }
    if (strncmp(path, "/echo", 5) == 0) {
        const char *body = strstr(request, "\r\n\r\n") + 4;
        size_t n = test_upstream_content_length(request);
        char head[128];
        snprintf(head, sizeof(head), "X-Seen-Method: %.*s\r\n", (int)strcspn(request, " "),
                 request);
        test_upstream_reply(c, 201, head, body, n);
        return;
    }
    test_upstream_reply(c, 200, "Content-Type: text/plain\r\nX-Up: 1\r\n", "hello", 5);
}

/* ------------------------------ fixture ------------------------------ */

static void on_request(void *ud)
{
    atomic_fetch_add((atomic_uint *)ud, 1);
}

static struct cb_config *config(void)
{
    char *text = cb_xasprintf("[proxy]\nallow_private_cidrs = [\"127.0.0.0/8\"]\n"
                              "default_timeout_ms = 5000\nrate_limit = 100000\n"
                              "rate_limit_burst = 100000\n"
                              "[credentials]\nstore_path = \"%s\"\n[logging]\naudit_dir = \"%s\"\n",
                              g.store_path, g.audit_dir);
    struct cb_config *cfg = NULL;
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    if (cb_config_load_text("test.toml", text, strlen(text), &cfg, &diag, &err) < 0)
        fail_msg("config: %s", err.msg);
    cb_config_diag_free(&diag);
    free(text);
    return cfg;
}

static struct cb_manifest *manifest(void)
{
    json_t *in = json_pack("{s:{s:s},s:{s:[s,s],s:i}}", "tool", "name", CT_ID, "network",
                           "allowlist", "127.0.0.1", "localhost", "max_concurrent", 64);
    struct cb_manifest *m = NULL;
    struct cb_error err = {0};
    if (cb_manifest_parse(in, false, &m, &err) < 0)
        fail_msg("manifest: %s", err.msg);
    json_decref(in);
    cb_manifest_set_origin(m, "[container_policy] network_allowlist");
    return m;
}

static void store_init(void)
{
    struct cb_error err = {0};
    struct cb_secret_store *w = NULL;
    struct cb_cred_spec spec = {"alpha", "127.0.0.1",   "X-Alpha", "Key ",
                                ALPHA,   strlen(ALPHA), true,      0};
    if (cb__master_key_parse_hex(KEY_HEX, strlen(KEY_HEX), &g.key, &err) < 0 ||
        cb_secret_store_open(g.store_path, &g.key, &w, &err) < 0 ||
        cb_secret_store_put(w, &spec, &err) < 0 || cb_secret_store_save(w, &err) < 0)
        fail_msg("store: %s", err.msg);
    cb_secret_store_free(w);
    if (cb_secret_store_open(g.store_path, &g.key, &g.store, &err) < 0)
        fail_msg("store: %s", err.msg);
}

/* Starts a proxy socket in dir for the test's container. */
static struct cb_ct_proxy *ct_start(const char *dir)
{
    json_t *granted = json_pack("[s]", "alpha");
    struct cb_ct_proxy_options o = {
        .container_id = CT_ID,
        .dir = dir,
        .gid = GID,
        .peer_uid_min = UID_MIN,
        .peer_uid_max = UID_MAX,
        .token = TOKEN,
        .manifest = g.manifest,
        .granted = granted,
        .proxy = g.proxy,
        .on_request = on_request,
        .ud = &g.activity,
    };
    struct cb_ct_proxy *p = NULL;
    struct cb_error err = {0};
    if (cb_ct_proxy_start(&o, &p, &err) < 0)
        fail_msg("start: %s", err.msg);
    json_decref(granted);
    return p;
}

static int setup(void **state)
{
    (void)state;
    struct cb_error err = {0};
    snprintf(g.dir, sizeof(g.dir), "/tmp/cb-proxysock-XXXXXX");
    if (mkdtemp(g.dir) == NULL || test_upstream_start(&g.up, answer, NULL) < 0)
        return -1;
    snprintf(g.store_path, sizeof(g.store_path), "%s/creds.enc", g.dir);
    snprintf(g.audit_dir, sizeof(g.audit_dir), "%s/audit", g.dir);
    snprintf(g.sock_dir, sizeof(g.sock_dir), "%s/proxy", g.dir);
    snprintf(g.sock, sizeof(g.sock), "%s/proxy.sock", g.sock_dir);
    chmod(g.dir, 0711);
    store_init();
    struct cb_audit_options ao = {g.audit_dir, 0};
    if (cb_audit_open(&ao, &g.audit, &err) < 0)
        return -1;
    g.cfg = config();
    g.proxy = cb_proxy_new(g.cfg, g.store, &g.key, g.audit, &err);
    if (g.proxy == NULL)
        fail_msg("proxy: %s", err.msg);
    g.manifest = manifest();
    g.ct = ct_start(g.sock_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cb_ct_proxy_stop(g.ct);
    assert_int_equal(cb_ct_proxy_drain(5000), 0);
    cb_proxy_free(g.proxy);
    cb_config_free(g.cfg);
    cb_audit_close(g.audit);
    cb_secret_store_free(g.store);
    cb_manifest_unref(g.manifest);
    test_upstream_stop(&g.up);
    rm_tree(g.dir);
    return 0;
}

/* ------------------------------ client ------------------------------- */

static int sock_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    int e = errno;
    if (fd >= 0)
        close(fd);
    errno = e;
    return -1;
}

struct answer {
    int status;
    char *raw; /* everything the server sent, NUL-terminated */
    size_t len;
    const char *body;
    size_t body_len;
};

static void answer_free(struct answer *a)
{
    free(a->raw);
}

/* Reads until the server closes; fills a (status 0 when nothing came). */
static void read_answer(int fd, struct answer *a)
{
    size_t cap = 1 << 16;
    memset(a, 0, sizeof(*a));
    a->raw = malloc(cap + 1);
    for (;;) {
        if (a->len == cap) {
            cap *= 2;
            a->raw = realloc(a->raw, cap + 1);
        }
        ssize_t r = read(fd, a->raw + a->len, cap - a->len);
        if (r <= 0)
            break;
        a->len += (size_t)r;
    }
    a->raw[a->len] = '\0';
    if (a->len >= 12 && strncmp(a->raw, "HTTP/1.1 ", 9) == 0)
        a->status = (a->raw[9] - '0') * 100 + (a->raw[10] - '0') * 10 + (a->raw[11] - '0');
    const char *end = strstr(a->raw, "\r\n\r\n");
    if (end != NULL) {
        a->body = end + 4;
        a->body_len = a->len - (size_t)(a->body - a->raw);
    }
}

/* Sends req (len bytes) on a new connection and reads the whole answer
 * (requests say Connection: close). */
static void exchange_n(const char *req, size_t len, struct answer *a)
{
    int fd = sock_connect(g.sock);
    assert_true(fd >= 0);
    /* A server over its connection cap answers 503 and closes at once, so
     * the write may fail: the answer is read all the same. */
    ssize_t n = write(fd, req, len);
    assert_true(n == (ssize_t)len || (n < 0 && (errno == EPIPE || errno == ECONNRESET)));
    read_answer(fd, a);
    close(fd);
}

static void exchange(const char *req, struct answer *a)
{
    exchange_n(req, strlen(req), a);
}

/* A POST /proxy with envelope `json` ({port} is the upstream's port). */
static void envelope(const char *auth, const char *json_tmpl, struct answer *a)
{
    char json[1024], req[2048];
    const char *at = strstr(json_tmpl, "{port}");
    if (at != NULL)
        snprintf(json, sizeof(json), "%.*s%u%s", (int)(at - json_tmpl), json_tmpl, g.up.port,
                 at + 6);
    else
        snprintf(json, sizeof(json), "%s", json_tmpl);
    snprintf(req, sizeof(req),
             "POST /proxy HTTP/1.1\r\nHost: localhost\r\n%s%s%sContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "", strlen(json),
             json);
    exchange(req, a);
}

static json_t *body_json(const struct answer *a)
{
    json_t *j = json_loadb(a->body ? a->body : "", a->body_len, 0, NULL);
    if (j == NULL)
        fail_msg("answer is not JSON: %s", a->raw);
    return j;
}

static const char *error_of(json_t *j)
{
    const char *e = json_string_value(json_object_get(j, "error"));
    assert_non_null(e);
    return e;
}

/* The value of header `name` in the answer's head (NUL-terminated copy in
 * out), or NULL. */
static const char *answer_header(const struct answer *a, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(a->raw, "\r\n"); p != NULL && p + 2 < a->body;
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl + strspn(p + 3 + nl, " ");
            snprintf(out, n, "%.*s", (int)strcspn(v, "\r"), v);
            return out;
        }
    }
    return NULL;
}

/* ------------------------------ envelope ----------------------------- */

static void envelope_allowed(void **state)
{
    (void)state;
    unsigned before = atomic_load(&g.activity);
    struct answer a;
    envelope("Bearer " TOKEN, "{\"url\":\"http://127.0.0.1:{port}/hi\",\"method\":\"GET\"}", &a);
    assert_int_equal(a.status, 200);
    json_t *j = body_json(&a);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(j, "body")), "hello");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "headers"), "x-up")),
                        "1");
    assert_int_equal(atomic_load(&g.activity), before + 1);
    char *seen = test_upstream_last(&g.up);
    assert_non_null(strstr(seen, "X-Alpha: Key " ALPHA));
    free(seen);
    json_decref(j);
    answer_free(&a);
}

static void envelope_denied_host_is_403(void **state)
{
    (void)state;
    unsigned seen = test_upstream_requests(&g.up);
    struct answer a;
    envelope("Bearer " TOKEN, "{\"url\":\"http://evil.example.com/x\",\"method\":\"GET\"}", &a);
    assert_int_equal(a.status, 403);
    json_t *j = body_json(&a);
    const char *e = error_of(j);
    assert_non_null(strstr(e, "evil.example.com"));
    assert_non_null(strstr(e, "container " CT_ID));
    assert_non_null(strstr(e, "add evil.example.com to [container_policy] network_allowlist"));
    assert_int_equal(test_upstream_requests(&g.up), seen);
    json_decref(j);
    answer_free(&a);
}

static void envelope_token_checked(void **state)
{
    (void)state;
    const char *auths[] = {NULL, "Bearer " WRONG, "Bearer " TOKEN "0", "Bearer", "Basic " TOKEN};
    unsigned seen = test_upstream_requests(&g.up), before = atomic_load(&g.activity);
    for (size_t i = 0; i < CB_ARRAY_LEN(auths); i++) {
        struct answer a;
        envelope(auths[i], "{\"url\":\"http://127.0.0.1:{port}/\",\"method\":\"GET\"}", &a);
        assert_int_equal(a.status, 401);
        json_t *j = body_json(&a);
        assert_string_equal(error_of(j), "unauthorized");
        json_decref(j);
        answer_free(&a);
    }
    assert_int_equal(test_upstream_requests(&g.up), seen);
    assert_int_equal(atomic_load(&g.activity), before);
}

static void envelope_bad_input_is_400(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"url\":",
        "[1]",
        "{\"method\":\"GET\"}",
        "{\"url\":\"http://127.0.0.1/\"}",
        "{\"url\":\"http://127.0.0.1/\",\"method\":\"GET\",\"headers\":{\"a\":1}}",
        "{\"url\":\"http://127.0.0.1/\",\"method\":\"GET\",\"body\":3}",
        "{\"url\":\"http://127.0.0.1/\",\"url\":\"http://127.0.0.1/\",\"method\":\"GET\"}"};
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++) {
        struct answer a;
        envelope("Bearer " TOKEN, bad[i], &a);
        assert_int_equal(a.status, 400);
        json_t *j = body_json(&a);
        error_of(j);
        json_decref(j);
        answer_free(&a);
    }
}

static void other_paths_and_methods(void **state)
{
    (void)state;
    struct answer a;
    exchange("GET /proxy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a);
    assert_int_equal(a.status, 405);
    char allow[32];
    assert_string_equal(answer_header(&a, "Allow", allow, sizeof(allow)), "POST");
    answer_free(&a);
    exchange("POST /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a);
    assert_int_equal(a.status, 404);
    answer_free(&a);
    exchange("GET /ftp://127.0.0.1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a);
    assert_int_equal(a.status, 404);
    answer_free(&a);
    exchange("garbage\r\n\r\n", &a);
    assert_int_equal(a.status, 400);
    answer_free(&a);
}

static void body_limit_is_413(void **state)
{
    (void)state;
    char req[512];
    snprintf(req, sizeof(req),
             "POST /proxy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
             "\r\nContent-Length: %u\r\n\r\n",
             CB_CT_PROXY_MAX_BODY + 1);
    struct answer a;
    exchange(req, &a);
    assert_int_equal(a.status, 413);
    answer_free(&a);
}

/* ---------------------------- forward form --------------------------- */

/* A forward-form request head for path on the upstream. */
static void forward_head(char *out, size_t n, const char *method, const char *path,
                         const char *extra)
{
    snprintf(out, n,
             "%s /http://127.0.0.1:%u%s HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: "
             "Bearer " TOKEN "\r\nAuthorization: Bearer program-own\r\n%sConnection: close\r\n\r\n",
             method, g.up.port, path, extra);
}

static void forward_get(void **state)
{
    (void)state;
    char req[1024], v[64];
    forward_head(req, sizeof(req), "GET", "/path?q=1", "");
    struct answer a;
    exchange(req, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body_len, 5);
    assert_memory_equal(a.body, "hello", 5);
    assert_string_equal(answer_header(&a, "X-Up", v, sizeof(v)), "1");
    assert_string_equal(answer_header(&a, "Content-Length", v, sizeof(v)), "5");
    char *seen = test_upstream_last(&g.up);
    assert_true(strncmp(seen, "GET /path?q=1 HTTP/1.1\r\n", 24) == 0);
    assert_non_null(strcasestr(seen, "\nauthorization: Bearer program-own\r\n"));
    assert_null(strcasestr(seen, "proxy-authorization"));
    assert_null(strstr(seen, TOKEN));
    assert_non_null(strstr(seen, "X-Alpha: Key " ALPHA));
    free(seen);
    answer_free(&a);
}

/* HEAD gets the upstream's Content-Length and no body. */
static void forward_head_request(void **state)
{
    (void)state;
    char req[1024], v[64];
    forward_head(req, sizeof(req), "HEAD", "/", "");
    struct answer a;
    exchange(req, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(answer_header(&a, "Content-Length", v, sizeof(v)), "5");
    assert_int_equal(a.body_len, 0);
    char *seen = test_upstream_last(&g.up);
    assert_true(strncmp(seen, "HEAD / HTTP/1.1\r\n", 17) == 0);
    free(seen);
    answer_free(&a);
}

static void forward_post_body(void **state)
{
    (void)state;
    static const char body[] = "bin\0ary\xff\xfe body";
    char head[1024], extra[128];
    snprintf(extra, sizeof(extra),
             "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n", sizeof(body) - 1);
    forward_head(head, sizeof(head), "PUT", "/echo", extra);
    char req[1200];
    size_t hl = strlen(head);
    memcpy(req, head, hl);
    memcpy(req + hl, body, sizeof(body) - 1);
    struct answer a;
    exchange_n(req, hl + sizeof(body) - 1, &a);
    assert_int_equal(a.status, 201);
    char v[64];
    assert_string_equal(answer_header(&a, "X-Seen-Method", v, sizeof(v)), "PUT");
    assert_int_equal(a.body_len, sizeof(body) - 1);
    assert_memory_equal(a.body, body, sizeof(body) - 1);
    char *seen = test_upstream_last(&g.up);
    assert_non_null(strcasestr(seen, "\nauthorization: Bearer program-own\r\n"));
    assert_null(strcasestr(seen, "proxy-authorization"));
    free(seen);
    answer_free(&a);
}

/* An empty body keeps its Content-Length: 0 upstream. */
static void forward_empty_body(void **state)
{
    (void)state;
    char req[1024];
    forward_head(req, sizeof(req), "POST", "/echo", "Content-Length: 0\r\n");
    struct answer a;
    exchange(req, &a);
    assert_int_equal(a.status, 201);
    assert_int_equal(a.body_len, 0);
    char *seen = test_upstream_last(&g.up);
    assert_non_null(strcasestr(seen, "\ncontent-length: 0\r\n"));
    free(seen);
    answer_free(&a);
}

static void forward_chunked_and_continue(void **state)
{
    (void)state;
    char head[1024];
    forward_head(head, sizeof(head), "POST", "/echo",
                 "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n");
    int fd = sock_connect(g.sock);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    char cont[64] = "";
    assert_true(read(fd, cont, sizeof(cont) - 1) > 0);
    assert_true(strncmp(cont, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    const char *chunks = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_int_equal(write(fd, chunks, strlen(chunks)), (ssize_t)strlen(chunks));
    struct answer a;
    read_answer(fd, &a);
    close(fd);
    assert_int_equal(a.status, 201);
    assert_int_equal(a.body_len, 11);
    assert_memory_equal(a.body, "hello world", 11);
    answer_free(&a);
}

static void forward_token_checked(void **state)
{
    (void)state;
    unsigned seen = test_upstream_requests(&g.up);
    char req[1024];
    struct answer a;
    /* The token in Authorization is the program's, not the proxy's. */
    snprintf(req, sizeof(req),
             "GET /http://127.0.0.1:%u/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " TOKEN
             "\r\nConnection: close\r\n\r\n",
             g.up.port);
    exchange(req, &a);
    assert_int_equal(a.status, 401);
    answer_free(&a);
    snprintf(req, sizeof(req),
             "GET /http://127.0.0.1:%u/ HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: "
             "Bearer " WRONG "\r\nConnection: close\r\n\r\n",
             g.up.port);
    exchange(req, &a);
    assert_int_equal(a.status, 401);
    json_t *j = body_json(&a);
    assert_string_equal(error_of(j), "unauthorized");
    json_decref(j);
    answer_free(&a);
    assert_int_equal(test_upstream_requests(&g.up), seen);
}

static void forward_denied_is_403(void **state)
{
    (void)state;
    struct answer a;
    exchange("GET /https://evil.example.com/x HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: "
             "Bearer " TOKEN "\r\nConnection: close\r\n\r\n",
             &a);
    assert_int_equal(a.status, 403);
    json_t *j = body_json(&a);
    assert_non_null(strstr(error_of(j), "evil.example.com"));
    json_decref(j);
    answer_free(&a);
}

static void keep_alive_serves_several(void **state)
{
    (void)state;
    char one[1024], two[1024], both[2048];
    snprintf(one, sizeof(one),
             "GET /http://127.0.0.1:%u/a HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: "
             "Bearer " TOKEN "\r\n\r\n",
             g.up.port);
    forward_head(two, sizeof(two), "GET", "/b", "");
    snprintf(both, sizeof(both), "%s%s", one, two);
    struct answer a;
    exchange(both, &a);
    assert_int_equal(a.status, 200);
    const char *second = strstr(a.raw + 1, "HTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_null(strstr(second + 1, "HTTP/1.1 "));
    answer_free(&a);
}

/* ------------------------------ the socket ---------------------------- */

/* Past 32 open connections a socket answers 503 and closes. */
static void connections_capped(void **state)
{
    (void)state;
    int fds[32];
    for (size_t i = 0; i < CB_ARRAY_LEN(fds); i++)
        assert_true((fds[i] = sock_connect(g.sock)) >= 0);
    /* Each of those is served once it is accepted; a request on the last
     * one shows that all were. */
    const char *req = "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fds[31], req, strlen(req)), (ssize_t)strlen(req));
    char buf[64] = "";
    assert_true(read(fds[31], buf, sizeof(buf) - 1) > 12);
    assert_true(strncmp(buf, "HTTP/1.1 404", 12) == 0);
    struct answer a;
    exchange("GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a);
    assert_int_equal(a.status, 503);
    json_t *j = body_json(&a);
    assert_non_null(strstr(error_of(j), "too many connections"));
    json_decref(j);
    answer_free(&a);
    for (size_t i = 0; i < CB_ARRAY_LEN(fds); i++)
        close(fds[i]);
    /* They end as the server sees them close. */
    uint64_t until = cb_now_mono_ns() + 5000000000ull;
    do {
        usleep(10000);
        exchange("GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a);
        answer_free(&a);
    } while (a.status != 404 && cb_now_mono_ns() < until);
    assert_int_equal(a.status, 404);
}

static void modes_and_owners(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(lstat(g.sock_dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0710);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_gid, GID);
    assert_int_equal(lstat(g.sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_gid, GID);
}

/* In a child with uid `uid` (and only group `gid`, when non-zero): 0 when
 * the server answered 401 to a request without a token, 1 when connect
 * failed with EACCES, 2 when the server closed the connection without a
 * word, 3 when connect failed otherwise, 4 for another answer. */
static int child_probe(uid_t uid, gid_t gid)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gid_t gids[1] = {gid ? gid : 65534};
        if (setgroups(1, gids) < 0 || setgid(gids[0]) < 0 || setuid(uid) < 0)
            _exit(9);
        int fd = sock_connect(g.sock);
        if (fd < 0)
            _exit(errno == EACCES ? 1 : 3);
        const char *req = "POST /proxy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        (void)!write(fd, req, strlen(req));
        char buf[64] = "";
        size_t got = 0;
        for (ssize_t n; got < 12 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0;)
            got += (size_t)n;
        if (got == 0)
            _exit(2);
        _exit(strncmp(buf, "HTTP/1.1 401", 12) == 0 ? 0 : 4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void peer_uids_checked(void **state)
{
    (void)state;
    /* The container's uid 1000, in its group. */
    assert_int_equal(child_probe(UID_MIN + 1000, GID), 0);
    /* A uid outside the range that still has the group: SO_PEERCRED. */
    assert_int_equal(child_probe(65534, GID), 2);
    assert_int_equal(child_probe(UID_MAX + 1, GID), 2);
    /* Anyone else cannot even reach the socket. */
    assert_int_equal(child_probe(65534, 0), 1);
}

static void revoke_then_stop(void **state)
{
    (void)state;
    char dir[160], sock[200];
    snprintf(dir, sizeof(dir), "%s/other", g.dir);
    snprintf(sock, sizeof(sock), "%s/proxy.sock", dir);
    struct cb_ct_proxy *p = ct_start(dir);
    char req[1024];
    forward_head(req, sizeof(req), "GET", "/", "");
    char saved[sizeof(g.sock)];
    memcpy(saved, g.sock, sizeof(saved));
    snprintf(g.sock, sizeof(g.sock), "%s", sock);
    struct answer a;
    exchange(req, &a);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    cb_ct_proxy_revoke(p);
    exchange(req, &a);
    assert_int_equal(a.status, 401);
    answer_free(&a);
    envelope("Bearer " TOKEN, "{\"url\":\"http://127.0.0.1:{port}/\",\"method\":\"GET\"}", &a);
    assert_int_equal(a.status, 401);
    answer_free(&a);
    memcpy(g.sock, saved, sizeof(saved));
    cb_ct_proxy_stop(p);
    struct stat st;
    assert_int_equal(lstat(sock, &st), -1);
    assert_int_equal(lstat(dir, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(sock_connect(sock), -1);
}

struct bg {
    pthread_t t;
    char sock[200];
    struct answer a;
};

static void *bg_request(void *arg)
{
    struct bg *b = arg;
    char req[1024];
    forward_head(req, sizeof(req), "GET", "/slow", "");
    int fd = sock_connect(b->sock);
    if (fd < 0)
        return NULL;
    (void)!write(fd, req, strlen(req));
    read_answer(fd, &b->a);
    close(fd);
    return NULL;
}

/* Stop while a request waits on the upstream: stop returns at once, the
 * client's connection ends, and the request finishes in the background
 * (drain sees it go). */
static void stop_with_request_in_flight(void **state)
{
    (void)state;
    struct bg b = {0};
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/inflight", g.dir);
    snprintf(b.sock, sizeof(b.sock), "%s/proxy.sock", dir);
    struct cb_ct_proxy *p = ct_start(dir);
    unsigned seen = test_upstream_requests(&g.up);
    gate_set(false);
    pthread_create(&b.t, NULL, bg_request, &b);
    uint64_t until = cb_now_mono_ns() + 5000000000ull;
    while (test_upstream_requests(&g.up) == seen && cb_now_mono_ns() < until)
        usleep(1000);
    assert_int_equal(test_upstream_requests(&g.up), seen + 1);
    uint64_t t0 = cb_now_mono_ns();
    cb_ct_proxy_stop(p);
    assert_true(cb_now_mono_ns() - t0 < 1000000000ull);
    pthread_join(b.t, NULL);
    assert_int_equal(b.a.status, 0); /* closed without an answer */
    answer_free(&b.a);
    struct stat st;
    assert_int_equal(lstat(dir, &st), -1);
    gate_set(true);
    /* The test's own socket has no connection open. */
    assert_int_equal(cb_ct_proxy_drain(5000), 0);
}

static void start_refuses_bad_options(void **state)
{
    (void)state;
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/bad", g.dir);
    struct cb_ct_proxy_options o = {.container_id = CT_ID,
                                    .dir = dir,
                                    .gid = GID,
                                    .token = "abc",
                                    .manifest = g.manifest,
                                    .proxy = g.proxy};
    struct cb_ct_proxy *p = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_ct_proxy_start(&o, &p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "64 hex"));
    o.token = TOKEN;
    o.peer_uid_min = 5;
    o.peer_uid_max = 4;
    assert_int_equal(cb_ct_proxy_start(&o, &p, &err), -EINVAL);
    struct stat st;
    assert_int_equal(lstat(dir, &st), -1);
}

/* ------------------------------ measure ------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* Median of n GETs of url with libcurl, a new connection each (as the
 * curl command line makes), through the Unix socket when sock is set. */
static double median_get_us(const char *url, const char *sock, const char *auth, int n)
{
    double *t = calloc((size_t)n, sizeof(*t));
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = auth ? curl_slist_append(NULL, auth) : NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (sock)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
    for (int i = 0; i < n; i++) {
        uint64_t t0 = cb_now_mono_ns();
        CURLcode rc = curl_easy_perform(h);
        t[i] = (double)(cb_now_mono_ns() - t0) / 1000.0;
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        assert_int_equal(rc, CURLE_OK);
        assert_int_equal(code, 200);
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    double m = t[n / 2];
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(t);
    return m;
}

static bool discard_head(void *ud, long status, const json_t *headers, const char *body, size_t len,
                         bool whole)
{
    (void)ud, (void)status, (void)headers, (void)body, (void)len, (void)whole;
    return true;
}

static bool discard_data(void *ud, const char *bytes, size_t len)
{
    (void)ud, (void)bytes, (void)len;
    return true;
}

/* Median of n calls of the pipeline itself for url, in this thread: what
 * the socket adds is the rest. */
static double median_pipeline_us(const char *url, int n)
{
    struct cb_proxy_sink sink = {discard_head, discard_data, NULL};
    double *t = calloc((size_t)n, sizeof(*t));
    json_t *params = json_pack("{s:s,s:s}", "url", url, "method", "GET");
    json_t *granted = json_pack("[s]", "alpha");
    for (int i = 0; i < n; i++) {
        uint64_t t0 = cb_now_mono_ns();
        json_t *env =
            cb_proxy_container_stream(g.proxy, g.manifest, granted, params, "m", &sink, NULL);
        t[i] = (double)(cb_now_mono_ns() - t0) / 1000.0;
        assert_non_null(json_object_get(env, "ok"));
        json_decref(env);
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    double m = t[n / 2];
    json_decref(params);
    json_decref(granted);
    free(t);
    return m;
}

static void measure_socket_against_direct(void **state)
{
    (void)state;
    char direct[128], via[160];
    snprintf(direct, sizeof(direct), "http://127.0.0.1:%u/bench", g.up.port);
    snprintf(via, sizeof(via), "http://localhost/%s", direct);
    median_get_us(via, g.sock, "Proxy-Authorization: Bearer " TOKEN, 20); /* warm-up */
    double d = median_get_us(direct, NULL, NULL, 200);
    double s = median_get_us(via, g.sock, "Proxy-Authorization: Bearer " TOKEN, 200);
    double pl = median_pipeline_us(direct, 200);
    printf("# proxy socket GET (curl, new connection each): median %.0f us through the socket, "
           "%.0f us direct (%.2fx); the pipeline alone (audit included) %.0f us; 200 each\n",
           s, d, s / d, pl);
}

/* A line of /proc/self/status ("VmRSS", "Threads") as a number. */
static long self_status(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    if (f != NULL)
        fclose(f);
    return v;
}

/* What an idle socket costs: memory and threads for 100 of them. */
static void measure_idle_sockets(void **state)
{
    (void)state;
    enum { N = 100 };
    struct cb_ct_proxy *p[N];
    char dir[N][96];
    assert_int_equal(cb_ct_proxy_drain(5000), 0); /* the last test's connections */
    long rss0 = self_status("VmRSS"), thr0 = self_status("Threads");
    for (int i = 0; i < N; i++) {
        snprintf(dir[i], sizeof(dir[i]), "%s/idle-%d", g.dir, i);
        p[i] = ct_start(dir[i]);
    }
    long rss1 = self_status("VmRSS"), thr1 = self_status("Threads");
    assert_true(thr1 <= thr0);
    for (int i = 0; i < N; i++)
        cb_ct_proxy_stop(p[i]);
    printf("# idle proxy sockets: %d started, RSS +%ld kB (%.1f kB each), no thread added\n", N,
           rss1 - rss0, (double)(rss1 - rss0) / N);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("skipped: the proxy socket tests need root (chown to the container's gid)\n");
        return 77; /* meson's "skipped" */
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(envelope_allowed),
        cmocka_unit_test(envelope_denied_host_is_403),
        cmocka_unit_test(envelope_token_checked),
        cmocka_unit_test(envelope_bad_input_is_400),
        cmocka_unit_test(other_paths_and_methods),
        cmocka_unit_test(body_limit_is_413),
        cmocka_unit_test(forward_get),
        cmocka_unit_test(forward_head_request),
        cmocka_unit_test(forward_post_body),
        cmocka_unit_test(forward_empty_body),
        cmocka_unit_test(forward_chunked_and_continue),
        cmocka_unit_test(forward_token_checked),
        cmocka_unit_test(forward_denied_is_403),
        cmocka_unit_test(keep_alive_serves_several),
        cmocka_unit_test(connections_capped),
        cmocka_unit_test(modes_and_owners),
        cmocka_unit_test(peer_uids_checked),
        cmocka_unit_test(revoke_then_stop),
        cmocka_unit_test(stop_with_request_in_flight),
        cmocka_unit_test(start_refuses_bad_options),
        cmocka_unit_test(measure_socket_against_direct),
        cmocka_unit_test(measure_idle_sockets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
