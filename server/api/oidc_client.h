/*
 * The relying party's side of OpenID Connect that talks to the provider, with libcurl: the
 * discovery document and the JWKS (cached; the JWKS fetched again when a token names a key it
 * lacks, at most once every OIDC_JWKS_MIN_S), the authorization request URL (code flow, PKCE
 * S256, state, nonce) and the code exchange (client_secret_basic) whose ID token is verified
 * with oidc_jwt.h. The flow's state, nonce and verifier are the caller's to keep (the service
 * stores them in the database, so any server may finish a flow another began).
 */
#ifndef CLEAVE_OIDC_CLIENT_H
#define CLEAVE_OIDC_CLIENT_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define OIDC_JWKS_MIN_S      30
#define OIDC_DISCOVERY_TTL_S 3600
/* A PKCE verifier: base64url of 32 random bytes (RFC 7636 §4.1: 43 characters). */
#define OIDC_VERIFIER_LEN 44

struct oidc_settings {
	char issuer[256]; /* exactly as the provider's discovery document names itself */
	char client_id[128];
	char client_secret[256];
	char ca_file[PATH_MAX]; /* "" : the system's trust store */
	char redirect_uri[512]; /* this server's callback, as registered at the provider */
	char scopes[256];       /* "openid" and what else the role claim needs */
	int jwks_min_s;         /* 0: OIDC_JWKS_MIN_S (tests shorten it) */
};

struct oidc_client;

/* A client for settings s (copied). 0 or -ENOMEM. Nothing is fetched yet. */
int oidc_client_new(const struct oidc_settings *s, struct oidc_client **out);
void oidc_client_free(struct oidc_client *c);

/* The S256 challenge of verifier: base64url(SHA-256(verifier)) into out (44 bytes). */
void oidc_pkce_challenge(const char *verifier, char out[OIDC_VERIFIER_LEN]);

/*
 * The provider's authorization URL for this flow into out (discovery fetched if not cached).
 * 0, or -1 with a reason for people in err.
 */
int oidc_authorize_url(struct oidc_client *c, const char *state, const char *nonce,
		       const char *verifier, int64_t now, char *out, size_t cap, char *err,
		       size_t errcap);

/*
 * Exchanges code (with the flow's verifier) at the token endpoint and verifies the ID token
 * (issuer, this client, nonce, now). 0 with *claims (caller decrefs), or -1 with a reason in err.
 */
int oidc_redeem(struct oidc_client *c, const char *code, const char *verifier, const char *nonce,
		int64_t now, json_t **claims, char *err, size_t errcap);

#endif
