/* Requests in flight through the proxy, per key (a tool name; later a
 * container id), for a limit such as a manifest's network.max_concurrent:
 * a key holds at most `max` slots at once, and a request past that is
 * refused at once rather than queued (a tool blocked on its own requests
 * would only hold its worker longer). A key has an entry only while it
 * holds a slot, so the table is as large as the requests in flight.
 * Thread-safe. */
#ifndef CB_PROXY_INFLIGHT_H
#define CB_PROXY_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cb_proxy_inflight;

struct cb_proxy_inflight *cb_proxy_inflight_new(void);
/* Accepts NULL. */
void cb__proxy_inflight_free(struct cb_proxy_inflight *f);

/* Takes a slot for key (len bytes) unless it holds `max` already; on false
 * *held (when non-NULL) says how many it holds. */
bool cb__proxy_inflight_take(struct cb_proxy_inflight *f, const char *key, size_t len, uint64_t max,
                             uint64_t *held);

/* Gives back a slot that cb__proxy_inflight_take gave. */
void cb__proxy_inflight_put(struct cb_proxy_inflight *f, const char *key, size_t len);

#endif
