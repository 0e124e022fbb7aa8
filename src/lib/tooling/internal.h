/* Internals shared by the tooling module's files. */
#ifndef CB_TOOLING_INTERNAL_H
#define CB_TOOLING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/error.h"

/* sdk/clawbox_tool.h, embedded by embed_sdk.py (NUL-terminated; the length
 * excludes the NUL). */
extern const unsigned char cb__tooling_sdk[];
extern const size_t cb__tooling_sdk_len;

/* Reads the regular file `path` into b (initialised here with maximum
 * `max`; the data is NUL-terminated, also when empty). -ENOENT if missing,
 * -EFBIG if larger than max, -EINVAL if not a regular file. The caller
 * frees b, also on failure. */
int cb__tooling_read(const char *path, size_t max, struct cb_buf *b, struct cb_error *err);

/* Returns "<dir>/<name>" without doubling a trailing slash of dir. */
char *cb__tooling_join(const char *dir, const char *name);

/* Creates `path` exclusively (O_EXCL, no symlink following) with `mode`
 * and writes data to it. */
int cb__tooling_write_new(const char *path, const void *data, size_t len, mode_t mode,
                          struct cb_error *err);

/* Replaces path atomically: writes "<path>.tmp.<pid>" with `mode`, fsyncs
 * it and renames it over path. Unlike cb_write_atomic (0600), the mode is
 * the caller's, so a server running as another user can read the tool. */
int cb__tooling_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                             struct cb_error *err);

/* Runs argv[0] (found through PATH) with stdin on /dev/null and stdout and
 * stderr into a pipe, in its own process group. Appends the output to
 * `out` until its maximum (the rest is read and dropped, and *truncated is
 * set). After timeout_ms the group is killed. Returns 0 when the program
 * exited 0; -ECHILD if it exited non-zero or died; -ETIMEDOUT; or the
 * error of starting it (e.g. -ENOENT). err names the program. */
int cb__tooling_run(char *const argv[], unsigned timeout_ms, struct cb_buf *out, bool *truncated,
                    struct cb_error *err);

#endif
