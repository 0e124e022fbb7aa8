/* Translates an (instrumented) wasm module to a native shared object:
 * wasm2c, then the system C compiler with the tool shim and the wasm2c
 * runtime, in a child process with limits on CPU time, output size,
 * address space and wall-clock time. Results are cached under cache_dir by
 * the SHA-256 of the module and the compiler settings; so are failures
 * caused by the CPU or output-size limit, so that a module known to
 * exhaust them is not compiled again (until the limits grow). */
#ifndef CB_SANDBOX_COMPILE_H
#define CB_SANDBOX_COMPILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct cb_compile_opts {
    const char *cache_dir; /* created if missing */
    unsigned timeout_ms;   /* wall clock for wasm2c + cc together */
    /* CPU time of wasm2c + cc together (all their processes); 0 means
     * timeout_ms. See cb_compile_budget_ms. */
    unsigned cpu_budget_ms;
    unsigned max_call_depth; /* WASM_RT_MAX_CALL_STACK_DEPTH */
    /* The quick tier: -O0 instead of -O2 (about 40 % of its CPU time),
     * cached apart, under the same budget. It serves a new tool within
     * seconds while the -O2 build follows. */
    bool quick;
    /* Runs the toolchain at a low priority (CB_COMPILE_BACKGROUND_NICE),
     * with CB_COMPILE_BACKGROUND_SLACK times timeout_ms of wall clock: it
     * yields to everything else, and on a loaded machine that takes long,
     * while its CPU budget stays that of timeout_ms. */
    bool background;
    /* May be NULL; when set, the build stops with -ECANCELED. */
    const atomic_bool *cancel;
};

#define CB_COMPILE_BACKGROUND_NICE  10
#define CB_COMPILE_BACKGROUND_SLACK 10u

/* The CPU budget of compiling a module of len bytes: a base plus a share
 * per KiB, so a small module gets little time, capped by cap_ms. About
 * five times what real tools need (measured: ~55 ms per KiB). */
#define CB_COMPILE_BUDGET_BASE_MS    5000u
#define CB_COMPILE_BUDGET_MS_PER_KIB 100u
unsigned cb_compile_budget_ms(size_t len, unsigned cap_ms);
/* What the cache knows of the module at opts' tier, without building it:
 * 0 and *so_path (caller frees); a remembered failure under limits at
 * least as large (see cb_compile_module), with err; or -ENOENT. */
int cb_compile_lookup(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                      char **so_path, struct cb_error *err);

/* Returns in *so_path (caller frees) the cached or freshly built shared
 * object for the module. The error says which step failed and includes the
 * compiler's first lines of output; -ETIME when the CPU budget ran out and
 * -EFBIG when the output exceeded its limit (both remembered, and
 * returned again without compiling, with "(cached)" added), -ETIMEDOUT at
 * the wall-clock limit and -ECANCELED (neither remembered: they depend on
 * the load and the server's life). */
int cb_compile_module(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                      char **so_path, struct cb_error *err);

/* The hex SHA-256 the cache uses for these bytes and options (65 bytes). */
void cb__compile_cache_key(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                           char out[65]);

/* Whether this machine can compile tools: wasm2c and cc on PATH and the
 * wasm2c runtime sources present. 0, or -ENOENT with err naming the first
 * thing missing and the package that provides it. */
int cb_compile_toolchain_check(struct cb_error *err);

#endif
