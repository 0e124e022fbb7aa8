/* Aho–Corasick automaton over ASCII-case-folded bytes, compiled to a dense
 * DFA over byte classes. It is the candidate filter of the leak scanner:
 * case folding only adds candidates, and every hit is verified by the caller
 * against the exact form, so one automaton serves case-sensitive and
 * case-insensitive needles alike. */
#ifndef CB_SCAN_AC_H
#define CB_SCAN_AC_H

#include <stddef.h>
#include <stdint.h>

struct cb__ac;

struct cb__ac_needle {
    const unsigned char *bytes;
    size_t len; /* >= 1 */
    uint32_t id;
};

/* Called for each needle occurrence; `end` is one past its last byte. */
typedef void (*cb__ac_hit_fn)(void *ctx, uint32_t id, size_t end);

/* Builds the automaton; the needle bytes are copied (folded). Never fails:
 * out-of-memory is fatal. Returns NULL when n == 0. */
struct cb__ac *cb__ac_build(const struct cb__ac_needle *needles, size_t n);
void cb__ac_free(struct cb__ac *ac);
void cb__ac_scan(const struct cb__ac *ac, const unsigned char *p, size_t n, cb__ac_hit_fn hit,
                 void *ctx);
size_t cb__ac_states(const struct cb__ac *ac);

#endif
