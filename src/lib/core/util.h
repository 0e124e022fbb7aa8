/* Allocation wrappers that treat out-of-memory as fatal, and cleanup
 * attributes for locals (as in crun's utils.h and systemd). */
#ifndef CB_CORE_UTIL_H
#define CB_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#define CB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *cb_xmalloc(size_t n);
void *cb_xcalloc(size_t n, size_t size);
void *cb_xrealloc(void *p, size_t n);
char *cb_xstrdup(const char *s);
char *cb_xstrndup(const char *s, size_t n);
/* Returns a newly allocated string built from a printf format. */
char *cb_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void cb__freep(void *p)
{
    free(*(void **)p);
}
static inline void cb__closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

#define _cleanup_free_  __attribute__((cleanup(cb__freep)))
#define _cleanup_close_ __attribute__((cleanup(cb__closep)))

/* Compares two byte strings in time that depends only on their lengths. */
bool cb_const_time_eq(const void *a, size_t alen, const void *b, size_t blen);

/* Fills buf with `n` bytes from the kernel CSPRNG. Returns 0 or -errno. */
int cb_random_bytes(void *buf, size_t n);

/* A name clawbox accepts for a tool, an image template or a container: 1 to
 * CB_NAME_MAX of [A-Za-z0-9_-], so it is safe as a path segment, a URL path
 * segment and a bare TOML key. False for NULL. */
#define CB_NAME_MAX 64
bool cb_name_valid(const char *s);

/* Writes a random (version 4) UUID in its 36-character text form and a NUL. */
void cb_uuid_v4(char out[37]);

/* Writes a wall-clock time in Unix milliseconds as RFC 3339 UTC with
 * milliseconds ("2026-12-07T01:02:03.456Z") and a NUL. */
#define CB_RFC3339_LEN 25
void cb_rfc3339_ms(uint64_t ms, char out[CB_RFC3339_LEN]);

/* Writes 2*n lowercase hex characters and a NUL to out. */
void cb_hex_encode(const unsigned char *in, size_t n, char *out);
/* Writes the two hex digits of c (no NUL) to out, in upper case if asked:
 * for escapes such as %XX, \xXX and \u00XX. */
void cb_hex_byte(unsigned char c, bool upper, char out[2]);
/* The value of one hex digit (either case), or -1. */
int cb_hex_digit(unsigned char c);
/* Whether s[0..n) is all lowercase hex digits, as cb_hex_encode writes
 * them (true for n == 0). */
bool cb_hex_is_lower(const char *s, size_t n);

/* 64-bit FNV-1a over n bytes, continuing from h (start with
 * CB_FNV1A_INIT). For hash tables whose keys cannot be chosen to collide
 * on purpose, or where a collision costs only a longer chain. */
#define CB_FNV1A_INIT 14695981039346656037ULL
uint64_t cb_fnv1a(uint64_t h, const void *p, size_t n);

/* Parses a whole decimal unsigned number; rejects sign, spaces, overflow. */
int cb_parse_u64(const char *s, size_t len, uint64_t *out);

/* Monotonic and wall clocks. */
uint64_t cb_now_mono_ns(void);
/* CLOCK_MONOTONIC now plus ms, as an absolute time for
 * pthread_cond_timedwait on a condition variable using that clock. */
struct timespec cb_mono_deadline(uint64_t ms);
uint64_t cb_now_wall_ms(void);

/* Calls ready(ud) until it returns true or `ns` nanoseconds have passed,
 * yielding the CPU (sched_yield) between calls; returns its last answer.
 * For waits that are usually short, where a thread that stays runnable is
 * cheaper to reach than a sleeping one (docs/operations.md, "CPU use
 * between requests"). */
bool cb_yield_until(bool (*ready)(void *ud), void *ud, uint64_t ns);

#endif
