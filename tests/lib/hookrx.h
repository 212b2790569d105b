/*
 * A webhook receiver for tests (issue 11 §3): plain HTTP on 127.0.0.1 (libmicrohttpd), that
 * checks each request's Standard Webhooks signature with the secret it was given, with its own
 * code (OpenSSL's HMAC and base64, not the server's), and keeps what came in order. It can be
 * down (nothing listens on its port), answer 500, or answer only after 30 s (slow).
 */
#ifndef CLEAVE_HOOKRX_H
#define CLEAVE_HOOKRX_H

#include <stddef.h>

enum hookrx_mode { RX_OK, RX_FAIL, RX_SLOW };

struct hookrx_msg {
	char id[64];
	long long ts;
	int sig_ok;      /* the signature verifies with the receiver's secret */
	int answered_ok; /* the receiver answered 2xx */
	char type[40];   /* the body's "type" */
	char data[512];  /* the body's "data", as JSON text (truncated) */
};

struct hookrx;
/* A receiver on a free port of 127.0.0.1, not listening yet (hookrx_up); NULL on failure. */
struct hookrx *hookrx_new(void);
void hookrx_free(struct hookrx *rx);
/* Starts (again) listening on its port; 0 or -1. hookrx_down stops: connections are refused. */
int hookrx_up(struct hookrx *rx);
void hookrx_down(struct hookrx *rx);
void hookrx_set_mode(struct hookrx *rx, enum hookrx_mode m);
void hookrx_set_secret(struct hookrx *rx, const char *whsec);
/* http://127.0.0.1:PORT/hook */
const char *hookrx_url(const struct hookrx *rx);
/* Requests received so far (all modes), and a copy of the i-th. */
size_t hookrx_count(struct hookrx *rx);
int hookrx_get(struct hookrx *rx, size_t i, struct hookrx_msg *out);
/* Waits (bounded by timeout_s) until at least n requests were answered 2xx; 0 or -1. */
int hookrx_wait_ok(struct hookrx *rx, size_t n, double timeout_s);
size_t hookrx_count_ok(struct hookrx *rx);
/* The most requests that were being answered at once (one subscription: must stay 1). */
int hookrx_max_inflight(struct hookrx *rx);

#endif
