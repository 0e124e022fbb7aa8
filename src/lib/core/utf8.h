/* UTF-8 helpers for text that crosses the sandbox boundary. */
#ifndef CB_CORE_UTF8_H
#define CB_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid. */
size_t cb_utf8_seq_len(const unsigned char *p, size_t n);

/* Returns a NUL-terminated copy of s with each invalid byte replaced by
 * U+FFFD and NUL bytes kept (use *out_len). */
char *cb_utf8_lossy(const char *s, size_t n, size_t *out_len);

#endif
