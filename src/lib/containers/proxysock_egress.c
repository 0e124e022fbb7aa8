/* Transparent egress of a container's network namespace: its
 * DNS stub, served on the accept service's thread, and the connections
 * its TCP listeners accept, each on a connection thread: the original
 * destination, the protocol its first bytes show (peeked, never
 * consumed), then plain HTTP through the same request code as the proxy
 * socket (proxysock_conn.c), or TLS to the name its SNI gives: passed
 * through, or with the container's CA terminated and served by that same
 * request code. Anything else is closed and audited. */
#include "containers/proxysock_internal.h"
#include "core/util.h"
#include "egress/dns.h"
#include "egress/splice.h"
#include "egress/tls_intercept.h"
#include "proxy/pipeline.h"
#include "sandbox/manifest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The first bytes must show what the connection is within this. */
#define CLASSIFY_TIMEOUT_MS 10000
/* Between two peeks at a prefix that is not yet whole: a peek cannot wait
 * for more bytes than there are. */
#define PEEK_RETRY_MS 5
/* A passthrough ends after this long without a byte either way. */
#define SPLICE_IDLE_MS 120000
#define PASSTHROUGH_NOTE                                                                           \
    "TLS passthrough: the connection is not inspected; no credential injected, nothing redacted"

/* ------------------------------ DNS stub ------------------------------ */

static bool dns_allow(void *ud, const char *name)
{
    struct cb_ct_proxy *p = ud;
    return cb_proxy_container_allows(p->proxy, p->manifest, name, strlen(name));
}

static void dns_audit(void *ud, const char *name, uint16_t qtype, bool allowed, uint8_t rcode)
{
    struct cb_ct_proxy *p = ud;
    if (allowed)
        return;
    uint64_t now = cb_now_mono_ns();
    if (now - p->dns_window_ns >= 1000000000ull) {
        p->dns_window_ns = now;
        p->dns_audited = 0;
    }
    /* The window may turn within one batch, whose lines are flushed after
     * it: the array bounds them as well as the rate. */
    if (p->dns_audited >= CB__CT_DNS_AUDIT_PER_SECOND ||
        p->dns_npending >= CB_ARRAY_LEN(p->dns_pending)) {
        p->dns_unaudited++;
        return;
    }
    p->dns_audited++;
    struct cb__ct_dns_denial *dd = &p->dns_pending[p->dns_npending++];
    snprintf(dd->url, sizeof(dd->url), "dns:%s", name[0] ? name : "(unreadable)");
    int n = snprintf(dd->why, sizeof(dd->why),
                     "blocked: name not in the container's allowlist (type %u, rcode %u)",
                     (unsigned)qtype, (unsigned)rcode);
    if (p->dns_unaudited > 0 && n > 0 && (size_t)n < sizeof(dd->why))
        snprintf(dd->why + n, sizeof(dd->why) - (size_t)n,
                 "; %llu more refused before, not audited", (unsigned long long)p->dns_unaudited);
    p->dns_unaudited = 0;
}

void cb__ct_dns_serve(struct cb__ct_lsn *l)
{
    struct cb_ct_proxy *p = l->p;
    struct cb_egress_dns_hooks hooks = {.allow = dns_allow, .audit = dns_audit, .ud = p};
    (void)cb_egress_dns_serve(l->fd, &hooks, p->pool);
}

void cb__ct_dns_flush(struct cb_ct_proxy *p)
{
    for (unsigned i = 0; i < p->dns_npending; i++)
        cb_proxy_container_audit(p->proxy, p->manifest, NULL, "DNS", p->dns_pending[i].url,
                                 "blocked", p->dns_pending[i].why);
    p->dns_npending = 0;
}

/* --------------------------- the destination -------------------------- */

/* The original destination of c, and the name behind it when it is a
 * pool address. Returns 0 or a negative errno. */
static int destination(struct cb__ct_conn *c, struct cb__ct_dest *d)
{
    struct cb_error err = {0};
    *d = (struct cb__ct_dest){0};
    int r = cb_egress_original_dst(c->fd, &d->addr, &d->len, &err);
    if (r < 0)
        return r;
    struct sockaddr_storage self;
    socklen_t self_len = sizeof(self);
    if (getsockname(c->fd, (struct sockaddr *)&self, &self_len) < 0)
        return -errno;
    const void *ip;
    if (d->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&d->addr;
        d->port = ntohs(a->sin_port);
        ip = &a->sin_addr;
        const struct sockaddr_in *s = (const struct sockaddr_in *)&self;
        d->explicit_proxy = a->sin_port == s->sin_port && a->sin_addr.s_addr == s->sin_addr.s_addr;
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&d->addr;
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&self;
        d->port = ntohs(a->sin6_port);
        ip = &a->sin6_addr;
        d->explicit_proxy =
            a->sin6_port == s->sin6_port && memcmp(&a->sin6_addr, &s->sin6_addr, 16) == 0;
    }
    int n = cb_egress_pool_name(c->p->pool, (struct sockaddr *)&d->addr, d->name, sizeof(d->name));
    d->from_pool = n > 0;
    if (!d->from_pool)
        inet_ntop(d->addr.ss_family, ip, d->name, sizeof(d->name));
    return 0;
}

void cb__ct_egress_refuse(struct cb__ct_conn *c, const struct cb__ct_dest *d, const char *reason)
{
    char url[CB_EGRESS_NAME_MAX + 32];
    snprintf(url, sizeof(url), "tcp://%s%s%s:%u", d->from_pool ? "" : "[", d->name,
             d->from_pool ? "" : "]", (unsigned)d->port);
    cb_proxy_container_audit(c->p->proxy, c->p->manifest, NULL, "CONNECT", url, "blocked", reason);
}

/* Refuses a TLS client: the audit line, then a fatal access_denied alert
 * (a plaintext record, as before any handshake), so that the client says
 * it was refused rather than that the peer vanished. */
static void refuse_tls(struct cb__ct_conn *c, const struct cb__ct_dest *d, const char *reason)
{
    static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49};
    if (reason != NULL)
        cb__ct_egress_refuse(c, d, reason);
    (void)!send(c->fd, alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ------------------------------ classify ------------------------------ */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Peeks at c's first bytes until they show a protocol, into buf[0..cap).
 * Returns the protocol (with *n the bytes seen), or CB_EGRESS_NEED_MORE
 * when the client ended, failed or was too slow. */
static enum cb_egress_proto classify(int fd, uint8_t *buf, size_t cap, size_t *n)
{
    uint64_t deadline = cb_now_mono_ns() + CLASSIFY_TIMEOUT_MS * 1000000ull;
    size_t seen = 0;
    for (;;) {
        uint64_t now = cb_now_mono_ns();
        if (now >= deadline)
            return CB_EGRESS_NEED_MORE;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int w = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
        if (w < 0 && errno != EINTR)
            return CB_EGRESS_NEED_MORE;
        if (w <= 0)
            continue;
        ssize_t r = recv(fd, buf, cap, MSG_PEEK);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            return CB_EGRESS_NEED_MORE;
        if (r < 0)
            continue;
        *n = (size_t)r;
        enum cb_egress_proto k = cb_egress_classify(buf, *n);
        if (k == CB_EGRESS_TLS) {
            char name[CB_EGRESS_NAME_MAX + 1];
            if (cb_egress_tls_sni(buf, *n, name) == -EAGAIN)
                k = CB_EGRESS_NEED_MORE;
        }
        if (k != CB_EGRESS_NEED_MORE || *n == cap)
            return k == CB_EGRESS_NEED_MORE ? CB_EGRESS_OTHER : k;
        if (*n == seen)
            sleep_ms(PEEK_RETRY_MS);
        seen = *n;
    }
}

/* ---------------------------- passthrough ---------------------------- */

/* Relays c and upstream until both ends are done, idle too long, or the
 * socket is stopped. */
static void splice_loop(struct cb__ct_conn *c, int upstream)
{
    struct cb_egress_splice *s = NULL;
    struct cb_error err = {0};
    if (cb_egress_splice_new(c->fd, upstream, SPLICE_IDLE_MS, &s, &err) < 0)
        return;
    short ev[2];
    while (cb_egress_splice_step(s, ev, &err) == 1) {
        struct pollfd pfd[2] = {{.fd = ev[0] ? c->fd : -1, .events = ev[0]},
                                {.fd = ev[1] ? upstream : -1, .events = ev[1]}};
        uint64_t now = cb_now_mono_ns(), until = cb_egress_splice_deadline_ns(s);
        int ms = until > now ? (int)((until - now) / 1000000u) + 1 : 0;
        if (poll(pfd, 2, ms) < 0 && errno != EINTR)
            break;
        if (cb__ct_proxy_stopped(c->p))
            break;
    }
    cb_egress_splice_free(s);
}

/* Passes TLS through to `name` (the SNI, or the pool's name); the
 * tunnel's refusal is audited by the proxy. */
static void passthrough(struct cb__ct_conn *c, const struct cb__ct_dest *d, const char *name,
                        uint16_t port)
{
    struct cb_ct_proxy *p = c->p;
    if (!cb__ct_proxy_note_request(p))
        return;
    char request_id[37];
    cb_uuid_v4(request_id);
    struct cb_error err = {0};
    int up = cb_proxy_container_tunnel(p->proxy, p->manifest, name, strlen(name), port, request_id,
                                       PASSTHROUGH_NOTE, &err);
    if (up < 0) {
        refuse_tls(c, d, NULL);
        return;
    }
    splice_loop(c, up);
    close(up);
}

/* Terminates TLS for `name` (which the policy admits) with the
 * container's CA and serves the requests inside as https to d, whose name
 * is `name`. */
static void intercept(struct cb__ct_conn *c, const struct cb__ct_dest *d, const char *name)
{
    struct cb_ct_proxy *p = c->p;
    char why[CB_ERROR_MSG_MAX + 32];
    if (!cb_proxy_container_allows(p->proxy, p->manifest, name, strlen(name))) {
        snprintf(why, sizeof(why), "blocked: host %s is not in the container's allowlist", name);
        refuse_tls(c, d, why);
        return;
    }
    SSL *ssl = NULL;
    struct cb_error err = {0};
    int r = cb_egress_tls_accept_begin(p->tls_ctx, c->fd, name, strlen(name), &ssl, &err);
    if (r == 0)
        r = cb_egress_tls_finish(ssl, CLASSIFY_TIMEOUT_MS, &err);
    if (r < 0) {
        /* Most often a client that does not trust the container's CA. */
        snprintf(why, sizeof(why), "TLS interception: %s", err.msg);
        cb__ct_egress_refuse(c, d, why);
    } else {
        cb__ct_conn_serve(c, d, ssl);
        SSL_shutdown(ssl); /* a close_notify if the socket takes it now */
    }
    SSL_free(ssl);
}

/* A TLS connection: the SNI must be there and, for a pool address, be
 * the name the stub gave it; for any other address it must be that
 * address itself (which has no SNI: refused). */
static void serve_tls(struct cb__ct_conn *c, const struct cb__ct_dest *d, const uint8_t *buf,
                      size_t n)
{
    char sni[CB_EGRESS_NAME_MAX + 1];
    int r = cb_egress_tls_sni(buf, n, sni);
    char why[CB_EGRESS_NAME_MAX * 2 + 128];
    if (r < 0)
        snprintf(why, sizeof(why), "blocked: not a well-formed TLS ClientHello");
    else if (!d->from_pool)
        snprintf(why, sizeof(why),
                 "blocked: TLS to %s, an address the container's DNS did not give; connect by a "
                 "host name the container's allowlist admits",
                 d->name);
    else if (r == 0)
        snprintf(why, sizeof(why), "blocked: TLS to %s without a server name (SNI)", d->name);
    else if (strcasecmp(sni, d->name) != 0)
        snprintf(why, sizeof(why),
                 "blocked: TLS server name %s does not match %s, the name the container's DNS "
                 "gave this address for",
                 sni, d->name);
    else
        why[0] = '\0';
    if (why[0] != '\0') {
        refuse_tls(c, d, why);
        return;
    }
    if (c->p->tls_ctx != NULL)
        intercept(c, d, sni);
    else
        passthrough(c, d, sni, d->port);
}

void cb__ct_egress_tunnel(struct cb__ct_conn *c, const struct cb__ct_dest *d, const char *host,
                          uint16_t port)
{
    uint8_t *buf = cb_xmalloc(CB_EGRESS_PEEK_MAX);
    size_t n = 0;
    char sni[CB_EGRESS_NAME_MAX + 1], why[CB_EGRESS_NAME_MAX * 2 + 128];
    struct in6_addr ip;
    bool literal = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
    enum cb_egress_proto k = classify(c->fd, buf, CB_EGRESS_PEEK_MAX, &n);
    int r = k == CB_EGRESS_TLS ? cb_egress_tls_sni(buf, n, sni) : -EINVAL;
    free(buf);
    if (k == CB_EGRESS_NEED_MORE && n == 0)
        return;
    if (r < 0)
        snprintf(why, sizeof(why), "blocked: a CONNECT tunnel to %s carries TLS only", host);
    else if (r == 0 ? !literal : strcasecmp(sni, host) != 0)
        snprintf(why, sizeof(why),
                 "blocked: the TLS server name %s does not match the CONNECT target %s",
                 r == 0 ? "(none)" : sni, host);
    else
        why[0] = '\0';
    if (why[0] != '\0') {
        refuse_tls(c, d, why);
    } else if (c->p->tls_ctx != NULL) {
        /* The tunnel's requests go to host:port, as if sent there. */
        struct cb__ct_dest t = {.port = port, .from_pool = !literal};
        snprintf(t.name, sizeof(t.name), "%s", host);
        intercept(c, &t, host);
    } else {
        passthrough(c, d, host, port);
    }
}

void cb__ct_egress_serve(struct cb__ct_conn *c)
{
    struct cb__ct_dest d;
    if (destination(c, &d) < 0)
        return;
    uint8_t *buf = cb_xmalloc(CB_EGRESS_PEEK_MAX);
    size_t n = 0;
    enum cb_egress_proto k = classify(c->fd, buf, CB_EGRESS_PEEK_MAX, &n);
    if (k == CB_EGRESS_HTTP)
        cb__ct_conn_serve(c, &d, NULL);
    else if (k == CB_EGRESS_TLS && !d.explicit_proxy)
        serve_tls(c, &d, buf, n);
    else if (k == CB_EGRESS_TLS)
        refuse_tls(c, &d, "blocked: TLS sent to the proxy itself; ask for a tunnel with CONNECT");
    else if (k != CB_EGRESS_NEED_MORE || n > 0)
        cb__ct_egress_refuse(c, &d, "blocked: the connection is neither HTTP nor TLS");
    free(buf);
}
