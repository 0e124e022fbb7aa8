/* Decoded views of a text (percent, JSON \u and HTML numeric escapes), each with a map back to the
 * offsets of the original, so a match found in decoded text redacts the original bytes that encode
 * it. */
#ifndef CB_SCAN_VIEWS_H
#define CB_SCAN_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "scan/leak.h"

struct cb__view {
    const unsigned char *p;
    size_t len;
    unsigned depth; /* decoding rounds */
    /* Offsets (in this view) of the bytes decoded from an escape of the
     * parent view, increasing, and the bytes saved by the escapes up to and
     * including each: offset j here is j + cum[k - 1] there, with k the
     * number of escapes before j. */
    uint32_t *esc, *cum;
    size_t n_esc;
    const struct cb__view *parent;
    unsigned char *own;
};

struct cb__views {
    struct cb__view v[CB_LEAK_URL_ROUNDS + 1];
    size_t n;
};

/* v[0] is the text itself (not copied); v[k] decodes every valid %XX of
 * v[k-1] (either hex case; '+' stays '+'), every \u00XX below \u0080
 * (JSON's escape of an ASCII character: a secret written with each
 * character escaped, or text a tool printed inside a JSON string) and
 * every HTML numeric reference below 128 ("&#115;", "&#x73;"), for at
 * most `rounds` rounds. Longer code points stay escaped: secrets are
 * ASCII in practice, and a decoded view never grows. Stops at the first
 * round that changes nothing. len must be at most CB_LEAK_MAX_INPUT. */
void cb__views_build(const unsigned char *data, size_t len, unsigned rounds, struct cb__views *vs);
/* Wipes the decoded copies (they may hold secrets) and frees them. */
void cb__views_free(struct cb__views *vs);
/* The offset in the original text of offset i of view v (i <= v->len). */
size_t cb__view_raw(const struct cb__view *v, size_t i);

#endif
