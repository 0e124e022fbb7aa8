/* A bounded line reader for newline-delimited protocols (MCP over stdio).
 * It never holds more than `max_line` bytes of one line plus one read
 * chunk: a longer line is reported once and the rest of it is discarded
 * up to its newline, so a client cannot make it allocate without bound. */
#ifndef CB_MCP_READER_H
#define CB_MCP_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

#define CB_MCP_READ_CHUNK 65536

struct cb_mcp_reader {
    int fd;
    struct cb_buf line; /* the line being assembled, at most max_line bytes */
    char chunk[CB_MCP_READ_CHUNK];
    size_t pos, len; /* unread part of chunk */
    bool discarding; /* inside a line already reported as too long */
    bool eof;
};

void cb_mcp_reader_init(struct cb_mcp_reader *r, int fd, size_t max_line);
void cb_mcp_reader_free(struct cb_mcp_reader *r);

/* Reads the next line. Returns 1 with the line in *line and *len (no
 * newline; valid until the next call), 0 at end of input, -E2BIG once for
 * a line longer than the limit (the reader goes on with the line after
 * it), or another negative code with err set when reading fails. A last
 * line without a newline still counts as a line. */
int cb_mcp_reader_next(struct cb_mcp_reader *r, const char **line, size_t *len,
                       struct cb_error *err);

#endif
