#include "core/json.h"
#include "core/utf8.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

void cb_json_setup(void)
{
    json_set_alloc_funcs(cb_xmalloc, free);
}

json_t *cb_json_text(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (v != NULL)
        return v;
    size_t len = 0;
    char *fixed = cb_utf8_lossy(s, n, &len);
    v = json_stringn(fixed, len);
    free(fixed);
    return v != NULL ? v : json_string("");
}

char *cb_json_dump_or(const json_t *v, size_t flags, const char *fallback)
{
    char *s = v != NULL ? json_dumps(v, flags) : NULL;
    return s != NULL ? s : cb_xstrdup(fallback);
}

const char *cb_json_plain_string(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    return strlen(s) == json_string_length(v) ? s : NULL;
}
