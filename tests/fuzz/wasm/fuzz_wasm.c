/* libFuzzer target for the wasm inspector and instrumenter. Arbitrary
 * bytes go through cb_wasm_inspect, cb_wasm_check_imports and
 * cb_wasm_instrument. Invariants (a broken one calls __builtin_trap()):
 * failures carry an "offset 0x..." message or a named policy error; when
 * instrumenting succeeds, its output inspects cleanly, lists the input's
 * imports, the input's exports plus the fuel global, and cannot be
 * instrumented again. Full validation of outputs is done by the
 * wasm-roundtrip test with wasm-validate, which is too slow here. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/wasm.h"

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

static bool same_externs(const struct cb_wasm_extern *a, const struct cb_wasm_extern *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].kind != b[i].kind || strcmp(a[i].name, b[i].name) != 0)
            return false;
        if ((a[i].module == NULL) != (b[i].module == NULL))
            return false;
        if (a[i].module != NULL && strcmp(a[i].module, b[i].module) != 0)
            return false;
    }
    return true;
}

static void check_output(const uint8_t *out, size_t len, const struct cb_wasm_info *in)
{
    struct cb_error err = {0};
    struct cb_wasm_info info;
    check(cb_wasm_inspect(out, len, &info, &err) == 0);
    check(info.n_imports == in->n_imports);
    check(same_externs(info.imports, in->imports, in->n_imports));
    check(info.n_exports == in->n_exports + 1 + in->has_start);
    check(same_externs(info.exports, in->exports, in->n_exports));
    const struct cb_wasm_extern *fuel = &info.exports[in->n_exports];
    check(fuel->kind == CB_WASM_GLOBAL && strcmp(fuel->name, CB_WASM_FUEL_EXPORT) == 0);
    /* the start section became an export */
    check(!info.has_start);
    if (in->has_start)
        check(fuel[1].kind == CB_WASM_FUNC && strcmp(fuel[1].name, CB_WASM_START_EXPORT) == 0);
    cb_wasm_info_free(&info);

    struct cb_wasm_instrument_opts opts = {.max_memory_pages = 65536};
    uint8_t *again;
    size_t again_len;
    check(cb_wasm_instrument(out, len, &opts, &again, &again_len, &err) == -EEXIST);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cb_error err = {0};
    struct cb_wasm_info info;
    bool parsed = cb_wasm_inspect(data, size, &info, &err) == 0;
    if (!parsed) {
        check(strncmp(err.msg, "offset 0x", 9) == 0);
        check(info.n_imports == 0 && info.imports == NULL);
    } else if (cb_wasm_check_imports(&info, &err) < 0) {
        check(strncmp(err.msg, "import ", 7) == 0);
    }
    /* The first byte past the header picks the memory cap, so that the
     * clamp and its error both get exercised. */
    struct cb_wasm_instrument_opts opts = {.max_memory_pages = size > 8 ? data[8] * 300u : 1};
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (cb_wasm_instrument(data, size, &opts, &out, &out_len, &err) == 0) {
        /* instrument parses with the same checks as inspect */
        check(parsed);
        check_output(out, out_len, &info);
        free(out);
    } else {
        check(out == NULL && out_len == 0 && err.msg[0] != '\0');
    }
    cb_wasm_info_free(&info);
    return 0;
}
