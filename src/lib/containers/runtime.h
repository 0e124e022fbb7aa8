/* The OCI runtime (crun or runc) driven through its command line, and the
 * per-container monitor.
 *
 * Every call passes the absolute runtime root (`--root`), so the runtime's
 * state lives where clawbox keeps it. A container is run by a monitor
 * process, forked by a monitor zygote (`clawbox __container-monitor`,
 * started by the first launch, in its own session): the monitor creates
 * and starts the container, keeps its stdout and stderr in a capped
 * output.log, waits for its real exit status as a child subreaper, reads
 * the OOM count from the container's memory cgroup, writes exit.json and
 * deletes the container. */
#ifndef CB_CONTAINERS_RUNTIME_H
#define CB_CONTAINERS_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

struct cb_ct_runtime {
    char name[8];     /* "crun" or "runc" */
    char path[256];   /* absolute path of the binary */
    char root[4096];  /* absolute --root */
    char version[64]; /* e.g. "1.8.1" */
};

/* Once at server start, before any thread exists: enters a private mount
 * namespace (the host's later mounts still show; nothing of ours goes
 * back), where the manager binds the directories the runtime is given
 * (manager.c, stage()), and on a hybrid cgroup host (cgroup v1 with a
 * cgroup2 mount at /sys/fs/cgroup/unified) unmounts
 * /sys/fs/cgroup/unified, so crun works. Every process started afterwards
 * (monitors, runtimes) inherits the namespace. Fails (-EPERM) when not
 * root. */
int cb_ct_mountns_prepare(struct cb_error *err);
/* Whether cb_ct_mountns_prepare entered the private namespace. */
bool cb_ct_mountns_private(void);

/* Finds the runtime and checks that it really works here by creating and
 * deleting a container that never runs. want: "auto" (crun, else runc),
 * "crun" or "runc". root: the absolute --root, created 0700 if missing.
 * -ENOENT when the runtime is not installed; -ENOTSUP when it does not
 * work, err giving the runtime's own reason (for "auto", both reasons). */
int cb_ct_runtime_detect(const char *want, const char *root, struct cb_ct_runtime *out,
                         struct cb_error *err);

/* Sends sig to the container's init process. -ENOENT when the runtime
 * knows no container of that id; another failure (e.g. the container has
 * just stopped and its monitor has not deleted it yet) gives the
 * runtime's message. */
int cb_ct_runtime_kill(const struct cb_ct_runtime *rt, const char *id, int sig,
                       struct cb_error *err);
/* `delete --force`: kills the container if it runs and removes it; 0 also
 * when there is no such container. */
int cb_ct_runtime_delete(const struct cb_ct_runtime *rt, const char *id, struct cb_error *err);
/* Calls cb(id, ud) for every container in the runtime root; a non-zero
 * return from cb stops the walk and is returned. */
int cb_ct_runtime_list(const struct cb_ct_runtime *rt, int (*cb)(const char *id, void *ud),
                       void *ud, struct cb_error *err);

struct cb_ct_launch {
    const char *monitor_exe; /* the clawbox binary ("/proc/self/exe" in the server) */
    const char *id;
    const char *bundle;      /* absolute */
    const char *dir;         /* absolute: output.log, exit.json, init.pid go here */
    const char *cgroup_path; /* "/clawbox/<id>", for the OOM count */
    uint64_t log_cap;        /* bytes of output kept */
    /* When not NULL, the network namespace the monitor joins before the
     * runtime creates the container (a bundle with netns_inherited). */
    const char *netns_path;
    /* Called, when not NULL, once the monitor has the job, while the
     * runtime creates the container: the caller's own work in parallel. */
    void (*meanwhile)(void *ud);
    void *ud;
};

struct cb_ct_started {
    pid_t monitor_pid;
    int monitor_pidfd; /* the caller's to close; close-on-exec */
    int exit_fd;       /* the same */
    pid_t init_pid;
};

/* Starts a monitor and returns once the container runs (`start`
 * succeeded), or fails with the runtime's own message in err (e.g. the
 * image has no such executable; the monitor then exits by itself). The
 * monitor is not the caller's child (nothing to reap). exit_fd (a pipe)
 * reaches its end of stream once the exit is recorded: exit.json is
 * written (or the monitor died without writing it), and the monitor goes
 * on to delete the container. monitor_pidfd becomes readable when the
 * monitor has ended, the container deleted. Killing the container (cb_ct_runtime_kill or _delete)
 * ends the monitor normally. Monitors ignore SIGINT, SIGHUP and SIGPIPE
 * and outlive the caller. Thread-safe; the first call's monitor_exe
 * starts the zygote. */
int cb_ct_launch(const struct cb_ct_runtime *rt, const struct cb_ct_launch *l,
                 struct cb_ct_started *out, struct cb_error *err);

/* What exit.json records. exit_code is the exit status, or 128 + signal
 * when a signal ended the container's init (then signal is set). An OOM
 * kill in the container's memory cgroup sets oom_killed (its victim exits
 * 137). output_bytes were kept in output.log, dropped_bytes went past
 * log_cap. finished_ms: wall clock at the exit, in ms. */
struct cb_ct_exit {
    int exit_code;
    int signal;
    bool oom_killed;
    uint64_t output_bytes;
    uint64_t dropped_bytes;
    uint64_t finished_ms;
};

/* Reads dir/exit.json. -ENOENT: the container has not ended (or its
 * monitor died before writing it). */
int cb_ct_exit_read(const char *dir, struct cb_ct_exit *out, struct cb_error *err);

/* The `clawbox __container-monitor` verb (the monitor zygote, its socket
 * at fd 3); argv[0] is the verb. Returns the process exit code. */
int cb_ct_monitor_main(int argc, char **argv);

#endif
