/* Hypervisor signatures by either algorithm (hvsig.h). */
#include <errno.h>
#include <string.h>

#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "hvsig.h"
#include "wire.h"

/* A P-256 public key from its DER SPKI, or NULL. */
static EVP_PKEY *
p256_from_spki(const uint8_t *spki, size_t len)
{
	const unsigned char *p = spki;
	EVP_PKEY *k;
	char group[32];

	if (spki == NULL || len == 0 || len > HVSIG_SPKI_MAX)
		return NULL;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k == NULL)
		return NULL;
	if ((size_t)(p - spki) != len || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

int
hvsig_key_id(const uint8_t *spki, size_t spki_len, uint8_t hv_key[32])
{
	EVP_PKEY *k = p256_from_spki(spki, spki_len);

	if (k == NULL)
		return -EINVAL;
	EVP_PKEY_free(k);
	crypto_sha256(spki, spki_len, hv_key);
	return 0;
}

int
hvsig_spki_pem(const uint8_t *spki, size_t len, char **pem)
{
	EVP_PKEY *k = p256_from_spki(spki, len);
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int rc = -EINVAL;

	if (k != NULL && b != NULL && PEM_write_bio_PUBKEY(b, k) == 1 &&
	    (n = BIO_get_mem_data(b, &data)) > 0) {
		*pem = malloc((size_t)n + 1);
		if (*pem != NULL) {
			memcpy(*pem, data, (size_t)n);
			(*pem)[n] = '\0';
			rc = 0;
		} else {
			rc = -ENOMEM;
		}
	}
	BIO_free(b);
	EVP_PKEY_free(k);
	return rc;
}

int
hvsig_ecdsa_der(const uint8_t sig[64], uint8_t *der, size_t cap, size_t *len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *p = der;
	int n = -1;

	if (s != NULL && r != NULL && ss != NULL && ECDSA_SIG_set0(s, r, ss) == 1) {
		r = ss = NULL; /* owned by s now */
		if (i2d_ECDSA_SIG(s, NULL) <= (int)cap)
			n = i2d_ECDSA_SIG(s, &p);
	}
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return -EINVAL;
	*len = (size_t)n;
	return 0;
}

int
hvsig_ecdsa_raw(const uint8_t *der, size_t len, uint8_t sig[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *ss;
	int rc = -EINVAL;

	if (s == NULL)
		return -EINVAL;
	ECDSA_SIG_get0(s, &r, &ss);
	if ((size_t)(p - der) == len && BN_bn2binpad(r, sig, 32) == 32 &&
	    BN_bn2binpad(ss, sig + 32, 32) == 32)
		rc = 0;
	ECDSA_SIG_free(s);
	return rc;
}

static int
p256_verify(const uint8_t hv_key[32], const uint8_t *spki, size_t spki_len, const void *msg,
	    size_t n, const uint8_t sig[64])
{
	uint8_t id[32], der[HVSIG_DER_MAX];
	size_t dlen;
	EVP_PKEY *k;
	EVP_MD_CTX *ctx;
	int ok;

	if (hvsig_key_id(spki, spki_len, id) != 0 || memcmp(id, hv_key, 32) != 0)
		return -EINVAL;
	if (hvsig_ecdsa_der(sig, der, sizeof(der), &dlen) != 0)
		return -EBADMSG;
	k = p256_from_spki(spki, spki_len);
	ctx = EVP_MD_CTX_new();
	ok = k != NULL && ctx != NULL &&
	     EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
	     EVP_DigestVerify(ctx, der, dlen, msg, n) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return ok ? 0 : -EBADMSG;
}

int
hvsig_verify(uint16_t alg, const uint8_t hv_key[32], const uint8_t *spki, size_t spki_len,
	     const void *msg, size_t n, const uint8_t sig[64])
{
	switch (alg) {
	case WIRE_SIG_ED25519:
		return ed25519_verify(hv_key, msg, n, sig);
	case WIRE_SIG_ECDSA_P256:
		return p256_verify(hv_key, spki, spki_len, msg, n, sig);
	default:
		return -EINVAL;
	}
}
