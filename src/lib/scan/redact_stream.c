/* Streamed redaction: see redact_stream.h for where a stream is cut. */
#include "scan/redact_stream.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How far back each try for a clean cut moves, and how many are made. */
#define RS_CUT_STEP  4096u
#define RS_CUT_TRIES 8u

/* The hold is allocated as it fills, from this size: most bodies are
 * small. */
#define RS_FIRST_ALLOC 4096u

struct cb_redact_stream {
    const struct cb_leak_scanner *sc;
    size_t cap, len, alloc;
    char *hold;
    bool block;        /* scan and fail on a finding, never redact */
    const char *found; /* a blocking stream's finding */
    bool found_any;
};

/* A redaction kept with its length; wiped when dropped (it may hold the
 * raw text of a piece that was not cut cleanly). */
struct rs_piece {
    char *p;
    size_t len;
};

static void rs_piece_drop(struct rs_piece *x)
{
    if (x->p != NULL)
        explicit_bzero(x->p, x->len);
    free(x->p);
    *x = (struct rs_piece){0};
}

static int rs_redact(const struct cb_redact_stream *rs, const char *s, size_t len,
                     struct rs_piece *out)
{
    struct cb_error e = {0};
    return cb_leak_redact(rs->sc, s, len, &out->p, &out->len, NULL, &e);
}

struct cb_redact_stream *cb_redact_stream_new(const struct cb_leak_scanner *sc, size_t hold)
{
    struct cb_redact_stream *rs = cb_xcalloc(1, sizeof(*rs));
    rs->sc = sc;
    rs->cap = hold < 4 * CB_REDACT_STREAM_LOOK ? 4 * CB_REDACT_STREAM_LOOK : hold;
    return rs;
}

struct cb_redact_stream *cb_scan_stream_new(const struct cb_leak_scanner *sc, size_t hold)
{
    struct cb_redact_stream *rs = cb_redact_stream_new(sc, hold);
    rs->block = true;
    return rs;
}

const char *cb_scan_stream_found(const struct cb_redact_stream *rs)
{
    return rs->found;
}

void cb_redact_stream_free(struct cb_redact_stream *rs)
{
    if (rs == NULL)
        return;
    if (rs->hold != NULL)
        explicit_bzero(rs->hold, rs->len);
    free(rs->hold);
    free(rs);
}

/* Sends data[0..n) and drops the first `used` held bytes. */
static int rs_emit(struct cb_redact_stream *rs, const char *data, size_t n, size_t used,
                   cb_redact_out_fn out, void *ud)
{
    int r = n > 0 ? out(ud, data, n) : 0;
    memmove(rs->hold, rs->hold + used, rs->len - used);
    explicit_bzero(rs->hold + rs->len - used, used);
    rs->len -= used;
    return r;
}

/* A cut at most at `hi` and above lo: after the last line end in
 * (lo, hi], else after the last blank or delimiter, else hi itself. */
static size_t rs_pick_cut(const char *s, size_t lo, size_t hi)
{
    for (size_t i = hi; i > lo; i--)
        if (s[i - 1] == '\n')
            return i;
    for (size_t i = hi; i > lo; i--)
        if (strchr(" \t\r,;\"'<>", s[i - 1]) != NULL && s[i - 1] != '\0')
            return i;
    return hi;
}

/* Whether a ++ b is exactly w. */
static bool rs_joins(const struct rs_piece *a, const struct rs_piece *b, const struct rs_piece *w)
{
    return a->len + b->len == w->len && memcmp(w->p, a->p, a->len) == 0 &&
           memcmp(w->p + a->len, b->p, b->len) == 0;
}

/* Whether the first len held bytes are clean; a blocking stream keeps
 * what it found. */
static bool rs_clean(struct cb_redact_stream *rs, size_t len)
{
    struct cb_leak_report rep;
    struct cb_error e = {0};
    int r = cb_leak_scan(rs->sc, rs->hold, len, &rep, &e);
    if (r != 0 && rs->block && !rs->found_any) {
        rs->found_any = true;
        rs->found = r > 0 && rep.n > 0 ? rep.findings[0].name : NULL;
    }
    return r == 0;
}

/* The hold is full: sends a clean prefix of it (see redact_stream.h). */
static int rs_release(struct cb_redact_stream *rs, cb_redact_out_fn out, void *ud)
{
    size_t hi = rs->len - CB_REDACT_STREAM_LOOK;
    if (rs_clean(rs, rs->len))
        return rs_emit(rs, rs->hold, hi, hi, out, ud);
    if (rs->block)
        return -EACCES;
    struct rs_piece whole = {0};
    int r = rs_redact(rs, rs->hold, rs->len, &whole);
    for (unsigned t = 0; r == 0 && t < RS_CUT_TRIES && hi > RS_CUT_STEP; t++, hi -= RS_CUT_STEP) {
        size_t c = rs_pick_cut(rs->hold, hi - RS_CUT_STEP, hi);
        struct rs_piece a = {0}, b = {0};
        r = rs_redact(rs, rs->hold, c, &a);
        if (r == 0 && a.len <= whole.len && memcmp(whole.p, a.p, a.len) == 0)
            r = rs_redact(rs, rs->hold + c, rs->len - c, &b);
        bool clean = r == 0 && b.p != NULL && rs_joins(&a, &b, &whole);
        if (clean)
            r = rs_emit(rs, a.p, a.len, c, out, ud);
        rs_piece_drop(&a);
        rs_piece_drop(&b);
        if (clean) {
            rs_piece_drop(&whole);
            return r;
        }
    }
    rs_piece_drop(&whole);
    return r < 0 ? r : -EACCES;
}

/* Room for `want` held bytes (at most the cap), moved to a larger
 * block with the old one wiped. */
static void rs_reserve(struct cb_redact_stream *rs, size_t want)
{
    if (want <= rs->alloc)
        return;
    size_t a = rs->alloc ? rs->alloc : RS_FIRST_ALLOC;
    while (a < want)
        a *= 2;
    a = a < rs->cap ? a : rs->cap;
    char *p = cb_xmalloc(a);
    if (rs->len > 0) {
        memcpy(p, rs->hold, rs->len);
        explicit_bzero(rs->hold, rs->len);
    }
    free(rs->hold);
    rs->hold = p;
    rs->alloc = a;
}

int cb_redact_stream_write(struct cb_redact_stream *rs, const char *data, size_t len,
                           cb_redact_out_fn out, void *ud)
{
    while (len > 0) {
        size_t take = rs->cap - rs->len < len ? rs->cap - rs->len : len;
        rs_reserve(rs, rs->len + take);
        memcpy(rs->hold + rs->len, data, take);
        rs->len += take;
        data += take;
        len -= take;
        if (rs->len == rs->cap) {
            int r = rs_release(rs, out, ud);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int cb_redact_stream_finish(struct cb_redact_stream *rs, cb_redact_out_fn out, void *ud)
{
    if (rs->len == 0)
        return 0;
    if (rs->block)
        return rs_clean(rs, rs->len) ? rs_emit(rs, rs->hold, rs->len, rs->len, out, ud) : -EACCES;
    struct rs_piece all = {0};
    int r = rs_redact(rs, rs->hold, rs->len, &all);
    if (r == 0)
        r = rs_emit(rs, all.p, all.len, rs->len, out, ud);
    rs_piece_drop(&all);
    return r;
}
