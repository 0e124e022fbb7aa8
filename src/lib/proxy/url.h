/* The first stage of the egress proxy: one strict parse of the URL a tool or
 * container asked for. The URL is read once, by libcurl's URL API, and
 * cross-checked against our own reading of the raw authority, so that the
 * allowlist, the address policy and the sender all see the same host. Only
 * http and https are accepted; credentials in the URL, percent-encoded or
 * non-ASCII hosts, backslashes, spaces and control characters are refused
 * with a message that says what to change. */
#ifndef CB_PROXY_URL_H
#define CB_PROXY_URL_H

#include <stdint.h>

#include "core/error.h"
#include "proxy/host.h"

/* Longest URL accepted, in bytes. */
#define CB_PROXY_URL_MAX 8192

enum cb_proxy_scheme {
    CB_PROXY_HTTP,
    CB_PROXY_HTTPS,
};

struct cb_proxy_url {
    enum cb_proxy_scheme scheme;
    struct cb_proxy_host host; /* canonical host, see host.h */
    uint16_t port;             /* explicit, or 80/443 */
    char *target;              /* path and query as sent: "/a/b?x=1" */
    char *url;                 /* canonical, for sending: no fragment, no default port */
    char *redacted;            /* `url` with every query value replaced, for logs */
};

/* Parses `len` bytes of `s` into `out` (which the caller frees with
 * cb__proxy_url_free, also after a failure). Returns 0, or -EINVAL with a
 * message that starts "blocked: " and says what was wrong. The URL quoted
 * in messages has its credentials and query values redacted. */
int cb__proxy_url_parse(const char *s, size_t len, struct cb_proxy_url *out, struct cb_error *err);

void cb__proxy_url_free(struct cb_proxy_url *u);

/* "http" or "https". */
const char *cb__proxy_scheme_name(enum cb_proxy_scheme s);

#endif
