#include "core/error.h"
#include "core/utf8.h"

#include <stdarg.h>
#include <string.h>

/* Messages are built with cb_utf8_vformat: they quote outside text and are
 * cut to the buffer, and they end up in JSON (API errors, host-call
 * envelopes, audit reasons), which takes only valid UTF-8. */
int cb_error_set(struct cb_error *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    cb_utf8_vformat(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

void cb_error_prefix(struct cb_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char prefix[CB_ERROR_MSG_MAX];
    char old[CB_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = cb_utf8_vformat(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    /* prefix + ": " + old, cut to the buffer on a character boundary. */
    size_t m = strlen(old);
    size_t cap = sizeof(err->msg) - 1;
    n = cb_utf8_cut(prefix, n, cap);
    size_t sep = cap - n < 2 ? cap - n : 2;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", sep);
    m = cb_utf8_cut(old, m, cap - n - sep);
    memcpy(err->msg + n + sep, old, m);
    err->msg[n + sep + m] = '\0';
}

void cb_error_clear(struct cb_error *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}
