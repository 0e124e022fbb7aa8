#include "proxy/addr.h"
#include "proxy/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"

struct cb_proxy_addr_policy {
    struct cb_proxy_cidr *exempt;
    size_t n;
};

/* IANA IPv4 Special-Purpose Address Registry (every entry, globally
 * reachable or not), plus multicast and limited broadcast. */
static const struct cb_proxy_special special_v4[] = {
    {"0.0.0.0/8", "a \"this network\" address"},
    {"0.0.0.0/32", "the unspecified address"},
    {"10.0.0.0/8", "a private address"},
    {"100.64.0.0/10", "a carrier-grade NAT (shared) address"},
    {"127.0.0.0/8", "a loopback address"},
    {"169.254.0.0/16", "a link-local address"},
    {"169.254.169.254/32", "the link-local cloud metadata address"},
    {"172.16.0.0/12", "a private address"},
    {"192.0.0.0/24", "an IETF protocol-assignment address"},
    {"192.0.2.0/24", "a documentation address"},
    {"192.31.196.0/24", "an AS112 DNS address"},
    {"192.52.193.0/24", "an AMT relay address"},
    {"192.88.99.0/24", "a deprecated 6to4 relay address"},
    {"192.168.0.0/16", "a private address"},
    {"192.175.48.0/24", "an AS112 DNS address"},
    {"198.18.0.0/15", "a benchmarking address"},
    {"198.51.100.0/24", "a documentation address"},
    {"203.0.113.0/24", "a documentation address"},
    {"224.0.0.0/4", "a multicast address"},
    {"240.0.0.0/4", "a reserved address"},
    {"255.255.255.255/32", "the broadcast address"},
};

/* IANA IPv6 Special-Purpose Address Registry, multicast, site-local, and
 * the complement of global unicast 2000::/3 (::/3, 4000::/2, 8000::/1),
 * which is reserved or special as a whole. ::ffff:0:0/96 is absent on
 * purpose: mapped addresses are judged as IPv4. */
static const struct cb_proxy_special special_v6[] = {
    {"::/3", "a reserved address (outside global unicast 2000::/3)"},
    {"4000::/2", "a reserved address (outside global unicast 2000::/3)"},
    {"8000::/1", "a reserved address (outside global unicast 2000::/3)"},
    {"::/128", "the unspecified address"},
    {"::1/128", "a loopback address"},
    {"::/96", "an IPv4-compatible address (deprecated)"},
    {"64:ff9b::/96", "a NAT64 address"},
    {"64:ff9b:1::/48", "a local-use NAT64 address"},
    {"100::/64", "a discard-only address"},
    {"100:0:0:1::/64", "a dummy address"},
    {"2001::/23", "an IETF protocol-assignment address"},
    {"2001::/32", "a Teredo tunnel address"},
    {"2001:db8::/32", "a documentation address"},
    {"2002::/16", "a 6to4 tunnel address"},
    {"2620:4f:8000::/48", "an AS112 DNS address"},
    {"3fff::/20", "a documentation address"},
    {"5f00::/16", "an SRv6 segment identifier"},
    {"fc00::/7", "a unique-local (private) address"},
    {"fe80::/10", "a link-local address"},
    {"fec0::/10", "a site-local address (deprecated)"},
    {"ff00::/8", "a multicast address"},
};

static struct cb_proxy_cidr parsed_v4[CB_ARRAY_LEN(special_v4)];
static struct cb_proxy_cidr parsed_v6[CB_ARRAY_LEN(special_v6)];
static pthread_once_t parsed_once = PTHREAD_ONCE_INIT;

static void parse_tables(void)
{
    for (size_t i = 0; i < CB_ARRAY_LEN(special_v4); i++)
        cb__proxy_cidr_parse(special_v4[i].cidr, strlen(special_v4[i].cidr), &parsed_v4[i], NULL);
    for (size_t i = 0; i < CB_ARRAY_LEN(special_v6); i++)
        cb__proxy_cidr_parse(special_v6[i].cidr, strlen(special_v6[i].cidr), &parsed_v6[i], NULL);
}

static size_t addr_len(int family)
{
    return family == AF_INET ? 4 : 16;
}

bool cb__proxy_cidr_contains(const struct cb_proxy_cidr *c, int family, const uint8_t *addr)
{
    if (c->family != family)
        return false;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

static int parse_prefix(const char *p, size_t n, unsigned max, unsigned *out)
{
    uint64_t v;
    if (n == 0 || n > 3 || (n > 1 && p[0] == '0') || cb_parse_u64(p, n, &v) < 0 || v > max)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* Whether any bit after the prefix is set. */
static bool host_bits_set(const struct cb_proxy_cidr *c)
{
    size_t n = addr_len(c->family);
    for (size_t i = c->prefix / 8; i < n; i++) {
        unsigned keep = i == c->prefix / 8 ? c->prefix % 8 : 0;
        uint8_t mask = (uint8_t)(0xff >> keep);
        if (c->addr[i] & mask)
            return true;
    }
    return false;
}

/* Prints the block with its host bits cleared, for the error hint. */
static void masked_text(const struct cb_proxy_cidr *c, char *buf, size_t size)
{
    struct cb_proxy_cidr m = *c;
    size_t n = addr_len(c->family);
    for (size_t i = c->prefix / 8; i < n; i++) {
        unsigned keep = i == c->prefix / 8 ? c->prefix % 8 : 0;
        m.addr[i] &= (uint8_t) ~(0xff >> keep);
    }
    char a[INET6_ADDRSTRLEN];
    inet_ntop(m.family, m.addr, a, sizeof(a));
    snprintf(buf, size, "%s/%u", a, m.prefix);
}

/* A block such as 127.0.0.1/8 is almost always a typo; say what was meant. */
static int check_host_bits(const struct cb_proxy_cidr *c, const char *s, size_t len,
                           struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    char hint[INET6_ADDRSTRLEN + 8];
    if (!host_bits_set(c))
        return 0;
    masked_text(c, hint, sizeof(hint));
    return cb_error_set(err, -EINVAL,
                        "\"%s\" has address bits set past the prefix; did you mean %s?",
                        cb__proxy_quote(s, len, q), hint);
}

int cb__proxy_cidr_parse(const char *s, size_t len, struct cb_proxy_cidr *out, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    char a[INET6_ADDRSTRLEN];
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    memset(out, 0, sizeof(*out));
    if (slash == NULL)
        return cb_error_set(err, -EINVAL,
                            "\"%s\" is not a CIDR block: write ADDRESS/PREFIX, for example "
                            "127.0.0.0/8 or ::1/128",
                            cb__proxy_quote(s, len, q));
    if (alen == 0 || alen >= sizeof(a))
        goto bad_addr;
    memcpy(a, s, alen);
    a[alen] = '\0';
    out->family = memchr(a, ':', alen) ? AF_INET6 : AF_INET;
    if (inet_pton(out->family, a, out->addr) != 1)
        goto bad_addr;
    if (parse_prefix(slash + 1, len - alen - 1, out->family == AF_INET ? 32 : 128, &out->prefix) <
        0)
        return cb_error_set(err, -EINVAL,
                            "\"%s\" has a bad prefix length: use a number from 0 to %d",
                            cb__proxy_quote(s, len, q), out->family == AF_INET ? 32 : 128);
    return check_host_bits(out, s, len, err);
bad_addr:
    return cb_error_set(err, -EINVAL,
                        "\"%s\" does not start with a valid IPv4 or IPv6 address (dotted "
                        "decimal without leading zeros, or IPv6 without a zone id)",
                        cb__proxy_quote(s, len, q));
}

const struct cb_proxy_special *cb__proxy_addr_classify(int family, const uint8_t *addr)
{
    pthread_once(&parsed_once, parse_tables);
    const struct cb_proxy_special *table = family == AF_INET ? special_v4 : special_v6;
    const struct cb_proxy_cidr *parsed = family == AF_INET ? parsed_v4 : parsed_v6;
    size_t n = family == AF_INET ? CB_ARRAY_LEN(special_v4) : CB_ARRAY_LEN(special_v6);
    const struct cb_proxy_special *best = NULL;
    unsigned best_prefix = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cb__proxy_cidr_contains(&parsed[i], family, addr))
            continue;
        if (best == NULL || parsed[i].prefix > best_prefix) {
            best = &table[i];
            best_prefix = parsed[i].prefix;
        }
    }
    return best;
}

int cb__proxy_addr_policy_new(char *const *cidrs, size_t n, struct cb_proxy_addr_policy **out,
                              struct cb_error *err)
{
    struct cb_proxy_addr_policy *p = cb_xcalloc(1, sizeof(*p));
    p->exempt = cb_xcalloc(n ? n : 1, sizeof(*p->exempt));
    for (size_t i = 0; i < n; i++) {
        int r = cb__proxy_cidr_parse(cidrs[i], strlen(cidrs[i]), &p->exempt[i], err);
        if (r < 0) {
            cb_error_prefix(err, "proxy.allow_private_cidrs entry %zu", i + 1);
            cb__proxy_addr_policy_free(p);
            *out = NULL;
            return r;
        }
    }
    p->n = n;
    *out = p;
    return 0;
}

void cb__proxy_addr_policy_free(struct cb_proxy_addr_policy *p)
{
    if (p == NULL)
        return;
    free(p->exempt);
    free(p);
}

static bool is_exempt(const struct cb_proxy_addr_policy *p, int family, const uint8_t *addr)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (cb__proxy_cidr_contains(&p->exempt[i], family, addr))
            return true;
    return false;
}

/* The address under judgement: the bytes as given, and for an IPv4-mapped
 * IPv6 address also the IPv4 address it carries. */
struct judged {
    int family;
    uint8_t addr[16];
    char text[INET6_ADDRSTRLEN];
    bool mapped;
    uint8_t v4[4];
    char v4_text[INET_ADDRSTRLEN];
};

static int judged_from(const struct sockaddr *sa, struct judged *j)
{
    static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(j, 0, sizeof(*j));
    if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return -EAFNOSUPPORT;
    j->family = sa->sa_family;
    if (j->family == AF_INET)
        memcpy(j->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    else
        memcpy(j->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    inet_ntop(j->family, j->addr, j->text, sizeof(j->text));
    if (j->family == AF_INET6 && memcmp(j->addr, mapped_prefix, 12) == 0) {
        j->mapped = true;
        memcpy(j->v4, j->addr + 12, 4);
        inet_ntop(AF_INET, j->v4, j->v4_text, sizeof(j->v4_text));
    }
    return 0;
}

int cb__proxy_addr_check(const struct cb_proxy_addr_policy *policy, const struct sockaddr *sa,
                         const char *host, struct cb_error *err)
{
    char hq[CB__PROXY_QUOTE_BUF];
    char mapped[INET_ADDRSTRLEN + 40] = "";
    struct judged j;
    if (judged_from(sa, &j) < 0)
        return cb_error_set(err, -EAFNOSUPPORT,
                            "blocked: %s resolves to an address that is neither IPv4 nor IPv6",
                            host ? cb__proxy_quote(host, strlen(host), hq) : "the host");
    if (is_exempt(policy, j.family, j.addr) || (j.mapped && is_exempt(policy, AF_INET, j.v4)))
        return 0;
    const struct cb_proxy_special *sp = j.mapped ? cb__proxy_addr_classify(AF_INET, j.v4)
                                                 : cb__proxy_addr_classify(j.family, j.addr);
    if (sp == NULL)
        return 0;
    if (j.mapped)
        snprintf(mapped, sizeof(mapped), " an IPv4-mapped form of %s,", j.v4_text);
    if (host && strcmp(host, j.text) != 0)
        return cb_error_set(err, -EACCES, "blocked: %s resolves to %s,%s %s (%s)",
                            cb__proxy_quote(host, strlen(host), hq), j.text, mapped, sp->what,
                            sp->cidr);
    return cb_error_set(err, -EACCES, "blocked: %s is%s %s (%s)", j.text, mapped, sp->what,
                        sp->cidr);
}

int cb__proxy_addr_from_host(const struct cb_proxy_host *h, uint16_t port,
                             struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (h->kind == CB_PROXY_HOST_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, h->ip, 4);
        *len = sizeof(*in);
        return 0;
    }
    if (h->kind == CB_PROXY_HOST_IPV6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        memcpy(&in6->sin6_addr, h->ip, 16);
        *len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}
