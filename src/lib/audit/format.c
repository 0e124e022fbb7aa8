/* Formatting one audit line. Every string field has a byte budget for its
 * escaped form, so a line can never exceed CB_AUDIT_MAX_LINE whatever the
 * caller passes; a field over budget is cut at a character boundary and
 * marked. Invalid UTF-8 becomes U+FFFD so every line is valid JSON. */
#include "audit/audit.h"
#include "audit/internal.h"

#include "core/utf8.h"
#include "core/util.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRUNC_MARK "...[truncated]"

/* Escaped-size budgets. Their sum plus the fixed text stays far below
 * CB_AUDIT_MAX_LINE (checked by a static assertion below). */
#define B_REQUEST_ID 128
#define B_TOOL       256
#define B_METHOD     32
#define B_URL        16384
#define B_DECISION   64
#define B_REASON     8192
#define B_CREDS      4096
#define B_DOMAIN     1024
#define B_NAMES      4096 /* each of added, removed, changed */
#define FIXED_TEXT   1024

_Static_assert(B_REQUEST_ID + B_TOOL + B_METHOD + B_URL + B_DECISION + B_REASON + B_CREDS +
                       B_DOMAIN + 3 * B_NAMES + FIXED_TEXT <
                   CB_AUDIT_MAX_LINE,
               "audit field budgets exceed the line limit");

struct out {
    char *p;
    size_t n;
};

static void put(struct out *o, const char *s, size_t n)
{
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* The escaped form of the character at s (k bytes, k == 0 for an invalid
 * byte) into e; returns its length. */
static size_t escape_char(const unsigned char *s, size_t k, char e[8])
{
    if (k == 0) {
        memcpy(e, "\\ufffd", 6);
        return 6;
    }
    if (k > 1 || (s[0] >= 0x20 && s[0] != '"' && s[0] != '\\')) {
        memcpy(e, s, k);
        return k;
    }
    const char *shortf = s[0] == '"'    ? "\\\""
                         : s[0] == '\\' ? "\\\\"
                         : s[0] == '\n' ? "\\n"
                         : s[0] == '\r' ? "\\r"
                         : s[0] == '\t' ? "\\t"
                                        : NULL;
    if (shortf != NULL) {
        memcpy(e, shortf, 2);
        return 2;
    }
    memcpy(e, "\\u00", 4);
    cb_hex_byte(s[0], false, e + 4);
    return 6;
}

/* Escaped length of s, stopping once it passes `limit`. */
static size_t escaped_len(const unsigned char *s, size_t n, size_t limit)
{
    size_t total = 0;
    char e[8];
    for (size_t i = 0; i < n && total <= limit;) {
        size_t k = cb_utf8_seq_len(s + i, n - i);
        total += escape_char(s + i, k, e);
        i += k ? k : 1;
    }
    return total;
}

/* Writes s as a JSON string (or null) of at most budget escaped bytes. */
static void put_str(struct out *o, const char *str, size_t budget)
{
    if (str == NULL) {
        puts_(o, "null");
        return;
    }
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    bool cut = escaped_len(s, n, budget) > budget;
    size_t room = cut ? budget - strlen(TRUNC_MARK) : budget, used = 0;
    char e[8];
    put(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t k = cb_utf8_seq_len(s + i, n - i);
        size_t el = escape_char(s + i, k, e);
        if (used + el > room)
            break;
        put(o, e, el);
        used += el;
        i += k ? k : 1;
    }
    if (cut)
        puts_(o, TRUNC_MARK);
    put(o, "\"", 1);
}

/* Writes names as a JSON array of strings of at most budget bytes; a list
 * that does not fit (or has more than CB_AUDIT_MAX_NAMES names) ends with
 * a "...[truncated]" element. NULL names are written as "". */
static void put_list(struct out *o, const char *const *items, size_t n, size_t budget)
{
    static const char mark[] = ",\"" TRUNC_MARK "\"";
    size_t used = 2 + sizeof(mark); /* the brackets, and room for the mark */
    put(o, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i] ? items[i] : "";
        size_t el = escaped_len((const unsigned char *)s, strlen(s), budget) + 3;
        if (i >= CB_AUDIT_MAX_NAMES || used + el > budget) {
            put(o, i ? mark : mark + 1, i ? sizeof(mark) - 1 : sizeof(mark) - 2);
            break;
        }
        if (i > 0)
            put(o, ",", 1);
        put_str(o, s, el);
        used += el;
    }
    put(o, "]", 1);
}

static void put_key(struct out *o, const char *key, bool first)
{
    if (!first)
        put(o, ",", 1);
    put(o, "\"", 1);
    puts_(o, key);
    put(o, "\":", 2);
}

static void put_num(struct out *o, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%" PRIu64, v);
    put(o, b, (size_t)n);
}

/* RFC 3339 in UTC with milliseconds and "+00:00", as the reference's
 * chrono to_rfc3339 writes it (but with a fixed three digits). */
static void put_time(struct out *o, uint64_t wall_ms)
{
    time_t sec = (time_t)(wall_ms / 1000);
    struct tm tm;
    char b[48];
    gmtime_r(&sec, &tm);
    int n = snprintf(b, sizeof(b), "\"%04d-%02d-%02dT%02d:%02d:%02d.%03u+00:00\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(wall_ms % 1000));
    put(o, b, (size_t)n);
}

const char *cb__audit_kind_name(enum cb_audit_kind kind)
{
    static const char *const names[] = {"proxy",      "execute", "register",
                                        "credential", "audit",   "container"};
    return (size_t)kind < CB_ARRAY_LEN(names) ? names[kind] : "unknown";
}

size_t cb__audit_format(const struct cb_audit_record *r, uint64_t wall_ms, uint64_t seq,
                        const char *prev, char *out)
{
    struct out o = {out, 0};
    put(&o, "{", 1);
    put_key(&o, "timestamp", true);
    put_time(&o, wall_ms);
    put_key(&o, "request_id", false);
    put_str(&o, r->request_id, B_REQUEST_ID);
    put_key(&o, "kind", false);
    put_str(&o, cb__audit_kind_name(r->kind), B_DECISION);
    put_key(&o, "tool", false);
    put_str(&o, r->tool, B_TOOL);
    put_key(&o, "method", false);
    put_str(&o, r->method, B_METHOD);
    put_key(&o, "url", false);
    put_str(&o, r->url, B_URL);
    put_key(&o, "decision", false);
    put_str(&o, r->decision, B_DECISION);
    put_key(&o, "status", false);
    put_num(&o, (uint64_t)(r->status < 0 ? 0 : r->status));
    put_key(&o, "bytes", false);
    put_num(&o, r->bytes);
    put_key(&o, "duration_ms", false);
    put_num(&o, r->duration_ms);
    put_key(&o, "blocked", false);
    puts_(&o, r->blocked ? "true" : "false");
    put_key(&o, "leak_detected", false);
    puts_(&o, r->leak_detected ? "true" : "false");
    put_key(&o, "credential_injected", false);
    put_str(&o, r->credential_injected, B_CREDS);
    put_key(&o, "reason", false);
    put_str(&o, r->reason, B_REASON);
    if (r->kind == CB_AUDIT_CREDENTIAL) {
        put_key(&o, "domain", false);
        put_str(&o, r->domain, B_DOMAIN);
        put_key(&o, "added", false);
        put_list(&o, r->added, r->n_added, B_NAMES);
        put_key(&o, "removed", false);
        put_list(&o, r->removed, r->n_removed, B_NAMES);
        put_key(&o, "changed", false);
        put_list(&o, r->changed, r->n_changed, B_NAMES);
    }
    if (r->kind == CB_AUDIT_AUDIT) {
        put_key(&o, "missing", false);
        put_num(&o, r->missing);
    }
    if (seq > 0) {
        put_key(&o, "seq", false);
        put_num(&o, seq);
    }
    put_key(&o, "prev", false);
    put(&o, "\"", 1);
    put(&o, prev, CB_AUDIT_HASH_HEX);
    put(&o, "\"}", 2);
    out[o.n] = '\0';
    return o.n;
}

/* SHA-256 fetched once: SHA256() looks the algorithm up in OpenSSL's
 * provider tables (under a lock every thread takes) for every line. */
static EVP_MD *sha256;

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256 == NULL)
        abort(); /* the default provider always has it */
}

void cb__audit_hash(const void *data, size_t len, char out[CB_AUDIT_HASH_HEX + 1])
{
    static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
    unsigned char md[SHA256_DIGEST_LENGTH];
    pthread_once(&sha256_once, fetch_sha256);
    if (!EVP_Digest(data, len, md, NULL, sha256, NULL))
        abort(); /* only out of memory fails */
    cb_hex_encode(md, sizeof(md), out);
}
