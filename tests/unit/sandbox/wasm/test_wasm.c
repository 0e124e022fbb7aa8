/* Unit tests for src/lib/sandbox/wasm: binary parsing and its errors, the
 * import policy, and the fuel instrumenter on hand-assembled modules. An
 * optional argument names a directory of fixtures built from
 * tests/fixtures/wasm/ (*.wat). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/util.h"
#include "sandbox/wasm.h"

static const char *fixture_dir;

#define HDR 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00
/* (type (func)), one function of that type */
#define TYPE_FUNC 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00
/* a code section with one body: no locals, `code`, end */
#define CODE1(size, ...) 0x0a, (size) + 4, 0x01, (size) + 2, 0x00, __VA_ARGS__, 0x0b

/* Inspects a module expected to fail; returns the error message. */
static const char *inspect_fails(const uint8_t *p, size_t n)
{
    static struct cb_error err;
    struct cb_wasm_info info;
    cb_error_clear(&err);
    assert_int_equal(cb_wasm_inspect(p, n, &info, &err), -EINVAL);
    assert_null(info.imports);
    assert_int_equal(info.n_exports, 0);
    return err.msg;
}

static void inspect_ok(const uint8_t *p, size_t n)
{
    struct cb_error err = {0};
    struct cb_wasm_info info;
    int r = cb_wasm_inspect(p, n, &info, &err);
    if (r != 0)
        fail_msg("inspect failed: %s", err.msg);
    cb_wasm_info_free(&info);
}

static void assert_contains(const char *s, const char *part)
{
    if (strstr(s, part) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

static void header_checks(void **state)
{
    (void)state;
    static const uint8_t empty[] = {HDR};
    inspect_ok(empty, sizeof(empty));
    static const uint8_t magic[] = {0x00, 0x61, 0x73, 0x6e, 0x01, 0x00, 0x00, 0x00};
    assert_contains(inspect_fails(magic, sizeof(magic)), "bad magic");
    static const uint8_t version[] = {0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00};
    assert_contains(inspect_fails(version, sizeof(version)),
                    "offset 0x4: unsupported wasm version");
    assert_contains(inspect_fails(empty, 6), "version");
    assert_contains(inspect_fails(empty, 0), "bad magic");
}

static void section_overrun_names_section(void **state)
{
    (void)state;
    static const uint8_t m[] = {HDR, 0x02, 0x10, 0x00};
    assert_string_equal(inspect_fails(m, sizeof(m)),
                        "offset 0x8: section 2 (import) overruns the module");
}

static void section_size_must_match_content(void **state)
{
    (void)state;
    /* type section of 5 bytes holding a 4-byte vector */
    static const uint8_t m[] = {HDR, 0x01, 0x05, 0x01, 0x60, 0x00, 0x00, 0x00};
    assert_string_equal(inspect_fails(m, sizeof(m)),
                        "offset 0xe: section 1 (type) has 1 bytes after its content");
    /* function section claiming 2 functions in 2 bytes */
    static const uint8_t short_m[] = {HDR,  0x01, 0x04, 0x01, 0x60, 0x00,
                                      0x00, 0x03, 0x02, 0x02, 0x00};
    assert_contains(inspect_fails(short_m, sizeof(short_m)), "cannot fit");
}

static void leb128_limits(void **state)
{
    (void)state;
    /* Padded (non-minimal) encodings within 5 bytes are valid. */
    static const uint8_t padded[] = {HDR, 0x00, 0x84, 0x80, 0x80, 0x80, 0x00, 0x02, 'h', 'i', 0x00};
    inspect_ok(padded, sizeof(padded));
    static const uint8_t too_long[] = {HDR, 0x00, 0x84, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_string_equal(inspect_fails(too_long, sizeof(too_long)),
                        "offset 0x9: LEB128 integer longer than 5 bytes");
    static const uint8_t overflow[] = {HDR, 0x00, 0x84, 0x80, 0x80, 0x80, 0x10};
    assert_string_equal(inspect_fails(overflow, sizeof(overflow)),
                        "offset 0x9: LEB128 integer overflows 32 bits");
    static const uint8_t cut[] = {HDR, 0x00, 0x84, 0x80};
    assert_contains(inspect_fails(cut, sizeof(cut)), "unexpected end inside a LEB128");
    /* i32.const with a 5-byte s32 whose unused bits are not sign copies */
    static const uint8_t bad_s32[] = {HDR, TYPE_FUNC, CODE1(6, 0x41, 0xff, 0xff, 0xff, 0xff, 0x4f)};
    assert_contains(inspect_fails(bad_s32, sizeof(bad_s32)), "overflows 32 bits");
    static const uint8_t good_s32[] = {HDR, TYPE_FUNC,
                                       CODE1(7, 0x41, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x1a)};
    inspect_ok(good_s32, sizeof(good_s32));
}

static void huge_counts_fail_without_allocating(void **state)
{
    (void)state;
    static const uint8_t imports[] = {HDR, 0x02, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_contains(inspect_fails(imports, sizeof(imports)), "too many imports");
    static const uint8_t types[] = {HDR, 0x01, 0x05, 0xff, 0xff, 0x03, 0x00, 0x00};
    assert_contains(inspect_fails(types, sizeof(types)), "cannot fit");
    /* br_table with 2^32-1 targets in a few bytes */
    static const uint8_t brt[] = {HDR, TYPE_FUNC, CODE1(6, 0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f)};
    assert_contains(inspect_fails(brt, sizeof(brt)), "br_table targets cannot fit");
}

static void section_order(void **state)
{
    (void)state;
    static const uint8_t repeated[] = {HDR, 0x01, 0x01, 0x00, 0x01, 0x01, 0x00};
    assert_string_equal(inspect_fails(repeated, sizeof(repeated)),
                        "offset 0xb: section 1 (type) is repeated or out of order");
    static const uint8_t unknown[] = {HDR, 0x0d, 0x00};
    assert_string_equal(inspect_fails(unknown, sizeof(unknown)),
                        "offset 0x8: unknown section id 13");
    /* datacount (12) belongs before code (10) */
    static const uint8_t dc_ok[] = {HDR, TYPE_FUNC, 0x0c, 0x01, 0x00, CODE1(1, 0x01)};
    inspect_ok(dc_ok, sizeof(dc_ok));
    static const uint8_t dc_late[] = {HDR, TYPE_FUNC, CODE1(1, 0x01), 0x0c, 0x01, 0x00};
    assert_contains(inspect_fails(dc_late, sizeof(dc_late)), "section 12 (datacount) is repeated");
    static const uint8_t dc_wrong[] = {HDR, 0x0c, 0x01, 0x01};
    assert_contains(inspect_fails(dc_wrong, sizeof(dc_wrong)), "datacount 1 does not match");
    /* custom sections may go anywhere */
    static const uint8_t custom[] = {HDR,  0x00,           0x02, 0x01, 'a',  TYPE_FUNC, 0x00, 0x01,
                                     0x00, CODE1(1, 0x01), 0x00, 0x03, 0x01, 'z',       0xff};
    inspect_ok(custom, sizeof(custom));
    static const uint8_t no_code[] = {HDR, TYPE_FUNC};
    assert_contains(inspect_fails(no_code, sizeof(no_code)), "declares 1 functions");
}

static void names_must_be_utf8(void **state)
{
    (void)state;
    static const uint8_t overlong[] = {HDR, 0x00, 0x03, 0x02, 0xc0, 0x80};
    assert_string_equal(inspect_fails(overlong, sizeof(overlong)),
                        "offset 0xa: name is not valid UTF-8");
    static const uint8_t surrogate[] = {HDR, 0x00, 0x04, 0x03, 0xed, 0xa0, 0x80};
    assert_contains(inspect_fails(surrogate, sizeof(surrogate)), "not valid UTF-8");
    static const uint8_t too_big[] = {HDR, 0x00, 0x05, 0x04, 0xf4, 0x90, 0x80, 0x80};
    assert_contains(inspect_fails(too_big, sizeof(too_big)), "not valid UTF-8");
    static const uint8_t truncated[] = {HDR, 0x00, 0x03, 0x02, 'a', 0xe2};
    assert_contains(inspect_fails(truncated, sizeof(truncated)), "not valid UTF-8");
    static const uint8_t fine[] = {HDR,  0x00, 0x0b, 0x0a, 0xc3, 0xa9, 0xe2,
                                   0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 'x'};
    inspect_ok(fine, sizeof(fine));
    /* an import module name with a NUL byte could pass as a shorter one */
    static const uint8_t nul[] = {HDR, 0x02, 0x08, 0x01, 0x02, 'a', 0x00, 0x01, 'b', 0x00, 0x00};
    assert_contains(inspect_fails(nul, sizeof(nul)), "NUL byte");
}

/* (import "wasi_snapshot_preview1" "fd_write" (func)) etc. */
static const uint8_t imports_module[] = {HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x02, 0x3e, 0x03,
                                         /* wasi_snapshot_preview1.fd_write func 0 */
                                         0x16, 'w', 'a', 's', 'i', '_', 's', 'n', 'a', 'p', 's',
                                         'h', 'o', 't', '_', 'p', 'r', 'e', 'v', 'i', 'e', 'w', '1',
                                         0x08, 'f', 'd', '_', 'w', 'r', 'i', 't', 'e', 0x00, 0x00,
                                         /* clawbox.host_call func 0 */
                                         0x07, 'c', 'l', 'a', 'w', 'b', 'o', 'x', 0x09, 'h', 'o',
                                         's', 't', '_', 'c', 'a', 'l', 'l', 0x00, 0x00,
                                         /* e.m memory (min 1) */
                                         0x01, 'e', 0x01, 'm', 0x02, 0x00, 0x01,
                                         /* exports: "f" func 0 */
                                         0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x00};

static void lists_imports_and_exports(void **state)
{
    (void)state;
    struct cb_error err = {0};
    struct cb_wasm_info info;
    assert_int_equal(cb_wasm_inspect(imports_module, sizeof(imports_module), &info, &err), 0);
    assert_int_equal(info.n_imports, 3);
    assert_string_equal(info.imports[0].module, "wasi_snapshot_preview1");
    assert_string_equal(info.imports[0].name, "fd_write");
    assert_int_equal(info.imports[0].kind, CB_WASM_FUNC);
    assert_string_equal(info.imports[1].module, "clawbox");
    assert_string_equal(info.imports[1].name, "host_call");
    assert_string_equal(info.imports[2].name, "m");
    assert_int_equal(info.imports[2].kind, CB_WASM_MEMORY);
    assert_int_equal(info.n_exports, 1);
    assert_null(info.exports[0].module);
    assert_string_equal(info.exports[0].name, "f");
    assert_int_equal(cb_wasm_check_imports(&info, &err), -EPERM);
    assert_string_equal(err.msg, "import e.m is not allowed (only WASI preview 1 functions and "
                                 "clawbox.host_call)");
    info.n_imports = 2;
    assert_int_equal(cb_wasm_check_imports(&info, &err), 0);
    info.n_imports = 3;
    cb_wasm_info_free(&info);
    cb_wasm_info_free(&info);
    cb_wasm_info_free(NULL);
}

static int check_one(const char *module, const char *name, enum cb_wasm_extern_kind kind,
                     struct cb_error *err)
{
    struct cb_wasm_extern e = {.module = (char *)module, .name = (char *)name, .kind = kind};
    struct cb_wasm_info info = {.imports = &e, .n_imports = 1};
    return cb_wasm_check_imports(&info, err);
}

static void import_policy(void **state)
{
    (void)state;
    struct cb_error err = {0};
    for (size_t i = 0; i < CB_WASM_N_WASI_FUNCTIONS; i++) {
        assert_non_null(cb_wasm_wasi_functions[i]);
        assert_int_equal(
            check_one("wasi_snapshot_preview1", cb_wasm_wasi_functions[i], CB_WASM_FUNC, &err), 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(cb_wasm_wasi_functions[i], cb_wasm_wasi_functions[j]);
    }
    assert_int_equal(check_one("clawbox", "host_call", CB_WASM_FUNC, &err), 0);
    assert_int_equal(check_one("env", "system", CB_WASM_FUNC, &err), -EPERM);
    assert_string_equal(err.msg, "import env.system is not allowed (only WASI preview 1 "
                                 "functions and clawbox.host_call)");
    assert_int_equal(check_one("wasi_snapshot_preview1", "fd_write", CB_WASM_MEMORY, &err), -EPERM);
    assert_int_equal(check_one("wasi_snapshot_preview1", "fd_writ", CB_WASM_FUNC, &err), -EPERM);
    assert_int_equal(check_one("wasi_unstable", "fd_write", CB_WASM_FUNC, &err), -EPERM);
    assert_int_equal(check_one("clawbox", "host_call", CB_WASM_GLOBAL, &err), -EPERM);
    assert_int_equal(check_one("clawbox", "other", CB_WASM_FUNC, &err), -EPERM);
    assert_int_equal(check_one("a\nb", "x\x1b", CB_WASM_TABLE, &err), -EPERM);
    assert_string_equal(err.msg, "import a?b.x? is not allowed (only WASI preview 1 functions "
                                 "and clawbox.host_call)");
}

static uint8_t *instrument_ok(const uint8_t *p, size_t n, uint32_t cap, size_t *out_len)
{
    struct cb_error err = {0};
    struct cb_wasm_instrument_opts opts = {.max_memory_pages = cap};
    uint8_t *out;
    if (cb_wasm_instrument(p, n, &opts, &out, out_len, &err) != 0)
        fail_msg("instrument failed: %s", err.msg);
    inspect_ok(out, *out_len);
    return out;
}

static const char *instrument_fails(const uint8_t *p, size_t n, uint32_t cap)
{
    static struct cb_error err;
    struct cb_wasm_instrument_opts opts = {.max_memory_pages = cap};
    uint8_t *out = (uint8_t *)"x";
    size_t len = 1;
    assert_true(cb_wasm_instrument(p, n, &opts, &out, &len, &err) < 0);
    assert_null(out);
    assert_int_equal(len, 0);
    return err.msg;
}

#define FUEL_EXPORT_SEC(idx)                                                                       \
    0x07, 0x12, 0x01, 0x0e, '_', '_', 'c', 'l', 'a', 'w', 'b', 'o', 'x', '_', 'f', 'u', 'e', 'l',  \
        0x03, (idx)
#define CHARGE(idx, cost)                                                                          \
    0x23, (idx), 0x42, (cost), 0x7d, 0x24, (idx), 0x23, (idx), 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, \
        0x0b

/* i64.const INT64_MAX: the fuel global's initial value. */
#define FUEL_INIT 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00

static void instrument_empty_function_exactly(void **state)
{
    (void)state;
    static const uint8_t in[] = {HDR, TYPE_FUNC, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b};
    static const uint8_t want[] = {
        HDR,  TYPE_FUNC,          0x06, 0x0f, 0x01, 0x7e, 0x01, 0x42,         FUEL_INIT,
        0x0b, FUEL_EXPORT_SEC(0), 0x0a, 0x14, 0x01, 0x12, 0x00, CHARGE(0, 1), 0x0b};
    size_t len;
    uint8_t *out = instrument_ok(in, sizeof(in), 16, &len);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    /* Metering twice is refused: the export already exists. */
    assert_string_equal(instrument_fails(out, len, 16),
                        "the module already exports __clawbox_fuel");
    free(out);
}

/* The start section goes; its function becomes the __clawbox_start
 * export, after the fuel export, so that the runtime calls it under the
 * budget rather than inside instantiation. */
static void start_section_becomes_an_export(void **state)
{
    (void)state;
    static const uint8_t in[] = {HDR,  TYPE_FUNC, 0x08, 0x01, 0x00, 0x0a,
                                 0x04, 0x01,      0x02, 0x00, 0x0b};
    static const uint8_t want[] = {
        HDR,  TYPE_FUNC, 0x06, 0x0f, 0x01, 0x7e, 0x01, 0x42, FUEL_INIT, 0x0b,         0x07,
        0x24, 0x02,      0x0e, '_',  '_',  'c',  'l',  'a',  'w',       'b',          'o',
        'x',  '_',       'f',  'u',  'e',  'l',  0x03, 0x00, 0x0f,      '_',          '_',
        'c',  'l',       'a',  'w',  'b',  'o',  'x',  '_',  's',       't',          'a',
        'r',  't',       0x00, 0x00, 0x0a, 0x14, 0x01, 0x12, 0x00,      CHARGE(0, 1), 0x0b};
    size_t len;
    uint8_t *out = instrument_ok(in, sizeof(in), 16, &len);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    free(out);
    /* A module that exports the name itself is refused. */
    static const uint8_t taken[] = {HDR, TYPE_FUNC, 0x07, 0x13, 0x01, 0x0f, '_',  '_',  'c', 'l',
                                    'a', 'w',       'b',  'o',  'x',  '_',  's',  't',  'a', 'r',
                                    't', 0x00,      0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b};
    assert_string_equal(instrument_fails(taken, sizeof(taken), 16),
                        "the module already exports __clawbox_start");
}

static void instrument_charges_each_stretch(void **state)
{
    (void)state;
    /* block loop (i32.const 1, br_if 0) end end: the start counts block
     * and loop = 2; the loop header i32.const, br_if and the loop's end
     * = 3; after the loop, end(block) = 1; after the block, the final
     * end = 1. */
    static const uint8_t in[] = {
        HDR, TYPE_FUNC, CODE1(10, 0x02, 0x40, 0x03, 0x40, 0x41, 0x01, 0x0d, 0x00, 0x0b, 0x0b)};
    static const uint8_t want_code[] = {
        0x0a,         0x4e, 0x01, 0x4c, 0x00, CHARGE(0, 2), 0x02,         0x40, 0x03,         0x40,
        CHARGE(0, 3), 0x41, 0x01, 0x0d, 0x00, 0x0b,         CHARGE(0, 1), 0x0b, CHARGE(0, 1), 0x0b};
    size_t len;
    uint8_t *out = instrument_ok(in, sizeof(in), 16, &len);
    assert_true(len > sizeof(want_code));
    assert_memory_equal(out + len - sizeof(want_code), want_code, sizeof(want_code));
    free(out);
}

static void fuel_global_follows_imported_and_defined_globals(void **state)
{
    (void)state;
    static const uint8_t in[] = {HDR,
                                 /* (import "e" "g" (global i32)) x2 */
                                 0x02, 0x0f, 0x02, 0x01, 'e', 0x01, 'g', 0x03, 0x7f, 0x00, 0x01,
                                 'e', 0x01, 'h', 0x03, 0x7f, 0x00,
                                 /* (global i32 (i32.const 5)) */
                                 0x06, 0x06, 0x01, 0x7f, 0x00, 0x41, 0x05, 0x0b,
                                 /* (export "x" (global 2)) */
                                 0x07, 0x05, 0x01, 0x01, 'x', 0x03, 0x02,
                                 /* a custom section after the exports stays where it was */
                                 0x00, 0x02, 0x01, 'c'};
    static const uint8_t want_tail[] = {
        0x06, 0x14, 0x02, 0x7f, 0x00, 0x41, 0x05, 0x0b, 0x7e, 0x01, 0x42, FUEL_INIT, 0x0b, 0x07,
        0x16, 0x02, 0x01, 'x',  0x03, 0x02, 0x0e, '_',  '_',  'c',  'l',  'a',       'w',  'b',
        'o',  'x',  '_',  'f',  'u',  'e',  'l',  0x03, 0x03, 0x00, 0x02, 0x01,      'c'};
    size_t len;
    uint8_t *out = instrument_ok(in, sizeof(in), 16, &len);
    assert_int_equal(len, 25 + sizeof(want_tail));
    assert_memory_equal(out, in, 25);
    assert_memory_equal(out + 25, want_tail, sizeof(want_tail));
    free(out);
}

static void memory_is_clamped(void **state)
{
    (void)state;
    /* memories: (1, no max) and (2, max 100) and (0, max 3) */
    static const uint8_t in[] = {HDR,  0x05, 0x09, 0x03, 0x00, 0x01,
                                 0x01, 0x02, 0x64, 0x01, 0x00, 0x03};
    size_t len;
    uint8_t *out = instrument_ok(in, sizeof(in), 10, &len);
    static const uint8_t want[] = {0x05, 0x0a, 0x03, 0x01, 0x01, 0x0a,
                                   0x01, 0x02, 0x0a, 0x01, 0x00, 0x03};
    assert_memory_equal(out + 8, want, sizeof(want));
    free(out);
    /* a cap above the 65536 pages of a 32-bit memory is cut to that */
    out = instrument_ok(in, sizeof(in), UINT32_MAX, &len);
    static const uint8_t want_big[] = {0x01, 0x01, 0x80, 0x80, 0x04};
    assert_memory_equal(out + 11, want_big, sizeof(want_big));
    free(out);
    static const uint8_t big[] = {HDR, 0x05, 0x04, 0x01, 0x00, 0xd0, 0x0f};
    assert_string_equal(instrument_fails(big, sizeof(big), 1024),
                        "memory minimum 2000 pages exceeds the cap of 1024");
}

static void unknown_opcodes_are_errors(void **state)
{
    (void)state;
    static const uint8_t eh[] = {HDR, TYPE_FUNC, CODE1(1, 0x06)};
    assert_string_equal(inspect_fails(eh, sizeof(eh)), "offset 0x17: unknown opcode 0x06");
    assert_string_equal(instrument_fails(eh, sizeof(eh), 1), "offset 0x17: unknown opcode 0x06");
    static const uint8_t simd_gap[] = {HDR, TYPE_FUNC, CODE1(3, 0xfd, 0x9a, 0x01)};
    assert_string_equal(inspect_fails(simd_gap, sizeof(simd_gap)),
                        "offset 0x17: unknown opcode 0xfd 154");
    static const uint8_t fc_gap[] = {HDR, TYPE_FUNC, CODE1(2, 0xfc, 0x12)};
    assert_contains(inspect_fails(fc_gap, sizeof(fc_gap)), "unknown opcode 0xfc 18");
    /* v128.const cut short must not read past the body */
    static const uint8_t cut[] = {HDR, TYPE_FUNC, CODE1(4, 0xfd, 0x0c, 0x01, 0x02)};
    assert_contains(inspect_fails(cut, sizeof(cut)), "unexpected end");
}

static void body_structure_errors(void **state)
{
    (void)state;
    static const uint8_t stray[] = {HDR, TYPE_FUNC, 0x0a, 0x05, 0x01, 0x03, 0x00, 0x0b, 0x01};
    assert_string_equal(inspect_fails(stray, sizeof(stray)),
                        "offset 0x18: 1 stray bytes after the end of a function body");
    static const uint8_t open[] = {HDR, TYPE_FUNC, CODE1(2, 0x02, 0x40)};
    assert_contains(inspect_fails(open, sizeof(open)), "ends without its final end");
    static const uint8_t bad_else[] = {HDR, TYPE_FUNC, CODE1(3, 0x02, 0x40, 0x05)};
    assert_contains(inspect_fails(bad_else, sizeof(bad_else)), "else outside an if");
    static const uint8_t neg_bt[] = {HDR, TYPE_FUNC, CODE1(3, 0x02, 0x41, 0x0b)};
    assert_contains(inspect_fails(neg_bt, sizeof(neg_bt)), "invalid block type");
    static const uint8_t locals[] = {HDR,  TYPE_FUNC, 0x0a, 0x08, 0x01, 0x06,
                                     0x01, 0xff,      0xff, 0x03, 0x7f, 0x0b};
    assert_contains(inspect_fails(locals, sizeof(locals)), "too many locals");
}

static uint8_t *put_leb5(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 5; i++, v >>= 7)
        *p++ = (uint8_t)((v & 0x7f) | (i < 4 ? 0x80 : 0));
    return p;
}

/* One function made of `depth` nested loops. */
static uint8_t *nested_module(size_t depth, size_t *len)
{
    size_t body = 1 + depth * 3 + 1;
    uint8_t *m = cb_xmalloc(8 + 10 + 1 + 5 + 1 + 5 + body);
    static const uint8_t head[] = {HDR, TYPE_FUNC, 0x0a};
    memcpy(m, head, sizeof(head));
    uint8_t *p = put_leb5(m + sizeof(head), (uint32_t)(1 + 5 + body));
    *p++ = 0x01;
    p = put_leb5(p, (uint32_t)body);
    *p++ = 0x00;
    for (size_t i = 0; i < depth; i++) {
        *p++ = 0x03;
        *p++ = 0x40;
    }
    memset(p, 0x0b, depth + 1);
    *len = (size_t)(p + depth + 1 - m);
    return m;
}

static void deep_nesting_is_not_recursive(void **state)
{
    (void)state;
    size_t len, out_len;
    uint8_t *m = nested_module(200000, &len);
    uint8_t *out = instrument_ok(m, len, 1, &out_len);
    assert_true(out_len > len + 200000 * 16);
    free(out);
    free(m);
    m = nested_module(1000001, &len);
    assert_string_equal(inspect_fails(m, len),
                        "offset 0x1e849f: blocks nested deeper than 1000000");
    free(m);
}

/* Builds a module of about `size` bytes: many functions, each with a
 * loop, so the instrumenter has work everywhere. */
static uint8_t *big_module(size_t nfuncs, size_t *len)
{
    static const uint8_t body[] = {0x14, 0x01, 0x01, 0x7f, 0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6a,
                                   0x22, 0x00, 0x41, 0xe4, 0x00, 0x48, 0x0d, 0x00, 0x0b, 0x0b};
    size_t fsec = 5 + nfuncs, csec = 5 + nfuncs * sizeof(body);
    uint8_t *m = cb_xmalloc(8 + 6 + 6 + fsec + 6 + csec);
    static const uint8_t head[] = {HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00};
    memcpy(m, head, sizeof(head));
    uint8_t *p = m + sizeof(head);
    uint32_t fields[][2] = {{3, (uint32_t)fsec}, {10, (uint32_t)csec}};
    for (int s = 0; s < 2; s++) {
        *p++ = (uint8_t)fields[s][0];
        p = put_leb5(p, fields[s][1]);
        p = put_leb5(p, (uint32_t)nfuncs);
        for (size_t f = 0; f < nfuncs; f++) {
            if (s == 0) {
                *p++ = 0x00;
            } else {
                memcpy(p, body, sizeof(body));
                p += sizeof(body);
            }
        }
    }
    *len = (size_t)(p - m);
    return m;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void megabyte_module_is_fast(void **state)
{
    (void)state;
    size_t len;
    uint8_t *m = big_module(50000, &len);
    assert_true(len > 1000000);
    double t0 = now_ms();
    size_t out_len;
    uint8_t *out = instrument_ok(m, len, 1, &out_len);
    double t1 = now_ms();
    print_message("instrumented %zu bytes into %zu in %.1f ms (with a re-inspection)\n", len,
                  out_len, t1 - t0);
    /* Generous for sanitizer builds; a plain build takes a few ms. */
    assert_true(t1 - t0 < 2000);
    free(out);
    free(m);
}

static uint8_t *read_fixture(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    uint8_t *p = cb_xmalloc(1 << 20);
    *len = fread(p, 1, 1 << 20, f);
    fclose(f);
    return p;
}

static void fixtures(void **state)
{
    (void)state;
    if (fixture_dir == NULL)
        skip();
    size_t len;
    struct cb_error err = {0};
    struct cb_wasm_info info;
    uint8_t *p = read_fixture("badimports.wasm", &len);
    assert_int_equal(cb_wasm_inspect(p, len, &info, &err), 0);
    assert_int_equal(info.n_imports, 6);
    assert_int_equal(cb_wasm_check_imports(&info, &err), -EPERM);
    assert_string_equal(err.msg, "import env.system is not allowed (only WASI preview 1 "
                                 "functions and clawbox.host_call)");
    cb_wasm_info_free(&info);
    free(p);
    p = read_fixture("bigmem.wasm", &len);
    assert_string_equal(instrument_fails(p, len, 1024),
                        "memory minimum 2000 pages exceeds the cap of 1024");
    free(p);
    p = read_fixture("imports.wasm", &len);
    size_t out_len;
    uint8_t *out = instrument_ok(p, len, 100, &out_len);
    assert_int_equal(cb_wasm_inspect(out, out_len, &info, &err), 0);
    assert_int_equal(info.n_exports, 4);
    assert_string_equal(info.exports[2].name, CB_WASM_FUEL_EXPORT);
    assert_int_equal(info.exports[2].kind, CB_WASM_GLOBAL);
    assert_string_equal(info.exports[3].name, CB_WASM_START_EXPORT);
    assert_int_equal(info.exports[3].kind, CB_WASM_FUNC);
    assert_false(info.has_start);
    cb_wasm_info_free(&info);
    free(out);
    free(p);
}

int main(int argc, char **argv)
{
    fixture_dir = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_checks),
        cmocka_unit_test(section_overrun_names_section),
        cmocka_unit_test(section_size_must_match_content),
        cmocka_unit_test(leb128_limits),
        cmocka_unit_test(huge_counts_fail_without_allocating),
        cmocka_unit_test(section_order),
        cmocka_unit_test(names_must_be_utf8),
        cmocka_unit_test(lists_imports_and_exports),
        cmocka_unit_test(import_policy),
        cmocka_unit_test(instrument_empty_function_exactly),
        cmocka_unit_test(instrument_charges_each_stretch),
        cmocka_unit_test(start_section_becomes_an_export),
        cmocka_unit_test(fuel_global_follows_imported_and_defined_globals),
        cmocka_unit_test(memory_is_clamped),
        cmocka_unit_test(unknown_opcodes_are_errors),
        cmocka_unit_test(body_structure_errors),
        cmocka_unit_test(deep_nesting_is_not_recursive),
        cmocka_unit_test(megabyte_module_is_fast),
        cmocka_unit_test(fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
