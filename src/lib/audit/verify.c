/* cb_audit_verify_anchored: walks the chain over every file, oldest first, and stops
 * at the first line that does not check out; with an anchor, also checks
 * that the log reaches it. */
#include "audit/audit.h"
#include "audit/internal.h"

#include "core/line.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct walk {
    struct cb_audit_verify_report *rep;
    char expect[CB_AUDIT_HASH_HEX + 1];
    char prev_file[512];
    uint64_t prev_line;
    const struct cb_state_anchor *anchor; /* NULL: none */
    const char *anchor_db;
};

static int broken(struct walk *w, const char *file, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int broken(struct walk *w, const char *file, uint64_t line, const char *fmt, ...)
{
    va_list ap;
    w->rep->ok = false;
    snprintf(w->rep->file, sizeof(w->rep->file), "%s", file);
    w->rep->line = line;
    va_start(ap, fmt);
    vsnprintf(w->rep->reason, sizeof(w->rep->reason), fmt, ap);
    va_end(ap);
    return CB_AUDIT_E_BROKEN;
}

static bool is_hash(const char *s)
{
    return strlen(s) == CB_AUDIT_HASH_HEX && cb_hex_is_lower(s, CB_AUDIT_HASH_HEX);
}

/* A line's "seq", when it has one, is its position in the chain; a line
 * of kind "audit" with decision "truncated" records lines cut before it. */
static int check_seq_and_kind(struct walk *w, const char *file, uint64_t n, json_t *o)
{
    json_t *seq = json_object_get(o, "seq");
    uint64_t at = w->rep->lines + 1;
    if (seq != NULL && !json_is_integer(seq))
        return broken(w, file, n, "\"seq\" is not a number");
    if (seq != NULL && json_integer_value(seq) != (json_int_t)at)
        return broken(w, file, n,
                      "\"seq\" is %lld, but this is line %llu of the chain: lines were removed, "
                      "inserted or reordered before it",
                      (long long)json_integer_value(seq), (unsigned long long)at);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *decision = json_string_value(json_object_get(o, "decision"));
    if (kind == NULL || strcmp(kind, "audit") != 0 || decision == NULL ||
        strcmp(decision, "truncated") != 0)
        return 0;
    json_t *missing = json_object_get(o, "missing");
    const char *reason = json_string_value(json_object_get(o, "reason"));
    w->rep->missing = json_is_integer(missing) && json_integer_value(missing) > 0
                          ? (uint64_t)json_integer_value(missing)
                          : 0;
    return broken(w, file, n, "a writer found the log cut and recorded it here: %s",
                  reason ? reason : "(no reason)");
}

/* Checks one line against the chain: a JSON object whose "prev" is the
 * hash of the line before. */
static int check_line(struct walk *w, const char *file, uint64_t n, const char *line, size_t len)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return broken(w, file, n, "not a JSON object (%s)", o ? "another JSON value" : je.text);
    }
    const char *prev = json_string_value(json_object_get(o, "prev"));
    int r = 0;
    if (prev == NULL || !is_hash(prev))
        r = broken(w, file, n, "missing or malformed \"prev\" (want 64 lowercase hex digits)");
    else if (strcmp(prev, w->expect) != 0 && w->rep->lines == 0)
        r = broken(w, file, n,
                   "the first line does not start a chain (\"prev\" is not 64 zeros): older "
                   "files are missing, or this line was altered");
    else if (strcmp(prev, w->expect) != 0)
        r = broken(w, file, n,
                   "\"prev\" does not match the SHA-256 of the previous line (%s:%llu): that "
                   "line was altered, or lines were removed or inserted between them",
                   w->prev_file, (unsigned long long)w->prev_line);
    if (r == 0)
        r = check_seq_and_kind(w, file, n, o);
    json_decref(o);
    return r;
}

/* The line at the anchor's position must be the line it recorded. */
static int check_anchor_line(struct walk *w, const char *file, uint64_t n)
{
    if (w->anchor == NULL || w->rep->lines != w->anchor->lines ||
        strcmp(w->expect, w->anchor->head) == 0)
        return 0;
    return broken(w, file, n,
                  "this is line %llu of the chain, but the anchor in %s recorded another line "
                  "there (hash %s): the log was rewritten from here",
                  (unsigned long long)w->rep->lines, w->anchor_db, w->anchor->head);
}

static int walk_file(struct walk *w, const char *file, struct cb_error *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cb_error_set(err, -errno, "audit verify: opening %s: %s", file, strerror(errno));
    struct cb_line_reader rd;
    const char *line;
    size_t len;
    int r;
    cb_line_reader_init(&rd, fd, CB_AUDIT_MAX_LINE);
    while ((r = cb_line_reader_next(&rd, &line, &len)) == CB_LINE_OK) {
        if ((r = check_line(w, file, rd.lineno, line, len)) < 0)
            break;
        cb__audit_hash(line, len, w->expect);
        snprintf(w->prev_file, sizeof(w->prev_file), "%s", file);
        w->prev_line = rd.lineno;
        w->rep->lines++;
        if ((r = check_anchor_line(w, file, rd.lineno)) < 0)
            break;
    }
    if (r == CB_LINE_TOO_LONG)
        r = broken(w, file, rd.lineno, "line longer than %d bytes", CB_AUDIT_MAX_LINE);
    else if (r == CB_LINE_PARTIAL)
        r = broken(w, file, rd.lineno, "incomplete last line (%zu bytes, no newline)", len);
    else if (r < 0 && r != CB_AUDIT_E_BROKEN)
        r = cb_error_set(err, r, "audit verify: reading %s: %s", file, strerror(-r));
    cb_line_reader_free(&rd);
    close(fd);
    return r;
}

/* After the walk: a log that ends before its anchor lost its newest
 * lines. */
static int check_reaches_anchor(struct walk *w, const char *dir)
{
    const struct cb_state_anchor *a = w->anchor;
    if (a == NULL || w->rep->lines >= a->lines)
        return 0;
    w->rep->missing = a->lines - w->rep->lines;
    if (w->prev_file[0] == '\0')
        snprintf(w->prev_file, sizeof(w->prev_file), "%s/%s", dir, CB_AUDIT_FILE);
    return broken(w, w->prev_file, w->prev_line,
                  "the log ends at line %llu of the chain, but the anchor in %s records %llu "
                  "lines (the last with hash %s): %llu %s missing from its end",
                  (unsigned long long)w->rep->lines, w->anchor_db, (unsigned long long)a->lines,
                  a->head, (unsigned long long)w->rep->missing,
                  w->rep->missing == 1 ? "line is" : "lines are");
}

static int verify(const char *dir, const struct cb_state_anchor *anchor, const char *anchor_db,
                  struct cb_audit_verify_report *rep, struct cb_error *err)
{
    struct cb__audit_files files;
    struct walk w = {.rep = rep, .anchor = anchor, .anchor_db = anchor_db};
    memset(rep, 0, sizeof(*rep));
    memset(w.expect, '0', CB_AUDIT_HASH_HEX);
    w.expect[CB_AUDIT_HASH_HEX] = '\0';
    int r = cb__audit_list(dir, &files, err);
    if (r < 0)
        return r;
    rep->ok = true;
    for (size_t i = 0; i < files.n && r == 0; i++) {
        r = walk_file(&w, files.names[i], err);
        rep->files++;
    }
    cb__audit_files_free(&files);
    memcpy(rep->last_hash, w.expect, sizeof(rep->last_hash));
    if (r == 0)
        r = check_reaches_anchor(&w, dir);
    rep->anchored = anchor != NULL;
    rep->anchor_lines = anchor ? anchor->lines : 0;
    if (r == CB_AUDIT_E_BROKEN)
        cb_error_set(err, r, "audit chain broken at %s:%llu: %s", rep->file,
                     (unsigned long long)rep->line, rep->reason);
    else if (r < 0)
        rep->ok = false;
    return r;
}

/* The anchor recorded for dir in db: 0 and *found, 0 and !*found (no
 * database, or no anchor in it), or an error reading it. */
static int read_anchor(const char *dir, const char *db, struct cb_state_anchor *out, bool *found,
                       struct cb_error *err)
{
    struct cb_state_options o = {.busy_timeout_ms = CB_STATE_BUSY_TIMEOUT_MS, .read_only = true};
    struct cb_state *st = NULL;
    *found = false;
    char *name = realpath(dir, NULL);
    if (name == NULL)
        return cb_error_set(err, -errno, "audit verify: %s: %s", dir, strerror(errno));
    int r = cb_state_open_opts(db, &o, &st, err);
    if (r == 0)
        r = cb_state_anchor_get(st, name, out, err);
    cb_state_close(st);
    free(name);
    if (r == -ENOENT) {
        cb_error_clear(err);
        return 0;
    }
    if (r == 0)
        *found = true;
    else
        cb_error_prefix(err, "audit verify: reading the anchor");
    return r;
}

int cb_audit_verify_anchored(const char *dir, const char *anchor_db,
                             struct cb_audit_verify_report *rep, struct cb_error *err)
{
    struct cb_state_anchor anchor;
    bool found = false;
    if (anchor_db != NULL) {
        int r = read_anchor(dir, anchor_db, &anchor, &found, err);
        if (r < 0) {
            memset(rep, 0, sizeof(*rep));
            return r;
        }
    }
    return verify(dir, found ? &anchor : NULL, anchor_db, rep, err);
}
