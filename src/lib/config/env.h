/* Environment variables that clawbox reads outside the config file's own
 * overrides (those are in the option table). Reading the environment only
 * here, in the option table and in core/home ($HOME) keeps every variable
 * clawbox obeys in one place; scripts/lint.sh refuses getenv elsewhere. */
#ifndef CB_CONFIG_ENV_H
#define CB_CONFIG_ENV_H

enum cb_env {
    CB_ENV_WASM_CC,      /* CLAWBOX_WASM_CC: C compiler of `clawbox build` */
    CB_ENV_WASM_CXX,     /* CLAWBOX_WASM_CXX: C++ compiler of `clawbox build` */
    CB_ENV_WASI_SYSROOT, /* CLAWBOX_WASI_SYSROOT: wasi-libc of `clawbox build` */
    CB_ENV_TMPDIR,       /* TMPDIR: where `clawbox build` puts the SDK header */
    CB_ENV_HOST,         /* CLAWBOX_HOST: the server client verbs talk to */
    CB_ENV_PORT,         /* CLAWBOX_PORT: its port */
    CB_ENV_AUTH_TOKEN,   /* CLAWBOX_AUTH_TOKEN: the token client verbs send */
    CB_ENV_TOOL_DIR,     /* CLAWBOX_TOOL_DIR: where `add tool` installs */
};

/* The variable's value, or NULL when it is unset or empty. */
const char *cb_config_env(enum cb_env which);

#endif
