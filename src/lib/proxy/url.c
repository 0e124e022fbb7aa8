#include "proxy/url.h"
#include "proxy/internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"

#define REDACTED "[REDACTED]"

/* The pieces of the raw input, read before libcurl sees it. */
struct raw_url {
    enum cb_proxy_scheme scheme;
    const char *host;
    size_t host_len;
    uint16_t port;
};

const char *cb__proxy_scheme_name(enum cb_proxy_scheme s)
{
    return s == CB_PROXY_HTTPS ? "https" : "http";
}

static uint16_t default_port(enum cb_proxy_scheme s)
{
    return s == CB_PROXY_HTTPS ? 443 : 80;
}

void cb__proxy_url_free(struct cb_proxy_url *u)
{
    if (u == NULL)
        return;
    free(u->target);
    free(u->url);
    free(u->redacted);
    u->target = u->url = u->redacted = NULL;
}

/* Appends the query with each value replaced; empty pairs are dropped, as
 * application/x-www-form-urlencoded parsing drops them. */
static void redact_query(struct cb_buf *b, const char *q, size_t len)
{
    bool first = true;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && q[i] != '&')
            continue;
        const char *pair = q + start;
        size_t n = i - start;
        start = i + 1;
        if (n == 0)
            continue;
        const char *eq = memchr(pair, '=', n);
        cb_buf_append(b, first ? "?" : "&", 1);
        cb_buf_append(b, pair, eq ? (size_t)(eq - pair) : n);
        cb_buf_puts(b, "=" REDACTED);
        first = false;
    }
}

/* Reads "scheme:" and returns the length of the scheme, or 0. */
static size_t scheme_len(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                       (i > 0 && ((s[i] >= '0' && s[i] <= '9') || strchr("+-.", s[i])))))
        i++;
    return i > 0 && i < len && s[i] == ':' ? i : 0;
}

/* Where the authority of a raw "scheme://authority/..." starts, or 0. */
static size_t authority_start(const char *s, size_t len)
{
    size_t n = scheme_len(s, len);
    return n > 0 && len - n >= 3 && memcmp(s + n, "://", 3) == 0 ? n + 3 : 0;
}

static size_t span_until(const char *s, size_t from, size_t len, const char *stops)
{
    while (from < len && strchr(stops, s[from]) == NULL)
        from++;
    return from;
}

/* Best-effort redaction of the raw input, parseable or not, for quoting in
 * messages: the fragment is dropped, userinfo becomes "***" and each query
 * value "[REDACTED]". Bytes are otherwise kept; the quote escapes them. */
static char *redact_url(const char *s, size_t len, size_t *out_len)
{
    struct cb_buf b;
    cb_buf_init(&b, 2 * CB_PROXY_URL_MAX + 64);
    if (len > CB_PROXY_URL_MAX)
        len = CB_PROXY_URL_MAX;
    const char *hash = memchr(s, '#', len);
    if (hash)
        len = (size_t)(hash - s);
    size_t a = authority_start(s, len);
    size_t a_end = a ? span_until(s, a, len, "/?") : 0;
    const char *at = a ? memrchr(s + a, '@', a_end - a) : NULL;
    if (at) {
        cb_buf_append(&b, s, a);
        cb_buf_puts(&b, "***");
        cb_buf_append(&b, at, a_end - (size_t)(at - s));
    } else {
        cb_buf_append(&b, s, a_end);
    }
    const char *qm = memchr(s + a_end, '?', len - a_end);
    size_t path_end = qm ? (size_t)(qm - s) : len;
    cb_buf_append(&b, s + a_end, path_end - a_end);
    if (qm)
        redact_query(&b, qm + 1, len - path_end - 1);
    if (b.data == NULL) {
        *out_len = 0;
        return cb_xstrdup("");
    }
    return cb_buf_steal(&b, out_len);
}

/* Fills `q` with the URL as quoted in messages: redacted, escaped, cut. */
static const char *quote_url(const char *s, size_t len, char *q)
{
    size_t n;
    _cleanup_free_ char *r = redact_url(s, len, &n);
    return cb__proxy_quote(r, n, q);
}

/* Refuses bytes that URL parsers disagree about or that a model should have
 * percent-encoded: controls, spaces, non-ASCII and backslashes. */
static int check_bytes(const char *s, size_t len, const char *q, struct cb_error *err)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7f && c != '\\')
            continue;
        if (c == ' ')
            return cb_error_set(err, -EINVAL,
                                "blocked: URL %s contains a space (at byte %zu); "
                                "percent-encode it as %%20",
                                q, i);
        if (c == '\\')
            return cb_error_set(err, -EINVAL,
                                "blocked: URL %s contains a backslash (at byte %zu); use '/' "
                                "or percent-encode it as %%5C",
                                q, i);
        if (c >= 0x80)
            return cb_error_set(err, -EINVAL,
                                "blocked: URL %s contains a non-ASCII byte (at byte %zu); "
                                "percent-encode the path and query, and write international "
                                "host names in punycode (xn--...)",
                                q, i);
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s contains a control character (byte 0x%02x at "
                            "byte %zu); percent-encode it",
                            q, c, i);
    }
    return 0;
}

static bool eq_nocase(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cb__proxy_lower(a[i]) != lit[i])
            return false;
    return true;
}

static int read_scheme(const char *s, size_t len, struct raw_url *raw, const char *q,
                       struct cb_error *err)
{
    char sq[CB__PROXY_QUOTE_BUF];
    size_t n = scheme_len(s, len);
    if (n == 0)
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s has no scheme; write it as https://host/path", q);
    if (eq_nocase(s, n, "http"))
        raw->scheme = CB_PROXY_HTTP;
    else if (eq_nocase(s, n, "https"))
        raw->scheme = CB_PROXY_HTTPS;
    else
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s uses the scheme \"%s\"; only http and https are "
                            "allowed",
                            q, cb__proxy_quote(s, n, sq));
    if (len - n < 3 || memcmp(s + n, "://", 3) != 0)
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s must start with %s:// followed by the host", q,
                            cb__proxy_scheme_name(raw->scheme));
    return 0;
}

/* A port as written in the URL: 1 to 65535, no sign, no leading zeros. */
static int read_port(const char *p, size_t n, struct raw_url *raw, const char *q,
                     struct cb_error *err)
{
    char pq[CB__PROXY_QUOTE_BUF];
    uint64_t v = 0;
    if (n == 0) {
        raw->port = default_port(raw->scheme);
        return 0;
    }
    if (n > 5 || p[0] == '0' || cb_parse_u64(p, n, &v) < 0 || v > 65535)
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s has the port \"%s\"; a port is a number from 1 "
                            "to 65535 without leading zeros",
                            q, cb__proxy_quote(p, n, pq));
    raw->port = (uint16_t)v;
    return 0;
}

/* Splits "host[:port]" or "[v6][:port]". */
static int split_authority(const char *a, size_t n, struct raw_url *raw, const char *q,
                           struct cb_error *err)
{
    const char *colon;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (close == NULL)
            return cb_error_set(err, -EINVAL,
                                "blocked: URL %s has an IPv6 host without its closing ']'", q);
        colon = close + 1;
        if (colon < a + n && *colon != ':')
            return cb_error_set(err, -EINVAL, "blocked: URL %s has text after the IPv6 host's ']'",
                                q);
    } else {
        colon = memchr(a, ':', n);
        if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - a)))
            return cb_error_set(err, -EINVAL,
                                "blocked: URL %s has more than one ':' in the host and port; "
                                "put IPv6 addresses in brackets",
                                q);
    }
    raw->host = a;
    raw->host_len = colon && colon < a + n ? (size_t)(colon - a) : n;
    size_t pn = colon && colon < a + n ? n - raw->host_len - 1 : 0;
    if (raw->host_len == 0)
        return cb_error_set(err, -EINVAL, "blocked: URL %s has an empty host", q);
    return read_port(a + raw->host_len + 1, pn, raw, q, err);
}

/* Reads scheme, host and port from the raw bytes, independently of curl. */
static int read_raw(const char *s, size_t len, struct raw_url *raw, const char *q,
                    struct cb_error *err)
{
    int r = read_scheme(s, len, raw, q, err);
    if (r < 0)
        return r;
    size_t a = authority_start(s, len);
    size_t end = span_until(s, a, len, "/?#");
    if (memchr(s + a, '@', end - a))
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s contains credentials (userinfo is not allowed); "
                            "remove the part before '@' from the host",
                            q);
    return split_authority(s + a, end - a, raw, q, err);
}

/* libcurl's reading of the URL; curl_parts_free() releases it all. */
struct curl_parts {
    CURLU *h;
    char *host, *port, *path, *query, *user, *password;
};

static void curl_parts_free(struct curl_parts *p)
{
    curl_url_cleanup(p->h);
    curl_free(p->host);
    curl_free(p->port);
    curl_free(p->path);
    curl_free(p->query);
    curl_free(p->user);
    curl_free(p->password);
}

static int curl_read(const char *s, size_t len, struct curl_parts *p, const char *q,
                     struct cb_error *err)
{
    _cleanup_free_ char *z = cb_xstrndup(s, len);
    p->h = curl_url();
    if (p->h == NULL)
        return cb_error_set(err, -ENOMEM, "out of memory");
    CURLUcode rc = curl_url_set(p->h, CURLUPART_URL, z, CURLU_DISALLOW_USER);
    if (rc == CURLUE_USER_NOT_ALLOWED)
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s contains credentials (userinfo is not allowed)", q);
    if (rc != CURLUE_OK)
        return cb_error_set(err, -EINVAL, "blocked: URL %s could not be parsed: %s", q,
                            curl_url_strerror(rc));
    curl_url_get(p->h, CURLUPART_USER, &p->user, 0);
    curl_url_get(p->h, CURLUPART_PASSWORD, &p->password, 0);
    if (p->user || p->password)
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s contains credentials (userinfo is not allowed)", q);
    if (curl_url_get(p->h, CURLUPART_HOST, &p->host, 0) != CURLUE_OK ||
        curl_url_get(p->h, CURLUPART_PORT, &p->port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(p->h, CURLUPART_PATH, &p->path, 0) != CURLUE_OK)
        return cb_error_set(err, -EINVAL, "blocked: URL %s has no host or path", q);
    curl_url_get(p->h, CURLUPART_QUERY, &p->query, 0);
    return 0;
}

/* Both readings of the host and port must agree; a URL that two parsers
 * read differently is how allowlist bypasses start. */
static int cross_check(const struct raw_url *raw, const struct cb_proxy_host *mine,
                       const struct curl_parts *p, const char *q, struct cb_error *err)
{
    char hq[CB__PROXY_QUOTE_BUF];
    struct cb_proxy_host theirs;
    uint64_t port = 0;
    if (cb_proxy_host_parse(p->host, strlen(p->host), &theirs, NULL) < 0 ||
        theirs.kind != mine->kind || strcmp(theirs.name, mine->name) != 0)
        return cb_error_set(err, -EINVAL,
                            "blocked: URL %s has an ambiguous host: it reads as \"%s\" but also "
                            "as \"%s\"",
                            q, mine->name, cb__proxy_quote(p->host, strlen(p->host), hq));
    if (cb_parse_u64(p->port, strlen(p->port), &port) < 0 || port != raw->port)
        return cb_error_set(err, -EINVAL, "blocked: URL %s has an ambiguous port", q);
    return 0;
}

static void url_build_outputs(struct cb_proxy_url *out, const struct curl_parts *p)
{
    char host[CB_PROXY_HOST_NAME_MAX + 3];
    char port[8] = "";
    cb__proxy_host_format(&out->host, host, sizeof(host));
    if (out->port != default_port(out->scheme))
        snprintf(port, sizeof(port), ":%u", out->port);
    const char *path = p->path[0] == '/' ? p->path : "/";
    out->target = p->query ? cb_xasprintf("%s?%s", path, p->query) : cb_xstrdup(path);
    out->url =
        cb_xasprintf("%s://%s%s%s", cb__proxy_scheme_name(out->scheme), host, port, out->target);
    struct cb_buf b;
    cb_buf_init(&b, 2 * CB_PROXY_URL_MAX + 512);
    cb_buf_printf(&b, "%s://%s%s%s", cb__proxy_scheme_name(out->scheme), host, port, path);
    if (p->query)
        redact_query(&b, p->query, strlen(p->query));
    out->redacted = cb_buf_steal(&b, NULL);
}

int cb__proxy_url_parse(const char *s, size_t len, struct cb_proxy_url *out, struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    struct raw_url raw = {0};
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return cb_error_set(err, -EINVAL, "blocked: the URL is empty");
    if (len > CB_PROXY_URL_MAX)
        return cb_error_set(err, -EINVAL, "blocked: the URL is %zu bytes long; the limit is %d",
                            len, CB_PROXY_URL_MAX);
    quote_url(s, len, q);
    int r = check_bytes(s, len, q, err);
    if (r == 0)
        r = read_raw(s, len, &raw, q, err);
    if (r == 0 && cb_proxy_host_parse(raw.host, raw.host_len, &out->host, err) < 0) {
        cb_error_prefix(err, "blocked: invalid URL %s", q);
        r = -EINVAL;
    }
    if (r < 0)
        return r;
    struct curl_parts p = {0};
    r = curl_read(s, len, &p, q, err);
    if (r == 0)
        r = cross_check(&raw, &out->host, &p, q, err);
    if (r == 0) {
        out->scheme = raw.scheme;
        out->port = raw.port;
        url_build_outputs(out, &p);
    }
    curl_parts_free(&p);
    return r;
}
