/* The audit log's files on disk: which exist and in what order, a bounded
 * line reader, and finding the last line without reading the whole file. */
#include "audit/internal.h"

#include "core/fs.h"
#include "core/line.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROTATED_PREFIX "audit."
#define ROTATED_SUFFIX ".jsonl"
#define TAIL_WINDOW    (2 * (CB_AUDIT_MAX_LINE + 1)) /* read to find the last line */

/* Parses "audit.<digits>.jsonl"; returns the sequence number or 0. */
static uint64_t rotated_seq(const char *name)
{
    size_t n = strlen(name), pl = strlen(ROTATED_PREFIX), sl = strlen(ROTATED_SUFFIX);
    uint64_t seq = 0;
    if (n <= pl + sl || strncmp(name, ROTATED_PREFIX, pl) != 0 ||
        strcmp(name + n - sl, ROTATED_SUFFIX) != 0)
        return 0;
    if (cb_parse_u64(name + pl, n - pl - sl, &seq) < 0)
        return 0;
    return seq;
}

static int cmp_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void add_seq(struct cb__audit_files *f, uint64_t seq, size_t *cap)
{
    if (f->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        f->seqs = cb_xrealloc(f->seqs, *cap * sizeof(*f->seqs));
    }
    f->seqs[f->n++] = seq;
    if (seq > f->max_seq)
        f->max_seq = seq;
}

int cb__audit_list(const char *dir, struct cb__audit_files *out, struct cb_error *err)
{
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(dir);
    if (d == NULL)
        return cb_error_set(err, -errno, "audit directory %s: %s", dir, strerror(errno));
    size_t cap = 0;
    bool current = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t seq = rotated_seq(e->d_name);
        if (seq > 0)
            add_seq(out, seq, &cap);
        current = current || strcmp(e->d_name, CB_AUDIT_FILE) == 0;
    }
    closedir(d);
    if (out->n > 0) /* qsort of a NULL array is undefined even with 0 items */
        qsort(out->seqs, out->n, sizeof(*out->seqs), cmp_seq);
    if (current)
        add_seq(out, 0, &cap);
    out->names = cb_xcalloc(out->n ? out->n : 1, sizeof(char *));
    for (size_t i = 0; i < out->n; i++)
        out->names[i] = out->seqs[i]
                            ? cb_xasprintf("%s/audit.%0*llu.jsonl", dir, CB__AUDIT_SEQ_WIDTH,
                                           (unsigned long long)out->seqs[i])
                            : cb_xasprintf("%s/%s", dir, CB_AUDIT_FILE);
    return 0;
}

void cb__audit_files_free(struct cb__audit_files *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->names[i]);
    free(f->names);
    free(f->seqs);
    memset(f, 0, sizeof(*f));
}

/* Start of the line ending just before `end` in buf[0..end); -1 when the
 * window holds no newline before it. */
static ssize_t line_start(const char *buf, size_t end)
{
    for (size_t i = end; i > 0; i--)
        if (buf[i - 1] == '\n')
            return (ssize_t)i;
    return -1;
}

uint64_t cb__audit_line_seq(const char *line, size_t len)
{
    json_t *o = json_loadb(line, len, 0, NULL);
    json_t *v = json_object_get(o, "seq");
    uint64_t seq =
        json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    json_decref(o);
    return seq;
}

int cb__audit_last_line(int fd, off_t size, struct cb__audit_tail *out, struct cb_error *err)
{
    size_t win = size < (off_t)TAIL_WINDOW ? (size_t)size : TAIL_WINDOW;
    char *buf = cb_xmalloc(win ? win : 1);
    int r = cb_pread_all(fd, buf, win, size - (off_t)win);
    memset(out, 0, sizeof(*out));
    if (r < 0) {
        free(buf);
        return cb_error_set(err, r, "reading the end of the audit log: %s", strerror(-r));
    }
    /* Bytes after the last newline were never acknowledged. */
    ssize_t tail = line_start(buf, win);
    size_t end = tail < 0 ? 0 : (size_t)tail;
    out->partial = win - end;
    if (tail < 0 && (off_t)win < size)
        r = cb_error_set(err, -EBADMSG, "audit log ends with %zu bytes and no newline", win);
    if (r == 0 && end > 0) {
        ssize_t start = line_start(buf, end - 1);
        if (start < 0 && (off_t)win < size)
            r = cb_error_set(err, -EBADMSG, "last audit line is longer than %d bytes",
                             CB_AUDIT_MAX_LINE);
        size_t s = start < 0 ? 0 : (size_t)start;
        if (r == 0 && end - 1 - s > CB_AUDIT_MAX_LINE)
            r = cb_error_set(err, -EBADMSG, "last audit line is longer than %d bytes",
                             CB_AUDIT_MAX_LINE);
        if (r == 0) {
            cb__audit_hash(buf + s, end - 1 - s, out->hash);
            out->seq = cb__audit_line_seq(buf + s, end - 1 - s);
            out->found = true;
        }
    }
    free(buf);
    return r;
}

int cb__audit_each_line(const char *file, cb_audit_line_fn fn, void *ctx, struct cb_error *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cb_error_set(err, -errno, "audit log: opening %s: %s", file, strerror(errno));
    struct cb_line_reader rd;
    const char *line;
    size_t len;
    int k;
    cb_line_reader_init(&rd, fd, CB_AUDIT_MAX_LINE);
    while ((k = cb_line_reader_next(&rd, &line, &len)) != CB_LINE_EOF) {
        if (k == CB_LINE_OK && fn(line, len, ctx) != 0)
            break;
        if (k < 0 && k != CB_LINE_TOO_LONG && k != CB_LINE_PARTIAL)
            break;
    }
    cb_line_reader_free(&rd);
    close(fd);
    if (k < 0 && k != CB_LINE_TOO_LONG && k != CB_LINE_PARTIAL)
        return cb_error_set(err, k, "audit log: reading %s: %s", file, strerror(-k));
    return 0;
}

static int count_one(const char *line, size_t len, void *ctx)
{
    (void)line;
    (void)len;
    ++*(uint64_t *)ctx;
    return 0;
}

int cb__audit_count_lines(const char *dir, uint64_t *lines, struct cb_error *err)
{
    struct cb__audit_files files;
    int r = cb__audit_list(dir, &files, err);
    *lines = 0;
    for (size_t i = 0; r == 0 && i < files.n; i++)
        r = cb__audit_each_line(files.names[i], count_one, lines, err);
    cb__audit_files_free(&files);
    return r;
}
