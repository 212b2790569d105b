/*
 * The HTTPS front of cleave-server on libmicrohttpd 0.9.75 (TLS through GnuTLS): an epoll thread
 * pool, bounded request bodies, device long polls parked with suspend/resume, transport
 * metrics, and a clean stop that answers every parked request first. This is the only code that
 * includes microhttpd.h; what a request means is api/'s business.
 */
#ifndef CLEAVE_HTTPD_H
#define CLEAVE_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "connlimit.h"

/*
 * Mozilla's "intermediate" profile in GnuTLS terms: TLS 1.3 and 1.2 only, AEAD ciphers only
 * (AES-GCM, ChaCha20-Poly1305; not CCM), ECDHE with ECDSA or RSA certificates, the groups
 * X25519, P-256 and P-384, no SHA-1 signatures. Mozilla's DHE-RSA suites are left out: they
 * serve only clients older than any agent or admin tool of ours. GnuTLS keeps
 * %SAFE_RENEGOTIATION by default; a client's renegotiation attempt ends the connection (see
 * server/README.md).
 */
#define HTTPD_TLS_PRIORITIES                                                                       \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"        \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:"            \
	"+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1"

/* Strict-Transport-Security on every response: one year, this host only. */
#define HTTPD_HSTS "max-age=31536000"

struct httpd_config {
	int listen_fd;              /* from httpd_bind; consumed by httpd_start, even on failure */
	const char *cert_pem;       /* PEM text, borrowed */
	const char *key_pem;        /* PEM text, borrowed */
	const char *tls_priorities; /* GnuTLS priority string, borrowed */
	unsigned threads;           /* epoll worker threads */
	unsigned conn_limit;        /* MHD_OPTION_CONNECTION_LIMIT */
	size_t pool_size;           /* per-connection memory pool */
	unsigned idle_timeout_s;    /* between requests on a kept-alive connection */
	unsigned handshake_timeout_s; /* from accept to the first request line */
	struct cl_policy admit;       /* per-address cap, reserve, trusted; total is conn_limit */
	const char *web_root;         /* the console's files (static.h); NULL: none; borrowed */
	struct cl_policy proxies;     /* trusted_proxies: whose X-Forwarded-For is believed */
};

struct httpd;

/*
 * Binds and listens on host (numeric IPv4 or IPv6) and port (0: any free one) before anything
 * else happens, so a server that cannot serve fails before it touches its data directory.
 * *fd and *bound_port receive the socket and its port. 0, -EINVAL (host) or -errno (logged).
 */
int httpd_bind(const char *host, uint16_t port, int *fd, uint16_t *bound_port);
/* 0 when GnuTLS accepts prio; else -EINVAL with the part it rejected copied into bad. */
int httpd_tls_priorities_check(const char *prio, char *bad, size_t badcap);

/* Starts serving on cfg->listen_fd. api and svc are borrowed and must outlive the daemon. */
int httpd_start(const struct httpd_config *cfg, struct api *api, struct service *svc,
		struct httpd **out);
/* Stops accepting, answers parked polls, waits (bounded) for them, stops. NULL is ignored. */
void httpd_stop(struct httpd *h);

/* svc_wake_fn: resumes every parked poll of device_id. ctx is the struct httpd. */
void httpd_wake(void *ctx, const char *device_id);
/* svc_parked_fn: the devices whose polls are parked here. ctx is the struct httpd. */
size_t httpd_parked_ids(void *ctx, char (*ids)[STORE_ID_MAX], size_t max);
/* api_metrics_fn: requests by route and status, parked polls. ctx is the struct httpd. */
size_t httpd_metrics(void *ctx, char *buf, size_t cap);

#endif
