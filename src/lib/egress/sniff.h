/* What a redirected connection is: its original destination (from the
 * kernel's NAT state) and the protocol its first bytes show, read with
 * recv(MSG_PEEK) and never consumed. The classifier and the ClientHello
 * parser are pure functions over pointer and length, fed by a hostile
 * container: every length is checked before it is used. */
#ifndef CB_EGRESS_SNIFF_H
#define CB_EGRESS_SNIFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/error.h"

/* The destination a connection accepted on a redirected listener was sent
 * to before the nft `redirect` rewrote it (SO_ORIGINAL_DST, or its IPv6
 * form for an IPv6 socket). A client that connected to the listener's own
 * address gets that address back: it is an explicit proxy client. Returns
 * 0 or a negative errno (-ENOENT: the connection was not redirected). */
int cb_egress_original_dst(int fd, struct sockaddr_storage *out, socklen_t *out_len,
                           struct cb_error *err);

/* Most bytes the classifier and the SNI parser look at: a TLS record
 * header and a ClientHello of up to CB_EGRESS_HELLO_MAX bytes. A request
 * line longer than this is not classified as HTTP. */
#define CB_EGRESS_HELLO_MAX (16u * 1024)
#define CB_EGRESS_PEEK_MAX  (CB_EGRESS_HELLO_MAX + 64u)

enum cb_egress_proto {
    CB_EGRESS_NEED_MORE, /* a prefix of HTTP or TLS: peek again */
    CB_EGRESS_HTTP,      /* a whole HTTP/1.x request line */
    CB_EGRESS_TLS,       /* a TLS handshake record (0x16 0x03) */
    CB_EGRESS_OTHER,     /* anything else: refused */
};

/* Classifies the first n bytes a client sent. HTTP needs the whole
 * request line: a method token, one space, a target of visible ASCII, one
 * space, "HTTP/1." and a digit, CRLF. */
enum cb_egress_proto cb_egress_classify(const uint8_t *p, size_t n);

/* A host name is at most 253 characters. */
#define CB_EGRESS_NAME_MAX 253

/* Finds the server_name (host_name) of the TLS ClientHello at the start
 * of p[0..n): the handshake may span several records. Returns 1 with the
 * name, lowercased and NUL-terminated, in name; 0 when the ClientHello is
 * whole and has no SNI (TLS to an IP literal); -EAGAIN when more bytes are
 * needed (only while n < CB_EGRESS_PEEK_MAX); -EINVAL when it is not a
 * well-formed ClientHello, when a length disagrees with what encloses it,
 * when an extension repeats, or when the name is not a host name (letters,
 * digits, '-', '_' and inner dots); -E2BIG past CB_EGRESS_HELLO_MAX. */
int cb_egress_tls_sni(const uint8_t *p, size_t n, char name[CB_EGRESS_NAME_MAX + 1]);

#endif
