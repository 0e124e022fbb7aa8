#include "config/env.h"

#include <stdlib.h>

static const char *const env_names[] = {
    [CB_ENV_WASM_CC] = "CLAWBOX_WASM_CC",
    [CB_ENV_WASM_CXX] = "CLAWBOX_WASM_CXX",
    [CB_ENV_WASI_SYSROOT] = "CLAWBOX_WASI_SYSROOT",
    [CB_ENV_TMPDIR] = "TMPDIR",
    [CB_ENV_HOST] = "CLAWBOX_HOST",
    [CB_ENV_PORT] = "CLAWBOX_PORT",
    [CB_ENV_AUTH_TOKEN] = "CLAWBOX_AUTH_TOKEN",
    [CB_ENV_TOOL_DIR] = "CLAWBOX_TOOL_DIR",
};

const char *cb_config_env(enum cb_env which)
{
    const char *v = getenv(env_names[which]);
    return v != NULL && v[0] != '\0' ? v : NULL;
}
