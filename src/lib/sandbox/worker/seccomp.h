/* Internal: the seccomp filter of a worker child. It is compiled to BPF
 * once in the zygote and loaded in each child with one prctl. */
#ifndef CB_SANDBOX_WORKER_SECCOMP_H
#define CB_SANDBOX_WORKER_SECCOMP_H

#include <linux/filter.h>

#include "core/error.h"

/* Builds the filter program (owned by the caller; free prog->filter). */
int cb__seccomp_build(struct sock_fprog *prog, struct cb_error *err);
/* Sets no_new_privs and loads the program into the calling process. */
int cb__seccomp_load(const struct sock_fprog *prog);

#endif
