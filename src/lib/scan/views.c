#include "scan/views.h"
#include "core/util.h"

#include <stdbool.h>
#include <string.h>

struct decoder {
    unsigned char *d;
    size_t o;
    uint32_t *esc, *cum;
    size_t n_esc, cap;
    uint32_t shift; /* bytes the escapes so far saved */
};

static void emit_escape(struct decoder *dc, unsigned char c, size_t esc_len)
{
    if (dc->n_esc == dc->cap) {
        dc->cap = dc->cap ? dc->cap * 2 : 64;
        dc->esc = cb_xrealloc(dc->esc, dc->cap * sizeof(uint32_t));
        dc->cum = cb_xrealloc(dc->cum, dc->cap * sizeof(uint32_t));
    }
    dc->shift += (uint32_t)(esc_len - 1);
    dc->esc[dc->n_esc] = (uint32_t)dc->o;
    dc->cum[dc->n_esc++] = dc->shift;
    dc->d[dc->o++] = c;
}

/* An HTML numeric character reference below 128 at q ("&#115;",
 * "&#x73;", leading zeros allowed, at most 6 digits): its length, or 0. */
static size_t entity_at(const unsigned char *q, const unsigned char *end, unsigned char *c)
{
    size_t i = 2;
    if (end - q < 4 || q[1] != '#')
        return 0;
    bool hex = (q[2] | 0x20) == 'x';
    i += hex;
    unsigned v = 0, digits = 0;
    for (; q + i < end && digits < 6; i++, digits++) {
        int d = hex ? cb_hex_digit(q[i]) : (q[i] >= '0' && q[i] <= '9' ? q[i] - '0' : -1);
        if (d < 0)
            break;
        v = v * (hex ? 16 : 10) + (unsigned)d;
    }
    if (digits == 0 || v >= 0x80 || q + i >= end || q[i] != ';')
        return 0;
    *c = (unsigned char)v;
    return i + 1;
}

/* The byte an escape at q (end - q bytes left) stands for, and its length:
 * %XX (any byte), \u00XX below 0x80 (JSON's spelling of an ASCII
 * character; longer code points are left alone, see views.h), or an HTML
 * numeric reference below 128 (an error page's). 0 when q starts no
 * escape. */
static size_t escape_at(const unsigned char *q, const unsigned char *end, unsigned char *c)
{
    int hi, lo;
    if (*q == '&')
        return entity_at(q, end, c);
    if (*q == '%') {
        if (end - q < 3 || (hi = cb_hex_digit(q[1])) < 0 || (lo = cb_hex_digit(q[2])) < 0)
            return 0;
        *c = (unsigned char)(hi << 4 | lo);
        return 3;
    }
    if (end - q < 6 || q[1] != 'u' || q[2] != '0' || q[3] != '0' || (hi = cb_hex_digit(q[4])) < 0 ||
        hi > 7 || (lo = cb_hex_digit(q[5])) < 0)
        return 0;
    *c = (unsigned char)(hi << 4 | lo);
    return 6;
}

/* The characters that start an escape. */
static const char starts[] = "%\\&";
#define N_STARTS (sizeof(starts) - 1)

/* The next escape start at or after q; at[k] holds the last place found
 * of starts[k] (NULL once there is none left). */
static const unsigned char *next_escape(const unsigned char *q, const unsigned char *end,
                                        const unsigned char *at[N_STARTS])
{
    const unsigned char *best = NULL;
    for (size_t k = 0; k < N_STARTS; k++) {
        if (at[k] && at[k] < q)
            at[k] = memchr(q, starts[k], (size_t)(end - q));
        if (at[k] && (best == NULL || at[k] < best))
            best = at[k];
    }
    return best;
}

/* Decodes in into out; false (nothing allocated) when in has no escape.
 * Runs between escapes are copied whole. */
static bool decode_view(const struct cb__view *in, struct cb__view *out)
{
    const unsigned char *p = in->p, *end = p + in->len, *run = p, *q = p;
    const unsigned char *at[N_STARTS];
    for (size_t k = 0; k < N_STARTS; k++)
        at[k] = memchr(p, starts[k], in->len);
    struct decoder dc = {0};
    while ((q = next_escape(q, end, at)) != NULL) {
        unsigned char c;
        size_t n = escape_at(q, end, &c);
        if (n == 0) {
            q++;
            continue;
        }
        if (dc.d == NULL)
            dc.d = cb_xmalloc(in->len);
        memcpy(dc.d + dc.o, run, (size_t)(q - run));
        dc.o += (size_t)(q - run);
        emit_escape(&dc, c, n);
        q += n;
        run = q;
    }
    if (dc.d == NULL)
        return false;
    memcpy(dc.d + dc.o, run, (size_t)(end - run));
    dc.o += (size_t)(end - run);
    *out = (struct cb__view){.p = dc.d,
                             .len = dc.o,
                             .depth = in->depth + 1,
                             .esc = dc.esc,
                             .cum = dc.cum,
                             .n_esc = dc.n_esc,
                             .parent = in,
                             .own = dc.d};
    return true;
}

void cb__views_build(const unsigned char *data, size_t len, unsigned rounds, struct cb__views *vs)
{
    memset(vs, 0, sizeof(*vs));
    vs->v[0].p = data;
    vs->v[0].len = len;
    vs->n = 1;
    if (rounds > CB_LEAK_URL_ROUNDS)
        rounds = CB_LEAK_URL_ROUNDS;
    while (vs->n <= rounds && decode_view(&vs->v[vs->n - 1], &vs->v[vs->n]))
        vs->n++;
}

void cb__views_free(struct cb__views *vs)
{
    for (size_t i = 1; i < vs->n; i++) {
        explicit_bzero(vs->v[i].own, vs->v[i].len);
        free(vs->v[i].own);
        free(vs->v[i].esc);
        free(vs->v[i].cum);
    }
    vs->n = 0;
}

/* Number of escapes at offsets below i. */
static size_t escapes_before(const struct cb__view *v, size_t i)
{
    size_t lo = 0, hi = v->n_esc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->esc[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t cb__view_raw(const struct cb__view *v, size_t i)
{
    for (; v->parent; v = v->parent) {
        size_t b = escapes_before(v, i);
        i += b ? v->cum[b - 1] : 0;
    }
    return i;
}
