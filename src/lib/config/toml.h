/* A TOML 1.0 reader. It parses a whole document into a tree of values and
 * rejects anything the TOML 1.0 specification does not allow, reporting the
 * line (and column where useful) of the first error. */
#ifndef CB_CONFIG_TOML_H
#define CB_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Input larger than this is rejected before parsing. */
#define CB_TOML_MAX_INPUT (4u * 1024 * 1024)
/* Nesting of arrays and inline tables deeper than this is rejected. */
#define CB_TOML_MAX_DEPTH 128

enum cb_toml_type {
    CB_TOML_STRING,
    CB_TOML_INTEGER,
    CB_TOML_FLOAT,
    CB_TOML_BOOL,
    CB_TOML_DATETIME,       /* offset date-time, e.g. 1979-05-27T07:32:00Z */
    CB_TOML_DATETIME_LOCAL, /* local date-time, e.g. 1979-05-27T07:32:00 */
    CB_TOML_DATE_LOCAL,     /* local date, e.g. 1979-05-27 */
    CB_TOML_TIME_LOCAL,     /* local time, e.g. 07:32:00 */
    CB_TOML_ARRAY,
    CB_TOML_TABLE,
};

struct cb_toml_value;

struct cb_toml_kv {
    char *key; /* NUL-terminated; may contain NUL bytes only if key_len says so */
    size_t key_len;
    struct cb_toml_value *value;
};

struct cb_toml_value {
    enum cb_toml_type type;
    int line; /* 1-based line where the value (or table header) starts */
    union {
        struct {
            char *ptr; /* NUL-terminated copy; for date/time types the literal text */
            size_t len;
        } str;
        int64_t i;
        double f;
        bool b;
        struct {
            struct cb_toml_value **items;
            size_t len;
        } arr;
        struct {
            struct cb_toml_kv *items; /* in document order */
            size_t len;
        } tbl;
    } u;
};

/* Parses `len` bytes of TOML. Returns the root table, owned by the caller
 * (free with cb__toml_free), or NULL with err set to a message that starts
 * with "line N: " (and names the column where it can). Multi-line strings
 * store CRLF line breaks as LF. Tables and arrays carry private bookkeeping
 * after the public struct, so only free trees that came from here. */
struct cb_toml_value *cb_toml_parse(const char *data, size_t len, struct cb_error *err);

void cb__toml_free(struct cb_toml_value *v);

/* Looks up `key` in a table; NULL if absent or if `t` is not a table. */
struct cb_toml_value *cb_toml_get(const struct cb_toml_value *t, const char *key);

/* "string", "integer", "float", "bool", "datetime", ..., "array", "table". */
const char *cb__toml_type_name(enum cb_toml_type t);

struct cb_buf;
/* Appends s as a TOML basic string (quotes, backslashes and control
 * characters escaped). */
void cb__toml_quote(struct cb_buf *b, const char *s);

#endif
