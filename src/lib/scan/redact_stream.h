/* Redaction of a byte stream that arrives in pieces (an HTTP response
 * body relayed as it comes), with memory bounded by the hold, never by
 * the stream.
 *
 * Bytes are held until the hold is full; then a prefix of them goes out
 * redacted and the last CB_REDACT_STREAM_LOOK bytes at least stay, so
 * that every secret that starts in what goes out is seen whole (the
 * lookahead is twice the longest secret: a hex or UTF-16 form of it fits).
 * The prefix ends at a cut where splitting changes nothing:
 *
 *   - when the held bytes hold nothing to redact, anywhere, the prefix
 *     goes out as it is;
 *   - else a cut c is taken only when redact(hold[0..c)) followed by
 *     redact(hold[c..)) is exactly redact(hold): a secret, an encoded
 *     form of it or a pattern match that crossed c would be one marker
 *     in the whole and two pieces (or a piece left raw) in the halves.
 *     Cuts are tried at line ends first, then at blanks, stepping back;
 *     when none is clean the stream fails closed (-EACCES): the caller
 *     must end it, as nothing safe can go out.
 *
 * The end of the stream goes out as one redaction of what is held, so a
 * body that fits the hold is redacted exactly as a whole body is.
 *
 * A blocking stream (cb_scan_stream_new), for what is sent out, redacts
 * nothing: the held bytes are scanned, with the same lookahead, and go
 * out as they are while nothing is found; anything found fails the
 * stream with -EACCES, before any byte of the window it is in went
 * out. */
#ifndef CB_SCAN_REDACT_STREAM_H
#define CB_SCAN_REDACT_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "scan/leak.h"

/* Bytes kept after a cut: twice the longest secret. */
#define CB_REDACT_STREAM_LOOK (2u * CB_LEAK_MAX_SECRET_LEN)
/* The default hold. */
#define CB_REDACT_STREAM_HOLD (256u * 1024u)

/* Where redacted bytes go; a negative return ends the stream with it. */
typedef int (*cb_redact_out_fn)(void *ud, const char *data, size_t len);

struct cb_redact_stream;

/* A stream redacted with sc (borrowed; NULL is the pattern-only
 * scanner), holding at most `hold` bytes (at least 4 ×
 * CB_REDACT_STREAM_LOOK; smaller is raised to that). */
struct cb_redact_stream *cb_redact_stream_new(const struct cb_leak_scanner *sc, size_t hold);
/* A blocking stream (see above). */
struct cb_redact_stream *cb_scan_stream_new(const struct cb_leak_scanner *sc, size_t hold);
/* What a blocking stream found: the secret's or pattern's name, or NULL
 * (nothing, or no name). Valid while the scanner lives. */
const char *cb_scan_stream_found(const struct cb_redact_stream *rs);
/* Wipes what is held and frees the stream. NULL is fine. */
void cb_redact_stream_free(struct cb_redact_stream *rs);

/* Adds data[0..len); sends what can go out through out. Returns 0, the
 * negative return of out, or -EACCES (no clean cut, or for a blocking
 * stream a finding: see above). */
int cb_redact_stream_write(struct cb_redact_stream *rs, const char *data, size_t len,
                           cb_redact_out_fn out, void *ud);
/* Ends the stream: what is held goes out redacted, in one call of out
 * (none when nothing is held). Returns 0, out's negative return, or for
 * a blocking stream -EACCES. */
int cb_redact_stream_finish(struct cb_redact_stream *rs, cb_redact_out_fn out, void *ud);

#endif
