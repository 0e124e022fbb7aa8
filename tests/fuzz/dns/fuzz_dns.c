/* libFuzzer target for the DNS stub's core (egress/dns.c, dns_stub.c): the
 * input is one UDP datagram from a container. Invariants (a broken one
 * calls __builtin_trap()):
 *   - a parsed name is at most 253 bytes, NUL-terminated at name_len, and
 *     only letters, digits, '-', '_' and inner dots;
 *   - the answer fits its buffer, carries the query's id, has QR set, and
 *     for a well-formed question echoes it: parsed again (QR cleared) it
 *     gives the same name, type and class;
 *   - an A or AAAA answer's address maps back, through the pool, to the
 *     name lowercased. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "egress/dns.h"
#include "egress/internal.h"

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

/* Names of an even length are allowed, so that both paths run. */
static bool allow_even(void *ud, const char *name)
{
    (void)ud;
    return strlen(name) % 2 == 0;
}

static void check_name(const struct cb_egress_dns_query *q)
{
    check(q->name_len <= CB_EGRESS_NAME_MAX && q->name[q->name_len] == '\0');
    check(strlen(q->name) == q->name_len);
    for (size_t i = 0; i < q->name_len; i++) {
        char c = q->name[i];
        bool host = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
        check(host || (c == '.' && i > 0 && i + 1 < q->name_len && q->name[i + 1] != '.'));
    }
}

/* The answer record's address maps back to the name. */
static void check_pool(struct cb_egress_pool *pool, const struct cb_egress_dns_query *q,
                       const uint8_t *rr, size_t rr_len)
{
    struct sockaddr_storage ss = {0};
    if (rr_len == 12 + 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, rr + 12, 4);
    } else {
        check(rr_len == 12 + 16);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, rr + 12, 16);
    }
    char name[CB_EGRESS_NAME_MAX + 1];
    int n = cb_egress_pool_name(pool, (struct sockaddr *)&ss, name, sizeof(name));
    check(n >= 0 && (size_t)n == q->name_len && strcasecmp(name, q->name) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cb_egress_pool *pool;
    if (pool == NULL)
        pool = cb_egress_pool_new(8);
    struct cb_egress_dns_query q;
    int rc = cb__egress_dns_parse(data, size, &q);
    check(rc == 0 || rc == -EINVAL || rc == -ENOTSUP || rc == -EPROTO || rc == -EILSEQ);
    if (rc == 0)
        check_name(&q);
    const struct cb_egress_dns_hooks hooks = {.allow = allow_even};
    uint8_t out[CB_EGRESS_DNS_UDP_MAX];
    size_t n = cb_egress_dns_answer(&hooks, pool, data, size, out, sizeof(out));
    check(n <= sizeof(out));
    check((n == 0) == (rc == -EINVAL));
    if (n == 0)
        return 0;
    check(n >= CB_EGRESS_DNS_HEADER_LEN && out[0] == data[0] && out[1] == data[1] &&
          (out[2] & 0x80));
    if (rc != 0)
        return 0;
    uint8_t again[CB_EGRESS_DNS_UDP_MAX];
    memcpy(again, out, n);
    again[2] &= 0x7f;
    again[6] = again[7] = 0; /* one question and nothing else */
    struct cb_egress_dns_query r;
    size_t qend = CB_EGRESS_DNS_HEADER_LEN + (q.name_len ? q.name_len + 2 : 1) + 4;
    check(n >= qend && cb__egress_dns_parse(again, qend, &r) == 0);
    check(r.name_len == q.name_len && memcmp(r.name, q.name, q.name_len) == 0);
    check(r.qtype == q.qtype && r.qclass == q.qclass);
    if (out[7] == 1)
        check_pool(pool, &q, out + qend, n - qend);
    return 0;
}
