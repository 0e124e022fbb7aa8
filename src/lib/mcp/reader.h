/* The framing of MCP over stdio: core/line.h's bounded line reader, where a
 * last line without a newline is still a line and a read error gets a
 * message. */
#ifndef CB_MCP_READER_H
#define CB_MCP_READER_H

#include <stddef.h>

#include "core/error.h"
#include "core/line.h"

struct cb_mcp_reader {
    struct cb_line_reader lines;
};

void cb__mcp_reader_init(struct cb_mcp_reader *r, int fd, size_t max_line);
void cb__mcp_reader_free(struct cb_mcp_reader *r);

/* Reads the next line. Returns 1 with the line in *line and *len (no
 * newline; valid until the next call), 0 at end of input, -E2BIG once for
 * a line longer than the limit (the reader goes on with the line after
 * it), or another negative code with err set when reading fails. A last
 * line without a newline still counts as a line. */
int cb__mcp_reader_next(struct cb_mcp_reader *r, const char **line, size_t *len,
                        struct cb_error *err);

#endif
