/* A container's TLS interception authority (tls = "intercept"):
 * an EC P-256 CA generated at spawn, whose certificate (never its key) is
 * installed in the container's trust store, and the leaf certificates it
 * mints for the names the container connects to.
 *
 * The CA is valid for a short time (CB_EGRESS_CA_VALIDITY_S by default)
 * from one minute before its creation, and is marked CA:TRUE (critical,
 * path length 0) with keyUsage keyCertSign and cRLSign only. Every leaf
 * has one subjectAltName (a DNS name, or an IP address for an IP literal),
 * extendedKeyUsage serverAuth, CA:FALSE, and the CA's validity: never
 * longer. All leaves of one CA share one EC P-256 key made with the CA
 * (minting is then one signature, not a key generation as well); the key
 * is as private as the CA's own, which never leaves the process.
 *
 * Leaves are cached per name in a bounded LRU. Safe to call from several
 * threads. */
#ifndef CB_EGRESS_TLS_CA_H
#define CB_EGRESS_TLS_CA_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The CA's default lifetime: 7 days, longer than any container may run. */
#define CB_EGRESS_CA_VALIDITY_S (7u * 24 * 3600)
/* Leaves cached per CA when the caller names no bound. */
#define CB_EGRESS_LEAF_CACHE_DEFAULT 256
/* The most leaves a cache may be asked to hold. */
#define CB_EGRESS_LEAF_CACHE_MAX 65536

struct cb_egress_ca;

struct cb_egress_ca_opts {
    /* The container's id, named in the CA's subject: 1 to CB_NAME_MAX of
     * [A-Za-z0-9_-] (cb_name_valid). */
    const char *container_id;
    /* Seconds the CA (and so every leaf) is valid; 0 means
     * CB_EGRESS_CA_VALIDITY_S. At most 366 days. */
    uint32_t validity_s;
    /* Leaves kept; 0 means CB_EGRESS_LEAF_CACHE_DEFAULT. At most
     * CB_EGRESS_LEAF_CACHE_MAX. */
    uint32_t cache_max;
};

/* Generates the CA's key and self-signed certificate and the leaf key.
 * Returns 0 with *out set (free with cb_egress_ca_free), or a negative
 * errno: -EINVAL for options out of range, -EIO when OpenSSL fails. */
int cb_egress_ca_new(const struct cb_egress_ca_opts *opts, struct cb_egress_ca **out,
                     struct cb_error *err);

/* Frees the CA, its keys and every cached leaf. NULL is ignored. Leaves
 * the caller still holds (cb_egress_ca_leaf) stay valid. */
void cb_egress_ca_free(struct cb_egress_ca *ca);

/* The CA's certificate as PEM (NUL-terminated, *len without the NUL),
 * owned by ca: what the container's trust store gets. Never the key. */
const char *cb_egress_ca_pem(const struct cb_egress_ca *ca, size_t *len);

/* The leaf for name[0..len): an IPv4 or IPv6 literal gets an IP SAN,
 * anything else must be a host name (1 to 253 bytes of letters, digits,
 * '-', '_' and inner dots; compared and issued in lower case) and gets a
 * DNS SAN. Found in the cache or minted and cached. On success *cert and
 * *key hold a reference each, which the caller releases (X509_free,
 * EVP_PKEY_free). Returns 0, -EINVAL for a name that is neither, or -EIO
 * when OpenSSL fails. */
int cb_egress_ca_leaf(struct cb_egress_ca *ca, const char *name, size_t len, X509 **cert,
                      EVP_PKEY **key, struct cb_error *err);

#endif
