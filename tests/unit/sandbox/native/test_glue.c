/* The glue generator reads wasm2c 1.0.32's tool.h; these headers are cut
 * from real wasm2c output. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "sandbox/native/native.h"

static const char both_imports[] =
    "typedef struct Z_tool_instance_t {\n} Z_tool_instance_t;\n"
    "void Z_tool_init_module(void);\n"
    "void Z_tool_instantiate(Z_tool_instance_t*, struct Z_clawbox_instance_t*, "
    "struct Z_wasi_snapshot_preview1_instance_t*);\n"
    "void Z_tool_free(Z_tool_instance_t*);\n"
    "/* export: 'memory' */\n"
    "wasm_rt_memory_t* Z_toolZ_memory(Z_tool_instance_t* instance);\n"
    "/* export: '__clawbox_fuel' */\n"
    "u64* Z_toolZ___clawbox_fuel(Z_tool_instance_t* instance);\n"
    "/* export: '_start' */\n"
    "void Z_toolZ__start(Z_tool_instance_t*);\n"
    "/* export: '__clawbox_start' */\n"
    "void Z_toolZ___clawbox_start(Z_tool_instance_t*);\n";

/* A start function of the wrong type, which only an invalid module has. */
static const char mistyped_init[] = "\nvoid Z_tool_instantiate(Z_tool_instance_t*);\n"
                                    "/* export: '__clawbox_start' */\n"
                                    "void Z_toolZ___clawbox_start(Z_tool_instance_t*, u32);\n";

static const char no_imports[] = "\nvoid Z_tool_instantiate(Z_tool_instance_t*);\n"
                                 "/* export: '_start' */\n"
                                 "u32 Z_toolZ__start(Z_tool_instance_t*, u32);\n";

static const char other_import[] =
    "\nvoid Z_tool_instantiate(Z_tool_instance_t*, struct Z_env_instance_t*);\n";

static void glue(const char *hdr, struct cb_buf *out, int want_rc, struct cb_error *err)
{
    cb_buf_init(out, 4096);
    assert_int_equal(cb__native_glue(hdr, strlen(hdr), out, err), want_rc);
}

static void both_imports_and_all_exports(void **state)
{
    struct cb_error err = {0};
    struct cb_buf b;

    (void)state;
    glue(both_imports, &b, 0, &err);
    assert_non_null(strstr(b.data, "#define CB_HAVE_START 1\n"));
    assert_non_null(strstr(b.data, "#define CB_HAVE_MEMORY 1\n"));
    assert_non_null(strstr(b.data, "#define CB_HAVE_FUEL 1\n"));
    assert_non_null(strstr(b.data, "#define CB_HAVE_INIT 1\n"));
    assert_non_null(strstr(b.data, "#define CB_INSTANTIATE(inst) Z_tool_instantiate((inst), "
                                   "&shim_clawbox, &shim_wasi)\n"));
    cb_buf_free(&b);
}

static void no_imports_and_mistyped_start(void **state)
{
    struct cb_error err = {0};
    struct cb_buf b;

    (void)state;
    glue(no_imports, &b, 0, &err);
    assert_non_null(strstr(b.data, "#define CB_HAVE_START 0\n"));
    assert_non_null(strstr(b.data, "#define CB_HAVE_MEMORY 0\n"));
    assert_non_null(strstr(b.data, "#define CB_HAVE_INIT 0\n"));
    assert_non_null(strstr(b.data, "Z_tool_instantiate((inst))\n"));
    cb_buf_free(&b);
    glue(mistyped_init, &b, -EINVAL, &err);
    assert_string_equal(err.msg, "the start function must have type [] -> []");
    cb_buf_free(&b);
}

static void unknown_import_module_rejected(void **state)
{
    struct cb_error err = {0};
    struct cb_buf b;

    (void)state;
    glue(other_import, &b, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "struct Z_env_instance_t*"));
    cb_buf_free(&b);
    glue("int x;\n", &b, -EINVAL, &err);
    cb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(both_imports_and_all_exports),
        cmocka_unit_test(no_imports_and_mistyped_start),
        cmocka_unit_test(unknown_import_module_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
