/* The `clawbox serve` main loop, as a library call. */
#ifndef CB_API_SERVE_H
#define CB_API_SERVE_H

#include "config/config.h"
#include "core/error.h"

/* Opens the state, starts the listeners and serves until SIGTERM or
 * SIGINT. Then it stops accepting, lets in-flight requests finish within
 * server.shutdown_grace_ms, runs the component cleanups and returns 0.
 * Start-up failures return a negative code with err set. */
int cb_serve(const struct cb_config *cfg, struct cb_error *err);

#endif
