/* A bounded line reader for newline-delimited input (the audit log, MCP
 * over stdio). It never holds more than `max` bytes of one line plus one
 * read chunk: a longer line is reported once, as soon as it passes the
 * bound, and the rest of it is skipped up to its newline, so an input
 * cannot make it allocate without bound. */
#ifndef CB_CORE_LINE_H
#define CB_CORE_LINE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define CB_LINE_CHUNK 65536

enum {
    CB_LINE_OK = 1,
    CB_LINE_EOF = 0,
    CB_LINE_TOO_LONG = -E2BIG,
    CB_LINE_PARTIAL = -ENODATA, /* at the end: bytes after the last newline */
};

struct cb_line_reader {
    int fd;
    struct cb_buf line; /* a line that crosses reads, at most max bytes */
    char *chunk;        /* CB_LINE_CHUNK bytes */
    size_t pos, len;    /* unread part of chunk */
    bool discarding;    /* inside a line already reported as too long */
    bool eof;
    uint64_t lineno; /* lines handed out or reported so far */
};

void cb_line_reader_init(struct cb_line_reader *r, int fd, size_t max);
void cb_line_reader_free(struct cb_line_reader *r);

/* Reads the next line. Returns CB_LINE_OK with the line in *line and *len
 * (no newline, NUL-terminated, valid until the next call); CB_LINE_EOF at
 * the end (again if asked again); CB_LINE_TOO_LONG once for a line longer
 * than max (the next call goes on after it); CB_LINE_PARTIAL at the end
 * of an input whose last line has no newline, with that line in *line and
 * *len; or -errno when read(2) fails. */
int cb_line_reader_next(struct cb_line_reader *r, const char **line, size_t *len);

#endif
