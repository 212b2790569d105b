/*
 * Unit tests for server/crypto/oidc_jwt.c, with ID tokens signed here by keys made here: the
 * good RS256 and ES256 tokens pass and give their claims; every forgery or mismatch is refused
 * with its own reason: a signature by another key, a changed payload, another issuer or
 * audience, azp, expiry (and the leeway), iat in the future, nonce, alg "none", an unknown kid,
 * HS256 with the provider's public key as the HMAC secret, a short RSA key, malformed tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "api/oidc_jwt.h"

#define ISS   "https://op.test"
#define AUD   "cleave"
#define NONCE "n-0123456789"
#define NOW   1800000000

static EVP_PKEY *rsa, *rsa_other, *ec, *rsa_short;
static json_t *jwks;

static void
b64u(char *out, size_t cap, const void *p, size_t n)
{
	assert_true(b64url_encode(out, cap, p, n) >= 0);
}

static json_t *
jwk_rsa(EVP_PKEY *k, const char *kid)
{
	BIGNUM *n = NULL, *e = NULL;
	unsigned char nb[1024], eb[16];
	char n64[1400], e64[32];
	int nl, el;

	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), 1);
	nl = BN_bn2bin(n, nb);
	el = BN_bn2bin(e, eb);
	b64u(n64, sizeof(n64), nb, (size_t)nl);
	b64u(e64, sizeof(e64), eb, (size_t)el);
	BN_free(n);
	BN_free(e);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "kid", kid, "use", "sig", "n",
			 n64, "e", e64);
}

static json_t *
jwk_ec(EVP_PKEY *k, const char *kid)
{
	unsigned char pt[65];
	size_t len = 0;
	char x[64], y[64];

	assert_int_equal(
		EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len),
		1);
	assert_int_equal(len, 65);
	b64u(x, sizeof(x), pt + 1, 32);
	b64u(y, sizeof(y), pt + 33, 32);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", kid, "crv", "P-256", "x",
			 x, "y", y);
}

/* Signs header.payload with k as alg; ES256 signatures converted from DER to r || s. */
static void
sign(EVP_PKEY *k, const char *alg, const char *input, char *out, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024], raw[64];
	size_t sl = sizeof(sig);

	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &sl, (const unsigned char *)input, strlen(input)),
			 1);
	EVP_MD_CTX_free(md);
	if (strcmp(alg, "ES256") == 0) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);

		assert_non_null(es);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
		ECDSA_SIG_free(es);
		b64u(out, cap, raw, 64);
		return;
	}
	b64u(out, cap, sig, sl);
}

/* header and claims (JSON) as a signing input: base64url(header) "." base64url(claims). */
static void
signing_input(const json_t *h, const json_t *c, char *out, size_t cap)
{
	char *hs = json_dumps(h, JSON_COMPACT), *cs = json_dumps(c, JSON_COMPACT);
	char h64[512], c64[2048];

	b64u(h64, sizeof(h64), hs, strlen(hs));
	b64u(c64, sizeof(c64), cs, strlen(cs));
	snprintf(out, cap, "%s.%s", h64, c64);
	free(hs);
	free(cs);
}

static json_t *
good_claims(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "iss", ISS, "sub", "dwho",
			 "aud", AUD, "nonce", NONCE, "iat", (json_int_t)NOW - 5, "exp",
			 (json_int_t)NOW + 300, "azp", AUD, "cleave_role", "admin");
}

/* A token: claims c (stolen reference), signed by k as alg with kid. */
static char *
token(EVP_PKEY *k, const char *alg, const char *kid, json_t *c)
{
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", alg, "kid", kid, "typ", "JWT");
	char in[3072], sig[1500], *out = malloc(4600);

	signing_input(h, c, in, sizeof(in));
	sign(k, alg, in, sig, sizeof(sig));
	snprintf(out, 4600, "%s.%s", in, sig);
	json_decref(h);
	json_decref(c);
	return out;
}

static const struct oidc_jwt_expect expect = {
	.issuer = ISS,
	.client_id = AUD,
	.nonce = NONCE,
	.now = NOW,
	.leeway = 60,
	.max_age = 600,
};

static enum oidc_jwt_err
verify(char *jwt, json_t **claims)
{
	enum oidc_jwt_err e = oidc_jwt_verify(jwt, jwks, &expect, claims);

	free(jwt);
	return e;
}

static int
setup(void **state)
{
	json_t *keys;

	(void)state;
	rsa = EVP_RSA_gen(2048);
	rsa_other = EVP_RSA_gen(2048);
	rsa_short = EVP_RSA_gen(1024);
	ec = EVP_EC_gen("P-256");
	assert_non_null(rsa && rsa_other && ec && rsa_short);
	keys = json_array();
	json_array_append_new(keys, jwk_rsa(rsa, "rsa-1"));
	json_array_append_new(keys, jwk_ec(ec, "ec-1"));
	json_array_append_new(keys, jwk_rsa(rsa_short, "rsa-short"));
	jwks = json_pack("{s:o}", "keys", keys);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_other);
	EVP_PKEY_free(rsa_short);
	EVP_PKEY_free(ec);
	json_decref(jwks);
	return 0;
}

static void
t_rs256_ok(void **state)
{
	json_t *c = NULL;

	(void)state;
	assert_int_equal(verify(token(rsa, "RS256", "rsa-1", good_claims()), &c), OIDC_JWT_OK);
	assert_string_equal(json_string_value(json_object_get(c, "cleave_role")), "admin");
	json_decref(c);
}

static void
t_es256_ok(void **state)
{
	json_t *c = NULL;

	(void)state;
	assert_int_equal(verify(token(ec, "ES256", "ec-1", good_claims()), &c), OIDC_JWT_OK);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), "dwho");
	json_decref(c);
}

static void
t_wrong_signature(void **state)
{
	json_t *c = (json_t *)0x1;

	(void)state;
	assert_int_equal(verify(token(rsa_other, "RS256", "rsa-1", good_claims()), &c),
			 OIDC_JWT_SIGNATURE);
	assert_null(c);
	/* An ES256 token claiming the EC key but signed by another EC key. */
	{
		EVP_PKEY *other = EVP_EC_gen("P-256");

		assert_int_equal(verify(token(other, "ES256", "ec-1", good_claims()), NULL),
				 OIDC_JWT_SIGNATURE);
		EVP_PKEY_free(other);
	}
}

static void
t_payload_changed(void **state)
{
	char *jwt = token(rsa, "RS256", "rsa-1", good_claims());
	json_t *c = good_claims();
	char in[3072], *fake = malloc(4600);
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "kid", "rsa-1", "typ", "JWT");

	(void)state;
	/* The same signature on a payload that says auditor instead of admin. */
	json_object_set_new(c, "cleave_role", json_string("auditor"));
	signing_input(h, c, in, sizeof(in));
	snprintf(fake, 4600, "%s%s", in, strrchr(jwt, '.'));
	assert_int_equal(verify(fake, NULL), OIDC_JWT_SIGNATURE);
	free(jwt);
	json_decref(c);
	json_decref(h);
}

static void
t_claim(const char *name, json_t *value, enum oidc_jwt_err want)
{
	json_t *c = good_claims();

	if (value != NULL)
		json_object_set_new(c, name, value);
	else
		json_object_del(c, name);
	assert_int_equal(verify(token(rsa, "RS256", "rsa-1", c), NULL), want);
}

static void
t_claims_refused(void **state)
{
	(void)state;
	t_claim("iss", json_string("https://evil.test"), OIDC_JWT_ISS);
	t_claim("iss", NULL, OIDC_JWT_ISS);
	t_claim("aud", json_string("another-client"), OIDC_JWT_AUD);
	t_claim("aud", json_pack("[s]", "another-client"), OIDC_JWT_AUD);
	t_claim("azp", json_string("another-client"), OIDC_JWT_AZP);
	t_claim("exp", json_integer(NOW - 61), OIDC_JWT_EXPIRED);
	t_claim("iat", json_integer(NOW + 120), OIDC_JWT_IAT);
	t_claim("iat", json_integer(NOW - 3600), OIDC_JWT_IAT);
	t_claim("nonce", json_string("n-other"), OIDC_JWT_NONCE);
	t_claim("nonce", NULL, OIDC_JWT_NONCE);
	t_claim("sub", NULL, OIDC_JWT_MALFORMED);
	t_claim("exp", json_string("tomorrow"), OIDC_JWT_MALFORMED);
}

static void
t_claims_accepted(void **state)
{
	json_t *c = good_claims();

	(void)state;
	/* Within the leeway, and several audiences with azp naming us. */
	t_claim("exp", json_integer(NOW - 30), OIDC_JWT_OK);
	json_object_set_new(c, "aud", json_pack("[s, s]", "other", AUD));
	assert_int_equal(verify(token(rsa, "RS256", "rsa-1", c), NULL), OIDC_JWT_OK);
	/* Several audiences without azp: refused. */
	c = good_claims();
	json_object_set_new(c, "aud", json_pack("[s, s]", "other", AUD));
	json_object_del(c, "azp");
	assert_int_equal(verify(token(rsa, "RS256", "rsa-1", c), NULL), OIDC_JWT_AZP);
}

static void
t_alg_none(void **state)
{
	json_t *h = json_pack("{s:s}", "alg", "none"), *c = good_claims();
	char in[3072], *jwt = malloc(4600);

	(void)state;
	signing_input(h, c, in, sizeof(in));
	snprintf(jwt, 4600, "%s.", in);
	assert_int_equal(verify(jwt, NULL), OIDC_JWT_ALG);
	json_decref(h);
	json_decref(c);
}

static void
t_kid_unknown(void **state)
{
	(void)state;
	assert_int_equal(verify(token(rsa, "RS256", "rsa-2", good_claims()), NULL),
			 OIDC_JWT_KID_UNKNOWN);
	/* kid of the EC key on an RS256 token: no RSA key by that kid. */
	assert_int_equal(verify(token(rsa, "RS256", "ec-1", good_claims()), NULL),
			 OIDC_JWT_KID_UNKNOWN);
}

/* The classic confusion: HS256 keyed with the provider's public key (which anyone has). */
static void
t_hs256_public_key(void **state)
{
	json_t *h = json_pack("{s:s, s:s}", "alg", "HS256", "kid", "rsa-1"), *c = good_claims();
	BIO *b = BIO_new(BIO_s_mem());
	char in[3072], *pem, sig64[64], *jwt = malloc(4600);
	unsigned char mac[32];
	unsigned int ml = sizeof(mac);
	long pl;

	(void)state;
	PEM_write_bio_PUBKEY(b, rsa);
	pl = BIO_get_mem_data(b, &pem);
	signing_input(h, c, in, sizeof(in));
	HMAC(EVP_sha256(), pem, (int)pl, (const unsigned char *)in, strlen(in), mac, &ml);
	b64u(sig64, sizeof(sig64), mac, ml);
	snprintf(jwt, 4600, "%s.%s", in, sig64);
	assert_int_equal(verify(jwt, NULL), OIDC_JWT_ALG);
	BIO_free(b);
	json_decref(h);
	json_decref(c);
}

static void
t_short_rsa_key(void **state)
{
	(void)state;
	assert_int_equal(verify(token(rsa_short, "RS256", "rsa-short", good_claims()), NULL),
			 OIDC_JWT_SIGNATURE);
}

static void
t_malformed(void **state)
{
	static const char *bad[] = {"", "a.b", "a.b.c.d", "!!.!!.!!", "W10.e30.AA"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(oidc_jwt_verify(bad[i], jwks, &expect, NULL), OIDC_JWT_MALFORMED);
	assert_int_equal(oidc_jwt_verify(NULL, jwks, &expect, NULL), OIDC_JWT_MALFORMED);
	/* A header without alg names no accepted algorithm. */
	assert_int_equal(oidc_jwt_verify("e30.e30.", jwks, &expect, NULL), OIDC_JWT_ALG);
	assert_string_equal(oidc_jwt_strerror(OIDC_JWT_NONCE),
			    "the ID token's nonce does not match this sign-in");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_rs256_ok),         cmocka_unit_test(t_es256_ok),
		cmocka_unit_test(t_wrong_signature),  cmocka_unit_test(t_payload_changed),
		cmocka_unit_test(t_claims_refused),   cmocka_unit_test(t_claims_accepted),
		cmocka_unit_test(t_alg_none),         cmocka_unit_test(t_kid_unknown),
		cmocka_unit_test(t_hs256_public_key), cmocka_unit_test(t_short_rsa_key),
		cmocka_unit_test(t_malformed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
