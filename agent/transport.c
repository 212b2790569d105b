/*
 * libcurl easy interface, one handle per client. The handle is thrown away after a transport
 * error (not only reset: curl_easy_reset keeps the connection cache), so a half-dead connection
 * to a restarted server is never reused. The progress callback is what makes a long poll
 * interruptible: libcurl calls it at least once a second even when no byte moves.
 */
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "b64.h"
#include "log.h"

struct http_client {
	CURL *h;
	char base[512];
	char ca_file[4096];
	char pin[128];
	const volatile sig_atomic_t *stop;
};

int
http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

int
http_pin_normalize(const char *in, char *out, size_t cap)
{
	const char *b = strncmp(in, "sha256//", 8) == 0 ? in + 8 : in;
	uint8_t h[32];

	if (b64_decode(h, sizeof(h), b, strlen(b)) != 32)
		return -EINVAL;
	return snprintf(out, cap, "sha256//%s", b) < (int)cap ? 0 : -ENOSPC;
}

int
http_client_new(const struct http_opts *o, struct http_client **out)
{
	struct http_client *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	if (str_copy(c->base, sizeof(c->base), o->base_url) != 0 ||
	    (o->ca_file && str_copy(c->ca_file, sizeof(c->ca_file), o->ca_file) != 0) ||
	    (o->pin && str_copy(c->pin, sizeof(c->pin), o->pin) != 0)) {
		free(c);
		return -ENAMETOOLONG;
	}
	/* A base URL ending in '/' would make every path start with "//". */
	while (strlen(c->base) > 0 && c->base[strlen(c->base) - 1] == '/')
		c->base[strlen(c->base) - 1] = '\0';
	c->stop = o->stop;
	*out = c;
	return 0;
}

void
http_client_reset(struct http_client *c)
{
	if (c != NULL && c->h != NULL) {
		curl_easy_cleanup(c->h);
		c->h = NULL;
	}
}

void
http_client_free(struct http_client *c)
{
	if (c == NULL)
		return;
	http_client_reset(c);
	free(c);
}

void
http_resp_fini(struct http_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

static size_t
on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct http_resp *r = ud;
	size_t add = size * n;
	char *nb;

	if (r->len + add > HTTP_BODY_MAX) {
		r->status = -1; /* marks "too large" for http_request */
		return 0;
	}
	nb = realloc(r->body, r->len + add + 1);
	if (nb == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, ptr, add);
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

static int
on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct http_client *c = ud;

	(void)dt, (void)dn, (void)ut, (void)un;
	return c->stop != NULL && *c->stop ? 1 : 0;
}

/* Maps a libcurl failure to an http_fail and a sentence for a person. */
static int
fail_kind(const struct http_client *c, CURLcode rc, const char *ebuf, struct http_resp *r)
{
	const char *what = ebuf[0] ? ebuf : curl_easy_strerror(rc);
	int k = HTTP_E_OTHER;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		k = HTTP_E_CONNECT;
		snprintf(r->error, sizeof(r->error), "cannot reach %s: %s", c->base, what);
		break;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		k = HTTP_E_PIN;
		snprintf(r->error, sizeof(r->error),
			 "certificate mismatch: the public key of %s does not match the pinned "
			 "SHA-256 (%s)",
			 c->base, c->pin);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		k = HTTP_E_TLS;
		snprintf(r->error, sizeof(r->error),
			 "certificate mismatch: %s is not trusted (%s%s): %s", c->base,
			 c->ca_file[0] ? "trusting " : "trusting the system CA store",
			 c->ca_file[0] ? c->ca_file : "", what);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		k = HTTP_E_TLS;
		snprintf(r->error, sizeof(r->error), "TLS handshake with %s failed: %s", c->base,
			 what);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		k = HTTP_E_TIMEOUT;
		snprintf(r->error, sizeof(r->error), "%s did not answer in time", c->base);
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		k = HTTP_E_STOPPED;
		snprintf(r->error, sizeof(r->error), "stopped");
		break;
	case CURLE_WRITE_ERROR:
		if (r->status == -1) {
			k = HTTP_E_TOO_LARGE;
			snprintf(r->error, sizeof(r->error),
				 "the answer of %s is larger than %u bytes; refused", c->base,
				 HTTP_BODY_MAX);
			break;
		}
		/* fall through */
	default:
		snprintf(r->error, sizeof(r->error), "request to %s failed: %s", c->base, what);
	}
	r->status = 0;
	return k;
}

static void
set_tls(struct http_client *c)
{
	if (c->ca_file[0])
		curl_easy_setopt(c->h, CURLOPT_CAINFO, c->ca_file);
	if (c->pin[0]) {
		curl_easy_setopt(c->h, CURLOPT_PINNEDPUBLICKEY, c->pin);
		/* With only a pin, the pin is the trust: a self-signed server certificate is fine. */
		if (!c->ca_file[0]) {
			curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 0L);
		}
	}
}

int
http_request(struct http_client *c, const char *method, const char *path, const char *body,
	     size_t len, const char *const *headers, long timeout_s, struct http_resp *r)
{
	char url[1024], ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hl = NULL;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	if (snprintf(url, sizeof(url), "%s%s", c->base, path) >= (int)sizeof(url)) {
		snprintf(r->error, sizeof(r->error), "URL too long");
		return HTTP_E_OTHER;
	}
	if (c->h == NULL && (c->h = curl_easy_init()) == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return HTTP_E_OTHER;
	}
	curl_easy_reset(c->h);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, c);
	/* A dead peer behind a parked long poll is noticed by TCP keepalive too. */
	curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
	set_tls(c);
	if (body != NULL) {
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)len);
		hl = curl_slist_append(hl, "Content-Type: application/json");
	}
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		hl = curl_slist_append(hl, headers[i]);
	/* libcurl adds "Expect: 100-continue" to large bodies; the server needs no such dance. */
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hl);
	rc = curl_easy_perform(c->h);
	curl_slist_free_all(hl);
	if (rc != CURLE_OK) {
		int k = fail_kind(c, rc, ebuf, r);

		http_resp_fini(r);
		http_client_reset(c);
		return k;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->body == NULL && (r->body = calloc(1, 1)) == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return HTTP_E_OTHER;
	}
	return 0;
}
