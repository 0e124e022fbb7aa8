/* The import policy: a tool may import WASI preview 1 functions and
 * clawbox.host_call, nothing else (no memories, tables or globals from
 * the host, no other modules). */
#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "sandbox/wasm/internal.h"

const char *const cb_wasm_wasi_functions[CB_WASM_N_WASI_FUNCTIONS] = {
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
};

static bool is_wasi_function(const char *name)
{
    for (size_t i = 0; i < CB_WASM_N_WASI_FUNCTIONS; i++)
        if (strcmp(cb_wasm_wasi_functions[i], name) == 0)
            return true;
    return false;
}

static bool import_allowed(const struct cb_wasm_extern *imp)
{
    if (imp->kind != CB_WASM_FUNC || imp->module == NULL || imp->name == NULL)
        return false;
    if (strcmp(imp->module, CB_WASM_WASI_MODULE) == 0)
        return is_wasi_function(imp->name);
    return strcmp(imp->module, CB_WASM_HOST_MODULE) == 0 &&
           strcmp(imp->name, CB_WASM_HOST_CALL) == 0;
}

/* Copies a guest-chosen name for an error message, cut to fit and with
 * control characters replaced, so it cannot forge log lines. */
static void printable_name(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
}

int cb_wasm_check_imports(const struct cb_wasm_info *info, struct cb_error *err)
{
    for (size_t i = 0; i < info->n_imports; i++) {
        const struct cb_wasm_extern *imp = &info->imports[i];
        if (import_allowed(imp))
            continue;
        char mod[128], name[128];
        printable_name(imp->module, mod, sizeof(mod));
        printable_name(imp->name, name, sizeof(name));
        return cb_error_set(err, -EPERM,
                            "import %s.%s is not allowed (only WASI preview 1 functions and "
                            "clawbox.host_call)",
                            mod, name);
    }
    return 0;
}
