#include "scan/leak.h"
#include "core/util.h"
#include "scan/ac.h"
#include "scan/forms.h"
#include "scan/frag.h"
#include "scan/leak_internal.h"
#include "scan/patterns.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Only this many leading bytes of a form go into the automaton; the rest is
 * compared on a hit. 12 base64 or hex characters make chance hits rare,
 * and the automaton stays small enough to live in cache. */
#define AC_PREFIX   12
#define MAX_LITERAL 64

struct secret {
    char *name;
    unsigned char *val;
    size_t len;
    size_t index; /* as given to _new */
};

/* What an automaton needle stands for. */
struct needle_ref {
    bool literal;
    uint32_t idx; /* form index, or pattern index */
    uint32_t len; /* needle length */
};

struct cb_leak_scanner {
    struct secret *secrets;
    size_t n_secrets;
    struct cb__form *forms;
    uint32_t *form_secret;
    size_t n_forms;
    struct needle_ref *refs;
    size_t n_refs;
    struct cb__ac *ac;
    struct cb__frag *frag; /* runs of the secrets and of their reversals */
    struct cb__frag *skel; /* runs of their skeletons, in a text's skeleton */
    bool escapes;          /* a secret holds what a decoded view would decode */
    atomic_uint refs_held;
};

/* Needles under construction. */
struct needles {
    struct cb__ac_needle *v;
    struct needle_ref *refs;
    unsigned char **owned;
    size_t n, cap;
};

static void needle_add(struct needles *nd, const unsigned char *b, size_t len, struct needle_ref r)
{
    if (nd->n == nd->cap) {
        nd->cap = nd->cap ? nd->cap * 2 : 256;
        nd->v = cb_xrealloc(nd->v, nd->cap * sizeof(*nd->v));
        nd->refs = cb_xrealloc(nd->refs, nd->cap * sizeof(*nd->refs));
        nd->owned = cb_xrealloc(nd->owned, nd->cap * sizeof(*nd->owned));
    }
    unsigned char *copy = cb_xmalloc(len);
    memcpy(copy, b, len);
    r.len = (uint32_t)len;
    nd->v[nd->n] = (struct cb__ac_needle){.bytes = copy, .len = len, .id = (uint32_t)nd->n};
    nd->refs[nd->n] = r;
    nd->owned[nd->n] = copy;
    nd->n++;
}

static void needles_free(struct needles *nd)
{
    for (size_t i = 0; i < nd->n; i++) {
        explicit_bzero(nd->owned[i], nd->v[i].len);
        free(nd->owned[i]);
    }
    free(nd->v);
    free(nd->owned);
}

/* Adds the literal with every Unicode spelling of its 's' and 'k' (U+017F
 * and U+212A fold to them), from position i on. */
static void add_spellings(struct needles *nd, uint32_t pat, const char *lit, size_t i,
                          unsigned char *buf, size_t o)
{
    if (lit[i] == '\0') {
        needle_add(nd, buf, o, (struct needle_ref){.literal = true, .idx = pat});
        return;
    }
    buf[o] = (unsigned char)lit[i];
    add_spellings(nd, pat, lit, i + 1, buf, o + 1);
    if (!cb__pattern_unicode_fold(pat))
        return;
    if (lit[i] == 's') {
        memcpy(buf + o, "\xc5\xbf", 2);
        add_spellings(nd, pat, lit, i + 1, buf, o + 2);
    } else if (lit[i] == 'k') {
        memcpy(buf + o, "\xe2\x84\xaa", 3);
        add_spellings(nd, pat, lit, i + 1, buf, o + 3);
    }
}

static void add_literals(struct needles *nd)
{
    unsigned char buf[3 * MAX_LITERAL];
    for (size_t p = 0; p < cb__pattern_count(); p++)
        for (const char *l = cb__pattern_literals(p); *l; l += strlen(l) + 1)
            add_spellings(nd, (uint32_t)p, l, 0, buf, 0);
}

/* The secret's letters and digits, searched for in a text's skeleton. */
static void add_skeleton(struct cb_leak_scanner *sc, const unsigned char *val, size_t len,
                         size_t si)
{
    unsigned char *k = cb_xmalloc(len);
    size_t n = cb__frag_skeleton(val, len, k);
    cb__frag_add(sc->skel, k, n, (uint32_t)si, CB_LEAK_ENC_SPACED);
    explicit_bzero(k, len);
    free(k);
}

static void add_secret(struct cb_leak_scanner *sc, struct needles *nd, const char *name,
                       const unsigned char *val, size_t len, size_t index)
{
    size_t si = sc->n_secrets++;
    struct secret *s = &sc->secrets[si];
    s->name = name ? cb_xstrdup(name) : NULL;
    s->val = cb_xmalloc(len);
    memcpy(s->val, val, len);
    s->len = len;
    s->index = index;
    struct cb__form f[CB__MAX_FORMS];
    size_t k = cb__secret_forms(val, len, f);
    sc->forms = cb_xrealloc(sc->forms, (sc->n_forms + k) * sizeof(*sc->forms));
    sc->form_secret = cb_xrealloc(sc->form_secret, (sc->n_forms + k) * sizeof(uint32_t));
    for (size_t j = 0; j < k; j++) {
        size_t fi = sc->n_forms++;
        sc->forms[fi] = f[j];
        sc->form_secret[fi] = (uint32_t)si;
        size_t nl = f[j].len < AC_PREFIX ? f[j].len : AC_PREFIX;
        needle_add(nd, f[j].bytes, nl, (struct needle_ref){.idx = (uint32_t)fi});
        if (f[j].enc == CB_LEAK_ENC_REVERSED && len >= CB_LEAK_MIN_FRAGMENT)
            cb__frag_add(sc->frag, f[j].bytes, f[j].len, (uint32_t)si, CB_LEAK_ENC_REVERSED);
    }
    if (len >= CB_LEAK_MIN_FRAGMENT)
        cb__frag_add(sc->frag, val, len, (uint32_t)si, CB_LEAK_ENC_FRAGMENT);
    add_skeleton(sc, val, len, si);
    struct cb__views vs;
    cb__views_build(val, len, 1, &vs);
    sc->escapes |= vs.n > 1;
    cb__views_free(&vs);
}

static int check_args(const char *const *secrets, const size_t *lens, size_t n,
                      struct cb_error *err)
{
    if (n > CB_LEAK_MAX_SECRETS)
        return cb_error_set(err, -E2BIG, "too many secrets (%zu, at most %d)", n,
                            CB_LEAK_MAX_SECRETS);
    if (n > 0 && (secrets == NULL || lens == NULL))
        return cb_error_set(err, -EINVAL, "secrets or lengths missing");
    for (size_t i = 0; i < n; i++)
        if (secrets[i] == NULL && lens[i] > 0)
            return cb_error_set(err, -EINVAL, "secret %zu is NULL", i);
    return cb__patterns_init(err);
}

struct cb_leak_scanner *cb_leak_scanner_new(const char *const *names, const char *const *secrets,
                                            const size_t *lens, size_t n, struct cb_error *err)
{
    if (check_args(secrets, lens, n, err) < 0)
        return NULL;
    struct cb_leak_scanner *sc = cb_xcalloc(1, sizeof(*sc));
    sc->secrets = cb_xcalloc(n ? n : 1, sizeof(*sc->secrets));
    atomic_init(&sc->refs_held, 1);
    sc->frag = cb__frag_new();
    sc->skel = cb__frag_new();
    struct needles nd = {0};
    add_literals(&nd);
    for (size_t i = 0; i < n; i++) {
        if (lens[i] < CB_LEAK_MIN_SECRET_LEN || lens[i] > CB_LEAK_MAX_SECRET_LEN)
            continue;
        add_secret(sc, &nd, names ? names[i] : NULL, (const unsigned char *)secrets[i], lens[i], i);
    }
    sc->ac = cb__ac_build(nd.v, nd.n);
    cb__frag_build(sc->frag);
    cb__frag_build(sc->skel);
    sc->refs = nd.refs;
    sc->n_refs = nd.n;
    needles_free(&nd);
    return sc;
}

struct cb_leak_scanner *cb_leak_scanner_ref(struct cb_leak_scanner *sc)
{
    if (sc)
        atomic_fetch_add(&sc->refs_held, 1);
    return sc;
}

void cb_leak_scanner_free(struct cb_leak_scanner *sc)
{
    if (sc == NULL || atomic_fetch_sub(&sc->refs_held, 1) != 1)
        return;
    cb__frag_free(sc->frag);
    cb__frag_free(sc->skel);
    for (size_t i = 0; i < sc->n_secrets; i++) {
        explicit_bzero(sc->secrets[i].val, sc->secrets[i].len);
        free(sc->secrets[i].val);
        free(sc->secrets[i].name);
    }
    for (size_t i = 0; i < sc->n_forms; i++)
        cb__form_wipe(&sc->forms[i]);
    free(sc->secrets);
    free(sc->forms);
    free(sc->form_secret);
    free(sc->refs);
    cb__ac_free(sc->ac);
    free(sc);
}

size_t cb__leak_scanner_secrets(const struct cb_leak_scanner *sc)
{
    return sc ? sc->n_secrets : 0;
}

size_t cb__leak_secret_index(const struct cb_leak_scanner *sc, size_t i)
{
    return sc->secrets[i].index;
}

const char *cb__leak_secret_name(const struct cb_leak_scanner *sc, size_t i)
{
    return sc->secrets[i].name;
}

static struct cb_leak_scanner *default_sc;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    default_sc = cb_leak_scanner_new(NULL, NULL, NULL, 0, NULL);
}

const struct cb_leak_scanner *cb__leak_default(struct cb_error *err)
{
    pthread_once(&default_once, default_init);
    if (default_sc == NULL && cb__patterns_init(err) == 0)
        cb_error_set(err, -ENOMEM, "pattern scanner unavailable");
    return default_sc;
}

/* ---- one pass over the views ---- */

struct hit_ctx {
    const struct cb_leak_scanner *sc;
    const struct cb__view *v;
    struct cb__spans *spans;
    struct cb__cand *cand;
    uint64_t *grown; /* bit i: cand[i] holds an allocation */
};

void cb__spans_push(struct cb__spans *sp, struct cb__span s)
{
    if (sp->n == sp->cap) {
        sp->cap = sp->cap ? sp->cap * 2 : 16;
        sp->v = cb_xrealloc(sp->v, sp->cap * sizeof(*sp->v));
    }
    sp->v[sp->n++] = s;
}

static bool equal_icase(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = a[i], y = b[i];
        if (x != y && ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z'))
            return false;
    }
    return true;
}

/* Widens a base64 or base32 match over the characters it shares with its
 * neighbours, and over the padding after it. */
static void widen_radix(const struct cb__form *f, const struct cb__view *v, size_t *s, size_t *e)
{
    int max_pad = f->enc == CB_LEAK_ENC_BASE32 ? 6 : 2;
    if (f->edge_left && *s > 0 && cb__form_alpha_char(f->enc, v->p[*s - 1]))
        (*s)--;
    if (f->edge_right && *e < v->len && cb__form_alpha_char(f->enc, v->p[*e]))
        (*e)++;
    for (int k = 0; k < max_pad && *e < v->len && v->p[*e] == '='; k++)
        (*e)++;
}

static void push_secret(struct hit_ctx *h, uint32_t who, uint8_t enc, size_t s, size_t e)
{
    cb__spans_push(h->spans, (struct cb__span){.s = cb__view_raw(h->v, s),
                                               .e = cb__view_raw(h->v, e),
                                               .who = who,
                                               .kind = CB_LEAK_KNOWN_SECRET,
                                               .enc = enc,
                                               .depth = (uint8_t)h->v->depth});
}

static void form_hit(struct hit_ctx *h, uint32_t fi, size_t start)
{
    const struct cb__form *f = &h->sc->forms[fi];
    const struct cb__view *v = h->v;
    if (f->len > v->len - start)
        return;
    const unsigned char *p = v->p + start;
    if (f->icase ? !equal_icase(p, f->bytes, f->len) : memcmp(p, f->bytes, f->len) != 0)
        return;
    size_t s = start, e = start + f->len;
    enum cb_leak_encoding enc = f->enc;
    if (enc == CB_LEAK_ENC_BASE64 || enc == CB_LEAK_ENC_BASE64URL || enc == CB_LEAK_ENC_BASE32)
        widen_radix(f, v, &s, &e);
    if (enc == CB_LEAK_ENC_PLAIN && memcmp(p, f->bytes, f->len) != 0)
        enc = CB_LEAK_ENC_CASEFOLD;
    push_secret(h, h->sc->form_secret[fi], (uint8_t)enc, s, e);
}

static void frag_hit(void *ctx, uint32_t secret, uint8_t enc, size_t s, size_t e)
{
    push_secret(ctx, secret, enc, s, e);
}

/* Runs of secrets, and of their skeletons, in the most decoded view: the
 * others hold the same runs, unless a secret itself holds an escape that
 * decoding would change (then every view is searched). */
static void collect_fragments(const struct cb_leak_scanner *sc, struct cb__collect *c)
{
    for (size_t k = sc->escapes ? 0 : c->views.n - 1; k < c->views.n; k++) {
        struct hit_ctx h = {sc, &c->views.v[k], &c->secrets, NULL};
        cb__frag_scan(sc->frag, h.v->p, h.v->len, frag_hit, &h);
        if (k == c->views.n - 1)
            cb__frag_scan_skeleton(sc->skel, h.v->p, h.v->len, frag_hit, &h);
    }
}

static void on_hit(void *ctx, uint32_t id, size_t end)
{
    struct hit_ctx *h = ctx;
    const struct needle_ref *r = &h->sc->refs[id];
    size_t start = end - r->len;
    if (!r->literal) {
        form_hit(h, r->idx, start);
        return;
    }
    struct cb__cand *c = &h->cand[r->idx];
    if (c->n == 0 || start < c->min_start)
        c->min_start = start;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->pos = cb_xrealloc(c->pos, c->cap * sizeof(size_t));
        *h->grown |= 1ull << r->idx;
    }
    c->pos[c->n++] = start;
}

/* A collect is large (a candidate list for each view and pattern), and a
 * malloc that large first consolidates the heap's small free chunks; a
 * request is scanned in many pieces, so each thread keeps the one it
 * freed last for its next scan. */
static pthread_key_t spare_key;

static void spare_key_init(void)
{
    if (pthread_key_create(&spare_key, free) != 0)
        abort();
}

struct cb__collect *cb__collect(const struct cb_leak_scanner *sc, const char *data, size_t len,
                                bool views)
{
    static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
    pthread_once(&spare_once, spare_key_init);
    struct cb__collect *c = pthread_getspecific(spare_key);
    if (c != NULL)
        pthread_setspecific(spare_key, NULL);
    else
        c = cb_xcalloc(1, sizeof(*c));
    cb__views_build((const unsigned char *)data, len, views ? CB_LEAK_URL_ROUNDS : 0, &c->views);
    for (size_t k = 0; k < c->views.n; k++) {
        struct hit_ctx h = {sc, &c->views.v[k], &c->secrets, c->cand[k], &c->grown[k]};
        cb__ac_scan(sc->ac, h.v->p, h.v->len, on_hit, &h);
    }
    if (views)
        collect_fragments(sc, c);
    return c;
}

void cb__collect_free(struct cb__collect *c)
{
    if (c == NULL)
        return;
    size_t n = c->views.n;
    cb__views_free(&c->views);
    for (size_t k = 0; k < n; k++) {
        for (uint64_t g = c->grown[k]; g != 0; g &= g - 1)
            free(c->cand[k][__builtin_ctzll(g)].pos);
        memset(c->cand[k], 0, sizeof(c->cand[k]));
        c->grown[k] = 0;
    }
    free(c->secrets.v);
    c->secrets = (struct cb__spans){0};
    if (pthread_getspecific(spare_key) == NULL && pthread_setspecific(spare_key, c) == 0)
        return;
    free(c);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int cb__collect_first(const struct cb__collect *c, size_t k, size_t i, void *md, size_t *ms,
                      size_t *me, struct cb_error *err)
{
    const struct cb__cand *cd = &c->cand[k][i];
    const struct cb__view *v = &c->views.v[k];
    const char *s = (const char *)v->p;
    if (cd->n == 0)
        return 0;
    const char *ctx = cb__pattern_context(i);
    if (ctx && memmem(s, v->len, ctx, strlen(ctx)) == NULL)
        return 0;
    if (cd->n > CB__CAND_ANCHORED_MAX && !cb__pattern_slow_search(i))
        return cb__pattern_find_raw(i, s, v->len, cd->min_start, false, md, ms, me, err);
    qsort(cd->pos, cd->n, sizeof(size_t), cmp_size);
    for (size_t j = 0; j < cd->n; j++) {
        if (j > 0 && cd->pos[j] == cd->pos[j - 1])
            continue;
        int r = cb__pattern_find_raw(i, s, v->len, cd->pos[j], true, md, ms, me, err);
        if (r != 0)
            return r;
    }
    return 0;
}

/* ---- scan ---- */

static void report_add(struct cb_leak_report *rep, struct cb_leak_finding f)
{
    rep->total++;
    for (size_t i = 0; i < rep->n; i++) {
        const struct cb_leak_finding *g = &rep->findings[i];
        if (g->kind == f.kind && g->index == f.index && g->encoding == f.encoding &&
            g->url_depth == f.url_depth)
            return;
    }
    if (rep->n < CB_LEAK_REPORT_MAX)
        rep->findings[rep->n++] = f;
}

/* By start, then by encoding: a whole secret is reported as what it is
 * before the fragment and skeleton runs that cover it too. */
static int cmp_span_start(const void *a, const void *b)
{
    const struct cb__span *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return (x->enc > y->enc) - (x->enc < y->enc);
}

/* In text order, so each finding carries its first occurrence. */
static void report_secrets(const struct cb_leak_scanner *sc, struct cb__spans *sp,
                           struct cb_leak_report *rep)
{
    if (sp->n > 1)
        qsort(sp->v, sp->n, sizeof(*sp->v), cmp_span_start);
    for (size_t i = 0; i < sp->n; i++) {
        const struct cb__span *s = &sp->v[i];
        report_add(rep, (struct cb_leak_finding){.kind = CB_LEAK_KNOWN_SECRET,
                                                 .index = sc->secrets[s->who].index,
                                                 .name = sc->secrets[s->who].name,
                                                 .encoding = s->enc,
                                                 .url_depth = s->depth,
                                                 .offset = s->s,
                                                 .len = s->e - s->s});
    }
}

/* The first match of each credential pattern in each view. A pattern that
 * cannot be evaluated is reported as unscannable (a leak). */
static void report_patterns(const struct cb__collect *c, struct cb_leak_report *rep)
{
    void *md = cb__pattern_match_data();
    for (size_t k = 0; k < c->views.n; k++) {
        const struct cb__view *v = &c->views.v[k];
        for (size_t i = 0; i < cb__pattern_count(); i++) {
            if (cb__pattern_get(i)->kind != CB_PATTERN_CREDENTIAL)
                continue;
            size_t ms = 0, me = 0;
            int r = cb__collect_first(c, k, i, md, &ms, &me, NULL);
            if (r == 0)
                continue;
            struct cb_leak_finding f = {.kind = r > 0 ? CB_LEAK_PATTERN : CB_LEAK_UNSCANNABLE,
                                        .index = i,
                                        .name = cb__pattern_get(i)->name,
                                        .encoding = CB_LEAK_ENC_NONE,
                                        .url_depth = v->depth};
            if (r > 0) {
                f.offset = cb__view_raw(v, ms);
                f.len = cb__view_raw(v, me) - f.offset;
            }
            report_add(rep, f);
        }
    }
    cb__pattern_match_data_free(md);
}

int cb_leak_scan(const struct cb_leak_scanner *sc, const char *data, size_t len,
                 struct cb_leak_report *out, struct cb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (len > CB_LEAK_MAX_INPUT)
        return cb_error_set(err, -E2BIG, "%zu bytes is too large to scan", len);
    if (sc == NULL && (sc = cb__leak_default(err)) == NULL)
        return err ? err->code : -ENOMEM;
    struct cb__collect *c = cb__collect(sc, data, len, true);
    report_secrets(sc, &c->secrets, out);
    report_patterns(c, out);
    cb__collect_free(c);
    return out->total > 0;
}

bool cb_leak_pieces_clean(const struct cb_leak_scanner *sc, const struct cb_leak_piece *pieces,
                          size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += pieces[i].len + 1;
    if (total == 0)
        return true;
    char small[4096];
    char *join = total <= sizeof(small) ? small : cb_xmalloc(total);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (pieces[i].len > 0)
            memcpy(join + at, pieces[i].p, pieces[i].len);
        at += pieces[i].len;
        join[at++] = '\n';
    }
    struct cb_leak_report rep;
    struct cb_error e = {0};
    bool clean = cb_leak_scan(sc, join, total, &rep, &e) == 0;
    explicit_bzero(join, total);
    if (join != small)
        free(join);
    return clean;
}

int cb__leak_summarise(const struct cb_leak_scanner *sc, const char *data, size_t len,
                       unsigned mode, bool *found_secret, bool found_pattern[CB__MAX_PATTERNS],
                       struct cb_error *err)
{
    return cb__leak_summarise_keep(sc, data, len, mode, found_secret, found_pattern, NULL, err);
}

int cb__leak_summarise_keep(const struct cb_leak_scanner *sc, const char *data, size_t len,
                            unsigned mode, bool *found_secret, bool found_pattern[CB__MAX_PATTERNS],
                            struct cb__collect **keep, struct cb_error *err)
{
    if (len > CB_LEAK_MAX_INPUT)
        return cb_error_set(err, -E2BIG, "%zu bytes is too large to scan", len);
    /* Decoded views matter for known secrets, and for patterns in mode. */
    bool views = sc->n_secrets > 0 || (mode & CB__SCAN_PATTERN_VIEWS);
    struct cb__collect *c = cb__collect(sc, data, len, views);
    for (size_t i = 0; found_secret && i < c->secrets.n; i++)
        found_secret[c->secrets.v[i].who] = true;
    void *md = cb__pattern_match_data();
    int r = 0;
    size_t nviews = (mode & CB__SCAN_PATTERN_VIEWS) ? c->views.n : 1;
    for (size_t i = 0; i < cb__pattern_count() && r >= 0; i++) {
        found_pattern[i] = false;
        if (cb__pattern_get(i)->kind == CB_PATTERN_INJECTION && !(mode & CB__SCAN_INJECTION))
            continue;
        for (size_t k = 0; k < nviews && !found_pattern[i]; k++) {
            size_t ms, me;
            r = cb__collect_first(c, k, i, md, &ms, &me, err);
            if (r < 0)
                break;
            found_pattern[i] = r > 0;
        }
    }
    cb__pattern_match_data_free(md);
    if (keep)
        *keep = c;
    else
        cb__collect_free(c);
    return r < 0 ? r : 0;
}
