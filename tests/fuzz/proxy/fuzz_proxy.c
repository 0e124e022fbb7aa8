/* libFuzzer target for the first half of the proxy pipeline. The input is
 * a URL on the first line and allowlist entries (also tried as CIDR blocks)
 * on the following lines; the first byte's low bit is allow_wildcard_all.
 * Beyond memory safety (the sanitizers), it checks invariants that an
 * allowlist bypass would break:
 *   - a parsed URL's canonical form parses again to the same URL, host and
 *     port (one reading, whoever reads it);
 *   - an allowlist that names a host exactly allows that host;
 *   - every refusal carries a reason of the documented shape.
 * __builtin_trap() flags a broken invariant. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/addr.h"
#include "proxy/allowlist.h"
#include "proxy/url.h"

#define MAX_ENTRIES 16

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Re-parsing the canonical URL must give the same answer. */
static void check_canonical(const struct cb_proxy_url *u)
{
    struct cb_proxy_url again;
    struct cb_error err = {0};
    check(cb__proxy_url_parse(u->url, strlen(u->url), &again, &err) == 0);
    check(strcmp(again.url, u->url) == 0 && strcmp(again.host.name, u->host.name) == 0);
    check(again.port == u->port && again.host.kind == u->host.kind);
    check(strcmp(again.redacted, u->redacted) == 0 && u->target[0] == '/');
    cb__proxy_url_free(&again);
}

static void check_host(const struct cb_proxy_url *u, const struct cb_proxy_allowlist *l,
                       bool star_ok)
{
    struct cb_error err = {0};
    int r = cb__proxy_allowlist_check(l, u->host.name, u->host.len, star_ok, "tool f", &err);
    check(r == 0 || (r == -EACCES && starts(err.msg, "blocked: host ")));
    char *self[] = {(char *)u->host.name};
    struct cb_proxy_allowlist *exact;
    check(cb_proxy_allowlist_new(self, 1, &exact, &err) == 0);
    check(cb__proxy_allowlist_check(exact, u->host.name, u->host.len, false, NULL, &err) == 0);
    cb_proxy_allowlist_free(exact);
    struct sockaddr_storage ss;
    socklen_t len;
    if (cb__proxy_addr_from_host(&u->host, u->port, &ss, &len) == 0) {
        r = cb__proxy_addr_check(NULL, (struct sockaddr *)&ss, NULL, &err);
        check(r == 0 || (r == -EACCES && starts(err.msg, "blocked: ")));
    }
}

static void check_cidr(const char *s)
{
    struct cb_proxy_cidr c;
    struct cb_error err = {0};
    if (cb__proxy_cidr_parse(s, strlen(s), &c, &err) == 0)
        check(cb__proxy_cidr_contains(&c, c.family, c.addr));
    else
        check(err.code == -EINVAL && err.msg[0] == '"');
}

/* Splits data at '\n' into NUL-terminated lines (first = URL). */
static size_t split(char *buf, size_t size, char **lines, size_t *lens)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < MAX_ENTRIES + 1; i++) {
        if (i < size && buf[i] != '\n')
            continue;
        lines[n] = buf + start;
        lens[n++] = i - start;
        if (i < size)
            buf[i] = '\0';
        start = i + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool star_ok = data[0] & 1;
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    char *lines[MAX_ENTRIES + 1];
    size_t lens[MAX_ENTRIES + 1];
    size_t n = split(buf, size - 1, lines, lens);

    struct cb_error err = {0};
    struct cb_proxy_allowlist *l = NULL;
    if (cb_proxy_allowlist_new(lines + 1, n - 1, &l, &err) != 0)
        check(l == NULL && starts(err.msg, "allowlist entry "));
    for (size_t i = 1; i < n; i++)
        check_cidr(lines[i]);

    struct cb_proxy_url u;
    int r = cb__proxy_url_parse(lines[0], lens[0], &u, &err);
    if (r == 0) {
        check_canonical(&u);
        check_host(&u, l, star_ok);
    } else {
        check(r == -EINVAL && starts(err.msg, "blocked: ") && u.url == NULL);
    }
    cb__proxy_url_free(&u);
    cb_proxy_allowlist_free(l);
    free(buf);
    return 0;
}
