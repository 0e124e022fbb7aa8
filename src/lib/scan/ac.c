#include "scan/ac.h"
#include "core/util.h"

#include <assert.h>
#include <string.h>

#define AC_FLAG 0x80000000u /* target state has outputs */
#define AC_MASK 0x7fffffffu
#define AC_NONE UINT32_MAX

struct cb__ac {
    uint32_t *delta; /* nstates * ncls; premultiplied target, AC_FLAG */
    uint8_t cls[256];
    uint32_t ncls;
    uint32_t nstates;
    uint32_t *out_first; /* per state, into out_ids; nstates + 1 entries */
    uint32_t *out_ids;
    uint32_t *dict; /* nearest proper suffix state with own outputs */
    size_t maxlen;  /* longest needle */
};

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Byte classes: every byte that occurs in no needle shares class 0, which
 * keeps the rows short (about 70 classes for text secrets, not 256). */
static void build_classes(struct cb__ac *ac, const struct cb__ac_needle *nd, size_t n)
{
    bool used[256] = {false};
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < nd[i].len; j++)
            used[fold(nd[i].bytes[j])] = true;
    uint8_t id[256] = {0};
    uint32_t next = 1;
    for (int c = 0; c < 256; c++)
        if (used[c])
            id[c] = (uint8_t)next++;
    for (int c = 0; c < 256; c++)
        ac->cls[c] = id[fold((unsigned char)c)];
    ac->ncls = next; /* at most 231: A-Z fold away, plus class 0 */
}

/* Inserts every needle into the trie (rows of `delta`, 0 = no child) and
 * returns the terminal state of each needle in `term`. */
static void build_trie(struct cb__ac *ac, const struct cb__ac_needle *nd, size_t n, uint32_t *term)
{
    uint32_t ncls = ac->ncls;
    ac->nstates = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = 0;
        for (size_t j = 0; j < nd[i].len; j++) {
            uint32_t *slot = &ac->delta[(size_t)s * ncls + ac->cls[nd[i].bytes[j]]];
            if (*slot == 0)
                *slot = ac->nstates++;
            s = *slot;
        }
        term[i] = s;
    }
}

/* Groups the needle ids by terminal state (counting sort). */
static void build_outputs(struct cb__ac *ac, const struct cb__ac_needle *nd, size_t n,
                          const uint32_t *term)
{
    ac->out_first = cb_xcalloc((size_t)ac->nstates + 1, sizeof(uint32_t));
    ac->out_ids = cb_xcalloc(n ? n : 1, sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        ac->out_first[term[i] + 1]++;
    for (uint32_t s = 0; s < ac->nstates; s++)
        ac->out_first[s + 1] += ac->out_first[s];
    uint32_t *fill = cb_xcalloc(ac->nstates, sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        ac->out_ids[ac->out_first[term[i]] + fill[term[i]]++] = nd[i].id;
    free(fill);
}

static bool has_own(const struct cb__ac *ac, uint32_t s)
{
    return ac->out_first[s + 1] > ac->out_first[s];
}

/* Breadth-first pass: failure links, dictionary links, and the missing
 * transitions filled from the failure state, which turns the trie into a
 * DFA (one table load per input byte). */
static void build_links(struct cb__ac *ac)
{
    uint32_t ncls = ac->ncls;
    uint32_t *fail = cb_xcalloc(ac->nstates, sizeof(uint32_t));
    uint32_t *queue = cb_xcalloc(ac->nstates, sizeof(uint32_t));
    ac->dict = cb_xcalloc(ac->nstates, sizeof(uint32_t));
    size_t head = 0, tail = 0;
    ac->dict[0] = AC_NONE;
    for (uint32_t c = 0; c < ncls; c++) {
        uint32_t t = ac->delta[c];
        if (t != 0) {
            fail[t] = 0;
            ac->dict[t] = AC_NONE;
            queue[tail++] = t;
        }
    }
    while (head < tail) {
        uint32_t s = queue[head++];
        uint32_t *row = &ac->delta[(size_t)s * ncls];
        const uint32_t *frow = &ac->delta[(size_t)fail[s] * ncls];
        for (uint32_t c = 0; c < ncls; c++) {
            uint32_t t = row[c];
            if (t == 0) {
                row[c] = frow[c];
                continue;
            }
            uint32_t f = frow[c];
            fail[t] = f;
            ac->dict[t] = has_own(ac, f) ? f : ac->dict[f];
            queue[tail++] = t;
        }
    }
    free(queue);
    free(fail);
}

static void premultiply(struct cb__ac *ac)
{
    size_t total = (size_t)ac->nstates * ac->ncls;
    for (size_t i = 0; i < total; i++) {
        uint32_t t = ac->delta[i];
        bool out = has_own(ac, t) || ac->dict[t] != AC_NONE;
        ac->delta[i] = t * ac->ncls | (out ? AC_FLAG : 0);
    }
}

struct cb__ac *cb__ac_build(const struct cb__ac_needle *needles, size_t n)
{
    if (n == 0)
        return NULL;
    struct cb__ac *ac = cb_xcalloc(1, sizeof(*ac));
    build_classes(ac, needles, n);
    size_t max_states = 1;
    for (size_t i = 0; i < n; i++) {
        max_states += needles[i].len;
        ac->maxlen = needles[i].len > ac->maxlen ? needles[i].len : ac->maxlen;
    }
    /* Premultiplied offsets must fit below the flag bit. */
    assert(max_states * ac->ncls < AC_MASK);
    ac->delta = cb_xcalloc(max_states * ac->ncls, sizeof(uint32_t));
    uint32_t *term = cb_xcalloc(n, sizeof(uint32_t));
    build_trie(ac, needles, n, term);
    ac->delta = cb_xrealloc(ac->delta, (size_t)ac->nstates * ac->ncls * sizeof(uint32_t));
    build_outputs(ac, needles, n, term);
    free(term);
    build_links(ac);
    premultiply(ac);
    return ac;
}

void cb__ac_free(struct cb__ac *ac)
{
    if (ac == NULL)
        return;
    /* The transitions spell out the needles' leading bytes. */
    explicit_bzero(ac->delta, (size_t)ac->nstates * ac->ncls * sizeof(uint32_t));
    free(ac->delta);
    free(ac->out_first);
    free(ac->out_ids);
    free(ac->dict);
    free(ac);
}

size_t cb__ac_states(const struct cb__ac *ac)
{
    return ac ? ac->nstates : 0;
}

static void report_hits(const struct cb__ac *ac, uint32_t s, size_t end, cb__ac_hit_fn hit,
                        void *ctx)
{
    for (; s != AC_NONE; s = ac->dict[s])
        for (uint32_t k = ac->out_first[s]; k < ac->out_first[s + 1]; k++)
            hit(ctx, ac->out_ids[k], end);
}

/* Runs the DFA over p[from, to) from state s, reporting when report is
 * set; returns the final state. */
static uint32_t run(const struct cb__ac *ac, const unsigned char *p, size_t from, size_t to,
                    uint32_t s, bool rep, cb__ac_hit_fn hit, void *ctx)
{
    const uint32_t *delta = ac->delta;
    const uint8_t *cls = ac->cls;
    for (size_t i = from; i < to; i++) {
        uint32_t t = delta[s + cls[p[i]]];
        s = t & AC_MASK;
        if (__builtin_expect((t & AC_FLAG) != 0, 0) && rep)
            report_hits(ac, s / ac->ncls, i + 1, hit, ctx);
    }
    return s;
}

#define STREAMS 4

/* The state a stream starting at `at` must have: the DFA run over the
 * maxlen - 1 bytes before it (a needle ending at or after `at` starts no
 * earlier than that). */
static uint32_t warm(const struct cb__ac *ac, const unsigned char *p, size_t at)
{
    size_t from = at > ac->maxlen - 1 ? at - (ac->maxlen - 1) : 0;
    return run(ac, p, from, at, 0, false, NULL, NULL);
}

#define STEP(k)                                                                                    \
    do {                                                                                           \
        uint32_t t = delta[s##k + cls[p[k * q + i]]];                                              \
        s##k = t & AC_MASK;                                                                        \
        if (__builtin_expect((t & AC_FLAG) != 0, 0))                                               \
            report_hits(ac, s##k / ac->ncls, k * q + i + 1, hit, ctx);                             \
    } while (0)

/* A DFA is bound by the latency of one table load per byte, each depending
 * on the last. Four streams over the four quarters of the input, each
 * started from the state warm() gives it, run interleaved so their loads
 * overlap; every occurrence is reported once, by the stream whose quarter
 * it ends in. Hits come out of order. */
void cb__ac_scan(const struct cb__ac *ac, const unsigned char *p, size_t n, cb__ac_hit_fn hit,
                 void *ctx)
{
    if (ac == NULL)
        return;
    if (n < 4096) {
        run(ac, p, 0, n, 0, true, hit, ctx);
        return;
    }
    const uint32_t *delta = ac->delta;
    const uint8_t *cls = ac->cls;
    size_t q = n / STREAMS;
    uint32_t s0 = 0, s1 = warm(ac, p, q), s2 = warm(ac, p, 2 * q), s3 = warm(ac, p, 3 * q);
    for (size_t i = 0; i < q; i++) {
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
    }
    run(ac, p, STREAMS * q, n, s3, true, hit, ctx);
}
