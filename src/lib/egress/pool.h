/* A container's fake-IP pool: the DNS stub answers an allowed name with a
 * synthetic address from it and remembers the name behind the address, so
 * that the container never learns a real address and the proxy can map
 * any redirected connection's original destination back to a name, even
 * for a client that sends neither Host nor SNI.
 *
 * Slot i holds one name and stands for two addresses: 198.18.0.0 + 1 + i
 * (198.18.0.0/15, the benchmarking range, which nothing real answers) and
 * fd63:6c61:7762:6f78::1 + i (a ULA /64). Neither is loopback, so the
 * namespace's rules redirect connections to them to the proxy. The pool
 * holds at most its capacity of names; past that the least recently used
 * name (looked up by name or by address) gives its slot up. Safe to call
 * from several threads. */
#ifndef CB_EGRESS_POOL_H
#define CB_EGRESS_POOL_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* 198.18.0.0/15 has 2^17 addresses; the first and the last are not used. */
#define CB_EGRESS_POOL_MAX ((1u << 17) - 2)

struct cb_egress_pool;

/* A pool of `capacity` names (1 to CB_EGRESS_POOL_MAX, else NULL). */
struct cb_egress_pool *cb_egress_pool_new(uint32_t capacity);
void cb_egress_pool_free(struct cb_egress_pool *pool);

/* The name behind a pool address (an AF_INET or AF_INET6 sockaddr, as
 * cb_egress_original_dst gives it; the port is ignored), copied with a
 * NUL into out[0..cap); marks it most recently used. Returns its length,
 * -ENOENT when the address is not one the pool handed out now (outside
 * the ranges, or its slot is free), -ENOSPC when out is too small. */
int cb_egress_pool_name(struct cb_egress_pool *pool, const struct sockaddr *sa, char *out,
                        size_t cap);

#endif
