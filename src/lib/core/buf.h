/* A growable byte buffer with a maximum size fixed at creation (the model is
 * curl's dynbuf). Appends past the maximum fail with -E2BIG and leave the
 * buffer unchanged. The data is always NUL-terminated for convenience, but
 * callers use `len`. */
#ifndef CB_CORE_BUF_H
#define CB_CORE_BUF_H

#include <stddef.h>

struct cb_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void cb_buf_init(struct cb_buf *b, size_t max);
void cb_buf_free(struct cb_buf *b);
void cb_buf_reset(struct cb_buf *b);
int cb_buf_append(struct cb_buf *b, const void *p, size_t n);
/* Appends n uninitialised bytes and returns where they start, or NULL
 * past the maximum. */
void *cb_buf_extend(struct cb_buf *b, size_t n);
int cb_buf_puts(struct cb_buf *b, const char *s);
int cb_buf_printf(struct cb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s percent-encoded for a URL query value: every byte but A-Z a-z 0-9
 * - . _ ~ / as %XX. */
int cb_buf_put_query(struct cb_buf *b, const char *s);
/* Hands the data to the caller (who frees it) and resets the buffer. */
char *cb_buf_steal(struct cb_buf *b, size_t *len);

#endif
