/* Translates an (instrumented) wasm module to a native shared object:
 * wasm2c, then the system C compiler with the tool shim and the wasm2c
 * runtime, in a child process with a time limit. Results are cached under
 * cache_dir by the SHA-256 of the module and the compiler settings. */
#ifndef CB_SANDBOX_COMPILE_H
#define CB_SANDBOX_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct cb_compile_opts {
    const char *cache_dir;   /* created if missing */
    unsigned timeout_ms;     /* for wasm2c + cc together */
    unsigned max_call_depth; /* WASM_RT_MAX_CALL_STACK_DEPTH */
};

/* Returns in *so_path (caller frees) the cached or freshly built shared
 * object for the module. The error says which step failed and includes the
 * compiler's first lines of output. */
int cb_compile_module(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                      char **so_path, struct cb_error *err);

/* The hex SHA-256 the cache uses for these bytes and options (65 bytes). */
void cb_compile_cache_key(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                          char out[65]);

#endif
