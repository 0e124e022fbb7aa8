#include "mcp/reader.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void cb_mcp_reader_init(struct cb_mcp_reader *r, int fd, size_t max_line)
{
    r->fd = fd;
    cb_buf_init(&r->line, max_line);
    r->pos = r->len = 0;
    r->discarding = false;
    r->eof = false;
}

void cb_mcp_reader_free(struct cb_mcp_reader *r)
{
    if (r != NULL)
        cb_buf_free(&r->line);
}

/* Refills the chunk. Returns 1 with data, 0 at EOF, or a negative code. */
static int fill(struct cb_mcp_reader *r, struct cb_error *err)
{
    for (;;) {
        ssize_t n = read(r->fd, r->chunk, sizeof(r->chunk));
        if (n > 0) {
            r->pos = 0;
            r->len = (size_t)n;
            return 1;
        }
        if (n == 0) {
            r->eof = true;
            return 0;
        }
        if (errno != EINTR)
            return cb_error_set(err, -errno, "reading input: %s", strerror(errno));
    }
}

/* At end of input, hands out a last line that had no newline. */
static int finish(struct cb_mcp_reader *r, const char **line, size_t *len)
{
    if (r->discarding || r->line.len == 0)
        return 0;
    *line = r->line.data;
    *len = r->line.len;
    r->line.len = 0; /* the next call returns 0; data stays readable */
    return 1;
}

int cb_mcp_reader_next(struct cb_mcp_reader *r, const char **line, size_t *len,
                       struct cb_error *err)
{
    cb_buf_reset(&r->line);
    for (;;) {
        if (r->pos == r->len) {
            int rc = r->eof ? 0 : fill(r, err);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return finish(r, line, len);
        }
        const char *start = r->chunk + r->pos;
        const char *nl = memchr(start, '\n', r->len - r->pos);
        size_t seg = nl ? (size_t)(nl - start) : r->len - r->pos;
        r->pos += seg + (nl != NULL);
        if (r->discarding) {
            r->discarding = nl == NULL;
            continue;
        }
        if (cb_buf_append(&r->line, start, seg) < 0) {
            cb_buf_reset(&r->line);
            r->discarding = nl == NULL;
            return -E2BIG;
        }
        if (nl != NULL) {
            *line = r->line.data ? r->line.data : "";
            *len = r->line.len;
            return 1;
        }
    }
}
