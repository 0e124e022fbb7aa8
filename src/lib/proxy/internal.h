/* Helpers shared by the proxy modules, not part of their public API. */
#ifndef CB_PROXY_INTERNAL_H
#define CB_PROXY_INTERNAL_H

#include <stddef.h>

/* Longest piece of outside text quoted in an error message. */
#define CB__PROXY_QUOTE_MAX 200

/* Copies outside bytes into `out` for quoting in a message: printable ASCII
 * stays, anything else becomes \xNN, and text past CB__PROXY_QUOTE_MAX is
 * cut with "...". `out` needs CB__PROXY_QUOTE_BUF bytes. */
#define CB__PROXY_QUOTE_BUF (CB__PROXY_QUOTE_MAX * 4 + 8)
const char *cb__proxy_quote(const char *s, size_t len, char *out);

/* ASCII lower-casing that ignores the locale. */
static inline char cb__proxy_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

#endif
