/* Image templates edited as text: the rest of the file is kept byte for
 * byte, a template is replaced in place of none, and the result loads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/templates.h"
#include "core/util.h"

static const char base[] = "# mine\n[server]\nport = 9800 # kept\n\n"
                           "[images.templates.a]\nimage = \"x:1\"\n# a's comment\n\n"
                           "[logging]\nlevel = \"info\"\n";

static void put_appends_and_quotes(void **state)
{
    (void)state;
    char *items[] = {"h.com", "q\"x"};
    struct cb_strlist net = {items, 2};
    struct cb_template_spec t = {.name = "b",
                                 .image = "clawbox/agent-base:latest",
                                 .description = "two\nlines",
                                 .network_allowlist = &net};
    char *out = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_template_put(base, strlen(base), &t, &out, &err), 0);
    assert_memory_equal(out, base, strlen(base));
    assert_string_equal(out + strlen(base),
                        "\n[images.templates.b]\nimage = \"clawbox/agent-base:latest\"\n"
                        "description = \"two\\u000Alines\"\n"
                        "network_allowlist = [\"h.com\", \"q\\\"x\"]\n");
    free(out);
}

static void put_replaces_and_remove_removes(void **state)
{
    (void)state;
    struct cb_template_spec t = {.name = "a", .image = "y:2"};
    char *out = NULL, *out2 = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_template_put(base, strlen(base), &t, &out, &err), 0);
    assert_null(strstr(out, "x:1"));
    assert_null(strstr(out, "a's comment"));
    assert_non_null(strstr(out, "[logging]\nlevel = \"info\"\n"));
    assert_non_null(strstr(out, "[images.templates.a]\nimage = \"y:2\"\n"));
    assert_int_equal(cb_template_remove(out, strlen(out), "a", &out2, &err), 0);
    free(out);
    assert_null(strstr(out2, "templates.a"));
    assert_string_equal(out2, "# mine\n[server]\nport = 9800 # kept\n\n[logging]\nlevel = "
                              "\"info\"\n\n");
    char *none = NULL;
    assert_int_equal(cb_template_remove(out2, strlen(out2), "a", &none, &err), -ENOENT);
    assert_null(none);
    free(out2);
}

static void bad_input_is_refused(void **state)
{
    (void)state;
    char *out = NULL;
    struct cb_error err = {0};
    struct cb_template_spec bad_name = {.name = "a]\n[server", .image = "x"};
    assert_int_equal(cb_template_put(base, strlen(base), &bad_name, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a template name"));
    struct cb_template_spec no_image = {.name = "c", .image = ""};
    assert_int_equal(cb_template_put(base, strlen(base), &no_image, &out, &err), -EINVAL);
    /* A file that would not load afterwards is not written. */
    static const char broken[] = "[server]\nport = \"x\"\n";
    struct cb_template_spec t = {.name = "c", .image = "x"};
    assert_int_equal(cb_template_put(broken, strlen(broken), &t, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "would not load"));
    assert_false(cb_name_valid(""));
    assert_false(cb_name_valid("../x"));
    assert_true(cb_name_valid("code-runner_2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_appends_and_quotes),
        cmocka_unit_test(put_replaces_and_remove_removes),
        cmocka_unit_test(bad_input_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
