/* Open connections per client address, for the per-address cap. An IPv4
 * client (also as an IPv4-mapped IPv6 address) counts by its address, an
 * IPv6 client by its /64 prefix, the block one host usually holds. Unix
 * socket peers are not counted. Thread-safe. */
#ifndef CB_HTTP_PEERS_H
#define CB_HTTP_PEERS_H

#include <stdbool.h>
#include <sys/socket.h>

struct cb_peer_key {
    unsigned char addr[16];
};

struct cb_peers;

/* limit: connections one address may hold; 0 = no cap. */
struct cb_peers *cb_peers_new(unsigned limit);
void cb__peers_free(struct cb_peers *p);

/* The key of a peer address; false for addresses that are not counted. */
bool cb__peer_key_from(const struct sockaddr *sa, socklen_t len, struct cb_peer_key *k);

/* Counts one more connection from k. Returns false, counting nothing, when
 * k already holds the limit. */
bool cb__peers_acquire(struct cb_peers *p, const struct cb_peer_key *k);
void cb__peers_release(struct cb_peers *p, const struct cb_peer_key *k);
/* Connections counted for k now: only tests read it, the table being
 * private to peers.c. */
unsigned cb__peers_count(struct cb_peers *p, const struct cb_peer_key *k);

#endif
