/* cb_audit_verify: walks the chain over every file, oldest first, and stops
 * at the first line that does not check out. */
#include "audit/audit.h"
#include "audit/internal.h"

#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct walk {
    struct cb_audit_verify_report *rep;
    char expect[CB_AUDIT_HASH_HEX + 1];
    char prev_file[512];
    uint64_t prev_line;
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
    if (strlen(s) != CB_AUDIT_HASH_HEX)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
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
    json_decref(o);
    return r;
}

static int walk_file(struct walk *w, const char *file, struct cb_error *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cb_error_set(err, -errno, "audit verify: opening %s: %s", file, strerror(errno));
    struct cb__line_reader rd;
    const char *line;
    size_t len;
    int r;
    cb__line_reader_init(&rd, fd);
    while ((r = cb__line_reader_next(&rd, &line, &len)) == CB__LINE_OK) {
        if ((r = check_line(w, file, rd.lineno, line, len)) < 0)
            break;
        cb__audit_hash(line, len, w->expect);
        snprintf(w->prev_file, sizeof(w->prev_file), "%s", file);
        w->prev_line = rd.lineno;
        w->rep->lines++;
    }
    if (r == CB__LINE_TOO_LONG)
        r = broken(w, file, rd.lineno, "line longer than %d bytes", CB_AUDIT_MAX_LINE);
    else if (r == CB__LINE_PARTIAL)
        r = broken(w, file, rd.lineno, "incomplete last line (%zu bytes, no newline)", len);
    else if (r < 0 && r != CB_AUDIT_E_BROKEN)
        r = cb_error_set(err, r, "audit verify: reading %s: %s", file, strerror(-r));
    cb__line_reader_free(&rd);
    close(fd);
    return r;
}

int cb_audit_verify(const char *dir, struct cb_audit_verify_report *rep, struct cb_error *err)
{
    struct cb__audit_files files;
    struct walk w = {.rep = rep};
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
    if (r == CB_AUDIT_E_BROKEN)
        cb_error_set(err, r, "audit chain broken at %s:%llu: %s", rep->file,
                     (unsigned long long)rep->line, rep->reason);
    else if (r < 0)
        rep->ok = false;
    return r;
}
