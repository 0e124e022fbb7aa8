/* WebAssembly binary inspection and instrumentation, done before a tool
 * module is translated: listing imports and exports, rejecting imports
 * other than WASI preview 1 and clawbox.host_call, and adding fuel
 * metering. Input is untrusted: every read is bounds-checked. */
#ifndef CB_SANDBOX_WASM_H
#define CB_SANDBOX_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Modules larger than this are rejected. */
#define CB_WASM_MAX_MODULE (16u * 1024 * 1024)
/* Name of the mutable i64 global the instrumenter adds and exports. The
 * runtime sets it to the fuel budget before calling the start export and
 * _start; the module traps with `unreachable` when it drops below zero. */
#define CB_WASM_FUEL_EXPORT "__clawbox_fuel"
/* The instrumenter turns a module's start function into this export, so
 * that the runtime calls it after setting the fuel budget: a start function
 * runs under the same budget as _start. */
#define CB_WASM_START_EXPORT "__clawbox_start"

enum cb_wasm_extern_kind {
    CB_WASM_FUNC = 0,
    CB_WASM_TABLE = 1,
    CB_WASM_MEMORY = 2,
    CB_WASM_GLOBAL = 3,
};

struct cb_wasm_extern {
    char *module; /* imports only; NULL for exports */
    char *name;
    enum cb_wasm_extern_kind kind;
};

struct cb_wasm_info {
    struct cb_wasm_extern *imports;
    size_t n_imports;
    struct cb_wasm_extern *exports;
    size_t n_exports;
    bool has_start; /* the module has a start section */
};

/* Parses the module's sections far enough to list imports and exports,
 * checking the binary structure of every section down to each
 * instruction's immediates. Known: the MVP, sign extension, saturating
 * conversions, bulk memory, reference types, multi-value, SIMD, threads,
 * tail calls; anything else (exceptions, GC, memory64, relaxed SIMD) is
 * an unknown opcode or form. Errors: -EINVAL with "offset 0x..: ...",
 * -EFBIG past CB_WASM_MAX_MODULE. On failure *out is left empty. */
int cb_wasm_inspect(const uint8_t *data, size_t len, struct cb_wasm_info *out,
                    struct cb_error *err);
void cb_wasm_info_free(struct cb_wasm_info *info);

/* The only import modules and names a tool may use. */
#define CB_WASM_WASI_MODULE "wasi_snapshot_preview1"
#define CB_WASM_HOST_MODULE "clawbox"
#define CB_WASM_HOST_CALL   "host_call"

/* The WASI preview 1 functions a tool may import, so that the shim's
 * author can check that each one is implemented. */
#define CB_WASM_N_WASI_FUNCTIONS 46
extern const char *const cb_wasm_wasi_functions[CB_WASM_N_WASI_FUNCTIONS];

/* Checks that every import is a WASI preview 1 function
 * (wasi_snapshot_preview1.*, names in cb_wasm_wasi_functions only) or the
 * function clawbox.host_call. The error names the first offending import,
 * e.g. "import env.system is not allowed (only WASI preview 1 functions
 * and clawbox.host_call)"; control characters in names are shown as '?'. */
int cb_wasm_check_imports(const struct cb_wasm_info *info, struct cb_error *err); /* -EPERM */

struct cb_wasm_instrument_opts {
    uint32_t max_memory_pages; /* memory max is clamped to this (64 KiB pages) */
};

/* Returns a new module (caller frees *out) equal to the input plus fuel
 * metering: every straight-line stretch of code (a function's start, each
 * loop header, each if arm, the code after each end) charges its own cost
 * when it begins, so fuel runs out within one stretch of the budget,
 * loops included (instrument.c shows the charge). The result is a valid
 * module.
 * Memories the module defines get their maximum clamped to
 * opts->max_memory_pages (a minimum above it is an error); imported
 * memories are left alone. A start section is replaced by the export
 * CB_WASM_START_EXPORT of the start function. Other sections, custom ones
 * included, are copied byte for byte. opts must not be NULL. Errors: those
 * of cb_wasm_inspect, -EEXIST when CB_WASM_FUEL_EXPORT or
 * CB_WASM_START_EXPORT is already exported, -E2BIG when a memory's minimum
 * exceeds the cap or the result would exceed a limit. */
int cb_wasm_instrument(const uint8_t *in, size_t len, const struct cb_wasm_instrument_opts *opts,
                       uint8_t **out, size_t *out_len, struct cb_error *err);

#endif
