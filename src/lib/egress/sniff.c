#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "egress/sniff.h"

/* From linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h, whose
 * headers clash with net/if.h. */
#define CB_SO_ORIGINAL_DST      80
#define CB_IP6T_SO_ORIGINAL_DST 80

int cb_egress_original_dst(int fd, struct sockaddr_storage *out, socklen_t *out_len,
                           struct cb_error *err)
{
    struct sockaddr_storage self;
    socklen_t len = sizeof(self);
    if (getsockname(fd, (struct sockaddr *)&self, &len) < 0)
        return cb_error_set(err, -errno, "original destination: getsockname: %s", strerror(errno));
    memset(out, 0, sizeof(*out));
    int rc;
    if (self.ss_family == AF_INET) {
        len = sizeof(struct sockaddr_in);
        rc = getsockopt(fd, SOL_IP, CB_SO_ORIGINAL_DST, out, &len);
    } else if (self.ss_family == AF_INET6) {
        len = sizeof(struct sockaddr_in6);
        rc = getsockopt(fd, SOL_IPV6, CB_IP6T_SO_ORIGINAL_DST, out, &len);
    } else {
        return cb_error_set(err, -EAFNOSUPPORT, "original destination: not an IP socket");
    }
    if (rc < 0)
        return cb_error_set(err, -errno, "original destination: %s%s", strerror(errno),
                            errno == ENOENT ? " (the connection was not redirected)" : "");
    *out_len = len;
    return 0;
}

/* ------------------------------ classifier ---------------------------- */

static bool is_tchar(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The length of the run of bytes at p[i..n) that pass ok(). */
static size_t span(const uint8_t *p, size_t i, size_t n, bool (*ok)(uint8_t))
{
    size_t j = i;
    while (j < n && ok(p[j]))
        j++;
    return j - i;
}

static bool is_visible(uint8_t c)
{
    return c > 0x20 && c < 0x7f;
}

/* The input ended inside what could still be a request line. */
static enum cb_egress_proto more(size_t n)
{
    return n >= CB_EGRESS_PEEK_MAX ? CB_EGRESS_OTHER : CB_EGRESS_NEED_MORE;
}

/* Matches method SP target SP "HTTP/1." DIGIT CRLF as far as the input
 * goes. */
static enum cb_egress_proto classify_http(const uint8_t *p, size_t n)
{
    size_t i = span(p, 0, n, is_tchar);
    if (i == n)
        return more(n);
    if (i == 0 || p[i] != ' ')
        return CB_EGRESS_OTHER;
    size_t target = span(p, ++i, n, is_visible);
    i += target;
    if (i == n)
        return more(n);
    if (target == 0 || p[i] != ' ')
        return CB_EGRESS_OTHER;
    static const char version[] = "HTTP/1.#\r\n"; /* '#': a digit */
    for (size_t k = 0; k < sizeof(version) - 1; k++) {
        if (++i == n)
            return more(n);
        bool ok = version[k] == '#' ? p[i] >= '0' && p[i] <= '9' : p[i] == (uint8_t)version[k];
        if (!ok)
            return CB_EGRESS_OTHER;
    }
    return CB_EGRESS_HTTP;
}

enum cb_egress_proto cb_egress_classify(const uint8_t *p, size_t n)
{
    if (n == 0)
        return CB_EGRESS_NEED_MORE;
    if (p[0] == 0x16) {
        if (n == 1)
            return CB_EGRESS_NEED_MORE;
        return p[1] == 0x03 ? CB_EGRESS_TLS : CB_EGRESS_OTHER;
    }
    return classify_http(p, n);
}

/* ------------------------------ ClientHello --------------------------- */

/* A bounded reader: every take fails rather than read past n. */
struct cur {
    const uint8_t *p;
    size_t n;
};

static bool take(struct cur *c, size_t k, struct cur *out)
{
    if (c->n < k)
        return false;
    if (out != NULL)
        *out = (struct cur){c->p, k};
    c->p += k;
    c->n -= k;
    return true;
}

static bool take_u8(struct cur *c, size_t *v)
{
    if (c->n < 1)
        return false;
    *v = c->p[0];
    return take(c, 1, NULL);
}

static bool take_u16(struct cur *c, size_t *v)
{
    if (c->n < 2)
        return false;
    *v = (size_t)c->p[0] << 8 | c->p[1];
    return take(c, 2, NULL);
}

/* A vector with a one- or two-byte length prefix. */
static bool take_vec(struct cur *c, int prefix, struct cur *out)
{
    size_t len;
    if (!(prefix == 1 ? take_u8(c, &len) : take_u16(c, &len)))
        return false;
    return take(c, len, out);
}

#define TLS_RECORD_MAX  16384
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0
#define SNI_HOST_NAME   0

/* Gathers the first handshake message, which may be fragmented over
 * several handshake records, into hs (capacity CB_EGRESS_HELLO_MAX + 4).
 * Returns its length, or the negative result of cb_egress_tls_sni. */
static long gather_handshake(const uint8_t *p, size_t n, uint8_t *hs)
{
    size_t got = 0, want = 0, off = 0;
    for (;;) {
        if (n - off < 5)
            return n >= CB_EGRESS_PEEK_MAX ? -E2BIG : -EAGAIN;
        const uint8_t *h = p + off;
        size_t len = (size_t)h[3] << 8 | h[4];
        if (h[0] != 0x16 || h[1] != 0x03 || len == 0 || len > TLS_RECORD_MAX)
            return -EINVAL;
        size_t avail = n - off - 5 < len ? n - off - 5 : len;
        size_t room = CB_EGRESS_HELLO_MAX + 4 - got;
        size_t k = avail < room ? avail : room;
        memcpy(hs + got, h + 5, k);
        got += k;
        if (want == 0 && got >= 4) {
            if (hs[0] != HS_CLIENT_HELLO)
                return -EINVAL;
            want = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
            if (want - 4 > CB_EGRESS_HELLO_MAX)
                return -E2BIG;
        }
        if (want != 0 && got >= want)
            return (long)want;
        if (avail < len)
            return n >= CB_EGRESS_PEEK_MAX ? -E2BIG : -EAGAIN;
        off += 5 + len;
    }
}

/* Checks that name[0..len) is a host name and copies it, lowercased. */
static bool copy_host_name(const uint8_t *name, size_t len, char *out)
{
    if (len == 0 || len > CB_EGRESS_NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = name[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            label++;
        } else if (c >= 'A' && c <= 'Z') {
            c = (uint8_t)(c - 'A' + 'a');
            label++;
        } else {
            return false;
        }
        if (label > 63)
            return false;
        out[i] = (char)c;
    }
    out[len] = '\0';
    return label > 0;
}

/* Parses the server_name extension body. 1 with a name, -EINVAL. */
static int parse_sni_ext(struct cur ext, char *name)
{
    struct cur list;
    if (!take_vec(&ext, 2, &list) || ext.n != 0 || list.n == 0)
        return -EINVAL;
    bool found = false;
    while (list.n > 0) {
        size_t type;
        struct cur entry;
        if (!take_u8(&list, &type) || !take_vec(&list, 2, &entry))
            return -EINVAL;
        if (type != SNI_HOST_NAME)
            continue;
        if (found || !copy_host_name(entry.p, entry.n, name))
            return -EINVAL;
        found = true;
    }
    return found ? 1 : -EINVAL;
}

/* Walks the extensions; each type may appear once. */
static int parse_extensions(struct cur exts, char *name)
{
    uint64_t seen[65536 / 64] = {0};
    int rc = 0;
    while (exts.n > 0) {
        size_t type;
        struct cur body;
        if (!take_u16(&exts, &type) || !take_vec(&exts, 2, &body))
            return -EINVAL;
        if (seen[type / 64] & (1ull << (type % 64)))
            return -EINVAL;
        seen[type / 64] |= 1ull << (type % 64);
        if (type == EXT_SERVER_NAME && (rc = parse_sni_ext(body, name)) < 0)
            return rc;
    }
    return rc;
}

static int parse_client_hello(struct cur c, char *name)
{
    struct cur v, ignored, suites, comp, exts;
    if (!take(&c, 2, &v) || v.p[0] != 0x03 || !take(&c, 32, NULL))
        return -EINVAL;
    if (!take_vec(&c, 1, &ignored) || ignored.n > 32)
        return -EINVAL;
    if (!take_vec(&c, 2, &suites) || suites.n < 2 || suites.n % 2 != 0)
        return -EINVAL;
    if (!take_vec(&c, 1, &comp) || comp.n < 1)
        return -EINVAL;
    if (c.n == 0)
        return 0;
    if (!take_vec(&c, 2, &exts) || c.n != 0)
        return -EINVAL;
    return parse_extensions(exts, name);
}

int cb_egress_tls_sni(const uint8_t *p, size_t n, char name[CB_EGRESS_NAME_MAX + 1])
{
    uint8_t hs[CB_EGRESS_HELLO_MAX + 4];
    name[0] = '\0';
    long len = gather_handshake(p, n, hs);
    if (len < 0)
        return (int)len;
    int rc = parse_client_hello((struct cur){hs + 4, (size_t)len - 4}, name);
    if (rc <= 0)
        name[0] = '\0';
    return rc;
}
