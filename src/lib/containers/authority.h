/* The authority of a request seen by transparent egress (a Host header,
 * an absolute URL's, a CONNECT target): pure functions over pointer and
 * length, fed by a hostile container. */
#ifndef CB_CONTAINERS_AUTHORITY_H
#define CB_CONTAINERS_AUTHORITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Splits "host[:port]" or "[v6][:port]" into the host (without brackets)
 * and the port (0 when none is written). False when it is not one: an
 * empty host, an unclosed bracket, anything but ":port" after the host, a
 * port of 0 or past 65535. */
bool cb__ct_authority_split(const char *a, size_t n, const char **host, size_t *hlen,
                            uint16_t *port);

/* Whether a[0..n) names host `name` (ASCII case aside, one trailing dot
 * ignored) and, when it writes a port, `port`; with no port written,
 * default_port must be `port`. */
bool cb__ct_authority_names(const char *a, size_t n, const char *name, uint16_t port,
                            uint16_t default_port);

/* Whether host[0..n) is 1 to 253 bytes of letters, digits, '-', '.', '_'
 * and ':' (a host name or an IP literal; nothing a URL would read as
 * userinfo, path or query). */
bool cb__ct_host_bytes(const char *host, size_t n);

#endif
