/* A container's network namespace for transparent egress, with no veth:
 * made by clawbox, with no interface but lo, default routes through lo, and nft
 * rules that redirect every TCP connection to the proxy listener and every
 * UDP query to port 53 to the DNS stub, keep the namespace's own loopback
 * local and reject everything else. The namespace belongs to the initial
 * user namespace, so a container cannot change any of it, and there is no
 * route out even without the rules.
 *
 * The listeners are created inside it and returned to the caller; the
 * bind-mounted file is what the OCI config's network namespace path names.
 * Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root). */
#ifndef CB_EGRESS_NETNS_H
#define CB_EGRESS_NETNS_H

#include <stdint.h>

#include "core/error.h"

/* The proxy's port inside the namespace when the caller names none. */
#define CB_EGRESS_PROXY_PORT 3128
/* The listen(2) backlog of the proxy listeners. */
#define CB_EGRESS_BACKLOG 128

struct cb_egress_netns_opts {
    /* An existing directory for the namespace file (root-only, such as
     * the container's runtime directory). */
    const char *dir;
    /* The file's name in dir: 1 to 64 of [A-Za-z0-9_-] (cb_name_valid). */
    const char *name;
    /* The port TCP is redirected to, both families; 0 means
     * CB_EGRESS_PROXY_PORT. Not 53. */
    uint16_t proxy_port;
};

/* A namespace and its sockets. Every fd is nonblocking and close-on-exec;
 * the caller may take one (and set the field to -1) before destroy. */
struct cb_egress_netns {
    char *path;     /* the bind-mounted namespace file */
    int tcp4, tcp6; /* the proxy listeners: 127.0.0.1 and ::1, proxy_port */
    int dns4, dns6; /* the DNS stub's UDP sockets: 127.0.0.1:53 and [::1]:53 */
    uint16_t proxy_port;
};

/* Creates the namespace on a helper thread (the caller's own namespace
 * is untouched): unshare(CLONE_NEWNET), bind-mount its file at dir/name
 * (which must not exist), lo up and routes by rtnetlink, the rules by
 * libnftables, then the sockets. On failure nothing is left behind.
 * Returns 0 with *out set (free with cb_egress_netns_destroy), or a
 * negative errno with a message naming the step that failed. */
int cb_egress_netns_create(const struct cb_egress_netns_opts *opts, struct cb_egress_netns **out,
                           struct cb_error *err);

/* Closes the fds still held, unmounts and removes the namespace file and
 * frees ns. The namespace itself goes once no process and no socket uses
 * it. NULL is ignored. */
void cb_egress_netns_destroy(struct cb_egress_netns *ns);

/* Moves the calling thread into the namespace whose file is path (a
 * runtime started from it then inherits it). Returns 0 or a negative
 * errno with a message. */
int cb_egress_netns_join(const char *path, struct cb_error *err);

/* Removes a namespace file left by an earlier run of the server (its
 * mount, if the mount outlived that run, and the file). Missing is fine. */
void cb_egress_netns_remove(const char *path);

#endif
