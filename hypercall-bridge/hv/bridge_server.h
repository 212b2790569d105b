/*
 * cleave-hv's end of the host bridge: an AF_UNIX SOCK_SEQPACKET socket whose callers are
 * classified by SO_PEERCRED (the configured agent uid, or anyone else), each message decoded
 * strictly, dispatched, and answered with one reply. Bounded: a fixed number of connections,
 * one message at a time per connection. Other callers hold at most BRIDGE_OTHER_MAX of them
 * and are closed when idle, so they can never lock the agent out; a newcomer that finds no
 * room takes the slot of the longest-idle other caller (or, for the agent, of its own
 * longest-idle connection). It knows nothing about what the functions do.
 */
#ifndef CLEAVE_BRIDGE_SERVER_H
#define CLEAVE_BRIDGE_SERVER_H

#include <sys/types.h>

#include "dispatch.h"

#include <stdint.h>

#define BRIDGE_MAX_CONNS    16
#define BRIDGE_OTHER_MAX    12 /* the rest are kept for the agent */
#define BRIDGE_IDLE_DEFAULT 30 /* seconds an other caller may stay silent */

struct bridge_server {
	int listen_fd;
	int conn_fd[BRIDGE_MAX_CONNS];
	enum dispatch_caller conn_caller[BRIDGE_MAX_CONNS];
	uint64_t conn_seen[BRIDGE_MAX_CONNS]; /* monotonic ms of the last message (or accept) */
	uint64_t conn_used[BRIDGE_MAX_CONNS]; /* the same as an order: ties in ms are common */
	uint64_t uses;
	uint64_t idle_ms; /* other callers silent this long are closed; the agent's are not */
	uid_t agent_uid;
	char path[108];
};

/*
 * Listens on path (a stale socket file is replaced), mode 0600 owned by agent_uid when we may
 * chown it; idle_ms starts at BRIDGE_IDLE_DEFAULT seconds (the caller may change it). Returns
 * 0 or -errno.
 */
int bridge_server_open(struct bridge_server *s, const char *path, uid_t agent_uid);
/* Serves what is ready within timeout_ms (one poll round). 0 or -errno. */
int bridge_server_poll(struct bridge_server *s, struct dispatch *d, int timeout_ms);
/* Closes everything and removes the socket file. */
void bridge_server_close(struct bridge_server *s);

#endif
