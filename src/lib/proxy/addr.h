/* The address policy of the egress proxy (SSRF defence). Every address a
 * request would connect to, a resolved one or an IP literal, is checked
 * against the IANA IPv4 and IPv6 special-purpose registries plus multicast,
 * the deprecated site-local range and everything outside IPv6 global
 * unicast (2000::/3). IPv4-mapped IPv6 addresses are judged by the IPv4
 * address they carry. NAT64, 6to4, Teredo and IPv4-compatible addresses are
 * blocked outright, whatever IPv4 address they embed: they reach IPv4 hosts
 * through translators we cannot see, and no public service needs them.
 *
 * The only way through for a special address is an explicit exemption
 * (config `proxy.allow_private_cidrs`), meant for tests with a loopback
 * upstream. */
#ifndef CB_PROXY_ADDR_H
#define CB_PROXY_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/error.h"
#include "proxy/host.h"

struct cb_proxy_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};

/* Parses "a.b.c.d/n" or "v6/n" strictly: the prefix is required, written
 * without leading zeros, and no bits may be set past it. Returns 0 or
 * -EINVAL with a message that says what is wrong. */
int cb__proxy_cidr_parse(const char *s, size_t len, struct cb_proxy_cidr *out,
                         struct cb_error *err);

/* Whether the address (4 or 16 bytes by family) lies inside the block. */
bool cb__proxy_cidr_contains(const struct cb_proxy_cidr *c, int family, const uint8_t *addr);

/* One entry of the built-in table of special addresses. */
struct cb_proxy_special {
    const char *cidr; /* "10.0.0.0/8" */
    const char *what; /* "a private address" */
};

/* The most specific special-purpose block the address lies in, or NULL for
 * a public address. This is the raw table lookup: an IPv4-mapped IPv6
 * address is not unwrapped here (cb__proxy_addr_check does that). */
const struct cb_proxy_special *cb__proxy_addr_classify(int family, const uint8_t *addr);

/* The exemptions; NULL means none. */
struct cb_proxy_addr_policy;

/* Builds a policy from CIDR strings such as "127.0.0.0/8". Returns 0, or
 * -EINVAL naming the first bad entry. */
int cb__proxy_addr_policy_new(char *const *cidrs, size_t n, struct cb_proxy_addr_policy **out,
                              struct cb_error *err);
void cb__proxy_addr_policy_free(struct cb_proxy_addr_policy *p);

/* Decides whether the proxy may connect to `sa` (AF_INET or AF_INET6; the
 * port is ignored). `host` is the name the address came from, used in the
 * message; NULL when the URL held the address itself. Returns 0 to allow,
 * or -EACCES with a reason such as "blocked: api.example.com resolves to
 * 10.0.0.5, a private address (10.0.0.0/8)". Other families are refused
 * with -EAFNOSUPPORT. */
int cb__proxy_addr_check(const struct cb_proxy_addr_policy *policy, const struct sockaddr *sa,
                         const char *host, struct cb_error *err);

/* Fills a sockaddr for an IP-literal host, so that it can be checked and
 * pinned like a resolved one. Returns 0, or -EINVAL for a DNS name. */
int cb__proxy_addr_from_host(const struct cb_proxy_host *h, uint16_t port,
                             struct sockaddr_storage *ss, socklen_t *len);

#endif
