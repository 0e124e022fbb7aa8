/* What pipeline.c shares with stream.c: one request's state and the
 * pieces of the pipeline both use. */
#ifndef CB_PROXY_PIPELINE_INTERNAL_H
#define CB_PROXY_PIPELINE_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "proxy/forward.h"
#include "proxy/pipeline.h"
#include "proxy/ratelimit.h"
#include "proxy/url.h"

struct cb_leak_scanner;
struct cb_secret_store;
struct cb_redact_stream;

/* Request headers a tool may send, and the bytes of one "Name: value". */
#define CB__PROXY_MAX_HEADERS      100
#define CB__PROXY_MAX_HEADER_BYTES 8192
/* Credentials injected into one request. */
#define CB__PROXY_MAX_INJECT 16

/* The credentials one request works with: a store and the scanner built
 * from it. Refcounted, so a reload can swap in a new snapshot while
 * requests in flight finish with the one they took. */
struct cb__proxy_creds {
    atomic_uint refs;
    bool own_store; /* the first snapshot borrows the caller's store */
    struct cb_secret_store *store;
    struct cb_leak_scanner *scanner;
};

/* Everything one request accumulates, freed together by req_free. */
struct cb__proxy_req {
    struct cb__proxy_creds *creds;
    const char *tool;
    const char *request_id;
    bool container;                       /* a container's request: named so, and keyed by `who` */
    const struct cb_proxy_sink *sink;     /* the answer streams there */
    const struct cb_proxy_body *body_src; /* the request body comes from there */
    struct cb_buf pre;                    /* its first bytes, read before the stages */
    bool body_streams;                    /* ... and more follow */
    struct cb_redact_stream *upload;      /* scans what streams up */
    struct cb_buf up_ready;               /* scanned, not yet taken by libcurl */
    size_t up_off;
    bool up_ended;
    int up_err;      /* the body's failure: the source's, or -EACCES for a leak */
    const char *key; /* rate limit and in-flight key */
    bool in_flight;  /* holds one of the tool's slots in p->inflight */
    char who[CB_PROXY_RATELIMIT_KEY_MAX + 8];
    const char *method;
    const char *raw_url; /* as the tool wrote it */
    const char *body;
    size_t body_len;
    struct cb_proxy_url url;
    bool url_ok;
    char *headers[CB__PROXY_MAX_HEADERS + CB__PROXY_MAX_INJECT];
    size_t n_headers;
    size_t inject_from; /* headers[inject_from..] hold secrets */
    char injected[256]; /* credential names, comma-separated, for the audit */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint64_t start_ns;
};

/* Writes the request's audit line (its URL, reason and method redacted). */
void cb__proxy_audit(struct cb_proxy *p, struct cb__proxy_req *q, const char *decision,
                     const char *reason, int status, uint64_t bytes);
/* The refusal of a request that holds a credential: -EACCES, err naming
 * what was `found` (a secret's or pattern's name; NULL: unscannable). */
int cb__proxy_leak_refusal(const struct cb__proxy_req *q, const char *found, struct cb_error *err);
/* {"error": msg}. */
json_t *cb__proxy_error_envelope(const char *msg);
/* The upstream's headers as the caller gets them: a name that holds a
 * secret renamed to its redaction (in `from` itself), every value
 * redacted. A new object. */
json_t *cb__proxy_answer_headers(const struct cb_leak_scanner *sc, json_t *from);

/* stream.c */
/* Reads the start of q's body from q->body_src: all of it when it ends
 * within CB_REDACT_STREAM_HOLD bytes (then it is q->body, scanned whole
 * by the leak stage), else q->body_streams. A negative return is the
 * source's. */
int cb__proxy_preread_body(struct cb__proxy_req *q);
/* Forwards q as fr says, its answer to q->sink and (q->body_streams) its
 * body from q->body_src; writes the audit line; returns the envelope. */
json_t *cb__proxy_stream_stage(struct cb_proxy *p, struct cb__proxy_req *q,
                               struct cb_forward_request *fr);
/* Frees what a streamed body held (wiped). */
void cb__proxy_upload_free(struct cb__proxy_req *q);

#endif
