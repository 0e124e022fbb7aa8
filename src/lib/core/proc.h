/* Running a program with a deadline: fork/exec without a shell, the child
 * leading its own process group, resource limits, given bytes on stdin,
 * stdout and stderr combined into one bounded buffer, and the whole group
 * killed when the deadline passes. Used by the toolchain runner and the
 * tool compiler; anything that runs a helper program should use it. */
#ifndef CB_CORE_PROC_H
#define CB_CORE_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include "core/buf.h"
#include "core/error.h"

/* A resource limit for the child. It only ever tightens: a value above the
 * limit the child inherited is lowered to it, so a limit can never fail
 * because clawbox itself already runs under a stricter one. */
struct cb_proc_rlimit {
    int resource; /* RLIMIT_* */
    rlim_t soft, hard;
};

struct cb_proc_spec {
    /* The program and its arguments; argv[0] is looked up in PATH. */
    char *const *argv;
    /* Instead of argv (which is then only its name in errors): a function
     * the child runs, exiting with its return value, for work that should
     * run apart from clawbox but needs no program of its own. */
    int (*fn)(void *arg);
    void *arg;
    /* "NAME=value" entries set in the child's environment, on top of
     * clawbox's own or, with env_clear, of an empty one. May be NULL. */
    char *const *env;
    bool env_clear;
    const char *cwd; /* NULL: clawbox's */
    /* Bytes given on stdin, then end of file; with stdin_data NULL the
     * child reads /dev/null. */
    const void *stdin_data;
    size_t stdin_len;
    const struct cb_proc_rlimit *rlimits;
    size_t n_rlimits;
    /* Wall-clock limit for the run, output and exit included; 0 means
     * none. */
    unsigned timeout_ms;
    /* Receives stdout and stderr, combined, up to its maximum; the rest is
     * read and dropped. NULL: the child writes where clawbox does. */
    struct cb_buf *output;
    /* With output: also called with each chunk as it is read (all of
     * them, kept or not), for a caller that shows progress. */
    void (*on_output)(const char *p, size_t n, void *ud);
    void *on_output_ud;
    /* May be NULL. Once another thread sets it, the run ends as at the
     * deadline (the child's process group killed), with -ECANCELED: for
     * background work that must not hold up a shutdown. */
    const atomic_bool *cancel;
    /* The child stays in the caller's process group instead of leading its
     * own: for a run inside a child that is itself killed as a group. A
     * deadline then kills only the child. */
    bool in_caller_group;
};

struct cb_proc_result {
    int status;      /* wait status, when cb_proc_run returned 0 */
    bool truncated;  /* output went past the buffer's maximum */
    uint64_t cpu_ms; /* CPU time of the child and the children it waited for */
};

/* Runs spec and waits for the child. Returns 0 once the child exited (for
 * any reason: see res->status); -ETIMEDOUT when the deadline passed, after
 * killing the child's process group (see in_caller_group); -ECANCELED when
 * spec->cancel was set, likewise; or a negative errno if the child
 * could not be started, including a failure in the child before exec
 * (e.g. -ENOENT for a program not found). File descriptors other than
 * 0-2 are not passed on. err names the program. */
int cb_proc_run(const struct cb_proc_spec *spec, struct cb_proc_result *res, struct cb_error *err);

#endif
