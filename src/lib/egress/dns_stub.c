/* The stub's decisions and its socket loop. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "egress/dns.h"
#include "egress/internal.h"

/* Query types that ask for a zone transfer or mailbox records: not a
 * lookup, so NOTIMP rather than an empty answer. */
static bool type_not_implemented(uint16_t t)
{
    return t == 251 /* IXFR */ || t == 252 /* AXFR */ || t == 253 /* MAILB */ ||
           t == 254 /* MAILA */;
}

static void audit_query(const struct cb_egress_dns_hooks *h, const char *name, uint16_t qtype,
                        bool allowed, uint8_t rcode)
{
    if (h->audit != NULL)
        h->audit(h->ud, name, qtype, allowed, rcode);
}

/* The answer to a well-formed question. */
static int answer_question(const struct cb_egress_dns_hooks *h, struct cb_egress_pool *pool,
                           struct cb_egress_dns_query *q, uint8_t *out, size_t cap)
{
    char lower[CB_EGRESS_NAME_MAX + 1];
    for (size_t i = 0; i <= q->name_len; i++)
        lower[i] =
            (char)(q->name[i] >= 'A' && q->name[i] <= 'Z' ? q->name[i] - 'A' + 'a' : q->name[i]);
    if (q->qclass != CB_EGRESS_DNS_CLASS_IN || type_not_implemented(q->qtype)) {
        audit_query(h, lower, q->qtype, false, CB_EGRESS_DNS_NOTIMP);
        return cb__egress_dns_build(q, false, CB_EGRESS_DNS_NOTIMP, NULL, 0, out, cap);
    }
    if (q->name_len == 0 || !h->allow(h->ud, lower)) {
        audit_query(h, lower, q->qtype, false, CB_EGRESS_DNS_NXDOMAIN);
        return cb__egress_dns_build(q, false, CB_EGRESS_DNS_NXDOMAIN, NULL, 0, out, cap);
    }
    struct in_addr v4;
    struct in6_addr v6;
    const uint8_t *addr = NULL;
    size_t addr_len = 0;
    if (q->qtype == CB_EGRESS_DNS_TYPE_A || q->qtype == CB_EGRESS_DNS_TYPE_AAAA) {
        if (cb__egress_pool_addr(pool, lower, q->name_len, &v4, &v6) < 0) {
            audit_query(h, lower, q->qtype, false, CB_EGRESS_DNS_REFUSED);
            return cb__egress_dns_build(q, false, CB_EGRESS_DNS_REFUSED, NULL, 0, out, cap);
        }
        addr = q->qtype == CB_EGRESS_DNS_TYPE_A ? (const uint8_t *)&v4 : v6.s6_addr;
        addr_len = q->qtype == CB_EGRESS_DNS_TYPE_A ? 4 : 16;
    }
    audit_query(h, lower, q->qtype, true, CB_EGRESS_DNS_NOERROR);
    return cb__egress_dns_build(q, false, CB_EGRESS_DNS_NOERROR, addr, addr_len, out, cap);
}

size_t cb_egress_dns_answer(const struct cb_egress_dns_hooks *h, struct cb_egress_pool *pool,
                            const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    struct cb_egress_dns_query q;
    int rc = cb__egress_dns_parse(p, n, &q);
    if (rc == -EINVAL)
        return 0;
    if (rc == 0)
        rc = answer_question(h, pool, &q, out, cap);
    else {
        uint8_t rcode = rc == -ENOTSUP  ? CB_EGRESS_DNS_NOTIMP
                        : rc == -EILSEQ ? CB_EGRESS_DNS_REFUSED
                                        : CB_EGRESS_DNS_FORMERR;
        audit_query(h, "", q.qtype, false, rcode);
        rc = cb__egress_dns_build(&q, true, rcode, NULL, 0, out, cap);
    }
    return rc > 0 ? (size_t)rc : 0;
}

int cb_egress_dns_serve(int fd, const struct cb_egress_dns_hooks *hooks,
                        struct cb_egress_pool *pool)
{
    uint8_t in[CB_EGRESS_DNS_UDP_MAX], out[CB_EGRESS_DNS_UDP_MAX];
    int served = 0;
    while (served < CB_EGRESS_DNS_SERVE_BATCH) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);
        ssize_t r = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from,
                             &from_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? served : -errno;
        served++;
        /* A query longer than a plain UDP query is not one we answer. */
        if ((size_t)r > sizeof(in))
            continue;
        size_t len = cb_egress_dns_answer(hooks, pool, in, (size_t)r, out, sizeof(out));
        if (len > 0)
            sendto(fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&from, from_len);
    }
    return served;
}
