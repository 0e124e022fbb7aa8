/* The interception CA and its leaves, checked by parsing the certificates
 * back with OpenSSL; the leaf cache's bound and LRU order; and the mint
 * and lookup times, printed. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "egress/tls_ca.h"

static struct cb_egress_ca *new_ca(const char *id, uint32_t cache_max)
{
    struct cb_egress_ca *ca;
    struct cb_error err = {0};
    struct cb_egress_ca_opts o = {.container_id = id, .cache_max = cache_max};
    assert_int_equal(cb_egress_ca_new(&o, &ca, &err), 0);
    return ca;
}

static X509 *ca_cert(const struct cb_egress_ca *ca)
{
    size_t n;
    const char *pem = cb_egress_ca_pem(ca, &n);
    assert_int_equal(strlen(pem), n);
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static X509 *leaf(struct cb_egress_ca *ca, const char *name)
{
    X509 *x;
    EVP_PKEY *k;
    struct cb_error err = {0};
    assert_int_equal(cb_egress_ca_leaf(ca, name, strlen(name), &x, &k, &err), 0);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    return x;
}

static int64_t seconds_between(const ASN1_TIME *a, const ASN1_TIME *b)
{
    int days, secs;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, a, b), 1);
    return (int64_t)days * 86400 + secs;
}

static bool ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* Whether x verifies as a TLS server certificate for host against only
 * the CA certificate `anchor`. */
static bool chain_ok(X509 *anchor, X509 *x, const char *host)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, anchor);
    X509_STORE_CTX *c = X509_STORE_CTX_new();
    X509_STORE_CTX_init(c, st, x, NULL);
    X509_STORE_CTX_set_purpose(c, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(c), host, 0);
    bool ok = X509_verify_cert(c) == 1;
    X509_STORE_CTX_free(c);
    X509_STORE_free(st);
    return ok;
}

static void ca_certificate(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("c-1234", 0);
    size_t n;
    const char *pem = cb_egress_ca_pem(ca, &n);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));
    assert_null(strstr(pem, "PRIVATE KEY"));
    X509 *x = ca_cert(ca);
    assert_int_equal(X509_check_ca(x), 1);
    assert_true(ext_critical(x, NID_basic_constraints));
    assert_true(ext_critical(x, NID_key_usage));
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_pathlen(x), 0);
    assert_int_equal(seconds_between(X509_get0_notBefore(x), X509_get0_notAfter(x)),
                     CB_EGRESS_CA_VALIDITY_S + 60);
    assert_int_equal(X509_cmp_current_time(X509_get0_notBefore(x)), -1);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
    char group[32];
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_verify(x, pub), 1);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    assert_int_equal(ASN1_STRING_length(serial), 16);
    char cn[80];
    assert_int_equal(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)), 6);
    assert_string_equal(cn, "c-1234");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);

    /* Two CAs never share a serial or a key. */
    struct cb_egress_ca *ca2 = new_ca("c-1234", 0);
    X509 *y = ca_cert(ca2);
    assert_int_not_equal(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(y)), 0);
    assert_int_equal(X509_verify(y, pub), 0);
    X509_free(y);
    X509_free(x);
    cb_egress_ca_free(ca2);
    cb_egress_ca_free(ca);
}

static void ca_options(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = NULL;
    struct cb_error err = {0};
    struct cb_egress_ca_opts bad_id = {.container_id = "a/b"};
    assert_int_equal(cb_egress_ca_new(&bad_id, &ca, &err), -EINVAL);
    assert_null(ca);
    struct cb_egress_ca_opts long_life = {.container_id = "c", .validity_s = 400u * 86400};
    assert_int_equal(cb_egress_ca_new(&long_life, &ca, &err), -EINVAL);
    struct cb_egress_ca_opts big_cache = {.container_id = "c",
                                          .cache_max = CB_EGRESS_LEAF_CACHE_MAX + 1};
    assert_int_equal(cb_egress_ca_new(&big_cache, &ca, &err), -EINVAL);
    struct cb_egress_ca_opts hour = {.container_id = "c", .validity_s = 3600};
    assert_int_equal(cb_egress_ca_new(&hour, &ca, &err), 0);
    X509 *x = ca_cert(ca), *l = leaf(ca, "a.example");
    assert_int_equal(seconds_between(X509_get0_notBefore(x), X509_get0_notAfter(x)), 3660);
    assert_int_equal(seconds_between(X509_get0_notBefore(l), X509_get0_notAfter(l)), 3660);
    X509_free(l);
    X509_free(x);
    cb_egress_ca_free(ca);
    cb_egress_ca_free(NULL);
}

static void dns_leaf(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box", 0);
    X509 *anchor = ca_cert(ca), *x = leaf(ca, "API.Example.com");
    assert_int_equal(X509_check_host(x, "api.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "example.com", 0, 0, NULL), 0);
    assert_int_equal(X509_check_host(x, "x.api.example.com", 0, 0, NULL), 0);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(anchor)), 1);
    assert_int_equal(X509_check_ca(x), 0);
    assert_true(ext_critical(x, NID_basic_constraints));
    assert_true(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_true(ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notBefore(anchor)) >= 0);
    assert_true(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(anchor)) <= 0);
    assert_int_equal(X509_check_issued(anchor, x), X509_V_OK);
    assert_true(chain_ok(anchor, x, "api.example.com"));
    assert_false(chain_ok(anchor, x, "other.example.com"));

    /* A long name has no commonName, only its SAN. */
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    longname[63] = longname[127] = longname[191] = '.';
    X509 *y = leaf(ca, longname);
    assert_int_equal(X509_check_host(y, longname, 0, 0, NULL), 1);
    assert_int_equal(X509_NAME_get_index_by_NID(X509_get_subject_name(y), NID_commonName, -1), -1);
    X509_free(y);
    X509_free(x);
    X509_free(anchor);
    cb_egress_ca_free(ca);
}

static void ip_leaves(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box", 0);
    X509 *anchor = ca_cert(ca), *v4 = leaf(ca, "10.1.2.3"), *v6 = leaf(ca, "2001:DB8::1");
    assert_int_equal(X509_check_ip_asc(v4, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(v4, "10.1.2.4", 0), 0);
    assert_int_equal(X509_check_host(v4, "10.1.2.3", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(v6, "2001:db8::1", 0), 1);
    assert_int_equal(X509_verify(v6, X509_get0_pubkey(anchor)), 1);
    X509_free(v6);
    X509_free(v4);
    X509_free(anchor);
    cb_egress_ca_free(ca);
}

static void bad_names(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box", 0);
    const char *bad[] = {".a.example",    "a.example.",      "a..example",       "a example",
                         "*.example.com", "a,DNS:b.example", "\xc3\xa9.example", "a/b"};
    X509 *x;
    EVP_PKEY *k;
    struct cb_error err = {0};
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++) {
        assert_int_equal(cb_egress_ca_leaf(ca, bad[i], strlen(bad[i]), &x, &k, &err), -EINVAL);
        assert_null(x);
        assert_null(k);
    }
    assert_int_equal(cb_egress_ca_leaf(ca, "a\0b", 3, &x, &k, &err), -EINVAL);
    assert_int_equal(cb_egress_ca_leaf(ca, "", 0, &x, &k, &err), -EINVAL);
    char big[300];
    memset(big, 'a', sizeof(big));
    for (size_t i = 60; i < sizeof(big); i += 60)
        big[i] = '.';
    assert_int_equal(cb_egress_ca_leaf(ca, big, 254, &x, &k, &err), -EINVAL);
    assert_int_equal(cb_egress_ca_leaf(ca, big, 253, &x, &k, &err), 0);
    X509_free(x);
    EVP_PKEY_free(k);
    char label[80];
    memset(label, 'b', sizeof(label));
    assert_int_equal(cb_egress_ca_leaf(ca, label, 64, &x, &k, &err), -EINVAL);
    cb_egress_ca_free(ca);
}

static void other_ca_does_not_verify(void **state)
{
    (void)state;
    struct cb_egress_ca *a = new_ca("a", 0), *b = new_ca("b", 0);
    X509 *anchor_b = ca_cert(b), *leaf_a = leaf(a, "api.example.com");
    assert_int_equal(X509_verify(leaf_a, X509_get0_pubkey(anchor_b)), 0);
    assert_false(chain_ok(anchor_b, leaf_a, "api.example.com"));
    X509_free(leaf_a);
    X509_free(anchor_b);
    cb_egress_ca_free(a);
    cb_egress_ca_free(b);
}

static void cache_bound_and_lru(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box", 2);
    X509 *a = leaf(ca, "a.example"), *a2 = leaf(ca, "A.EXAMPLE");
    assert_ptr_equal(a, a2);
    X509 *b = leaf(ca, "b.example");
    X509 *a3 = leaf(ca, "a.example"); /* a is now the most recent */
    assert_ptr_equal(a, a3);
    X509 *c = leaf(ca, "c.example");                               /* evicts b */
    X509 *a4 = leaf(ca, "a.example"), *b2 = leaf(ca, "b.example"); /* b2 evicts c */
    assert_ptr_equal(a, a4);
    assert_ptr_not_equal(b, b2);
    X509 *c2 = leaf(ca, "c.example");
    assert_ptr_not_equal(c, c2);
    /* Leaves held by the caller outlive their eviction and the CA. */
    cb_egress_ca_free(ca);
    assert_int_equal(X509_check_host(b, "b.example", 0, 0, NULL), 1);
    X509 *all[] = {a, a2, b, a3, c, a4, b2, c2};
    for (size_t i = 0; i < CB_ARRAY_LEN(all); i++)
        X509_free(all[i]);
}

struct minter {
    struct cb_egress_ca *ca;
    int seed;
};

static void *mint_many(void *arg)
{
    struct minter *m = arg;
    for (int i = 0; i < 60; i++) {
        char name[32];
        int n = snprintf(name, sizeof(name), "h%d.example", (i * 7 + m->seed) % 12);
        X509 *x;
        EVP_PKEY *k;
        if (cb_egress_ca_leaf(m->ca, name, (size_t)n, &x, &k, NULL) != 0 ||
            X509_check_host(x, name, (size_t)n, 0, NULL) != 1)
            return (void *)1;
        X509_free(x);
        EVP_PKEY_free(k);
    }
    return NULL;
}

static void cache_threads(void **state)
{
    (void)state;
    struct cb_egress_ca *ca = new_ca("box", 5);
    pthread_t t[4];
    struct minter m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = (struct minter){ca, i};
        assert_int_equal(pthread_create(&t[i], NULL, mint_many, &m[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    cb_egress_ca_free(ca);
}

/* Not an assertion of speed: the figures for the report, with bounds only
 * far past anything plausible. */
static void timings(void **state)
{
    (void)state;
    enum { N = 200 };
    uint64_t t0 = cb_now_mono_ns();
    struct cb_egress_ca *ca = new_ca("box", N);
    uint64_t t1 = cb_now_mono_ns();
    char name[32];
    for (int i = 0; i < N; i++) {
        X509 *x = leaf(ca, (snprintf(name, sizeof(name), "h%d.example", i), name));
        X509_free(x);
    }
    uint64_t t2 = cb_now_mono_ns();
    for (int r = 0; r < 10; r++)
        for (int i = 0; i < N; i++) {
            X509 *x = leaf(ca, (snprintf(name, sizeof(name), "h%d.example", i), name));
            X509_free(x);
        }
    uint64_t t3 = cb_now_mono_ns();
    for (int i = 0; i < N; i++)
        EVP_PKEY_free(EVP_EC_gen("P-256"));
    uint64_t t4 = cb_now_mono_ns();
    double mint_us = (double)(t2 - t1) / N / 1000, hit_us = (double)(t3 - t2) / (10 * N) / 1000;
    double key_us = (double)(t4 - t3) / N / 1000;
    print_message("CA creation %.0f us; leaf mint %.0f us; cached leaf %.2f us; "
                  "a P-256 key generation (saved per leaf by sharing the leaf key) %.0f us\n",
                  (double)(t1 - t0) / 1000, mint_us, hit_us, key_us);
    assert_true(mint_us < 100000);
    assert_true(hit_us < mint_us);
    cb_egress_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ca_certificate),
        cmocka_unit_test(ca_options),
        cmocka_unit_test(dns_leaf),
        cmocka_unit_test(ip_leaves),
        cmocka_unit_test(bad_names),
        cmocka_unit_test(other_ca_does_not_verify),
        cmocka_unit_test(cache_bound_and_lru),
        cmocka_unit_test(cache_threads),
        cmocka_unit_test(timings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
