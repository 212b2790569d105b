/*
 * One connection to the collector. Sockets are blocking with send and receive timeouts, so a
 * stalled collector costs the sender's own thread a bounded wait and nothing else. "Arrived"
 * is as close as TCP syslog can say without an application acknowledgement: the kernel's send
 * queue is empty (SIOCOUTQ: the peer's TCP acknowledged every byte) and then the connection
 * stayed up for the hold time, so that a collector that stopped without reading what its
 * kernel had acknowledged (which resets the connection) is noticed before the position moves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "siem_net.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS 5000
#define IO_TIMEOUT_S       5 /* a send, a TLS handshake (the default lease: 15 s) */

void
siem_conn_init(struct siem_conn *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->fd = -1;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-blocking connect bounded by CONNECT_TIMEOUT_MS; the socket is left blocking. */
static int
connect_one(const struct addrinfo *ai)
{
	struct timeval tv = {IO_TIMEOUT_S, 0};
	struct pollfd p;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	int one = 1, err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return -err;
	}
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1) {
		close(fd);
		return -ETIMEDOUT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
		close(fd);
		return err ? -err : -EIO;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int
tcp_connect(const struct siem_config *cfg, char *err, size_t cap)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[8];
	int fd = -ENOENT, g;

	snprintf(port, sizeof(port), "%u", cfg->port);
	g = getaddrinfo(cfg->host, port, &hints, &res);
	if (g != 0) {
		snprintf(err, cap, "cannot resolve %s: %s", cfg->host, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = connect_one(ai);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, cap, "cannot connect to %s:%u: %s", cfg->host, cfg->port,
			 strerror(-fd));
	return fd;
}

/* TLS over c->fd: the collector's certificate must chain to the CA and name the server name. */
static int
tls_start(struct siem_conn *c, const struct siem_config *cfg, char *err, size_t cap)
{
	const char *name = cfg->server_name[0] ? cfg->server_name : cfg->host;
	struct in6_addr a;
	int r;

	if (gnutls_certificate_allocate_credentials(&c->cred) < 0)
		return -ENOMEM;
	r = gnutls_certificate_set_x509_trust_file(c->cred, cfg->ca_file, GNUTLS_X509_FMT_PEM);
	if (r <= 0) {
		snprintf(err, cap, "no CA certificate read from %s", cfg->ca_file);
		return -EINVAL;
	}
	if (cfg->client_cert[0] != '\0' &&
	    (r = gnutls_certificate_set_x509_key_file(c->cred, cfg->client_cert, cfg->client_key,
						      GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(err, cap, "client certificate %s: %s", cfg->client_cert,
			 gnutls_strerror(r));
		return -EINVAL;
	}
	if (gnutls_init(&c->tls, GNUTLS_CLIENT) < 0)
		return -ENOMEM;
	gnutls_set_default_priority(c->tls);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
	/* SNI only for names; an address is checked against the certificate's IP entries. */
	if (inet_pton(AF_INET, name, &a) != 1 && inet_pton(AF_INET6, name, &a) != 1)
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, name, strlen(name));
	gnutls_session_set_verify_cert(c->tls, name, 0);
	gnutls_transport_set_int(c->tls, c->fd);
	gnutls_handshake_set_timeout(c->tls, IO_TIMEOUT_S * 1000);
	/* Non-fatal answers (a receive timeout) again, until the handshake timeout is over. */
	for (int tries = 0; tries < 64; tries++) {
		r = gnutls_handshake(c->tls);
		if (r >= 0 || gnutls_error_is_fatal(r) != 0)
			break;
	}
	if (r < 0) {
		snprintf(err, cap, "TLS with %s:%u failed: %s", cfg->host, cfg->port,
			 gnutls_strerror(r));
		return -EPROTO;
	}
	return 0;
}

int
siem_conn_open(struct siem_conn *c, const struct siem_config *cfg, char *err, size_t cap)
{
	int fd, r = 0;

	err[0] = '\0';
	if (cfg->transport == SIEM_FILE) {
		fd = open(cfg->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			snprintf(err, cap, "cannot open %s: %s", cfg->path, strerror(errno));
			return r;
		}
	} else {
		fd = tcp_connect(cfg, err, cap);
		if (fd < 0)
			return fd;
	}
	pthread_mutex_lock(&c->lock);
	c->fd = fd;
	c->transport = cfg->transport;
	pthread_mutex_unlock(&c->lock);
	if (cfg->transport == SIEM_TLS)
		r = tls_start(c, cfg, err, cap);
	if (r != 0)
		siem_conn_close(c);
	return r;
}

int
siem_conn_send(struct siem_conn *c, const char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (c->tls != NULL) {
			n = gnutls_record_send(c->tls, buf + done, len - done);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				return -ETIMEDOUT; /* the send timeout: the collector stalls */
			if (n < 0)
				return -ECONNRESET;
		} else {
			n = c->transport == SIEM_FILE
				    ? write(c->fd, buf + done, len - done)
				    : send(c->fd, buf + done, len - done, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Whatever the collector sent: nothing is expected but TLS housekeeping (session tickets),
 * which GnuTLS handles when asked to read. 0 while the connection is up; -EPIPE once the peer
 * closed it in order (FIN, or TLS close_notify); -ECONNRESET once it was reset.
 */
static int
drain_input(struct siem_conn *c)
{
	char buf[512];
	int fl = fcntl(c->fd, F_GETFL), r = 0;

	fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
	for (int i = 0; i < 64 && r == 0; i++) {
		ssize_t n = c->tls ? gnutls_record_recv(c->tls, buf, sizeof(buf))
				   : recv(c->fd, buf, sizeof(buf), 0);

		if (c->tls ? (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			   : (n < 0 && (errno == EAGAIN || errno == EINTR)))
			break;
		if (n == 0 || (c->tls && n == GNUTLS_E_PREMATURE_TERMINATION))
			r = -EPIPE;
		else if (n < 0)
			r = -ECONNRESET;
	}
	fcntl(c->fd, F_SETFL, fl);
	return r;
}

/*
 * Whether the connection was reset: TCP state CLOSE (a reset also empties the send queue, so
 * an empty queue means "acknowledged" only while this says no). ESTABLISHED, or CLOSE_WAIT
 * after the peer's orderly close, are fine.
 */
static int
was_reset(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int err = 0;
	socklen_t elen = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)
		return 1;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return 1;
	return ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT;
}

/*
 * Watches the socket for up to ms: 0 while it is up (*eof set once the peer closed in
 * order: then only its state is checked, since it stays readable), -ECONNRESET when reset.
 */
static int
watch(struct siem_conn *c, int ms, int *eof)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
	int r;

	if (*eof) {
		usleep((useconds_t)MIN(ms, 10) * 1000);
		return was_reset(c->fd) ? -ECONNRESET : 0;
	}
	if (poll(&p, 1, ms) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLNVAL))
		return -ECONNRESET;
	r = drain_input(c);
	if (r == -EPIPE) {
		*eof = 1;
		r = 0;
	}
	return r;
}

/*
 * A peer that closes with data it has not read resets the connection (its kernel answers
 * unread or later data with RST), so an orderly close after every byte was acknowledged means
 * the collector read it all: that counts as arrived too (1), and the caller reconnects.
 */
int
siem_conn_settle(struct siem_conn *c, unsigned hold_ms, unsigned timeout_ms, atomic_int *stop)
{
	int64_t deadline = mono_ms() + timeout_ms, end;
	int queued = 0, eof = 0, r;

	if (c->transport == SIEM_FILE)
		return fdatasync(c->fd) == 0 ? 0 : -errno;
	for (;;) {
		if (ioctl(c->fd, SIOCOUTQ, &queued) != 0 || was_reset(c->fd))
			return -ECONNRESET;
		if (queued == 0)
			break;
		if (atomic_load(stop) || mono_ms() >= deadline)
			return -ETIMEDOUT;
		r = watch(c, 10, &eof);
		if (r != 0)
			return r;
	}
	end = mono_ms() + hold_ms;
	do {
		r = watch(c, (int)MAX(end - mono_ms(), 0), &eof);
		if (r != 0)
			return r;
	} while (mono_ms() < end && !atomic_load(stop));
	return was_reset(c->fd) ? -ECONNRESET : eof;
}

void
siem_conn_close(struct siem_conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	if (c->cred != NULL)
		gnutls_certificate_free_credentials(c->cred);
	if (c->fd >= 0)
		close(c->fd);
	c->tls = NULL;
	c->cred = NULL;
	c->fd = -1;
	pthread_mutex_unlock(&c->lock);
}

void
siem_conn_abort(struct siem_conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->fd >= 0 && c->transport != SIEM_FILE)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&c->lock);
}
