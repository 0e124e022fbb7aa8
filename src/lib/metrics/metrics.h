/* A small thread-safe Prometheus metrics registry with text exposition
 * (format 0.0.4). A registry holds metric families (counters, gauges,
 * histograms); each family holds a bounded number of series, one per
 * distinct combination of label values.
 *
 * Names are chosen by code, so a bad name is a programming error and makes
 * registration return NULL. Label values come from clients, so they are
 * sanitised instead: truncated to CB_METRICS_LABEL_VALUE_MAX bytes at a
 * character boundary, invalid UTF-8 replaced by U+FFFD, and escaped on output.
 *
 * The naming rules are those `promtool check metrics` lints for, so the
 * rendered text passes it: counter names end in "_total", other names do not,
 * no name ends in "_bucket", "_sum" or "_count", and help text is non-empty.
 * Following the rest of the Prometheus naming conventions, which promtool
 * also lints (snake_case, base units, no type in the name, no ':' outside
 * recording rules), is left to the caller. */
#ifndef CB_METRICS_METRICS_H
#define CB_METRICS_METRICS_H

#include <stddef.h>

#include "core/buf.h"

/* Bytes kept of each label value; longer values are truncated. */
#define CB_METRICS_LABEL_VALUE_MAX 128
/* Label names per family. */
#define CB_METRICS_LABELS_MAX 16
/* Explicit histogram buckets per family (+Inf is implicit and extra). */
#define CB_METRICS_BUCKETS_MAX 64
/* The value of every label of a family's overflow series. */
#define CB_METRICS_OVERFLOW_VALUE "__overflow__"

struct cb_metrics;
struct cb_metric;

/* Creates an empty registry; free it with cb_metrics_free(). */
struct cb_metrics *cb_metrics_new(void);
/* Frees the registry and every family in it. Accepts NULL. Family pointers
 * become invalid, so no thread may still be recording. */
void cb_metrics_free(struct cb_metrics *m);

/* Each registration returns a family owned by the registry, or NULL when a
 * name, the help text or the label names are invalid. Registering a name
 * again returns the existing family when type, label names and buckets match
 * (help and max_series of the first registration are kept) and NULL when
 * they do not.
 *
 * label_names: comma-separated label names ("route,status") without spaces,
 * or NULL (or "") for none; at most CB_METRICS_LABELS_MAX. Names starting
 * with "__" are reserved, and "le" and "quantile" are not allowed.
 * max_series: the number of distinct label-value combinations kept, at least
 * 1 when there are labels (ignored without). Once reached, new combinations
 * are counted in one overflow series whose every label value is
 * CB_METRICS_OVERFLOW_VALUE. A family without labels has its one series from
 * the start, so it renders 0 before anything is recorded. */
struct cb_metric *cb_metrics_counter(struct cb_metrics *m, const char *name, const char *help,
                                     const char *label_names, size_t max_series);
struct cb_metric *cb_metrics_gauge(struct cb_metrics *m, const char *name, const char *help,
                                   const char *label_names, size_t max_series);
/* buckets: nbuckets finite, strictly increasing upper bounds (inclusive);
 * the +Inf bucket is implicit. buckets may be NULL when nbuckets is 0. */
struct cb_metric *cb_metrics_histogram(struct cb_metrics *m, const char *name, const char *help,
                                       const char *label_names, const double *buckets,
                                       size_t nbuckets, size_t max_series);

/* Recording. label_values has one entry per label name, in the order they
 * were registered; it may be NULL when the family has no labels, and a NULL
 * entry counts as "". These never fail: a call on the wrong type of family,
 * a negative or NaN counter increment and a NaN observation are ignored.
 * Only the first use of a label combination allocates. */

/* Adds `by` to a counter (by >= 0) or gauge (any sign). */
void cb_metric_inc(struct cb_metric *c, const char *const *label_values, double by);
/* Sets a gauge. */
void cb_metric_set(struct cb_metric *g, const char *const *label_values, double v);
/* Records one observation in a histogram. */
void cb_metric_observe(struct cb_metric *h, const char *const *label_values, double v);

/* Appends the whole registry in Prometheus text exposition format 0.0.4 to
 * out: families in registration order, series in order of first use. A
 * labelled family with no series yet renders only its HELP and TYPE lines.
 * Returns 0, or -E2BIG when out's maximum is reached, leaving out as it was. */
int cb_metrics_render(struct cb_metrics *m, struct cb_buf *out);

#endif
