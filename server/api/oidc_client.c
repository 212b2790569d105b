/* OpenID Connect relying party, the provider-facing half: see oidc_client.h. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "crypto.h"
#include "oidc_client.h"
#include "oidc_jwt.h"

#define BODY_MAX           (1u << 20) /* a discovery document, a JWKS or a token response */
#define HTTP_TIMEOUT_S     10L
#define LEEWAY_S           60
#define ID_TOKEN_MAX_AGE_S 600

struct oidc_client {
	struct oidc_settings s;
	pthread_mutex_t mu; /* guards the cache below; never held across a fetch's reply use */
	json_t *discovery;
	int64_t discovery_at;
	json_t *jwks;
	int64_t jwks_at;
};

int
oidc_client_new(const struct oidc_settings *s, struct oidc_client **out)
{
	struct oidc_client *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	c->s = *s;
	if (c->s.jwks_min_s <= 0)
		c->s.jwks_min_s = OIDC_JWKS_MIN_S;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void
oidc_client_free(struct oidc_client *c)
{
	if (c == NULL)
		return;
	json_decref(c->discovery);
	json_decref(c->jwks);
	pthread_mutex_destroy(&c->mu);
	explicit_bzero(c->s.client_secret, sizeof(c->s.client_secret));
	free(c);
}

void
oidc_pkce_challenge(const char *verifier, char out[OIDC_VERIFIER_LEN])
{
	uint8_t h[SHA256_LEN];

	crypto_sha256(verifier, strlen(verifier), h);
	b64url_encode(out, OIDC_VERIFIER_LEN, h, sizeof(h));
}

static void
say(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

struct body {
	char *p;
	size_t n;
};

static size_t
body_add(char *p, size_t size, size_t n, void *u)
{
	struct body *b = u;
	size_t add = size * n;
	char *nb;

	if (b->n + add > BODY_MAX)
		return 0; /* curl stops with a write error */
	nb = realloc(b->p, b->n + add + 1);
	if (nb == NULL)
		return 0;
	memcpy(nb + b->n, p, add);
	b->n += add;
	nb[b->n] = '\0';
	b->p = nb;
	return add;
}

/*
 * GET (form NULL) or POST form to url, HTTPS only, trusting the configured CA; the JSON object
 * answered with want_status into *out. 0, or -1 with a reason.
 */
static int
fetch_json(const struct oidc_client *c, const char *url, const char *form, const char *basic,
	   long want_status, json_t **out, char *err, size_t errcap)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct body b = {0};
	long status = 0;
	CURLcode cr;

	*out = NULL;
	if (strncmp(url, "https://", 8) != 0) {
		say(err, errcap, "the provider's endpoint %s is not https", url);
		curl_easy_cleanup(h);
		return -1;
	}
	if (h == NULL) {
		say(err, errcap, "out of memory");
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_add);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (c->s.ca_file[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, c->s.ca_file);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (basic != NULL)
		hdrs = curl_slist_append(hdrs, basic);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (form != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	cr = curl_easy_perform(h);
	if (cr == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (cr != CURLE_OK)
		say(err, errcap, "the provider at %s could not be reached: %s", url,
		    curl_easy_strerror(cr));
	else if (status != want_status)
		say(err, errcap, "the provider answered %ld at %s: %.200s", status, url,
		    b.p ? b.p : "");
	else if ((*out = b.p ? json_loads(b.p, 0, NULL) : NULL) == NULL || !json_is_object(*out))
		say(err, errcap, "the provider's answer at %s is not a JSON object", url);
	free(b.p);
	if (*out != NULL && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
	}
	return *out != NULL ? 0 : -1;
}

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The discovery document (a new reference), fetched when missing or older than its TTL. */
static json_t *
discovery(struct oidc_client *c, int64_t now, char *err, size_t errcap)
{
	char url[320];
	json_t *d;

	pthread_mutex_lock(&c->mu);
	d = c->discovery && now - c->discovery_at < OIDC_DISCOVERY_TTL_S ? json_incref(c->discovery)
									 : NULL;
	pthread_mutex_unlock(&c->mu);
	if (d != NULL)
		return d;
	snprintf(url, sizeof(url), "%s%s.well-known/openid-configuration", c->s.issuer,
		 c->s.issuer[0] && c->s.issuer[strlen(c->s.issuer) - 1] == '/' ? "" : "/");
	if (fetch_json(c, url, NULL, NULL, 200, &d, err, errcap) != 0)
		return NULL;
	/* OpenID Connect Discovery §4.3: the document must name the issuer we asked. */
	if (strcmp(jstr(d, "issuer") ?: "", c->s.issuer) != 0 ||
	    jstr(d, "authorization_endpoint") == NULL || jstr(d, "token_endpoint") == NULL ||
	    jstr(d, "jwks_uri") == NULL) {
		say(err, errcap,
		    "the provider's discovery document names issuer \"%.100s\" or "
		    "lacks an endpoint",
		    jstr(d, "issuer") ?: "");
		json_decref(d);
		return NULL;
	}
	pthread_mutex_lock(&c->mu);
	json_decref(c->discovery);
	c->discovery = json_incref(d);
	c->discovery_at = now;
	pthread_mutex_unlock(&c->mu);
	return d;
}

/*
 * The JWKS (a new reference): the cached one, or fetched when none is cached or when refresh
 * is asked and the cached one is older than OIDC_JWKS_MIN_S (a token naming an unknown key must
 * not make every sign-in fetch it).
 */
static json_t *
jwks(struct oidc_client *c, const json_t *d, int refresh, int64_t now, char *err, size_t errcap)
{
	json_t *k;

	pthread_mutex_lock(&c->mu);
	k = c->jwks && (!refresh || now - c->jwks_at < c->s.jwks_min_s) ? json_incref(c->jwks)
									: NULL;
	pthread_mutex_unlock(&c->mu);
	if (k != NULL)
		return k;
	if (fetch_json(c, jstr(d, "jwks_uri"), NULL, NULL, 200, &k, err, errcap) != 0)
		return NULL;
	if (!json_is_array(json_object_get(k, "keys"))) {
		say(err, errcap, "the provider's JWKS has no keys");
		json_decref(k);
		return NULL;
	}
	pthread_mutex_lock(&c->mu);
	json_decref(c->jwks);
	c->jwks = json_incref(k);
	c->jwks_at = now;
	pthread_mutex_unlock(&c->mu);
	return k;
}

/* Appends "&name=value" (value URL-encoded) to out; -1 when it does not fit. */
static int
param(char *out, size_t cap, const char *name, const char *value)
{
	char *e = curl_easy_escape(NULL, value, 0);
	size_t len = strlen(out);
	int n;

	if (e == NULL)
		return -1;
	n = snprintf(out + len, cap - len, "%s%s=%s", len ? "&" : "", name, e);
	curl_free(e);
	return n > 0 && (size_t)n < cap - len ? 0 : -1;
}

int
oidc_authorize_url(struct oidc_client *c, const char *state, const char *nonce,
		   const char *verifier, int64_t now, char *out, size_t cap, char *err,
		   size_t errcap)
{
	char q[2048] = "", challenge[OIDC_VERIFIER_LEN];
	json_t *d = discovery(c, now, err, errcap);
	const char *ep;
	int r;

	if (d == NULL)
		return -1;
	ep = jstr(d, "authorization_endpoint");
	oidc_pkce_challenge(verifier, challenge);
	r = param(q, sizeof(q), "response_type", "code") |
	    param(q, sizeof(q), "client_id", c->s.client_id) |
	    param(q, sizeof(q), "redirect_uri", c->s.redirect_uri) |
	    param(q, sizeof(q), "scope", c->s.scopes) | param(q, sizeof(q), "state", state) |
	    param(q, sizeof(q), "nonce", nonce) | param(q, sizeof(q), "code_challenge", challenge) |
	    param(q, sizeof(q), "code_challenge_method", "S256");
	if (r == 0 && strncmp(ep, "https://", 8) == 0 &&
	    snprintf(out, cap, "%s%c%s", ep, strchr(ep, '?') ? '&' : '?', q) < (int)cap)
		r = 0;
	else {
		r = -1;
		say(err, errcap, "the provider's authorization endpoint is unusable");
	}
	json_decref(d);
	return r;
}

/* "Authorization: Basic …" of RFC 6749 §2.3.1 (each part form-encoded first). */
static int
basic_header(const struct oidc_client *c, char *out, size_t cap)
{
	char *id = curl_easy_escape(NULL, c->s.client_id, 0);
	char *sec = curl_easy_escape(NULL, c->s.client_secret, 0);
	char pair[1200];
	int n = -1;

	if (id != NULL && sec != NULL &&
	    snprintf(pair, sizeof(pair), "%s:%s", id, sec) < (int)sizeof(pair)) {
		n = (int)strlen("Authorization: Basic ");
		memcpy(out, "Authorization: Basic ", (size_t)n + 1);
		n = b64_encode(out + n, cap - (size_t)n, pair, strlen(pair)) < 0 ? -1 : 0;
		explicit_bzero(pair, sizeof(pair));
	}
	curl_free(id);
	if (sec != NULL)
		explicit_bzero(sec, strlen(sec));
	curl_free(sec);
	return n;
}

/* Verifies id_token; on an unknown key, once more with a freshly fetched JWKS. */
static int
verify_id_token(struct oidc_client *c, const json_t *d, const char *id_token, const char *nonce,
		int64_t now, json_t **claims, char *err, size_t errcap)
{
	const struct oidc_jwt_expect x = {
		.issuer = c->s.issuer,
		.client_id = c->s.client_id,
		.nonce = nonce,
		.now = now,
		.leeway = LEEWAY_S,
		.max_age = ID_TOKEN_MAX_AGE_S,
	};
	enum oidc_jwt_err e = OIDC_JWT_KID_UNKNOWN;

	for (int round = 0; round < 2 && e == OIDC_JWT_KID_UNKNOWN; round++) {
		json_t *k = jwks(c, d, round, now, err, errcap);

		if (k == NULL)
			return -1;
		e = oidc_jwt_verify(id_token, k, &x, claims);
		json_decref(k);
	}
	if (e != OIDC_JWT_OK) {
		say(err, errcap, "%s", oidc_jwt_strerror(e));
		return -1;
	}
	return 0;
}

int
oidc_redeem(struct oidc_client *c, const char *code, const char *verifier, const char *nonce,
	    int64_t now, json_t **claims, char *err, size_t errcap)
{
	char form[4096] = "", basic[1700];
	json_t *d = discovery(c, now, err, errcap), *tok = NULL;
	const char *idt;
	int r = -1;

	*claims = NULL;
	if (d == NULL)
		return -1;
	if ((param(form, sizeof(form), "grant_type", "authorization_code") |
	     param(form, sizeof(form), "code", code) |
	     param(form, sizeof(form), "redirect_uri", c->s.redirect_uri) |
	     param(form, sizeof(form), "code_verifier", verifier)) != 0 ||
	    basic_header(c, basic, sizeof(basic)) != 0) {
		say(err, errcap, "the authorization code is too long");
		goto out;
	}
	if (fetch_json(c, jstr(d, "token_endpoint"), form, basic, 200, &tok, err, errcap) != 0)
		goto out;
	idt = jstr(tok, "id_token");
	if (idt == NULL) {
		say(err, errcap, "the provider's token response has no ID token");
		goto out;
	}
	r = verify_id_token(c, d, idt, nonce, now, claims, err, errcap);
out:
	explicit_bzero(basic, sizeof(basic));
	json_decref(tok);
	json_decref(d);
	return r;
}
