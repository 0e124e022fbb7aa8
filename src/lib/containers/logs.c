/* Container output for GET /containers/{id}/logs: redaction of log text
 * and the follower behind ?follow=1, which hands out the log as it grows.
 *
 * Redaction is by lines. The scanner (scan/leak.h) sees a whole text at
 * once, and a secret the container prints in two writes can reach the log
 * in two reads; so the follower only redacts and hands out text up to the
 * last line end it has read, and keeps the unfinished line until its end
 * arrives. Lines, rather than an overlap window of the longest secret, because
 * the scanner rewrites what it finds ("[REDACTED]" is not as long as a
 * secret in any of its forms), so a window's bytes cannot be mapped back
 * to what was already sent; and a secret, a token or a key header never
 * spans a line end, while every credential pattern is line-bound. A line
 * longer than HOLD_MAX is cut at its last blank, else at HOLD_MAX; a stored
 * secret cut there is still caught by the fragment rule (any run of
 * CB_LEAK_MIN_FRAGMENT of its characters) on each side that holds that
 * much of it, a credential pattern cut there may be missed. The rest of
 * the log goes when the container has ended. */
#include "containers/internal.h"
#include "core/json.h"
#include "core/util.h"
#include "proxy/pipeline.h"
#include "scan/leak.h"
#include "scan/sanitize.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The longest unfinished line kept back: twice the longest secret. */
#define HOLD_MAX (2u * CB_LEAK_MAX_SECRET_LEN)

json_t *cb__ct_redact_text(struct cb_ct_manager *m, const char *data, size_t len)
{
    struct cb_leak_scanner *sc = m->proxy ? cb_proxy_scanner_get(m->proxy) : NULL;
    struct cb_error err = {0};
    json_t *out = NULL, *report = NULL;
    json_t *text = cb_json_text(data, len);
    int r = cb_sanitize_output(sc, text, &out, &report, &err);
    json_decref(text);
    json_decref(report);
    cb_leak_scanner_free(sc);
    if (r == 0 && json_is_string(out))
        return out;
    json_decref(out);
    return json_string(CB_LEAK_REDACTED);
}

size_t cb__ct_tail_start(const char *data, size_t len, size_t tail)
{
    size_t lines = 0;
    for (size_t i = len; tail > 0 && i > 0; i--)
        if (data[i - 1] == '\n' && i != len && ++lines == tail)
            return i;
    return 0;
}

struct cb_ct_follow {
    struct cb_ct_manager *m;
    char id[CB__CT_ID_MAX];
    char *path; /* output.log */
    int fd;     /* -1 until the log exists */
    off_t offset;
    bool done; /* everything was read and redacted */
    size_t hold_len;
    char hold[HOLD_MAX]; /* read, not yet redacted: the unfinished line */
    json_t *ready;       /* redacted, being handed out */
    size_t ready_off;
};

static int open_log(struct cb_ct_follow *f)
{
    if (f->fd < 0)
        f->fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    return f->fd;
}

/* Where the last `tail` lines of the log start now (0 = all of it). The
 * monitor caps the log; the bound here only guards against a file that is
 * not its. */
static void seek_tail(struct cb_ct_follow *f, size_t tail, size_t max)
{
    struct stat st;
    if (tail == 0 || open_log(f) < 0 || fstat(f->fd, &st) < 0 || st.st_size <= 0)
        return;
    size_t len = (size_t)st.st_size < max ? (size_t)st.st_size : max;
    char *data = cb_xmalloc(len);
    ssize_t k = pread(f->fd, data, len, 0);
    if (k > 0)
        f->offset = (off_t)cb__ct_tail_start(data, (size_t)k, tail);
    free(data);
}

struct cb_ct_follow *cb__ct_follow_new(struct cb_ct_manager *m, const char *id, const char *dir,
                                       size_t tail)
{
    struct cb_ct_follow *f = cb_xcalloc(1, sizeof(*f));
    f->m = m;
    snprintf(f->id, sizeof(f->id), "%s", id);
    f->path = dir ? cb_xasprintf("%s/output.log", dir) : NULL;
    f->fd = -1;
    f->done = dir == NULL;
    if (dir)
        seek_tail(f, tail, m->cfg->containers.max_output_bytes + 1);
    return f;
}

void cb_ct_follow_free(struct cb_ct_follow *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    json_decref(f->ready);
    free(f->path);
    explicit_bzero(f->hold, f->hold_len);
    free(f);
}

/* How much of the held text may be redacted and handed out now: up to the
 * last line end, or, for a line longer than HOLD_MAX, up to its last blank
 * in the second half, else all of it. */
static size_t cut_point(const char *s, size_t len)
{
    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == '\n' || s[i - 1] == '\r')
            return i;
    if (len < HOLD_MAX)
        return 0;
    for (size_t i = len; i > len / 2; i--)
        if (s[i - 1] == ' ' || s[i - 1] == '\t')
            return i;
    return len;
}

/* Redacts the first n held bytes into f->ready. */
static void release(struct cb_ct_follow *f, size_t n)
{
    json_decref(f->ready);
    f->ready = cb__ct_redact_text(f->m, f->hold, n);
    f->ready_off = 0;
    memmove(f->hold, f->hold + n, f->hold_len - n);
    explicit_bzero(f->hold + f->hold_len - n, n);
    f->hold_len -= n;
}

/* Reads what the log gained. The container's state is looked at before
 * the read: when it had ended then, the read reached the log's final end. */
static int pull(struct cb_ct_follow *f)
{
    bool over = cb__ct_output_final(f->m, f->id);
    ssize_t k = 0;
    if (open_log(f) >= 0) {
        k = pread(f->fd, f->hold + f->hold_len, HOLD_MAX - f->hold_len, f->offset);
        if (k < 0)
            return errno == EINTR ? 0 : -errno;
        f->offset += k;
        f->hold_len += (size_t)k;
    }
    size_t cut = over && k == 0 ? f->hold_len : cut_point(f->hold, f->hold_len);
    if (cut > 0)
        release(f, cut);
    f->done = over && k == 0 && f->hold_len == 0;
    return 0;
}

int cb_ct_follow_read(struct cb_ct_follow *f, char *out, size_t room, size_t *n)
{
    *n = 0;
    size_t have = f->ready ? json_string_length(f->ready) - f->ready_off : 0;
    if (have == 0 && !f->done) {
        if (pull(f) < 0)
            return -EIO;
        have = f->ready ? json_string_length(f->ready) - f->ready_off : 0;
    }
    *n = have < room ? have : room;
    if (*n > 0)
        memcpy(out, json_string_value(f->ready) + f->ready_off, *n);
    if (f->ready)
        f->ready_off += *n;
    return f->done && *n == have;
}
