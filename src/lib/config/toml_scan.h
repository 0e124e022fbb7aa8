/* Lexical layer of the TOML reader: the cursor, error helpers, whitespace,
 * comments, keys and scalar values. Internal to src/lib/config/toml*.c. */
#ifndef CB_CONFIG_TOML_SCAN_H
#define CB_CONFIG_TOML_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "config/toml.h"
#include "core/buf.h"
#include "core/error.h"

/* A cursor over the document. The text has already passed
 * cb__toml_check_text(), so every byte is valid UTF-8 and the only control
 * characters left are tab, LF and CR immediately followed by LF. */
struct cb__toml_scan {
    const char *p;
    const char *end;
    const char *line_start;
    int line;
    struct cb_error *err;
};

/* Set err to "line N, column M: <message>" for the cursor position and
 * return -EINVAL. */
int cb__toml_fail(struct cb__toml_scan *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like cb__toml_fail, but names only the line (for errors about a whole key or
 * table rather than a character). */
int cb__toml_fail_line(struct cb__toml_scan *s, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rejects invalid UTF-8, bare CR and control characters anywhere. */
int cb__toml_check_text(const char *data, size_t len, struct cb_error *err);

bool cb__toml_eof(const struct cb__toml_scan *s);
bool cb__toml_at_newline(const struct cb__toml_scan *s);
/* Consumes one LF or CRLF; the cursor must be at a newline. */
void cb__toml_newline(struct cb__toml_scan *s);
void cb__toml_skip_ws(struct cb__toml_scan *s);
/* Skips a comment up to (not including) the newline, if one starts here. */
void cb__toml_skip_comment(struct cb__toml_scan *s);
/* Skips whitespace, comments and newlines, as allowed inside arrays. */
void cb__toml_skip_blank(struct cb__toml_scan *s);

/* Writes a short description of the character at the cursor into buf, e.g.
 * "'x'", "end of line", "end of input"; returns buf. */
const char *cb__toml_describe(const struct cb__toml_scan *s, char *buf, size_t n);

/* Parses one simple key (bare, basic or literal string) into out. */
int cb__toml_key_part(struct cb__toml_scan *s, struct cb_buf *out);

/* Parses a basic, literal or multi-line string at the cursor into out. */
int cb__toml_string(struct cb__toml_scan *s, struct cb_buf *out);

/* Parses a string, number, bool or date/time at the cursor into v (type and
 * payload; v->line is left to the caller). */
int cb__toml_scalar(struct cb__toml_scan *s, struct cb_toml_value *v);

#endif
