#include "scan/frag.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* Case folding for the index keys: ORing 0x20 into every byte maps 'A' to
 * 'a' (and a few punctuation pairs onto each other, which only lets more
 * probes through to the exact check). */
#define FOLD64 0x2020202020202020ull
#define HASH1  0x9e3779b97f4a7c15ull
#define HASH2  0xc2b2ae3d27d4eb4full
/* Offsets kept per source for one window: a window repeated more often
 * (a run of one character) finds the same runs from any of them. */
#define MAX_DUP 8
#define NONE    UINT32_MAX

struct source {
    unsigned char *p;
    size_t len;
    uint32_t secret;
    uint8_t enc;
};

struct entry {
    uint64_t key;
    uint32_t src, off;
};

/* One distinct key: its entries are entries[first, first + n). */
struct slot {
    uint64_t key;
    uint32_t first, n;
};

struct cb__frag {
    struct source *src;
    size_t n_src, cap_src;
    unsigned stride;
    struct entry *entries;
    size_t n_entries;
    struct slot *slots; /* open addressing; n == 0 marks a free slot */
    unsigned slot_shift;
    uint64_t *bits; /* one bit per hash of a key: the probe's first test */
    unsigned bit_shift;
};

static unsigned char fold1(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static uint64_t key_at(const unsigned char *p)
{
    uint64_t k;
    memcpy(&k, p, sizeof(k));
    return k | FOLD64;
}

struct cb__frag *cb__frag_new(void)
{
    struct cb__frag *f = cb_xcalloc(1, sizeof(*f));
    f->stride = 1;
    return f;
}

void cb__frag_add(struct cb__frag *f, const unsigned char *p, size_t len, uint32_t secret,
                  uint8_t enc)
{
    if (len < CB__FRAG_KEY)
        return;
    if (f->n_src == f->cap_src) {
        f->cap_src = f->cap_src ? 2 * f->cap_src : 16;
        f->src = cb_xrealloc(f->src, f->cap_src * sizeof(*f->src));
    }
    unsigned char *copy = cb_xmalloc(len);
    memcpy(copy, p, len);
    f->src[f->n_src++] = (struct source){copy, len, secret, enc};
}

/* The smallest stride that keeps the index within its bound, coprime
 * with the text stride (so that some probe of a long enough run always
 * lands on an indexed window). */
static unsigned pick_stride(const struct cb__frag *f)
{
    for (unsigned s = 1;; s += s % CB__FRAG_TEXT_STRIDE == CB__FRAG_TEXT_STRIDE - 1 ? 2 : 1) {
        size_t total = 0;
        for (size_t i = 0; i < f->n_src; i++)
            total += (f->src[i].len - CB__FRAG_KEY) / s + 1;
        if (total <= CB__FRAG_MAX_ENTRIES)
            return s;
    }
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* Keeps a group of equal keys (from index g on, n entries) unless it spans
 * two secrets, with at most MAX_DUP entries per source. Returns the number
 * kept, moved to `to`. */
static size_t compact_group(struct cb__frag *f, size_t g, size_t n, size_t to)
{
    struct entry *e = f->entries;
    for (size_t i = g + 1; i < g + n; i++)
        if (f->src[e[i].src].secret != f->src[e[g].src].secret)
            return 0;
    size_t kept = 0, run = 0;
    for (size_t i = g; i < g + n; i++) {
        run = i > g && e[i].src == e[i - 1].src ? run + 1 : 0;
        if (run < MAX_DUP)
            e[to + kept++] = e[i];
    }
    return kept;
}

static unsigned log2_at_least(size_t n, unsigned lo, unsigned hi)
{
    unsigned b = lo;
    while (b < hi && ((size_t)1 << b) < n)
        b++;
    return b;
}

static void slot_put(struct cb__frag *f, uint64_t key, uint32_t first, uint32_t n)
{
    size_t mask = ((size_t)1 << (64 - f->slot_shift)) - 1;
    size_t i = (size_t)((key * HASH2) >> f->slot_shift);
    while (f->slots[i].n != 0)
        i = (i + 1) & mask;
    f->slots[i] = (struct slot){key, first, n};
    uint64_t b = (key * HASH1) >> f->bit_shift;
    f->bits[b >> 6] |= 1ull << (b & 63);
}

/* Groups the sorted entries into slots and sets the filter bits. */
static void build_table(struct cb__frag *f, size_t groups)
{
    unsigned sb = log2_at_least(2 * groups, 4, 40);
    /* 32 bits a key: the filter lets about 3% of probes through to the
     * table, and for a hundred secrets fits a 32 KiB L1 cache. */
    unsigned bb = log2_at_least(32 * groups, 12, 24);
    f->slot_shift = 64 - sb;
    f->bit_shift = 64 - bb;
    f->slots = cb_xcalloc((size_t)1 << sb, sizeof(*f->slots));
    f->bits = cb_xcalloc(((size_t)1 << bb) / 64, sizeof(uint64_t));
    for (size_t g = 0; g < f->n_entries;) {
        size_t n = 1;
        while (g + n < f->n_entries && f->entries[g + n].key == f->entries[g].key)
            n++;
        slot_put(f, f->entries[g].key, (uint32_t)g, (uint32_t)n);
        g += n;
    }
}

void cb__frag_build(struct cb__frag *f)
{
    f->stride = pick_stride(f);
    size_t n = 0;
    for (size_t i = 0; i < f->n_src; i++)
        n += (f->src[i].len - CB__FRAG_KEY) / f->stride + 1;
    f->entries = cb_xcalloc(n ? n : 1, sizeof(*f->entries));
    n = 0;
    for (size_t i = 0; i < f->n_src; i++)
        for (size_t o = 0; o + CB__FRAG_KEY <= f->src[i].len; o += f->stride)
            f->entries[n++] = (struct entry){key_at(f->src[i].p + o), (uint32_t)i, (uint32_t)o};
    qsort(f->entries, n, sizeof(*f->entries), cmp_entry);
    size_t kept = 0, groups = 0;
    for (size_t g = 0; g < n;) {
        size_t len = 1;
        while (g + len < n && f->entries[g + len].key == f->entries[g].key)
            len++;
        size_t k = compact_group(f, g, len, kept);
        kept += k;
        groups += k > 0;
        g += len;
    }
    f->n_entries = kept;
    build_table(f, groups);
}

void cb__frag_free(struct cb__frag *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_src; i++) {
        explicit_bzero(f->src[i].p, f->src[i].len);
        free(f->src[i].p);
    }
    /* The keys spell out the secrets, case-folded. */
    if (f->entries)
        explicit_bzero(f->entries, f->n_entries * sizeof(*f->entries));
    if (f->slots)
        explicit_bzero(f->slots, ((size_t)1 << (64 - f->slot_shift)) * sizeof(*f->slots));
    free(f->src);
    free(f->entries);
    free(f->slots);
    free(f->bits);
    free(f);
}

bool cb__frag_empty(const struct cb__frag *f)
{
    return f == NULL || f->n_entries == 0;
}

unsigned cb__frag_stride(const struct cb__frag *f)
{
    return f->stride;
}

static const struct slot *lookup(const struct cb__frag *f, uint64_t key)
{
    size_t mask = ((size_t)1 << (64 - f->slot_shift)) - 1;
    for (size_t i = (size_t)((key * HASH2) >> f->slot_shift);; i = (i + 1) & mask) {
        const struct slot *s = &f->slots[i];
        if (s->n == 0)
            return NULL;
        if (s->key == key)
            return s;
    }
}

struct scan_state {
    const struct cb__frag *f;
    const unsigned char *p;
    size_t len;
    bool skel;       /* the text is read as its skeleton */
    size_t *covered; /* per source: the end of the last run reported */
    cb__frag_hit_fn hit;
    void *ctx;
};

/* Bitwise, not short-circuit: no branch. */
static bool is_alnum(unsigned char c)
{
    return ((unsigned)(c - '0') < 10u) | ((unsigned)((c | 0x20) - 'a') < 26u);
}

/* The text byte before i that the scan reads (SIZE_MAX if none). */
static size_t prev_byte(const struct scan_state *st, size_t i)
{
    while (i > 0) {
        i--;
        if (!st->skel || is_alnum(st->p[i]))
            return i;
    }
    return SIZE_MAX;
}

/* The text byte at or after i that the scan reads (len if none). */
static size_t next_byte(const struct scan_state *st, size_t i)
{
    while (i < st->len && st->skel && !is_alnum(st->p[i]))
        i++;
    return i;
}

/* Extends the match of the text byte at i with source byte o (the start of
 * an 8-byte window that the probe matched) to the whole common run, and
 * reports it when long enough. */
static void extend(struct scan_state *st, const struct source *s, uint32_t si, size_t i, size_t o)
{
    size_t first = i, last = SIZE_MAX, n = 0;
    for (size_t t = prev_byte(st, i), k = o; t != SIZE_MAX && k > 0; t = prev_byte(st, t), k--) {
        if (fold1(st->p[t]) != fold1(s->p[k - 1]))
            break;
        first = t;
        n++;
    }
    for (size_t t = next_byte(st, i), k = o; t < st->len && k < s->len;
         t = next_byte(st, t + 1), k++) {
        if (fold1(st->p[t]) != fold1(s->p[k]))
            break;
        last = t;
        n++;
    }
    size_t need = s->len < CB__FRAG_MIN_RUN ? s->len : CB__FRAG_MIN_RUN;
    if (last == SIZE_MAX || n < need)
        return;
    st->covered[si] = last + 1;
    st->hit(st->ctx, s->secret, s->enc, first, last + 1);
}

/* A probe that found the window's key: it starts at text byte i and ends
 * at `end` - 1. */
static void probe(struct scan_state *st, const struct slot *sl, size_t i, size_t end)
{
    if (st->covered == NULL)
        st->covered = cb_xcalloc(st->f->n_src, sizeof(size_t));
    for (uint32_t k = sl->first; k < sl->first + sl->n; k++) {
        const struct entry *e = &st->f->entries[k];
        /* Inside a run already reported for this source: its other
         * alignments can only find runs that overlap it. */
        if (end <= st->covered[e->src])
            continue;
        extend(st, &st->f->src[e->src], e->src, i, e->off);
    }
}

static bool filter(const struct cb__frag *f, uint64_t key)
{
    uint64_t b = (key * HASH1) >> f->bit_shift;
    return (f->bits[b >> 6] >> (b & 63)) & 1;
}

void cb__frag_scan(const struct cb__frag *f, const unsigned char *p, size_t len,
                   cb__frag_hit_fn hit, void *ctx)
{
    if (cb__frag_empty(f) || len < CB__FRAG_KEY)
        return;
    struct scan_state st = {f, p, len, false, NULL, hit, ctx};
    for (size_t i = 0; i + CB__FRAG_KEY <= len; i += CB__FRAG_TEXT_STRIDE) {
        uint64_t key = key_at(p + i);
        const struct slot *sl;
        if (__builtin_expect(filter(f, key), 0) && (sl = lookup(f, key)) != NULL)
            probe(&st, sl, i, i + CB__FRAG_KEY);
    }
    free(st.covered);
}

/* The skeleton is made a block at a time on the stack (a fresh buffer the
 * size of the text would cost a page fault every 4 KiB), with the last 7
 * bytes of one block carried into the next so that every window is
 * probed once, at every CB__FRAG_TEXT_STRIDE-th skeleton byte. The text offsets of a block's
 * bytes are only worked out when a probe in it hits. */
#define SKEL_BLOCK 1024

bool cb__frag_scalar;

struct skel_block {
    unsigned char b[SKEL_BLOCK + 2 * CB__FRAG_KEY]; /* 8 bytes of slack for wide stores */
    uint32_t pos[SKEL_BLOCK + CB__FRAG_KEY];        /* text offset of each byte */
    uint32_t carry_pos[CB__FRAG_KEY];
    size_t n, carry; /* bytes in b; the first `carry` came from earlier blocks */
    size_t from, to; /* the text this block read */
    bool have_pos;
    uint64_t base; /* skeleton offset of b[0] */
};

/* The letters and digits of p[0, n) to out; returns how many. Branch-free:
 * text alternates words and separators, and a branch would mispredict at
 * every boundary. */
static size_t compact_scalar(unsigned char *out, const unsigned char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        out[o] = p[i];
        o += is_alnum(p[i]);
    }
    return o;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <pthread.h>

/* For each 8-bit mask, the pshufb control that packs the selected bytes to
 * the front. */
static uint8_t shuf[256][16];
static pthread_once_t shuf_once = PTHREAD_ONCE_INIT;
static bool have_ssse3;

static void shuf_init(void)
{
    for (int m = 0; m < 256; m++) {
        int k = 0;
        memset(shuf[m], 0x80, sizeof(shuf[m]));
        for (int bit = 0; bit < 8; bit++)
            if (m & (1 << bit))
                shuf[m][k++] = (uint8_t)bit;
    }
    __builtin_cpu_init();
    have_ssse3 = __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("popcnt");
}

/* 16 bytes at a time: compare for the two ranges, then pack each half with
 * pshufb. Writes up to 8 bytes past the result. */
__attribute__((target("ssse3,popcnt"))) static size_t
compact_ssse3(unsigned char *out, const unsigned char *p, size_t n)
{
    const __m128i d0 = _mm_set1_epi8('0' - 1), d1 = _mm_set1_epi8('9' + 1);
    const __m128i a0 = _mm_set1_epi8('a' - 1), a1 = _mm_set1_epi8('z' + 1);
    const __m128i lower = _mm_set1_epi8(0x20), eight = _mm_set1_epi8(8);
    size_t o = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i l = _mm_or_si128(x, lower);
        /* Signed compares: bytes >= 0x80 are negative and match neither. */
        __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(x, d0), _mm_cmplt_epi8(x, d1));
        __m128i let = _mm_and_si128(_mm_cmpgt_epi8(l, a0), _mm_cmplt_epi8(l, a1));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(dig, let));
        __m128i lo = _mm_shuffle_epi8(x, _mm_loadu_si128((const __m128i *)shuf[m & 0xff]));
        _mm_storel_epi64((__m128i *)(out + o), lo);
        o += (size_t)__builtin_popcount(m & 0xff);
        __m128i hc = _mm_add_epi8(_mm_loadu_si128((const __m128i *)shuf[m >> 8]), eight);
        _mm_storel_epi64((__m128i *)(out + o), _mm_shuffle_epi8(x, hc));
        o += (size_t)__builtin_popcount(m >> 8);
    }
    return o + compact_scalar(out + o, p + i, n - i);
}

static size_t compact(unsigned char *out, const unsigned char *p, size_t n)
{
    pthread_once(&shuf_once, shuf_init);
    return have_ssse3 && !cb__frag_scalar ? compact_ssse3(out, p, n) : compact_scalar(out, p, n);
}
#else
static size_t compact(unsigned char *out, const unsigned char *p, size_t n)
{
    return compact_scalar(out, p, n);
}
#endif

static void skel_fill(struct skel_block *k, const unsigned char *p, size_t from, size_t to)
{
    k->from = from;
    k->to = to;
    k->have_pos = false;
    k->n = k->carry + compact(k->b + k->carry, p + from, to - from);
}

static uint32_t skel_pos(struct skel_block *k, const unsigned char *p, size_t j)
{
    if (!k->have_pos) {
        memcpy(k->pos, k->carry_pos, k->carry * sizeof(uint32_t));
        size_t o = k->carry;
        for (size_t i = k->from; i < k->to; i++)
            if (is_alnum(p[i]))
                k->pos[o++] = (uint32_t)i;
        k->have_pos = true;
    }
    return k->pos[j];
}

/* Keeps the last (up to 7) bytes and their text offsets for the next
 * block: from this block's text, read backwards, and then from the bytes
 * it carried itself. */
static void skel_carry(struct skel_block *k, const unsigned char *p)
{
    size_t keep = k->n < CB__FRAG_KEY - 1 ? k->n : CB__FRAG_KEY - 1;
    uint32_t pos[CB__FRAG_KEY];
    size_t got = 0;
    for (size_t i = k->to; i > k->from && got < keep;)
        if (is_alnum(p[--i]))
            pos[keep - 1 - got++] = (uint32_t)i;
    for (size_t c = k->carry; got < keep; got++)
        pos[keep - 1 - got] = k->carry_pos[--c];
    memcpy(k->carry_pos, pos, keep * sizeof(uint32_t));
    memmove(k->b, k->b + k->n - keep, keep);
    k->base += k->n - keep;
    k->n = k->carry = keep;
}

static void skel_probe(struct scan_state *st, struct skel_block *k)
{
    const size_t step = CB__FRAG_TEXT_STRIDE;
    for (size_t j = (step - k->base % step) % step; j + CB__FRAG_KEY <= k->n; j += step) {
        uint64_t key = key_at(k->b + j);
        const struct slot *sl;
        if (__builtin_expect(filter(st->f, key), 0) && (sl = lookup(st->f, key)) != NULL)
            probe(st, sl, skel_pos(k, st->p, j), skel_pos(k, st->p, j + CB__FRAG_KEY - 1) + 1);
    }
}

void cb__frag_scan_skeleton(const struct cb__frag *f, const unsigned char *p, size_t len,
                            cb__frag_hit_fn hit, void *ctx)
{
    if (cb__frag_empty(f) || len < CB__FRAG_KEY)
        return;
    struct scan_state st = {f, p, len, true, NULL, hit, ctx};
    struct skel_block k;
    k.n = k.carry = 0;
    k.base = 0;
    for (size_t b = 0; b < len; b += SKEL_BLOCK) {
        skel_fill(&k, p, b, b + SKEL_BLOCK < len ? b + SKEL_BLOCK : len);
        skel_probe(&st, &k);
        skel_carry(&k, p);
    }
    free(st.covered);
}

size_t cb__frag_skeleton(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (is_alnum(s[i]))
            out[o++] = s[i];
    return o;
}
