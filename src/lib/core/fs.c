#include "core/fs.h"
#include "core/utf8.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <libgen.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* The buffer of cb_copy_fd. */
#define COPY_CHUNK 65536u

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

ssize_t cb_read_retry(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t cb_write_retry(int fd, const void *data, size_t len)
{
    ssize_t n;
    do
        n = write(fd, data, len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

int cb_pread_all(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

int cb_flock_retry(int fd, int op)
{
    while (flock(fd, op) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

int cb_iov_advance(struct iovec **iov, int cnt, size_t done)
{
    struct iovec *v = *iov;
    while (cnt > 0 && done >= v->iov_len) {
        done -= v->iov_len;
        v++;
        cnt--;
    }
    if (cnt > 0) {
        v->iov_base = (char *)v->iov_base + done;
        v->iov_len -= done;
    }
    *iov = v;
    return cnt;
}

int cb_writev_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        cnt = cb_iov_advance(&iov, cnt, (size_t)n);
    }
    return 0;
}

int cb_write_all(int fd, const void *data, size_t len)
{
    struct iovec v = {(void *)data, len};
    return cb_writev_all(fd, &v, len > 0);
}

int cb_copy_fd(int in, int out)
{
    char *buf = cb_xmalloc(COPY_CHUNK);
    ssize_t n;
    int r = 0;
    while (r == 0 && (n = cb_read_retry(in, buf, COPY_CHUNK)) != 0)
        r = n < 0 ? (int)n : cb_write_all(out, buf, (size_t)n);
    free(buf);
    return r;
}

int cb_tmpfile(const char *dir, struct cb_error *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
        return fd >= 0 ? fd : cb_error_set(err, -errno, "%s: %s", dir, strerror(errno));
    char *path = cb_xasprintf("%s/.tmp-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    int e = errno;
    if (fd >= 0)
        unlink(path);
    free(path);
    return fd >= 0 ? fd : cb_error_set(err, -e, "%s: %s", dir, strerror(e));
}

/* A temp file beside path, renamed over it; with `durable`, fsyncs of the
 * file before the rename and of the directory after. */
static int replace(const char *path, const void *data, size_t len, bool durable,
                   struct cb_error *err)
{
    char *tmp = cb_xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int r = 0;
    if (fd < 0) {
        r = cb_error_set(err, -errno, "creating %s: %s", tmp, strerror(errno));
        free(tmp);
        return r;
    }
    int wr = cb_write_all(fd, data, len);
    if (wr == 0 && durable && fsync(fd) < 0)
        wr = -errno;
    if (wr < 0)
        r = cb_error_set(err, wr, "writing %s: %s", tmp, strerror(-wr));
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = cb_error_set(err, -errno, "renaming %s to %s: %s", tmp, path, strerror(errno));
    if (r < 0)
        unlink(tmp);
    else if (durable)
        fsync_dir_of(path);
    free(tmp);
    return r;
}

int cb_write_atomic(const char *path, const void *data, size_t len, struct cb_error *err)
{
    return replace(path, data, len, true, err);
}

int cb_write_replace(const char *path, const void *data, size_t len, struct cb_error *err)
{
    return replace(path, data, len, false, err);
}

static int rm_first_error;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (r < 0 && errno != ENOENT && rm_first_error == 0)
        rm_first_error = -errno;
    return 0;
}

int cb_rm_tree(const char *path)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* nftw's callback has no context */
    pthread_mutex_lock(&lock);
    rm_first_error = 0;
    int r = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (r < 0 && errno != ENOENT && rm_first_error == 0)
        rm_first_error = -errno;
    r = rm_first_error;
    pthread_mutex_unlock(&lock);
    return r;
}

bool cb_path_clean_abs(const char *p)
{
    if (p == NULL || p[0] != '/')
        return false;
    size_t len = strnlen(p, PATH_MAX);
    if (len >= PATH_MAX || cb_utf8_valid_len(p, len) != len)
        return false;
    if (p[1] == '\0')
        return true;
    for (const char *c = p + 1;;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (c[n] == '\0')
            return true;
        c += n + 1;
    }
}

bool cb_path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}
