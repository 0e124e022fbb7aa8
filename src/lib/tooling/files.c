/* Bounded file reading and exclusive file creation for the tooling module. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/fs.h"
#include "core/util.h"
#include "tooling/internal.h"

int cb__tooling_read(const char *path, size_t max, struct cb_buf *b, struct cb_error *err)
{
    struct cb_file f;
    cb_buf_init(b, max);
    int r = cb_file_load(&f, AT_FDCWD, path, max, 0, err);
    if (f.failed == CB_FILE_TYPE)
        r = cb_error_set(err, r, "%s is not a regular file", path);
    else if (f.failed == CB_FILE_SIZE)
        r = cb_error_set(err, r, "%s is larger than %zu bytes", path, max);
    else if (r < 0)
        r = cb_error_set(err, r, "cannot read %s: %s", path, strerror(-r));
    if (r == 0) {
        *b = f.buf;
        f.buf.data = NULL;
    }
    cb_file_close(&f);
    return r;
}

static int write_new_file(const char *path, const void *data, size_t len, mode_t mode, bool sync,
                          struct cb_error *err)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return cb_error_set(err, -errno, "cannot create %s: %s", path, strerror(errno));
    int r = cb_write_all(fd, data, len);
    if (r < 0)
        return cb_error_set(err, r, "cannot write %s: %s", path, strerror(-r));
    if (sync && fsync(fd) < 0)
        return cb_error_set(err, -errno, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int cb__tooling_write_new(const char *path, const void *data, size_t len, mode_t mode,
                          struct cb_error *err)
{
    return write_new_file(path, data, len, mode, false, err);
}

int cb__tooling_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                             struct cb_error *err)
{
    /* The temp name does not end in .wasm or .json: a watcher ignores it. */
    _cleanup_free_ char *tmp = cb_xasprintf("%s.tmp.%d", path, (int)getpid());
    unlink(tmp); /* left over by a killed run of this pid */
    int r = write_new_file(tmp, data, len, mode, true, err);
    if (r == 0 && rename(tmp, path) < 0)
        r = cb_error_set(err, -errno, "renaming %s to %s: %s", tmp, path, strerror(errno));
    if (r < 0)
        unlink(tmp);
    return r;
}

char *cb__tooling_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        return cb_xasprintf("/%s", name);
    return cb_xasprintf("%.*s/%s", (int)n, dir, name);
}
