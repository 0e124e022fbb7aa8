/* What the pieces of the API server share: the server and its I/O threads
 * (server.c), connections (conn.c) and the request exchange (exchange.c).
 *
 * Each I/O thread owns an epoll set, the connections it accepted and four
 * deadline queues. A connection is touched by its thread only, except
 * while its request runs on a limiter worker (state CB__RUNNING): then the
 * worker owns it until it hands it back through the thread's `done` list. */
#ifndef CB_HTTP_INTERNAL_H
#define CB_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "http/chunked.h"
#include "http/http.h"
#include "http/limiter.h"
#include "http/parse.h"
#include "http/peers.h"
#include "http/router.h"
#include "http/server.h"
#include "http/stream.h"

/* A response head: status line and our few fields. */
#define CB__OUT_HEAD_MAX 768

/* The deadline queues. All connections in one queue have the same
 * timeout, so appending keeps each queue in deadline order. */
enum cb__deadline {
    CB__Q_HEAD,        /* a request head must be complete (request_head_timeout_ms) */
    CB__Q_BODY,        /* a request body must be complete (request_body_timeout_ms) */
    CB__Q_SEND,        /* a response must be written (SEND_TIMEOUT_MS in conn.c) */
    CB__Q_LINGER,      /* draining a client after a closing response (LINGER_MS) */
    CB__Q_STREAM,      /* a streamed body's producer is idle (CB_HTTP_STREAM_POLL_MS) */
    CB__Q_STREAM_SOON, /* the same, shortly after it produced (CB__STREAM_SOON_MS) */
    CB__NQ,
};

struct cb__conn;
struct cb__req;

struct cb__queue {
    struct cb__conn *first, *last;
};

struct cb__io {
    struct cb_http_server *srv;
    pthread_t thread;
    bool started;
    int epfd;
    int evfd;              /* wakes the thread: handed-back connections, stop */
    pthread_mutex_t lock;  /* guards done */
    struct cb__conn *done; /* handed back by limiter workers */
    struct cb__queue q[CB__NQ];
    struct cb__conn *conns;   /* every connection of this thread */
    unsigned running;         /* connections in CB__RUNNING */
    unsigned streams;         /* connections in CB__STREAM */
    uint64_t accept_paused;   /* until then (mono ns) after EMFILE; 0 = accepting */
    struct cb_http_head head; /* scratch for the parser */
};

struct cb_http_server {
    struct cb_http_server_options opts;
    const struct cb_router *router;
    pthread_rwlock_t listen_lock; /* accept (read) against quiesce (write) */
    int listen_fd[2];
    bool listen_unix[2];
    char *unix_path;
    uint16_t port;
    unsigned max_connections; /* what the file descriptor limit allows */
    struct cb_limiter *limiter;
    struct cb_peers *peers;
    struct cb_metric *m_requests, *m_duration, *m_refused, *m_timeouts, *m_open;
    _Atomic uint64_t refusal_logged[2]; /* when a refusal was last logged, per reason */
    struct cb__io *io;
    unsigned nio;
    atomic_uint inflight;
    atomic_uint connections;
    atomic_uint refused_lingering; /* refused connections draining */
    atomic_uint streams;           /* streamed responses open, all threads */
    atomic_bool quiesced;          /* listeners closed: answers end their connection */
    atomic_bool stopping;
};

enum cb__conn_state {
    CB__HEAD,    /* waiting for a request head */
    CB__BODY,    /* reading a request body */
    CB__DISCARD, /* reading a refused request's small body to keep the connection */
    CB__RUNNING, /* the request is on a limiter worker */
    CB__SEND,    /* writing a response (the head only, for a streamed one) */
    CB__STREAM,  /* writing a streamed body: waiting for the socket or the producer */
    CB__LINGER,  /* after a closing response, draining what the client still sends */
};

struct cb__conn {
    struct cb__io *io;
    int fd;
    enum cb__conn_state state;
    uint32_t events; /* epoll interest; 0 = not in the epoll set */
    int q;           /* enum cb__deadline, or -1 */
    uint64_t deadline;
    struct cb__conn *qprev, *qnext;
    struct cb__conn *prev, *next;
    struct cb__conn *done_next;
    struct cb_peer_key peer;
    bool counted;     /* in srv->peers */
    bool refused;     /* over a cap: only drained, not counted in connections */
    bool got_bytes;   /* bytes of the next head arrived since the wait began */
    bool unread;      /* the client may still send bytes we will not read */
    bool close_after; /* the connection ends after this response */
    bool blocked;     /* a streamed body waits for a socket that took no more */
    unsigned quiet;   /* idle polls of its producer since it last produced */
    char *rbuf;
    size_t rlen, rcap;
    struct cb_http_scan scan;
    uint64_t body_left; /* Content-Length bytes still to read */
    struct cb_http_chunked chunked;
    struct cb__req *req;
    size_t sent; /* bytes of the response written */
    int send_rc; /* what the worker's write returned (see write_some in conn.c) */
};

enum cb__req_state {
    CB__REQ_READING, /* head seen, body being read */
    CB__REQ_RUNNING, /* handed to a limiter worker */
    CB__REQ_READY,   /* response filled in */
};

struct cb__req {
    struct cb_http_server *srv;
    struct cb__conn *conn;
    struct cb_http_request req;
    struct cb_http_response res;
    const struct cb_route *route;
    struct cb_http_head head;
    char *raw;           /* copy of the head, names and values NUL-terminated */
    char *path;          /* decoded */
    struct cb_buf body;  /* kept on JSON routes only */
    int body_fd;         /* raw routes: the spooled body, or -1 */
    uint64_t body_bytes; /* received so far */
    struct cb_limiter_job job;
    uint64_t start_ns;
    enum cb__req_state state;
    bool recorded;
    bool counted;   /* in srv->inflight */
    bool streamed;  /* the response's body is streamed (counted in srv->streams) */
    bool malformed; /* refused for its syntax: the connection must close */
    char request_id[37];
    char out[CB__OUT_HEAD_MAX]; /* the response head */
    size_t out_len;
    struct cb__stream *stream; /* once the head is prepared, for a streamed body */
};

/* exchange.c: what a request means. */

/* A request from a parsed head: routing, auth, declared size and content
 * type are decided at once (state READY when refused). Counts in flight. */
struct cb__req *cb__req_new(struct cb__conn *c, const char *buf, const struct cb_http_head *h);
/* A request that failed before it could be understood (bad head,
 * timeout): READY with an error response, not counted in flight. */
struct cb__req *cb__req_refused(struct cb_http_server *s, unsigned status, const char *code,
                                const char *msg);
/* Body bytes; past the limit (max_body_bytes, or max_raw_body_bytes on a
 * raw route) the request becomes a 413 (READY). A raw route's bytes go to
 * its spool file (a 507 when the disk refuses them). */
void cb__req_body(struct cb__req *r, const char *data, size_t n);
/* Replaces the answer of a request with an error. */
void cb__req_fail(struct cb__req *r, unsigned status, const char *code, const char *msg);
/* Prepares a request whose body is complete: parses a JSON body and runs
 * a public route's handler. Returns true when the response is ready, false
 * when the request must run on a limiter worker (cb__req_submit). */
bool cb__req_prepare(struct cb__req *r);
/* Hands the request to a limiter worker; the connection comes back through
 * cb__conn_handback, maybe before this returns. */
void cb__req_submit(struct cb__req *r);
/* Takes the response's stream for sending (NULL for a HEAD request,
 * whose stream is dropped), after the head is prepared. */
void cb__req_start_stream(struct cb__req *r);
/* Writes the access log line and the metrics of the request, once. */
void cb__req_record(struct cb__req *r);
void cb__req_free(struct cb__req *r);

/* response.c: the bytes of a response head. */

/* Whether a response with this status carries a body (and its length). */
bool cb__response_has_body(unsigned status);
/* Formats the status line and fields of r->res into r->out. */
void cb__response_head(struct cb__req *r, const char *date, bool close, bool keep_alive_10);

/* server.c */

/* Logs a refused connection, at most once a minute per reason. */
void cb__note_refusal(struct cb_http_server *s, const char *reason, const char *msg);

/* conn.c: connections. */

/* Takes an accepted socket: counts it against the caps (refusing it with
 * 503 when over), then waits for its first request head. */
void cb__conn_accept(struct cb__io *io, int fd, const struct sockaddr *sa, socklen_t salen,
                     bool is_unix);
/* Handles epoll events of a connection. */
void cb__conn_event(struct cb__conn *c, uint32_t events);
/* Handles the deadline of the first connection in a queue. */
void cb__conn_expire(struct cb__conn *c);
/* Called by a limiter worker when the request's response is ready: writes
 * what the socket takes and hands the connection back to its thread. */
void cb__conn_handback(struct cb__conn *c);
/* On the connection's thread: continues a connection handed back. */
void cb__conn_resume(struct cb__conn *c);
/* On quiesce: a streamed body ends after what its producer gave so far;
 * one stuck behind a slow reader is cut. */
void cb__conn_end_stream(struct cb__conn *c);
/* Closes a connection and frees it (and its request). */
void cb__conn_close(struct cb__conn *c);

#endif
