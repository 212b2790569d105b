/*
 * What cleave-server checks before it serves: that it can listen on its address (the socket is
 * made here and handed to libmicrohttpd, so nothing can take the port in between) and that
 * GnuTLS accepts the configured priority string. No request handling here.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int
make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

int
httpd_bind(const char *host, uint16_t port, int *fd, uint16_t *bound_port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int s, one = 1, r;

	if (make_addr(host, port, &ss, &len) != 0) {
		log_err("httpd: %s is not a numeric IP address", host);
		return -EINVAL;
	}
	s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		r = -errno;
		log_errno(errno, "httpd: socket");
		return r;
	}
	/* As libmicrohttpd would: restart over TIME_WAIT, and IPv6 sockets take IPv6 only. */
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, 4096) != 0) {
		r = -errno;
		log_err("cannot listen on %s%s%s:%u: %s", strchr(host, ':') ? "[" : "", host,
			strchr(host, ':') ? "]" : "", port, strerror(-r));
		close(s);
		return r;
	}
	len = sizeof(ss);
	if (getsockname(s, (struct sockaddr *)&ss, &len) == 0)
		port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fd = s;
	*bound_port = port;
	return 0;
}

int
httpd_tls_priorities_check(const char *prio, char *bad, size_t badcap)
{
	gnutls_priority_t p;
	const char *err = NULL;
	int r = gnutls_priority_init(&p, prio, &err);

	if (r == GNUTLS_E_SUCCESS) {
		gnutls_priority_deinit(p);
		return 0;
	}
	str_copy(bad, badcap, err != NULL ? err : prio);
	return -EINVAL;
}
