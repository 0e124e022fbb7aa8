/* The inotify watcher (src/lib/sandbox/registry/watch.c) with a fake
 * loader and a 50 ms debounce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"

#define WAIT_MS 2000

static int setup(void **state)
{
    struct fixture *fx = cb_xmalloc(sizeof(*fx));
    fixture_init(fx);
    fx->opts.watch = true;
    *state = fx;
    return 0;
}

/* Waits up to WAIT_MS for the tool's so_path to be `want` (NULL: not
 * loaded); returns the milliseconds it took, or -1. */
static int wait_for_so(struct fixture *fx, const char *name, const char *want)
{
    for (int ms = 0; ms < WAIT_MS; ms += 5) {
        char *so = loaded_so(fx->reg, name);
        bool match = want == NULL ? so == NULL : so != NULL && strcmp(so, want) == 0;
        free(so);
        if (match)
            return ms;
        sleep_ms(5);
    }
    return -1;
}

static int wait_for_calls(struct fixture *fx, int n)
{
    for (int ms = 0; ms < WAIT_MS; ms += 5) {
        if (fake_calls(&fx->loader) >= n)
            return ms;
        sleep_ms(5);
    }
    return -1;
}

static void new_file_appears(void **state)
{
    struct fixture *fx = *state;
    fixture_open_ok(fx);
    put_file(fx, "hot.wasm", "h1");
    int ms = wait_for_so(fx, "hot", "/fake/h1.so");
    assert_true(ms >= 0 && ms < 1000);
    char *text = render_metrics(fx->metrics);
    assert_non_null(strstr(text, "clawbox_tools_loaded 1\n"));
    free(text);
    /* it has a manifest like every loaded tool */
    json_t *all = cb_registry_manifests(fx->reg);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);
}

static void rapid_writes_load_only_the_final_content(void **state)
{
    struct fixture *fx = *state;
    fx->opts.debounce_ms = 150; /* wide margin over the gaps below */
    fixture_open_ok(fx);
    put_file(fx, "t.wasm", "one");
    sleep_ms(10);
    put_file(fx, "t.wasm", "two");
    sleep_ms(10);
    put_file(fx, "t.wasm", "three");
    assert_true(wait_for_so(fx, "t", "/fake/three.so") >= 0);
    sleep_ms(300); /* nothing else may follow */
    assert_int_equal(fake_calls(&fx->loader), 1);
}

static void delete_unloads(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "gone.wasm", "g");
    fixture_open_ok(fx);
    char *so = loaded_so(fx->reg, "gone");
    assert_non_null(so);
    free(so);
    del_file(fx, "gone.wasm");
    assert_true(wait_for_so(fx, "gone", NULL) >= 0);
    char *text = render_metrics(fx->metrics);
    assert_non_null(strstr(text, "clawbox_tools_loaded 0\n"));
    free(text);
}

static void failed_load_keeps_the_old_version(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "k.wasm", "good");
    fixture_open_ok(fx);
    assert_int_equal(fake_calls(&fx->loader), 1);
    put_file(fx, "k.wasm", "FAIL now");
    assert_true(wait_for_calls(fx, 2) >= 0);
    sleep_ms(50);
    char *so = loaded_so(fx->reg, "k");
    assert_string_equal(so, "/fake/good.so");
    free(so);
    char *text = render_metrics(fx->metrics);
    assert_non_null(strstr(text, "clawbox_tool_compile_failures_total{tool=\"k\"} 1\n"));
    free(text);
    /* and a fixed file replaces it */
    put_file(fx, "k.wasm", "fixed");
    assert_true(wait_for_so(fx, "k", "/fake/fixed.so") >= 0);
}

static void rename_into_place_loads(void **state)
{
    struct fixture *fx = *state;
    fixture_open_ok(fx);
    char from[256], to[256];
    snprintf(from, sizeof(from), "%s/tmp.partial", fx->tool_dir);
    snprintf(to, sizeof(to), "%s/moved.wasm", fx->tool_dir);
    put_file(fx, "tmp.partial", "m1");
    assert_int_equal(rename(from, to), 0);
    assert_true(wait_for_so(fx, "moved", "/fake/m1.so") >= 0);
    /* moved away: unloaded */
    assert_int_equal(rename(to, from), 0);
    assert_true(wait_for_so(fx, "moved", NULL) >= 0);
}

static void manifest_file_change_is_picked_up(void **state)
{
    struct fixture *fx = *state;
    put_file(fx, "m.wasm", "m");
    fixture_open_ok(fx);
    put_file(fx, "m.json", "{\"tool\":{\"name\":\"m\",\"description\":\"hot\"}}");
    for (int ms = 0; ms < WAIT_MS; ms += 5) {
        struct cb_tool *t = cb_registry_get(fx->reg, "m");
        const char *d = json_string_value(
            json_object_get(json_object_get(t->manifest->doc, "tool"), "description"));
        bool done = strcmp(d, "hot") == 0;
        cb_tool_unref(t);
        if (done)
            break;
        sleep_ms(5);
    }
    struct cb_tool *t = cb_registry_get(fx->reg, "m");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t->manifest->doc, "tool"),
                                                          "description")),
                        "hot");
    cb_tool_unref(t);
    assert_int_equal(fake_calls(&fx->loader), 1); /* no recompile for a manifest edit */
}

static void close_with_pending_events_is_prompt(void **state)
{
    struct fixture *fx = *state;
    fx->opts.debounce_ms = 10000;
    fixture_open_ok(fx);
    put_file(fx, "p.wasm", "p");
    sleep_ms(20);
    uint64_t t0 = cb_now_mono_ns();
    fixture_close(fx);
    assert_true(cb_now_mono_ns() - t0 < 500u * 1000000u);
    assert_int_equal(fake_calls(&fx->loader), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(new_file_appears),
        T(rapid_writes_load_only_the_final_content),
        T(delete_unloads),
        T(failed_load_keeps_the_old_version),
        T(rename_into_place_loads),
        T(manifest_file_change_is_picked_up),
        T(close_with_pending_events_is_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
