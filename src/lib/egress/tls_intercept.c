/* The server and client TLS ends of interception (tls_intercept.h). */
#include "egress/tls_intercept.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "egress/sniff.h"

static const unsigned char alpn_http11[] = "\x08http/1.1";

/* What the server side of one handshake knows besides the ClientHello:
 * the name the caller judged (judged_len 0: none), whether it is an IP
 * literal, and why the handshake was refused, for the error message. */
struct accept_state {
    char judged[CB_EGRESS_NAME_MAX + 1];
    size_t judged_len;
    bool judged_ip;
    const char *refusal;
};

static int state_index = -1;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void state_index_init(void)
{
    state_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, state_free);
}

static int ssl_fail(struct cb_error *err, int code, const char *what)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return cb_error_set(err, code, "%s: %s", what, buf);
}

static bool tls_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

/* Whether s[0..n) is an IPv4 or IPv6 literal; copies it with a NUL. */
static bool ip_text(const char *s, size_t n, char out[INET6_ADDRSTRLEN])
{
    unsigned char a[16];
    if (n == 0 || n >= INET6_ADDRSTRLEN || memchr(s, '\0', n))
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return inet_pton(AF_INET, out, a) == 1 || inet_pton(AF_INET6, out, a) == 1;
}

/* ------------------------------ server ------------------------------- */

static int refuse_handshake(struct accept_state *st, int *alert, int code, const char *why)
{
    st->refusal = why;
    *alert = code;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* The name to present a leaf for: the SNI, which must be the name the
 * caller judged when it judged one (the listener and OpenSSL read the same
 * bytes, but two parsers of hostile input are not trusted to agree); or,
 * without SNI, the IP literal the caller judged. NULL with *why set when
 * the handshake is refused. */
static const char *leaf_name(const struct accept_state *st, const char *sni, const char **why)
{
    if (!sni) {
        if (st->judged_ip)
            return st->judged;
        *why = st->judged_len ? "the ClientHello has no server name (SNI) but the listener read one"
                              : "the ClientHello has no server name (SNI)";
        return NULL;
    }
    size_t n = strlen(sni);
    if (st->judged_len &&
        (st->judged_ip || n != st->judged_len || strncasecmp(sni, st->judged, n) != 0)) {
        *why = "the server name (SNI) differs from the one the listener judged";
        return NULL;
    }
    return sni;
}

/* Runs once the ClientHello's extensions are read, with or without SNI:
 * the leaf is chosen here, so that no certificate is ever presented for a
 * name the caller did not judge. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    struct cb_egress_ca *ca = arg;
    struct accept_state *st = SSL_get_ex_data(ssl, state_index);
    if (!st) {
        *alert = SSL_AD_INTERNAL_ERROR; /* not begun by cb_egress_tls_accept_begin */
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    const char *why = NULL;
    const char *name = leaf_name(st, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), &why);
    if (!name)
        return refuse_handshake(st, alert, SSL_AD_UNRECOGNIZED_NAME, why);
    X509 *cert;
    EVP_PKEY *key;
    if (cb_egress_ca_leaf(ca, name, strlen(name), &cert, &key, NULL) < 0)
        return refuse_handshake(st, alert, SSL_AD_UNRECOGNIZED_NAME,
                                "no certificate for the server name (SNI)");
    int ok = SSL_use_certificate(ssl, cert) == 1 && SSL_use_PrivateKey(ssl, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok)
        return refuse_handshake(st, alert, SSL_AD_INTERNAL_ERROR,
                                "presenting the leaf certificate failed");
    return SSL_TLSEXT_ERR_OK;
}

/* http/1.1 when the client offers it; otherwise no ALPN, which HTTP/1.1
 * clients take as HTTP/1.1 and h2-only clients refuse. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl, (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned n = in[i];
        if (n > inlen - i - 1)
            break;
        if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int cb_egress_tls_server_ctx(struct cb_egress_ca *ca, SSL_CTX **out, struct cb_error *err)
{
    pthread_once(&state_once, state_index_init);
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || state_index < 0 || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        SSL_CTX_free(ctx);
        return ssl_fail(err, -EIO, "egress TLS server context");
    }
    /* A renegotiation would be a second, unbounded handshake mid-stream. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, ca);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    *out = ctx;
    return 0;
}

int cb_egress_tls_accept_begin(SSL_CTX *ctx, int fd, const char *name, size_t len, SSL **out,
                               struct cb_error *err)
{
    *out = NULL;
    if (len > CB_EGRESS_NAME_MAX || (len && memchr(name, '\0', len)))
        return cb_error_set(err, -EINVAL, "egress TLS accept: bad judged name");
    struct accept_state *st = cb_xcalloc(1, sizeof(*st));
    char ip[INET6_ADDRSTRLEN];
    if (len > 0) /* name may be NULL for none */
        memcpy(st->judged, name, len);
    st->judged_len = len;
    st->judged_ip = ip_text(name, len, ip);
    if (!tls_nonblocking(fd)) {
        free(st);
        return cb_error_set(err, -EINVAL, "egress TLS accept: the socket must be nonblocking");
    }
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_ex_data(ssl, state_index, st)) {
        free(st);
        SSL_free(ssl);
        return ssl_fail(err, -EIO, "egress TLS accept");
    }
    if (!SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        return ssl_fail(err, -EIO, "egress TLS accept");
    }
    SSL_set_accept_state(ssl);
    *out = ssl;
    return 0;
}

/* ------------------------------ client ------------------------------- */

int cb_egress_tls_client_ctx(const char *ca_bundle, SSL_CTX **out, struct cb_error *err)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_default_verify_paths(ctx) ||
        SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof(alpn_http11) - 1) != 0) {
        SSL_CTX_free(ctx);
        return ssl_fail(err, -EIO, "egress TLS client context");
    }
    if (ca_bundle && SSL_CTX_load_verify_locations(ctx, ca_bundle, NULL) != 1) {
        SSL_CTX_free(ctx);
        return ssl_fail(err, -ENOENT, "egress TLS client context: reading proxy.ca_bundle");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    *out = ctx;
    return 0;
}

int cb_egress_tls_connect_begin(SSL_CTX *ctx, int fd, const char *host, size_t len, SSL **out,
                                struct cb_error *err)
{
    *out = NULL;
    char name[CB_EGRESS_NAME_MAX + 1], ip[INET6_ADDRSTRLEN];
    if (len == 0 || len > CB_EGRESS_NAME_MAX || memchr(host, '\0', len))
        return cb_error_set(err, -EINVAL, "egress TLS connect: bad upstream host name");
    if (!tls_nonblocking(fd))
        return cb_error_set(err, -EINVAL, "egress TLS connect: the socket must be nonblocking");
    memcpy(name, host, len);
    name[len] = '\0';
    SSL *ssl = SSL_new(ctx);
    bool is_ip = ip_text(host, len, ip);
    bool ok = ssl && SSL_set_fd(ssl, fd);
    if (ok && is_ip)
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1;
    else if (ok) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        return ssl_fail(err, -EIO, "egress TLS connect");
    }
    SSL_set_connect_state(ssl);
    *out = ssl;
    return 0;
}

/* ----------------------------- handshake ----------------------------- */

static int handshake_error(SSL *ssl, int ret, struct cb_error *err)
{
    int e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
        ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return cb_error_set(err, -ECONNRESET, "TLS handshake: the peer closed the connection");
    }
    struct accept_state *st = state_index >= 0 ? SSL_get_ex_data(ssl, state_index) : NULL;
    if (st && st->refusal) {
        ERR_clear_error();
        return cb_error_set(err, -EPROTO, "TLS handshake refused: %s", st->refusal);
    }
    long v = SSL_get_verify_result(ssl);
    if (!SSL_is_server(ssl) && v != X509_V_OK) {
        ERR_clear_error();
        return cb_error_set(err, -EPROTO, "TLS handshake: upstream certificate not trusted: %s",
                            X509_verify_cert_error_string(v));
    }
    return ssl_fail(err, -EPROTO, "TLS handshake");
}

int cb_egress_tls_step(SSL *ssl, short *events, struct cb_error *err)
{
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return 0;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
        *events = POLLIN;
        return 1;
    case SSL_ERROR_WANT_WRITE:
        *events = POLLOUT;
        return 1;
    default:
        return handshake_error(ssl, r, err);
    }
}

int cb_egress_tls_finish(SSL *ssl, uint64_t timeout_ms, struct cb_error *err)
{
    uint64_t deadline = cb_now_mono_ns() + timeout_ms * 1000000u;
    for (;;) {
        struct pollfd p = {.fd = SSL_get_fd(ssl)};
        int r = cb_egress_tls_step(ssl, &p.events, err);
        if (r <= 0)
            return r;
        uint64_t now = cb_now_mono_ns();
        if (now >= deadline)
            return cb_error_set(err, -ETIMEDOUT, "TLS handshake: no progress within %llu ms",
                                (unsigned long long)timeout_ms);
        uint64_t left_ms = (deadline - now + 999999u) / 1000000u;
        int wait_ms = left_ms > 60000 ? 60000 : (int)left_ms;
        if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
            return cb_error_set(err, -errno, "TLS handshake: poll: %s", strerror(errno));
    }
}
