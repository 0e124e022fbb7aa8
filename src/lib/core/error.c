#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cb_error_set(struct cb_error *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
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
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    /* prefix + ": " + old, cut to the buffer. */
    size_t n = strlen(prefix);
    size_t m = strlen(old);
    size_t cap = sizeof(err->msg) - 1;
    if (n > cap)
        n = cap;
    memcpy(err->msg, prefix, n);
    size_t sep = cap - n < 2 ? cap - n : 2;
    memcpy(err->msg + n, ": ", sep);
    if (m > cap - n - sep)
        m = cap - n - sep;
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
