/*
 * The link that carries cleave-hv's bridge between this host and the emulated arm64 machine
 * (test_arm64_enroll): one byte stream (QEMU's virtio-serial port, whose host end is a Unix
 * stream socket) between two relays, tests/lib/brelay.c on the host and
 * tests/arm64/enroll_relay.c in the machine. The bridge is SOCK_SEQPACKET, one message per packet
 * (ABI.md §4), and a host may hold several connections at once (the agent's check-in loop and a
 * `cleave-hvctl`), each of which must reach cleave-hv as a connection of its own; so the stream
 * carries frames: a 12-byte header, then one packet. Header, little-endian: u32 magic "CLRL",
 * u32 connection, u32 length (at most RELAY_MSG_MAX). Connection numbers are the host's (1, 2,
 * ... in accept order, never reused); a frame of length 0 closes that connection (either way);
 * connection 0 with length 0, sent by the host, ends the relay in the machine. A header that is
 * not one breaks the link: neither side tries to find its way back into the stream.
 * Header-only: the host test and the static arm64 program both include it.
 */
#ifndef CLEAVE_RELAYLINK_H
#define CLEAVE_RELAYLINK_H

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RELAY_MAGIC   0x4c524c43u /* "CLRL" */
#define RELAY_HDR     12
#define RELAY_MSG_MAX 4096 /* a bridge message's maximum (ABI.md §4) */
#define RELAY_CONNS   8    /* connections open at once, per side */

/* One frame being read from the stream: only what the current frame still needs is read. */
struct relay_rx {
	uint8_t buf[RELAY_HDR + RELAY_MSG_MAX];
	size_t have;
	uint32_t conn, len; /* valid once the header is in */
};

static inline uint32_t
relay_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void
relay_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Reads (fd non-blocking) what the current frame still needs. 1: a whole frame is in (conn, len,
 * payload at buf + RELAY_HDR; set have to 0 once used), 0: not yet, -1: end of stream or an
 * error, -2: not a frame header (a broken link).
 */
static inline int
relay_rx_read(struct relay_rx *r, int fd)
{
	size_t need = r->have < RELAY_HDR ? RELAY_HDR - r->have : RELAY_HDR + r->len - r->have;
	ssize_t n = read(fd, r->buf + r->have, need);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	r->have += (size_t)n;
	if (r->have == RELAY_HDR) {
		r->conn = relay_get32(r->buf + 4);
		r->len = relay_get32(r->buf + 8);
		if (relay_get32(r->buf) != RELAY_MAGIC || r->len > RELAY_MSG_MAX)
			return -2;
	}
	return r->have >= RELAY_HDR && r->have == RELAY_HDR + r->len;
}

/* Writes one frame (len 0: the close of conn) to fd, waiting at most timeout_ms. 0 or -1. */
static inline int
relay_send(int fd, uint32_t conn, const void *p, uint32_t len, int timeout_ms)
{
	uint8_t buf[RELAY_HDR + RELAY_MSG_MAX];
	size_t n = RELAY_HDR + len, off = 0;
	struct timespec t0, t;

	if (len > RELAY_MSG_MAX)
		return -1;
	relay_put32(buf, RELAY_MAGIC);
	relay_put32(buf + 4, conn);
	relay_put32(buf + 8, len);
	if (len > 0)
		memcpy(buf + RELAY_HDR, p, len);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (off < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t w;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
			return -1;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		w = write(fd, buf + off, n - off);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		off += w > 0 ? (size_t)w : 0;
	}
	return 0;
}

/*
 * A connection of this side (*fd, number id: a SOCK_SEQPACKET socket, non-blocking) is readable:
 * its packet goes onto the link; at its end (or an error) it is closed here (*fd = -1) and its
 * close frame sent. *packets counts what was relayed. 0, or -1 when the link broke.
 */
static inline int
relay_pump(int *fd, uint32_t id, int link, unsigned long *packets, int timeout_ms)
{
	uint8_t buf[RELAY_MSG_MAX];
	ssize_t n = recv(*fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n > 0) {
		(*packets)++;
		return relay_send(link, id, buf, (uint32_t)n, timeout_ms);
	}
	close(*fd);
	*fd = -1;
	return relay_send(link, id, NULL, 0, timeout_ms);
}

#endif
