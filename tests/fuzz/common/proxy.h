/* A real egress proxy for the fuzz targets that can never reach the
 * network: the tool's allowlist names only IPv4 literals that the default
 * address policy refuses (loopback, private, link-local, shared,
 * unspecified), so a request stops at the allowlist or at the address
 * policy, before any name lookup or connection. Everything before that is
 * real: params, rate limit (set out of reach), allowlist, leak scan of a
 * store with two credentials, address policy, and the audit log, written to
 * a directory under $TMPDIR that is emptied every few thousand requests and
 * removed at exit. */
#ifndef CB_FUZZ_PROXY_H
#define CB_FUZZ_PROXY_H

#include <jansson.h>

#include "proxy/pipeline.h"

/* Credential values in the store (the dictionaries name them too). */
#define FUZZ_SECRET_ALPHA "alpha-secret-value-0123456789"
#define FUZZ_SECRET_BETA  "ghp_0123456789abcdefABCDEF0123456789abcd"

struct cb_manifest;

struct fuzz_proxy {
    struct cb_proxy *proxy;
    const char *tool;
    struct cb_manifest *manifest; /* allowlist and credentials.available */
    json_t *granted;              /* both credentials */
};

/* The proxy, built on first use; aborts when it cannot be. Each call
 * counts one request for the audit log's clean-up. */
const struct fuzz_proxy *fuzz_proxy_get(void);

#endif
