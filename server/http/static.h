/*
 * The console's static files: `GET /` answers index.html and `GET /static/NAME` a file under
 * the web root's static/ folder, with ETag revalidation, gzip when the client accepts it, and
 * the strict security headers of every console answer. No libmicrohttpd here: httpd.c turns a
 * web_reply into a response, so the rules can be tested without a server.
 */
#ifndef CLEAVE_STATIC_H
#define CLEAVE_STATIC_H

#include <stddef.h>

/* Files larger than this are not served (a web root holds small hand-written files). */
#define WEB_FILE_MAX (4u * 1024 * 1024)

/* Sent with every static answer, 404 included. */
#define WEB_CSP                                                                                    \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct web_static;

struct web_reply {
	int status; /* 200, 304 or 404 */
	char *body; /* owned by the caller (free); NULL for 304 */
	size_t len;
	const char *content_type; /* static string */
	char etag[64];            /* "" when none */
	int gzip;                 /* body is gzip-encoded */
	int vary;                 /* the answer depends on Accept-Encoding */
};

/*
 * Opens root (borrowed) as the web root. A missing or unreadable root is logged once and gives
 * a handle that answers 404 pages saying so: the server runs without its console. 0 or -ENOMEM.
 */
int web_static_open(const char *root, struct web_static **out);
/* NULL is ignored. */
void web_static_free(struct web_static *ws);
/* True for the requests this module answers: GET or HEAD of "/" or "/static/...". */
int web_static_route(const char *method, const char *path);
/*
 * Answers path (the raw request target without its query; never percent-decoded: '%' is
 * refused). accept_encoding and if_none_match are header values or NULL. 0, or -ENOMEM.
 */
int web_static_answer(const struct web_static *ws, const char *path, const char *accept_encoding,
		      const char *if_none_match, struct web_reply *out);

#endif
