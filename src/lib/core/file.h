/* Reading a bounded regular file, and telling whether a file has changed.
 *
 * cb_file_open() opens without following a link when asked, never blocks
 * on a FIFO or takes a terminal, and accepts only a regular file;
 * cb_file_read() then reads at most `max` bytes of it. A caller that keeps
 * its own error messages looks at `failed`, the step that went wrong, and
 * rewrites err. */
#ifndef CB_CORE_FILE_H
#define CB_CORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "core/buf.h"
#include "core/error.h"

/* A symbolic link fails at CB_FILE_OPEN with -ELOOP. */
#define CB_FILE_NOFOLLOW (1u << 0)
/* The content is a secret: the buffer is allocated once, at its bound (so
 * it never moves), and zeroed before it is freed. For small bounds. */
#define CB_FILE_WIPE (1u << 1)
/* Read exactly the size fstat gave: ending before it is CB_FILE_SHORT
 * (the file shrank; half a file must not pass for the whole one), and
 * bytes appended meanwhile are left unread. */
#define CB_FILE_EXACT (1u << 2)

enum cb_file_step {
    CB_FILE_OK,
    CB_FILE_OPEN,  /* open(2): -errno */
    CB_FILE_STAT,  /* fstat(2): -errno */
    CB_FILE_TYPE,  /* not a regular file: -EINVAL */
    CB_FILE_SIZE,  /* larger than max, by its size or while being read: -EFBIG */
    CB_FILE_READ,  /* read(2): -errno */
    CB_FILE_SHORT, /* CB_FILE_EXACT and it ended at buf.len of st.st_size: -EIO */
};

struct cb_file {
    const char *path; /* borrowed, for messages */
    int fd;
    unsigned flags;
    struct stat st;           /* after cb_file_open */
    struct cb_buf buf;        /* after cb_file_read: the content, NUL-terminated */
    enum cb_file_step failed; /* the step that failed, else CB_FILE_OK */
};

/* Opens path (relative to dirfd: AT_FDCWD or a directory) for reading and
 * checks that it is a regular file. f is initialised here, whatever
 * happens: call cb_file_close() in any case. */
int cb_file_open(struct cb_file *f, int dirfd, const char *path, unsigned flags,
                 struct cb_error *err);
/* Reads the opened file into f->buf: at most max bytes, else -EFBIG.
 * f->buf.data is not NULL on success, also for an empty file. */
int cb_file_read(struct cb_file *f, size_t max, struct cb_error *err);
/* cb_file_open() then cb_file_read(). */
int cb_file_load(struct cb_file *f, int dirfd, const char *path, size_t max, unsigned flags,
                 struct cb_error *err);
/* Closes the file and frees the content (zeroed first with CB_FILE_WIPE).
 * A caller that keeps the content takes f->buf and sets f->buf.data NULL. */
void cb_file_close(struct cb_file *f);

/* What a file was when it was read (dev, inode, size, mtime, ctime):
 * rename(2) gives a replaced file a new inode, and the times catch an
 * inode number being reused or a file rewritten in place. */
struct cb_file_stamp {
    bool present; /* false: the file did not exist */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
};

void cb_file_stamp_of(struct cb_file_stamp *s, const struct stat *st);
bool cb_file_stamp_eq(const struct cb_file_stamp *a, const struct cb_file_stamp *b);
/* True when path (its target, for a link) is still the file s describes,
 * or is absent and s says it was. */
bool cb_file_stamp_matches(const struct cb_file_stamp *s, const char *path);

#endif
