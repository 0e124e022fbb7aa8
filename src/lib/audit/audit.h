/* The tamper-evident audit log.
 *
 * One JSON object per line in <audit_dir>/audit.jsonl. Fields, in order:
 *
 *   timestamp            RFC 3339 UTC, milliseconds, "+00:00" (reference name)
 *   request_id, kind, tool
 *   method, url          url already redacted by the caller (reference names)
 *   decision             allowed | blocked | leak_blocked | ok | error | ...
 *   status, bytes, duration_ms
 *   blocked, leak_detected, credential_injected   (reference names/types)
 *   reason               string or null
 *   domain, added, removed, changed
 *                        credential lines (kind "credential") only: the
 *                        credential names affected, as JSON arrays of
 *                        strings, and the domain of a single change (or
 *                        null). Never values.
 *   missing              kind "audit" only: lines found cut from the end
 *   seq                  the line's position in the chain, 1-based, across
 *                        rotated files (lines written before it existed
 *                        have none)
 *   prev                 SHA-256 hex of the previous line's bytes (without
 *                        its newline); 64 zeros on the first line of a log
 *
 * prev is last, so a line is hashed exactly as it is stored.
 *
 * Writers: any number of handles, in any number of processes, may append to
 * one directory (the server, and CLI verbs such as `creds add` while it
 * runs). Each append holds the directory's writers' lock (a process-shared
 * mutex in <dir>/.audit.lock) while it reads the chain head from the file
 * and writes its line, so the chain continues across writers and never
 * forks; a writer that dies holding it leaves it to the next.
 *
 * Durability: each line is one write(2) on an O_APPEND descriptor, and
 * cb_audit_append returns only after fdatasync covered it, so an
 * acknowledged line survives kill -9 and power loss. Concurrent appenders
 * share fdatasync calls (group commit): a sync started after a line was
 * written covers it. cb_audit_append_written returns once the line is
 * written, with its sync started in the background.
 *
 * Rotation: when a line would take audit.jsonl past max_file_bytes, the file
 * is renamed to audit.<seq>.jsonl (seq = 1, 2, ... zero-padded, so names
 * sort by age) and a new audit.jsonl is started; its first line chains to the
 * last line of the previous file.
 *
 * Anchor: what the chain alone cannot show is removal of the newest lines
 * (no successor records their hash). With an anchor database (the state
 * database), every writer records there the seq and hash of a head it
 * made durable (from a thread of its own, at most every 50 ms while lines
 * are appended, and at close), so the anchor may lag the log (by the lines
 * of the last 50 ms after a crash; further after a power loss, since the
 * anchor commits without fsync) but never runs ahead of it. cb_audit_verify_anchored then reports a
 * log that ends before its anchor, naming how many lines are missing, or whose line at the anchor's
 * seq has another hash. A writer that opens a log behind its anchor first appends a line of kind
 * "audit", decision "truncated", recording how many lines were lost (so that the evidence stays in
 * the chain once it grows past the old anchor), then resets the anchor to that line. */
#ifndef CB_AUDIT_AUDIT_H
#define CB_AUDIT_AUDIT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Longest line written or accepted. Long fields are cut to fit (each has its
 * own budget, see audit.c), marked with "...[truncated]". */
#define CB_AUDIT_MAX_LINE (64 * 1024)
#define CB_AUDIT_HASH_HEX 64
#define CB_AUDIT_FILE     "audit.jsonl"
#define CB_AUDIT_MAX_TAIL 10000
#define CB_AUDIT_E_BROKEN (-EBADMSG) /* verify: the chain is broken */
#define CB_AUDIT_E_FAILED (-EIO)     /* append after an earlier sync failure */

enum cb_audit_kind {
    CB_AUDIT_PROXY,
    CB_AUDIT_EXECUTE,
    CB_AUDIT_REGISTER,
    CB_AUDIT_CREDENTIAL,
    CB_AUDIT_AUDIT,     /* the log's own events: lines found cut from its end */
    CB_AUDIT_CONTAINER, /* a container spawned, ended or killed (tool = its id) */
};

/* Most names in a credential line's added/removed/changed lists; past it
 * the list ends with "...[truncated]". */
#define CB_AUDIT_MAX_NAMES 256

/* One event. Strings may be NULL (written as null). Nothing here may hold a
 * secret: URLs come redacted, credentials appear by name only. */
struct cb_audit_record {
    enum cb_audit_kind kind;
    const char *request_id;
    const char *tool;
    const char *method;
    const char *url;
    const char *decision;
    const char *reason;
    const char *credential_injected; /* names, comma-separated */
    int status;                      /* 0 when there was no response */
    uint64_t bytes;
    uint64_t duration_ms;
    bool blocked;
    bool leak_detected;
    /* CB_AUDIT_CREDENTIAL only (ignored for other kinds). */
    const char *domain;
    const char *const *added;
    size_t n_added;
    const char *const *removed;
    size_t n_removed;
    const char *const *changed;
    size_t n_changed;
    /* CB_AUDIT_AUDIT only. */
    uint64_t missing;
};

struct cb_audit_options {
    const char *dir;         /* created 0700 if missing */
    uint64_t max_file_bytes; /* 0: no rotation */
    /* The state database holding the anchor (its directory is created
     * 0700), or NULL for none. The anchor is best effort: when it cannot
     * be opened or written the log goes on and a warning is logged. */
    const char *anchor_db;
};

struct cb_audit;

/* Opens (creating if needed) the log in opts->dir and recovers the chain
 * head from the tail of the newest file, reading at most one line. An
 * incomplete last line (never acknowledged) is cut off. */
int cb_audit_open(const struct cb_audit_options *opts, struct cb_audit **out, struct cb_error *err);

/* Closes after a final fdatasync. No append may be in flight. Accepts
 * NULL. */
void cb_audit_close(struct cb_audit *log);

/* Appends one line; returns once it is on stable storage. Thread-safe. After
 * a write or sync failure every later call fails with CB_AUDIT_E_FAILED:
 * after a failed fdatasync the kernel may have dropped the data, so nothing
 * appended later could be trusted to follow it. */
int cb_audit_append(struct cb_audit *log, const struct cb_audit_record *rec, struct cb_error *err);

/* Appends one line and returns once it is written, not waiting for its
 * fdatasync: a background thread starts one at once (group-committed with
 * other appenders). The line survives the process's crash or kill -9 as
 * soon as this returns, and power loss once that sync is done (about one
 * fdatasync later). A failed sync fails the log as with cb_audit_append,
 * and this and every later append report it. For lines whose caller's
 * answer must not wait for the disk (proxied requests, see
 * [logging] proxy_audit_sync). */
int cb_audit_append_written(struct cb_audit *log, const struct cb_audit_record *rec,
                            struct cb_error *err);
/* cb_audit_append when `sync` is "before_response" (the value of
 * [logging] proxy_audit_sync), else cb_audit_append_written: the lines of
 * proxied requests, container connections and container execs. */
int cb_audit_append_as(struct cb_audit *log, const struct cb_audit_record *rec, const char *sync,
                       struct cb_error *err);

const char *cb__audit_kind_name(enum cb_audit_kind kind);

/* Formats the line for rec with the given seq (0: none), prev and timestamp
 * (ms since the epoch) into out (at least CB_AUDIT_MAX_LINE + 1 bytes),
 * without newline. Returns its length. Exposed for tests and tools. */
size_t cb__audit_format(const struct cb_audit_record *rec, uint64_t wall_ms, uint64_t seq,
                        const char *prev, char *out);

/* ------------------------------ readers ------------------------------ */

#define CB_AUDIT_REASON_MAX 256

struct cb_audit_verify_report {
    size_t files;   /* files walked */
    uint64_t lines; /* lines that verified */
    bool ok;        /* the whole chain verified */
    char file[512]; /* where it broke (when !ok) */
    uint64_t line;  /* 1-based line number in that file */
    char reason[CB_AUDIT_REASON_MAX];
    char last_hash[CB_AUDIT_HASH_HEX + 1]; /* hash of the last good line */
    bool anchored;                         /* an anchor was found and checked */
    uint64_t anchor_lines;                 /* its line count */
    uint64_t missing;                      /* lines cut from the end (when !ok) */
};

/* Walks every file in dir, oldest first, and checks each line: complete,
 * within the size limit, a JSON object, and "prev" equal to the SHA-256 of
 * the line before it (64 zeros for the very first line). With anchor_db
 * (NULL: none), also checks against the anchor for dir in that state
 * database (opened read-only; a missing file or no anchor leaves
 * report->anchored false). Also broken: a line whose "seq" is not its
 * position, a line recording a truncation (its "missing" goes to
 * report->missing), a line at the anchor's position with another hash, and
 * a log that ends before the anchor (report->missing lines). Returns 0 when
 * the chain is intact, CB_AUDIT_E_BROKEN with the report filled in when it
 * is not, or another negative errno when the files cannot be read. */
int cb_audit_verify_anchored(const char *dir, const char *anchor_db,
                             struct cb_audit_verify_report *report, struct cb_error *err);

/* Called with each line (without newline) in order. Return non-zero to
 * stop. */
typedef int (*cb_audit_line_fn)(const char *line, size_t len, void *ctx);

/* Calls fn with the last n lines of the log (n <= CB_AUDIT_MAX_TAIL),
 * oldest first, reaching into rotated files when audit.jsonl has fewer.
 * -ENOENT when the directory holds no log. */
int cb_audit_tail(const char *dir, size_t n, cb_audit_line_fn fn, void *ctx, struct cb_error *err);

/* Follows the log for `clawbox logs --follow`: a cursor remembers where it
 * stopped, and each poll delivers the complete lines appended since, across
 * a rotation. */
struct cb_audit_cursor;

/* Starts at the current end of audit.jsonl (the file may not exist yet). */
int cb_audit_cursor_open(const char *dir, struct cb_audit_cursor **out, struct cb_error *err);
/* Delivers new complete lines; returns how many, or a negative errno. */
int cb_audit_cursor_poll(struct cb_audit_cursor *c, cb_audit_line_fn fn, void *ctx,
                         struct cb_error *err);
void cb_audit_cursor_close(struct cb_audit_cursor *c);

#endif
