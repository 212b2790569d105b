/*
 * The test OpenID provider itself (tests/oidc/llng_op.sh, LemonLDAP::NG): before Cleave's
 * single sign-on is tested against it, prove it behaves as the relying party will expect:
 * discovery and JWKS, the authorization-code flow with PKCE S256 for a user with a role claim,
 * PKCE demanded, a wrong verifier refused, and a user without the claim. No cleave-server here.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "crypto.h"
#include "oidcop.h"
#include "testlib.h"

#define REDIRECT "https://127.0.0.1:9/api/v1/oidc/callback"
#define SECRET   "op-test-secret"
/* RFC 7636 appendix B's verifier, and its S256 challenge. */
#define VERIFIER  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static struct oidcop op;

static int
op_up(void)
{
	const char *why = oidcop_skip_reason();

	if (why != NULL) {
		t_skip("%s", why);
		return -1;
	}
	if (oidcop_init(&op, "oidc-op") != 0 || oidcop_start(&op, REDIRECT, SECRET) != 0) {
		t_fail(__FILE__, __LINE__, "the OpenID provider did not start");
		oidcop_stop(&op);
		return -1;
	}
	return 0;
}

struct buf {
	char *p;
	size_t n;
};

static size_t
take(char *p, size_t size, size_t n, void *u)
{
	struct buf *b = u;
	char *nb = realloc(b->p, b->n + size * n + 1);

	if (nb == NULL)
		return 0;
	memcpy(nb + b->n, p, size * n);
	b->n += size * n;
	nb[b->n] = '\0';
	b->p = nb;
	return size * n;
}

/* GET (form NULL) or POST form to url at the provider; the JSON answer, status in *code. */
static int
array_has(const json_t *a, const char *v)
{
	size_t i;
	json_t *e;

	if (json_is_string(a))
		return strcmp(json_string_value(a), v) == 0;
	json_array_foreach(a, i, e)
	{
		if (json_is_string(e) && strcmp(json_string_value(e), v) == 0)
			return 1;
	}
	return 0;
}

static json_t *
op_json(const char *url, const char *form, const char *userpwd, long *code)
{
	CURL *h = curl_easy_init();
	struct buf b = {0};
	json_t *j = NULL;

	*code = -1;
	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, op.cafile);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, take);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (form != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	if (userpwd != NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
	}
	if (curl_easy_perform(h) == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
		j = b.p ? json_loads(b.p, 0, NULL) : NULL;
	}
	free(b.p);
	curl_easy_cleanup(h);
	return j;
}

static void
authorize_url(char *out, size_t cap, const char *challenge)
{
	char extra[200] = "";

	if (challenge != NULL)
		snprintf(extra, sizeof(extra), "&code_challenge=%s&code_challenge_method=S256",
			 challenge);
	snprintf(out, cap,
		 "%s/oauth2/authorize?response_type=code&client_id=cleave&scope=openid%%20email"
		 "%%20cleave&redirect_uri=https%%3A%%2F%%2F127.0.0.1%%3A9%%2Fapi%%2Fv1%%2Foidc%%2F"
		 "callback&state=st-1&nonce=n-1%s",
		 op.issuer, extra);
}

/* The value of query parameter name in url (not decoded: codes and states are URL-safe). */
static int
query_param(const char *url, const char *name, char *out, size_t cap)
{
	const char *q = strchr(url, '?');
	size_t nl = strlen(name);

	while (q != NULL) {
		q++;
		if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
			size_t len = strcspn(q + nl + 1, "&#");

			if (len >= cap)
				return -1;
			memcpy(out, q + nl + 1, len);
			out[len] = '\0';
			return 0;
		}
		q = strchr(q, '&');
	}
	return -1;
}

/* Signs in as user and exchanges the code with verifier; the token response, status in *code. */
static json_t *
code_flow(const char *user, const char *verifier, long *code)
{
	char url[1024], back[4096], c[256], form[1024];

	*code = -1;
	authorize_url(url, sizeof(url), CHALLENGE);
	if (oidcop_login(&op, url, user, user, back, sizeof(back)) != 0 ||
	    strncmp(back, REDIRECT "?", strlen(REDIRECT) + 1) != 0 ||
	    query_param(back, "code", c, sizeof(c)) != 0) {
		fprintf(stderr, "    no code came back for %s\n", user);
		return NULL;
	}
	snprintf(form, sizeof(form),
		 "grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s", c,
		 REDIRECT, verifier);
	snprintf(url, sizeof(url), "%s/oauth2/token", op.issuer);
	return op_json(url, form, "cleave:" SECRET, code);
}

/* The claims of the ID token in a token response (not verified: the provider is under test). */
static json_t *
id_claims(json_t *tok)
{
	const char *jwt = json_string_value(json_object_get(tok, "id_token"));
	const char *p, *e;
	char raw[4096];
	long n;

	if (jwt == NULL || (p = strchr(jwt, '.')) == NULL || (e = strchr(p + 1, '.')) == NULL)
		return NULL;
	n = b64url_decode(raw, sizeof(raw) - 1, p + 1, (size_t)(e - p - 1));
	if (n < 0)
		return NULL;
	raw[n] = '\0';
	return json_loads(raw, 0, NULL);
}

static void
t_discovery(void)
{
	char url[128];
	long code;
	json_t *d, *k, *key;

	if (op_up() != 0)
		return;
	snprintf(url, sizeof(url), "%s/.well-known/openid-configuration", op.issuer);
	d = op_json(url, NULL, NULL, &code);
	snprintf(url, sizeof(url), "%s/oauth2/jwks", op.issuer);
	k = op_json(url, NULL, NULL, &code);
	oidcop_stop(&op);
	CHECK(d != NULL && k != NULL, "no discovery document or JWKS");
	CHECK(strcmp(json_string_value(json_object_get(d, "issuer")) ?: "", op.issuer) == 0,
	      "issuer %s", json_string_value(json_object_get(d, "issuer")));
	CHECK(array_has(json_object_get(d, "code_challenge_methods_supported"), "S256"),
	      "S256 not offered");
	CHECK(array_has(json_object_get(d, "token_endpoint_auth_methods_supported"),
			"client_secret_basic"),
	      "client_secret_basic not offered");
	key = json_array_get(json_object_get(k, "keys"), 0);
	CHECK(strcmp(json_string_value(json_object_get(key, "kid")) ?: "", "cleave-test") == 0 &&
		      strcmp(json_string_value(json_object_get(key, "kty")) ?: "", "RSA") == 0,
	      "JWKS without the signing key");
	json_decref(d);
	json_decref(k);
}

/* dwho signs in; the ID token names the client, the nonce and the role claim. */
static void
t_code_flow_role(void)
{
	long code;
	json_t *tok, *c;

	if (op_up() != 0)
		return;
	tok = code_flow("dwho", VERIFIER, &code);
	oidcop_stop(&op);
	CHECK(tok != NULL && code == 200, "token endpoint HTTP %ld", code);
	c = id_claims(tok);
	json_decref(tok);
	CHECK(c != NULL, "no readable ID token");
	CHECK(strcmp(json_string_value(json_object_get(c, "sub")) ?: "", "dwho") == 0, "sub");
	CHECK(strcmp(json_string_value(json_object_get(c, "iss")) ?: "", op.issuer) == 0, "iss");
	CHECK(strcmp(json_string_value(json_object_get(c, "nonce")) ?: "", "n-1") == 0, "nonce");
	CHECK(array_has(json_object_get(c, "aud"), "cleave"), "aud");
	CHECK(strcmp(json_string_value(json_object_get(c, "cleave_role")) ?: "", "admin") == 0,
	      "cleave_role");
	CHECK(strcmp(json_string_value(json_object_get(c, "email")) ?: "", "dwho@badwolf.org") == 0,
	      "email");
	json_decref(c);
}

/* msmith has no role: the claim is absent or empty, which Cleave must refuse. */
static void
t_no_role(void)
{
	long code;
	json_t *tok, *c;
	const char *role;

	if (op_up() != 0)
		return;
	tok = code_flow("msmith", VERIFIER, &code);
	oidcop_stop(&op);
	CHECK(tok != NULL && code == 200, "token endpoint HTTP %ld", code);
	c = id_claims(tok);
	json_decref(tok);
	CHECK(c != NULL, "no readable ID token");
	role = json_string_value(json_object_get(c, "cleave_role"));
	CHECK(role == NULL || role[0] == '\0', "msmith has role %s", role);
	json_decref(c);
}

/* PKCE is required of the client, and the code is bound to the challenge. */
static void
t_pkce(void)
{
	char url[1024], back[4096], err[64];
	long code;
	json_t *tok;
	int rc;

	if (op_up() != 0)
		return;
	authorize_url(url, sizeof(url), NULL);
	rc = oidcop_login(&op, url, "dwho", "dwho", back, sizeof(back));
	tok = code_flow("dwho", "wrong-verifier-wrong-verifier-wrong-verifier", &code);
	oidcop_stop(&op);
	CHECK(rc == 0 && query_param(back, "error", err, sizeof(err)) == 0 &&
		      strcmp(err, "invalid_request") == 0,
	      "authorization without code_challenge was not refused: %s", back);
	CHECK(code == 400, "a wrong code_verifier got HTTP %ld", code);
	json_decref(tok);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"discovery", t_discovery},
		{"code_flow_role", t_code_flow_role},
		{"no_role", t_no_role},
		{"pkce", t_pkce},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
