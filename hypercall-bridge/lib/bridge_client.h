/*
 * The client side of the host bridge, used by cleave-agent and cleave-hvctl: connect to
 * cleave-hv's socket and make one call at a time (request, then its reply, matched by request
 * id, with a deadline). It does not interpret payloads beyond their size.
 */
#ifndef CLEAVE_BRIDGE_CLIENT_H
#define CLEAVE_BRIDGE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct bridge_client {
	int fd;
	uint64_t next_id;
	int timeout_ms;
};

/* Connects to path. 0, or -errno (-ENOENT/-ECONNREFUSED: cleave-hv is not running). */
int bridge_connect(struct bridge_client *c, const char *path, int timeout_ms);
void bridge_close(struct bridge_client *c);

/*
 * Calls fid with req (req_len bytes, may be NULL/0). On success the reply payload is copied to
 * reply (cap bytes) and *reply_len set. Returns the call's status (CLV_OK or a CLV_E_*, all
 * between -1 and -9), or a transport failure as a negative errno (-ETIMEDOUT, -EPIPE, -EPROTO
 * for a reply that does not match), which are all below -9 on Linux.
 */
int bridge_call(struct bridge_client *c, uint32_t fid, const void *req, size_t req_len, void *reply,
		size_t cap, size_t *reply_len);

/* A human-readable name for a CLV_E_* status or transport error. */
const char *bridge_strerror(int status);

#endif
