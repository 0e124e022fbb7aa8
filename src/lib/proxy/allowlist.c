#include "proxy/allowlist.h"
#include "proxy/host.h"
#include "proxy/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"

struct allow_entry {
    bool wildcard;             /* "*.domain": host.name is the domain */
    bool public_suffix;        /* ... and the domain is a public suffix */
    struct cb_proxy_host host; /* canonical */
};

struct cb_proxy_allowlist {
    struct allow_entry *entries;
    size_t n;
    bool star;
    bool public_wildcard; /* some entry is "*.<public suffix>" */
};

/* Catches the usual mistakes with a message that says what to write. */
static int check_shape(const char *s, size_t len, struct cb_error *err)
{
    if (len == 0)
        return cb_error_set(err, -EINVAL, "an entry is empty");
    if (memmem(s, len, "://", 3) || memchr(s, '/', len))
        return cb_error_set(err, -EINVAL,
                            "entries are host names, not URLs: write \"api.example.com\"");
    if (memchr(s, '*', len) && (len < 3 || memcmp(s, "*.", 2) != 0 || memchr(s + 1, '*', len - 1)))
        return cb_error_set(err, -EINVAL,
                            "'*' may only appear alone or as the first label of \"*.domain\"");
    return 0;
}

static int parse_allow_entry(const char *s, size_t len, struct allow_entry *e, struct cb_error *err)
{
    int r = check_shape(s, len, err);
    if (r < 0)
        return r;
    e->wildcard = len >= 2 && memcmp(s, "*.", 2) == 0;
    size_t skip = e->wildcard ? 2 : 0;
    r = cb_proxy_host_parse(s + skip, len - skip, &e->host, err);
    if (r < 0 && s[0] != '[' && memchr(s, ':', len) && !memchr(s, '%', len))
        return cb_error_set(err, -EINVAL,
                            "entries are host names without a port: drop the "
                            "\":port\" (IPv6 addresses go in brackets)");
    if (r < 0)
        return r;
    if (e->wildcard && e->host.kind != CB_PROXY_HOST_NAME)
        return cb_error_set(err, -EINVAL,
                            "a wildcard needs a domain name after \"*.\", "
                            "not an IP address");
    e->public_suffix = e->wildcard && cb_proxy_host_is_public_suffix(e->host.name);
    return 0;
}

int cb_proxy_allowlist_entry_check(const char *s, size_t len, bool allow_wildcard_all,
                                   struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    struct allow_entry e;
    int r = 0;
    bool star = len == 1 && s[0] == '*';
    if (!star)
        r = parse_allow_entry(s, len, &e, err);
    if (r == 0 && !allow_wildcard_all && (star || e.public_suffix))
        r = cb_error_set(err, -EINVAL,
                         "%s allows every host%s; set proxy.allow_wildcard_all = true to "
                         "permit it",
                         star ? "'*'" : "a wildcard on a public suffix",
                         star ? "" : " registered under it");
    if (r < 0)
        cb_error_prefix(err, "allowlist entry \"%s\"", cb__proxy_quote(s, len, q));
    return r;
}

int cb_proxy_allowlist_new(char *const *entries, size_t n, struct cb_proxy_allowlist **out,
                           struct cb_error *err)
{
    char q[CB__PROXY_QUOTE_BUF];
    struct cb_proxy_allowlist *l = cb_xcalloc(1, sizeof(*l));
    l->entries = cb_xcalloc(n ? n : 1, sizeof(*l->entries));
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(entries[i]);
        if (len == 1 && entries[i][0] == '*') {
            l->star = true;
            continue;
        }
        int r = parse_allow_entry(entries[i], len, &l->entries[l->n], err);
        if (r < 0) {
            cb_error_prefix(err, "allowlist entry \"%s\"", cb__proxy_quote(entries[i], len, q));
            cb_proxy_allowlist_free(l);
            return r;
        }
        l->public_wildcard |= l->entries[l->n].public_suffix;
        l->n++;
    }
    *out = l;
    return 0;
}

void cb_proxy_allowlist_free(struct cb_proxy_allowlist *l)
{
    if (l == NULL)
        return;
    free(l->entries);
    free(l);
}

static bool matches(const struct allow_entry *e, const struct cb_proxy_host *h)
{
    if (!e->wildcard)
        return e->host.kind == h->kind && strcmp(e->host.name, h->name) == 0;
    if (h->kind != CB_PROXY_HOST_NAME || h->len < e->host.len)
        return false;
    if (h->len == e->host.len)
        return memcmp(h->name, e->host.name, h->len) == 0;
    size_t off = h->len - e->host.len;
    return h->name[off - 1] == '.' && memcmp(h->name + off, e->host.name, e->host.len) == 0;
}

static int allowlist_deny(const struct cb_proxy_allowlist *l, const char *host, const char *who,
                          struct cb_error *err)
{
    char wq[CB__PROXY_QUOTE_BUF];
    const char *why = "";
    if (l != NULL && l->star)
        why = " (its \"*\" entry is ignored because proxy.allow_wildcard_all is false)";
    else if (l != NULL && l->public_wildcard)
        why = " (wildcards on a public suffix, such as \"*.com\", are ignored because "
              "proxy.allow_wildcard_all is false)";
    else if (l == NULL || l->n == 0)
        why = " (the allowlist is empty, so every host is denied)";
    return cb_error_set(err, -EACCES, "blocked: host %s is not in the allowlist%s%s%s", host,
                        who ? " for " : "", who ? cb__proxy_quote(who, strlen(who), wq) : "", why);
}

int cb__proxy_allowlist_check(const struct cb_proxy_allowlist *l, const char *host, size_t len,
                              bool allow_wildcard_all, const char *who, struct cb_error *err)
{
    char hq[CB__PROXY_QUOTE_BUF];
    struct cb_proxy_host h;
    if (l != NULL && l->star && allow_wildcard_all)
        return 0;
    if (cb_proxy_host_parse(host, len, &h, NULL) < 0) {
        char shown[CB__PROXY_QUOTE_BUF + 2];
        snprintf(shown, sizeof(shown), "\"%s\"", cb__proxy_quote(host, len, hq));
        return allowlist_deny(l, shown, who, err);
    }
    for (size_t i = 0; l != NULL && i < l->n; i++)
        if ((!l->entries[i].public_suffix || allow_wildcard_all) && matches(&l->entries[i], &h))
            return 0;
    return allowlist_deny(l, h.name, who, err);
}
