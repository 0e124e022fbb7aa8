#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/util.h"
#include "metrics/metrics.h"

#define LV(...) ((const char *const[]){__VA_ARGS__})

/* Renders the registry into a new string the caller frees. */
static char *render(struct cb_metrics *m)
{
    struct cb_buf b;
    cb_buf_init(&b, 1 << 20);
    assert_int_equal(cb_metrics_render(m, &b), 0);
    return cb_buf_steal(&b, NULL);
}

static size_t count_occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void counter_renders_exact_value(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    struct cb_metric *c = cb_metrics_counter(m, "t_requests_total", "Requests.", NULL, 0);
    assert_non_null(c);
    cb_metric_inc(c, NULL, 1);
    cb_metric_inc(c, NULL, 2.5);
    cb_metric_inc(c, NULL, -1);  /* counters only go up */
    cb_metric_inc(c, NULL, NAN); /* would poison the total */
    cb_metric_set(c, NULL, 100); /* set is for gauges only */
    char *out = render(m);
    assert_string_equal(out, "# HELP t_requests_total Requests.\n"
                             "# TYPE t_requests_total counter\n"
                             "t_requests_total 3.5\n");
    free(out);
    cb_metrics_free(m);
}

static void unlabelled_families_render_zero_before_use(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    assert_non_null(cb_metrics_counter(m, "t_a_total", "A.", NULL, 0));
    assert_non_null(cb_metrics_gauge(m, "t_b", "B.", "", 0));
    assert_non_null(cb_metrics_histogram(m, "t_c", "C.", NULL, NULL, 0, 0));
    char *out = render(m);
    assert_string_equal(out, "# HELP t_a_total A.\n# TYPE t_a_total counter\nt_a_total 0\n"
                             "# HELP t_b B.\n# TYPE t_b gauge\nt_b 0\n"
                             "# HELP t_c C.\n# TYPE t_c histogram\n"
                             "t_c_bucket{le=\"+Inf\"} 0\nt_c_sum 0\nt_c_count 0\n");
    free(out);
    cb_metrics_free(m);
}

static void labelled_family_without_series_renders_header_only(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    assert_non_null(cb_metrics_counter(m, "t_x_total", "X.", "route", 4));
    char *out = render(m);
    assert_string_equal(out, "# HELP t_x_total X.\n# TYPE t_x_total counter\n");
    free(out);
    cb_metrics_free(m);
}

static void gauge_set_and_inc(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    struct cb_metric *g = cb_metrics_gauge(m, "t_pool_size", "Pool.", "pool", 8);
    cb_metric_set(g, LV("a"), 5);
    cb_metric_inc(g, LV("a"), -2);
    cb_metric_set(g, LV("b"), 0.1);
    cb_metric_inc(g, LV("c"), 1e21);
    cb_metric_set(g, LV("d"), -INFINITY);
    char *out = render(m);
    assert_string_equal(out, "# HELP t_pool_size Pool.\n# TYPE t_pool_size gauge\n"
                             "t_pool_size{pool=\"a\"} 3\n"
                             "t_pool_size{pool=\"b\"} 0.1\n"
                             "t_pool_size{pool=\"c\"} 1e+21\n"
                             "t_pool_size{pool=\"d\"} -Inf\n");
    free(out);
    cb_metrics_free(m);
}

static void histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    const double b[] = {0.25, 1, 8};
    struct cb_metric *h =
        cb_metrics_histogram(m, "t_latency_seconds", "Latency.", "route", b, CB_ARRAY_LEN(b), 4);
    assert_non_null(h);
    const double obs[] = {0.25 /* bounds are inclusive */, 0.5, 0.5, 4, 64};
    for (size_t i = 0; i < CB_ARRAY_LEN(obs); i++)
        cb_metric_observe(h, LV("/x"), obs[i]);
    cb_metric_observe(h, LV("/x"), NAN);
    cb_metric_inc(h, LV("/x"), 1);
    cb_metric_observe(h, LV("/y"), -3);
    char *out = render(m);
    assert_string_equal(out, "# HELP t_latency_seconds Latency.\n"
                             "# TYPE t_latency_seconds histogram\n"
                             "t_latency_seconds_bucket{route=\"/x\",le=\"0.25\"} 1\n"
                             "t_latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
                             "t_latency_seconds_bucket{route=\"/x\",le=\"8\"} 4\n"
                             "t_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
                             "t_latency_seconds_sum{route=\"/x\"} 69.25\n"
                             "t_latency_seconds_count{route=\"/x\"} 5\n"
                             "t_latency_seconds_bucket{route=\"/y\",le=\"0.25\"} 1\n"
                             "t_latency_seconds_bucket{route=\"/y\",le=\"1\"} 1\n"
                             "t_latency_seconds_bucket{route=\"/y\",le=\"8\"} 1\n"
                             "t_latency_seconds_bucket{route=\"/y\",le=\"+Inf\"} 1\n"
                             "t_latency_seconds_sum{route=\"/y\"} -3\n"
                             "t_latency_seconds_count{route=\"/y\"} 1\n");
    free(out);
    cb_metrics_free(m);
}

static void label_values_and_help_are_escaped(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    struct cb_metric *c =
        cb_metrics_counter(m, "t_e_total", "Line\nback\\slash \"quoted\".", "v,w", 4);
    cb_metric_inc(c, LV("a\"b\\c\nd", NULL), 1);
    char *out = render(m);
    assert_string_equal(out, "# HELP t_e_total Line\\nback\\\\slash \"quoted\".\n"
                             "# TYPE t_e_total counter\n"
                             "t_e_total{v=\"a\\\"b\\\\c\\nd\",w=\"\"} 1\n");
    free(out);
    cb_metrics_free(m);
}

static void label_values_are_truncated_to_valid_utf8(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    struct cb_metric *g = cb_metrics_gauge(m, "t_u", "U.", "v", 16);
    char long1[300], long2[300], euro[200];
    memset(long1, 'x', sizeof(long1) - 1);
    long1[sizeof(long1) - 1] = '\0';
    memcpy(long2, long1, sizeof(long1));
    long2[200] = 'z'; /* differs only past the cap: same series */
    memset(euro, 'y', 127);
    memcpy(euro + 127, "\xE2\x82\xAC", 4); /* a 3-byte character straddling the cap */
    cb_metric_inc(g, LV(long1), 1);
    cb_metric_inc(g, LV(long2), 1);
    cb_metric_inc(g, LV(euro), 1);
    cb_metric_inc(g,
                  LV("a\xFF"
                     "b\xC0\xAF"
                     "c\xED\xA0\x80"
                     "d\xC3\xA9"),
                  1);
    char *out = render(m);

    char expect[1024];
    struct cb_buf e;
    cb_buf_init(&e, sizeof(expect));
    assert_int_equal(cb_buf_puts(&e, "# HELP t_u U.\n# TYPE t_u gauge\nt_u{v=\""), 0);
    assert_int_equal(cb_buf_printf(&e, "%.*s\"} 2\nt_u{v=\"%.*s\"} 1\n", CB_METRICS_LABEL_VALUE_MAX,
                                   long1, 127, euro),
                     0);
    /* Invalid bytes (stray, overlong, surrogate) each become U+FFFD. */
    assert_int_equal(cb_buf_puts(&e, "t_u{v=\"a\xEF\xBF\xBD"
                                     "b\xEF\xBF\xBD\xEF\xBF\xBD"
                                     "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                     "d\xC3\xA9\"} 1\n"),
                     0);
    assert_string_equal(out, e.data);
    cb_buf_free(&e);
    free(out);
    cb_metrics_free(m);
}

static void new_combinations_past_max_series_overflow(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    struct cb_metric *c = cb_metrics_counter(m, "t_o_total", "O.", "route,status", 2);
    cb_metric_inc(c, LV("/a", "200"), 1);
    cb_metric_inc(c, LV("/b", "200"), 1);
    cb_metric_inc(c, LV("/c", "200"), 1);
    cb_metric_inc(c, LV("/d", "500"), 1);
    cb_metric_inc(c, LV("/a", "200"), 1);
    /* A client naming the overflow series lands in it, not in a duplicate. */
    cb_metric_inc(c, LV("__overflow__", "__overflow__"), 1);
    char *out = render(m);
    assert_string_equal(out, "# HELP t_o_total O.\n# TYPE t_o_total counter\n"
                             "t_o_total{route=\"/a\",status=\"200\"} 2\n"
                             "t_o_total{route=\"/b\",status=\"200\"} 1\n"
                             "t_o_total{route=\"__overflow__\",status=\"__overflow__\"} 3\n");
    free(out);
    cb_metrics_free(m);
}

static void overflow_value_used_before_cap_stays_unique(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    struct cb_metric *g = cb_metrics_gauge(m, "t_q", "Q.", "v", 2);
    cb_metric_inc(g, LV("__overflow__"), 1);
    cb_metric_inc(g, LV("a"), 1);
    cb_metric_inc(g, LV("b"), 1);
    cb_metric_inc(g, LV("c"), 1);
    cb_metric_inc(g, LV("d"), 1);
    char *out = render(m);
    assert_int_equal(count_occurrences(out, "__overflow__"), 1);
    /* At most max_series ordinary series plus the overflow one. */
    assert_int_equal(count_occurrences(out, "\nt_q{"), 3);
    free(out);
    cb_metrics_free(m);
}

static void registering_again_returns_existing_family(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    const double b[] = {1, 2};
    const double b2[] = {1, 3};
    struct cb_metric *c = cb_metrics_counter(m, "t_r_total", "R.", "a,b", 4);
    struct cb_metric *h = cb_metrics_histogram(m, "t_h", "H.", NULL, b, 2, 0);
    assert_non_null(c);
    assert_ptr_equal(cb_metrics_counter(m, "t_r_total", "Other help.", "a,b", 9), c);
    assert_ptr_equal(cb_metrics_histogram(m, "t_h", "H.", NULL, b, 2, 0), h);
    assert_null(cb_metrics_counter(m, "t_r_total", "R.", "b,a", 4));
    assert_null(cb_metrics_counter(m, "t_r_total", "R.", "a", 4));
    assert_null(cb_metrics_gauge(m, "t_h", "H.", NULL, 0));
    assert_null(cb_metrics_histogram(m, "t_h", "H.", NULL, b2, 2, 0));
    assert_null(cb_metrics_histogram(m, "t_h", "H.", NULL, b, 1, 0));
    char *out = render(m);
    assert_int_equal(count_occurrences(out, "# TYPE"), 2);
    assert_non_null(strstr(out, "# HELP t_r_total R.\n"));
    free(out);
    cb_metrics_free(m);
}

static void invalid_definitions_are_rejected(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    const double up[] = {1, 2}, flat[] = {1, 1}, down[] = {2, 1}, inf[] = {1, INFINITY};
    const double nan[] = {NAN};
    assert_null(cb_metrics_counter(NULL, "t_total", "X.", NULL, 0));
    assert_null(cb_metrics_counter(m, NULL, "X.", NULL, 0));
    assert_null(cb_metrics_counter(m, "", "X.", NULL, 0));
    assert_null(cb_metrics_counter(m, "1t_total", "X.", NULL, 0));
    assert_null(cb_metrics_counter(m, "t-x_total", "X.", NULL, 0));
    assert_null(cb_metrics_counter(m, "t_x", "X.", NULL, 0));     /* no _total */
    assert_null(cb_metrics_gauge(m, "t_x_total", "X.", NULL, 0)); /* _total */
    assert_null(cb_metrics_gauge(m, "t_x_count", "X.", NULL, 0));
    assert_null(cb_metrics_gauge(m, "t_x_sum", "X.", NULL, 0));
    assert_null(cb_metrics_histogram(m, "t_x_bucket", "X.", NULL, up, 2, 0));
    assert_null(cb_metrics_gauge(m, "t_x", NULL, NULL, 0));
    assert_null(cb_metrics_gauge(m, "t_x", "", NULL, 0));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "a:b", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "a,,b", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "a,", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", ",a", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "a, b", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "a,a", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "__a", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "9a", 4));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "a", 0));
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", 4));
    assert_null(cb_metrics_histogram(m, "t_x", "X.", "le", up, 2, 4));
    assert_null(cb_metrics_histogram(m, "t_x", "X.", NULL, flat, 2, 0));
    assert_null(cb_metrics_histogram(m, "t_x", "X.", NULL, down, 2, 0));
    assert_null(cb_metrics_histogram(m, "t_x", "X.", NULL, inf, 2, 0));
    assert_null(cb_metrics_histogram(m, "t_x", "X.", NULL, nan, 1, 0));
    assert_null(cb_metrics_histogram(m, "t_x", "X.", NULL, NULL, 1, 0));
    /* Valid edge cases. */
    assert_null(cb_metrics_gauge(m, "t_x", "X.", "le", 4));
    assert_null(cb_metrics_counter(m, "t_x_total", "X.", "a,quantile", 4));
    assert_non_null(cb_metrics_gauge(m, "t:x", "X.", "l,e", 4));
    assert_non_null(cb_metrics_gauge(m, "t_y", "X.", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", 4));
    char *out = render(m);
    assert_int_equal(count_occurrences(out, "# TYPE"), 2);
    free(out);
    cb_metrics_free(m);
    cb_metrics_free(NULL);
}

static void render_past_buffer_limit_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct cb_metrics *m = cb_metrics_new();
    struct cb_metric *g = cb_metrics_gauge(m, "t_g", "G.", "v", 8);
    cb_metric_set(g, LV("a-long-enough-value"), 1);
    struct cb_buf b;
    cb_buf_init(&b, 40);
    assert_int_equal(cb_buf_puts(&b, "abc"), 0);
    assert_int_equal(cb_metrics_render(m, &b), -E2BIG);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    cb_buf_free(&b);
    cb_metrics_free(m);
}

#define THREADS    8
#define ITERATIONS 20000

struct shared {
    struct cb_metrics *m;
    struct cb_metric *c, *g, *h;
    int id;
};

static void *record(void *arg)
{
    struct shared *s = arg;
    char route[16];
    snprintf(route, sizeof(route), "/r%d", s->id % 2);
    for (int i = 0; i < ITERATIONS; i++) {
        cb_metric_inc(s->c, LV(route), 1);
        cb_metric_inc(s->g, NULL, (i % 2) ? 1 : -1);
        cb_metric_observe(s->h, LV(route), (double)(i % 4));
    }
    return NULL;
}

static void *render_repeatedly(void *arg)
{
    struct shared *s = arg;
    for (int i = 0; i < 50; i++)
        free(render(s->m));
    return NULL;
}

static void concurrent_recording_is_exact(void **state)
{
    (void)state;
    struct shared s[THREADS + 1];
    pthread_t t[THREADS + 1];
    const double b[] = {0, 1, 2};
    struct cb_metrics *m = cb_metrics_new();
    struct shared base = {
        .m = m,
        .c = cb_metrics_counter(m, "t_c_total", "C.", "route", 4),
        .g = cb_metrics_gauge(m, "t_g", "G.", NULL, 0),
        .h = cb_metrics_histogram(m, "t_h", "H.", "route", b, 3, 4),
    };
    for (int i = 0; i <= THREADS; i++) {
        s[i] = base;
        s[i].id = i;
        assert_int_equal(
            pthread_create(&t[i], NULL, i < THREADS ? record : render_repeatedly, &s[i]), 0);
    }
    for (int i = 0; i <= THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    char *out = render(m);
    char line[128];
    const int per_route = THREADS / 2 * ITERATIONS;
    const char *expect[] = {"t_c_total{route=\"/r0\"} ", "t_c_total{route=\"/r1\"} ",
                            "t_h_count{route=\"/r0\"} ", "t_h_count{route=\"/r1\"} "};
    for (size_t i = 0; i < CB_ARRAY_LEN(expect); i++) {
        snprintf(line, sizeof(line), "%s%d\n", expect[i], per_route);
        assert_non_null(strstr(out, line));
    }
    snprintf(line, sizeof(line), "t_h_bucket{route=\"/r1\",le=\"1\"} %d\n", per_route / 2);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "t_h_sum{route=\"/r0\"} %d\n", per_route / 4 * 6);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "\nt_g 0\n"));
    free(out);
    cb_metrics_free(m);
}

/* A registry exercising every type, hostile label values and the overflow
 * series, for promtool. */
static struct cb_metrics *hostile_registry(void)
{
    struct cb_metrics *m = cb_metrics_new();
    const double b[] = {0.005, 0.1, 1, 2.5, 60};
    struct cb_metric *c = cb_metrics_counter(m, "clawbox_http_requests_total",
                                             "Requests \\ \"served\"\n.", "route,status", 4);
    struct cb_metric *g = cb_metrics_gauge(m, "clawbox_sandboxes", "Live sandboxes.", NULL, 0);
    struct cb_metric *h = cb_metrics_histogram(m, "clawbox_http_request_duration_seconds",
                                               "Request latency.", "route", b, 5, 2);
    cb_metrics_gauge(m, "clawbox_unused", "Never set.", "kind", 2);
    cb_metrics_histogram(m, "clawbox_plain_seconds", "No buckets.", NULL, NULL, 0, 0);
    cb_metric_inc(c, LV("/q\"uote", "200"), 1);
    cb_metric_inc(c, LV("/back\\slash\\", "404"), 2);
    cb_metric_inc(c, LV("/new\nline\r\t", "500"), 3);
    cb_metric_inc(c, LV("/bad\xFF\xFE utf8", "500"), 4);
    cb_metric_inc(c, LV("/overflowed", "200"), 5);
    cb_metric_set(g, NULL, 0.1);
    cb_metric_observe(h, LV("/a"), 0.003);
    cb_metric_observe(h, LV("/a"), 3);
    cb_metric_observe(h, LV("\"\\\n"), 1e9);
    cb_metric_observe(h, LV("/c"), 0.1);
    return m;
}

static void rendered_output_passes_promtool(void **state)
{
    (void)state;
    struct cb_metrics *m = hostile_registry();
    char *text = render(m);
    assert_non_null(strstr(text, "__overflow__"));
    char path[] = "/tmp/cb-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    char cmd[128], lines[4096] = "";
    size_t used = 0;
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n;
    while ((n = fread(lines + used, 1, sizeof(lines) - 1 - used, p)) > 0)
        used += n;
    lines[used] = '\0';
    int status = pclose(p);
    unlink(path);
    /* A missing promtool fails here too (exit 127 and a shell message). */
    assert_string_equal(lines, "");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(text);
    cb_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_renders_exact_value),
        cmocka_unit_test(unlabelled_families_render_zero_before_use),
        cmocka_unit_test(labelled_family_without_series_renders_header_only),
        cmocka_unit_test(gauge_set_and_inc),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(label_values_and_help_are_escaped),
        cmocka_unit_test(label_values_are_truncated_to_valid_utf8),
        cmocka_unit_test(new_combinations_past_max_series_overflow),
        cmocka_unit_test(overflow_value_used_before_cap_stays_unique),
        cmocka_unit_test(registering_again_returns_existing_family),
        cmocka_unit_test(invalid_definitions_are_rejected),
        cmocka_unit_test(render_past_buffer_limit_leaves_buffer_unchanged),
        cmocka_unit_test(concurrent_recording_is_exact),
        cmocka_unit_test(rendered_output_passes_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
