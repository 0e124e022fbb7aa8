/* Fragments of secrets: finds every run of text, CB__FRAG_MIN_RUN
 * characters or longer, that also occurs in a secret, in any letter case.
 * A tool that prints a secret in pieces, or an upstream that hands it out
 * half at a time, leaves pieces the whole-form automaton cannot see.
 *
 * Every 8-byte window of each source (a secret, its reversal, its
 * letters-and-digits skeleton) is indexed by its case-folded bytes; the text
 * is probed every CB__FRAG_TEXT_STRIDE (5) bytes, and a probe that hits is
 * extended left and right along the source to the whole common run. A run
 * of 12 bytes always contains a probe at a multiple of 5 whose 8 bytes lie
 * inside it, so every run of 12 is found. A store too large for the index
 * is indexed every s bytes (s coprime with 5); runs of 5s + 7 are found
 * then.
 *
 * Windows that occur in two different secrets are not indexed: text that
 * secrets share (a common prefix such as a JWT header) is not secret, and
 * it would make every probe of it walk every secret. This also bounds the
 * work of one probe. */
#ifndef CB_SCAN_FRAG_H
#define CB_SCAN_FRAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CB__FRAG_MIN_RUN     12
#define CB__FRAG_KEY         8
#define CB__FRAG_TEXT_STRIDE 5
/* Index entries at most (16 bytes each); beyond, the source stride grows. */
#define CB__FRAG_MAX_ENTRIES (1u << 20)

struct cb__frag;

/* Called for each run found: [s, e) in the scanned text. */
typedef void (*cb__frag_hit_fn)(void *ctx, uint32_t secret, uint8_t enc, size_t s, size_t e);

struct cb__frag *cb__frag_new(void);
/* Adds a source (copied; wiped on free). Sources shorter than
 * CB__FRAG_KEY are ignored. A run is reported when it is at least
 * CB__FRAG_MIN_RUN long, or the whole source when that is shorter. */
void cb__frag_add(struct cb__frag *f, const unsigned char *p, size_t len, uint32_t secret,
                  uint8_t enc);
/* Builds the index once every source is added. */
void cb__frag_build(struct cb__frag *f);
void cb__frag_free(struct cb__frag *f);
/* True when the index holds nothing (scanning would find nothing). */
bool cb__frag_empty(const struct cb__frag *f);
/* The source stride the index was built with (1 unless the store is
 * huge). */
unsigned cb__frag_stride(const struct cb__frag *f);
void cb__frag_scan(const struct cb__frag *f, const unsigned char *p, size_t len,
                   cb__frag_hit_fn hit, void *ctx);
/* The same over the text's skeleton: its ASCII letters and digits alone,
 * so that a source spaced out, split by any separators, written as UTF-16
 * or as an array of characters reads as one word. A run is reported from
 * its first letter or digit to its last, with whatever lies between. */
void cb__frag_scan_skeleton(const struct cb__frag *f, const unsigned char *p, size_t len,
                            cb__frag_hit_fn hit, void *ctx);
/* Tests set this to run the portable skeleton code where SSSE3 exists. */
extern bool cb__frag_scalar;
/* The skeleton of s (at most n bytes to out); returns its length. */
size_t cb__frag_skeleton(const unsigned char *s, size_t n, unsigned char *out);

#endif
