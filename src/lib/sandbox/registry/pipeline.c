/* The real module loader: inspect, check imports, add fuel metering, then
 * compile to a cached shared object: first at the quick tier, then at -O2
 * in the background. Kept apart from the registry logic so
 * the registry's unit tests can link without the wasm and native modules. */
#include <errno.h>
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

/* The module as it is compiled: checked, then fuel-metered. */
static int prepare_module(const struct cb_registry_opts *opts, const uint8_t *wasm, size_t len,
                          uint8_t **metered, size_t *metered_len, struct cb_error *err)
{
    int rc = check_module(wasm, len, err);
    if (rc < 0)
        return rc;
    const struct cb_wasm_instrument_opts iopts = {.max_memory_pages = opts->max_memory_pages};
    rc = cb_wasm_instrument(wasm, len, &iopts, metered, metered_len, err);
    if (rc < 0)
        cb_error_prefix(err, "adding fuel metering");
    return rc;
}

static struct cb_compile_opts compile_opts(const struct cb_registry_opts *opts, size_t len,
                                           bool quick)
{
    return (struct cb_compile_opts){
        .cache_dir = opts->cache_dir,
        .timeout_ms = opts->compile_timeout_ms,
        .cpu_budget_ms = cb_compile_budget_ms(len, opts->compile_timeout_ms),
        .max_call_depth = opts->max_call_depth,
        .quick = quick,
    };
}

/* The -O2 object when it is cached; the remembered failure when its build
 * ran out of its budget before; else the quick one (built if need be),
 * with *quick set. */
static int pipeline_load(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm,
                         size_t len, char **so_path, bool *quick, struct cb_error *err)
{
    (void)ud;
    uint8_t *metered = NULL;
    size_t metered_len = 0;
    int rc = prepare_module(opts, wasm, len, &metered, &metered_len, err);
    if (rc < 0)
        return rc;
    struct cb_compile_opts copts = compile_opts(opts, len, false);
    rc = cb_compile_lookup(metered, metered_len, &copts, so_path, err);
    if (rc == -ENOENT) {
        *quick = true;
        copts = compile_opts(opts, len, true);
        rc = cb_compile_module(metered, metered_len, &copts, so_path, err);
    }
    free(metered);
    return rc;
}

/* Builds the -O2 object into the cache, in the background. */
static int pipeline_optimize(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm,
                             size_t len, const atomic_bool *cancel, struct cb_error *err)
{
    (void)ud;
    uint8_t *metered = NULL;
    size_t metered_len = 0;
    int rc = prepare_module(opts, wasm, len, &metered, &metered_len, err);
    if (rc < 0)
        return rc;
    struct cb_compile_opts copts = compile_opts(opts, len, false);
    copts.background = true;
    copts.cancel = cancel;
    char *so_path = NULL;
    rc = cb_compile_module(metered, metered_len, &copts, &so_path, err);
    free(so_path);
    free(metered);
    return rc;
}

int cb_registry_open(const struct cb_registry_opts *opts, struct cb_registry **out,
                     struct cb_error *err)
{
    static const struct cb__registry_loader pipeline = {.load = pipeline_load,
                                                        .optimize = pipeline_optimize};
    return cb__registry_open_with(opts, &pipeline, out, err);
}
