/* The domain a credential is bound to. The proxy injects a credential when
 * this equals the canonical host of a request (proxy/host.h), or for
 * "*.name" when the host is name or ends in ".name". A domain that can
 * never equal a canonical host would sit in the store doing nothing while
 * its owner believes it works, so it is refused when added and flagged when
 * a store holding one is read. */
#include "secrets/secrets.h"

#include "proxy/host.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define DOMAIN_QUOTE_MAX 64

static int refuse(const char *domain, struct cb_error *err, const char *why)
{
    return cb_error_set(err, -EINVAL, "credential domain '%.*s' %s", DOMAIN_QUOTE_MAX, domain, why);
}

static bool has_space_or_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

/* "host:123" or "[v6]:123": a port where only a host belongs. */
static bool has_port(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return false;
    return s[0] == '[' ? colon > s && colon[-1] == ']' : strchr(s, ':') == colon;
}

/* The checks that give a clearer message than the host parser would, or
 * catch what it would quietly accept (a trailing dot, which it drops). */
static int precheck(const char *d, struct cb_error *err)
{
    if (d[0] == '\0')
        return cb_error_set(err, -EINVAL, "credential domain must not be empty");
    if (strlen(d) > CB_SECRETS_DOMAIN_MAX)
        return cb_error_set(err, -EINVAL, "credential domain is longer than %d bytes",
                            CB_SECRETS_DOMAIN_MAX);
    if (has_space_or_ctl(d))
        return refuse(d, err, "contains a space or control character");
    if (strchr(d, '/') != NULL)
        return refuse(d, err,
                      "is not a host: give the host name alone (api.example.com), "
                      "without scheme or path");
    if (strchr(d, '%') != NULL)
        return refuse(d, err,
                      "contains '%': percent-escapes and IPv6 zone ids never match "
                      "a request's host");
    if (strcmp(d, "*") == 0)
        return refuse(d, err,
                      "would send the credential to every host: name the host, or "
                      "'*.example.com' for a domain and its subdomains");
    if (strchr(d + (strncmp(d, "*.", 2) == 0 ? 2 : 0), '*') != NULL)
        return refuse(d, err,
                      "has a '*' that is not a whole first label: only "
                      "'*.example.com' is a wildcard");
    if (has_port(d))
        return refuse(d, err,
                      "includes a port: give the host alone and bind the port with "
                      "--port");
    if (d[strlen(d) - 1] == '.')
        return refuse(d, err,
                      "ends with a dot, which a request's host never has: write it "
                      "without the trailing dot");
    return 0;
}

/* The apex of "*.apex": a DNS name of at least two labels. */
static int wildcard(const char *d, const struct cb_proxy_host *h, struct cb_error *err)
{
    if (h->kind != CB_PROXY_HOST_NAME)
        return refuse(d, err, "puts '*.' before an IP address; name the address alone");
    if (strchr(h->name, '.') == NULL || cb_proxy_host_is_public_suffix(h->name))
        return refuse(d, err,
                      "covers a whole public suffix or top-level domain: name a "
                      "registered domain, such as '*.example.com'");
    return 0;
}

int cb_cred_domain_normalize(const char *d, char out[CB_SECRETS_DOMAIN_MAX + 1],
                             struct cb_error *err)
{
    struct cb_proxy_host h;
    struct cb_error e = {0};
    int r = precheck(d, err);
    if (r < 0)
        return r;
    bool wild = strncmp(d, "*.", 2) == 0;
    const char *host = wild ? d + 2 : d;
    if (cb_proxy_host_parse(host, strlen(host), &h, &e) < 0)
        return cb_error_set(err, -EINVAL, "credential domain '%.*s' is not valid: %s",
                            DOMAIN_QUOTE_MAX, d, e.msg);
    if (wild && (r = wildcard(d, &h, err)) < 0)
        return r;
    snprintf(out, CB_SECRETS_DOMAIN_MAX + 1, "%s%s", wild ? "*." : "", h.name);
    return 0;
}
