/* Cross-file pieces of the egress module. */
#ifndef CB_EGRESS_INTERNAL_H
#define CB_EGRESS_INTERNAL_H

#include "core/error.h"

/* In the calling thread's network namespace: brings lo up and adds the
 * default routes through it (IPv4 with source 127.0.0.1, without which
 * the source is 0.0.0.0 and connect hangs; IPv6). By rtnetlink, with an
 * acknowledgement checked for each request. Returns 0 or a negative errno. */
int cb__egress_rtnl_setup(struct cb_error *err);

#endif
