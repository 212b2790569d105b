/*
 * Verification of OpenID Connect ID tokens (compact JWS, RFC 7515/7519; OpenID Connect Core
 * §3.1.3.7) with OpenSSL: the signature with a key of the provider's JWKS chosen by kid, then
 * iss, aud, azp, exp, iat and nonce. Only asymmetric algorithms are accepted (RS256/384/512,
 * ES256/384): "none" and every HMAC algorithm are refused, so a public key can never be used as
 * an HMAC secret. No network here: the caller fetches the JWKS and, on OIDC_JWT_KID_UNKNOWN,
 * fetches it again once (the provider may have rotated its key) and retries.
 */
#ifndef CLEAVE_OIDC_JWT_H
#define CLEAVE_OIDC_JWT_H

#include <jansson.h>
#include <stdint.h>

enum oidc_jwt_err {
	OIDC_JWT_OK = 0,
	OIDC_JWT_MALFORMED,   /* not three base64url parts of JSON, or a required claim missing */
	OIDC_JWT_ALG,         /* an algorithm not accepted (none, HS*, unknown) or crit present */
	OIDC_JWT_KID_UNKNOWN, /* no key of the JWKS fits the header (kid, kty, curve) */
	OIDC_JWT_SIGNATURE,   /* the signature does not verify */
	OIDC_JWT_ISS,
	OIDC_JWT_AUD,
	OIDC_JWT_AZP,
	OIDC_JWT_EXPIRED,
	OIDC_JWT_IAT, /* issued in the future or too long ago */
	OIDC_JWT_NONCE,
};

struct oidc_jwt_expect {
	const char *issuer;    /* exact match of iss */
	const char *client_id; /* must be in aud; azp, when present, must equal it */
	const char *nonce;     /* exact match of nonce */
	int64_t now;           /* Unix seconds */
	int64_t leeway;        /* clock skew allowed on exp and iat, seconds */
	int64_t max_age;       /* iat no older than this (seconds before now) */
};

/*
 * Verifies jwt against jwks (the provider's {"keys": [...]}) and x. On OIDC_JWT_OK, *claims
 * (when claims is not NULL) gets the payload (caller decrefs); otherwise it is left NULL.
 */
enum oidc_jwt_err oidc_jwt_verify(const char *jwt, const json_t *jwks,
				  const struct oidc_jwt_expect *x, json_t **claims);

/* A short English reason for err (audit entries and the refusal page). */
const char *oidc_jwt_strerror(enum oidc_jwt_err err);

#endif
