/* Which environment keys a request may set in a container (bundle.h). */
#include "containers/bundle.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

/* Exact names that change how a shell or an interpreter starts. */
static const char *const reserved[] = {
    "BASH_ENV", "ENV", "PYTHONSTARTUP", "PYTHONPATH", "NODE_OPTIONS", "PERL5OPT",
};

/* Prefixes: the dynamic loader's variables and clawbox's own. */
static const char *const reserved_prefixes[] = {"LD_", "CLAWBOX_"};

/* Proxy variables: curl, wget and Go read <scheme>_proxy in lower or upper
 * case, and Python's urllib in any case, for any scheme. */
static const char proxy_suffix[] = "_proxy";

static bool name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

static bool valid_env_name(const char *key, size_t len)
{
    if (len == 0 || len > CB_CT_ENV_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(key[i], i == 0))
            return false;
    return true;
}

static bool is_reserved(const char *key, size_t len)
{
    for (size_t i = 0; i < CB_ARRAY_LEN(reserved); i++)
        if (strcmp(key, reserved[i]) == 0)
            return true;
    for (size_t i = 0; i < CB_ARRAY_LEN(reserved_prefixes); i++)
        if (strncmp(key, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
            return true;
    size_t n = sizeof(proxy_suffix) - 1;
    return len >= n && strcasecmp(key + len - n, proxy_suffix) == 0;
}

/* A key shown in a message: at most 64 bytes of it, anything but printable
 * ASCII as '?', so that the message stays one readable line. */
static void shown(const char *key, size_t len, char out[70])
{
    size_t n = len > 64 ? 64 : len;
    for (size_t i = 0; i < n; i++)
        out[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
    memcpy(out + n, len > n ? "..." : "", len > n ? 4 : 1);
}

int cb_ct_env_check(const char *key, struct cb_error *err)
{
    size_t len = strnlen(key, CB_CT_ENV_KEY_MAX + 1);
    char name[70];
    shown(key, len, name);
    if (!valid_env_name(key, len))
        return cb_error_set(err, -EINVAL,
                            "environment key \"%s\" is not a valid name "
                            "([A-Za-z_][A-Za-z0-9_]*, at most %u bytes)",
                            name, CB_CT_ENV_KEY_MAX);
    if (is_reserved(key, len))
        return cb_error_set(err, -EINVAL, "environment key \"%s\" is reserved", name);
    return 0;
}
