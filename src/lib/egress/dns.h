/* The DNS stub of a container's network namespace: every UDP query the
 * container sends, to any resolver address, is redirected to it. The core
 * is pure functions over pointer and length (parse one query, build one
 * response, decide the answer); cb_egress_dns_serve() is the socket piece
 * around them. Queries come from a hostile container: counts, lengths and
 * compression pointers are checked against the bytes there are, and no
 * query ever leaves the machine.
 *
 * Answers: an allowed name gets a synthetic address from the container's
 * pool (A and AAAA) or an empty NOERROR answer (any other type); every
 * other name gets NXDOMAIN. Opcodes other than QUERY get NOTIMP,
 * malformed questions FORMERR, names that are not host names REFUSED. */
#ifndef CB_EGRESS_DNS_H
#define CB_EGRESS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "egress/pool.h"
#include "egress/sniff.h"

#define CB_EGRESS_DNS_HEADER_LEN 12
/* The largest query read and response written: plain DNS over UDP. */
#define CB_EGRESS_DNS_UDP_MAX 512
/* Compression pointers followed in one name, at most. */
#define CB_EGRESS_DNS_JUMPS_MAX 16
/* The TTL of synthetic answers: short, so that a pool slot given up
 * (pool.h) is soon asked for again. */
#define CB_EGRESS_DNS_TTL 30

enum {
    CB_EGRESS_DNS_NOERROR = 0,
    CB_EGRESS_DNS_FORMERR = 1,
    CB_EGRESS_DNS_NXDOMAIN = 3,
    CB_EGRESS_DNS_NOTIMP = 4,
    CB_EGRESS_DNS_REFUSED = 5,
};

enum {
    CB_EGRESS_DNS_TYPE_A = 1,
    CB_EGRESS_DNS_TYPE_AAAA = 28,
    CB_EGRESS_DNS_CLASS_IN = 1,
};

/* What the containers module decides and records. name is lowercased. */
struct cb_egress_dns_hooks {
    /* Whether the container may resolve name. */
    bool (*allow)(void *ud, const char *name);
    /* Told of every query answered: the name ("" when unreadable), the
     * type, whether it was allowed, and the rcode sent. May be NULL. */
    void (*audit)(void *ud, const char *name, uint16_t qtype, bool allowed, uint8_t rcode);
    void *ud;
};

/* Answers the query in p[0..n) into out[0..cap) (cap at least
 * CB_EGRESS_DNS_UDP_MAX), asking hooks and the pool. Returns the response's
 * length, or 0 when nothing is to be sent back (not a query). */
size_t cb_egress_dns_answer(const struct cb_egress_dns_hooks *hooks, struct cb_egress_pool *pool,
                            const uint8_t *p, size_t n, uint8_t *out, size_t cap);

/* Most datagrams cb_egress_dns_serve handles in one call, so that one busy
 * container cannot hold an event loop. */
#define CB_EGRESS_DNS_SERVE_BATCH 64

/* Reads the datagrams waiting on a nonblocking UDP socket (up to
 * CB_EGRESS_DNS_SERVE_BATCH) and answers each to its sender. Returns how many
 * were read, or a negative errno when the socket fails (EAGAIN is not a
 * failure; a send that fails drops that answer: the client asks again). */
int cb_egress_dns_serve(int fd, const struct cb_egress_dns_hooks *hooks,
                        struct cb_egress_pool *pool);

#endif
