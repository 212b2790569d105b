/*
 * The REST API of cleave-server as plain function calls: the http/ layer hands in a complete
 * request (method, path, raw query, headers, body) and gets back a complete response, or an
 * instruction to park the request (a device long poll) until the device is woken or a deadline
 * passes. This layer decodes and validates JSON, calls the service and encodes the answer; it
 * never touches sockets and is the only one that includes jansson.h.
 */
#ifndef CLEAVE_API_H
#define CLEAVE_API_H

#include <stddef.h>
#include <stdint.h>

#include "service/service.h"

#define API_BODY_MAX (64 * 1024)

typedef const char *(*api_header_fn)(void *ctx, const char *name);

struct api_request {
	const char *method;
	const char *path;  /* without the query */
	const char *query; /* raw, without '?'; "" when none */
	api_header_fn header;
	void *header_ctx;
	const char *body; /* may be NULL when body_len is 0 */
	size_t body_len;
	const char *client; /* peer address */
	/* Set by http/ when a parked request comes back. */
	int resumed;
	int timed_out;
	char park_device[STORE_ID_MAX];
	int64_t park_deadline_ms;
};

struct api_response {
	int status;
	char *body; /* malloc'd; ownership passes to the caller */
	size_t len;
	const char *content_type;
	const char *route;    /* route template, for metrics; static storage */
	char location[2048];  /* Location header when not empty (an SSO redirect is long) */
	char set_cookie[256]; /* Set-Cookie header when not empty */
	char next_cursor[64]; /* Cleave-Next-Cursor header when not empty (a bounded export) */
	/* Long poll: park == 1 asks http/ to suspend the request. */
	int park;
	char park_device[STORE_ID_MAX];
	uint64_t park_gen;
	int64_t park_deadline_ms;
};

/* Appends extra Prometheus text (transport metrics) to buf; returns bytes written. */
typedef size_t (*api_metrics_fn)(void *ctx, char *buf, size_t cap);

struct api;

/* svc is borrowed and must outlive the api. */
int api_new(struct service *svc, struct api **out);
void api_free(struct api *a);
void api_set_metrics_source(struct api *a, api_metrics_fn fn, void *ctx);
/*
 * Tells the enrollment page the server's TLS certificate (PEM, borrowed) so its command pins
 * the certificate's key. 0, or a negative errno (logged) and the page shows no pin.
 */
int api_set_server_cert(struct api *a, const char *cert_pem);

/* Handles one request. Never fails: errors become problem+json responses. */
void api_handle(struct api *a, const struct api_request *rq, struct api_response *rs);

/*
 * The route table, for `cleave-server --list-routes` (the OpenAPI contract test compares it
 * with schema/openapi.json): method, pattern ("{}" for a path segment), the query parameters
 * the route reads (space-separated, "" for none) and whether it needs an admin credential.
 */
struct api_route_info {
	const char *method, *pattern, *query;
	int admin;
};
size_t api_route_count(void);
int api_route_info(size_t i, struct api_route_info *out);

/* Answer for a request refused before it reached a handler (413, 503 while stopping…). */
void api_transport_error(int status, const char *detail, struct api_response *rs);

/* The policy body codec, exposed for the service and tests. */
int api_policy_parse(const char *body, struct policy_content *c);

#endif
