/* Internal to src/lib/audit: file naming, the bounded line reader, hashing
 * and tail recovery shared by the writer and the readers. */
#ifndef CB_AUDIT_INTERNAL_H
#define CB_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit/audit.h"
#include "core/error.h"

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

/* Reads lines of at most CB_AUDIT_MAX_LINE bytes from an fd. */
struct cb__line_reader {
    int fd;
    char *buf; /* 2 * (CB_AUDIT_MAX_LINE + 1) */
    size_t start, end;
    bool eof;
    uint64_t lineno;
};

enum {
    CB__LINE_OK = 1,
    CB__LINE_EOF = 0,
    CB__LINE_TOO_LONG = -E2BIG,
    CB__LINE_PARTIAL = -ENODATA, /* bytes after the last newline */
};

void cb__line_reader_init(struct cb__line_reader *r, int fd);
void cb__line_reader_free(struct cb__line_reader *r);
/* Returns CB__LINE_OK with line and len (valid until the next call, no
 * newline), CB__LINE_EOF, CB__LINE_TOO_LONG (the line is skipped),
 * CB__LINE_PARTIAL (at end of file, line and len hold the fragment) or a
 * negative errno from read(2). */
int cb__line_reader_next(struct cb__line_reader *r, const char **line, size_t *len);

/* Finds the last line of the file open at fd (size bytes), reading at most
 * CB_AUDIT_MAX_LINE + 1 bytes. *partial gets the number of bytes after the
 * last newline (an incomplete line). On success *hash is the SHA-256 of the
 * last complete line, or *found is false when there is none. */
int cb__audit_last_line(int fd, off_t size, bool *found, char hash[CB_AUDIT_HASH_HEX + 1],
                        size_t *partial, struct cb_error *err);

#endif
