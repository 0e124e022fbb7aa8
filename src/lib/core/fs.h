/* File-system helpers: mkdir -p, reading and writing through EINTR and
 * short transfers, atomic replacement. */
#ifndef CB_CORE_FS_H
#define CB_CORE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/error.h"

/* mkdir -p: creates missing directories with `mode`. */
int cb_mkdir_p(const char *path, mode_t mode, struct cb_error *err);

/* One read(2) or write(2), called again after EINTR. Returns what the
 * call returns, or -errno. */
ssize_t cb_read_retry(int fd, void *buf, size_t len);
ssize_t cb_write_retry(int fd, const void *data, size_t len);
/* Reads exactly len bytes at off: 0, -errno, or -EIO at the end of the
 * file. */
int cb_pread_all(int fd, void *buf, size_t len, off_t off);
/* flock(2), called again after EINTR: 0 or -errno. */
int cb_flock_retry(int fd, int op);

/* Writes all len bytes to fd, going on after a short write or EINTR.
 * Returns 0 or -errno. */
int cb_write_all(int fd, const void *data, size_t len);
/* The same for cnt buffers; the entries of iov are changed. */
int cb_writev_all(int fd, struct iovec *iov, int cnt);
/* Copies what is left to read of `in` (from its offset to its end) to
 * `out`, 64 KiB at a time. Returns 0 or -errno (of the read or the write). */
int cb_copy_fd(int in, int out);
/* Skips the first `done` bytes of the cnt buffers at *iov, for a loop
 * around a call that may take part of them (writev, sendmsg): moves *iov
 * to the first buffer with bytes left, trims it, and returns how many
 * buffers are left. */
int cb_iov_advance(struct iovec **iov, int cnt, size_t done);

/* Replaces path with data atomically: a temp file created 0600 in the same
 * directory, fsync, rename, then fsync of the directory. */
int cb_write_atomic(const char *path, const void *data, size_t len, struct cb_error *err);
/* The same without the fsyncs: readers see the old or the new content,
 * never a part, but after a host crash the file may be empty or missing.
 * For files that have no use after one (a container's bundle and exit
 * record go with the container), where the fsyncs would cost more than
 * the work they belong to. */
int cb_write_replace(const char *path, const void *data, size_t len, struct cb_error *err);

/* A new, unlinked file in dir, open for reading and writing (0600):
 * O_TMPFILE, or a named file removed at once where the file system has
 * none. For bytes that must not be held in memory (an upload, a copy of a
 * file being sent). Returns the descriptor or -errno. */
int cb_tmpfile(const char *dir, struct cb_error *err);

/* Removes path and everything under it, never following a symbolic link.
 * A missing path is success. Returns 0 or the first -errno met (the rest
 * is still removed where it can be). */
int cb_rm_tree(const char *path);

/* Absolute, UTF-8, shorter than PATH_MAX, with no empty, "." or ".."
 * component: a path that means what it says, for every path handed to a
 * container runtime. "/" is clean. */
bool cb_path_clean_abs(const char *p);
/* Whether path is dir or inside it, by text ("/a/bc" is not inside "/a/b");
 * dir has no trailing '/'. */
bool cb_path_under(const char *path, const char *dir);

#endif
