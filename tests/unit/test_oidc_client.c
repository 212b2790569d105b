/*
 * server/api/oidc_client.c against the real provider (LemonLDAP::NG, tests/lib/oidcop.h): the
 * authorization URL from discovery, a sign-in at the provider's form, the code exchanged with
 * client_secret_basic and PKCE, the ID token verified with the provider's JWKS. Then what must
 * fail: another nonce, the same code twice, a wrong client secret, a wrong verifier, an issuer
 * that the discovery document does not name, a provider whose certificate is not trusted. And
 * a rotated signing key: the JWKS fetched again for the unknown kid, at most so often.
 * No cleave-server: the service and the routes have their own tests.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/oidc_client.h"
#include "oidcop.h"
#include "testlib.h"

#define REDIRECT "https://127.0.0.1:9/api/v1/oidc/callback"
#define SECRET   "client-test-secret"
#define VERIFIER "Vq2pT0lL9yXb3nM8cD4eF6gH1jK5sW7aZ0uR2tY4iO6"

static struct oidcop op;

static int
op_up(struct oidc_settings *s)
{
	const char *why = oidcop_skip_reason();

	if (why != NULL) {
		t_skip("%s", why);
		return -1;
	}
	if (oidcop_init(&op, "oidc-client") != 0 || oidcop_start(&op, REDIRECT, SECRET) != 0) {
		t_fail(__FILE__, __LINE__, "the OpenID provider did not start");
		oidcop_stop(&op);
		return -1;
	}
	memset(s, 0, sizeof(*s));
	snprintf(s->issuer, sizeof(s->issuer), "%s", op.issuer);
	snprintf(s->client_id, sizeof(s->client_id), "cleave");
	snprintf(s->client_secret, sizeof(s->client_secret), SECRET);
	snprintf(s->ca_file, sizeof(s->ca_file), "%s", op.cafile);
	snprintf(s->redirect_uri, sizeof(s->redirect_uri), REDIRECT);
	snprintf(s->scopes, sizeof(s->scopes), "openid email cleave");
	return 0;
}

/* The code of a sign-in by user at the provider for a flow (state, nonce, VERIFIER). */
static int
sign_in(struct oidc_client *c, const char *user, const char *nonce, char *code, size_t cap)
{
	char url[4096], back[4096], err[300];
	const char *p, *e;

	if (oidc_authorize_url(c, "state-1", nonce, VERIFIER, time(NULL), url, sizeof(url), err,
			       sizeof(err)) != 0) {
		fprintf(stderr, "    %s\n", err);
		return -1;
	}
	if (oidcop_login(&op, url, user, user, back, sizeof(back)) != 0)
		return -1;
	p = strstr(back, "code=");
	if (strncmp(back, REDIRECT "?", strlen(REDIRECT) + 1) != 0 || p == NULL ||
	    strstr(back, "state=state-1") == NULL)
		return -1;
	p += 5;
	e = p + strcspn(p, "&");
	if ((size_t)(e - p) >= cap)
		return -1;
	memcpy(code, p, (size_t)(e - p));
	code[e - p] = '\0';
	return 0;
}

static void
t_flow(void)
{
	struct oidc_settings s;
	struct oidc_client *c = NULL;
	char code[256], err[300];
	json_t *claims = NULL;
	int signed_in, r1, r2;

	if (op_up(&s) != 0)
		return;
	oidc_client_new(&s, &c);
	signed_in = sign_in(c, "dwho", "nonce-1", code, sizeof(code));
	r1 = signed_in == 0 ? oidc_redeem(c, code, VERIFIER, "nonce-1", time(NULL), &claims, err,
					  sizeof(err))
			    : -1;
	json_decref(claims);
	claims = NULL;
	/* The same code again: the provider refuses it. */
	r2 = signed_in == 0 ? oidc_redeem(c, code, VERIFIER, "nonce-1", time(NULL), &claims, err,
					  sizeof(err))
			    : 0;
	oidc_client_free(c);
	oidcop_stop(&op);
	CHECK(signed_in == 0, "no code from the provider");
	CHECK(r1 == 0, "the code exchange failed");
	CHECK(r2 == -1 && claims == NULL, "a code was redeemed twice");
	CHECK(strstr(err, "answered 400") != NULL, "reason: %s", err);
}

static void
t_flow_claims(void)
{
	struct oidc_settings s;
	struct oidc_client *c = NULL;
	char code[256], err[300] = "";
	json_t *claims = NULL;
	int r = -1;

	if (op_up(&s) != 0)
		return;
	oidc_client_new(&s, &c);
	if (sign_in(c, "rtyler", "nonce-2", code, sizeof(code)) == 0)
		r = oidc_redeem(c, code, VERIFIER, "nonce-2", time(NULL), &claims, err,
				sizeof(err));
	oidc_client_free(c);
	oidcop_stop(&op);
	CHECK(r == 0, "exchange failed: %s", err);
	CHECK(strcmp(json_string_value(json_object_get(claims, "sub")) ?: "", "rtyler") == 0,
	      "sub");
	CHECK(strcmp(json_string_value(json_object_get(claims, "cleave_role")) ?: "", "auditor") ==
		      0,
	      "role claim");
	json_decref(claims);
}

/* A redeem that must fail with a reason containing want. */
static void
refused(const char *nonce_at_redeem, const char *secret, const char *verifier, const char *want)
{
	struct oidc_settings s;
	struct oidc_client *c = NULL;
	char code[256], err[300] = "";
	json_t *claims = NULL;
	int got = -2, r = 0;

	if (op_up(&s) != 0)
		return;
	snprintf(s.client_secret, sizeof(s.client_secret), "%s", secret);
	oidc_client_new(&s, &c);
	got = sign_in(c, "dwho", "nonce-3", code, sizeof(code));
	if (got == 0)
		r = oidc_redeem(c, code, verifier, nonce_at_redeem, time(NULL), &claims, err,
				sizeof(err));
	oidc_client_free(c);
	oidcop_stop(&op);
	CHECK(got == 0, "no code from the provider");
	CHECK(r == -1 && claims == NULL, "accepted");
	CHECK(strstr(err, want) != NULL, "reason \"%s\", want \"%s\"", err, want);
}

static void
t_nonce_mismatch(void)
{
	refused("nonce-other", SECRET, VERIFIER, "nonce does not match");
}

static void
t_wrong_secret(void)
{
	refused("nonce-3", "not-the-secret", VERIFIER, "answered 401");
}

static void
t_wrong_verifier(void)
{
	refused("nonce-3", SECRET, "Zz2pT0lL9yXb3nM8cD4eF6gH1jK5sW7aZ0uR2tY4iO6", "answered 400");
}

static void
t_discovery_refused(void)
{
	struct oidc_settings s;
	struct oidc_client *c = NULL;
	char url[4096], err1[300] = "", err2[300] = "";
	int r1, r2;

	if (op_up(&s) != 0)
		return;
	/* An issuer the document does not name (a trailing slash is another issuer). */
	strcat(s.issuer, "/");
	oidc_client_new(&s, &c);
	r1 = oidc_authorize_url(c, "st", "n", VERIFIER, time(NULL), url, sizeof(url), err1,
				sizeof(err1));
	oidc_client_free(c);
	/* The provider's self-signed certificate without its CA file. */
	s.issuer[strlen(s.issuer) - 1] = '\0';
	s.ca_file[0] = '\0';
	oidc_client_new(&s, &c);
	r2 = oidc_authorize_url(c, "st", "n", VERIFIER, time(NULL), url, sizeof(url), err2,
				sizeof(err2));
	oidc_client_free(c);
	oidcop_stop(&op);
	CHECK(r1 == -1 && strstr(err1, "names issuer") != NULL, "issuer mismatch: %s", err1);
	CHECK(r2 == -1 && strstr(err2, "could not be reached") != NULL, "untrusted: %s", err2);
}

/*
 * The provider rotates its signing key. A client whose cached JWKS is older than its refresh
 * bound fetches the JWKS again for the unknown kid and signs in; one whose cache is younger
 * (the default 30 s bound) does not fetch it on every token naming an unknown key, and
 * refuses this one.
 */
static void
t_key_rotation(void)
{
	struct oidc_settings s;
	struct oidc_client *quick = NULL, *strict = NULL;
	char code[256], err1[300] = "", err2[300] = "";
	json_t *claims = NULL;
	int warm = -1, rotated = -1, r1 = -1, r2 = 0;

	if (op_up(&s) != 0)
		return;
	s.jwks_min_s = 1;
	oidc_client_new(&s, &quick);
	s.jwks_min_s = 0;
	oidc_client_new(&s, &strict);
	/* Both cache the first key. */
	warm = sign_in(quick, "dwho", "nonce-4", code, sizeof(code)) == 0 &&
	       oidc_redeem(quick, code, VERIFIER, "nonce-4", time(NULL), &claims, err1,
			   sizeof(err1)) == 0;
	json_decref(claims);
	claims = NULL;
	warm = warm && sign_in(strict, "dwho", "nonce-4", code, sizeof(code)) == 0 &&
	       oidc_redeem(strict, code, VERIFIER, "nonce-4", time(NULL), &claims, err1,
			   sizeof(err1)) == 0;
	json_decref(claims);
	claims = NULL;
	rotated = oidcop_rotate(&op, "cleave-test-2");
	sleep(2); /* past quick's 1 s bound, well within strict's 30 s */
	if (warm && rotated == 0 && sign_in(quick, "dwho", "nonce-5", code, sizeof(code)) == 0)
		r1 = oidc_redeem(quick, code, VERIFIER, "nonce-5", time(NULL), &claims, err1,
				 sizeof(err1));
	json_decref(claims);
	claims = NULL;
	if (warm && rotated == 0 && sign_in(strict, "dwho", "nonce-6", code, sizeof(code)) == 0)
		r2 = oidc_redeem(strict, code, VERIFIER, "nonce-6", time(NULL), &claims, err2,
				 sizeof(err2));
	json_decref(claims);
	oidc_client_free(quick);
	oidc_client_free(strict);
	oidcop_stop(&op);
	CHECK(warm, "the first sign-ins failed: %s", err1);
	CHECK(rotated == 0, "the provider did not publish the new key");
	CHECK(r1 == 0, "no refresh of the JWKS for the new kid: %s", err1);
	CHECK(r2 == -1 && strstr(err2, "no key of the provider matches") != NULL,
	      "the bound did not hold: %d %s", r2, err2);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"flow", t_flow},
		{"flow_claims", t_flow_claims},
		{"nonce_mismatch", t_nonce_mismatch},
		{"wrong_secret", t_wrong_secret},
		{"wrong_verifier", t_wrong_verifier},
		{"discovery_refused", t_discovery_refused},
		{"key_rotation", t_key_rotation},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
