#include "core/line.h"
#include "core/fs.h"
#include "core/util.h"

#include <string.h>
#include <unistd.h>

void cb_line_reader_init(struct cb_line_reader *r, int fd, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    cb_buf_init(&r->line, max);
    r->chunk = cb_xmalloc(CB_LINE_CHUNK);
}

void cb_line_reader_free(struct cb_line_reader *r)
{
    if (r == NULL)
        return;
    cb_buf_free(&r->line);
    free(r->chunk);
    r->chunk = NULL;
}

/* Refills the chunk. Returns 1 with data, 0 at the end, or -errno. */
static int fill(struct cb_line_reader *r)
{
    ssize_t n = cb_read_retry(r->fd, r->chunk, CB_LINE_CHUNK);
    if (n < 0)
        return (int)n;
    r->pos = 0;
    r->len = (size_t)n;
    r->eof = n == 0;
    return n > 0;
}

/* At the end of the input: a last line that had no newline. */
static int finish(struct cb_line_reader *r, const char **line, size_t *len)
{
    if (r->discarding || r->line.len == 0)
        return CB_LINE_EOF;
    *line = r->line.data;
    *len = r->line.len;
    r->line.len = 0; /* the next call returns CB_LINE_EOF; data stays readable */
    r->lineno++;
    return CB_LINE_PARTIAL;
}

int cb_line_reader_next(struct cb_line_reader *r, const char **line, size_t *len)
{
    cb_buf_reset(&r->line);
    for (;;) {
        if (r->pos == r->len) {
            int rc = r->eof ? 0 : fill(r);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return finish(r, line, len);
        }
        char *start = r->chunk + r->pos;
        char *nl = memchr(start, '\n', r->len - r->pos);
        size_t seg = nl ? (size_t)(nl - start) : r->len - r->pos;
        r->pos += seg + (nl != NULL);
        if (r->discarding) {
            r->discarding = nl == NULL;
            continue;
        }
        if (nl != NULL && r->line.len == 0 && seg <= r->line.max) {
            /* The whole line lies in the chunk: hand it out from there,
             * its newline turned into its NUL. */
            *nl = '\0';
            *line = start;
            *len = seg;
            r->lineno++;
            return CB_LINE_OK;
        }
        if (cb_buf_append(&r->line, start, seg) < 0) {
            cb_buf_reset(&r->line);
            r->discarding = nl == NULL;
            r->lineno++;
            return CB_LINE_TOO_LONG;
        }
        if (nl != NULL) {
            *line = r->line.data;
            *len = r->line.len;
            r->lineno++;
            return CB_LINE_OK;
        }
    }
}
