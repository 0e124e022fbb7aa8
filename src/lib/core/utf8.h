/* UTF-8 helpers for text that crosses the sandbox boundary, and the one
 * formatter for every message that may end up inside JSON: jansson
 * refuses a string that is not valid UTF-8, so a message cut inside a
 * sequence, or one quoting outside bytes, must be repaired before it gets
 * there. */
#ifndef CB_CORE_UTF8_H
#define CB_CORE_UTF8_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid. Valid
 * means RFC 3629 well-formed: no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
size_t cb_utf8_seq_len(const unsigned char *p, size_t n);

/* Length of the longest valid UTF-8 prefix of s[0..n): n when all of it is
 * valid. */
size_t cb_utf8_valid_len(const char *s, size_t n);

/* Writes the UTF-8 encoding of the Unicode scalar value cp to out and
 * returns its length (1-4); returns 0 and writes nothing for a surrogate or
 * a value past U+10FFFF. */
size_t cb_utf8_put(uint32_t cp, char out[4]);

/* Returns a NUL-terminated copy of s with each invalid byte replaced by
 * U+FFFD and NUL bytes kept (use *out_len). */
char *cb_utf8_lossy(const char *s, size_t n, size_t *out_len);

/* The largest length <= max at which s[0..n) can be cut without splitting
 * a UTF-8 sequence (for valid input; at most three bytes are given up). */
size_t cb_utf8_cut(const char *s, size_t n, size_t max);

/* Replaces, in place, every byte of s[0..n) that is not part of a valid
 * UTF-8 sequence with '?'. The length stays the same. */
void cb_utf8_scrub(char *s, size_t n);

/* vsnprintf into buf (cap > 0 bytes) whose result is always valid UTF-8:
 * a cut at the end never splits a sequence, and invalid bytes that came
 * in through the arguments become '?'. Returns the length written. */
size_t cb_utf8_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
