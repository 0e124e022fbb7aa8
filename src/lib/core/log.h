/* Process logging to stderr, as JSON lines or text, with a level filter.
 * Thread-safe: each line is written with one write(2). Callers must never
 * pass secrets (tokens, credential values) in messages or fields. */
#ifndef CB_CORE_LOG_H
#define CB_CORE_LOG_H

#include <stdbool.h>

enum cb_log_level {
    CB_LOG_ERROR,
    CB_LOG_WARN,
    CB_LOG_INFO,
    CB_LOG_DEBUG,
    CB_LOG_TRACE,
};

/* Parses "error".."trace"; returns -1 if unknown. */
int cb_log_level_parse(const char *s);
/* Sets the format ("json" or "text") and the lowest level written. */
void cb_log_setup(bool json, enum cb_log_level level);

/* Logs a message. `fields` is NULL or a list of key/value string pairs
 * ending with NULL, e.g. ("status", "200", NULL). */
void cb_log_fields(enum cb_log_level level, const char *msg, const char *const *fields);
void cb_log(enum cb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
