/* The exec records of a container (containers/manager.c) behind
 * GET /containers/{id}/execs/{exec_id}, against a manager that holds one
 * fake running container: ids, running and finished states, the bound on
 * finished ones kept, an exec that never started, and unknown ids. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "containers/internal.h"
#include "containers/request.h"

#define CT_ID "clawbox-test"

static struct {
    struct cb_config *cfg;
    struct cb_ct_manager m;
    struct cb__ct ct;
} g;

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    assert_int_equal(cb_config_load_text("t.toml", "", 0, &g.cfg, &diag, &err), 0);
    cb_config_diag_free(&diag);
    g.m.cfg = g.cfg;
    pthread_mutex_init(&g.m.lock, NULL);
    pthread_cond_init(&g.m.changed, NULL);
    snprintf(g.ct.id, sizeof(g.ct.id), "%s", CT_ID);
    g.ct.status = CB__CT_RUNNING;
    g.ct.dir = "/nonexistent";
    g.ct.slot = 0;
    g.m.list = &g.ct;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cb__ct_exec_recs_free(&g.ct);
    pthread_cond_destroy(&g.m.changed);
    pthread_mutex_destroy(&g.m.lock);
    cb_config_free(g.cfg);
    return 0;
}

/* Enters an exec of argv[0..n); its id in t->exec_id. */
static void enter(struct cb__ct_exec_target *t, const char **argv, size_t n)
{
    struct cb_ct_exec_request q = {.command = argv, .n_command = n};
    struct cb_error err = {0};
    assert_int_equal(cb__ct_exec_enter(&g.m, CT_ID, &q, t, &err), 0);
}

/* Ends a running exec as exec.c does: its end recorded, its place given
 * back. */
static void finish(const char *exec_id, const struct cb__ct_exec_outcome *o)
{
    cb__ct_exec_ended(&g.m, CT_ID, exec_id, o);
    cb__ct_exec_leave(&g.m, CT_ID, exec_id, true);
}

static json_t *info(const char *exec_id, int want)
{
    json_t *out = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_ct_exec_info(&g.m, CT_ID, exec_id, &out, &err), want);
    return out;
}

static void running_then_finished(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "exit 3"};
    struct cb__ct_exec_target t;
    enter(&t, argv, 3);
    assert_int_equal(strlen(t.exec_id), CB__CT_EXEC_ID_LEN - 1);
    assert_memory_equal(t.exec_id, "ex_", 3);
    assert_int_equal(g.ct.execs, 1);
    json_t *i = info(t.exec_id, 0);
    assert_string_equal(json_string_value(json_object_get(i, "state")), "running");
    assert_true(json_is_null(json_object_get(i, "exit_code")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(i, "command"), 2)),
                        "exit 3");
    json_decref(i);
    struct cb__ct_exec_outcome o = {.code = 3, .duration_ms = 42};
    finish(t.exec_id, &o);
    assert_int_equal(g.ct.execs, 0);
    i = info(t.exec_id, 0);
    assert_string_equal(json_string_value(json_object_get(i, "state")), "exited");
    assert_int_equal(json_integer_value(json_object_get(i, "exit_code")), 3);
    assert_int_equal(json_integer_value(json_object_get(i, "duration_ms")), 42);
    json_decref(i);
    cb__ct_exec_target_clear(&t);
}

static void killed_ones_say_why_and_have_no_code(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sleep"};
    struct cb__ct_exec_target a, b;
    enter(&a, argv, 1);
    enter(&b, argv, 1);
    finish(a.exec_id, &(struct cb__ct_exec_outcome){.code = -1, .timed_out = true});
    finish(b.exec_id, &(struct cb__ct_exec_outcome){.code = -1, .cancelled = true});
    json_t *i = info(a.exec_id, 0);
    assert_string_equal(json_string_value(json_object_get(i, "state")), "timed_out");
    assert_true(json_is_null(json_object_get(i, "exit_code")));
    json_decref(i);
    i = info(b.exec_id, 0);
    assert_string_equal(json_string_value(json_object_get(i, "state")), "cancelled");
    json_decref(i);
    cb__ct_exec_target_clear(&a);
    cb__ct_exec_target_clear(&b);
}

static void only_the_last_finished_are_kept(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/true"};
    struct cb__ct_exec_target t, first, running;
    enter(&running, argv, 1); /* a running one is never dropped */
    enter(&first, argv, 1);
    finish(first.exec_id, &(struct cb__ct_exec_outcome){0});
    for (int i = 0; i < CB__CT_EXECS_KEPT; i++) {
        enter(&t, argv, 1);
        finish(t.exec_id, &(struct cb__ct_exec_outcome){0});
        cb__ct_exec_target_clear(&t);
    }
    assert_null(info(first.exec_id, -ENOENT));
    json_decref(info(running.exec_id, 0));
    cb__ct_exec_target_clear(&first);
    cb__ct_exec_target_clear(&running);
}

static void one_that_never_started_is_forgotten(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/true"};
    struct cb__ct_exec_target t;
    enter(&t, argv, 1);
    cb__ct_exec_leave(&g.m, CT_ID, t.exec_id, false);
    assert_null(info(t.exec_id, -ENOENT));
    assert_null(g.ct.exec_recs);
    cb__ct_exec_target_clear(&t);
}

static void unknown_ids_and_a_long_command(void **state)
{
    (void)state;
    assert_null(info("ex_0000000000000000", -ENOENT));
    json_t *out = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_ct_exec_info(&g.m, "clawbox-nope", "ex_0", &out, &err), -ENOENT);
    char big[3000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *argv[] = {"/bin/echo", big, "more"};
    struct cb__ct_exec_target t;
    enter(&t, argv, 3);
    json_t *i = info(t.exec_id, 0);
    json_t *cmd = json_object_get(i, "command");
    assert_int_equal(json_array_size(cmd), 2);
    assert_int_equal(json_string_length(json_array_get(cmd, 1)), 1024 - strlen("/bin/echo"));
    json_decref(i);
    cb__ct_exec_leave(&g.m, CT_ID, t.exec_id, false);
    cb__ct_exec_target_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(running_then_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_ones_say_why_and_have_no_code, setup, teardown),
        cmocka_unit_test_setup_teardown(only_the_last_finished_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(one_that_never_started_is_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_ids_and_a_long_command, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
