#include "mcp/reader.h"

#include <errno.h>
#include <string.h>

void cb__mcp_reader_init(struct cb_mcp_reader *r, int fd, size_t max_line)
{
    cb_line_reader_init(&r->lines, fd, max_line);
}

void cb__mcp_reader_free(struct cb_mcp_reader *r)
{
    if (r != NULL)
        cb_line_reader_free(&r->lines);
}

int cb__mcp_reader_next(struct cb_mcp_reader *r, const char **line, size_t *len,
                        struct cb_error *err)
{
    int rc = cb_line_reader_next(&r->lines, line, len);
    if (rc == CB_LINE_PARTIAL)
        return 1;
    if (rc < 0 && rc != CB_LINE_TOO_LONG)
        return cb_error_set(err, rc, "reading input: %s", strerror(-rc));
    return rc;
}
