/* The real module loader: inspect, check imports, add fuel metering, then
 * compile to a cached shared object. Kept apart from the registry logic so
 * the registry's unit tests can link without the wasm and native modules. */
#include <stdlib.h>

#include "sandbox/compile.h"
#include "sandbox/registry/internal.h"
#include "sandbox/wasm.h"

static int check_module(const uint8_t *wasm, size_t len, struct cb_error *err)
{
    struct cb_wasm_info info = {0};
    int rc = cb_wasm_inspect(wasm, len, &info, err);
    if (rc == 0)
        rc = cb_wasm_check_imports(&info, err);
    cb_wasm_info_free(&info);
    return rc;
}

static int pipeline_load(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm,
                         size_t len, char **so_path, struct cb_error *err)
{
    (void)ud;
    int rc = check_module(wasm, len, err);
    if (rc < 0)
        return rc;
    const struct cb_wasm_instrument_opts iopts = {.max_memory_pages = opts->max_memory_pages};
    uint8_t *metered = NULL;
    size_t metered_len = 0;
    rc = cb_wasm_instrument(wasm, len, &iopts, &metered, &metered_len, err);
    if (rc < 0) {
        cb_error_prefix(err, "adding fuel metering");
        return rc;
    }
    const struct cb_compile_opts copts = {
        .cache_dir = opts->cache_dir,
        .timeout_ms = opts->compile_timeout_ms,
        .cpu_budget_ms = cb_compile_budget_ms(len, opts->compile_timeout_ms),
        .max_call_depth = opts->max_call_depth,
    };
    rc = cb_compile_module(metered, metered_len, &copts, so_path, err);
    free(metered);
    return rc;
}

int cb_registry_open(const struct cb_registry_opts *opts, struct cb_registry **out,
                     struct cb_error *err)
{
    static const struct cb__registry_loader pipeline = {.load = pipeline_load};
    return cb__registry_open_with(opts, &pipeline, out, err);
}
