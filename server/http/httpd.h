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

struct httpd_config {
	const char *host;     /* numeric IPv4 or IPv6 address to bind */
	uint16_t port;        /* 0: any free port */
	const char *cert_pem; /* PEM text, borrowed */
	const char *key_pem;  /* PEM text, borrowed */
	unsigned threads;     /* epoll worker threads */
	unsigned conn_limit;  /* MHD_OPTION_CONNECTION_LIMIT */
	size_t pool_size;     /* per-connection memory pool */
	unsigned idle_timeout_s;
};

struct httpd;

/* Starts serving. api and svc are borrowed and must outlive the daemon. */
int httpd_start(const struct httpd_config *cfg, struct api *api, struct service *svc,
		struct httpd **out);
uint16_t httpd_port(const struct httpd *h);
/* Stops accepting, answers parked polls, waits (bounded) for them, stops. NULL is ignored. */
void httpd_stop(struct httpd *h);

/* svc_wake_fn: resumes every parked poll of device_id. ctx is the struct httpd. */
void httpd_wake(void *ctx, const char *device_id);
/* api_metrics_fn: requests by route and status, parked polls. ctx is the struct httpd. */
size_t httpd_metrics(void *ctx, char *buf, size_t cap);

#endif
