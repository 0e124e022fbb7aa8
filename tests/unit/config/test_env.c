/* config/env: the environment variables read outside the option table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "config/env.h"

static void set_value_is_returned(void **state)
{
    (void)state;
    setenv("CLAWBOX_WASM_CC", "/opt/clang", 1);
    assert_string_equal(cb_config_env(CB_ENV_WASM_CC), "/opt/clang");
    setenv("TMPDIR", "/var/tmp", 1);
    assert_string_equal(cb_config_env(CB_ENV_TMPDIR), "/var/tmp");
}

static void unset_and_empty_are_null(void **state)
{
    (void)state;
    unsetenv("CLAWBOX_WASM_CXX");
    assert_null(cb_config_env(CB_ENV_WASM_CXX));
    setenv("CLAWBOX_WASI_SYSROOT", "", 1);
    assert_null(cb_config_env(CB_ENV_WASI_SYSROOT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_value_is_returned),
        cmocka_unit_test(unset_and_empty_are_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
