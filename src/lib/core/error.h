/* Error contract: a function that can fail returns 0 or a negative errno-style
 * code and fills the `struct cb_error` passed last with a message. Callers add
 * context with cb_error_prefix() as the error travels up. */
#ifndef CB_CORE_ERROR_H
#define CB_CORE_ERROR_H

#include <stddef.h>

#define CB_ERROR_MSG_MAX 1024

struct cb_error {
    int code;
    char msg[CB_ERROR_MSG_MAX];
};

/* Sets err (when non-NULL) and returns `code`, which should be negative. */
int cb_error_set(struct cb_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to the message already in err. */
void cb_error_prefix(struct cb_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void cb_error_clear(struct cb_error *err);

#endif
