/* ID token verification for single sign-on: see oidc_jwt.h. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "oidc_jwt.h"

/* Bounds: a provider's ID token is a few KiB; RSA moduli up to 8192 bits. */
#define JWT_MAX  16384
#define PART_MAX 12288
#define KEY_MAX  1024

struct alg {
	const char *name;
	const char *kty; /* "RSA" or "EC" */
	const char *crv; /* EC only */
	size_t half;     /* EC only: the length of r and of s in the raw signature */
	const EVP_MD *(*md)(void);
};

static const struct alg algs[] = {
	{"RS256", "RSA", NULL, 0, EVP_sha256},    {"RS384", "RSA", NULL, 0, EVP_sha384},
	{"RS512", "RSA", NULL, 0, EVP_sha512},    {"ES256", "EC", "P-256", 32, EVP_sha256},
	{"ES384", "EC", "P-384", 48, EVP_sha384},
};

static const char *
str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int
str_is(const json_t *o, const char *k, const char *want)
{
	const char *v = str(o, k);

	return v != NULL && want != NULL && strcmp(v, want) == 0;
}

/* Decodes base64url part (len chars) as a JSON object; NULL if it is not one. */
static json_t *
part_json(const char *part, size_t len)
{
	char *raw = malloc(PART_MAX + 1);
	long n = raw ? b64url_decode(raw, PART_MAX, part, len) : -1;
	json_t *j = NULL;

	if (n >= 0) {
		j = json_loadb(raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
		if (j != NULL && !json_is_object(j)) {
			json_decref(j);
			j = NULL;
		}
	}
	free(raw);
	return j;
}

static const struct alg *
alg_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return &algs[i];
	return NULL;
}

/* Whether key k of the JWKS may verify a token with header h and algorithm a. */
static int
key_fits(const json_t *k, const json_t *h, const struct alg *a)
{
	if (!str_is(k, "kty", a->kty))
		return 0;
	if (json_object_get(k, "use") != NULL && !str_is(k, "use", "sig"))
		return 0;
	if (json_object_get(k, "alg") != NULL && !str_is(k, "alg", a->name))
		return 0;
	if (a->crv != NULL && !str_is(k, "crv", a->crv))
		return 0;
	if (str(h, "kid") != NULL && !str_is(k, "kid", str(h, "kid")))
		return 0;
	return 1;
}

/* The one key that fits: by kid, or without a kid the only key of the right type. */
static const json_t *
key_pick(const json_t *jwks, const json_t *h, const struct alg *a)
{
	const json_t *keys = json_object_get(jwks, "keys"), *found = NULL, *k;
	size_t i, n = 0;

	json_array_foreach(keys, i, k)
	{
		if (i >= 64)
			break; /* no provider publishes more; bounds the walk */
		if (key_fits(k, h, a)) {
			found = k;
			n++;
		}
	}
	return n == 1 ? found : NULL;
}

static BIGNUM *
jwk_bn(const json_t *k, const char *name)
{
	const char *v = str(k, name);
	unsigned char buf[KEY_MAX];
	long n = v ? b64url_decode(buf, sizeof(buf), v, strlen(v)) : -1;

	return n > 0 ? BN_bin2bn(buf, (int)n, NULL) : NULL;
}

static EVP_PKEY *
fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *
rsa_key(const json_t *k)
{
	BIGNUM *n = jwk_bn(k, "n"), *e = jwk_bn(k, "e");
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pkey = NULL;

	/* Below 2048 bits an RSA signature is not worth checking. */
	if (n != NULL && e != NULL && bld != NULL && BN_num_bits(n) >= 2048 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pkey = fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

/* An EC public key from the JWK's x and y (each exactly half bytes), checked on the curve. */
static EVP_PKEY *
ec_key(const json_t *k, const struct alg *a)
{
	unsigned char pt[1 + 2 * 66];
	const char *x = str(k, "x"), *y = str(k, "y");
	OSSL_PARAM_BLD *bld;
	EVP_PKEY *pkey = NULL;

	if (x == NULL || y == NULL ||
	    b64url_decode(pt + 1, a->half, x, strlen(x)) != (long)a->half ||
	    b64url_decode(pt + 1 + a->half, a->half, y, strlen(y)) != (long)a->half)
		return NULL;
	pt[0] = 0x04; /* uncompressed point */
	bld = OSSL_PARAM_BLD_new();
	if (bld != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    a->half == 32 ? "prime256v1" : "secp384r1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * a->half))
		pkey = fromdata("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* JWS ECDSA signatures are r || s; OpenSSL verifies DER. Returns the DER length or -1. */
static int
ec_sig_der(const unsigned char *raw, size_t half, unsigned char *der, size_t cap)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)half, NULL), *s = BN_bin2bn(raw + half, (int)half, NULL);
	unsigned char *p = der;
	int n = -1;

	if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
		r = s = NULL; /* owned by sig now */
		if (i2d_ECDSA_SIG(sig, NULL) <= (int)cap)
			n = i2d_ECDSA_SIG(sig, &p);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return n;
}

/* Verifies the signature (sig64: base64url) over input[0..ilen) with key k. */
static int
sig_ok(const json_t *k, const struct alg *a, const char *input, size_t ilen, const char *sig64,
       size_t slen)
{
	unsigned char sig[KEY_MAX], der[KEY_MAX];
	long n = b64url_decode(sig, sizeof(sig), sig64, slen);
	EVP_PKEY *pkey = a->crv ? ec_key(k, a) : rsa_key(k);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const unsigned char *s = sig;
	size_t sl = n > 0 ? (size_t)n : 0;
	int ok = 0;

	if (n > 0 && a->crv != NULL) {
		int dl = (size_t)n == 2 * a->half ? ec_sig_der(sig, a->half, der, sizeof(der)) : -1;

		s = der;
		sl = dl > 0 ? (size_t)dl : 0;
	}
	if (pkey != NULL && md != NULL && sl > 0 &&
	    EVP_DigestVerifyInit(md, NULL, a->md(), NULL, pkey) == 1)
		ok = EVP_DigestVerify(md, s, sl, (const unsigned char *)input, ilen) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return ok;
}

static int
aud_has(const json_t *aud, const char *client_id, size_t *count)
{
	size_t i;
	json_t *e;
	int found = 0;

	*count = 0;
	if (json_is_string(aud)) {
		*count = 1;
		return strcmp(json_string_value(aud), client_id) == 0;
	}
	json_array_foreach(aud, i, e)
	{
		(*count)++;
		if (json_is_string(e) && strcmp(json_string_value(e), client_id) == 0)
			found = 1;
	}
	return found;
}

/* The claim checks of OpenID Connect Core §3.1.3.7 that follow the signature. */
static enum oidc_jwt_err
claims_ok(const json_t *c, const struct oidc_jwt_expect *x)
{
	json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat");
	size_t naud;

	if (str(c, "sub") == NULL || str(c, "sub")[0] == '\0' || !json_is_integer(exp) ||
	    !json_is_integer(iat))
		return OIDC_JWT_MALFORMED;
	if (!str_is(c, "iss", x->issuer))
		return OIDC_JWT_ISS;
	if (!aud_has(json_object_get(c, "aud"), x->client_id, &naud))
		return OIDC_JWT_AUD;
	/* azp: when present it names us; with several audiences it must be present. */
	if (json_object_get(c, "azp") != NULL ? !str_is(c, "azp", x->client_id) : naud > 1)
		return OIDC_JWT_AZP;
	if (json_integer_value(exp) + x->leeway <= x->now)
		return OIDC_JWT_EXPIRED;
	if (json_integer_value(iat) > x->now + x->leeway ||
	    json_integer_value(iat) < x->now - x->max_age)
		return OIDC_JWT_IAT;
	if (!str_is(c, "nonce", x->nonce))
		return OIDC_JWT_NONCE;
	return OIDC_JWT_OK;
}

enum oidc_jwt_err
oidc_jwt_verify(const char *jwt, const json_t *jwks, const struct oidc_jwt_expect *x,
		json_t **claims)
{
	const char *d1, *d2;
	json_t *h = NULL, *c = NULL;
	const struct alg *a;
	const json_t *k;
	enum oidc_jwt_err err = OIDC_JWT_MALFORMED;

	if (claims != NULL)
		*claims = NULL;
	if (jwt == NULL || strnlen(jwt, JWT_MAX + 1) > JWT_MAX || (d1 = strchr(jwt, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL)
		return OIDC_JWT_MALFORMED;
	h = part_json(jwt, (size_t)(d1 - jwt));
	c = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
	if (h == NULL || c == NULL)
		goto out;
	err = OIDC_JWT_ALG;
	a = alg_find(str(h, "alg"));
	if (a == NULL || json_object_get(h, "crit") != NULL)
		goto out;
	err = OIDC_JWT_KID_UNKNOWN;
	k = key_pick(jwks, h, a);
	if (k == NULL)
		goto out;
	err = OIDC_JWT_SIGNATURE;
	if (!sig_ok(k, a, jwt, (size_t)(d2 - jwt), d2 + 1, strlen(d2 + 1)))
		goto out;
	err = claims_ok(c, x);
out:
	json_decref(h);
	if (err == OIDC_JWT_OK && claims != NULL)
		*claims = c;
	else
		json_decref(c);
	return err;
}

const char *
oidc_jwt_strerror(enum oidc_jwt_err err)
{
	switch (err) {
	case OIDC_JWT_OK:
		return "valid";
	case OIDC_JWT_MALFORMED:
		return "the ID token is malformed or lacks a required claim";
	case OIDC_JWT_ALG:
		return "the ID token's signature algorithm is not accepted";
	case OIDC_JWT_KID_UNKNOWN:
		return "no key of the provider matches the ID token";
	case OIDC_JWT_SIGNATURE:
		return "the ID token's signature does not verify";
	case OIDC_JWT_ISS:
		return "the ID token comes from another issuer";
	case OIDC_JWT_AUD:
		return "the ID token is not meant for this client";
	case OIDC_JWT_AZP:
		return "the ID token was issued to another party (azp)";
	case OIDC_JWT_EXPIRED:
		return "the ID token has expired";
	case OIDC_JWT_IAT:
		return "the ID token's issue time is out of range";
	case OIDC_JWT_NONCE:
		return "the ID token's nonce does not match this sign-in";
	}
	return "invalid ID token";
}
