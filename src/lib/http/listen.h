/* Listening sockets for the API: TCP, and the optional Unix socket. Both
 * are non-blocking, so a thread can accept until there is nothing left. */
#ifndef CB_HTTP_LISTEN_H
#define CB_HTTP_LISTEN_H

#include <stdint.h>

#include "core/error.h"

/* Binds and listens on host:port (IPv4 or IPv6 literal or name). Returns
 * the socket in *fd. */
int cb_listen_tcp(const char *host, uint16_t port, int *fd, struct cb_error *err);

/* Binds and listens on a Unix socket at `path`, created with mode 0600 (no
 * moment with looser permissions). A stale socket left by a dead server is
 * replaced; a live one, or anything that is not a socket, is refused. */
int cb__listen_unix(const char *path, int *fd, struct cb_error *err);

/* The port a TCP listening socket is bound to. */
uint16_t cb__listen_port(int fd);

#endif
