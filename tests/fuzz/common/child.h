/* A compromised worker child for the fuzz targets: the main process's real
 * session code (cb__session_run) serves one end of a socketpair, and the
 * other end sends the bytes a target built from its input and collects
 * every byte the main process sends back. Small inputs are written before
 * the session starts (when the process may enlarge socket buffers); others
 * by a thread that runs beside the session. Nothing is forked but one
 * stand-in child that exits at once (see child.c). */
#ifndef CB_FUZZ_CHILD_H
#define CB_FUZZ_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "sandbox/worker.h"

/* Most bytes of the main process's frames kept in `got`; the rest is read
 * and dropped, so the main process never blocks on a full socket. */
#define FUZZ_CHILD_MAX_GOT (4u * 1024 * 1024)

/* Runs one execution: cb__session_run with the given limits and handler
 * while the child sends `bytes` and then closes its sending side. `res` is
 * initialised here (output kept up to lim->max_output, stderr up to 64
 * KiB) and freed by the caller with cb_worker_result_free; `got` (also
 * initialised here, freed by the caller) receives what the main process
 * sent. Returns what cb__session_run returned. */
bool fuzz_child_session(const void *bytes, size_t len, const struct cb_worker_limits *lim,
                        cb_host_call_fn handler, void *ud, struct cb_worker_result *res,
                        struct cb_buf *got);

/* Splits `got` into frames. Calls fn for each whole frame in order and
 * returns how many there were; a trailing partial frame is reported with
 * partial = true. */
size_t fuzz_child_frames(const struct cb_buf *got,
                         void (*fn)(void *ud, uint32_t type, const char *p, size_t n), void *ud,
                         bool *partial);

/* Appends one frame (header and payload) to b, as the child would send it. */
void fuzz_child_frame(struct cb_buf *b, uint32_t type, const void *p, size_t n);

#endif
