/* Host names and IP literals as the proxy understands them. A host is either
 * a DNS name (lower-case ASCII letters, digits, '-' and '.', punycode for
 * international names), an IPv4 address in any of the numeric forms the
 * WHATWG URL standard and inet_aton() accept (decimal, octal, hex, short),
 * or an IPv6 literal. Every form is reduced to one canonical spelling, so
 * the allowlist and the address policy never see two names for one host. */
#ifndef CB_PROXY_HOST_H
#define CB_PROXY_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Longest DNS name we accept (RFC 1035, without the trailing dot). */
#define CB_PROXY_HOST_NAME_MAX  253
#define CB_PROXY_HOST_LABEL_MAX 63

enum cb_proxy_host_kind {
    CB_PROXY_HOST_NAME,
    CB_PROXY_HOST_IPV4,
    CB_PROXY_HOST_IPV6,
};

struct cb_proxy_host {
    enum cb_proxy_host_kind kind;
    /* Canonical text: lower case, no trailing dot; dotted quad for IPv4;
     * RFC 5952 form without brackets for IPv6. */
    char name[CB_PROXY_HOST_NAME_MAX + 1];
    size_t len;
    /* The address in network byte order (4 bytes for IPv4, 16 for IPv6). */
    uint8_t ip[16];
};

/* Parses an IPv4 address the way the WHATWG URL standard does: one to four
 * dot-separated numbers, each decimal, octal (leading 0) or hex (0x); the
 * last one fills the remaining bytes. One trailing dot is ignored. Returns 1
 * and sets *out (host byte order) for an address, 0 when `s` does not end in
 * a number (so it is a name, not an address), or -EINVAL when it ends in a
 * number but is not a valid address ("1.2.3.256", "foo.123"). */
int cb__proxy_ipv4_parse(const char *s, size_t len, uint32_t *out);

/* Parses and canonicalises a host: "[v6]" or a bare IPv6 literal, an IPv4
 * form, or a DNS name. Upper case is folded and one trailing dot dropped.
 * Returns 0, or -EINVAL with a message that says what is wrong with it. */
int cb_proxy_host_parse(const char *s, size_t len, struct cb_proxy_host *out, struct cb_error *err);

/* Whether the canonical name `domain` is a public suffix ("com", "co.uk",
 * "github.io"), so that "*.<domain>" would reach every registrable domain
 * under it: as broad as "*" for practical purposes. Only suffixes on the
 * public suffix list count (Debian's publicsuffix file, or the copy built
 * into libpsl): an unlisted top-level name such as "internal" is not one. */
bool cb_proxy_host_is_public_suffix(const char *domain);

/* Writes the host as it appears in a URL authority ("[::1]" for IPv6) into
 * buf (at least CB_PROXY_HOST_NAME_MAX + 3 bytes). Returns its length. */
size_t cb__proxy_host_format(const struct cb_proxy_host *h, char *buf, size_t size);

#endif
