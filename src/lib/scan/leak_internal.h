/* Scanner internals shared with the output sanitizer. */
#ifndef CB_SCAN_LEAK_INTERNAL_H
#define CB_SCAN_LEAK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "scan/leak.h"
#include "scan/views.h"

/* Upper bound of cb__pattern_count(). */
#define CB__MAX_PATTERNS 40
/* Past this many literal occurrences, a pattern whose unanchored search is
 * fast runs once from the first one instead of anchored at each. */
#define CB__CAND_ANCHORED_MAX 64

struct cb__cand {
    size_t n;         /* literal occurrences seen */
    size_t min_start; /* the first of them (hits arrive out of order) */
    size_t *pos;      /* all n of them */
    size_t cap;
};

/* A span of the original text to redact, with what was found there. */
struct cb__span {
    size_t s, e;
    uint32_t who; /* secret (registered index) or pattern index */
    uint8_t kind; /* enum cb_leak_kind */
    uint8_t enc;  /* enum cb_leak_encoding */
    uint8_t depth;
};

struct cb__spans {
    struct cb__span *v;
    size_t n, cap;
};

/* One pass of the automaton over every view of a text. */
struct cb__collect {
    struct cb__views views;
    struct cb__spans secrets; /* every verified occurrence, original offsets */
    struct cb__cand cand[CB_LEAK_URL_ROUNDS + 1][CB__MAX_PATTERNS];
    uint64_t grown[CB_LEAK_URL_ROUNDS + 1]; /* bit i of [k]: cand[k][i].pos is allocated */
};
_Static_assert(CB__MAX_PATTERNS <= 64, "a pattern is a bit of cb__collect.grown");

/* Returns a new collect (free with cb__collect_free); with `views` false,
 * only the text itself is scanned. len <= CB_LEAK_MAX_INPUT. */
struct cb__collect *cb__collect(const struct cb_leak_scanner *sc, const char *data, size_t len,
                                bool views);
void cb__collect_free(struct cb__collect *c);
/* The leftmost match of pattern i in view k, trying only where its literals
 * occurred. Spans are in view offsets. 1 found, 0 none, < 0 error. */
int cb__collect_first(const struct cb__collect *c, size_t k, size_t i, void *md, size_t *ms,
                      size_t *me, struct cb_error *err);
void cb__spans_push(struct cb__spans *sp, struct cb__span s);

enum {
    /* Evaluate patterns on the percent-decoded text too (LeakDetector);
     * without it only on the text itself (OutputScanner). */
    CB__SCAN_PATTERN_VIEWS = 1u << 0,
    /* Include the injection patterns (replaced by "[BLOCKED]"). */
    CB__SCAN_INJECTION = 1u << 1,
};

/* What occurs in data: found_secret[i] for each registered secret i (array
 * of cb__leak_scanner_secrets() entries, may be NULL), found_pattern[p] for
 * each pattern in the catalogue. Returns 0, or a negative code when a pattern
 * could not be evaluated (the caller fails closed). */
int cb__leak_summarise(const struct cb_leak_scanner *sc, const char *data, size_t len,
                       unsigned mode, bool *found_secret, bool found_pattern[CB__MAX_PATTERNS],
                       struct cb_error *err);

/* The same, handing the pass over the text to the caller in *keep (free
 * it with cb__collect_free; NULL when the text is too large to scan): the
 * redaction that follows a dirty summary works from it. */
int cb__leak_summarise_keep(const struct cb_leak_scanner *sc, const char *data, size_t len,
                            unsigned mode, bool *found_secret, bool found_pattern[CB__MAX_PATTERNS],
                            struct cb__collect **keep, struct cb_error *err);

/* cb_leak_redact with a mode. */
int cb__leak_redact_mode(const struct cb_leak_scanner *sc, const char *data, size_t len,
                         unsigned mode, char **out, size_t *out_len, size_t *n_redacted,
                         struct cb_error *err);

/* The index given to cb_leak_scanner_new of registered secret i, and its
 * name (NULL if none was given). */
size_t cb__leak_secret_index(const struct cb_leak_scanner *sc, size_t i);
const char *cb__leak_secret_name(const struct cb_leak_scanner *sc, size_t i);
/* The scanner with no secrets that cb_sanitize_* use when given none. */
const struct cb_leak_scanner *cb__leak_default(struct cb_error *err);

#endif
