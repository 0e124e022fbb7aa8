/* The container backend: what the manager asks of whatever runs its
 * containers. Create-and-start, wait, kill, remove, the output log, and
 * the list of the containers this server owns; nothing else of the runtime
 * reaches the manager.
 *
 * The embedded backend, "oci", drives crun or runc through its command
 * line, the way Podman does, with a monitor process per container
 * (runtime.h): no daemon. Its output log is <dir>/output.log (capped by
 * the launch's log_cap), and the end is known when the launch's exit_fd
 * reads end of file, then exit_read tells how it ended. */
#ifndef CB_CONTAINERS_BACKEND_H
#define CB_CONTAINERS_BACKEND_H

#include <stdbool.h>

#include "containers/runtime.h"
#include "core/error.h"

struct cb_ct_backend {
    char label[96]; /* for /health and logs: "crun 1.8.1" */
    /* The runtime cannot put an exec into a network namespace that is
     * not its user namespace's (runc 1.1 joins the user namespace first,
     * and the clawbox-made namespace then refuses it): such a container
     * has no namespace entry, and the launch and every exec join the
     * namespace first, the container keeping the runtime's. */
    bool joins_netns;
    void *impl;
    /* Creates and starts the container; returns once it runs. */
    int (*launch)(void *impl, const struct cb_ct_launch *l, struct cb_ct_started *out,
                  struct cb_error *err);
    /* How the container of dir ended; -ENOENT while it has not. */
    int (*exit_read)(void *impl, const char *dir, struct cb_ct_exit *out, struct cb_error *err);
    /* Sends sig to the container's init; -ENOENT when there is no such
     * container. */
    int (*kill)(void *impl, const char *id, int sig, struct cb_error *err);
    /* Kills the container if it runs and removes it; 0 also when there is
     * none. */
    int (*remove)(void *impl, const char *id, struct cb_error *err);
    /* Calls cb for every container this server owns; a non-zero return
     * stops the walk and is returned. */
    int (*list)(void *impl, int (*cb)(const char *id, void *ud), void *ud, struct cb_error *err);
    /* Fills argv (NULL-terminated, at most cap entries; the strings are
     * the backend's or the caller's) with the command that runs the
     * process spec at process_path in container id, attached, writing the
     * process's pid to pid_path. */
    int (*exec_argv)(void *impl, const char *id, const char *process_path, const char *pid_path,
                     char **argv, size_t cap);
    void (*free)(void *impl);
};

/* The OCI backend: finds the runtime (want: "auto", "crun" or "runc") and
 * checks that it works with state under root (cb_ct_runtime_detect). */
int cb_ct_backend_oci(const char *want, const char *root, struct cb_ct_backend *out,
                      struct cb_error *err);

#endif
