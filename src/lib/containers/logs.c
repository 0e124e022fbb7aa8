/* Container output for GET /containers/{id}/logs: redaction of log text
 * and the follower behind ?follow=1, which hands out the log as it grows,
 * through the line redactor (struct cb__ct_lines) that a streamed exec's
 * output goes through too.
 *
 * The scanner (scan/leak.h) sees a whole text at once, and a secret the
 * container prints in two writes can reach the log in two reads. Two
 * measures keep such a secret from going out unredacted:
 *
 *   - Lines: the follower only redacts and hands out text up to the last
 *     line end it has read, and keeps the unfinished line until its end
 *     arrives. A secret, a token or a `key=value` pair does not span a
 *     line end. A line longer than HOLD_MAX is cut at its last blank, else
 *     at HOLD_MAX; a stored secret cut there is still caught by the
 *     fragment rule (any run of CB_LEAK_MIN_FRAGMENT of its characters) on
 *     each side that holds that much of it, a credential pattern cut there
 *     may be missed.
 *   - Context, for the patterns that do span lines (a PEM private key
 *     block, an AWS key id followed by its secret): the new lines are
 *     redacted together with the last CTX_MAX bytes handed out before
 *     them, and of that redaction only what follows the redaction of the
 *     context alone goes out. A match that started in the context thus
 *     still covers its continuation. Should the two redactions differ
 *     inside the context (a match that reaches back into it), what goes
 *     out starts where they differ: that text is sent again, redacted;
 *     the part of the match already sent went out as its own lines were
 *     redacted then.
 *
 * Not an overlap window over the raw bytes alone, because the scanner
 * rewrites what it finds ("[REDACTED]" is not as long as a secret in any
 * of its forms), so a window's raw bytes cannot be mapped to what was
 * already sent; comparing the two redactions does that mapping. The rest
 * of the log goes when the container has ended. */
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

#define HOLD_MAX CB__CT_LINES_HOLD
#define CTX_MAX  CB__CT_LINES_CTX
_Static_assert(CB__CT_LINES_HOLD >= 2u * CB_LEAK_MAX_SECRET_LEN, "hold twice the longest secret");
_Static_assert(CB__CT_LINES_CTX >= CB_LEAK_MAX_SECRET_LEN, "context of the longest secret");

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
    struct cb__ct_lines lines;
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
    cb__ct_lines_init(&f->lines, m);
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
    cb__ct_lines_clear(&f->lines);
    free(f->path);
    free(f);
}

/* len, or where the character that s[0..len) ends in the middle of
 * starts: a cut there never splits one (whose halves would each be
 * redacted as invalid text). */
static size_t whole_chars(const char *s, size_t len)
{
    size_t lead = len;
    while (lead > 0 && len - lead < 3 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead == 0)
        return len;
    unsigned char c = (unsigned char)s[lead - 1];
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len - (lead - 1) < need ? lead - 1 : len;
}

/* How much of the held text may be redacted and handed out now: up to the
 * last line end, or, for a line longer than HOLD_MAX, up to its last blank
 * in the second half, else all of it but a character it ends inside. */
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
    size_t whole = whole_chars(s, len);
    return whole > 0 ? whole : len;
}

/* How many leading bytes two texts share, backed off to the start of a
 * UTF-8 character. */
static size_t common_prefix(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0;
    while (i < alen && i < blen && a[i] == b[i])
        i++;
    while (i > 0 && i < alen && ((unsigned char)a[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/* Keeps the end of text (what was just handed out) as the next context,
 * from a line start where there is one. */
static void keep_context(struct cb__ct_lines *f, const char *text, size_t len)
{
    size_t from = len > CTX_MAX ? len - CTX_MAX : 0;
    const char *nl = from > 0 ? memchr(text + from, '\n', len - from) : NULL;
    if (nl != NULL && nl + 1 < text + len)
        from = (size_t)(nl + 1 - text);
    explicit_bzero(f->ctx, f->ctx_len);
    f->ctx_len = len - from;
    memcpy(f->ctx, text + from, f->ctx_len);
}

/* Redacts the first n held bytes, with the context, into f->ready (see
 * the top of this file). */
static void release_lines(struct cb__ct_lines *f, size_t n)
{
    size_t len = f->ctx_len + n;
    char *text = cb_xmalloc(len);
    memcpy(text, f->ctx, f->ctx_len);
    memcpy(text + f->ctx_len, f->hold, n);
    json_t *full = cb__ct_redact_text(f->m, text, len);
    size_t skip = 0;
    if (f->ctx_len > 0) {
        json_t *seen = cb__ct_redact_text(f->m, f->ctx, f->ctx_len);
        skip = common_prefix(json_string_value(full), json_string_length(full),
                             json_string_value(seen), json_string_length(seen));
        json_decref(seen);
    }
    json_decref(f->ready);
    f->ready = full;
    f->ready_off = skip;
    keep_context(f, text, len);
    explicit_bzero(text, len);
    free(text);
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
        struct cb__ct_lines *l = &f->lines;
        k = pread(f->fd, l->hold + l->hold_len, HOLD_MAX - l->hold_len, f->offset);
        if (k < 0)
            return errno == EINTR ? 0 : -errno;
        f->offset += k;
        l->hold_len += (size_t)k;
    }
    cb__ct_lines_release(&f->lines, over && k == 0);
    f->done = over && k == 0 && f->lines.hold_len == 0;
    return 0;
}

int cb_ct_follow_read(struct cb_ct_follow *f, char *out, size_t room, size_t *n)
{
    *n = 0;
    struct cb__ct_lines *l = &f->lines;
    size_t have = cb__ct_lines_ready(l, NULL);
    if (have == 0 && !f->done) {
        if (pull(f) < 0)
            return -EIO;
        have = cb__ct_lines_ready(l, NULL);
    }
    const char *text = NULL;
    cb__ct_lines_ready(l, &text);
    *n = have < room ? have : room;
    if (*n > 0)
        memcpy(out, text, *n);
    l->ready_off += *n;
    return f->done && *n == have;
}

/* ---- the line redactor ---- */

void cb__ct_lines_init(struct cb__ct_lines *l, struct cb_ct_manager *m)
{
    l->m = m;
    l->hold_len = l->ctx_len = l->ready_off = 0;
    l->ready = NULL;
}

void cb__ct_lines_clear(struct cb__ct_lines *l)
{
    json_decref(l->ready);
    l->ready = NULL;
    explicit_bzero(l->hold, l->hold_len);
    explicit_bzero(l->ctx, l->ctx_len);
    l->hold_len = l->ctx_len = 0;
}

void cb__ct_lines_release(struct cb__ct_lines *l, bool final)
{
    size_t cut = final ? l->hold_len : cut_point(l->hold, l->hold_len);
    if (cut > 0)
        release_lines(l, cut);
}

size_t cb__ct_lines_ready(const struct cb__ct_lines *l, const char **text)
{
    if (l->ready == NULL)
        return 0;
    if (text != NULL)
        *text = json_string_value(l->ready) + l->ready_off;
    return json_string_length(l->ready) - l->ready_off;
}
