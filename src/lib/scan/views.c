#include "scan/views.h"
#include "core/util.h"

#include <stdbool.h>
#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

struct decoder {
    unsigned char *d;
    size_t o;
    uint32_t *esc;
    size_t n_esc, cap;
};

static void emit_escape(struct decoder *dc, unsigned char c)
{
    if (dc->n_esc == dc->cap) {
        dc->cap = dc->cap ? dc->cap * 2 : 64;
        dc->esc = cb_xrealloc(dc->esc, dc->cap * sizeof(uint32_t));
    }
    dc->esc[dc->n_esc++] = (uint32_t)dc->o;
    dc->d[dc->o++] = c;
}

/* Decodes in into out; false (nothing allocated) when in has no escape.
 * Runs between '%' are copied whole. */
static bool decode(const struct cb__view *in, struct cb__view *out)
{
    const unsigned char *p = in->p, *end = p + in->len, *run = p, *q = p;
    struct decoder dc = {0};
    while ((q = memchr(q, '%', (size_t)(end - q))) != NULL) {
        int hi, lo;
        if (end - q < 3 || (hi = hexval(q[1])) < 0 || (lo = hexval(q[2])) < 0) {
            q++;
            continue;
        }
        if (dc.d == NULL)
            dc.d = cb_xmalloc(in->len);
        memcpy(dc.d + dc.o, run, (size_t)(q - run));
        dc.o += (size_t)(q - run);
        emit_escape(&dc, (unsigned char)(hi << 4 | lo));
        q += 3;
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
    while (vs->n <= rounds && decode(&vs->v[vs->n - 1], &vs->v[vs->n]))
        vs->n++;
}

void cb__views_free(struct cb__views *vs)
{
    for (size_t i = 1; i < vs->n; i++) {
        explicit_bzero(vs->v[i].own, vs->v[i].len);
        free(vs->v[i].own);
        free(vs->v[i].esc);
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
    for (; v->parent; v = v->parent)
        i += 2 * escapes_before(v, i);
    return i;
}
