#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cb_mkdir_p(const char *path, mode_t mode, struct cb_error *err)
{
    char *p = cb_xstrdup(path);
    int r = 0;
    for (char *s = p + 1; r == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            r = cb_error_set(err, -errno, "creating directory %s: %s", p, strerror(errno));
        *s = saved;
        if (saved == '\0')
            break;
    }
    free(p);
    return r;
}

static void fsync_dir_of(const char *path)
{
    char *copy = cb_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cb_write_atomic(const char *path, const void *data, size_t len, struct cb_error *err)
{
    char *tmp = cb_xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int r = 0;
    if (fd < 0) {
        r = cb_error_set(err, -errno, "creating %s: %s", tmp, strerror(errno));
        free(tmp);
        return r;
    }
    int wr = write_all(fd, data, len);
    if (wr == 0 && fsync(fd) < 0)
        wr = -errno;
    if (wr < 0)
        r = cb_error_set(err, wr, "writing %s: %s", tmp, strerror(-wr));
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = cb_error_set(err, -errno, "renaming %s to %s: %s", tmp, path, strerror(errno));
    if (r < 0)
        unlink(tmp);
    else
        fsync_dir_of(path);
    free(tmp);
    return r;
}
