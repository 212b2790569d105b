/* The host's end of the bridge link into the emulated arm64 machine (brelay.h, relaylink.h). */
#include "brelay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "relaylink.h"
#include "testlib.h"

#define LINK_WAIT_MS 20000 /* QEMU creates its chardev socket as it starts */
#define SEND_MS      10000 /* one frame onto the link; the machine reads it within that */

static volatile sig_atomic_t stop_asked;

static void
on_term(int sig)
{
	(void)sig;
	stop_asked = 1;
}

struct hconn {
	int fd; /* -1: free */
	uint32_t id;
};

static int
unix_socket(const char *path, int type, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -1;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

/* Connects to QEMU's chardev socket, waiting (bounded) until QEMU listens there. */
static int
link_connect(const char *path)
{
	struct sockaddr_un sa;
	double t0 = now_s();

	while (now_s() - t0 < LINK_WAIT_MS / 1000.0) {
		int fd = unix_socket(path, SOCK_STREAM, &sa);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(50 * 1000);
	}
	return -1;
}

/* A whole frame from the machine: to its connection (gone: dropped), or that connection's end. */
static int
deliver(struct hconn *c, const struct relay_rx *rx, int link)
{
	for (int i = 0; i < RELAY_CONNS; i++) {
		if (c[i].fd < 0 || c[i].id != rx->conn)
			continue;
		if (rx->len > 0 && send(c[i].fd, rx->buf + RELAY_HDR, rx->len,
					MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)rx->len)
			return 0;
		/* closed by the machine, or the agent went away: both ends learn it */
		if (rx->len > 0 && relay_send(link, c[i].id, NULL, 0, SEND_MS) != 0)
			return -1;
		close(c[i].fd);
		c[i].fd = -1;
	}
	return 0;
}

/* The child's loop: relays until SIGTERM (exit 0 after the stop frame) or the link ends (2). */
static int
relay_loop(int lfd, int link)
{
	static struct relay_rx rx;
	struct hconn c[RELAY_CONNS];
	uint32_t next_id = 1;
	unsigned long packets = 0;

	for (int i = 0; i < RELAY_CONNS; i++)
		c[i].fd = -1;
	while (!stop_asked) {
		struct pollfd p[2 + RELAY_CONNS] = {{.fd = link, .events = POLLIN},
						    {.fd = lfd, .events = POLLIN}};
		int r, free_slot = -1;

		for (int i = 0; i < RELAY_CONNS; i++) {
			p[2 + i] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
			free_slot = c[i].fd < 0 ? i : free_slot;
		}
		p[1].fd = free_slot >= 0 ? lfd : -1; /* all taken: the next waits in the backlog */
		if (poll(p, 2 + RELAY_CONNS, 200) <= 0)
			continue; /* a timeout, or SIGTERM */
		if (p[0].revents != 0) {
			r = relay_rx_read(&rx, link);
			if (r < 0 || (r == 1 && deliver(c, &rx, link) != 0))
				return 2;
			rx.have = r == 1 ? 0 : rx.have;
		}
		if (p[1].revents & POLLIN) {
			c[free_slot].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			c[free_slot].id = next_id;
			next_id += c[free_slot].fd >= 0;
		}
		for (int i = 0; i < RELAY_CONNS; i++)
			if (c[i].fd >= 0 && p[2 + i].revents != 0 &&
			    relay_pump(&c[i].fd, c[i].id, link, &packets, SEND_MS) != 0)
				return 2;
	}
	return relay_send(link, 0, NULL, 0, SEND_MS) == 0 ? 0 : 2;
}

int
brelay_start(struct brelay *r)
{
	struct sockaddr_un sa;
	int lfd = unix_socket(r->sock, SOCK_SEQPACKET, &sa), link;

	unlink(r->sock);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(r->sock, 0600) != 0 || listen(lfd, RELAY_CONNS) != 0) {
		printf("    relay: cannot listen on %s: %s\n", r->sock, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	link = link_connect(r->link);
	if (link < 0) {
		printf("    relay: QEMU's chardev %s never accepted a connection\n", r->link);
		close(lfd);
		return -1;
	}
	r->pid = fork();
	if (r->pid == 0) {
		struct sigaction sa_term = {.sa_handler =
						    on_term}; /* no SA_RESTART: poll returns */

		sigaction(SIGTERM, &sa_term, NULL);
		_exit(relay_loop(lfd, link));
	}
	close(lfd);
	close(link);
	if (r->pid < 0)
		return -1;
	t_track_child(r->pid, 1);
	return 0;
}

int
brelay_stop(struct brelay *r)
{
	int rc = r->pid > 0 ? t_stop_child(r->pid, SIGTERM, 15000) : -1;

	r->pid = 0;
	unlink(r->sock);
	return rc;
}
