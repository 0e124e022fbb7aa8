/* The host allowlist of a tool manifest or a container policy. Entries are
 * exact hosts ("api.github.com", "127.0.0.1", "[::1]") or "*.domain", and
 * the lone "*" that allows every host. Matching is case-insensitive and
 * ignores one trailing dot; hosts and entries go through the same
 * canonicalisation as URL hosts (host.h), so "0x7f.1" and "127.0.0.1" are
 * one entry.
 *
 * "*.example.com" matches every subdomain at any depth AND the apex
 * "example.com" itself, as the reference does:
 * manifests written for the reference keep working, and whoever controls
 * the subdomains of a domain controls the apex anyway. It never matches
 * "evilexample.com", and a wildcard never matches an IP address.
 *
 * "*", and a wildcard on a public suffix ("*.com", "*.co.uk", "*.github.io",
 * by the public suffix list), count only when the caller passes
 * allow_wildcard_all (config `proxy.allow_wildcard_all`, default false);
 * otherwise they are ignored and the denial says so. An empty list denies
 * every host. */
#ifndef CB_PROXY_ALLOWLIST_H
#define CB_PROXY_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

struct cb_proxy_allowlist;

/* Builds a list from manifest entries. Returns 0, or -EINVAL naming the
 * first entry that is not a host, "*.domain" or "*" (URLs, ports, '*' in
 * the middle, wildcard IP addresses, ...). */
int cb_proxy_allowlist_new(char *const *entries, size_t n, struct cb_proxy_allowlist **out,
                           struct cb_error *err);
void cb_proxy_allowlist_free(struct cb_proxy_allowlist *l);

/* The one validator of an allowlist entry, for registration and the
 * proxy alike: 0, or -EINVAL naming the entry and what is wrong with it
 * (not a host, "*.domain" or "*"; or "*" or a public-suffix wildcard
 * without allow_wildcard_all). IPv6 literals may be bare or bracketed. */
int cb_proxy_allowlist_entry_check(const char *s, size_t len, bool allow_wildcard_all,
                                   struct cb_error *err);

/* Decides whether `host` (len bytes; any spelling the URL stage accepts)
 * may be contacted. `who` names the subject for the message, such as "tool
 * web_fetch" or "container 3f2a"; NULL leaves it out. A NULL list denies
 * all. Returns 0 to allow, or -EACCES with a reason such as "blocked: host
 * evil.com is not in the allowlist for tool web_fetch". */
int cb__proxy_allowlist_check(const struct cb_proxy_allowlist *l, const char *host, size_t len,
                              bool allow_wildcard_all, const char *who, struct cb_error *err);

#endif
