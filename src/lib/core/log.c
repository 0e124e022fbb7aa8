#include "core/log.h"
#include "core/buf.h"
#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
static bool log_json = true;
static enum cb_log_level log_level = CB_LOG_INFO;

int cb_log_level_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void cb_log_setup(bool json, enum cb_log_level level)
{
    log_json = json;
    log_level = level;
}

static bool log_enabled(enum cb_log_level level)
{
    return level <= log_level;
}

/* Appends s as a JSON string body (without quotes), escaping controls;
 * bytes that are not UTF-8 become U+FFFD, so every line stays JSON. */
static void json_escape(struct cb_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : cb_utf8_seq_len(p + i, n - i);
        if (k == 0)
            cb_buf_puts(b, "\\ufffd");
        else if (p[i] == '"' || p[i] == '\\')
            cb_buf_printf(b, "\\%c", p[i]);
        else if (p[i] < 0x20 || p[i] == 0x7f)
            cb_buf_printf(b, "\\u%04x", p[i]);
        else
            cb_buf_append(b, p + i, k);
        i += k ? k : 1;
    }
}

/* Text format: control characters are shown as '?' so that a client
 * cannot forge log lines. */
static void text_escape(struct cb_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        cb_buf_append(b, (*p < 0x20 || *p == 0x7f) ? (const unsigned char *)"?" : p, 1);
}

static void timestamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, n - len, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void format_line(struct cb_buf *b, enum cb_log_level level, const char *msg,
                        const char *const *fields)
{
    char ts[40];
    timestamp(ts, sizeof(ts));
    if (log_json) {
        cb_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
        json_escape(b, msg);
        cb_buf_puts(b, "\"");
        for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
            cb_buf_printf(b, ",\"%s\":\"", fields[i]);
            json_escape(b, fields[i + 1]);
            cb_buf_puts(b, "\"");
        }
        cb_buf_puts(b, "}");
    } else {
        cb_buf_printf(b, "%s %-5s ", ts, level_names[level]);
        text_escape(b, msg);
        for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
            cb_buf_printf(b, " %s=", fields[i]);
            text_escape(b, fields[i + 1]);
        }
    }
}

void cb_log_fields(enum cb_log_level level, const char *msg, const char *const *fields)
{
    if (!log_enabled(level))
        return;
    struct cb_buf b;
    /* Pieces that would take a line past the limit are dropped. */
    cb_buf_init(&b, LOG_LINE_MAX);
    format_line(&b, level, msg, fields);
    b.max++; /* room for the newline, always */
    cb_buf_append(&b, "\n", 1);
    ssize_t unused = write(STDERR_FILENO, b.data, b.len);
    (void)unused;
    cb_buf_free(&b);
}

void cb_log(enum cb_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cb_log_fields(level, msg, NULL);
}
