/* The proxy's host-name lookups, kept for a few seconds. Every request
 * names its upstream by name, and a lookup costs a read of /etc/hosts at
 * least (about 20 us on this project's test VM) and at worst a round trip
 * to a DNS server: a request stream to one host looks its name up once
 * per CB_PROXY_RESOLVE_TTL_MS. Failures are not kept. What is kept are the
 * addresses alone: the address policy still judges them on every request
 * (pipeline.c), so a cached answer never lets more through, and for its
 * lifetime it also pins a name against rebinding. Bounded at
 * CB_PROXY_RESOLVE_MAX_NAMES names. Thread-safe. */
#ifndef CB_PROXY_RESOLVE_H
#define CB_PROXY_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CB_PROXY_RESOLVE_TTL_MS    5000u
#define CB_PROXY_RESOLVE_MAX_NAMES 1024u
#define CB_PROXY_RESOLVE_MAX_ADDRS 16u

struct cb_proxy_addrs {
    size_t n;
    struct sockaddr_storage addr[CB_PROXY_RESOLVE_MAX_ADDRS];
    socklen_t len[CB_PROXY_RESOLVE_MAX_ADDRS];
};

/* A lookup: 0 with out filled (in the resolver's order), or an EAI_*
 * code. */
typedef int (*cb_proxy_lookup_fn)(const char *name, struct cb_proxy_addrs *out);

struct cb_proxy_resolver;

/* lookup NULL: getaddrinfo, for TCP, IPv4 and IPv6. */
struct cb_proxy_resolver *cb__proxy_resolver_new(uint64_t ttl_ms, cb_proxy_lookup_fn lookup);
/* Accepts NULL. */
void cb__proxy_resolver_free(struct cb_proxy_resolver *r);
/* name's addresses: kept ones while fresh, else a lookup's (kept when it
 * succeeds). 0, or the lookup's EAI_* code. */
int cb__proxy_resolve(struct cb_proxy_resolver *r, const char *name, struct cb_proxy_addrs *out);

#endif
