/* Redaction: known secrets first (every form, every URL-decoding depth),
 * then each pattern in catalogue order over the result, as the reference's
 * redact() does; then a rescan, because the output is only safe if nothing
 * is found in it any more. */
#include "core/buf.h"
#include "core/util.h"
#include "scan/leak.h"
#include "scan/leak_internal.h"
#include "scan/patterns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Redact-and-rescan rounds before giving up and redacting everything. One
 * is enough unless a replacement joins text into a new match. */
#define REDACT_ROUNDS 3

/* Text that held secrets is wiped before it is freed. */
static void wipe_buf(struct cb_buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->len);
    cb_buf_free(b);
}

static int cmp_span(const void *a, const void *b)
{
    const struct cb__span *x = a, *y = b;
    return x->s < y->s ? -1 : x->s > y->s ? 1 : (x->e > y->e) - (x->e < y->e);
}

/* Writes in[] to out with each union of overlapping spans replaced by one
 * marker. */
static int write_spans(const char *in, size_t len, struct cb__spans *sp, struct cb_buf *out,
                       size_t *count)
{
    if (sp->n > 1)
        qsort(sp->v, sp->n, sizeof(*sp->v), cmp_span);
    size_t pos = 0;
    for (size_t i = 0; i < sp->n;) {
        size_t s = sp->v[i].s, e = sp->v[i].e;
        for (i++; i < sp->n && sp->v[i].s < e; i++)
            e = sp->v[i].e > e ? sp->v[i].e : e;
        if (s < pos) /* cannot happen after merging; keep output monotonic */
            s = pos;
        if (cb_buf_append(out, in + pos, s - pos) < 0 || cb_buf_puts(out, CB_LEAK_REDACTED) < 0)
            return -E2BIG;
        (*count)++;
        pos = e;
    }
    return cb_buf_append(out, in + pos, len - pos);
}

static int redact_cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

typedef int (*match_fn)(void *ctx, size_t ms, size_t me);

/* Calls fn for every match of pattern i in s[0, len), leftmost first and
 * not overlapping, as a global search would find them; but the regex only
 * runs anchored where the literals of the pattern occurred (cd). */
static int each_match(size_t i, const char *s, size_t len, struct cb__cand *cd, void *md,
                      match_fn fn, void *ctx, struct cb_error *err)
{
    const char *lit = cb__pattern_context(i);
    if (cd->n == 0 || (lit && memmem(s, len, lit, strlen(lit)) == NULL))
        return 0;
    qsort(cd->pos, cd->n, sizeof(size_t), redact_cmp_size);
    size_t pos = 0, ms, me;
    for (size_t j = 0; j < cd->n; j++) {
        if (cd->pos[j] < pos)
            continue;
        int r = cb__pattern_find_raw(i, s, len, cd->pos[j], true, md, &ms, &me, err);
        /* A role-marker match reaching back into the previous one: the
         * global search from pos decides. */
        if (r > 0 && ms < pos)
            r = cb__pattern_find_raw(i, s, len, pos, false, md, &ms, &me, err);
        if (r < 0)
            return r;
        if (r == 0)
            continue;
        if ((r = fn(ctx, ms, me)) < 0)
            return r;
        pos = me > ms ? me : ms + 1;
    }
    return 0;
}

struct view_spans {
    const struct cb__view *v;
    size_t pattern;
    struct cb__spans *out;
};

static int add_view_span(void *ctx, size_t ms, size_t me)
{
    struct view_spans *vs = ctx;
    cb__spans_push(vs->out, (struct cb__span){.s = cb__view_raw(vs->v, ms),
                                              .e = cb__view_raw(vs->v, me),
                                              .who = (uint32_t)vs->pattern,
                                              .kind = CB_LEAK_PATTERN});
    return 0;
}

/* Spans of the credential patterns matched in the decoded views. */
static int decoded_pattern_spans(struct cb__collect *c, void *md, struct cb__spans *sp,
                                 struct cb_error *err)
{
    for (size_t k = 1; k < c->views.n; k++)
        for (size_t i = 0; i < cb__pattern_count(); i++) {
            if (cb__pattern_get(i)->kind != CB_PATTERN_CREDENTIAL)
                continue;
            struct view_spans vs = {&c->views.v[k], i, sp};
            int r = each_match(i, (const char *)vs.v->p, vs.v->len, &c->cand[k][i], md,
                               add_view_span, &vs, err);
            if (r < 0)
                return r;
        }
    return 0;
}

struct replacer {
    const struct cb_buf *in;
    struct cb_buf out;
    size_t pos;
    const char *marker;
    size_t *count;
};

static int replace_one(void *ctx, size_t ms, size_t me)
{
    struct replacer *rp = ctx;
    if (cb_buf_append(&rp->out, rp->in->data + rp->pos, ms - rp->pos) < 0 ||
        cb_buf_puts(&rp->out, rp->marker) < 0)
        return -E2BIG;
    (*rp->count)++;
    rp->pos = me;
    return 0;
}

/* Replaces every match of pattern i in *text by marker. Its literals are
 * looked up in the current text (earlier replacements moved them). */
static int replace_all(const struct cb_leak_scanner *sc, size_t i, const char *marker,
                       struct cb_buf *text, void *md, size_t *count, struct cb_error *err)
{
    struct cb__collect *c = cb__collect(sc, text->data, text->len, false);
    struct replacer rp = {.in = text, .marker = marker, .count = count};
    cb_buf_init(&rp.out, text->max);
    int r = each_match(i, text->data, text->len, &c->cand[0][i], md, replace_one, &rp, err);
    cb__collect_free(c);
    if (r == 0 && cb_buf_append(&rp.out, text->data + rp.pos, text->len - rp.pos) < 0)
        r = -E2BIG;
    if (r < 0) {
        wipe_buf(&rp.out);
        return r;
    }
    wipe_buf(text);
    *text = rp.out;
    return 0;
}

static bool pattern_wanted(size_t i, unsigned mode)
{
    return cb__pattern_get(i)->kind == CB_PATTERN_CREDENTIAL || (mode & CB__SCAN_INJECTION);
}

/* One round: in[] redacted into out. `found` says which patterns occur. */
static int redact_round(const struct cb_leak_scanner *sc, struct cb__collect *c, const char *in,
                        size_t len, unsigned mode, const bool *found, struct cb_buf *out,
                        size_t *count, struct cb_error *err)
{
    void *md = cb__pattern_match_data();
    int r = 0;
    if (mode & CB__SCAN_PATTERN_VIEWS)
        r = decoded_pattern_spans(c, md, &c->secrets, err);
    if (r == 0)
        r = write_spans(in, len, &c->secrets, out, count);
    for (size_t i = 0; i < cb__pattern_count() && r == 0; i++) {
        if (!found[i] || !pattern_wanted(i, mode))
            continue;
        const char *marker =
            cb__pattern_get(i)->kind == CB_PATTERN_INJECTION ? CB_LEAK_BLOCKED : CB_LEAK_REDACTED;
        r = replace_all(sc, i, marker, out, md, count, err);
    }
    cb__pattern_match_data_free(md);
    return r;
}

/* Whether anything is left to redact: 1 yes, 0 no, < 0 error; pat[]
 * says which patterns matched, and *c is the pass over the text (the
 * caller frees it). */
static int dirty(const struct cb_leak_scanner *sc, const char *s, size_t len, unsigned mode,
                 bool pat[CB__MAX_PATTERNS], struct cb__collect **c, struct cb_error *err)
{
    size_t n = cb__leak_scanner_secrets(sc);
    bool *found = cb_xcalloc(n ? n : 1, sizeof(bool));
    int r = cb__leak_summarise_keep(sc, s, len, mode, found, pat, c, err);
    for (size_t i = 0; r == 0 && i < n; i++)
        r = found[i];
    for (size_t i = 0; r == 0 && i < cb__pattern_count(); i++)
        r = pat[i];
    free(found);
    return r;
}

static void set_fail_closed(struct cb_buf *text, size_t *count)
{
    if (text->data)
        explicit_bzero(text->data, text->len);
    cb_buf_reset(text);
    cb_buf_puts(text, CB_LEAK_REDACTED);
    (*count)++;
}

int cb__leak_redact_mode(const struct cb_leak_scanner *sc, const char *data, size_t len,
                         unsigned mode, char **out, size_t *out_len, size_t *n_redacted,
                         struct cb_error *err)
{
    *out = NULL;
    if (len > CB_LEAK_MAX_INPUT)
        return cb_error_set(err, -E2BIG, "%zu bytes is too large to scan", len);
    if (sc == NULL && (sc = cb__leak_default(err)) == NULL)
        return err ? err->code : -ENOMEM;
    /* Markers are longer than what they replace only for matches shorter
     * than 10 bytes (none is shorter than 6). */
    struct cb_buf text;
    cb_buf_init(&text, 2 * len + 4096);
    cb_buf_append(&text, data, len);
    size_t count = 0;
    int r = 1;
    for (int round = 0;; round++) {
        unsigned m = round == 0 ? mode : mode & ~CB__SCAN_INJECTION;
        bool pat[CB__MAX_PATTERNS] = {false};
        struct cb__collect *c = NULL;
        r = dirty(sc, text.data ? text.data : "", text.len, m, pat, &c, NULL);
        if (r <= 0 || round == REDACT_ROUNDS) {
            cb__collect_free(c);
            break;
        }
        struct cb_buf next;
        cb_buf_init(&next, text.max);
        r = redact_round(sc, c, text.data, text.len, mode, pat, &next, &count, NULL);
        cb__collect_free(c);
        wipe_buf(&text);
        text = next;
        if (r < 0)
            break;
        r = 1;
    }
    if (r != 0)
        set_fail_closed(&text, &count);
    if (n_redacted)
        *n_redacted = count;
    *out = cb_buf_steal(&text, out_len);
    return 0;
}

int cb_leak_redact(const struct cb_leak_scanner *sc, const char *data, size_t len, char **out,
                   size_t *out_len, size_t *n_redacted, struct cb_error *err)
{
    return cb__leak_redact_mode(sc, data, len, CB__SCAN_PATTERN_VIEWS, out, out_len, n_redacted,
                                err);
}
