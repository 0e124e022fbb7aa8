/* Known-secret and credential-pattern leak scanner.
 *
 * A scanner is built once from the credential store's values. For each
 * secret it precomputes the forms a leak can take:
 *   - plain, in any letter case, with spaces as '+' (form encoding), and
 *     JSON-string escaped;
 *   - base64, standard and URL-safe, at each of the three alignments a
 *     secret can have inside a longer base64 text (the stable characters of
 *     base64(prefix + secret) for prefixes of 0, 1 and 2 bytes, so it matches
 *     whatever surrounds it, padded or not); base32 likewise, at its five
 *     alignments, in either case;
 *   - hex, in any letter case;
 *   - reversed, rot13, and UTF-16 in either byte order (ASCII secrets).
 * Escapes are handled by scanning decoded views of the text as well, up to
 * CB_LEAK_URL_ROUNDS rounds, each decoding every %XX (URL encoding, either
 * hex case, any set of escaped characters), every \u00XX below \u0080
 * (JSON) and every HTML numeric reference below 128: one round for
 * URL-encoded, two for double-encoded, and every form above inside any of
 * them.
 *
 * Pieces: any run of CB_LEAK_MIN_FRAGMENT or more characters of a secret or
 * of its reversal (any letter case) is found too (scan/frag.h), and so is
 * the secret's run of letters and digits with anything between them (spaced
 * out, split by separators, UTF-16, an array of characters): the text's
 * skeleton, its letters and digits alone, is searched for runs of the
 * secrets' skeletons.
 *
 * All whole forms of all secrets, and the literals that start every
 * credential and injection pattern, are searched in one pass of one
 * Aho–Corasick automaton; a regex only runs where its literal occurred.
 *
 * Secrets shorter than CB_LEAK_MIN_SECRET_LEN bytes are not registered: a
 * short value such as "admin" or a PIN would redact ordinary text, and its
 * encodings are too short to be told from noise.
 *
 * Reports never contain secret values, only indices, names and offsets.
 *
 * What no scanner can see: a transform it does not know (a tool that XORs
 * the secret with a key, or prints it a few characters at a time between
 * other words). See docs/security.md. */
#ifndef CB_SCAN_LEAK_H
#define CB_SCAN_LEAK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CB_LEAK_MIN_SECRET_LEN 8
/* The shortest piece of a secret that is redacted on its own. */
#define CB_LEAK_MIN_FRAGMENT   12
#define CB_LEAK_MAX_SECRET_LEN 16384
#define CB_LEAK_MAX_SECRETS    1024
/* Percent-decoding rounds (the reference does up to 10 on the raw text). */
#define CB_LEAK_URL_ROUNDS 4
/* Largest input: offsets into decoded text are kept as 32-bit. */
#define CB_LEAK_MAX_INPUT  (UINT32_MAX - 1u)
#define CB_LEAK_REPORT_MAX 32
#define CB_LEAK_REDACTED   "[REDACTED]"
#define CB_LEAK_BLOCKED    "[BLOCKED]"

struct cb_leak_scanner;

enum cb_leak_kind {
    CB_LEAK_KNOWN_SECRET,
    CB_LEAK_PATTERN,
    /* A pattern could not be evaluated (match limit): treat as a leak. */
    CB_LEAK_UNSCANNABLE,
};

enum cb_leak_encoding {
    CB_LEAK_ENC_PLAIN,
    CB_LEAK_ENC_PLUS_SPACE,
    CB_LEAK_ENC_JSON,
    CB_LEAK_ENC_BASE64,
    CB_LEAK_ENC_BASE64URL,
    CB_LEAK_ENC_HEX,
    CB_LEAK_ENC_CASEFOLD, /* plain text in other letter case */
    CB_LEAK_ENC_REVERSED,
    CB_LEAK_ENC_BASE32,
    CB_LEAK_ENC_ROT13,
    CB_LEAK_ENC_UTF16,    /* either byte order */
    CB_LEAK_ENC_FRAGMENT, /* a run of CB_LEAK_MIN_FRAGMENT or more of the secret */
    CB_LEAK_ENC_SPACED,   /* its letters and digits, split by anything else */
    CB_LEAK_ENC_NONE,     /* pattern findings */
};

struct cb_leak_finding {
    enum cb_leak_kind kind;
    size_t index;     /* index into the secrets given to _new, or pattern index */
    const char *name; /* the secret's name (NULL if none given) or the pattern's */
    enum cb_leak_encoding encoding;
    unsigned url_depth; /* decoding rounds (%XX, \u00XX, &#NN;) applied before it matched */
    size_t offset, len; /* span in the scanned data */
};

struct cb_leak_report {
    size_t total; /* occurrences found */
    size_t n;     /* distinct (kind, index, encoding, depth), first occurrence each */
    struct cb_leak_finding findings[CB_LEAK_REPORT_MAX];
};

/* Builds a scanner from n secrets (copied; `names` may be NULL). n == 0
 * gives a pattern-only scanner. Returns NULL with err set when n exceeds
 * CB_LEAK_MAX_SECRETS or an argument is invalid. */
struct cb_leak_scanner *cb_leak_scanner_new(const char *const *names, const char *const *secrets,
                                            const size_t *lens, size_t n, struct cb_error *err);
/* Takes another reference to sc (a scanner is read-only once built and
 * may be shared by threads); returns sc. */
struct cb_leak_scanner *cb_leak_scanner_ref(struct cb_leak_scanner *sc);
/* Drops a reference; the last one wipes the copies of the secrets and every
 * derived form. NULL is fine. */
void cb_leak_scanner_free(struct cb_leak_scanner *sc);
size_t cb__leak_scanner_secrets(const struct cb_leak_scanner *sc);

/* Scans data for known secrets (every form, every URL-decoding depth) and
 * the credential patterns (on the raw and the decoded text, as the
 * reference's LeakDetector does). Returns 1 if anything was found, 0 if the
 * data is clean, or a negative code (input larger than CB_LEAK_MAX_INPUT);
 * callers block on anything but 0. */
int cb_leak_scan(const struct cb_leak_scanner *sc, const char *data, size_t len,
                 struct cb_leak_report *out, struct cb_error *err);

/* A piece of text for cb_leak_pieces_clean. */
struct cb_leak_piece {
    const char *p;
    size_t len;
};

/* Whether none of the n pieces holds anything cb_leak_scan finds, by one
 * scan of the pieces joined by line ends: whatever a piece holds, the
 * join holds too (no secret form is cut by a line end, no escape is
 * formed across one, and no pattern's look-around tells a line end from
 * the end of the text), so true means every piece is clean. False may
 * come from a match across two pieces: scan them one by one then. For
 * many small pieces (a request's head, an answer's headers), one scan
 * costs far less than one per piece. */
bool cb_leak_pieces_clean(const struct cb_leak_scanner *sc, const struct cb_leak_piece *pieces,
                          size_t n);

/* Returns a copy of data (NUL-terminated; free() it) in which every
 * occurrence of every form of every known secret, at every URL-decoding
 * depth, and every credential-pattern match is replaced by "[REDACTED]"
 * (overlapping occurrences become one marker). Known secrets go first, then
 * each credential pattern in catalogue order, as in the reference. The
 * result is rescanned; if a pattern cannot be evaluated or the result still
 * holds a secret, the whole output is "[REDACTED]" (fail closed).
 * *n_redacted counts the markers written (may be NULL). Returns 0 or a
 * negative code (input too large). */
int cb_leak_redact(const struct cb_leak_scanner *sc, const char *data, size_t len, char **out,
                   size_t *out_len, size_t *n_redacted, struct cb_error *err);

#endif
