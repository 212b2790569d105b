/*
 * Bridge socket server. The caller class comes only from the kernel (SO_PEERCRED at accept),
 * never from the message. A malformed message gets an error reply and changes nothing; a peer
 * that sends garbage cannot make the server block, allocate, or read past its 4 KiB buffer.
 * Peers that connect and stay silent cannot fill the table either: other callers have a cap
 * and an idle timeout, and a newcomer evicts the longest-idle one (see bridge_server.h).
 */
#include "bridge_server.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hypercall-bridge/lib/bridge_msg.h"
#include "log.h"
#include "util.h"

int
bridge_server_open(struct bridge_server *s, const char *path, uid_t agent_uid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, r;

	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	for (int i = 0; i < BRIDGE_MAX_CONNS; i++)
		s->conn_fd[i] = -1;
	s->agent_uid = agent_uid;
	s->idle_ms = (uint64_t)BRIDGE_IDLE_DEFAULT * 1000;
	if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) != 0 ||
	    str_copy(s->path, sizeof(s->path), path) != 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0600) != 0 ||
	    listen(fd, 8) != 0) {
		r = -errno;
		log_errno(r, "cleave-hv: cannot listen on %s", path);
		close(fd);
		return r;
	}
	/* Only root can hand the socket to the agent's uid; otherwise they are the same uid. */
	if (geteuid() == 0 && chown(path, agent_uid, (gid_t)-1) != 0)
		log_errno(errno, "cleave-hv: cannot give %s to uid %u", path, (unsigned)agent_uid);
	s->listen_fd = fd;
	return 0;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
conn_close(struct bridge_server *s, int slot, const char *why)
{
	log_debug("cleave-hv: bridge connection closed (%s)", why);
	close(s->conn_fd[slot]);
	s->conn_fd[slot] = -1;
}

/* Of two slots (-1: none), the one silent for longer. */
static int
older(const struct bridge_server *s, int a, int b)
{
	return a < 0 || (b >= 0 && s->conn_used[b] < s->conn_used[a]) ? b : a;
}

/*
 * A slot for a new connection of class who, or -1. Other callers never take a slot from the
 * agent: past their cap, or with the table full, they evict the longest-idle other caller.
 * The agent takes a free slot, else the longest-idle other caller's, else its own oldest.
 */
static int
pick_slot(struct bridge_server *s, enum dispatch_caller who)
{
	int free_slot = -1, others = 0, lru_other = -1, lru_agent = -1, victim;

	for (int i = 0; i < BRIDGE_MAX_CONNS; i++) {
		if (s->conn_fd[i] < 0) {
			free_slot = free_slot < 0 ? i : free_slot;
		} else if (s->conn_caller[i] == CALLER_HOST_OTHER) {
			others++;
			lru_other = older(s, lru_other, i);
		} else {
			lru_agent = older(s, lru_agent, i);
		}
	}
	if (who == CALLER_HOST_OTHER && (others >= BRIDGE_OTHER_MAX || free_slot < 0))
		victim = lru_other;
	else if (free_slot >= 0)
		return free_slot;
	else
		victim = lru_other >= 0 ? lru_other : lru_agent;
	if (victim >= 0)
		conn_close(s, victim, "the longest idle, for a new caller");
	return victim;
}

static void
accept_one(struct bridge_server *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	enum dispatch_caller who;
	int slot;

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		log_warn("cleave-hv: bridge connection refused (no peer credentials)");
		close(fd);
		return;
	}
	who = cred.uid == s->agent_uid ? CALLER_AGENT : CALLER_HOST_OTHER;
	slot = pick_slot(s, who);
	if (slot < 0) {
		log_warn("cleave-hv: bridge connection refused (too many connections)");
		close(fd);
		return;
	}
	s->conn_fd[slot] = fd;
	s->conn_caller[slot] = who;
	s->conn_seen[slot] = mono_ms();
	s->conn_used[slot] = ++s->uses;
	log_debug("cleave-hv: bridge connection from pid %ld uid %u (%s)", (long)cred.pid,
		  (unsigned)cred.uid, who == CALLER_AGENT ? "agent" : "other");
}

/* Closes other callers' connections that have been silent for longer than idle_ms. */
static void
close_idle(struct bridge_server *s)
{
	uint64_t now = mono_ms();

	for (int i = 0; i < BRIDGE_MAX_CONNS; i++)
		if (s->conn_fd[i] >= 0 && s->conn_caller[i] == CALLER_HOST_OTHER &&
		    now - s->conn_seen[i] > s->idle_ms)
			conn_close(s, i, "idle");
}

/* Answers one message on connection slot; returns -1 when the connection should close. */
static int
serve_one(struct bridge_server *s, int slot, struct dispatch *d)
{
	uint8_t in[CLV_MSG_HDR_LEN + CLV_MSG_PAYLOAD_MAX + 1],
		out[CLV_MSG_HDR_LEN + CLV_MSG_PAYLOAD_MAX];
	uint8_t payload[CLV_MSG_PAYLOAD_MAX];
	struct clv_msg_hdr h, rh;
	const uint8_t *p = NULL;
	ssize_t n = recv(s->conn_fd[slot], in, sizeof(in), 0);
	struct dispatch_call c;
	int64_t st;
	long len;
	int r;

	if (n <= 0)
		return n == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
	s->conn_seen[slot] = mono_ms();
	s->conn_used[slot] = ++s->uses;
	memset(&rh, 0, sizeof(rh));
	rh.abi_major = CLV_ABI_MAJOR;
	rh.kind = CLV_MSG_REPLY;
	r = clv_msg_decode(in, (size_t)n, &h, &p);
	if (r == CLV_OK && h.kind != CLV_MSG_REQUEST)
		r = CLV_E_INVALID_PARAMETER;
	/* Echo what we could read of the request, so the client can match the answer. */
	if ((size_t)n >= CLV_MSG_HDR_LEN) {
		memcpy(&rh.fid, in + 8, 4);
		memcpy(&rh.request_id, in + 16, 8);
	}
	if (r != CLV_OK) {
		rh.status = r;
	} else {
		memset(&c, 0, sizeof(c));
		c.caller = s->conn_caller[slot];
		c.fid = h.fid;
		c.in = p;
		c.in_len = h.payload_len;
		c.out = payload;
		c.out_cap = sizeof(payload);
		st = dispatch_call(d, &c);
		rh.status = st < 0 ? (int32_t)st : CLV_OK;
		rh.payload_len = st < 0 ? 0 : (uint32_t)c.out_len;
		if (h.fid == CLV_FN_VERSION && st >= 0) {
			memset(payload, 0, 8);
			for (int i = 0; i < 4; i++)
				payload[i] = (uint8_t)((uint64_t)st >> (8 * i));
			rh.payload_len = 8;
		}
	}
	len = clv_msg_encode(&rh, payload, out, sizeof(out));
	if (len < 0) {
		/* A handler produced a reply of the wrong size: report it, never send it. */
		log_err("cleave-hv: reply to 0x%08x has a bad size (%u)", rh.fid, rh.payload_len);
		rh.status = CLV_E_IO;
		rh.payload_len = 0;
		len = clv_msg_encode(&rh, NULL, out, sizeof(out));
	}
	if (len < 0 || send(s->conn_fd[slot], out, (size_t)len, MSG_NOSIGNAL) != len)
		return -1;
	return 0;
}

int
bridge_server_poll(struct bridge_server *s, struct dispatch *d, int timeout_ms)
{
	struct pollfd pfd[BRIDGE_MAX_CONNS + 1];
	int n, map[BRIDGE_MAX_CONNS + 1], k = 0;

	pfd[k].fd = s->listen_fd;
	pfd[k].events = POLLIN;
	map[k++] = -1;
	for (int i = 0; i < BRIDGE_MAX_CONNS; i++) {
		if (s->conn_fd[i] >= 0) {
			pfd[k].fd = s->conn_fd[i];
			pfd[k].events = POLLIN;
			map[k++] = i;
		}
	}
	n = poll(pfd, (nfds_t)k, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 1; i < k; i++) {
		if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (serve_one(s, map[i], d) != 0)
			conn_close(s, map[i], "by the peer, or a reply it does not read");
	}
	close_idle(s);
	if (pfd[0].revents & POLLIN)
		accept_one(s);
	return 0;
}

void
bridge_server_close(struct bridge_server *s)
{
	for (int i = 0; i < BRIDGE_MAX_CONNS; i++)
		if (s->conn_fd[i] >= 0)
			close(s->conn_fd[i]);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	s->listen_fd = -1;
}
