#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/home.h"
#include "core/util.h"

static void the_home_is_under_home_else_root(void **state)
{
    (void)state;
    setenv("HOME", "/home/u", 1);
    _cleanup_free_ char *dir = cb_home_dir();
    _cleanup_free_ char *token = cb_home_path(CB_HOME_TOKEN);
    _cleanup_free_ char *config = cb_home_path(CB_HOME_CONFIG);
    assert_string_equal(dir, "/home/u/.clawbox");
    assert_string_equal(token, "/home/u/.clawbox/token");
    assert_string_equal(config, "/home/u/.clawbox/config/clawbox.toml");
    setenv("HOME", "", 1);
    _cleanup_free_ char *empty = cb_home_dir();
    assert_string_equal(empty, "/root/.clawbox");
    unsetenv("HOME");
    _cleanup_free_ char *unset = cb_home_path(CB_HOME_TOOLS);
    assert_string_equal(unset, "/root/.clawbox/tools");
}

static void clawbox_home_wins_when_set(void **state)
{
    (void)state;
    setenv("HOME", "/home/u", 1);
    setenv(CB_HOME_ENV, "/srv/cb", 1);
    _cleanup_free_ char *token = cb_home_path(CB_HOME_TOKEN);
    assert_string_equal(token, "/srv/cb/token");
    setenv(CB_HOME_ENV, "", 1);
    _cleanup_free_ char *dir = cb_home_dir();
    assert_string_equal(dir, "/home/u/.clawbox");
    unsetenv(CB_HOME_ENV);
    unsetenv("HOME");
}

static void expand_replaces_a_leading_tilde_only(void **state)
{
    (void)state;
    setenv("HOME", "/home/u", 1);
    _cleanup_free_ char *a = cb_home_expand(CB_HOME_TILDE "/" CB_HOME_DATA);
    _cleanup_free_ char *b = cb_home_expand("/abs/~/x");
    _cleanup_free_ char *c = cb_home_expand("~user/x");
    _cleanup_free_ char *d = cb_home_expand("~");
    assert_string_equal(a, "/home/u/.clawbox/data");
    assert_string_equal(b, "/abs/~/x");
    assert_string_equal(c, "~user/x");
    assert_string_equal(d, "~");
    unsetenv("HOME");
    _cleanup_free_ char *e = cb_home_expand("~/.clawbox/token");
    assert_string_equal(e, "~/.clawbox/token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_home_is_under_home_else_root),
        cmocka_unit_test(clawbox_home_wins_when_set),
        cmocka_unit_test(expand_replaces_a_leading_tilde_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
