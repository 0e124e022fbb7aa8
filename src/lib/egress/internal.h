/* Cross-file pieces of the egress module. */
#ifndef CB_EGRESS_INTERNAL_H
#define CB_EGRESS_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "egress/dns.h"
#include "egress/pool.h"

/* In the calling thread's network namespace: brings lo up and adds the
 * default routes through it (IPv4 with source 127.0.0.1, without which
 * the source is 0.0.0.0 and connect hangs; IPv6). By rtnetlink, with an
 * acknowledgement checked for each request. Returns 0 or a negative errno. */
int cb__egress_rtnl_setup(struct cb_error *err);

/* ------------------------- DNS wire format (dns.c) -------------------- */

struct cb_egress_dns_query {
    uint16_t id;
    uint16_t flags;                    /* the header's second word as sent */
    char name[CB_EGRESS_NAME_MAX + 1]; /* dotted, no trailing dot, case as sent */
    size_t name_len;                   /* 0 for the root */
    uint16_t qtype, qclass;
};

/* Parses a query. Returns 0; -EINVAL when it is no query to answer at all
 * (shorter than a header, or a response); -ENOTSUP for an opcode other
 * than QUERY (id and flags are set); -EPROTO when the question is
 * malformed (not exactly one question, a label or pointer that runs past
 * the end or loops, a name over 255 bytes; id and flags set); -EILSEQ
 * when the name has a byte other than letters, digits, '-' and '_' (type
 * and class set, the name left empty: it is no name to repeat). */
int cb__egress_dns_parse(const uint8_t *p, size_t n, struct cb_egress_dns_query *q);

/* Writes the response to q into out[0..cap): the header (id, opcode and
 * RD copied; QR, AA and RA set; rcode), the question unless `bare` (for
 * FORMERR, NOTIMP of an opcode and REFUSED, whose question is unreadable
 * or not repeated), and one answer
 * record when addr is not NULL (4 bytes for A, 16 for AAAA, naming the
 * question by a compression pointer). Returns its length or -ENOSPC. */
int cb__egress_dns_build(const struct cb_egress_dns_query *q, bool bare, uint8_t rcode,
                         const uint8_t *addr, size_t addr_len, uint8_t *out, size_t cap);

/* ------------------------------ the pool ------------------------------ */

/* The addresses of name[0..len) (compared as given: the stub lowercases),
 * assigning a slot if it has none; marks it most recently used. Returns
 * 0, or -EINVAL for an empty name or one longer than 253. */
int cb__egress_pool_addr(struct cb_egress_pool *pool, const char *name, size_t len,
                         struct in_addr *v4, struct in6_addr *v6);

#endif
