/* File-system helpers shared by init, the state store and (later) the
 * credential store. */
#ifndef CB_CORE_FS_H
#define CB_CORE_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "core/error.h"

/* mkdir -p: creates missing directories with `mode`. */
int cb_mkdir_p(const char *path, mode_t mode, struct cb_error *err);

/* Replaces path with data atomically: a temp file created 0600 in the same
 * directory, fsync, rename, then fsync of the directory. */
int cb_write_atomic(const char *path, const void *data, size_t len, struct cb_error *err);

#endif
