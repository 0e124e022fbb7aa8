/* The ABI between clawbox and a compiled tool (.so). Each tool module is
 * translated by wasm2c with module name "tool" and linked with the shim
 * (tool_shim.c), which implements WASI preview 1 and clawbox.host_call on
 * top of this interface and exports two entry points, cb_tool_entry and
 * cb_tool_release.
 *
 * This header is compiled into the shim at tool-compile time as well as
 * into clawbox, so it uses only standard C types. Bump
 * CB_TOOL_ABI_VERSION on any change: it is part of the compile cache key. */
#ifndef CB_SANDBOX_TOOL_ABI_H
#define CB_SANDBOX_TOOL_ABI_H

#include <stddef.h>
#include <stdint.h>

#define CB_TOOL_ABI_VERSION    2
#define CB_TOOL_ENTRY_SYMBOL   "cb_tool_entry"
#define CB_TOOL_RELEASE_SYMBOL "cb_tool_release"

/* Callbacks and inputs supplied by the runner. */
struct cb_tool_env {
    uint32_t abi_version;
    const char *stdin_data; /* compact JSON of the params */
    size_t stdin_len;
    uint64_t fuel; /* budget written to __clawbox_fuel before _start */
    /* stdout/stderr writes; return 0, or -1 when the cap is exceeded (the
     * shim reports the write as failed to the guest, EFBIG). */
    int (*write_out)(void *ud, int fd, const uint8_t *p, size_t n);
    /* host_call: request bytes (already bounds-checked and copied out of
     * guest memory). Sets *resp and *resp_len to a malloc'd response envelope
     * owned by the shim. Returns 0, or -1 for a request the ABI rejects
     * (the guest then sees -1). */
    int (*host_call)(void *ud, const uint8_t *req, size_t req_len, uint8_t **resp,
                     size_t *resp_len);
    void (*free_resp)(void *ud, uint8_t *resp);
    void *ud;
};

enum cb_tool_status {
    CB_TOOL_OK = 0,           /* _start returned, or proc_exit(0) */
    CB_TOOL_EXIT_NONZERO = 1, /* proc_exit(n), n != 0; see exit_code */
    CB_TOOL_FUEL_EXHAUSTED = 2,
    CB_TOOL_TRAP = 3,        /* see message */
    CB_TOOL_NO_START = 4,    /* no _start export */
    CB_TOOL_INSTANTIATE = 5, /* instantiation failed (e.g. memory) */
};

struct cb_tool_outcome {
    enum cb_tool_status status;
    uint32_t exit_code;
    uint64_t fuel_consumed;
    char message[256];
};

/* The shim's entry point: instantiates the module, runs _start once, and
 * fills *out. It may be called again in the same process (one call at a
 * time): each call makes a fresh instance. The instance is left alive
 * when it returns, so the caller can answer before paying for its
 * teardown: cb_tool_release frees it (its memory is zeroed for the next
 * instance), and the next cb_tool_entry does so if the caller did not. */
typedef int (*cb_tool_entry_fn)(const struct cb_tool_env *env, struct cb_tool_outcome *out);
typedef void (*cb_tool_release_fn)(void);

#endif
