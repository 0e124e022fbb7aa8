/* File-system helpers: mkdir -p, writing until done, atomic replacement. */
#ifndef CB_CORE_FS_H
#define CB_CORE_FS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/error.h"

/* mkdir -p: creates missing directories with `mode`. */
int cb_mkdir_p(const char *path, mode_t mode, struct cb_error *err);

/* Writes all len bytes to fd, going on after a short write or EINTR.
 * Returns 0 or -errno. */
int cb_write_all(int fd, const void *data, size_t len);
/* The same for cnt buffers; the entries of iov are changed. */
int cb_writev_all(int fd, struct iovec *iov, int cnt);
/* Skips the first `done` bytes of the cnt buffers at *iov, for a loop
 * around a call that may take part of them (writev, sendmsg): moves *iov
 * to the first buffer with bytes left, trims it, and returns how many
 * buffers are left. */
int cb_iov_advance(struct iovec **iov, int cnt, size_t done);

/* Replaces path with data atomically: a temp file created 0600 in the same
 * directory, fsync, rename, then fsync of the directory. */
int cb_write_atomic(const char *path, const void *data, size_t len, struct cb_error *err);

#endif
