/*
 * HTTPS to cleave-server: the only agent file that includes curl/curl.h. One keep-alive
 * connection per client; after any transport error the connection is dropped so the next
 * request opens a fresh one. Server trust is a CA file, a pinned public key (SHA-256 of the
 * certificate's SubjectPublicKeyInfo, as curl's CURLOPT_PINNEDPUBLICKEY), both, or the system
 * store. Every request has a deadline and notices a stop flag within about a second. It knows
 * nothing of JSON or signatures.
 */
#ifndef CLEAVE_AGENT_TRANSPORT_H
#define CLEAVE_AGENT_TRANSPORT_H

#include <signal.h>
#include <stddef.h>

#include "util.h"

#define HTTP_BODY_MAX (256u << 10) /* responses larger than this are refused */

/* Why a request got no HTTP answer (http_request's negative returns). */
enum http_fail {
	HTTP_E_CONNECT = -1000, /* unreachable: DNS, refused, no route */
	HTTP_E_TLS = -1001,     /* TLS failed: certificate not trusted, handshake */
	HTTP_E_PIN = -1002,     /* the certificate's key does not match the pin */
	HTTP_E_TIMEOUT = -1003, /* the deadline passed */
	HTTP_E_STOPPED = -1004, /* the stop flag was raised */
	HTTP_E_TOO_LARGE = -1005,
	HTTP_E_OTHER = -1006,
};

struct http_opts {
	const char *base_url;              /* https://host:port; borrowed, copied */
	const char *ca_file;               /* may be NULL: system store (or none, with a pin) */
	const char *pin;                   /* "sha256//BASE64" or NULL */
	const volatile sig_atomic_t *stop; /* may be NULL */
};

struct http_resp {
	long status;
	char *body; /* NUL-terminated, owned (http_resp_fini) */
	size_t len;
	char error[256]; /* what went wrong, for a person, when there was no answer */
};

struct http_client;

/* Once per process, before any thread starts. 0 or -EIO. */
int http_global_init(void);
/* *out owned by the caller (http_client_free). 0 or -errno. */
int http_client_new(const struct http_opts *o, struct http_client **out) __must_check;
void http_client_free(struct http_client *c);
/* Drops the connection; the next request opens a fresh one. */
void http_client_reset(struct http_client *c);

/*
 * Sends method path (relative to base_url) with body (len bytes, may be NULL) and the extra
 * headers ("Name: value", NULL-terminated, may be NULL), waiting at most timeout_s. Returns 0
 * when an HTTP status arrived (r->status, r->body), else an enum http_fail with r->error set.
 * r is always initialised; release it with http_resp_fini.
 */
int http_request(struct http_client *c, const char *method, const char *path, const char *body,
		 size_t len, const char *const *headers, long timeout_s, struct http_resp *r);
void http_resp_fini(struct http_resp *r);

/* Normalises a pin given as "sha256//B64" or bare B64 into "sha256//B64". 0 or -EINVAL. */
int http_pin_normalize(const char *in, char *out, size_t cap);

#endif
