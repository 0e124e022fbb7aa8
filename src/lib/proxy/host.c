#include "proxy/host.h"
#include "proxy/internal.h"

#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Room for the longest input worth looking at: a full-length name, or a
 * bracketed IPv6 literal with a zone id. Anything longer is an error. */
#define HOST_INPUT_MAX (CB_PROXY_HOST_NAME_MAX + 2)

const char *cb__proxy_quote(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < CB__PROXY_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        out[o++] = '\\';
        out[o++] = 'x';
        cb_hex_byte(c, false, out + o);
        o += 2;
    }
    if (len > CB__PROXY_QUOTE_MAX) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* The WHATWG "IPv4 number parser": decimal, 0x-hex or 0-octal. Values
 * saturate above 2^32 so that long inputs cannot overflow. */
static int ipv4_number(const char *s, size_t len, uint64_t *out)
{
    unsigned radix = 10;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        radix = 16;
        s += 2;
        len -= 2;
    } else if (len >= 2 && s[0] == '0') {
        radix = 8;
        s++;
        len--;
    } else if (len == 0) {
        return -EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        int d = cb_hex_digit((unsigned char)s[i]);
        if (d < 0 || (unsigned)d >= radix)
            return -EINVAL;
        v = v * radix + (unsigned)d;
        if (v > UINT32_MAX)
            v = (uint64_t)UINT32_MAX + 1;
    }
    *out = v;
    return 0;
}

/* The WHATWG "ends in a number" test: is the last label all digits or a
 * valid 0x-hex number? Such a host must be an IPv4 address or nothing. */
static bool ends_in_number(const char *s, size_t len)
{
    const char *dot = memrchr(s, '.', len);
    const char *last = dot ? dot + 1 : s;
    size_t n = len - (size_t)(last - s);
    if (n == 0)
        return false;
    size_t i = 0;
    while (i < n && last[i] >= '0' && last[i] <= '9')
        i++;
    if (i == n)
        return true;
    uint64_t v;
    return n >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') &&
           ipv4_number(last, n, &v) == 0;
}

int cb__proxy_ipv4_parse(const char *s, size_t len, uint32_t *out)
{
    if (len > 1 && s[len - 1] == '.')
        len--;
    if (!ends_in_number(s, len))
        return 0;
    uint64_t parts[4];
    size_t n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (n == 4 || ipv4_number(s + start, i - start, &parts[n]) < 0)
            return -EINVAL;
        n++;
        start = i + 1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (parts[i] > 255)
            return -EINVAL;
        v = v << 8 | parts[i];
    }
    unsigned rest_bits = (unsigned)(8 * (5 - n));
    if (parts[n - 1] >= (uint64_t)1 << rest_bits)
        return -EINVAL;
    *out = (uint32_t)((v << rest_bits) | parts[n - 1]);
    return 1;
}

static void set_ipv4(struct cb_proxy_host *out, uint32_t a)
{
    out->kind = CB_PROXY_HOST_IPV4;
    memset(out->ip, 0, sizeof(out->ip));
    for (int i = 0; i < 4; i++)
        out->ip[i] = (uint8_t)(a >> (24 - 8 * i));
    int n = snprintf(out->name, sizeof(out->name), "%u.%u.%u.%u", out->ip[0], out->ip[1],
                     out->ip[2], out->ip[3]);
    out->len = (size_t)n;
}

/* `s` is the text inside the brackets (or a bare literal with a ':'). */
static int parse_ipv6(const char *s, size_t len, struct cb_proxy_host *out, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    char buf[INET6_ADDRSTRLEN];
    if (memchr(s, '%', len))
        return cb_error_set(err, -EINVAL,
                            "the IPv6 host \"%s\" has a zone id (the part after '%%'); "
                            "zone ids are not allowed",
                            cb__proxy_quote(s, len, q));
    if (len >= sizeof(buf))
        goto bad;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET6, buf, out->ip) != 1)
        goto bad;
    out->kind = CB_PROXY_HOST_IPV6;
    inet_ntop(AF_INET6, out->ip, out->name, sizeof(out->name));
    out->len = strlen(out->name);
    return 0;
bad:
    return cb_error_set(err, -EINVAL, "the host \"%s\" is not a valid IPv6 address",
                        cb__proxy_quote(s, len, q));
}

/* Checks one label of a lower-cased name. */
static int check_label(const char *name, size_t len, const char *l, size_t n, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    if (n == 0)
        return cb_error_set(err, -EINVAL,
                            "the host \"%s\" has an empty label (a leading dot or two dots "
                            "in a row)",
                            cb__proxy_quote(name, len, q));
    if (n > CB_PROXY_HOST_LABEL_MAX)
        return cb_error_set(err, -EINVAL, "the host \"%s\" has a label longer than %d characters",
                            cb__proxy_quote(name, len, q), CB_PROXY_HOST_LABEL_MAX);
    if (l[0] == '-' || l[n - 1] == '-')
        return cb_error_set(err, -EINVAL,
                            "the host \"%s\" has a label that starts or ends with '-'",
                            cb__proxy_quote(name, len, q));
    return 0;
}

static int check_chars(const char *name, size_t len, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')
            continue;
        if (c == '%')
            return cb_error_set(err, -EINVAL,
                                "the host \"%s\" contains percent-encoding; write the host "
                                "name without %%-escapes",
                                cb__proxy_quote(name, len, q));
        if (c >= 0x80)
            return cb_error_set(err, -EINVAL,
                                "the host \"%s\" is not ASCII; write international names in "
                                "punycode (xn--...)",
                                cb__proxy_quote(name, len, q));
        if (c < 0x21 || c == 0x7f)
            return cb_error_set(err, -EINVAL,
                                "the host \"%s\" contains a space or control character",
                                cb__proxy_quote(name, len, q));
        return cb_error_set(err, -EINVAL,
                            "the host \"%s\" contains the character '%c', but a host name "
                            "may only contain letters, digits, '-' and '.'",
                            cb__proxy_quote(name, len, q), (char)c);
    }
    return 0;
}

/* `name` is lower case without the trailing dot. */
static int parse_name(const char *name, size_t len, struct cb_proxy_host *out, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    int r = check_chars(name, len, err);
    if (r < 0)
        return r;
    uint32_t a;
    r = cb__proxy_ipv4_parse(name, len, &a);
    if (r < 0)
        return cb_error_set(err, -EINVAL,
                            "the host \"%s\" ends in a number but is not a valid IPv4 address",
                            cb__proxy_quote(name, len, q));
    if (r == 1) {
        set_ipv4(out, a);
        return 0;
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.')
            continue;
        r = check_label(name, len, name + start, i - start, err);
        if (r < 0)
            return r;
        start = i + 1;
    }
    out->kind = CB_PROXY_HOST_NAME;
    memset(out->ip, 0, sizeof(out->ip));
    memcpy(out->name, name, len);
    out->name[len] = '\0';
    out->len = len;
    return 0;
}

int cb_proxy_host_parse(const char *s, size_t len, struct cb_proxy_host *out, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    char low[HOST_INPUT_MAX + 1];
    if (len == 0)
        return cb_error_set(err, -EINVAL, "the host is empty");
    if (s[0] == '[') {
        if (len < 2 || s[len - 1] != ']')
            return cb_error_set(err, -EINVAL, "the host \"%s\" has an unclosed '['",
                                cb__proxy_quote(s, len, q));
        return parse_ipv6(s + 1, len - 2, out, err);
    }
    if (memchr(s, ':', len))
        return parse_ipv6(s, len, out, err);
    if (len > 1 && s[len - 1] == '.')
        len--;
    if (len > CB_PROXY_HOST_NAME_MAX)
        return cb_error_set(err, -EINVAL, "the host \"%s\" is longer than %d characters",
                            cb__proxy_quote(s, len, q), CB_PROXY_HOST_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        low[i] = cb__proxy_lower(s[i]);
    return parse_name(low, len, out, err);
}

size_t cb__proxy_host_format(const struct cb_proxy_host *h, char *buf, size_t size)
{
    int n = snprintf(buf, size, h->kind == CB_PROXY_HOST_IPV6 ? "[%s]" : "%s", h->name);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

static psl_ctx_t *psl_loaded;

static void psl_load(void)
{
    psl_loaded = psl_latest(NULL);
}

/* The public suffix list: Debian's publicsuffix file when it is there and
 * newer than the copy built into libpsl, else that copy. */
static const psl_ctx_t *psl(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, psl_load);
    return psl_loaded ? psl_loaded : psl_builtin();
}

bool cb_proxy_host_is_public_suffix(const char *domain)
{
    const psl_ctx_t *ctx = psl();
    return ctx != NULL &&
           psl_is_public_suffix2(ctx, domain, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE) != 0;
}
