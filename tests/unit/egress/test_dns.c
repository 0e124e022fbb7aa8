/* The DNS stub's core: query parsing (hostile inputs included), response
 * building and the answers it decides, with a fake-IP pool. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "egress/dns.h"
#include "egress/internal.h"

struct msg {
    uint8_t b[1024];
    size_t n;
};

static void put8(struct msg *m, unsigned v)
{
    m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void header(struct msg *m, unsigned id, unsigned flags, unsigned qd)
{
    m->n = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, qd);
    put16(m, 0);
    put16(m, 0);
    put16(m, 0);
}

/* Appends a dotted name as labels and a zero. */
static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)l);
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (dot ? 1 : 0);
    }
    put8(m, 0);
}

/* A standard query with RD for name and type. */
static void query(struct msg *m, unsigned id, const char *name, unsigned type)
{
    header(m, id, 0x0100, 1);
    put_name(m, name);
    put16(m, type);
    put16(m, CB_EGRESS_DNS_CLASS_IN);
}

static int parse(const struct msg *m, struct cb_egress_dns_query *q)
{
    return cb__egress_dns_parse(m->b, m->n, q);
}

static void parse_plain_query(void **state)
{
    (void)state;
    struct msg m;
    struct cb_egress_dns_query q;
    query(&m, 0xbeef, "Api.Example.com", CB_EGRESS_DNS_TYPE_AAAA);
    put16(&m, 0); /* trailing bytes (an additional record) are ignored */
    assert_int_equal(parse(&m, &q), 0);
    assert_int_equal(q.id, 0xbeef);
    assert_string_equal(q.name, "Api.Example.com");
    assert_int_equal(q.name_len, 15);
    assert_int_equal(q.qtype, CB_EGRESS_DNS_TYPE_AAAA);
    assert_int_equal(q.qclass, CB_EGRESS_DNS_CLASS_IN);
    query(&m, 1, "", CB_EGRESS_DNS_TYPE_A);
    assert_int_equal(parse(&m, &q), 0);
    assert_int_equal(q.name_len, 0);
}

static void parse_rejects_non_queries(void **state)
{
    (void)state;
    struct msg m;
    struct cb_egress_dns_query q;
    query(&m, 1, "a.example", 1);
    for (size_t n = 0; n < CB_EGRESS_DNS_HEADER_LEN; n++)
        assert_int_equal(cb__egress_dns_parse(m.b, n, &q), -EINVAL);
    m.b[2] |= 0x80; /* a response */
    assert_int_equal(parse(&m, &q), -EINVAL);
    query(&m, 7, "a.example", 1);
    m.b[2] |= 0x10; /* opcode 2, STATUS */
    assert_int_equal(parse(&m, &q), -ENOTSUP);
    assert_int_equal(q.id, 7);
}

static void parse_rejects_malformed_questions(void **state)
{
    (void)state;
    struct msg m, good;
    struct cb_egress_dns_query q;
    query(&good, 1, "a.example", 1);
    /* Truncated anywhere in the question. */
    for (size_t n = CB_EGRESS_DNS_HEADER_LEN; n < good.n; n++)
        assert_int_equal(cb__egress_dns_parse(good.b, n, &q), -EPROTO);
    /* Not exactly one question. */
    for (unsigned qd = 0; qd <= 2; qd += 2) {
        m = good;
        m.b[5] = (uint8_t)qd;
        assert_int_equal(parse(&m, &q), -EPROTO);
    }
    /* A label that runs past the end; the extended label types. */
    m = good;
    m.b[12] = 60;
    assert_int_equal(parse(&m, &q), -EPROTO);
    m = good;
    m.b[12] = 0x41;
    assert_int_equal(parse(&m, &q), -EPROTO);
    m = good;
    m.b[12] = 0x81;
    assert_int_equal(parse(&m, &q), -EPROTO);
}

static void parse_rejects_long_names(void **state)
{
    (void)state;
    struct msg m;
    struct cb_egress_dns_query q;
    char name[300];
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters: 255 on the wire. */
    memset(name, 'a', sizeof(name));
    name[63] = name[127] = name[191] = '.';
    name[253] = '\0';
    query(&m, 1, name, 1);
    assert_int_equal(parse(&m, &q), 0);
    assert_int_equal(q.name_len, 253);
    name[253] = 'a';
    name[254] = '\0';
    query(&m, 1, name, 1);
    assert_int_equal(parse(&m, &q), -EPROTO);
    /* A 64-byte label. */
    memset(name, 'b', 64);
    name[64] = '\0';
    query(&m, 1, name, 1);
    m.b[12] = 64;
    assert_int_equal(parse(&m, &q), -EPROTO);
}

static void parse_compression_pointers(void **state)
{
    (void)state;
    struct msg m;
    struct cb_egress_dns_query q;
    /* A pointer to itself, forwards, and past the end. */
    const unsigned targets[] = {12, 13, 14, 0x3fff};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        header(&m, 1, 0, 1);
        put16(&m, 0xc000 | targets[i]);
        put16(&m, 1);
        put16(&m, 1);
        assert_int_equal(parse(&m, &q), -EPROTO);
    }
    /* A label then a pointer back to the label: a loop. */
    header(&m, 1, 0, 1);
    put8(&m, 1);
    put8(&m, 'a');
    put16(&m, 0xc00c);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -EPROTO);
    /* A pointer cut in half. */
    header(&m, 1, 0, 1);
    put8(&m, 0xc0);
    assert_int_equal(parse(&m, &q), -EPROTO);
    /* Backwards into the header: legal structure, bytes that are no host
     * name ("\x00\x01" is read as a label). */
    header(&m, 0x0100, 0, 1);
    put16(&m, 0xc000);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -EILSEQ);
    assert_string_equal(q.name, "");
    assert_int_equal(q.qtype, 1);
}

static void parse_refuses_non_host_bytes(void **state)
{
    (void)state;
    struct msg m;
    struct cb_egress_dns_query q;
    const char *bad[] = {"a b.example", "a\x01.example", "caf\xc3\xa9.example", "a/b", "*.x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        query(&m, 1, bad[i], 1);
        assert_int_equal(parse(&m, &q), -EILSEQ);
        assert_string_equal(q.name, "");
    }
    /* A dot inside a label would change the name's meaning. */
    header(&m, 1, 0, 1);
    put8(&m, 3);
    memcpy(m.b + m.n, "a.b", 3);
    m.n += 3;
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -EILSEQ);
}

/* The answer to one query through the decision code. */
struct seen {
    char name[256];
    uint16_t qtype;
    bool allowed;
    uint8_t rcode;
    int calls;
};

static bool allow_example(void *ud, const char *name)
{
    (void)ud;
    size_t n = strlen(name);
    return strcmp(name, "example.com") == 0 ||
           (n > 12 && strcmp(name + n - 12, ".example.com") == 0);
}

static void record(void *ud, const char *name, uint16_t qtype, bool allowed, uint8_t rcode)
{
    struct seen *s = ud;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->qtype = qtype;
    s->allowed = allowed;
    s->rcode = rcode;
    s->calls++;
}

static struct seen seen;
static struct cb_egress_pool *pool;
static const struct cb_egress_dns_hooks hooks = {allow_example, record, &seen};

static size_t answer(const struct msg *m, uint8_t *out)
{
    memset(&seen, 0, sizeof(seen));
    return cb_egress_dns_answer(&hooks, pool, m->b, m->n, out, CB_EGRESS_DNS_UDP_MAX);
}

static int setup(void **state)
{
    (void)state;
    pool = cb_egress_pool_new(16);
    return pool == NULL;
}

static int teardown(void **state)
{
    (void)state;
    cb_egress_pool_free(pool);
    return 0;
}

static void answer_allowed_a_and_aaaa(void **state)
{
    (void)state;
    struct msg m;
    uint8_t out[CB_EGRESS_DNS_UDP_MAX];
    query(&m, 0x1234, "API.example.com", CB_EGRESS_DNS_TYPE_A);
    size_t n = answer(&m, out);
    /* Header, the question as asked (case kept), one A record. */
    assert_int_equal(n, m.n + 16);
    const uint8_t hdr[] = {0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
    assert_memory_equal(out, hdr, sizeof(hdr));
    assert_memory_equal(out + 12, m.b + 12, m.n - 12);
    const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, CB_EGRESS_DNS_TTL, 0, 4, 198, 18, 0, 1};
    assert_memory_equal(out + m.n, rr, sizeof(rr));
    assert_string_equal(seen.name, "api.example.com");
    assert_true(seen.allowed);
    assert_int_equal(seen.rcode, CB_EGRESS_DNS_NOERROR);

    query(&m, 0x1235, "api.example.com", CB_EGRESS_DNS_TYPE_AAAA);
    n = answer(&m, out);
    assert_int_equal(n, m.n + 28);
    struct in6_addr want;
    inet_pton(AF_INET6, "fd63:6c61:7762:6f78::1", &want);
    assert_int_equal(out[m.n + 3], CB_EGRESS_DNS_TYPE_AAAA);
    assert_memory_equal(out + m.n + 12, want.s6_addr, 16);

    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "198.18.0.1", &sin.sin_addr);
    char name[256];
    assert_int_equal(cb_egress_pool_name(pool, (struct sockaddr *)&sin, name, sizeof(name)), 15);
    assert_string_equal(name, "api.example.com");
}

static void answer_denied_is_nxdomain(void **state)
{
    (void)state;
    struct msg m;
    uint8_t out[CB_EGRESS_DNS_UDP_MAX];
    query(&m, 9, "evil.test", CB_EGRESS_DNS_TYPE_A);
    size_t n = answer(&m, out);
    assert_int_equal(n, m.n);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_NXDOMAIN);
    assert_int_equal(out[7], 0); /* no answer */
    assert_false(seen.allowed);
    assert_string_equal(seen.name, "evil.test");
    query(&m, 9, "", CB_EGRESS_DNS_TYPE_A);
    n = answer(&m, out);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_NXDOMAIN);
}

static void answer_other_types_and_errors(void **state)
{
    (void)state;
    struct msg m;
    uint8_t out[CB_EGRESS_DNS_UDP_MAX];
    /* HTTPS (65) for an allowed name: NOERROR, no records. */
    query(&m, 2, "example.com", 65);
    assert_int_equal(answer(&m, out), m.n);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_NOERROR);
    assert_int_equal(out[7], 0);
    /* AXFR: NOTIMP. Class CH: NOTIMP. */
    query(&m, 3, "example.com", 252);
    answer(&m, out);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_NOTIMP);
    query(&m, 3, "example.com", 1);
    m.b[m.n - 1] = 3;
    answer(&m, out);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_NOTIMP);
    /* Opcode STATUS: NOTIMP, bare, opcode echoed. */
    query(&m, 4, "example.com", 1);
    m.b[2] |= 0x10;
    assert_int_equal(answer(&m, out), CB_EGRESS_DNS_HEADER_LEN);
    assert_int_equal(out[2], 0x80 | 0x10 | 0x04 | 0x01);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_NOTIMP);
    /* Two questions: FORMERR. A bad name: REFUSED. */
    query(&m, 5, "example.com", 1);
    m.b[5] = 2;
    assert_int_equal(answer(&m, out), CB_EGRESS_DNS_HEADER_LEN);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_FORMERR);
    query(&m, 6, "ex ample.com", 1);
    assert_int_equal(answer(&m, out), CB_EGRESS_DNS_HEADER_LEN);
    assert_int_equal(out[3] & 0xf, CB_EGRESS_DNS_REFUSED);
    assert_int_equal(seen.calls, 1);
    /* A response or a runt: nothing is sent. */
    query(&m, 7, "example.com", 1);
    m.b[2] |= 0x80;
    assert_int_equal(answer(&m, out), 0);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(cb_egress_dns_answer(&hooks, pool, m.b, 3, out, sizeof(out)), 0);
}

static void build_checks_room(void **state)
{
    (void)state;
    struct cb_egress_dns_query q = {.id = 1, .qtype = 1, .qclass = 1};
    memcpy(q.name, "a.example", 10);
    q.name_len = 9;
    uint8_t out[64], addr[4] = {198, 18, 0, 1};
    int full = cb__egress_dns_build(&q, false, 0, addr, 4, out, sizeof(out));
    assert_int_equal(full, 12 + 11 + 4 + 16);
    for (size_t cap = 0; cap < (size_t)full; cap++)
        assert_int_equal(cb__egress_dns_build(&q, false, 0, addr, 4, out, cap), -ENOSPC);
    assert_int_equal(cb__egress_dns_build(&q, false, 0, addr, 5, out, sizeof(out)), -ENOSPC);
    /* Names the builder cannot write. */
    const char *bad[] = {"a..b", ".a", "a."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        q.name_len = strlen(bad[i]);
        memcpy(q.name, bad[i], q.name_len + 1);
        assert_int_equal(cb__egress_dns_build(&q, false, 0, NULL, 0, out, sizeof(out)), -ENOSPC);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_plain_query),
        cmocka_unit_test(parse_rejects_non_queries),
        cmocka_unit_test(parse_rejects_malformed_questions),
        cmocka_unit_test(parse_rejects_long_names),
        cmocka_unit_test(parse_compression_pointers),
        cmocka_unit_test(parse_refuses_non_host_bytes),
        cmocka_unit_test(answer_allowed_a_and_aaaa),
        cmocka_unit_test(answer_denied_is_nxdomain),
        cmocka_unit_test(answer_other_types_and_errors),
        cmocka_unit_test(build_checks_room),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
