#include "metrics/metrics.h"
#include "core/utf8.h"
#include "core/util.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_type { TYPE_COUNTER, TYPE_GAUGE, TYPE_HISTOGRAM };

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* Room for any double printed by fmt_double(), "-1.2345678901234567e-308". */
#define NUM_MAX 32

/* One label-value combination. For histograms, counts[i] holds only the
 * observations that fell in bucket i, and counts[nbounds] those above every
 * bound; render cumulates them, so recording is a single increment. */
struct series {
    uint64_t hash;
    char **values;
    double value;
    double sum;
    uint64_t count;
    uint64_t counts[];
};

/* A family's shape (everything but the series) is fixed at creation, so it
 * is read without the lock. */
struct cb_metric {
    pthread_mutex_t lock; /* guards series, nseries, cap, overflow and values */
    enum metric_type type;
    char *name;
    char *help;
    char **label_names;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    size_t max_series;
    struct series **series; /* in order of first use, overflow included */
    size_t nseries;
    size_t cap;
    struct series *overflow;
};

struct cb_metrics {
    pthread_mutex_t lock; /* guards the family list */
    struct cb_metric **families;
    size_t n;
    size_t cap;
};

/* Label values of one recording call after sanitising, on the stack so that
 * recording into an existing series does not allocate. */
struct label_set {
    uint64_t hash;
    char v[CB_METRICS_LABELS_MAX][CB_METRICS_LABEL_VALUE_MAX + 1];
};

static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        free(s[i]);
    free(s);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Checks [a-zA-Z_:][a-zA-Z0-9_:]* (metric names, colon allowed) or
 * [a-zA-Z_][a-zA-Z0-9_]* (label names). No ctype: it depends on the locale. */
static bool valid_name(const char *s, size_t n, bool colon)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Beyond the grammar, applies the suffix rules promtool lints for: only
 * counters end in _total, and _bucket/_sum/_count belong to histograms'
 * own series (a gauge "x_sum" would also clash with a histogram "x"). */
static bool valid_family_name(enum metric_type type, const char *name)
{
    if (!valid_name(name, strlen(name), true))
        return false;
    if (ends_with(name, "_bucket") || ends_with(name, "_sum") || ends_with(name, "_count"))
        return false;
    return ends_with(name, "_total") == (type == TYPE_COUNTER);
}

/* "__" prefixes are reserved for Prometheus itself; "le" and "quantile" mean
 * buckets and quantiles, and promtool flags them on any other family (there
 * are no summaries here, and a histogram's own "le" would clash). */
static bool valid_label_name(const char *s, size_t n)
{
    if (!valid_name(s, n, false))
        return false;
    if (n >= 2 && s[0] == '_' && s[1] == '_')
        return false;
    return !(n == 2 && memcmp(s, "le", 2) == 0) && !(n == 8 && memcmp(s, "quantile", 8) == 0);
}

static bool has_name(const char *const *tok, const size_t *len, size_t n, const char *s,
                     size_t slen)
{
    for (size_t i = 0; i < n; i++)
        if (len[i] == slen && memcmp(tok[i], s, slen) == 0)
            return true;
    return false;
}

/* Splits "a,b,c" into f->label_names; NULL or "" means no labels. Returns
 * false, having allocated nothing, when a name is empty, invalid or repeated
 * or there are too many. */
static bool parse_label_names(struct cb_metric *f, const char *spec)
{
    const char *tok[CB_METRICS_LABELS_MAX];
    size_t len[CB_METRICS_LABELS_MAX], n = 0;
    const char *p = spec != NULL && spec[0] != '\0' ? spec : NULL;
    while (p != NULL) {
        const char *end = strchr(p, ',');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (n == CB_METRICS_LABELS_MAX || !valid_label_name(p, l) || has_name(tok, len, n, p, l))
            return false;
        tok[n] = p;
        len[n++] = l;
        p = end ? end + 1 : NULL;
    }
    f->label_names = cb_xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        f->label_names[i] = cb_xstrndup(tok[i], len[i]);
    f->nlabels = n;
    return true;
}

static bool valid_buckets(const double *b, size_t n)
{
    if (n > CB_METRICS_BUCKETS_MAX || (n > 0 && b == NULL))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
            return false;
    return true;
}

/* Copies a client-supplied value into out (CB_METRICS_LABEL_VALUE_MAX + 1
 * bytes) as the well-formed UTF-8 Prometheus's parser insists on: bad bytes
 * (overlong forms and surrogates too) become U+FFFD and the copy stops at
 * the last whole character that fits. Reads no further than it copies, so a
 * huge value costs no more than a short one. Returns the length. */
static size_t sanitize_value(const char *in, char *out)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    while (*p != '\0') {
        size_t n = cb_utf8_seq_len(p, strnlen((const char *)p, 4)), step = n;
        const void *src = p;
        if (n == 0) {
            src = replacement;
            n = 3;
            step = 1;
        }
        if (o + n > CB_METRICS_LABEL_VALUE_MAX)
            break;
        memcpy(out + o, src, n);
        o += n;
        p += step;
    }
    out[o] = '\0';
    return o;
}

/* The hash covers each value's NUL too, so ("ab","c") and ("a","bc") differ. */
static void label_set_fill(struct label_set *ls, const struct cb_metric *f,
                           const char *const *values)
{
    ls->hash = CB_FNV1A_INIT;
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values != NULL && values[i] != NULL ? values[i] : "";
        size_t len = sanitize_value(v, ls->v[i]);
        ls->hash = cb_fnv1a(ls->hash, ls->v[i], len + 1);
    }
}

static struct series *series_new(const struct cb_metric *f, const struct label_set *ls)
{
    size_t ncounts = f->type == TYPE_HISTOGRAM ? f->nbounds + 1 : 0;
    struct series *s = cb_xcalloc(1, sizeof(*s) + ncounts * sizeof(uint64_t));
    s->hash = ls->hash;
    s->values = cb_xcalloc(f->nlabels, sizeof(char *));
    for (size_t i = 0; i < f->nlabels; i++)
        s->values[i] = cb_xstrdup(ls->v[i]);
    return s;
}

static void series_free(struct series *s, size_t nlabels)
{
    if (s == NULL)
        return;
    free_strings(s->values, nlabels);
    free(s);
}

/* Called with f->lock held. */
static struct series *add_series(struct cb_metric *f, const struct label_set *ls)
{
    if (f->nseries == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->series = cb_xrealloc(f->series, f->cap * sizeof(*f->series));
    }
    f->series[f->nseries] = series_new(f, ls);
    return f->series[f->nseries++];
}

/* Called with f->lock held. A linear scan: series are bounded by max_series
 * and the hash rules out almost every non-match in one comparison. */
static struct series *find_series(const struct cb_metric *f, const struct label_set *ls)
{
    for (size_t i = 0; i < f->nseries; i++) {
        struct series *s = f->series[i];
        size_t k = 0;
        if (s->hash != ls->hash)
            continue;
        while (k < f->nlabels && strcmp(s->values[k], ls->v[k]) == 0)
            k++;
        if (k == f->nlabels)
            return s;
    }
    return NULL;
}

/* Called with f->lock held. The overflow series is looked up like any other,
 * so a client that sends "__overflow__" values itself lands in it rather
 * than creating a duplicate series. */
static struct series *overflow_series(struct cb_metric *f)
{
    const char *values[CB_METRICS_LABELS_MAX];
    struct label_set ls;
    if (f->overflow != NULL)
        return f->overflow;
    for (size_t i = 0; i < f->nlabels; i++)
        values[i] = CB_METRICS_OVERFLOW_VALUE;
    label_set_fill(&ls, f, values);
    f->overflow = find_series(f, &ls);
    if (f->overflow == NULL)
        f->overflow = add_series(f, &ls);
    return f->overflow;
}

/* Called with f->lock held. Returns the series for ls, creating it while
 * fewer than max_series ordinary series exist, else the overflow series. */
static struct series *get_series(struct cb_metric *f, const struct label_set *ls)
{
    struct series *s = find_series(f, ls);
    if (s != NULL)
        return s;
    if (f->nseries - (f->overflow != NULL) < f->max_series)
        return add_series(f, ls);
    return overflow_series(f);
}

static void family_free(struct cb_metric *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f->series[i], f->nlabels);
    free(f->series);
    free_strings(f->label_names, f->nlabels);
    free(f->bounds);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Validates everything and builds an unregistered family, or returns NULL.
 * A family without labels gets its only series now, so it renders from the
 * start. */
static struct cb_metric *family_new(enum metric_type type, const char *name, const char *help,
                                    const char *label_names, const double *bounds, size_t nbounds,
                                    size_t max_series)
{
    if (name == NULL || help == NULL || help[0] == '\0' || !valid_family_name(type, name) ||
        !valid_buckets(bounds, nbounds))
        return NULL;
    struct cb_metric *f = cb_xcalloc(1, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    f->type = type;
    if (!parse_label_names(f, label_names) || (f->nlabels > 0 && max_series == 0)) {
        family_free(f);
        return NULL;
    }
    f->name = cb_xstrdup(name);
    f->help = cb_xstrdup(help);
    f->bounds = cb_xcalloc(nbounds, sizeof(double));
    if (nbounds > 0)
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
    f->nbounds = nbounds;
    f->max_series = f->nlabels > 0 ? max_series : 1;
    if (f->nlabels == 0) {
        struct label_set ls;
        label_set_fill(&ls, f, NULL);
        add_series(f, &ls);
    }
    return f;
}

static bool same_shape(const struct cb_metric *a, const struct cb_metric *b)
{
    if (a->type != b->type || a->nlabels != b->nlabels || a->nbounds != b->nbounds)
        return false;
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->label_names[i], b->label_names[i]) != 0)
            return false;
    for (size_t i = 0; i < a->nbounds; i++)
        if (a->bounds[i] != b->bounds[i])
            return false;
    return true;
}

/* Called with m->lock held. */
static struct cb_metric *find_family(const struct cb_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->families[i]->name, name) == 0)
            return m->families[i];
    return NULL;
}

/* Builds the candidate family first, so validation happens even when the
 * name is already registered, then either adds it or compares it with the
 * existing one. */
static struct cb_metric *register_family(struct cb_metrics *m, enum metric_type type,
                                         const char *name, const char *help,
                                         const char *label_names, const double *bounds,
                                         size_t nbounds, size_t max_series)
{
    if (m == NULL)
        return NULL;
    struct cb_metric *f = family_new(type, name, help, label_names, bounds, nbounds, max_series);
    if (f == NULL)
        return NULL;
    pthread_mutex_lock(&m->lock);
    struct cb_metric *old = find_family(m, name);
    if (old == NULL) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 8;
            m->families = cb_xrealloc(m->families, m->cap * sizeof(*m->families));
        }
        m->families[m->n++] = f;
    }
    pthread_mutex_unlock(&m->lock);
    if (old == NULL)
        return f;
    bool same = same_shape(old, f);
    family_free(f);
    return same ? old : NULL;
}

struct cb_metrics *cb_metrics_new(void)
{
    struct cb_metrics *m = cb_xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void cb_metrics_free(struct cb_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        family_free(m->families[i]);
    free(m->families);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

struct cb_metric *cb_metrics_counter(struct cb_metrics *m, const char *name, const char *help,
                                     const char *label_names, size_t max_series)
{
    return register_family(m, TYPE_COUNTER, name, help, label_names, NULL, 0, max_series);
}

struct cb_metric *cb_metrics_gauge(struct cb_metrics *m, const char *name, const char *help,
                                   const char *label_names, size_t max_series)
{
    return register_family(m, TYPE_GAUGE, name, help, label_names, NULL, 0, max_series);
}

struct cb_metric *cb_metrics_histogram(struct cb_metrics *m, const char *name, const char *help,
                                       const char *label_names, const double *buckets,
                                       size_t nbuckets, size_t max_series)
{
    return register_family(m, TYPE_HISTOGRAM, name, help, label_names, buckets, nbuckets,
                           max_series);
}

void cb_metric_inc(struct cb_metric *c, const char *const *label_values, double by)
{
    struct label_set ls;
    if (c == NULL || c->type == TYPE_HISTOGRAM || (c->type == TYPE_COUNTER && !(by >= 0)))
        return;
    label_set_fill(&ls, c, label_values);
    pthread_mutex_lock(&c->lock);
    get_series(c, &ls)->value += by;
    pthread_mutex_unlock(&c->lock);
}

void cb_metric_set(struct cb_metric *g, const char *const *label_values, double v)
{
    struct label_set ls;
    if (g == NULL || g->type != TYPE_GAUGE)
        return;
    label_set_fill(&ls, g, label_values);
    pthread_mutex_lock(&g->lock);
    get_series(g, &ls)->value = v;
    pthread_mutex_unlock(&g->lock);
}

/* Upper bounds are inclusive, as Prometheus's "le" says. */
static size_t bucket_index(const struct cb_metric *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    return i;
}

void cb_metric_observe(struct cb_metric *h, const char *const *label_values, double v)
{
    struct label_set ls;
    if (h == NULL || h->type != TYPE_HISTOGRAM || isnan(v))
        return;
    size_t b = bucket_index(h, v);
    label_set_fill(&ls, h, label_values);
    pthread_mutex_lock(&h->lock);
    struct series *s = get_series(h, &ls);
    s->counts[b]++;
    s->count++;
    s->sum += v;
    pthread_mutex_unlock(&h->lock);
}

/* Prints the shortest of %.15g..%.17g that reads back as the same double, so
 * 0.1 renders as "0.1" and nothing loses precision. Uses the spellings the
 * exposition format wants for the special values. */
static void fmt_double(double v, char out[NUM_MAX])
{
    if (isnan(v)) {
        snprintf(out, NUM_MAX, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, NUM_MAX, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, NUM_MAX, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static const char *escape_of(char c, bool in_quotes)
{
    switch (c) {
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '"':
        return in_quotes ? "\\\"" : NULL;
    default:
        return NULL;
    }
}

/* Appends s escaped for a label value (in_quotes) or HELP text. Plain runs
 * are copied whole. */
static int put_escaped(struct cb_buf *out, const char *s, bool in_quotes)
{
    const char *run = s;
    int r = 0;
    for (const char *p = s; *p != '\0' && r == 0; p++) {
        const char *esc = escape_of(*p, in_quotes);
        if (esc == NULL)
            continue;
        r = cb_buf_append(out, run, (size_t)(p - run));
        if (r == 0)
            r = cb_buf_puts(out, esc);
        run = p + 1;
    }
    return r == 0 ? cb_buf_puts(out, run) : r;
}

static int render_header(const struct cb_metric *f, struct cb_buf *out)
{
    int r = cb_buf_printf(out, "# HELP %s ", f->name);
    if (r == 0)
        r = put_escaped(out, f->help, false);
    if (r == 0)
        r = cb_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    return r;
}

/* Appends "{a="x",b="y"}", with le="..." last when le is non-NULL, or
 * nothing when there are no labels at all. */
static int render_labels(const struct cb_metric *f, const struct series *s, const char *le,
                         struct cb_buf *out)
{
    if (f->nlabels == 0 && le == NULL)
        return 0;
    int r = cb_buf_puts(out, "{");
    for (size_t i = 0; i < f->nlabels && r == 0; i++) {
        r = cb_buf_printf(out, "%s%s=\"", i > 0 ? "," : "", f->label_names[i]);
        if (r == 0)
            r = put_escaped(out, s->values[i], true);
        if (r == 0)
            r = cb_buf_puts(out, "\"");
    }
    if (r == 0 && le != NULL)
        r = cb_buf_printf(out, "%sle=\"%s\"", f->nlabels > 0 ? "," : "", le);
    return r == 0 ? cb_buf_puts(out, "}") : r;
}

/* Appends one sample line: name, suffix, labels, value. */
static int render_sample(const struct cb_metric *f, const char *suffix, const struct series *s,
                         const char *le, const char *value, struct cb_buf *out)
{
    int r = cb_buf_printf(out, "%s%s", f->name, suffix);
    if (r == 0)
        r = render_labels(f, s, le, out);
    return r == 0 ? cb_buf_printf(out, " %s\n", value) : r;
}

static int render_histogram(const struct cb_metric *f, const struct series *s, struct cb_buf *out)
{
    char le[NUM_MAX], val[NUM_MAX];
    uint64_t cumulative = 0;
    int r = 0;
    for (size_t i = 0; i <= f->nbounds && r == 0; i++) {
        cumulative += s->counts[i];
        fmt_double(i < f->nbounds ? f->bounds[i] : INFINITY, le);
        snprintf(val, sizeof(val), "%" PRIu64, cumulative);
        r = render_sample(f, "_bucket", s, le, val, out);
    }
    fmt_double(s->sum, val);
    if (r == 0)
        r = render_sample(f, "_sum", s, NULL, val, out);
    snprintf(val, sizeof(val), "%" PRIu64, s->count);
    return r == 0 ? render_sample(f, "_count", s, NULL, val, out) : r;
}

static int render_family(struct cb_metric *f, struct cb_buf *out)
{
    char val[NUM_MAX];
    int r = render_header(f, out);
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->nseries && r == 0; i++) {
        const struct series *s = f->series[i];
        if (f->type == TYPE_HISTOGRAM) {
            r = render_histogram(f, s, out);
            continue;
        }
        fmt_double(s->value, val);
        r = render_sample(f, "", s, NULL, val, out);
    }
    pthread_mutex_unlock(&f->lock);
    return r;
}

int cb_metrics_render(struct cb_metrics *m, struct cb_buf *out)
{
    size_t start = out->len;
    int r = 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n && r == 0; i++)
        r = render_family(m->families[i], out);
    pthread_mutex_unlock(&m->lock);
    if (r < 0 && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return r;
}
