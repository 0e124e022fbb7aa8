/* Real TLS handshakes over socketpairs: the interception server side
 * against an OpenSSL client trusting only the container's CA, and the
 * upstream client side against a TLS server on a thread. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "egress/sniff.h"
#include "egress/tls_ca.h"
#include "egress/tls_intercept.h"

#define TIMEOUT_MS 5000

static struct cb_egress_ca *new_ca(const char *id)
{
    struct cb_egress_ca *ca;
    struct cb_egress_ca_opts o = {.container_id = id};
    assert_int_equal(cb_egress_ca_new(&o, &ca, NULL), 0);
    return ca;
}

static SSL_CTX *server_ctx(struct cb_egress_ca *ca)
{
    SSL_CTX *ctx;
    assert_int_equal(cb_egress_tls_server_ctx(ca, &ctx, NULL), 0);
    return ctx;
}

/* sv[0] for the client (blocking), sv[1] for clawbox (nonblocking). */
static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

/* ----------------------- a client in the container -------------------- */

struct client {
    int fd;
    const char *sni;       /* NULL: none sent */
    const char *host, *ip; /* what the certificate is checked against */
    const struct cb_egress_ca *trust;
    /* results */
    bool connected;
    long verify;
    unsigned long err;
    char alpn[16];
    char reply[16];
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    size_t n;
    const char *pem = cb_egress_ca_pem(c->trust, &n);
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *anchor = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), anchor);
    X509_free(anchor);
    BIO_free(b);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2\x08http/1.1", 12);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c->fd);
    if (c->sni)
        SSL_set_tlsext_host_name(ssl, c->sni);
    if (c->host)
        SSL_set1_host(ssl, c->host);
    if (c->ip)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->ip);
    if (SSL_connect(ssl) == 1) {
        c->connected = true;
        const unsigned char *p;
        unsigned plen;
        SSL_get0_alpn_selected(ssl, &p, &plen);
        if (plen < sizeof(c->alpn))
            memcpy(c->alpn, p, plen);
        const char req[] = "GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
        SSL_write(ssl, req, sizeof(req) - 1);
        int r = SSL_read(ssl, c->reply, sizeof(c->reply) - 1);
        if (r > 0)
            c->reply[r] = '\0';
    } else {
        c->err = ERR_peek_error();
    }
    c->verify = SSL_get_verify_result(ssl);
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    shutdown(c->fd, SHUT_RDWR);
    return NULL;
}

/* Peeks at the ClientHello as the listener will, without consuming it. */
static int peek_sni(int fd, char name[CB_EGRESS_NAME_MAX + 1])
{
    static uint8_t buf[CB_EGRESS_PEEK_MAX];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
        assert_true(n > 0);
        assert_int_equal(cb_egress_classify(buf, (size_t)n), CB_EGRESS_TLS);
        int r = cb_egress_tls_sni(buf, (size_t)n, name);
        if (r != -EAGAIN)
            return r;
    }
}

/* Reads the plaintext request through the SSL, answers "pong". */
static void serve_one(SSL *ssl)
{
    char buf[256];
    size_t got = 0;
    while (got < 4 || memcmp(buf + got - 4, "\r\n\r\n", 4) != 0) {
        int r = SSL_read(ssl, buf + got, (int)(sizeof(buf) - got));
        if (r <= 0) {
            assert_int_equal(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ);
            struct pollfd p = {.fd = SSL_get_fd(ssl), .events = POLLIN};
            assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
            continue;
        }
        got += (size_t)r;
        assert_true(got < sizeof(buf));
    }
    assert_memory_equal(buf, "GET / HTTP/1.1\r\nHost: api.example.com\r\n", 39);
    assert_int_equal(SSL_write(ssl, "pong", 4), 4);
}

/* One connection: the client thread, the peek, the handshake; serves the
 * request when the handshake completes. judged is the name the listener
 * judged; NULL for the peeked SNI, as the listener will pass it. Returns
 * the handshake's result. */
static int intercept(SSL_CTX *sctx, struct client *c, const char *judged, struct cb_error *err,
                     uint64_t *handshake_ns)
{
    int sv[2];
    pair(sv);
    c->fd = sv[0];
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, c), 0);
    char name[CB_EGRESS_NAME_MAX + 1];
    int has_sni = peek_sni(sv[1], name);
    assert_int_equal(has_sni, c->sni ? 1 : 0);
    if (has_sni)
        assert_int_equal(strcasecmp(name, c->sni), 0);
    SSL *ssl;
    uint64_t t0 = cb_now_mono_ns();
    if (!judged)
        judged = has_sni ? name : "";
    assert_int_equal(cb_egress_tls_accept_begin(sctx, sv[1], judged, strlen(judged), &ssl, err), 0);
    int r = cb_egress_tls_finish(ssl, TIMEOUT_MS, err);
    if (handshake_ns)
        *handshake_ns = cb_now_mono_ns() - t0;
    if (r == 0)
        serve_one(ssl);
    pthread_join(t, NULL);
    SSL_free(ssl);
    close(sv[0]);
    close(sv[1]);
    return r;
}

static void sni_gets_a_verifying_leaf(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box-1");
    SSL_CTX *sctx = server_ctx(ca);
    struct client c = {.sni = "api.example.com", .host = "api.example.com", .trust = ca};
    struct cb_error err = {0};
    assert_int_equal(intercept(sctx, &c, NULL, &err, NULL), 0);
    assert_true(c.connected);
    assert_int_equal(c.verify, X509_V_OK);
    assert_string_equal(c.alpn, "http/1.1");
    assert_string_equal(c.reply, "pong");

    /* Upper case SNI gets the same (lowercased) leaf. */
    struct client up = {.sni = "API.Example.COM", .host = "api.example.com", .trust = ca};
    assert_int_equal(intercept(sctx, &up, NULL, &err, NULL), 0);
    assert_int_equal(up.verify, X509_V_OK);
    SSL_CTX_free(sctx);
    cb_egress_ca_free(ca);
}

static void no_sni_is_refused(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box-1");
    SSL_CTX *sctx = server_ctx(ca);
    struct client c = {.host = "api.example.com", .trust = ca};
    struct cb_error err = {0};
    assert_int_equal(intercept(sctx, &c, NULL, &err, NULL), -EPROTO);
    assert_non_null(strstr(err.msg, "no server name (SNI)"));
    assert_false(c.connected);
    /* The client got the alert, not just a closed socket. */
    assert_int_equal(ERR_GET_REASON(c.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    SSL_CTX_free(sctx);
    cb_egress_ca_free(ca);
}

static void no_sni_to_an_ip_literal(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box-1");
    SSL_CTX *sctx = server_ctx(ca);
    struct client c = {.ip = "10.0.0.7", .trust = ca};
    struct cb_error err = {0};
    assert_int_equal(intercept(sctx, &c, "10.0.0.7", &err, NULL), 0);
    assert_int_equal(c.verify, X509_V_OK);
    assert_string_equal(c.reply, "pong");
    /* No SNI where the listener judged a name is refused too. */
    struct client unnamed = {.ip = "10.0.0.7", .trust = ca};
    assert_int_equal(intercept(sctx, &unnamed, "a.example", &err, NULL), -EPROTO);
    assert_non_null(strstr(err.msg, "no server name (SNI) but the listener read one"));
    SSL *ssl;
    int sv[2];
    pair(sv);
    char big[300];
    memset(big, 'a', sizeof(big));
    assert_int_equal(cb_egress_tls_accept_begin(sctx, sv[1], big, 254, &ssl, &err), -EINVAL);
    assert_int_equal(cb_egress_tls_accept_begin(sctx, sv[0], NULL, 0, &ssl, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "nonblocking"));
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(sctx);
    cb_egress_ca_free(ca);
}

/* The handshake's SNI must be the name the listener judged: two parsers
 * of a hostile ClientHello are not trusted to agree. */
static void sni_must_be_the_judged_name(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box-1");
    SSL_CTX *sctx = server_ctx(ca);
    struct cb_error err = {0};
    struct client c = {.sni = "evil.example", .host = "evil.example", .trust = ca};
    assert_int_equal(intercept(sctx, &c, "api.example.com", &err, NULL), -EPROTO);
    assert_non_null(strstr(err.msg, "differs from the one the listener judged"));
    assert_int_equal(ERR_GET_REASON(c.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    struct client to_ip = {.sni = "a.example", .host = "a.example", .trust = ca};
    assert_int_equal(intercept(sctx, &to_ip, "10.0.0.7", &err, NULL), -EPROTO);
    /* Case aside, the same name is the same. */
    struct client same = {.sni = "Api.Example.com", .host = "api.example.com", .trust = ca};
    assert_int_equal(intercept(sctx, &same, "api.example.COM", &err, NULL), 0);
    /* Nothing judged: any SNI gets its leaf. */
    struct client any = {.sni = "b.example", .host = "b.example", .trust = ca};
    assert_int_equal(intercept(sctx, &any, "", &err, NULL), 0);
    assert_int_equal(any.verify, X509_V_OK);
    SSL_CTX_free(sctx);
    cb_egress_ca_free(ca);
}

static void other_container_ca_does_not_verify(void **state)
{
    (void)state;
    struct cb_egress_ca *a = new_ca("box-a"), *b = new_ca("box-b");
    SSL_CTX *sctx = server_ctx(a);
    struct client c = {.sni = "api.example.com", .host = "api.example.com", .trust = b};
    struct cb_error err = {0};
    assert_true(intercept(sctx, &c, NULL, &err, NULL) < 0);
    assert_false(c.connected);
    assert_int_equal(c.verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    SSL_CTX_free(sctx);
    cb_egress_ca_free(a);
    cb_egress_ca_free(b);
}

/* A client that sends a few bytes of a ClientHello and stops: the
 * handshake gives up at its timeout. */
static void stalled_handshake_times_out(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box-1");
    SSL_CTX *sctx = server_ctx(ca);
    int sv[2];
    pair(sv);
    const uint8_t part[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    assert_int_equal(write(sv[0], part, sizeof(part)), (ssize_t)sizeof(part));
    SSL *ssl;
    struct cb_error err = {0};
    assert_int_equal(cb_egress_tls_accept_begin(sctx, sv[1], NULL, 0, &ssl, &err), 0);
    uint64_t t0 = cb_now_mono_ns();
    assert_int_equal(cb_egress_tls_finish(ssl, 150, &err), -ETIMEDOUT);
    uint64_t ms = (cb_now_mono_ns() - t0) / 1000000;
    assert_true(ms >= 140 && ms < 2000);
    SSL_free(ssl);
    /* The peer going away mid-handshake is a reset, not a hang. */
    assert_int_equal(cb_egress_tls_accept_begin(sctx, sv[1], NULL, 0, &ssl, &err), 0);
    close(sv[0]);
    assert_int_equal(cb_egress_tls_finish(ssl, TIMEOUT_MS, &err), -ECONNRESET);
    SSL_free(ssl);
    close(sv[1]);
    SSL_CTX_free(sctx);
    cb_egress_ca_free(ca);
}

struct parallel {
    SSL_CTX *sctx;
    struct cb_egress_ca *ca;
    int id, failures;
};

/* Handshakes with names shared across threads and a cache smaller than
 * them, so that leaves are minted, evicted and presented concurrently.
 * No cmocka assertion off the main thread: failures are counted. */
static void *parallel_main(void *arg)
{
    struct parallel *p = arg;
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p%d.example", (i + p->id) % 6);
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
            fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0) {
            p->failures++;
            continue;
        }
        struct client c = {.fd = sv[0], .sni = name, .host = name, .trust = p->ca};
        pthread_t t;
        pthread_create(&t, NULL, client_main, &c);
        SSL *ssl = NULL;
        int r = cb_egress_tls_accept_begin(p->sctx, sv[1], name, strlen(name), &ssl, NULL);
        if (r == 0)
            r = cb_egress_tls_finish(ssl, TIMEOUT_MS, NULL);
        if (r == 0 && SSL_write(ssl, "pong", 4) != 4)
            r = -1;
        shutdown(sv[1], SHUT_WR);
        pthread_join(t, NULL);
        if (r != 0 || !c.connected || c.verify != X509_V_OK)
            p->failures++;
        SSL_free(ssl);
        close(sv[0]);
        close(sv[1]);
    }
    return NULL;
}

static void parallel_handshakes(void **state)
{
    (void)state;
    struct cb_egress_ca *ca;
    struct cb_egress_ca_opts o = {.container_id = "box-p", .cache_max = 3};
    assert_int_equal(cb_egress_ca_new(&o, &ca, NULL), 0);
    SSL_CTX *sctx = server_ctx(ca);
    pthread_t t[4];
    struct parallel p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (struct parallel){.sctx = sctx, .ca = ca, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, parallel_main, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(p[i].failures, 0);
    }
    SSL_CTX_free(sctx);
    cb_egress_ca_free(ca);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void handshake_timing(void **state)
{
    (void)state;
    enum { N = 40 };
    struct cb_egress_ca *ca = new_ca("box-1");
    SSL_CTX *sctx = server_ctx(ca);
    uint64_t ns[N];
    for (int i = 0; i < N; i++) {
        /* Half the names repeat: leaves from the cache after the first. */
        char name[32];
        snprintf(name, sizeof(name), "h%d.example", i % (N / 2));
        struct client c = {.sni = name, .host = name, .trust = ca};
        assert_int_equal(intercept(sctx, &c, NULL, NULL, &ns[i]), 0);
    }
    uint64_t first[N / 2], again[N / 2];
    memcpy(first, ns, sizeof(first));
    memcpy(again, ns + N / 2, sizeof(again));
    qsort(first, N / 2, sizeof(uint64_t), cmp_u64);
    qsort(again, N / 2, sizeof(uint64_t), cmp_u64);
    print_message("intercepted handshake (server side, TLS 1.3, P-256), median: new name %.0f us, "
                  "cached leaf %.0f us\n",
                  (double)first[N / 4] / 1000, (double)again[N / 4] / 1000);
    SSL_CTX_free(sctx);
    cb_egress_ca_free(ca);
}

/* ---------------------- the upstream client side ----------------------- */

struct upstream {
    int fd;
    SSL_CTX *ctx;
    const char *ip; /* the leaf names this address when no SNI comes */
};

static void *upstream_main(void *arg)
{
    struct upstream *u = arg;
    SSL *ssl;
    if (cb_egress_tls_accept_begin(u->ctx, u->fd, u->ip, u->ip ? strlen(u->ip) : 0, &ssl, NULL) ==
        0) {
        cb_egress_tls_finish(ssl, TIMEOUT_MS, NULL);
        SSL_free(ssl);
    }
    shutdown(u->fd, SHUT_RDWR);
    return NULL;
}

/* Connects to a TLS server presenting upstream_ca's leaves. */
static int to_upstream(struct cb_egress_ca *upstream_ca, const char *bundle, const char *host,
                       const char *server_ip, struct cb_error *err)
{
    SSL_CTX *cctx, *sctx = server_ctx(upstream_ca);
    int r = cb_egress_tls_client_ctx(bundle, &cctx, err);
    if (r < 0) {
        SSL_CTX_free(sctx);
        return r;
    }
    int sv[2];
    pair(sv);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    struct upstream u = {.fd = sv[0], .ctx = sctx, .ip = server_ip};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, upstream_main, &u), 0);
    SSL *ssl;
    assert_int_equal(cb_egress_tls_connect_begin(cctx, sv[1], host, strlen(host), &ssl, err), 0);
    r = cb_egress_tls_finish(ssl, TIMEOUT_MS, err);
    if (r == 0) {
        const unsigned char *p;
        unsigned n;
        SSL_get0_alpn_selected(ssl, &p, &n);
        assert_int_equal(n, 8);
        assert_memory_equal(p, "http/1.1", 8);
    }
    SSL_free(ssl);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return r;
}

static char *write_bundle(const struct cb_egress_ca *ca)
{
    char *path = cb_xstrdup("/tmp/cb-egress-bundle-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n;
    const char *pem = cb_egress_ca_pem(ca, &n);
    assert_int_equal(write(fd, pem, n), (ssize_t)n);
    close(fd);
    return path;
}

/* A self-signed server certificate for upstream.test, and its PEM. */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"upstream.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509V3_CTX c;
    X509V3_set_ctx(&c, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &c, NID_subject_alt_name, "DNS:upstream.test");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

struct plain_server {
    int fd;
    SSL_CTX *ctx;
};

static void *plain_server_main(void *arg)
{
    struct plain_server *p = arg;
    SSL *ssl = SSL_new(p->ctx);
    SSL_set_fd(ssl, p->fd);
    SSL_accept(ssl);
    SSL_free(ssl);
    shutdown(p->fd, SHUT_RDWR);
    return NULL;
}

static int to_self_signed(SSL_CTX *sctx, const char *bundle, struct cb_error *err)
{
    SSL_CTX *cctx;
    assert_int_equal(cb_egress_tls_client_ctx(bundle, &cctx, err), 0);
    int sv[2];
    pair(sv);
    struct plain_server p = {.fd = sv[0], .ctx = sctx};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, plain_server_main, &p), 0);
    SSL *ssl;
    assert_int_equal(cb_egress_tls_connect_begin(cctx, sv[1], "upstream.test", 13, &ssl, err), 0);
    int r = cb_egress_tls_finish(ssl, TIMEOUT_MS, err);
    SSL_free(ssl);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(cctx);
    return r;
}

static void upstream_self_signed(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = self_signed(key);
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(sctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(sctx, key), 1);
    char path[] = "/tmp/cb-egress-self-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    PEM_write_X509(f, x);
    fclose(f);
    struct cb_error err = {0};
    assert_int_equal(to_self_signed(sctx, NULL, &err), -EPROTO);
    assert_non_null(strstr(err.msg, "self-signed"));
    assert_int_equal(to_self_signed(sctx, path, &err), 0);
    unlink(path);
    SSL_CTX_free(sctx);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void upstream_verification(void **state)
{
    (void)state;
    struct cb_egress_ca *up = new_ca("upstream"), *other = new_ca("other");
    char *good = write_bundle(up), *bad = write_bundle(other);
    struct cb_error err = {0};

    /* Signed by a CA in neither the system store nor the bundle. */
    assert_int_equal(to_upstream(up, NULL, "upstream.test", NULL, &err), -EPROTO);
    assert_non_null(strstr(err.msg, "not trusted"));
    assert_int_equal(to_upstream(up, bad, "upstream.test", NULL, &err), -EPROTO);
    assert_non_null(strstr(err.msg, "not trusted"));

    /* Its CA in the bundle: accepted, by name and by address. */
    assert_int_equal(to_upstream(up, good, "upstream.test", NULL, &err), 0);
    assert_int_equal(to_upstream(up, good, "127.0.0.1", "127.0.0.1", &err), 0);
    /* A trusted certificate for another address is refused. */
    assert_int_equal(to_upstream(up, good, "127.0.0.1", "10.9.9.9", &err), -EPROTO);
    assert_non_null(strstr(err.msg, "IP address mismatch"));

    /* A bundle that cannot be read. */
    SSL_CTX *ctx;
    assert_int_equal(cb_egress_tls_client_ctx("/nonexistent/bundle.pem", &ctx, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "proxy.ca_bundle"));
    assert_int_equal(cb_egress_tls_client_ctx(good, &ctx, &err), 0);
    int sv[2];
    pair(sv);
    SSL *ssl;
    assert_int_equal(cb_egress_tls_connect_begin(ctx, sv[1], "", 0, &ssl, &err), -EINVAL);
    assert_int_equal(cb_egress_tls_connect_begin(ctx, sv[0], "a.test", 6, &ssl, &err), -EINVAL);
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(ctx);

    unlink(good);
    unlink(bad);
    free(good);
    free(bad);
    cb_egress_ca_free(up);
    cb_egress_ca_free(other);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as serve does: OpenSSL writes alerts with write(2) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sni_gets_a_verifying_leaf),
        cmocka_unit_test(no_sni_is_refused),
        cmocka_unit_test(no_sni_to_an_ip_literal),
        cmocka_unit_test(sni_must_be_the_judged_name),
        cmocka_unit_test(other_container_ca_does_not_verify),
        cmocka_unit_test(stalled_handshake_times_out),
        cmocka_unit_test(upstream_self_signed),
        cmocka_unit_test(upstream_verification),
        cmocka_unit_test(parallel_handshakes),
        cmocka_unit_test(handshake_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
