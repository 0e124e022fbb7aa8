/* Content codings of upstream responses. A body the proxy cannot read is a
 * body it cannot scan: an upstream that reflects a credential could hand
 * it to the tool gzipped, past the redaction. So gzip and deflate bodies
 * are decoded (the tool gets the decoded body, without the
 * Content-Encoding header), and any other coding is refused.
 *
 * Decoding is bounded by the response cap: it stops as soon as the decoded
 * bytes would pass it (a gzip bomb costs at most the cap in memory and
 * the time to inflate that much), and at most CB_DECODE_MAX_CODINGS
 * codings are undone. */
#ifndef CB_PROXY_DECODE_H
#define CB_PROXY_DECODE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

#define CB_DECODE_MAX_CODINGS 4

struct cb_forward_response;

/* Decodes in[0, len) by the codings of a Content-Encoding value (a
 * comma-separated list, applied in order, so undone last to first;
 * "identity" is skipped; "gzip" and "x-gzip" are gzip, members
 * concatenated; "deflate" is zlib-wrapped, or raw deflate as some servers
 * send it). On success *out (initialised here, capped at max) holds the
 * decoded bytes. Returns 0, -ENOTSUP for a coding it does not know (or
 * too many), -EFBIG past max, or -EBADMSG for a corrupt or truncated
 * stream; err says which in words a model can act on. */
int cb__decode_body(const char *codings, const void *in, size_t len, size_t max, struct cb_buf *out,
                    struct cb_error *err);

/* Decodes a response in place by its content-encoding header, if any:
 * the body is replaced, content-encoding removed and content-length set to
 * the decoded length. An empty body (HEAD, 204, 304) is left alone.
 * Returns 0 or a code of cb__decode_body, with err naming the host. */
int cb__decode_response(struct cb_forward_response *res, const char *host, size_t max,
                        struct cb_error *err);

#endif
