/* The OCI backend of backend.h over runtime.h: the runtime's command line
 * and the per-container monitor. */
#include "containers/backend.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static int oci_launch(void *impl, const struct cb_ct_launch *l, struct cb_ct_started *out,
                      struct cb_error *err)
{
    return cb_ct_launch(impl, l, out, err);
}

static int exit_read(void *impl, const char *dir, struct cb_ct_exit *out, struct cb_error *err)
{
    (void)impl;
    return cb_ct_exit_read(dir, out, err);
}

static int kill_ct(void *impl, const char *id, int sig, struct cb_error *err)
{
    return cb_ct_runtime_kill(impl, id, sig, err);
}

static int remove_ct(void *impl, const char *id, struct cb_error *err)
{
    return cb_ct_runtime_delete(impl, id, err);
}

static int oci_list(void *impl, int (*cb)(const char *id, void *ud), void *ud, struct cb_error *err)
{
    return cb_ct_runtime_list(impl, cb, ud, err);
}

static int exec_argv(void *impl, const char *id, const char *process_path, const char *pid_path,
                     char **argv, size_t cap)
{
    struct cb_ct_runtime *rt = impl;
    char *const v[] = {
        rt->path,     "--root",         rt->root,   "exec", "--process", (char *)process_path,
        "--pid-file", (char *)pid_path, (char *)id, NULL};
    if (cap < CB_ARRAY_LEN(v))
        return -E2BIG;
    memcpy(argv, v, sizeof(v));
    return 0;
}

int cb_ct_backend_oci(const char *want, const char *root, struct cb_ct_backend *out,
                      struct cb_error *err)
{
    struct cb_ct_runtime *rt = cb_xcalloc(1, sizeof(*rt));
    int r = cb_ct_runtime_detect(want, root, rt, err);
    if (r < 0) {
        free(rt);
        return r;
    }
    *out = (struct cb_ct_backend){
        .impl = rt,
        .joins_netns = strcmp(rt->name, "runc") == 0,
        .launch = oci_launch,
        .exit_read = exit_read,
        .kill = kill_ct,
        .remove = remove_ct,
        .list = oci_list,
        .exec_argv = exec_argv,
        .free = free,
    };
    snprintf(out->label, sizeof(out->label), "%s %s", rt->name, rt->version);
    return 0;
}
