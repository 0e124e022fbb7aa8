#include "core/file.h"
#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (16u * 1024)

static int file_fail(struct cb_file *f, enum cb_file_step step, int code, struct cb_error *err)
{
    f->failed = step;
    switch (step) {
    case CB_FILE_TYPE:
        return cb_error_set(err, code, "%s: not a regular file", f->path);
    case CB_FILE_SIZE:
        return cb_error_set(err, code, "%s is larger than %zu bytes", f->path, f->buf.max);
    case CB_FILE_SHORT:
        return cb_error_set(err, code,
                            "%s: it ended after %zu of %zu bytes (changed while being read?)",
                            f->path, f->buf.len, (size_t)f->st.st_size);
    default:
        return cb_error_set(err, code, "%s: %s", f->path, strerror(-code));
    }
}

int cb_file_open(struct cb_file *f, int dirfd, const char *path, unsigned flags,
                 struct cb_error *err)
{
    memset(f, 0, sizeof(*f));
    f->path = path;
    f->flags = flags;
    cb_buf_init(&f->buf, 0);
    int oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK; /* a FIFO must not hang */
    f->fd = openat(dirfd, path, oflags | ((flags & CB_FILE_NOFOLLOW) ? O_NOFOLLOW : 0));
    if (f->fd < 0)
        return file_fail(f, CB_FILE_OPEN, -errno, err);
    if (fstat(f->fd, &f->st) < 0)
        return file_fail(f, CB_FILE_STAT, -errno, err);
    if (!S_ISREG(f->st.st_mode))
        return file_fail(f, CB_FILE_TYPE, -EINVAL, err);
    return 0;
}

/* At the bound: one more byte says whether the file goes on. */
static int check_end(struct cb_file *f, struct cb_error *err)
{
    char c;
    ssize_t n = (f->flags & CB_FILE_EXACT) ? 0 : cb_read_retry(f->fd, &c, 1);
    explicit_bzero(&c, sizeof(c));
    if (n < 0)
        return file_fail(f, CB_FILE_READ, (int)n, err);
    return n > 0 ? file_fail(f, CB_FILE_SIZE, -EFBIG, err) : 0;
}

/* Reads once more into f->buf: into its spare room, or through a small
 * chunk when it has none (so that the end of the file, usually, costs no
 * allocation). The caller checked that it is below its maximum. */
static ssize_t read_more(struct cb_file *f)
{
    struct cb_buf *b = &f->buf;
    size_t spare = b->cap - 1 - b->len;
    if (spare > 0) {
        ssize_t n = cb_read_retry(f->fd, b->data + b->len, spare);
        if (n > 0)
            b->len += (size_t)n;
        b->data[b->len] = '\0';
        return n;
    }
    char chunk[READ_CHUNK];
    size_t room = b->max - b->len;
    ssize_t n = cb_read_retry(f->fd, chunk, room < sizeof(chunk) ? room : sizeof(chunk));
    if (n > 0)
        (void)cb_buf_append(b, chunk, (size_t)n); /* n <= room: cannot fail */
    return n;
}

/* Reads until the end of the file, or its maximum. */
static int read_all(struct cb_file *f, struct cb_error *err)
{
    for (;;) {
        if (f->buf.len == f->buf.max)
            return check_end(f, err);
        ssize_t n = read_more(f);
        if (n < 0)
            return file_fail(f, CB_FILE_READ, (int)n, err);
        if (n == 0 && (f->flags & CB_FILE_EXACT))
            return file_fail(f, CB_FILE_SHORT, -EIO, err);
        if (n == 0)
            return 0;
    }
}

int cb_file_read(struct cb_file *f, size_t max, struct cb_error *err)
{
    size_t size = (size_t)f->st.st_size;
    if ((uint64_t)f->st.st_size > max) {
        f->buf.max = max;
        return file_fail(f, CB_FILE_SIZE, -EFBIG, err);
    }
    cb_buf_init(&f->buf, (f->flags & CB_FILE_EXACT) ? size : max);
    /* Room for what fstat announced (or, to wipe, for all there may be)
     * in one allocation; buf.len goes back to 0 below. */
    size_t first = (f->flags & CB_FILE_WIPE) ? f->buf.max : size;
    (void)cb_buf_extend(&f->buf, first); /* first <= buf.max: cannot fail */
    f->buf.len = 0;
    f->buf.data[0] = '\0';
    return read_all(f, err);
}

int cb_file_load(struct cb_file *f, int dirfd, const char *path, size_t max, unsigned flags,
                 struct cb_error *err)
{
    int r = cb_file_open(f, dirfd, path, flags, err);
    return r < 0 ? r : cb_file_read(f, max, err);
}

void cb_file_close(struct cb_file *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if ((f->flags & CB_FILE_WIPE) && f->buf.data != NULL)
        explicit_bzero(f->buf.data, f->buf.cap);
    cb_buf_free(&f->buf);
}

void cb_file_stamp_of(struct cb_file_stamp *s, const struct stat *st)
{
    memset(s, 0, sizeof(*s));
    s->present = true;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->size = st->st_size;
    s->mtime = st->st_mtim;
    s->ctime = st->st_ctim;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool cb_file_stamp_eq(const struct cb_file_stamp *a, const struct cb_file_stamp *b)
{
    if (!a->present || !b->present)
        return a->present == b->present;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           ts_eq(a->mtime, b->mtime) && ts_eq(a->ctime, b->ctime);
}

bool cb_file_stamp_matches(const struct cb_file_stamp *s, const char *path)
{
    struct stat st;
    struct cb_file_stamp now = {0};
    if (stat(path, &st) == 0)
        cb_file_stamp_of(&now, &st);
    else if (errno != ENOENT)
        return false;
    return cb_file_stamp_eq(s, &now);
}
