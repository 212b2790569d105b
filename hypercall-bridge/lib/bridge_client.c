/*
 * Bridge client: SEQPACKET keeps message boundaries, so each send is one request and each recv
 * one reply. Replies are decoded with the same strict codec as requests, and must echo the
 * request's id and function.
 */
#include "bridge_client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge_msg.h"
#include "util.h"

int
bridge_connect(struct bridge_client *c, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_id = 1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) != 0)
		return -ENAMETOOLONG;
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int r = -errno;

		close(c->fd);
		c->fd = -1;
		return r;
	}
	return 0;
}

void
bridge_close(struct bridge_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int
bridge_call(struct bridge_client *c, uint32_t fid, const void *req, size_t req_len, void *reply,
	    size_t cap, size_t *reply_len)
{
	uint8_t buf[CLV_MSG_HDR_LEN + CLV_MSG_PAYLOAD_MAX];
	struct clv_msg_hdr h = {.abi_major = CLV_ABI_MAJOR,
				.kind = CLV_MSG_REQUEST,
				.fid = fid,
				.request_id = c->next_id++,
				.payload_len = (uint32_t)req_len};
	struct clv_msg_hdr rh;
	const uint8_t *p;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	long len;
	ssize_t n;

	*reply_len = 0;
	if (req_len > CLV_MSG_PAYLOAD_MAX)
		return CLV_E_INVALID_PARAMETER;
	len = clv_msg_encode(&h, req, buf, sizeof(buf));
	if (len < 0)
		return CLV_E_INVALID_PARAMETER;
	if (send(c->fd, buf, (size_t)len, MSG_NOSIGNAL) != len)
		return -EPIPE;
	n = poll(&pfd, 1, c->timeout_ms);
	if (n == 0)
		return -ETIMEDOUT;
	n = n < 0 ? -1 : recv(c->fd, buf, sizeof(buf), 0);
	if (n <= 0)
		return -EPIPE;
	if (clv_msg_decode(buf, (size_t)n, &rh, &p) != CLV_OK || rh.kind != CLV_MSG_REPLY ||
	    rh.request_id != h.request_id || rh.fid != fid)
		return -EPROTO;
	if (rh.status != CLV_OK)
		return rh.status;
	if (rh.payload_len > cap)
		return -EPROTO;
	if (rh.payload_len > 0)
		memcpy(reply, p, rh.payload_len);
	*reply_len = rh.payload_len;
	return CLV_OK;
}

const char *
bridge_strerror(int status)
{
	static const char *const names[] = {
		"ok",
		"not supported",
		"nothing to do",
		"invalid parameter",
		"denied: this caller may not do that",
		"busy, try again",
		"not possible in the current state",
		"bad guest address",
		"ticket refused (signature, device, hypervisor, counter or expiry)",
		"corporate volume I/O error",
	};

	if (status <= 0 && status >= -9)
		return names[-status];
	if (status == -ETIMEDOUT)
		return "cleave-hv did not answer in time";
	if (status == -EPROTO)
		return "cleave-hv sent a reply that does not match the request";
	return "cleave-hv is not reachable";
}
