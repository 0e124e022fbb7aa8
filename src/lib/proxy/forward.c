#include "proxy/forward.h"
#include "core/json.h"
#include "core/utf8.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* How long a transfer waits for its upstream in a sched_yield loop before
 * sleeping in poll, when it is the only transfer in flight and the last
 * one took no longer than this. A nearby upstream then answers a thread
 * that is still running: on a virtual machine, waking a thread whose vCPU
 * went idle costs more than that (on the 2-core test VM, a proxied GET
 * of a loopback nginx took 5-25% less at the median in same-run
 * comparisons). Under load, or with a distant upstream, it does not poll. */
#define UPSTREAM_SPIN_NS (400u * 1000u)

/* Pools kept while unused beyond this many are closed, oldest first. */
#define MAX_IDLE_POOLS 64

struct pool;

/* An easy handle with its own multi handle, kept for the next transfer of
 * its pool: new ones cost allocations and a wake-up socket pair each
 * time. */
struct handle {
    CURL *easy;
    CURLM *multi;
    struct pool *pool;
    struct handle *next;
};

/* One trust domain's connections and TLS sessions (a curl share) and its
 * idle handles. */
struct pool {
    char *key;
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    struct handle *idle;
    unsigned users; /* transfers in flight */
    uint64_t last_used_ns;
    struct pool *next;
};

struct cb_forwarder {
    pthread_mutex_t lock; /* guards the pool list, users and idle lists */
    struct pool *pools;
    atomic_uint in_flight;
    atomic_bool last_fast; /* the last transfer took at most UPSTREAM_SPIN_NS */
};

struct transfer {
    const struct cb_forward_request *req;
    struct cb_forward_response *res;
    bool too_large;
    bool wrong_address;
    int data_err;      /* on_data's refusal */
    int read_err;      /* read_body's */
    uint64_t streamed; /* bytes given to on_data */
};

static void lock_cb(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    struct pool *p = ud;
    pthread_mutex_lock(&p->locks[data]);
}

static void unlock_cb(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    struct pool *p = ud;
    pthread_mutex_unlock(&p->locks[data]);
}

static struct pool *pool_new(const char *key)
{
    struct pool *p = cb_xcalloc(1, sizeof(*p));
    p->key = cb_xstrdup(key);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&p->locks[i], NULL);
    p->share = curl_share_init();
    curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, lock_cb);
    curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, unlock_cb);
    curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return p;
}

static void handle_free(struct handle *h)
{
    curl_multi_cleanup(h->multi);
    curl_easy_cleanup(h->easy);
    free(h);
}

/* Frees a pool nobody uses: its handles first, which detaches them from
 * the share and closes its connections. */
static void pool_free(struct pool *p)
{
    while (p->idle) {
        struct handle *h = p->idle;
        p->idle = h->next;
        handle_free(h);
    }
    curl_share_cleanup(p->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&p->locks[i]);
    free(p->key);
    free(p);
}

struct cb_forwarder *cb_forwarder_new(void)
{
    struct cb_forwarder *f = cb_xcalloc(1, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->in_flight, 0);
    atomic_init(&f->last_fast, true);
    return f;
}

void cb__forwarder_free(struct cb_forwarder *f)
{
    if (f == NULL)
        return;
    while (f->pools) {
        struct pool *p = f->pools;
        f->pools = p->next;
        pool_free(p);
    }
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static size_t on_upload_read(char *buf, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    size_t got = 0;
    t->read_err = t->req->read_body(t->req->body_ud, buf, size * n, &got);
    return t->read_err < 0 ? CURL_READFUNC_ABORT : got;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    const struct cb_forward_request *req = t->req;
    if (req->on_data != NULL) {
        t->streamed += size * n;
        if (t->streamed > req->max_response_bytes) {
            t->too_large = true;
            return 0;
        }
        t->data_err = req->on_data(req->data_ud, p, size * n);
        return t->data_err < 0 ? 0 : size * n;
    }
    if (cb_buf_append(&t->res->body, p, size * n) < 0) {
        t->too_large = true;
        return 0; /* aborts the transfer at once */
    }
    return size * n;
}

/* Collects response headers with lower-case names; the status line and
 * the blank line are skipped, and a new response (after 100 Continue)
 * starts over. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* "HTTP/x[.y] NNN ...": libcurl has checked it. */
        const char *sp = memchr(p, ' ', len);
        long code = 0;
        for (int i = 1; sp != NULL && i <= 3 && sp + i < p + len && sp[i] >= '0' && sp[i] <= '9';
             i++)
            code = code * 10 + (sp[i] - '0');
        t->res->status = code;
        json_object_clear(t->res->headers);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (colon == NULL || colon == p || len > CB_FORWARD_MAX_HEADER_BYTES ||
        json_object_size(t->res->headers) >= CB_FORWARD_MAX_HEADERS)
        return len;
    char *name = cb_xstrndup(p, (size_t)(colon - p));
    for (char *c = name; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    const char *v = colon + 1;
    size_t vlen = len - (size_t)(v - p);
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    json_t *old = json_object_get(t->res->headers, name);
    char *joined =
        old ? cb_xasprintf("%s, %.*s", json_string_value(old), (int)vlen, v) : cb_xstrndup(v, vlen);
    cb_utf8_scrub(name, strlen(name));
    json_object_set_new(t->res->headers, name, cb_json_text(joined, strlen(joined)));
    free(joined);
    free(name);
    return len;
}

static bool same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* The last line of the pin: whatever curl resolved or reused, a new
 * socket may only connect to the checked address. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct transfer *t = ud;
    if (purpose != CURLSOCKTYPE_IPCXN || !same_address(&a->addr, t->req->addr)) {
        t->wrong_address = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static struct curl_slist *pin_entry(const struct cb_forward_request *req)
{
    char ip[INET6_ADDRSTRLEN] = "";
    const void *raw = req->addr->sa_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)req->addr)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)req->addr)->sin6_addr;
    inet_ntop(req->addr->sa_family, raw, ip, sizeof(ip));
    char *line = cb_xasprintf(req->addr->sa_family == AF_INET6 ? "%s:%u:[%s]" : "%s:%u:%s",
                              req->host, req->port, ip);
    struct curl_slist *l = curl_slist_append(NULL, line);
    free(line);
    return l;
}

static struct curl_slist *header_list(const struct cb_forward_request *req)
{
    /* No 100-continue round trip, and no Accept the tool did not ask for. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; i < req->n_headers; i++)
        l = curl_slist_append(l, req->headers[i]);
    return l;
}

static void set_options(CURL *h, CURLSH *share, struct transfer *t, struct curl_slist *pin,
                        struct curl_slist *hdrs)
{
    const struct cb_forward_request *req = t->req;
    curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_RESOLVE, pin);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, req->on_data != NULL ? "" : NULL);
    if (req->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_bundle);
    if (strcasecmp(req->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (req->read_body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload_read);
        curl_easy_setopt(h, CURLOPT_READDATA, t);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->read_len);
    }
}

static int failure(const struct transfer *t, CURLcode rc, struct cb_error *err)
{
    const struct cb_forward_request *req = t->req;
    if (t->data_err < 0)
        return cb_error_set(err, t->data_err, "the response from %s could not be relayed",
                            req->host);
    if (t->read_err < 0)
        return cb_error_set(err, t->read_err, "the request body for %s could not be sent",
                            req->host);
    if (t->too_large)
        return cb_error_set(err, -EFBIG, "response from %s exceeds the limit of %zu bytes",
                            req->host, req->max_response_bytes);
    if (t->wrong_address)
        return cb_error_set(
            err, -EACCES, "blocked: connection to %s would not use the checked address", req->host);
    if (rc == CURLE_BAD_CONTENT_ENCODING)
        return cb_error_set(err, -ENOTSUP,
                            "blocked: the response from %s is in a content or transfer coding "
                            "the proxy cannot decode (or a corrupt one), so it cannot scan it "
                            "for credentials",
                            req->host);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return cb_error_set(err, -ETIMEDOUT, "request to %s timed out after %llu ms", req->host,
                            (unsigned long long)req->timeout_ms);
    return cb_error_set(err, -EIO, "request to %s failed: %s", req->host, curl_easy_strerror(rc));
}

/* The pool of `key`, made when there is none; the caller holds f->lock. */
static struct pool *pool_get(struct cb_forwarder *f, const char *key)
{
    for (struct pool *p = f->pools; p != NULL; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p;
    struct pool *p = pool_new(key);
    p->next = f->pools;
    f->pools = p;
    return p;
}

/* Closes the least recently used pools nobody uses while more than
 * MAX_IDLE_POOLS are unused; the caller holds f->lock. */
static void pools_trim(struct cb_forwarder *f)
{
    for (;;) {
        size_t unused = 0;
        struct pool **oldest = NULL;
        for (struct pool **pp = &f->pools; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->users > 0)
                continue;
            unused++;
            if (oldest == NULL || (*pp)->last_used_ns < (*oldest)->last_used_ns)
                oldest = pp;
        }
        if (unused <= MAX_IDLE_POOLS)
            return;
        struct pool *p = *oldest;
        *oldest = p->next;
        pool_free(p);
    }
}

/* An idle handle of the request's pool reset to defaults, or a new one;
 * NULL when out of memory. */
static struct handle *handle_take(struct cb_forwarder *f, const char *key)
{
    pthread_mutex_lock(&f->lock);
    struct pool *p = pool_get(f, key);
    p->users++;
    struct handle *h = p->idle;
    if (h)
        p->idle = h->next;
    pthread_mutex_unlock(&f->lock);
    if (h) {
        curl_easy_reset(h->easy);
        return h;
    }
    h = cb_xcalloc(1, sizeof(*h));
    h->pool = p;
    h->easy = curl_easy_init();
    h->multi = curl_multi_init();
    if (h->easy == NULL || h->multi == NULL) {
        handle_free(h);
        pthread_mutex_lock(&f->lock);
        p->users--;
        pthread_mutex_unlock(&f->lock);
        return NULL;
    }
    return h;
}

static void handle_put(struct cb_forwarder *f, struct handle *h)
{
    struct pool *p = h->pool;
    pthread_mutex_lock(&f->lock);
    h->next = p->idle;
    p->idle = h;
    p->users--;
    p->last_used_ns = cb_now_mono_ns();
    pools_trim(f);
    pthread_mutex_unlock(&f->lock);
}

static CURLcode multi_failure(CURLMcode mc)
{
    return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
}

struct progress {
    CURLM *multi;
    CURLMcode mc;
    int running;
};

/* Drives the transfer; true once it ended or failed. */
static bool multi_step(void *ud)
{
    struct progress *p = ud;
    p->mc = curl_multi_perform(p->multi, &p->running);
    return p->mc != CURLM_OK || p->running == 0;
}

/* Runs h's transfer to the end, like curl_easy_perform, but waits in a
 * yield loop first when UPSTREAM_SPIN_NS says so. */
static CURLcode perform(struct cb_forwarder *f, struct handle *h)
{
    struct progress p = {h->multi, curl_multi_add_handle(h->multi, h->easy), 1};
    if (p.mc != CURLM_OK)
        return multi_failure(p.mc);
    bool alone = atomic_fetch_add(&f->in_flight, 1) == 0;
    uint64_t start = cb_now_mono_ns();
    bool done =
        cb_yield_until(multi_step, &p, alone && atomic_load(&f->last_fast) ? UPSTREAM_SPIN_NS : 0);
    while (!done && (p.mc = curl_multi_poll(h->multi, NULL, 0, 1000, NULL)) == CURLM_OK)
        done = multi_step(&p);
    atomic_store(&f->last_fast, cb_now_mono_ns() - start <= UPSTREAM_SPIN_NS);
    atomic_fetch_sub(&f->in_flight, 1);
    CURLcode rc = p.mc == CURLM_OK ? CURLE_OK : multi_failure(p.mc);
    int left;
    for (CURLMsg *m; (m = curl_multi_info_read(h->multi, &left)) != NULL;)
        if (m->msg == CURLMSG_DONE)
            rc = m->data.result;
    curl_multi_remove_handle(h->multi, h->easy);
    return rc;
}

int cb__forward(struct cb_forwarder *f, const struct cb_forward_request *req,
                struct cb_forward_response *res, struct cb_error *err)
{
    struct transfer t = {.req = req, .res = res};
    memset(res, 0, sizeof(*res));
    cb_buf_init(&res->body, req->max_response_bytes);
    res->headers = json_object();
    struct handle *h = handle_take(f, req->pool ? req->pool : "");
    if (h == NULL)
        return cb_error_set(err, -ENOMEM, "out of memory for a transfer handle");
    struct curl_slist *pin = pin_entry(req);
    struct curl_slist *hdrs = header_list(req);
    set_options(h->easy, h->pool->share, &t, pin, hdrs);
    CURLcode rc = perform(f, h);
    int r = 0;
    if (rc != CURLE_OK || t.too_large || t.wrong_address || t.data_err < 0 || t.read_err < 0)
        r = failure(&t, rc, err);
    else
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &res->status);
    /* The lists go now; the handle must not point to them while idle. */
    curl_easy_setopt(h->easy, CURLOPT_RESOLVE, NULL);
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(pin);
    handle_put(f, h);
    return r;
}

void cb__forward_response_free(struct cb_forward_response *res)
{
    if (res == NULL)
        return;
    json_decref(res->headers);
    res->headers = NULL;
    cb_buf_free(&res->body);
}
