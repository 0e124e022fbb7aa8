/* The egress proxy pipeline: see pipeline.h for the order of the stages. */
#include "proxy/pipeline.h"
#include "audit/audit.h"
#include "core/json.h"
#include "core/log.h"
#include "core/utf8.h"
#include "core/util.h"
#include "proxy/addr.h"
#include "proxy/allowlist.h"
#include "proxy/decode.h"
#include "proxy/forward.h"
#include "proxy/inflight.h"
#include "proxy/internal.h"
#include "proxy/ratelimit.h"
#include "proxy/resolve.h"
#include "proxy/pipeline_internal.h"
#include "proxy/url.h"
#include "sandbox/manifest.h"
#include "scan/leak.h"
#include "secrets/secrets.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PROXY_MAX_METHOD 32
/* How often a request may stat the store file to look for changes. */
#define PROXY_STORE_CHECK_NS 1000000000ull

struct cb_proxy {
    const struct cb_config *cfg;
    struct cb_audit *audit;
    struct cb_proxy_addr_policy *policy;
    struct cb_proxy_ratelimit *rl;
    struct cb_proxy_inflight *inflight; /* per tool, for network.max_concurrent */
    struct cb_forwarder *fwd;
    struct cb_proxy_resolver *resolver;
    bool can_reload; /* a store and its key were given */
    struct cb_master_key key;
    pthread_mutex_t lock; /* guards creds and next_check_ns */
    struct cb__proxy_creds *creds;
    uint64_t next_check_ns;
};

static struct cb_leak_scanner *build_scanner(struct cb_secret_store *store, struct cb_error *err)
{
    size_t n = store ? cb_secret_store_count(store) : 0;
    if (n > CB_LEAK_MAX_SECRETS)
        n = CB_LEAK_MAX_SECRETS;
    const char **names = cb_xcalloc(n + 1, sizeof(*names));
    const char **values = cb_xcalloc(n + 1, sizeof(*values));
    size_t *lens = cb_xcalloc(n + 1, sizeof(*lens));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct cb_cred_info info;
        if (cb_secret_store_entry(store, i, &info) < 0 ||
            cb_secret_store_value_at(store, i, &values[k], &lens[k]) < 0)
            continue;
        names[k++] = info.name;
    }
    struct cb_leak_scanner *sc = cb_leak_scanner_new(names, values, lens, k, err);
    free(names);
    free(values);
    free(lens);
    return sc;
}

static void creds_put(struct cb__proxy_creds *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    cb_leak_scanner_free(c->scanner);
    if (c->own_store)
        cb_secret_store_free(c->store);
    free(c);
}

/* Builds a snapshot around store (owned when own_store). On failure the
 * store is left to the caller. */
static struct cb__proxy_creds *creds_new(struct cb_secret_store *store, bool own_store,
                                         struct cb_error *err)
{
    struct cb_leak_scanner *sc = build_scanner(store, err);
    if (sc == NULL)
        return NULL;
    struct cb__proxy_creds *c = cb_xcalloc(1, sizeof(*c));
    atomic_init(&c->refs, 1);
    c->own_store = own_store;
    c->store = store;
    c->scanner = sc;
    return c;
}

struct cb_proxy *cb_proxy_new(const struct cb_config *cfg, struct cb_secret_store *store,
                              const struct cb_master_key *key, struct cb_audit *audit,
                              struct cb_error *err)
{
    struct cb_proxy *p = cb_xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    p->audit = audit;
    pthread_mutex_init(&p->lock, NULL);
    if (store != NULL && key != NULL) {
        p->can_reload = true;
        p->key = *key;
    }
    p->next_check_ns = cb_now_mono_ns() + PROXY_STORE_CHECK_NS;
    struct cb_proxy_ratelimit_config rc = {
        .rate = (double)cfg->proxy.rate_limit,
        .burst = (double)cfg->proxy.rate_limit_burst,
    };
    int r = cb__proxy_addr_policy_new(cfg->proxy.allow_private_cidrs.items,
                                      cfg->proxy.allow_private_cidrs.len, &p->policy, err);
    if (r == 0)
        r = cb__proxy_ratelimit_new(&rc, &p->rl, err);
    if (r == 0) {
        p->creds = creds_new(store, false, err);
        r = p->creds ? 0 : -EINVAL;
    }
    if (r == 0) {
        p->inflight = cb_proxy_inflight_new();
        p->fwd = cb_forwarder_new();
        p->resolver = cb__proxy_resolver_new(CB_PROXY_RESOLVE_TTL_MS, NULL);
        return p;
    }
    cb_error_prefix(err, "egress proxy");
    cb_proxy_free(p);
    return NULL;
}

void cb_proxy_free(struct cb_proxy *p)
{
    if (p == NULL)
        return;
    cb__forwarder_free(p->fwd);
    cb__proxy_resolver_free(p->resolver);
    cb__proxy_inflight_free(p->inflight);
    creds_put(p->creds);
    cb__proxy_ratelimit_free(p->rl);
    cb__proxy_addr_policy_free(p->policy);
    cb_master_key_wipe(&p->key);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Reads the store again and builds its scanner. A store whose file has
 * vanished is refused too: the server must not drop to no credentials. */
static struct cb__proxy_creds *reload_creds(struct cb_proxy *p, struct cb_error *err)
{
    const char *path = p->cfg->credentials.store_path;
    struct cb_secret_store *store = NULL;
    if (cb_secret_store_open(path, &p->key, &store, err) < 0)
        return NULL;
    if (!cb_secret_store_exists(store)) {
        cb_secret_store_free(store);
        cb_error_set(err, -ENOENT, "the file is gone");
        return NULL;
    }
    struct cb__proxy_creds *c = creds_new(store, true, err);
    if (c == NULL)
        cb_secret_store_free(store);
    return c;
}

/* Writes the audit line for a reload that changed anything: the names
 * added, removed and changed (never values), so that changes made without
 * the CLI are on record too. */
static void audit_reload(struct cb_proxy *p, const struct cb_secret_store *from,
                         const struct cb_secret_store *to)
{
    if (p->audit == NULL)
        return;
    struct cb_secret_change c = {.decision = "reload"};
    cb_secret_store_diff(from, to, &c.names);
    const struct cb_secret_diff *d = &c.names;
    char *reason =
        cb_xasprintf("credential store %s reloaded: %zu added, %zu removed, "
                     "%zu changed",
                     p->cfg->credentials.store_path, d->n_added, d->n_removed, d->n_changed);
    c.reason = reason;
    struct cb_error e = {0};
    if (cb_secret_change_audit(p->audit, &c, &e) < 0)
        cb_log(CB_LOG_ERROR, "audit log write failed: %s", e.msg);
    free(reason);
    cb_secret_diff_free(&c.names);
}

/* Reads the store again when its file changed since `cur` was loaded, and
 * returns the new snapshot with a reference for the caller (and one for
 * the proxy, swapped in unless another reload got there first), or NULL
 * when nothing changed or the reload failed. A failure keeps the loaded
 * credentials and is logged. Runs without p->lock: only the swap takes it,
 * so requests are not held up while the file is decrypted. */
static struct cb__proxy_creds *reload_if_changed(struct cb_proxy *p, struct cb__proxy_creds *cur)
{
    if (!cb_secret_store_changed_on_disk(cur->store))
        return NULL;
    struct cb_error e = {0};
    struct cb__proxy_creds *c = reload_creds(p, &e);
    if (c == NULL) {
        cb_log(CB_LOG_ERROR,
               "reloading credential store %s failed, keeping the %zu credentials loaded: %s",
               p->cfg->credentials.store_path, cb_secret_store_count(cur->store), e.msg);
        return NULL;
    }
    cb_log(CB_LOG_INFO, "credential store %s reloaded: %zu credentials",
           p->cfg->credentials.store_path, cb_secret_store_count(c->store));
    pthread_mutex_lock(&p->lock);
    struct cb__proxy_creds *old = NULL;
    if (p->creds == cur) {
        old = p->creds;
        atomic_fetch_add(&c->refs, 1);
        p->creds = c;
    }
    pthread_mutex_unlock(&p->lock);
    if (old != NULL)
        audit_reload(p, old->store, c->store);
    creds_put(old);
    return c;
}

/* Takes a reference to the current credentials; the caller drops it with
 * creds_put. At most once per PROXY_STORE_CHECK_NS, one caller also stats
 * the store file and reloads it when it changed. */
static struct cb__proxy_creds *creds_get(struct cb_proxy *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t now = cb_now_mono_ns();
    bool check = p->can_reload && now >= p->next_check_ns;
    if (check)
        p->next_check_ns = now + PROXY_STORE_CHECK_NS;
    struct cb__proxy_creds *c = p->creds;
    atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&p->lock);
    struct cb__proxy_creds *fresh = check ? reload_if_changed(p, c) : NULL;
    if (fresh == NULL)
        return c;
    creds_put(c);
    return fresh;
}

struct cb_leak_scanner *cb_proxy_scanner_get(struct cb_proxy *p)
{
    struct cb__proxy_creds *c = creds_get(p);
    struct cb_leak_scanner *sc = cb_leak_scanner_ref(c->scanner);
    creds_put(c);
    return sc;
}

const char *cb_proxy_credential_problem(struct cb_proxy *p, const char *name)
{
    struct cb__proxy_creds *c = creds_get(p);
    struct cb_cred_info info;
    bool open = c->store != NULL;
    bool found = open && cb_secret_store_find(c->store, name, &info) == 0;
    creds_put(c);
    if (!open)
        return "no master key is set (credentials.key_file or CLAWBOX_MASTER_KEY), so no "
               "credential is ever injected";
    return found ? NULL
                 : "the credential store holds no credential of that name (add it with "
                   "clawbox creds add)";
}

static void req_free(struct cb__proxy_req *q)
{
    for (size_t i = 0; i < q->n_headers; i++) {
        if (i >= q->inject_from)
            cb_secret_free(q->headers[i], strlen(q->headers[i]));
        else
            free(q->headers[i]);
    }
    if (q->url_ok)
        cb__proxy_url_free(&q->url);
}

json_t *cb__proxy_error_envelope(const char *msg)
{
    return json_pack("{s:s}", "error", msg);
}

/* Replaces every known secret form in s (len bytes); returns a new string
 * or NULL when it cannot be redacted (then the caller withholds it). */
static char *redact(const struct cb_leak_scanner *sc, const char *s, size_t len, size_t *out_len)
{
    char *out = NULL;
    struct cb_error e = {0};
    if (cb_leak_redact(sc, s, len, &out, out_len, NULL, &e) < 0)
        return NULL;
    return out;
}

/* Texts as they may be written to the audit log (out[i] for in[i], NULL
 * for NULL; the caller frees): every known secret and credential
 * pattern redacted, wherever it sits (in a URL: host, path, query or
 * fragment). Mostly there is nothing to redact: one scan of them all
 * says so, and they are copied. */
#define AUDIT_TEXTS 3
static void audit_texts(const struct cb_leak_scanner *sc, const char *const *in, char **out,
                        size_t n)
{
    struct cb_leak_piece pieces[AUDIT_TEXTS];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (in[i] != NULL)
            pieces[k++] = (struct cb_leak_piece){in[i], strlen(in[i])};
    bool clean = cb_leak_pieces_clean(sc, pieces, k);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        out[i] = in[i] == NULL ? NULL
                 : clean       ? cb_xstrdup(in[i])
                               : redact(sc, in[i], strlen(in[i]), &len);
        if (in[i] != NULL && out[i] == NULL)
            out[i] = cb_xstrdup(CB_LEAK_REDACTED);
    }
}

static void free_texts(char **texts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
}

/* A proxied request's line: written before the answer either way, and
 * synced before it only with [logging] proxy_audit_sync =
 * "before_response". Failures to log go to the server log. */
static void append_line(struct cb_proxy *p, const struct cb_audit_record *rec)
{
    struct cb_error e = {0};
    if (cb_audit_append_as(p->audit, rec, p->cfg->logging.proxy_audit_sync, &e) < 0)
        cb_log(CB_LOG_ERROR, "audit log write failed: %s", e.msg);
}

void cb__proxy_audit(struct cb_proxy *p, struct cb__proxy_req *q, const char *decision,
                     const char *reason, int status, uint64_t bytes)
{
    if (p->audit == NULL)
        return;
    const char *in[AUDIT_TEXTS] = {q->url_ok ? q->url.redacted : NULL, reason, q->method};
    char *out[AUDIT_TEXTS];
    audit_texts(q->creds->scanner, in, out, AUDIT_TEXTS);
    struct cb_audit_record rec = {
        .kind = CB_AUDIT_PROXY,
        .request_id = q->request_id,
        .tool = q->tool,
        .method = out[2],
        .url = out[0],
        .decision = decision,
        .reason = out[1],
        .credential_injected = q->injected[0] ? q->injected : NULL,
        .status = status,
        .bytes = bytes,
        .duration_ms = (cb_now_mono_ns() - q->start_ns) / 1000000,
        .blocked = strcmp(decision, "allowed") != 0,
        .leak_detected = strcmp(decision, "leak_blocked") == 0,
    };
    append_line(p, &rec);
    free_texts(out, AUDIT_TEXTS);
}

static json_t *deny(struct cb_proxy *p, struct cb__proxy_req *q, const char *decision,
                    const char *msg)
{
    cb__proxy_audit(p, q, decision, msg, 0, 0);
    return cb__proxy_error_envelope(msg);
}

/* Whether s[0..len) equals the token `name`, ignoring case. */
static bool token_eq(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/* Whether `name` is one of the comma-separated tokens of `list` (a
 * Connection header's value). */
static bool listed_in(const char *list, const char *name, size_t len)
{
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0 && n == len && strncasecmp(p, name, len) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

/* Whether the header the tool gave as `name` is one the proxy never passes
 * on. Only the proxy frames the messages it sends: libcurl computes the
 * length of the body it is given, so no tool header may say how long the
 * body is or how it is encoded (Content-Length, Transfer-Encoding, TE,
 * Trailer, Expect), nor how the connection is used (Connection and the
 * headers it names, Keep-Alive, Upgrade, Proxy-*). Otherwise the upstream
 * could read the rest of a body as a request of its own, and a request of
 * another tool on the same connection, with its credential, as that
 * request's body. Host must match the URL that was checked. */
static bool dropped_header(const json_t *headers, const char *name, size_t len)
{
    static const char *const drop[] = {"connection", "content-length",    "expect",
                                       "host",       "keep-alive",        "te",
                                       "trailer",    "transfer-encoding", "upgrade"};
    if (len >= 6 && strncasecmp(name, "proxy-", 6) == 0)
        return true;
    for (size_t i = 0; i < CB_ARRAY_LEN(drop); i++)
        if (token_eq(name, len, drop[i]))
            return true;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        if (token_eq(k, strlen(k), "connection") && listed_in(json_string_value(v), name, len))
            return true;
    }
    return false;
}

/* A field value as RFC 9110 §5.5 allows it: no control character but
 * horizontal tab, so no line break or NUL an upstream parser could read as
 * the end of a header. */
static bool is_field_value(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Methods refused: CONNECT would turn the upstream connection into a
 * tunnel the proxy cannot inspect, and TRACE echoes the request, injected
 * credentials included, back to the tool. */
static bool refused_method(const char *m)
{
    return strcasecmp(m, "CONNECT") == 0 || strcasecmp(m, "TRACE") == 0;
}

/* An HTTP token (RFC 9110 §5.6.2). */
static bool is_token(const char *k)
{
    if (*k == '\0')
        return false;
    for (; *k; k++) {
        unsigned char c = (unsigned char)*k;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    return true;
}

/* Stage 1: the params. Headers are all strings or all dropped (spec
 * §4.5). */
static int read_params(struct cb__proxy_req *q, const json_t *params, struct cb_error *err)
{
    const char *url = json_string_value(json_object_get(params, "url"));
    if (url == NULL)
        return cb_error_set(err, -EINVAL, "missing 'url' parameter");
    q->raw_url = url;
    const char *m = json_string_value(json_object_get(params, "method"));
    q->method = m && *m ? m : "GET";
    if (!is_token(q->method) || strlen(q->method) > PROXY_MAX_METHOD) {
        char qm[CB__PROXY_QUOTE_BUF];
        return cb_error_set(err, -EINVAL,
                            "invalid 'method' %s: it must be an HTTP method such as GET or POST",
                            cb__proxy_quote(q->method, strlen(q->method), qm));
    }
    if (refused_method(q->method))
        return cb_error_set(err, -EINVAL,
                            "blocked: method %s is not allowed through the proxy (CONNECT would "
                            "open a tunnel, TRACE would echo injected credentials)",
                            q->method);
    json_t *body = json_object_get(params, "body");
    if (json_is_string(body)) {
        q->body = json_string_value(body);
        q->body_len = json_string_length(body);
    }
    int r = cb__proxy_url_parse(url, strlen(url), &q->url, err);
    q->url_ok = true;
    if (r < 0)
        return r;
    json_t *h = json_object_get(params, "headers");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)h, k, v)
    {
        if (!json_is_string(v))
            return 0;
    }
    json_object_foreach((json_t *)h, k, v)
    {
        if (dropped_header(h, k, strlen(k)))
            continue;
        if (q->n_headers == CB__PROXY_MAX_HEADERS)
            return cb_error_set(err, -E2BIG, "blocked: more than %d request headers",
                                CB__PROXY_MAX_HEADERS);
        if (strlen(k) + json_string_length(v) > CB__PROXY_MAX_HEADER_BYTES)
            return cb_error_set(err, -E2BIG,
                                "blocked: request header '%.100s' is longer than %d bytes", k,
                                CB__PROXY_MAX_HEADER_BYTES);
        if (!is_token(k) || !is_field_value(json_string_value(v), json_string_length(v))) {
            char q_name[CB__PROXY_QUOTE_BUF];
            return cb_error_set(err, -EINVAL,
                                "blocked: request header '%s' is not a valid name, or its value "
                                "holds a line break, NUL or other control character",
                                cb__proxy_quote(k, strlen(k), q_name));
        }
        q->headers[q->n_headers++] = cb_xasprintf("%s: %s", k, json_string_value(v));
    }
    return 0;
}

static int allowlist_stage(struct cb_proxy *p, struct cb__proxy_req *q,
                           const struct cb_manifest *manifest, struct cb_error *err)
{
    int rc = cb__proxy_allowlist_check(manifest->allowlist, q->url.host.name, q->url.host.len,
                                       p->cfg->proxy.allow_wildcard_all, q->who, err);
    if (rc != -EACCES)
        return rc;
    /* Every denial says where to allow the host. */
    char denied[CB_ERROR_MSG_MAX], hq[CB__PROXY_QUOTE_BUF];
    memcpy(denied, err->msg, sizeof(denied));
    cb__proxy_quote(q->url.host.name, q->url.host.len, hq);
    if (q->container)
        return cb_error_set(err, rc, "%s; to allow it, add %s to %s", denied, hq, manifest->origin);
    return cb_error_set(err, rc,
                        "%s; to allow it, add %s to network.allowlist in %s, or run: clawbox "
                        "tools allow %s %s",
                        denied, hq, manifest->origin, manifest->name, hq);
}

/* Takes one of the tool's network.max_concurrent slots, held until the
 * request is done (q->in_flight); past the limit the request is refused
 * at once, before its host is resolved or contacted. */
static int concurrency_stage(struct cb_proxy *p, struct cb__proxy_req *q,
                             const struct cb_manifest *manifest, struct cb_error *err)
{
    uint64_t held = 0;
    if (cb__proxy_inflight_take(p->inflight, q->key, strlen(q->key), manifest->max_concurrent,
                                &held)) {
        q->in_flight = true;
        return 0;
    }
    return cb_error_set(err, -EBUSY,
                        "blocked: %s has %" PRIu64 " requests in flight through the proxy, "
                        "its limit (network.max_concurrent = %" PRIu64
                        "); retry when one has finished",
                        q->who, held, manifest->max_concurrent);
}

/* Scans one piece of what the tool sends. Returns 0 when clean. */
static int scan_one(struct cb__proxy_req *q, const char *s, size_t len, struct cb_error *err)
{
    struct cb_leak_report rep;
    struct cb_error e = {0};
    int r = cb_leak_scan(q->creds->scanner, s, len, &rep, &e);
    if (r == 0)
        return 0;
    return cb__proxy_leak_refusal(q, r > 0 && rep.n > 0 ? rep.findings[0].name : NULL, err);
}

int cb__proxy_leak_refusal(const struct cb__proxy_req *q, const char *found, struct cb_error *err)
{
    return cb_error_set(err, -EACCES,
                        "blocked: request to %s contains a credential (%s); secrets must not "
                        "appear in tool requests",
                        q->url.host.name, found ? found : "an unscannable value");
}

/* Everything the tool sends is scanned, the method too. The URL is
 * scanned as the tool wrote it and as parsed (host lower-cased, escapes
 * normalised), before anything is resolved: a secret in a host name must
 * not reach a DNS query. */
static int leak_stage(struct cb__proxy_req *q, struct cb_error *err)
{
    struct cb_leak_piece head[3 + CB__PROXY_MAX_HEADERS] = {
        {q->method, strlen(q->method)},
        {q->raw_url, strlen(q->raw_url)},
        {q->url.url, strlen(q->url.url)},
    };
    for (size_t i = 0; i < q->n_headers; i++)
        head[3 + i] = (struct cb_leak_piece){q->headers[i], strlen(q->headers[i])};
    size_t n = 3 + q->n_headers;
    int r = 0;
    /* Something is there: piece by piece, to name it. */
    if (!cb_leak_pieces_clean(q->creds->scanner, head, n))
        for (size_t i = 0; r == 0 && i < n; i++)
            r = scan_one(q, head[i].p, head[i].len, err);
    if (r == 0 && q->body != NULL)
        r = scan_one(q, q->body, q->body_len, err);
    return r;
}

/* Resolves the host (resolve.h: a lookup kept a few seconds) and keeps
 * the first address the policy allows; the request is pinned to it so a
 * second lookup cannot change the answer. */
static int resolve_stage(struct cb_proxy *p, struct cb__proxy_req *q, struct cb_error *err)
{
    if (cb__proxy_addr_from_host(&q->url.host, q->url.port, &q->addr, &q->addr_len) == 0)
        return cb__proxy_addr_check(p->policy, (struct sockaddr *)&q->addr, NULL, err);
    struct cb_proxy_addrs found;
    int g = cb__proxy_resolve(p->resolver, q->url.host.name, &found);
    if (g != 0)
        return cb_error_set(err, -EHOSTUNREACH, "blocked: cannot resolve host %s (%s)",
                            q->url.host.name, gai_strerror(g));
    int r = cb_error_set(err, -EHOSTUNREACH, "blocked: host %s has no address", q->url.host.name);
    for (size_t i = 0; i < found.n; i++) {
        struct cb_error e = {0};
        int c = cb__proxy_addr_check(p->policy, (struct sockaddr *)&found.addr[i], q->url.host.name,
                                     &e);
        if (c == 0) {
            memcpy(&q->addr, &found.addr[i], found.len[i]);
            q->addr_len = found.len[i];
            r = 0;
            break;
        }
        if (r != -EACCES) {
            *err = e;
            r = c;
        }
    }
    if (r == 0)
        cb_error_clear(err);
    return r;
}

/* `domain` is a credential's canonical domain (NULL when it can never
 * match, see secrets.h) and `host` the request's canonical host. */
static bool domain_matches(const char *domain, const char *host)
{
    if (domain == NULL)
        return false;
    if (strncmp(domain, "*.", 2) == 0) {
        const char *apex = domain + 2;
        size_t hl = strlen(host), al = strlen(apex);
        if (strcasecmp(host, apex) == 0)
            return true;
        return hl > al + 1 && host[hl - al - 1] == '.' && strcasecmp(host + hl - al, apex) == 0;
    }
    return strcasecmp(domain, host) == 0;
}

/* Drops the tool's own headers called `name`; injected lines shift down
 * with the boundary. */
static void remove_header(struct cb__proxy_req *q, const char *name)
{
    size_t nl = strlen(name), j = 0, from = q->inject_from;
    for (size_t i = 0; i < q->n_headers; i++) {
        char *h = q->headers[i];
        if (i < from && strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            free(h);
            q->inject_from--;
        } else {
            q->headers[j++] = h;
        }
    }
    q->n_headers = j;
}

static void append_name(struct cb__proxy_req *q, const char *name)
{
    size_t used = strlen(q->injected);
    snprintf(q->injected + used, sizeof(q->injected) - used, "%s%s", used ? "," : "", name);
}

/* Whether the credential may travel on this request: over https unless it
 * allows plain http (where anyone on the path reads it), and only to its
 * port when it is bound to one. A credential held back is logged, since
 * the upstream will then answer as if it had none. */
static bool transport_allows(const struct cb__proxy_req *q, const struct cb_cred_info *info)
{
    const char *why = NULL;
    if (q->url.scheme != CB_PROXY_HTTPS && !info->allow_http)
        why = "it is sent over https only (clawbox creds add --allow-http allows http)";
    else if (info->port != 0 && q->url.port != info->port)
        why = "it is bound to another port";
    if (why == NULL)
        return true;
    cb_log(CB_LOG_WARN, "credential '%s' not injected into %s://%s:%u for %s: %s", info->name,
           cb__proxy_scheme_name(q->url.scheme), q->url.host.name, (unsigned)q->url.port, q->who,
           why);
    return false;
}

/* Adds "<header>: <prefix><value>" for each granted credential whose domain
 * matches the host and whose transport rules allow this request, replacing
 * the tool's own header of that name. */
static void inject_stage(struct cb__proxy_req *q, const json_t *granted)
{
    q->inject_from = q->n_headers;
    struct cb_secret_store *store = q->creds->store;
    if (store == NULL)
        return;
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)granted, i, v)
    {
        struct cb_cred_info info;
        const char *name = json_string_value(v);
        if (name == NULL || cb_secret_store_find(store, name, &info) < 0 ||
            !domain_matches(info.match, q->url.host.name) || !transport_allows(q, &info) ||
            q->n_headers - q->inject_from >= CB__PROXY_MAX_INJECT)
            continue;
        char *value = NULL;
        size_t len = 0;
        struct cb_error e = {0};
        if (cb_secret_store_get_value(store, name, &value, &len, &e) < 0)
            continue;
        remove_header(q, info.header_name);
        q->headers[q->n_headers++] =
            cb_xasprintf("%s: %s%s", info.header_name, info.header_prefix, value);
        cb_secret_free(value, len);
        append_name(q, name);
    }
}

/* The body as the envelope carries it: text, invalid UTF-8 replaced. */
static json_t *body_value(const char *s, size_t len)
{
    size_t ln = 0;
    char *text = cb_utf8_lossy(s, len, &ln);
    json_t *v = json_stringn(text, ln);
    free(text);
    return v;
}

/* Header names come from the upstream too: one that holds a secret is
 * renamed to its redaction (its value is redacted with the others). */
static void redact_header_names(const struct cb_leak_scanner *sc, json_t *headers)
{
    json_t *renamed = json_object();
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(headers, tmp, k, v)
    {
        size_t n = 0, ln = 0;
        char *r = redact(sc, k, strlen(k), &n);
        if (r != NULL && n == strlen(k) && memcmp(r, k, n) == 0) {
            free(r);
            continue;
        }
        char *name = cb_utf8_lossy(r ? r : CB_LEAK_REDACTED, r ? n : strlen(CB_LEAK_REDACTED), &ln);
        json_object_set(renamed, name, v);
        json_object_del(headers, k);
        free(name);
        free(r);
    }
    json_object_update(headers, renamed);
    json_decref(renamed);
}

/* Whether every name and value of headers is clean, by one scan. */
static bool headers_clean(const struct cb_leak_scanner *sc, const json_t *headers)
{
    struct cb_leak_piece p[2 * CB_FORWARD_MAX_HEADERS];
    size_t n = 0;
    const char *k;
    json_t *v;
    if (json_object_size(headers) > CB_FORWARD_MAX_HEADERS)
        return false;
    json_object_foreach((json_t *)headers, k, v)
    {
        p[n++] = (struct cb_leak_piece){k, strlen(k)};
        p[n++] = (struct cb_leak_piece){json_string_value(v), json_string_length(v)};
    }
    return cb_leak_pieces_clean(sc, p, n);
}

json_t *cb__proxy_answer_headers(const struct cb_leak_scanner *sc, json_t *from)
{
    if (headers_clean(sc, from))
        return json_copy(from);
    redact_header_names(sc, from);
    json_t *headers = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v)
    {
        size_t n = 0;
        char *r = redact(sc, json_string_value(v), json_string_length(v), &n);
        json_object_set_new(
            headers, k, cb_json_text(r ? r : CB_LEAK_REDACTED, r ? n : strlen(CB_LEAK_REDACTED)));
        free(r);
    }
    return headers;
}

static json_t *ok_envelope(const struct cb_leak_scanner *sc, struct cb_forward_response *res)
{
    json_t *headers = cb__proxy_answer_headers(sc, res->headers);
    size_t n = 0;
    char *r = redact(sc, res->body.data ? res->body.data : "", res->body.len, &n);
    json_t *body = body_value(r ? r : CB_LEAK_REDACTED, r ? n : strlen(CB_LEAK_REDACTED));
    json_t *ok = json_pack("{s:i,s:o,s:o}", "status", (json_int_t)res->status, "headers", headers,
                           "body", body);
    free(r);
    return json_pack("{s:o}", "ok", ok);
}

static json_t *forward_stage(struct cb_proxy *p, struct cb__proxy_req *q)
{
    const struct cb_config *cfg = p->cfg;
    /* The trust domain: who asks, with which credentials. */
    char *pool = cb_xasprintf("%s|%s", q->who, q->injected);
    struct cb_forward_request fr = {
        .pool = pool,
        .url = q->url.url,
        .host = q->url.host.name,
        .port = q->url.port,
        .addr = (struct sockaddr *)&q->addr,
        .addr_len = q->addr_len,
        .method = q->method,
        .headers = (const char *const *)q->headers,
        .n_headers = q->n_headers,
        .body = q->body,
        .body_len = q->body_len,
        .timeout_ms = cfg->proxy.default_timeout_ms,
        .max_response_bytes = cfg->proxy.max_response_bytes,
        .ca_bundle = cfg->proxy.ca_bundle,
    };
    if (q->sink != NULL) {
        json_t *env = cb__proxy_stream_stage(p, q, &fr);
        free(pool);
        return env;
    }
    struct cb_forward_response res = {0};
    struct cb_error err = {0};
    int rc = cb__forward(p->fwd, &fr, &res, &err);
    free(pool);
    if (rc < 0) {
        cb__forward_response_free(&res);
        cb__proxy_audit(p, q, "error", err.msg, 0, 0);
        return cb__proxy_error_envelope(err.msg);
    }
    /* A body the scanner cannot read must not reach the tool. */
    if (cb__decode_response(&res, q->url.host.name, cfg->proxy.max_response_bytes, &err) < 0) {
        cb__proxy_audit(p, q, "blocked", err.msg, (int)res.status, res.body.len);
        cb__forward_response_free(&res);
        return cb__proxy_error_envelope(err.msg);
    }
    json_t *env = ok_envelope(q->creds->scanner, &res);
    cb__proxy_audit(p, q, "allowed", NULL, (int)res.status, res.body.len);
    cb__forward_response_free(&res);
    return env;
}

/* Runs q (its caller fields set) through the stages. */
static json_t *run_pipeline(struct cb_proxy *p, struct cb__proxy_req *q,
                            const struct cb_manifest *manifest, const json_t *granted,
                            const json_t *params)
{
    struct cb_error err = {0};
    json_t *env = NULL;
    if (q->body_src != NULL && cb__proxy_preread_body(q) < 0) {
        cb__proxy_upload_free(q);
        return cb__proxy_error_envelope("the request body could not be read");
    }
    q->start_ns = cb_now_mono_ns();
    q->creds = creds_get(p);
    q->inject_from = SIZE_MAX;
    snprintf(q->who, sizeof(q->who), "%s %s", q->container ? "container" : "tool", q->tool);
    /* A tool's key stays its name; a container's cannot meet a tool's. */
    q->key = q->container ? q->who : q->tool;
    if (read_params(q, params, &err) < 0) {
        env = q->url_ok ? deny(p, q, "blocked", err.msg) : cb__proxy_error_envelope(err.msg);
    } else if (cb__proxy_ratelimit_take(p->rl, q->key, strlen(q->key), q->who, NULL, &err) < 0 ||
               allowlist_stage(p, q, manifest, &err) < 0 ||
               concurrency_stage(p, q, manifest, &err) < 0) {
        env = deny(p, q, "blocked", err.msg);
    } else if (leak_stage(q, &err) < 0) {
        env = deny(p, q, "leak_blocked", err.msg);
    } else if (resolve_stage(p, q, &err) < 0) {
        env = deny(p, q, "blocked", err.msg);
    } else {
        /* A streamed answer comes decoded by libcurl, which says what it
         * accepts. */
        if (q->sink != NULL)
            remove_header(q, "accept-encoding");
        inject_stage(q, granted);
        env = forward_stage(p, q);
    }
    if (q->in_flight)
        cb__proxy_inflight_put(p->inflight, q->key, strlen(q->key));
    cb__proxy_upload_free(q);
    req_free(q);
    creds_put(q->creds);
    return env;
}

json_t *cb_proxy_http_request(struct cb_proxy *p, const struct cb_manifest *manifest,
                              const json_t *granted, const json_t *params, const char *request_id)
{
    struct cb__proxy_req q = {.tool = manifest->name, .request_id = request_id};
    return run_pipeline(p, &q, manifest, granted, params);
}

json_t *cb_proxy_container_request(struct cb_proxy *p, const struct cb_manifest *manifest,
                                   const json_t *granted, const json_t *params,
                                   const char *request_id)
{
    struct cb__proxy_req q = {.tool = manifest->name, .request_id = request_id, .container = true};
    return run_pipeline(p, &q, manifest, granted, params);
}

json_t *cb_proxy_container_stream(struct cb_proxy *p, const struct cb_manifest *manifest,
                                  const json_t *granted, const json_t *params,
                                  const char *request_id, const struct cb_proxy_sink *sink,
                                  const struct cb_proxy_body *body)
{
    struct cb__proxy_req q = {.tool = manifest->name,
                              .request_id = request_id,
                              .container = true,
                              .sink = sink,
                              .body_src = body};
    return run_pipeline(p, &q, manifest, granted, params);
}

/* ------------------- a container's transparent egress ------------------- */

bool cb_proxy_container_allows(struct cb_proxy *p, const struct cb_manifest *manifest,
                               const char *host, size_t len)
{
    return cb__proxy_allowlist_check(manifest->allowlist, host, len,
                                     p->cfg->proxy.allow_wildcard_all, NULL, NULL) == 0;
}

void cb_proxy_container_audit(struct cb_proxy *p, const struct cb_manifest *manifest,
                              const char *request_id, const char *method, const char *url,
                              const char *decision, const char *reason)
{
    if (p->audit == NULL)
        return;
    struct cb__proxy_creds *c = creds_get(p);
    const char *in[2] = {url, reason};
    char *out[2];
    audit_texts(c->scanner, in, out, 2);
    creds_put(c);
    struct cb_audit_record rec = {
        .kind = CB_AUDIT_PROXY,
        .request_id = request_id,
        .tool = manifest->name,
        .method = method,
        .url = out[0],
        .decision = decision,
        .reason = out[1],
        .blocked = strcmp(decision, "allowed") != 0,
    };
    append_line(p, &rec);
    free_texts(out, 2);
}

/* A nonblocking connect to q's pinned address, finished within the
 * proxy's timeout. Returns the connected fd or a negative errno. */
static int tunnel_connect(struct cb_proxy *p, struct cb__proxy_req *q, struct cb_error *err)
{
    struct sockaddr *sa = (struct sockaddr *)&q->addr;
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons(q->url.port);
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(q->url.port);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cb_error_set(err, -errno, "socket: %s", strerror(errno));
    int r = connect(fd, sa, q->addr_len) == 0 || errno == EINPROGRESS ? 0 : -errno;
    if (r == 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        uint64_t ms = p->cfg->proxy.default_timeout_ms;
        int n;
        while ((n = poll(&pfd, 1, ms > INT32_MAX ? INT32_MAX : (int)ms)) < 0 && errno == EINTR)
            ;
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (n == 0)
            r = -ETIMEDOUT;
        else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            r = -errno;
        else
            r = -soerr;
    }
    if (r < 0) {
        close(fd);
        return cb_error_set(err, r, "cannot connect to %s port %u: %s", q->url.host.name,
                            (unsigned)q->url.port, strerror(-r));
    }
    return fd;
}

int cb_proxy_container_tunnel(struct cb_proxy *p, const struct cb_manifest *manifest,
                              const char *host, size_t len, uint16_t port, const char *request_id,
                              const char *note, struct cb_error *err)
{
    struct cb__proxy_req q = {.tool = manifest->name, .request_id = request_id, .container = true};
    q.start_ns = cb_now_mono_ns();
    q.creds = creds_get(p);
    q.inject_from = SIZE_MAX;
    q.method = "CONNECT";
    snprintf(q.who, sizeof(q.who), "container %s", q.tool);
    q.key = q.who;
    _cleanup_free_ char *url = cb_xasprintf("https://%.*s:%u/", (int)len, host, (unsigned)port);
    q.raw_url = url;
    int fd = cb__proxy_url_parse(url, strlen(url), &q.url, err);
    q.url_ok = true;
    if (fd == 0 &&
        (fd = cb__proxy_ratelimit_take(p->rl, q.key, strlen(q.key), q.who, NULL, err)) == 0)
        fd = allowlist_stage(p, &q, manifest, err);
    if (fd == 0)
        fd = resolve_stage(p, &q, err);
    if (fd == 0)
        fd = tunnel_connect(p, &q, err);
    cb__proxy_audit(p, &q,
                    fd >= 0         ? "allowed"
                    : fd == -EACCES ? "blocked"
                                    : "error",
                    fd >= 0 ? note : err->msg, 0, 0);
    req_free(&q);
    creds_put(q.creds);
    return fd;
}
