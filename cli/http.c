/*
 * HTTPS to cleave-server with libcurl: the only cleavectl file that includes curl/curl.h. The
 * server is trusted through a CA file, a pinned public key (CURLOPT_PINNEDPUBLICKEY: with only
 * a pin, the pin is the trust and a self-signed certificate is fine), both, or the system
 * store. Answers other than 2xx become an exit code and the problem's detail on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cli.h"
#include "util.h"

#define BODY_MAX      (64u << 20) /* an audit export piece is at most ~4 MiB */
#define REQ_TIMEOUT_S 120L
#define TOKEN_MAX     512

struct http {
	CURL *h;
	char base[512];
	char ca[PATH_MAX];
	char pin[160];
	char auth[TOKEN_MAX + 32]; /* "Authorization: Bearer ..." */
};

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->h != NULL)
		curl_easy_cleanup(h->h);
	secure_zero(h->auth, sizeof(h->auth));
	free(h);
}

void
reply_free(struct reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t add = sz * n;
	char *nb;

	if (r->len + add + 1 > BODY_MAX)
		return 0;
	nb = realloc(r->body, r->len + add + 1);
	if (nb == NULL)
		return 0;
	memcpy(nb + r->len, p, add);
	r->len += add;
	nb[r->len] = '\0';
	r->body = nb;
	return add;
}

/* Copies the value of header line p (n bytes) into out when it is name. */
static void
header_value(const char *p, size_t n, const char *name, char *out, size_t cap)
{
	size_t k = strlen(name), v;

	if (n <= k + 1 || strncasecmp(p, name, k) != 0 || p[k] != ':')
		return;
	p += k + 1;
	n -= k + 1;
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
		n--;
	v = n < cap - 1 ? n : cap - 1;
	memcpy(out, p, v);
	out[v] = '\0';
}

static size_t
on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct reply *r = ud;

	header_value(p, sz * n, "Location", r->location, sizeof(r->location));
	header_value(p, sz * n, "Cleave-Next-Cursor", r->next_cursor, sizeof(r->next_cursor));
	header_value(p, sz * n, "Content-Type", r->content_type, sizeof(r->content_type));
	return sz * n;
}

/* "sha256//B64" from that or a bare base64 SHA-256; -1 when it is neither. */
static int
pin_normalize(const char *in, char *out, size_t cap)
{
	const char *b = strncmp(in, "sha256//", 8) == 0 ? in + 8 : in;
	size_t n = strlen(b);

	if (n != 44 || b[43] != '=' ||
	    strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789+/") != 43)
		return -1;
	snprintf(out, cap, "sha256//%s", b);
	return 0;
}

static struct http *
http_new(const char *server, const char *ca, const char *pin, const char *token, char *err,
	 size_t cap)
{
	struct http *h = calloc(1, sizeof(*h));

	if (h == NULL || (h->h = curl_easy_init()) == NULL) {
		snprintf(err, cap, "out of memory");
		http_free(h);
		return NULL;
	}
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
		snprintf(err, cap, "the server URL must start with https:// (got \"%s\")", server);
		http_free(h);
		return NULL;
	}
	str_copy(h->base, sizeof(h->base), server);
	h->base[strcspn(h->base, "\n")] = '\0';
	while (h->base[0] && h->base[strlen(h->base) - 1] == '/')
		h->base[strlen(h->base) - 1] = '\0';
	str_copy(h->ca, sizeof(h->ca), ca ? ca : "");
	if (pin && *pin && pin_normalize(pin, h->pin, sizeof(h->pin)) != 0) {
		snprintf(err, cap,
			 "the pin must be the base64 SHA-256 of the server's public key "
			 "(44 characters), optionally prefixed with sha256//");
		http_free(h);
		return NULL;
	}
	if (token && *token)
		snprintf(h->auth, sizeof(h->auth), "Authorization: Bearer %s", token);
	return h;
}

static void
set_tls(struct http *h)
{
	if (h->ca[0])
		curl_easy_setopt(h->h, CURLOPT_CAINFO, h->ca);
	if (h->pin[0]) {
		curl_easy_setopt(h->h, CURLOPT_PINNEDPUBLICKEY, h->pin);
		if (!h->ca[0]) {
			curl_easy_setopt(h->h, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(h->h, CURLOPT_SSL_VERIFYHOST, 0L);
		}
	}
}

/* One exchange; 0 with r->status, or the exit code of a transport failure (err filled). */
static int
http_do(struct http *h, const char *method, const char *path, const char *body,
	const char *const *hdrs, long timeout_s, struct reply *r, char *err, size_t cap)
{
	struct curl_slist *hl = NULL, *t;
	char url[2048], ebuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", h->base, path);
	curl_easy_reset(h->h);
	set_tls(h);
	curl_easy_setopt(h->h, CURLOPT_URL, url);
	curl_easy_setopt(h->h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h->h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->h, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(h->h, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : REQ_TIMEOUT_S);
	curl_easy_setopt(h->h, CURLOPT_USERAGENT, "cleavectl");
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h->h, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		hl = curl_slist_append(hl, "Content-Type: application/json");
	}
	if (h->auth[0])
		hl = curl_slist_append(hl, h->auth);
	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL && i < 16; i++)
		if ((t = curl_slist_append(hl, hdrs[i])) != NULL)
			hl = t;
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, hl);
	cc = curl_easy_perform(h->h);
	curl_slist_free_all(hl);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h->h, CURLINFO_RESPONSE_CODE, &r->status);
		return 0;
	}
	rc = cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH ? EX_AUTH : EX_SERVER;
	if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
		snprintf(err, cap, "%s: the server's public key does not match the pinned one",
			 h->base);
	else
		snprintf(err, cap, "%s: %s", h->base, ebuf[0] ? ebuf : curl_easy_strerror(cc));
	reply_free(r);
	return rc;
}

int
status_code(long status)
{
	if (status >= 200 && status < 300)
		return EX_OK;
	switch (status) {
	case 401:
	case 403:
		return EX_AUTH;
	case 404:
		return EX_NOTFOUND;
	case 409:
	case 410:
		return EX_CONFLICT;
	case 429:
		return EX_SERVER;
	default:
		return status >= 400 && status < 500 ? EX_USAGE : EX_SERVER;
	}
}

/* Prints a refused request's problem+json (or the start of whatever came) on stderr. */
static int
problem(const struct reply *r)
{
	json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *detail = json_string_value(json_object_get(j, "detail"));
	const char *title = json_string_value(json_object_get(j, "title"));
	int code = status_code(r->status);

	if (type && strncmp(type, "urn:cleave:problem:", 19) == 0)
		type += 19;
	fprintf(stderr, "cleavectl: HTTP %ld%s%s%s: ", r->status, type ? " (" : "",
		type ? type : "", type ? ")" : "");
	put_safe(stderr, detail ? detail : title ? title : r->body ? r->body : "no detail");
	if (json_is_integer(json_object_get(j, "count")))
		fprintf(stderr, " (the filter now matches %lld devices)",
			(long long)json_integer_value(json_object_get(j, "count")));
	fputc('\n', stderr);
	json_decref(j);
	return code;
}

/* The token: CLEAVE_TOKEN, --token-file, else the profile's token file. */
static int
find_token(struct ctx *c, const struct profile *p, char *out, size_t cap)
{
	const char *env = getenv("CLEAVE_TOKEN"), *file = opt(c, "token-file");

	if (env != NULL && *env != '\0')
		return str_copy(out, cap, env) == 0 ? 0 : fail(-1, "CLEAVE_TOKEN is too long");
	if (file == NULL && p->token_file[0])
		file = p->token_file;
	if (file == NULL)
		return fail(-1, "no API token: run `cleavectl login`, or give --token-file FILE or "
				"the CLEAVE_TOKEN environment variable");
	return token_read_file(file, out, cap);
}

struct http *
ctx_http(struct ctx *c, int *code)
{
	struct profile p = {0};
	char token[TOKEN_MAX], err[512];
	const char *server, *ca, *pin;
	int have;

	if (c->h != NULL)
		return c->h;
	*code = EX_USAGE;
	if ((have = profile_load(c->profile, &p)) < 0)
		return NULL;
	server = opt(c, "server") ? opt(c, "server") : p.server;
	ca = opt(c, "ca") ? opt(c, "ca") : p.ca_file;
	pin = opt(c, "pin") ? opt(c, "pin") : p.pin;
	if (server[0] == '\0') {
		fail(EX_USAGE, "no profile \"%s\" and no --server: run `cleavectl login` first",
		     c->profile);
		return NULL;
	}
	*code = EX_AUTH;
	if (find_token(c, &p, token, sizeof(token)) != 0)
		return NULL;
	*code = EX_USAGE;
	c->h = http_new(server, ca, pin, token, err, sizeof(err));
	secure_zero(token, sizeof(token));
	if (c->h == NULL)
		fail(EX_USAGE, "%s", err);
	return c->h;
}

int
api(struct ctx *c, const char *method, const char *path, const char *body, const char *const *hdrs,
    struct reply *r)
{
	struct http *h;
	char err[2600];
	int code, rc;

	memset(r, 0, sizeof(*r));
	if ((h = ctx_http(c, &code)) == NULL)
		return code;
	if ((rc = http_do(h, method, path, body, hdrs, c->req_timeout, r, err, sizeof(err))) != 0)
		return fail(rc, "%s", err);
	if (r->status >= 200 && r->status < 300)
		return EX_OK;
	rc = problem(r);
	reply_free(r); /* no caller wants an error's body: early returns leak nothing */
	return rc;
}

int
api_json(struct ctx *c, const char *method, const char *path, const char *body,
	 const char *const *hdrs, json_t **out, struct reply *r)
{
	json_error_t je;
	int rc = api(c, method, path, body, hdrs, r);

	*out = NULL;
	if (rc != EX_OK)
		return rc;
	if ((*out = json_loadb(r->body ? r->body : "", r->len, 0, &je)) == NULL) {
		reply_free(r);
		return fail(EX_SERVER, "the server's answer is not JSON: %s", je.text);
	}
	return EX_OK;
}

int
http_probe(const char *server, const char *ca, const char *pin, const char *token, struct reply *r,
	   char *err, size_t cap)
{
	struct http *h = http_new(server, ca, pin, token, err, cap);
	int rc;

	memset(r, 0, sizeof(*r));
	if (h == NULL)
		return EX_USAGE;
	rc = http_do(h, "GET", "/api/v1/server", NULL, NULL, 0, r, err, cap);
	http_free(h);
	if (rc != 0)
		return rc;
	if (r->status != 200)
		return problem(r);
	return EX_OK;
}

static int
append_escaped(char *buf, size_t cap, const char *prefix, const char *value)
{
	char *e = curl_easy_escape(NULL, value, 0);
	size_t n = strlen(buf);
	int w;

	if (e == NULL)
		return -1;
	w = snprintf(buf + n, cap - n, "%s%s", prefix, e);
	curl_free(e);
	return w < 0 || (size_t)w >= cap - n ? -1 : 0;
}

int
query_add(char *buf, size_t cap, const char *name, const char *value)
{
	char pre[80];

	snprintf(pre, sizeof(pre), "%c%s=", strchr(buf, '?') ? '&' : '?', name);
	return append_escaped(buf, cap, pre, value);
}

int
path_add(char *buf, size_t cap, const char *segment)
{
	return append_escaped(buf, cap, "/", segment);
}

/* "/api/v1/<what>/<id><tail>" into path; EX_OK or EX_USAGE. */
int
id_path(char *path, size_t cap, const char *what, const char *id, const char *tail)
{
	snprintf(path, cap, "/api/v1/%s", what);
	if (path_add(path, cap, id) != 0 || strlen(path) + strlen(tail) >= cap)
		return fail(EX_USAGE, "the id is too long");
	strcat(path, tail);
	return EX_OK;
}

int
paging_query(const struct ctx *c, char *q, size_t cap)
{
	static const char *const names[] = {"limit", "cursor"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (opt(c, names[i]) && query_add(q, cap, names[i], opt(c, names[i])) != 0)
			return fail(EX_USAGE, "--%s is too long", names[i]);
	return EX_OK;
}
