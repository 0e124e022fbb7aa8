/* Readers for `clawbox logs`: the last N lines, and following new ones. */
#include "audit/audit.h"
#include "audit/internal.h"

#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The last `cap` lines of one file, as a ring. */
struct ring {
    char **line;
    size_t *len;
    size_t cap, n, next;
};

static void ring_push(struct ring *r, const char *line, size_t len)
{
    free(r->line[r->next]);
    r->line[r->next] = cb_xstrndup(line, len);
    r->len[r->next] = len;
    r->next = (r->next + 1) % r->cap;
    if (r->n < r->cap)
        r->n++;
}

static void ring_free(struct ring *r)
{
    for (size_t i = 0; i < r->cap; i++)
        free(r->line[i]);
    free(r->line);
    free(r->len);
}

static int ring_take(const char *line, size_t len, void *ctx)
{
    ring_push(ctx, line, len);
    return 0;
}

/* Keeps the last r->cap complete lines of file; over-long lines and an
 * incomplete last line are left out. */
static int ring_fill(struct ring *r, const char *file, struct cb_error *err)
{
    return cb__audit_each_line(file, ring_take, r, err);
}

/* Delivers rings[count-1] (oldest file) first. */
static void emit_rings(struct ring *rings, size_t count, cb_audit_line_fn fn, void *ctx)
{
    for (size_t f = count; f-- > 0;) {
        struct ring *r = &rings[f];
        size_t first = (r->next + r->cap - r->n) % r->cap;
        for (size_t i = 0; i < r->n; i++) {
            size_t k = (first + i) % r->cap;
            if (fn(r->line[k], r->len[k], ctx) != 0)
                return;
        }
    }
}

int cb_audit_tail(const char *dir, size_t n, cb_audit_line_fn fn, void *ctx, struct cb_error *err)
{
    struct cb__audit_files files;
    int r = cb__audit_list(dir, &files, err);
    if (r < 0)
        return r;
    if (files.n == 0) {
        cb__audit_files_free(&files);
        return cb_error_set(err, -ENOENT, "no audit log in %s", dir);
    }
    size_t need = n < CB_AUDIT_MAX_TAIL ? n : CB_AUDIT_MAX_TAIL, used = 0;
    struct ring *rings = cb_xcalloc(files.n, sizeof(*rings));
    for (size_t i = files.n; i-- > 0 && need > 0 && r == 0; used++) {
        struct ring *g = &rings[used];
        g->cap = need;
        g->line = cb_xcalloc(need, sizeof(char *));
        g->len = cb_xcalloc(need, sizeof(size_t));
        r = ring_fill(g, files.names[i], err);
        need -= g->n;
    }
    if (r == 0)
        emit_rings(rings, used, fn, ctx);
    for (size_t i = 0; i < used; i++)
        ring_free(&rings[i]);
    free(rings);
    cb__audit_files_free(&files);
    return r;
}

/* ------------------------------ follow ------------------------------ */

#define CURSOR_CHUNK (64 * 1024)
#define CURSOR_CAP   (CB_AUDIT_MAX_LINE + 1 + CURSOR_CHUNK)

struct cb_audit_cursor {
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    char *buf;
    size_t len;
    bool skipping; /* inside an over-long line: drop up to its newline */
};

static int cursor_attach(struct cb_audit_cursor *c, bool at_end)
{
    struct stat st;
    c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(c->fd, &st) < 0 || (at_end && lseek(c->fd, 0, SEEK_END) < 0))
        return -errno;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->len = 0;
    c->skipping = false;
    return 0;
}

int cb_audit_cursor_open(const char *dir, struct cb_audit_cursor **out, struct cb_error *err)
{
    struct cb_audit_cursor *c = cb_xcalloc(1, sizeof(*c));
    c->path = cb_xasprintf("%s/%s", dir, CB_AUDIT_FILE);
    c->buf = cb_xmalloc(CURSOR_CAP);
    int r = cursor_attach(c, true);
    if (r < 0) {
        cb_error_set(err, r, "audit log: opening %s: %s", c->path, strerror(-r));
        cb_audit_cursor_close(c);
        return r;
    }
    *out = c;
    return 0;
}

void cb_audit_cursor_close(struct cb_audit_cursor *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->path);
    free(c);
}

/* Hands out the complete lines in the buffer; false when fn asked to stop. */
static bool deliver(struct cb_audit_cursor *c, cb_audit_line_fn fn, void *ctx, int *count)
{
    size_t start = 0;
    bool go = true;
    char *nl;
    while (go && (nl = memchr(c->buf + start, '\n', c->len - start)) != NULL) {
        size_t len = (size_t)(nl - (c->buf + start));
        if (!c->skipping) {
            go = fn(c->buf + start, len, ctx) == 0;
            (*count)++;
        }
        c->skipping = false;
        start += len + 1;
    }
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
    return go;
}

/* Reads the attached file to its current end, delivering lines. */
static int drain(struct cb_audit_cursor *c, cb_audit_line_fn fn, void *ctx, int *count)
{
    while (deliver(c, fn, ctx, count)) {
        if (c->len == CURSOR_CAP) {
            c->len = 0;
            c->skipping = true;
        }
        ssize_t n = cb_read_retry(c->fd, c->buf + c->len, CURSOR_CAP - c->len);
        if (n <= 0)
            return (int)n;
        c->len += (size_t)n;
    }
    return 1; /* stopped by fn */
}

/* After a rotation the old file gets no more lines: finish it, then move
 * to the new audit.jsonl from its start. */
static int cursor_follow_rotation(struct cb_audit_cursor *c, cb_audit_line_fn fn, void *ctx,
                                  int *count)
{
    struct stat st;
    if (stat(c->path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (c->fd >= 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        return 0;
    if (c->fd >= 0) {
        int r = drain(c, fn, ctx, count);
        if (r != 0)
            return r;
        close(c->fd);
    }
    int r = cursor_attach(c, false);
    return r < 0 ? r : c->fd >= 0 ? drain(c, fn, ctx, count) : 0;
}

int cb_audit_cursor_poll(struct cb_audit_cursor *c, cb_audit_line_fn fn, void *ctx,
                         struct cb_error *err)
{
    int count = 0;
    int r = c->fd >= 0 ? drain(c, fn, ctx, &count) : 0;
    if (r == 0)
        r = cursor_follow_rotation(c, fn, ctx, &count);
    if (r < 0)
        return cb_error_set(err, r, "audit log: following %s: %s", c->path, strerror(-r));
    return count;
}
