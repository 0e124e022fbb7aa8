/* Internal to src/lib/audit: file naming, the bounded line reader, hashing
 * and tail recovery shared by the writer and the readers. */
#ifndef CB_AUDIT_INTERNAL_H
#define CB_AUDIT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit/audit.h"
#include "core/error.h"
#include "state/state.h"

/* A writer's handle (audit.c); the anchor code (anchor.c) shares it. */
struct cb_audit {
    pthread_mutex_t mu;
    char *dir;
    int dirfd;
    int lockfd;
    struct cb__audit_shared *shared; /* the mapped lock (lock.c) */
    int fd;
    uint64_t fd_gen; /* bumped when fd is closed (after syncing it) */
    dev_t dev;       /* identity of the file fd refers to */
    ino_t ino;
    uint64_t size;
    uint64_t max_file_bytes;
    uint64_t seq; /* highest rotated file number */
    /* "prev" of the next line, as this handle last saw the chain. */
    char head[CB_AUDIT_HASH_HEX + 1];
    uint64_t lines;   /* seq of the head line: how many lines the chain has */
    uint64_t written; /* lines written by this handle (their number) */
    bool failed;
    /* The line being written (CB_AUDIT_MAX_LINE + 2 bytes, under mu): a
     * malloc that large for each line consolidated the heap each time. */
    char *line;
    /* Bytes of incomplete last lines cut off at open, or later when a
     * crashed writer in another process left one (0 normally). */
    size_t recovered;

    struct cb_state *anchor; /* NULL: no anchor */
    char *anchor_name;       /* the directory's real path */
    bool anchor_warned;      /* a failure was logged; cleared on success */
    /* The anchor writer thread (anchor.c) and what it is asked to store. */
    pthread_t anchor_thread;
    pthread_mutex_t anchor_mu;
    pthread_cond_t anchor_cv;   /* something posted, or stop */
    pthread_cond_t anchor_done; /* a post was stored */
    struct cb_state_anchor anchor_pending;
    bool anchor_has_pending;
    bool anchor_reset; /* the pending anchor replaces what is stored */
    bool anchor_stop;
    uint64_t anchor_posted, anchor_stored; /* post numbers */

    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    bool syncing;
    uint64_t synced; /* all lines up to this number are durable */
    int sync_err;    /* sticky: once set, no line is acknowledged again */
    /* The background syncer (cb_audit_append_written), started with the
     * first line it is asked to make durable. */
    pthread_t syncer;
    bool syncer_started, syncer_stop;
    bool syncer_idle;     /* it waits on sync_cv for lines to sync */
    uint64_t sync_wanted; /* lines up to this number are to be synced */
};

/* Formats, rotates if needed and writes one line after catching up with
 * other writers (mu and the directory lock held); `line` is a buffer of
 * CB_AUDIT_MAX_LINE + 2 bytes. */
int cb__audit_write_locked(struct cb_audit *a, const struct cb_audit_record *rec, char *line,
                           struct cb_error *err);

/* lock.c: the writers' lock of the directory, shared by every process
 * that appends to it. open maps <dir>/.audit.lock (dirfd open), laying it
 * out when new; lock blocks, and takes over a lock whose holder died. */
int cb__audit_lock_open(struct cb_audit *a, struct cb_error *err);
void cb__audit_lock_close(struct cb_audit *a);
int cb__audit_lock(struct cb_audit *a, struct cb_error *err);
void cb__audit_unlock(struct cb_audit *a);

/* anchor.c: opens the anchor database and starts its writer thread (best
 * effort: a failure is logged and leaves a->anchor NULL); close stores
 * what is pending, then stops it. */
void cb__audit_anchor_open(struct cb_audit *a, const char *db);
void cb__audit_anchor_close(struct cb_audit *a);
/* Hands a head made durable to the writer thread, which stores it soon
 * after (the newest of several posts wins); a failure is logged once. */
void cb__audit_anchor_post(struct cb_audit *a, const struct cb_state_anchor *head);
/* Checks the head just read from the files (mu and the directory lock
 * held) against what it must at least be: `before`, what this handle knew
 * (NULL at open), and the anchor. A chain that is shorter, or as long with
 * another last line, was cut: a line of kind "audit" records it. */
int cb__audit_check_chain(struct cb_audit *a, const struct cb_state_anchor *before,
                          struct cb_error *err);

/* A rotated file is audit.<seq>.jsonl with seq zero-padded to this width. */
#define CB__AUDIT_SEQ_WIDTH 8
#define CB__AUDIT_LOCK      ".audit.lock"

/* The log's files, oldest first; the current file (when present) last. */
struct cb__audit_files {
    char **names;
    uint64_t *seqs; /* 0 for the current file */
    size_t n;
    uint64_t max_seq;
};

int cb__audit_list(const char *dir, struct cb__audit_files *out, struct cb_error *err);
void cb__audit_files_free(struct cb__audit_files *f);

/* SHA-256 of data as 64 lowercase hex characters and a NUL. */
void cb__audit_hash(const void *data, size_t len, char out[CB_AUDIT_HASH_HEX + 1]);

/* What the end of a file says about the chain. */
struct cb__audit_tail {
    bool found;                       /* the file has a complete line */
    char hash[CB_AUDIT_HASH_HEX + 1]; /* SHA-256 of the last one */
    uint64_t seq;                     /* its "seq"; 0 when it has none */
    size_t partial;                   /* bytes after the last newline */
};

/* Finds the last line of the file open at fd (size bytes), reading at most
 * CB_AUDIT_MAX_LINE + 1 bytes, and fills *out. */
int cb__audit_last_line(int fd, off_t size, struct cb__audit_tail *out, struct cb_error *err);

/* The "seq" member of a line, or 0 when it has none (a line written before
 * lines were numbered) or is not a JSON object. */
uint64_t cb__audit_line_seq(const char *line, size_t len);

/* Calls fn with each complete line of file (over-long lines and an
 * incomplete last line are left out) until it returns non-zero. */
int cb__audit_each_line(const char *file, cb_audit_line_fn fn, void *ctx, struct cb_error *err);

/* Counts the complete lines of every file in dir: the position of the head
 * of a chain whose last line carries no "seq". */
int cb__audit_count_lines(const char *dir, uint64_t *lines, struct cb_error *err);

#endif
