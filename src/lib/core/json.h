/* jansson set-up and the checked ways in which outside text becomes JSON.
 * jansson refuses (returns NULL for) a string that is not valid UTF-8,
 * and returns NULL when an allocation fails; either, used unchecked,
 * crashes the process. With cb_json_setup, allocation failure aborts like
 * every other allocation, so NULL can only mean invalid input. */
#ifndef CB_CORE_JSON_H
#define CB_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Gives jansson the aborting allocator. Call once, before any thread. */
void cb_json_setup(void);

/* A JSON string of s[0..n), with invalid UTF-8 replaced by U+FFFD. Never
 * NULL. */
json_t *cb_json_text(const char *s, size_t n);

/* The value of v when it is a string with no NUL inside (jansson allows
 * "\u0000", which C string functions would cut at), else NULL. */
const char *cb_json_plain_string(const json_t *v);

/* json_dumps of v, or a copy of `fallback` when v is NULL or cannot be
 * encoded. Never NULL; the caller frees. */
char *cb_json_dump_or(const json_t *v, size_t flags, const char *fallback);

#endif
