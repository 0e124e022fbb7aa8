/* The first-bytes classifier and the ClientHello SNI parser, with
 * well-formed and hostile inputs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "egress/sniff.h"
#include "hello.h"

static enum cb_egress_proto classify(const char *s)
{
    return cb_egress_classify((const uint8_t *)s, strlen(s));
}

static void classify_http_request_lines(void **state)
{
    (void)state;
    assert_int_equal(classify("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), CB_EGRESS_HTTP);
    assert_int_equal(classify("POST http://a.example/x?y HTTP/1.0\r\n"), CB_EGRESS_HTTP);
    assert_int_equal(classify("CONNECT a.example:443 HTTP/1.1\r\n"), CB_EGRESS_HTTP);
    assert_int_equal(classify("M-SEARCH * HTTP/1.1\r\n"), CB_EGRESS_HTTP);
}

static void classify_prefixes_need_more(void **state)
{
    (void)state;
    const char *line = "GET /index.html HTTP/1.1\r\n";
    for (size_t n = 0; n < strlen(line); n++)
        assert_int_equal(cb_egress_classify((const uint8_t *)line, n), CB_EGRESS_NEED_MORE);
    uint8_t tls = 0x16;
    assert_int_equal(cb_egress_classify(&tls, 1), CB_EGRESS_NEED_MORE);
}

static void classify_tls(void **state)
{
    (void)state;
    const uint8_t a[] = {0x16, 0x03}, b[] = {0x16, 0x03, 0x01, 0x02, 0x00};
    const uint8_t not_hs[] = {0x17, 0x03, 0x03}, old[] = {0x16, 0x02};
    assert_int_equal(cb_egress_classify(a, sizeof(a)), CB_EGRESS_TLS);
    assert_int_equal(cb_egress_classify(b, sizeof(b)), CB_EGRESS_TLS);
    assert_int_equal(cb_egress_classify(not_hs, sizeof(not_hs)), CB_EGRESS_OTHER);
    assert_int_equal(cb_egress_classify(old, sizeof(old)), CB_EGRESS_OTHER);
}

static void classify_refuses_other_bytes(void **state)
{
    (void)state;
    const char *bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n",
        "GET  / HTTP/1.1\r\n",
        " GET / HTTP/1.1\r\n",
        "GET / HTTP/2.0\r\n",
        "GET / HTTP/1.1\n",
        "GET /\x01 HTTP/1.1\r\n",
        "GET / HTTP/1.x\r\n",
        "GET / HTTP/1.1 \r\n",
        "G(T / HTTP/1.1\r\n",
        "GET / FTP/1.1\r\n",
        "\r\n",
        "GET\t/ HTTP/1.1\r\n",
        "GET / HTTP/1.1\rX",
        "GET /\x80 HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(classify(bad[i]), CB_EGRESS_OTHER);
    const uint8_t nul[] = {0, 'G'};
    assert_int_equal(cb_egress_classify(nul, sizeof(nul)), CB_EGRESS_OTHER);
}

static void classify_bounds_the_request_line(void **state)
{
    (void)state;
    static uint8_t big[CB_EGRESS_PEEK_MAX];
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', sizeof(big) - 5);
    assert_int_equal(cb_egress_classify(big, sizeof(big) - 1), CB_EGRESS_NEED_MORE);
    assert_int_equal(cb_egress_classify(big, sizeof(big)), CB_EGRESS_OTHER);
}

static struct bytes in, exts, hs;

static int sni(const struct bytes *b, char *name)
{
    return cb_egress_tls_sni(b->b, b->n, name);
}

static void sni_found_and_lowercased(void **state)
{
    (void)state;
    char name[CB_EGRESS_NAME_MAX + 1];
    hello_with_sni(&in, "Api.Example.COM");
    assert_int_equal(sni(&in, name), 1);
    assert_string_equal(name, "api.example.com");
    hello_with_sni(&in, "a_b-c.d0");
    assert_int_equal(sni(&in, name), 1);
    assert_string_equal(name, "a_b-c.d0");
}

static void sni_absent(void **state)
{
    (void)state;
    char name[CB_EGRESS_NAME_MAX + 1] = "x";
    hs.n = in.n = 0;
    put_hello(&hs, NULL);
    put_records(&in, &hs, 16384);
    assert_int_equal(sni(&in, name), 0);
    assert_string_equal(name, "");
    exts.n = hs.n = in.n = 0;
    put_u16(&exts, 43);
    put_u16(&exts, 3);
    put_u8(&exts, 2);
    put_u16(&exts, 0x0304);
    put_hello(&hs, &exts);
    put_records(&in, &hs, 16384);
    assert_int_equal(sni(&in, name), 0);
}

static void sni_over_fragmented_records(void **state)
{
    (void)state;
    char name[CB_EGRESS_NAME_MAX + 1];
    const size_t frags[] = {1, 3, 4, 7, 100};
    for (size_t f = 0; f < sizeof(frags) / sizeof(frags[0]); f++) {
        exts.n = hs.n = in.n = 0;
        put_sni_ext(&exts, "frag.example");
        put_hello(&hs, &exts);
        put_records(&in, &hs, frags[f]);
        assert_int_equal(sni(&in, name), 1);
        assert_string_equal(name, "frag.example");
    }
}

static void sni_truncated_needs_more(void **state)
{
    (void)state;
    char name[CB_EGRESS_NAME_MAX + 1];
    hello_with_sni(&in, "trunc.example");
    for (size_t n = 0; n < in.n; n++)
        assert_int_equal(cb_egress_tls_sni(in.b, n, name), -EAGAIN);
    assert_int_equal(cb_egress_tls_sni(in.b, in.n, name), 1);
}

/* Rewrites byte `at` of the single-record hello and expects -EINVAL. */
static void expect_invalid_with(size_t at, uint8_t v)
{
    char name[CB_EGRESS_NAME_MAX + 1];
    hello_with_sni(&in, "bad.example");
    in.b[at] = v;
    assert_int_equal(sni(&in, name), -EINVAL);
    assert_string_equal(name, "");
}

static void sni_rejects_malformed_headers(void **state)
{
    (void)state;
    expect_invalid_with(0, 0x17); /* not a handshake record */
    expect_invalid_with(1, 0x02); /* not TLS */
    expect_invalid_with(5, 0x02); /* ServerHello */
    expect_invalid_with(9, 0x02); /* legacy version */
    expect_invalid_with(43, 33);  /* session id longer than 32 */
    char name[CB_EGRESS_NAME_MAX + 1];
    const uint8_t empty_record[] = {0x16, 0x03, 0x01, 0x00, 0x00};
    assert_int_equal(cb_egress_tls_sni(empty_record, sizeof(empty_record), name), -EINVAL);
    const uint8_t huge_record[] = {0x16, 0x03, 0x01, 0x40, 0x01};
    assert_int_equal(cb_egress_tls_sni(huge_record, sizeof(huge_record), name), -EINVAL);
}

/* A name the parser returned: a lowercase host name. */
static void assert_host_name(const char *name)
{
    size_t n = strlen(name);
    assert_true(n > 0 && n <= CB_EGRESS_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        assert_true(strchr("abcdefghijklmnopqrstuvwxyz0123456789-_.", name[i]) != NULL);
}

static void sni_rejects_bad_lengths(void **state)
{
    (void)state;
    char name[CB_EGRESS_NAME_MAX + 1];
    hello_with_sni(&in, "len.example");
    static struct bytes good;
    good = in;
    /* The low byte of each length: handshake, session id, cipher suites,
     * compression, extensions, supported_versions, server_name, its list,
     * the name type and the name. (A record that claims more bytes than
     * have come still holds the whole ClientHello.) */
    const size_t lengths[] = {8, 43, 77, 82, 85, 89, 96, 98, 99, 101};
    in.b[4]--;
    assert_int_equal(sni(&in, name), -EAGAIN);
    for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
        for (int d = -1; d <= 1; d += 2) {
            in = good;
            in.b[lengths[k]] = (uint8_t)(in.b[lengths[k]] + d);
            assert_true(sni(&in, name) < 0);
            assert_string_equal(name, "");
        }
    }
    /* Any byte changed: an answer of the contract, and a name only when
     * it is a host name. */
    for (size_t at = 0; at < good.n; at++) {
        in = good;
        in.b[at] ^= 0xff;
        int rc = sni(&in, name);
        assert_true(rc == 1 || rc == 0 || rc == -EINVAL || rc == -EAGAIN || rc == -E2BIG);
        if (rc == 1)
            assert_host_name(name);
    }
}

static void sni_rejects_repeats_and_bad_names(void **state)
{
    (void)state;
    char name[CB_EGRESS_NAME_MAX + 1];
    const char *bad[] = {"a..b", ".a", "a.", "a b", "a/b", "a\xc3\xa9", "a:443", "a%00b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hello_with_sni(&in, bad[i]);
        assert_int_equal(sni(&in, name), -EINVAL);
    }
    /* The same extension twice. */
    exts.n = hs.n = in.n = 0;
    put_sni_ext(&exts, "one.example");
    put_sni_ext(&exts, "two.example");
    put_hello(&hs, &exts);
    put_records(&in, &hs, 16384);
    assert_int_equal(sni(&in, name), -EINVAL);
    /* A label of 64, a name of 254. */
    char longl[80], longn[260];
    memset(longl, 'a', 64);
    memcpy(longl + 64, ".example", 9);
    hello_with_sni(&in, longl);
    assert_int_equal(sni(&in, name), -EINVAL);
    for (size_t i = 0; i < 254; i++)
        longn[i] = i % 2 ? '.' : 'a';
    longn[253] = 'a';
    longn[254] = '\0';
    hello_with_sni(&in, longn);
    assert_int_equal(sni(&in, name), -EINVAL);
    longn[253] = '\0';
    hello_with_sni(&in, longn);
    assert_int_equal(sni(&in, name), 1);
    assert_int_equal(strlen(name), 253);
}

static void sni_rejects_oversized_hello(void **state)
{
    (void)state;
    char name[CB_EGRESS_NAME_MAX + 1];
    const uint8_t big[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00};
    assert_int_equal(cb_egress_tls_sni(big, sizeof(big), name), -E2BIG);
    /* 1-byte records cannot stretch the peek past its limit. */
    static uint8_t many[CB_EGRESS_PEEK_MAX];
    for (size_t i = 0; i + 6 <= sizeof(many); i += 6) {
        const uint8_t rec[] = {0x16, 0x03, 0x01, 0x00, 0x01, (uint8_t)(i == 0 ? 0x01 : 0x00)};
        memcpy(many + i, rec, sizeof(rec));
    }
    many[6 + 5] = 0x00;
    many[12 + 5] = 0x40;
    assert_int_equal(cb_egress_tls_sni(many, sizeof(many) - sizeof(many) % 6, name), -EAGAIN);
    assert_int_equal(cb_egress_tls_sni(many, sizeof(many), name), -E2BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_http_request_lines),
        cmocka_unit_test(classify_prefixes_need_more),
        cmocka_unit_test(classify_tls),
        cmocka_unit_test(classify_refuses_other_bytes),
        cmocka_unit_test(classify_bounds_the_request_line),
        cmocka_unit_test(sni_found_and_lowercased),
        cmocka_unit_test(sni_absent),
        cmocka_unit_test(sni_over_fragmented_records),
        cmocka_unit_test(sni_truncated_needs_more),
        cmocka_unit_test(sni_rejects_malformed_headers),
        cmocka_unit_test(sni_rejects_bad_lengths),
        cmocka_unit_test(sni_rejects_repeats_and_bad_names),
        cmocka_unit_test(sni_rejects_oversized_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
