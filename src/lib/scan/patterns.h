/* The credential and prompt-injection pattern catalogue (the reference's plus the
 * token formats the reference misses), compiled once with PCRE2 JIT.
 *
 * The reference patterns are Rust `regex` sources. They are compiled with
 * PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, which gives the same
 * leftmost-first alternation, Unicode \w \s and case folding, and a `^` that
 * only matches at the start of the text. Arbitrary bytes are accepted; an
 * invalid UTF-8 sequence never matches. The added token formats are ASCII by
 * nature and compile in byte mode. Every match runs under a match limit, so
 * hostile input costs bounded time.
 *
 * Injection pattern 12 (`(?:^|\n)\s*role:verb`) is evaluated as its core
 * `role\s*:\s*verb` plus a backwards check for the line start. It finds the
 * same matches (same spans) but in linear time: the literal regex takes
 * quadratic time on long runs of blank lines under a backtracking engine. */
#ifndef CB_SCAN_PATTERNS_H
#define CB_SCAN_PATTERNS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

enum cb_pattern_kind {
    CB_PATTERN_CREDENTIAL,
    CB_PATTERN_INJECTION,
};

struct cb_pattern_info {
    const char *name;   /* stable identifier, e.g. "github_pat" */
    const char *source; /* the pattern as the reference spells it */
    enum cb_pattern_kind kind;
    bool reference; /* one of the reference's (order and source kept) */
};

/* Compiles the catalogue (once per process; thread-safe). Every other
 * function here calls it, so callers need it only to see an error early. */
int cb__patterns_init(struct cb_error *err);

size_t cb__pattern_count(void);
const struct cb_pattern_info *cb__pattern_get(size_t i);

/* Internal to the scan module. */

/* The literals of pattern i, as a list of NUL-terminated strings ended by an
 * empty string. Every match of the pattern starts with one of them (ASCII
 * case-insensitively; see cb__pattern_unicode_fold), which lets the leak
 * scanner's automaton find the only places where the regex can start. */
const char *cb__pattern_literals(size_t i);
/* True when the pattern folds case the Unicode way, so that U+017F (long s)
 * matches 's' and U+212A (Kelvin sign) matches 'k': the literals must then
 * be searched in those spellings too. */
bool cb__pattern_unicode_fold(size_t i);
/* True when the unanchored search is slow on ordinary text. */
bool cb__pattern_slow_search(size_t i);
/* The literal that must occur somewhere in the text for the pattern to
 * match at all (NULL if none). */
const char *cb__pattern_context(size_t i);
/* Finds the leftmost match of pattern i in s[0, len) that starts at or after
 * `start` (exactly at `start` when anchored; the role-marker pattern's
 * match may then begin at earlier whitespace, as the core is what is
 * anchored), with match data from cb__pattern_match_data. Returns 1 with
 * the span in *ms, *me, 0 when there is none, or a negative code when the
 * pattern could not be evaluated (match limit reached): callers must then
 * fail closed. The caller checks cb__pattern_context first. */
int cb__pattern_find_raw(size_t i, const char *s, size_t len, size_t start, bool anchored, void *md,
                         size_t *ms, size_t *me, struct cb_error *err);
void *cb__pattern_match_data(void);
void cb__pattern_match_data_free(void *md);

#endif
