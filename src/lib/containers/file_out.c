/* A file read out of a container (GET /containers/{id}/files), sent as a
 * stream without ever being held in memory whole.
 *
 * The file is first copied to an unlinked file in the data directory, so
 * that what is checked is what is sent: the container may rewrite its file
 * while it goes out. The copy tells whether the file is all UTF-8. Text
 * goes out through the line redactor that container output goes through
 * (logs.c); anything else goes out as it is, once a scan of the copy, in
 * overlapping windows, found no secret and no credential in it (such a
 * file cannot be redacted, so it is refused). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "containers/internal.h"
#include "core/fs.h"
#include "core/utf8.h"
#include "core/util.h"
#include "proxy/pipeline.h"
#include "scan/leak.h"

#define OUT_COPY_CHUNK 65536u
/* Scan windows: an overlap of twice the longest secret means every
 * secret, in every form no longer than that, lies whole in one window. */
#define SCAN_WINDOW  (1u << 20)
#define SCAN_OVERLAP (2u * CB_LEAK_MAX_SECRET_LEN)
_Static_assert(SCAN_WINDOW > 2 * SCAN_OVERLAP, "windows advance");

struct cb_ct_file {
    struct cb_ct_manager *m;
    int fd; /* the copy */
    uint64_t len, off;
    bool text;
    bool done; /* text: all of it redacted and handed out */
    struct cb__ct_lines lines;
};

/* Copies src into f->fd, at most max bytes, and finds whether it is all
 * UTF-8: a character cut by a chunk's end is carried to the next chunk. */
static int copy_in(struct cb_ct_file *f, int src, uint64_t max, struct cb_error *err)
{
    char *buf = cb_xmalloc(4 + OUT_COPY_CHUNK);
    size_t carry = 0;
    bool utf8 = true;
    int rc = 0;
    for (;;) {
        ssize_t k = cb_read_retry(src, buf + carry, OUT_COPY_CHUNK);
        if (k <= 0) {
            rc = k < 0 ? cb_error_set(err, (int)k, "reading: %s", strerror((int)-k)) : 0;
            break;
        }
        if (f->len + (uint64_t)k > max) {
            rc = cb_error_set(err, -EFBIG, "path: the file grew past [containers] max_file_bytes");
            break;
        }
        if ((rc = cb_write_all(f->fd, buf + carry, (size_t)k)) < 0) {
            rc = cb_error_set(err, rc, "copying the file: %s", strerror(-rc));
            break;
        }
        f->len += (uint64_t)k;
        size_t have = carry + (size_t)k;
        size_t valid = utf8 ? cb_utf8_valid_len(buf, have) : 0;
        utf8 = utf8 && have - valid <= 3;
        carry = utf8 ? have - valid : 0;
        memmove(buf, buf + valid, carry);
    }
    explicit_bzero(buf, 4 + OUT_COPY_CHUNK);
    free(buf);
    f->text = utf8 && carry == 0;
    return rc;
}

/* For a file that is not text: -EACCES when it holds a secret. */
static int scan_binary(struct cb_ct_file *f, struct cb_error *err)
{
    struct cb_leak_scanner *sc = f->m->proxy ? cb_proxy_scanner_get(f->m->proxy) : NULL;
    if (sc == NULL)
        return 0;
    char *buf = cb_xmalloc(SCAN_WINDOW);
    int rc = 0, found = 0;
    for (uint64_t off = 0; rc == 0 && found == 0 && off < f->len;
         off += SCAN_WINDOW - SCAN_OVERLAP) {
        size_t n = f->len - off < SCAN_WINDOW ? (size_t)(f->len - off) : SCAN_WINDOW;
        struct cb_leak_report rep;
        if ((rc = cb_pread_all(f->fd, buf, n, (off_t)off)) < 0)
            rc = cb_error_set(err, rc, "reading the copy: %s", strerror(-rc));
        else
            found = cb_leak_scan(sc, buf, n, &rep, err);
        if (off + n == f->len)
            break;
    }
    explicit_bzero(buf, SCAN_WINDOW);
    free(buf);
    cb_leak_scanner_free(sc);
    if (rc == 0 && found != 0)
        rc = cb_error_set(err, -EACCES,
                          "path: the file holds a secret or a credential and is not text, so it "
                          "cannot be redacted");
    return rc;
}

int cb__ct_file_take(struct cb_ct_manager *m, int src, uint64_t max, struct cb_ct_file **out,
                     struct cb_error *err)
{
    struct cb_ct_file *f = cb_xcalloc(1, sizeof(*f));
    f->m = m;
    cb__ct_lines_init(&f->lines, m);
    f->fd = cb_tmpfile(m->cfg->server.data_dir, err);
    int rc = f->fd < 0 ? f->fd : copy_in(f, src, max, err);
    if (rc == 0 && !f->text)
        rc = scan_binary(f, err);
    if (rc < 0) {
        cb_ct_file_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

bool cb_ct_file_text(const struct cb_ct_file *f)
{
    return f->text;
}

/* Text: redacts what the copy holds next, a hold at a time, until some of
 * it is ready (or all of it was). */
static int pull_text(struct cb_ct_file *f)
{
    struct cb__ct_lines *l = &f->lines;
    while (cb__ct_lines_ready(l, NULL) == 0 && !f->done) {
        size_t room = CB__CT_LINES_HOLD - l->hold_len;
        size_t want = f->len - f->off < room ? (size_t)(f->len - f->off) : room;
        int rc = want > 0 ? cb_pread_all(f->fd, l->hold + l->hold_len, want, (off_t)f->off) : 0;
        if (rc < 0)
            return rc;
        f->off += want;
        l->hold_len += want;
        bool final = f->off == f->len;
        cb__ct_lines_release(l, final);
        f->done = final && l->hold_len == 0;
    }
    return 0;
}

int cb_ct_file_read(struct cb_ct_file *f, char *out, size_t room, size_t *n)
{
    *n = 0;
    if (!f->text) {
        size_t want = f->len - f->off < room ? (size_t)(f->len - f->off) : room;
        int rc = want > 0 ? cb_pread_all(f->fd, out, want, (off_t)f->off) : 0;
        if (rc < 0)
            return rc;
        f->off += want;
        *n = want;
        return f->off == f->len;
    }
    int rc = pull_text(f);
    if (rc < 0)
        return rc;
    const char *text = NULL;
    size_t have = cb__ct_lines_ready(&f->lines, &text);
    *n = have < room ? have : room;
    if (*n > 0)
        memcpy(out, text, *n);
    f->lines.ready_off += *n;
    return f->done && *n == have;
}

void cb_ct_file_free(struct cb_ct_file *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    cb__ct_lines_clear(&f->lines);
    free(f);
}
