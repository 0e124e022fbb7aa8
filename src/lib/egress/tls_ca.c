/* The per-container interception CA and its leaf cache (tls_ca.h). */
#include "egress/tls_ca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "egress/sniff.h"

/* Issued a minute early, so that a clock read a little behind in the
 * container does not find the certificates not yet valid. */
#define BACKDATE_S     60
#define VALIDITY_MAX_S (366u * 24 * 3600)

struct leaf {
    char name[CB_EGRESS_NAME_MAX + 1];
    size_t len;
    X509 *cert;
    struct leaf *hnext;       /* the bucket's chain */
    struct leaf *prev, *next; /* the LRU list, most recent first */
};

struct cb_egress_ca {
    EVP_PKEY *key, *leaf_key;
    X509 *cert;
    char *pem;
    size_t pem_len;
    pthread_mutex_t lock;
    /* The hash of a name the container chose: a crafted collision only
     * lengthens one chain, which holds at most max entries. */
    struct leaf **buckets;
    size_t nbuckets; /* a power of two */
    struct leaf *head, *tail;
    size_t count, max;
};

static int ca_ssl_fail(struct cb_error *err, const char *what)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return cb_error_set(err, -EIO, "%s: %s", what, buf);
}

/* A positive random 128-bit serial (RFC 5280 allows up to 20 octets). */
static int set_serial(X509 *x)
{
    unsigned char b[16];
    if (cb_random_bytes(b, sizeof(b)) < 0)
        return -1;
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = ai && X509_set_serialNumber(x, ai);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

static int add_name(X509_NAME *n, const char *field, const char *value, size_t len)
{
    return X509_NAME_add_entry_by_txt(n, field, MBSTRING_ASC, (const unsigned char *)value,
                                      (int)len, -1, 0)
               ? 0
               : -1;
}

static X509 *make_ca_cert(EVP_PKEY *key, const char *id, uint32_t validity_s)
{
    X509 *x = X509_new();
    time_t now = time(NULL);
    X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
    if (!n || !X509_set_version(x, X509_VERSION_3) || set_serial(x) < 0 ||
        !X509_time_adj_ex(X509_getm_notBefore(x), 0, -BACKDATE_S, &now) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), 0, (long)validity_s, &now) ||
        add_name(n, "O", "clawbox", 7) < 0 || add_name(n, "OU", "egress interception CA", 22) < 0 ||
        add_name(n, "CN", id, strlen(id)) < 0 || !X509_set_issuer_name(x, n) ||
        !X509_set_pubkey(x, key) ||
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, x, NID_authority_key_identifier, "keyid:always") < 0 ||
        !X509_sign(x, key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int export_pem(struct cb_egress_ca *ca)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    long n;
    if (!b || !PEM_write_bio_X509(b, ca->cert) || (n = BIO_get_mem_data(b, &p)) <= 0) {
        BIO_free(b);
        return -1;
    }
    ca->pem = cb_xstrndup(p, (size_t)n);
    ca->pem_len = (size_t)n;
    BIO_free(b);
    return 0;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int cb_egress_ca_new(const struct cb_egress_ca_opts *opts, struct cb_egress_ca **out,
                     struct cb_error *err)
{
    *out = NULL;
    uint32_t validity = opts->validity_s ? opts->validity_s : CB_EGRESS_CA_VALIDITY_S;
    uint32_t max = opts->cache_max ? opts->cache_max : CB_EGRESS_LEAF_CACHE_DEFAULT;
    if (!cb_name_valid(opts->container_id))
        return cb_error_set(err, -EINVAL, "egress CA: invalid container id");
    if (validity > VALIDITY_MAX_S || max > CB_EGRESS_LEAF_CACHE_MAX)
        return cb_error_set(err, -EINVAL, "egress CA: validity or cache bound out of range");
    struct cb_egress_ca *ca = cb_xcalloc(1, sizeof(*ca));
    pthread_mutex_init(&ca->lock, NULL);
    ca->max = max;
    ca->nbuckets = pow2_at_least(2 * (size_t)max);
    ca->buckets = cb_xcalloc(ca->nbuckets, sizeof(*ca->buckets));
    int r;
    if (!(ca->key = EVP_EC_gen("P-256")) || !(ca->leaf_key = EVP_EC_gen("P-256")))
        r = ca_ssl_fail(err, "egress CA: generating an EC P-256 key");
    else if (!(ca->cert = make_ca_cert(ca->key, opts->container_id, validity)))
        r = ca_ssl_fail(err, "egress CA: making the CA certificate");
    else if (export_pem(ca) < 0)
        r = ca_ssl_fail(err, "egress CA: writing the certificate as PEM");
    else {
        *out = ca;
        return 0;
    }
    cb_egress_ca_free(ca);
    return r;
}

void cb_egress_ca_free(struct cb_egress_ca *ca)
{
    if (!ca)
        return;
    for (struct leaf *l = ca->head, *next; l; l = next) {
        next = l->next;
        X509_free(l->cert);
        free(l);
    }
    free(ca->buckets);
    free(ca->pem);
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    EVP_PKEY_free(ca->leaf_key);
    pthread_mutex_destroy(&ca->lock);
    free(ca);
}

const char *cb_egress_ca_pem(const struct cb_egress_ca *ca, size_t *len)
{
    *len = ca->pem_len;
    return ca->pem;
}

/* ------------------------------ names -------------------------------- */

static bool host_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > CB_EGRESS_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || ++label > 63)
            return false;
    }
    return true;
}

/* Whether s (NUL-terminated) is an IP literal; its bytes in addr, *alen. */
static bool ip_literal(const char *s, unsigned char addr[16], size_t *alen)
{
    if (inet_pton(AF_INET, s, addr) == 1) {
        *alen = 4;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *alen = 16;
        return true;
    }
    return false;
}

/* ------------------------------ minting ------------------------------ */

static int add_san(X509 *x, const char *name, size_t len, const unsigned char *ip, size_t ip_len)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *v = ip ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    int ok = 0;
    if (gens && g && v &&
        ASN1_STRING_set(v, ip ? (const void *)ip : (const void *)name, (int)(ip ? ip_len : len))) {
        GENERAL_NAME_set0_value(g, ip ? GEN_IPADD : GEN_DNS, v);
        v = NULL;
        if (sk_GENERAL_NAME_push(gens, g)) {
            g = NULL;
            ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
        }
    }
    ASN1_STRING_free(v);
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(gens);
    return ok ? 0 : -1;
}

static X509 *mint(const struct cb_egress_ca *ca, const char *name, size_t len,
                  const unsigned char *ip, size_t ip_len)
{
    X509 *x = X509_new();
    X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
    /* The SAN is what clients check. A commonName (at most 64 characters)
     * only for a host name: clients that fall back to it would read an IP
     * address there as a DNS name. */
    int named = !ip && len <= 64 ? add_name(n, "CN", name, len) : add_name(n, "O", "clawbox", 7);
    if (!n || named < 0 || !X509_set_version(x, X509_VERSION_3) || set_serial(x) < 0 ||
        !X509_set1_notBefore(x, X509_get0_notBefore(ca->cert)) ||
        !X509_set1_notAfter(x, X509_get0_notAfter(ca->cert)) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
        !X509_set_pubkey(x, ca->leaf_key) ||
        add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") < 0 ||
        add_san(x, name, len, ip, ip_len) < 0 || !X509_sign(x, ca->key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ------------------------------- cache ------------------------------- */

static struct leaf **bucket(struct cb_egress_ca *ca, const char *name, size_t len)
{
    return &ca->buckets[cb_fnv1a(CB_FNV1A_INIT, name, len) & (ca->nbuckets - 1)];
}

static void lru_unlink(struct cb_egress_ca *ca, struct leaf *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        ca->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        ca->tail = l->prev;
    l->prev = l->next = NULL;
}

static void lru_push_front(struct cb_egress_ca *ca, struct leaf *l)
{
    l->next = ca->head;
    if (ca->head)
        ca->head->prev = l;
    ca->head = l;
    if (!ca->tail)
        ca->tail = l;
}

/* The cached leaf for name, made most recent; NULL if none. Locked. */
static struct leaf *cache_find(struct cb_egress_ca *ca, const char *name, size_t len)
{
    for (struct leaf *l = *bucket(ca, name, len); l; l = l->hnext)
        if (l->len == len && memcmp(l->name, name, len) == 0) {
            lru_unlink(ca, l);
            lru_push_front(ca, l);
            return l;
        }
    return NULL;
}

static void cache_evict_tail(struct cb_egress_ca *ca)
{
    struct leaf *old = ca->tail;
    struct leaf **pp = bucket(ca, old->name, old->len);
    while (*pp != old)
        pp = &(*pp)->hnext;
    *pp = old->hnext;
    lru_unlink(ca, old);
    X509_free(old->cert);
    free(old);
    ca->count--;
}

/* Caches cert (taking the reference) unless another thread did first;
 * returns the certificate cached, with a reference for the caller. */
static X509 *cache_insert(struct cb_egress_ca *ca, const char *name, size_t len, X509 *cert)
{
    pthread_mutex_lock(&ca->lock);
    struct leaf *l = cache_find(ca, name, len);
    if (l) {
        X509_free(cert);
    } else {
        if (ca->count == ca->max)
            cache_evict_tail(ca);
        l = cb_xcalloc(1, sizeof(*l));
        memcpy(l->name, name, len);
        l->len = len;
        l->cert = cert;
        struct leaf **b = bucket(ca, name, len);
        l->hnext = *b;
        *b = l;
        lru_push_front(ca, l);
        ca->count++;
    }
    X509_up_ref(l->cert);
    X509 *x = l->cert;
    pthread_mutex_unlock(&ca->lock);
    return x;
}

int cb_egress_ca_leaf(struct cb_egress_ca *ca, const char *name, size_t len, X509 **cert,
                      EVP_PKEY **key, struct cb_error *err)
{
    *cert = NULL;
    *key = NULL;
    char low[CB_EGRESS_NAME_MAX + 1];
    unsigned char ip[16];
    size_t ip_len = 0;
    if (len == 0 || len > CB_EGRESS_NAME_MAX || memchr(name, '\0', len))
        return cb_error_set(err, -EINVAL, "egress leaf: not a host name or IP literal");
    for (size_t i = 0; i < len; i++)
        low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    low[len] = '\0';
    bool is_ip = ip_literal(low, ip, &ip_len);
    if (!is_ip && !host_name_valid(low, len))
        return cb_error_set(err, -EINVAL, "egress leaf: not a host name or IP literal");

    pthread_mutex_lock(&ca->lock);
    struct leaf *l = cache_find(ca, low, len);
    X509 *x = l ? l->cert : NULL;
    if (x)
        X509_up_ref(x);
    pthread_mutex_unlock(&ca->lock);
    if (!x) {
        /* Minted unlocked, so that one name's signature does not hold up
         * the lookups of others; a race mints twice and keeps one. */
        X509 *fresh = mint(ca, low, len, is_ip ? ip : NULL, ip_len);
        if (!fresh)
            return ca_ssl_fail(err, "egress leaf: minting a certificate");
        x = cache_insert(ca, low, len, fresh);
    }
    EVP_PKEY_up_ref(ca->leaf_key);
    *cert = x;
    *key = ca->leaf_key;
    return 0;
}
