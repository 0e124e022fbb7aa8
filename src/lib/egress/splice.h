/* The byte relay of TLS passthrough (tls = "passthrough"): once
 * the SNI is allowed and the upstream connected, the client's bytes go to
 * the upstream unchanged and back. Nothing is read into: no injection, no
 * redaction, only the byte counts for the audit.
 *
 * A state machine with a step function rather than a blocking helper: the
 * server's I/O threads are epoll loops (http/server.c), and a thread per
 * passthrough connection would let one container's 50 idle connections
 * cost 50 stacks. A step never waits and moves at most one buffer per
 * direction (one recv and one send each), so a slow or silent peer costs
 * the loop nothing, and a fast one cannot keep the loop from the others.
 * A thread wanting the blocking form polls on what the step asks for.
 *
 * Each direction has a fixed CB_EGRESS_SPLICE_BUF buffer. When one side
 * ends its sending (recv returns 0) and its last bytes are delivered, the
 * other side is shut for writing, so half-closed protocols keep working;
 * the relay is done when both directions are. It fails once neither
 * direction has moved a byte for the idle timeout. The fds stay the
 * caller's. */
#ifndef CB_EGRESS_SPLICE_H
#define CB_EGRESS_SPLICE_H

#include <stdint.h>

#include "core/error.h"

#define CB_EGRESS_SPLICE_BUF (64u * 1024)

enum {
    CB_EGRESS_SPLICE_UP = 0,   /* client to upstream; also: the client fd */
    CB_EGRESS_SPLICE_DOWN = 1, /* upstream to client; also: the upstream fd */
};

struct cb_egress_splice;

/* A relay between two connected nonblocking stream sockets, failing after
 * idle_ms (at least 1) without a byte moved. Returns 0 with *out set (free
 * with cb_egress_splice_free), or -EINVAL for a blocking fd or a zero
 * timeout. */
int cb_egress_splice_new(int client, int upstream, uint64_t idle_ms, struct cb_egress_splice **out,
                         struct cb_error *err);
void cb_egress_splice_free(struct cb_egress_splice *s);

/* Moves what the sockets allow now. Returns 1 while the relay goes on,
 * with events[CB_EGRESS_SPLICE_UP] and events[CB_EGRESS_SPLICE_DOWN] the
 * poll events (POLLIN, POLLOUT or both; 0 for none) to wait for on the
 * client and the upstream fd before calling again; wait level-triggered
 * (poll, or epoll without EPOLLET), and no longer than
 * cb_egress_splice_deadline_ns. Leave an fd with 0 out of the wait (poll:
 * fd -1): its hangup would be reported again and again with nothing to
 * do. Returns 0 when both directions have ended
 * and both shutdowns are sent; -ETIMEDOUT after the idle timeout; or the
 * negative errno of a failed recv or send (-ECONNRESET, -EPIPE). After 0
 * or an error, close both fds. */
int cb_egress_splice_step(struct cb_egress_splice *s, short events[2], struct cb_error *err);

/* The CLOCK_MONOTONIC time (cb_now_mono_ns) at which the idle timeout
 * fires unless a byte moves first. */
uint64_t cb_egress_splice_deadline_ns(const struct cb_egress_splice *s);

/* Bytes delivered so far in each direction, for the audit. */
void cb_egress_splice_bytes(const struct cb_egress_splice *s, uint64_t *up, uint64_t *down);

#endif
