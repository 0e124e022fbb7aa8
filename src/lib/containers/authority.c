/* Authorities of transparent requests (authority.h). */
#include "containers/authority.h"

#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "egress/sniff.h"

bool cb__ct_authority_split(const char *a, size_t n, const char **host, size_t *hlen,
                            uint16_t *port)
{
    size_t end;
    *port = 0;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (close == NULL)
            return false;
        *host = a + 1;
        *hlen = (size_t)(close - a) - 1;
        end = (size_t)(close - a) + 1;
    } else {
        const char *colon = memchr(a, ':', n);
        end = colon ? (size_t)(colon - a) : n;
        *host = a;
        *hlen = end;
    }
    if (end == n)
        return *hlen > 0;
    uint64_t v;
    if (a[end] != ':' || cb_parse_u64(a + end + 1, n - end - 1, &v) < 0 || v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return *hlen > 0;
}

bool cb__ct_authority_names(const char *a, size_t n, const char *name, uint16_t port,
                            uint16_t default_port)
{
    const char *host;
    size_t hlen;
    uint16_t written;
    if (!cb__ct_authority_split(a, n, &host, &hlen, &written))
        return false;
    if (host[hlen - 1] == '.')
        hlen--;
    return hlen == strlen(name) && strncasecmp(host, name, hlen) == 0 &&
           (written != 0 ? written : default_port) == port;
}

bool cb__ct_host_bytes(const char *host, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = host[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_' || ch == ':'))
            return false;
    }
    return n > 0 && n <= CB_EGRESS_NAME_MAX;
}
