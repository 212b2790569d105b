/*
 * Checks over decoded TPM structures (tpm_verify.h): a TPM public area as an OpenSSL key, a TPM
 * signature verified with it, the attestation key's required attributes, and a TPM2_Quote over
 * PCR 23 replayed from the device's event log. The decoders are in tpm_decode.c, MakeCredential
 * in tpm_cred.c and the EK certificate chain in tpm_ek.c.
 */
#include "tpm_verify.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "tpm_priv.h"

#define AK_ATTRS_REQUIRED                                                                          \
	(TPMA_FIXED_TPM | TPMA_FIXED_PARENT | TPMA_SENSITIVE_ORIG | TPMA_RESTRICTED | TPMA_SIGN)
#define CLEAVE_PCR 23

/* EVP_PKEY_fromdata for a public key of type name ("RSA", "EC") from params. */
static int
pkey_from_params(const char *name, OSSL_PARAM_BLD *b, EVP_PKEY **out)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
	int ok;

	ok = params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
	     EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return ok ? 0 : -EINVAL;
}

static int
rsa_pkey(const struct tpm_public *p, EVP_PKEY **out, char *why, size_t cap)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	BIGNUM *n = BN_bin2bn(p->unique, p->unique_len, NULL);
	BIGNUM *e = BN_new();
	int r = -ENOMEM;

	if (p->rsa_bits < 2048 || p->rsa_bits > 4096 || p->unique_len != p->rsa_bits / 8) {
		r = tpm_fail(why, cap, -EINVAL, "RSA key: %u bits with a %u-byte modulus",
			     p->rsa_bits, p->unique_len);
		goto out;
	}
	if (b == NULL || n == NULL || e == NULL ||
	    BN_set_word(e, p->rsa_exponent ? p->rsa_exponent : 65537) != 1 ||
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e) != 1)
		goto out;
	r = pkey_from_params("RSA", b, out);
	if (r != 0)
		tpm_fail(why, cap, r, "RSA key: OpenSSL refuses it");
out:
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_BLD_free(b);
	return r;
}

static int
ecc_pkey(const struct tpm_public *p, EVP_PKEY **out, char *why, size_t cap)
{
	uint8_t point[1 + 2 * 48] = {0x04};
	const char *group;
	size_t k;
	OSSL_PARAM_BLD *b;
	int r = -ENOMEM;

	if (p->curve == TPM_ECC_NIST_P256)
		group = "P-256", k = 32;
	else if (p->curve == TPM_ECC_NIST_P384)
		group = "P-384", k = 48;
	else
		return tpm_fail(why, cap, -ENOTSUP, "ECC curve 0x%04x not supported", p->curve);
	if (p->unique_len == 0 || p->unique_len > k || p->unique_y_len == 0 || p->unique_y_len > k)
		return tpm_fail(why, cap, -EINVAL, "ECC key: a coordinate of the wrong size");
	/* The TPM may drop leading zero bytes: right-align each coordinate. */
	memcpy(point + 1 + k - p->unique_len, p->unique, p->unique_len);
	memcpy(point + 1 + 2 * k - p->unique_y_len, p->unique_y, p->unique_y_len);
	b = OSSL_PARAM_BLD_new();
	if (b != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
	    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * k) == 1) {
		r = pkey_from_params("EC", b, out); /* refuses a point off the curve */
		if (r != 0)
			tpm_fail(why, cap, r, "ECC key: not a point on %s", group);
	}
	OSSL_PARAM_BLD_free(b);
	return r;
}

int
tpm_public_pkey(const struct tpm_public *p, EVP_PKEY **out, char *why, size_t cap)
{
	*out = NULL;
	if (p->type == TPM_ALG_RSA)
		return rsa_pkey(p, out, why, cap);
	if (p->type == TPM_ALG_ECC)
		return ecc_pkey(p, out, why, cap);
	return tpm_fail(why, cap, -ENOTSUP, "object type 0x%04x has no public key", p->type);
}

int
tpm_public_spki(const struct tpm_public *p, uint8_t *der, size_t cap, size_t *len, char *why,
		size_t wcap)
{
	EVP_PKEY *key = NULL;
	unsigned char *out = der;
	int r = tpm_public_pkey(p, &key, why, wcap), n;

	if (r != 0)
		return r;
	n = i2d_PUBKEY(key, NULL);
	if (n <= 0 || (size_t)n > cap)
		r = tpm_fail(why, wcap, -ENOSPC, "SubjectPublicKeyInfo: %d bytes do not fit", n);
	else if ((n = i2d_PUBKEY(key, &out)) <= 0)
		r = tpm_fail(why, wcap, -EIO, "SubjectPublicKeyInfo: OpenSSL cannot encode it");
	else
		*len = (size_t)n;
	EVP_PKEY_free(key);
	return r;
}

int
tpm_signature_verify(EVP_PKEY *key, const struct tpm_signature *sig, const uint8_t *msg, size_t n,
		     char *why, size_t cap)
{
	const EVP_MD *md = tpm_md(sig->hash);
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx = NULL;
	int ecdsa = sig->alg == TPM_ALG_ECDSA, ok;

	if (md == NULL || sig->hash == TPM_ALG_SHA1)
		return tpm_fail(why, cap, -EBADMSG, "signature hash 0x%04x not accepted",
				sig->hash);
	if (!EVP_PKEY_is_a(key, ecdsa ? "EC" : "RSA"))
		return tpm_fail(why, cap, -EBADMSG,
				"signature algorithm 0x%04x does not fit the key", sig->alg);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -ENOMEM;
	ok = EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key) == 1;
	if (ok && sig->alg == TPM_ALG_RSAPSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1;
	ok = ok && EVP_DigestVerify(ctx, sig->sig, sig->sig_len, msg, n) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : tpm_fail(why, cap, -EBADMSG, "the signature does not verify with the key");
}

int
tpm_ak_check(const struct tpm_public *ak, char *why, size_t cap)
{
	uint32_t missing = AK_ATTRS_REQUIRED & ~ak->attrs;

	if (ak->type != TPM_ALG_ECC || ak->curve != TPM_ECC_NIST_P256)
		return tpm_fail(why, cap, -EBADMSG, "AK: not an ECC NIST P-256 key");
	if (ak->name_alg != TPM_ALG_SHA256)
		return tpm_fail(why, cap, -EBADMSG, "AK: nameAlg is not SHA-256");
	if (missing != 0)
		return tpm_fail(why, cap, -EBADMSG,
				"AK: attributes 0x%08x lack 0x%08x (fixedTPM, fixedParent, "
				"sensitiveDataOrigin, restricted, sign are required)",
				ak->attrs, missing);
	if (ak->attrs & TPMA_DECRYPT)
		return tpm_fail(why, cap, -EBADMSG, "AK: a decryption key, not only a signing key");
	if (ak->scheme != TPM_ALG_ECDSA || ak->scheme_hash != TPM_ALG_SHA256)
		return tpm_fail(why, cap, -EBADMSG, "AK: scheme is not ECDSA with SHA-256");
	return 0;
}

void
tpm_pcr_replay(const uint8_t (*log)[32], size_t n, uint8_t pcr[32])
{
	memset(pcr, 0, 32);
	for (size_t i = 0; i < n; i++) {
		const void *parts[2] = {pcr, log[i]};
		const size_t lens[2] = {32, 32};

		crypto_sha256_parts(parts, lens, 2, pcr);
	}
}

/* The quote's selection is exactly PCR 23 of the SHA-256 bank. */
static int
selects_only_pcr23(const struct tpm_attest *a)
{
	if (a->pcr_banks != 1 || a->pcr[0].hash != TPM_ALG_SHA256 || a->pcr[0].size < 3)
		return 0;
	for (unsigned i = 0; i < a->pcr[0].size; i++)
		if (a->pcr[0].select[i] != (i == CLEAVE_PCR / 8 ? 1u << (CLEAVE_PCR % 8) : 0))
			return 0;
	return 1;
}

/* The checks on the quote's content, once its signature verified. */
static int
quote_content(const struct tpm_attest *a, const uint8_t *qualifying, size_t qlen,
	      const uint8_t (*log)[32], size_t log_n, char *why, size_t cap)
{
	uint8_t pcr[32], digest[SHA256_LEN];

	if (a->magic != TPM_GENERATED_VALUE)
		return tpm_fail(why, cap, -EBADMSG, "quote: magic is not TPM_GENERATED_VALUE");
	if (a->type != TPM_ST_ATTEST_QUOTE)
		return tpm_fail(why, cap, -EBADMSG, "quote: type 0x%04x is not ATTEST_QUOTE",
				a->type);
	if (a->extra_len != qlen || CRYPTO_memcmp(a->extra, qualifying, qlen) != 0)
		return tpm_fail(why, cap, -EBADMSG,
				"quote: qualifying data is not the expected nonce");
	if (!selects_only_pcr23(a))
		return tpm_fail(why, cap, -EBADMSG, "quote: PCR selection is not sha256:23");
	tpm_pcr_replay(log, log_n, pcr);
	crypto_sha256(pcr, sizeof(pcr), digest);
	if (a->pcr_digest_len != SHA256_LEN || memcmp(a->pcr_digest, digest, SHA256_LEN) != 0)
		return tpm_fail(why, cap, -EBADMSG,
				"quote: PCR digest does not match the replayed event log (%zu "
				"entries)",
				log_n);
	return 0;
}

int
tpm_quote_check(const struct tpm_public *ak, const uint8_t *attest, size_t attest_len,
		const uint8_t *sig, size_t sig_len, const uint8_t *qualifying, size_t qlen,
		const uint8_t (*log)[32], size_t log_n, struct tpm_attest *out, char *why,
		size_t cap)
{
	struct tpm_attest a;
	struct tpm_signature s;
	EVP_PKEY *key = NULL;
	int r;

	if ((r = tpm_attest_decode(attest, attest_len, &a, why, cap)) != 0 ||
	    (r = tpm_signature_decode(sig, sig_len, &s, why, cap)) != 0 ||
	    (r = tpm_public_pkey(ak, &key, why, cap)) != 0)
		return r;
	r = tpm_signature_verify(key, &s, attest, attest_len, why, cap);
	EVP_PKEY_free(key);
	if (r != 0)
		return tpm_fail(why, cap, r, "quote: the signature does not verify with the AK");
	r = quote_content(&a, qualifying, qlen, log, log_n, why, cap);
	if (r == 0 && out != NULL)
		*out = a;
	return r;
}
