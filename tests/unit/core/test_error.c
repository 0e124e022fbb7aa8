#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"

static void set_and_prefix_build_context(void **state)
{
    (void)state;
    struct cb_error err = {0};
    assert_int_equal(cb_error_set(&err, -ENOENT, "no such file %s", "x.toml"), -ENOENT);
    cb_error_prefix(&err, "loading config");
    assert_string_equal(err.msg, "loading config: no such file x.toml");
    assert_int_equal(err.code, -ENOENT);
    assert_int_equal(cb_error_set(NULL, -EINVAL, "ignored"), -EINVAL);
    cb_error_clear(&err);
    assert_string_equal(err.msg, "");
}

static void long_messages_are_truncated_not_overflowed(void **state)
{
    (void)state;
    struct cb_error err = {0};
    char big[4000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cb_error_set(&err, -EINVAL, "%s", big);
    cb_error_prefix(&err, "%s", big);
    assert_int_equal(strlen(err.msg), CB_ERROR_MSG_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_and_prefix_build_context),
        cmocka_unit_test(long_messages_are_truncated_not_overflowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
