/*
 * AES-256-GCM over OpenSSL 3 EVP for the few secrets the server must read back (it signs with
 * them) but must not keep in the database in the clear. See seal.h for the format.
 */
#include "seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "b64.h"
#include "crypto.h"

#define NONCE_LEN  12
#define TAG_LEN    16
#define PLAIN_MAX  1024 /* small secrets only: bounded stack buffers */
#define PACKED_MAX (NONCE_LEN + PLAIN_MAX + TAG_LEN)

/* One GCM pass: encrypts (enc 1) or decrypts in into out, n bytes; the tag is set or read. */
static int
gcm(int enc, const uint8_t key[SEAL_KEY_LEN], const uint8_t nonce[NONCE_LEN], const char *ad,
    const uint8_t *in, int n, uint8_t *out, uint8_t tag[TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0, r = -EIO;

	if (c == NULL)
		return -ENOMEM;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) != 1)
		goto out;
	if (EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)ad, (int)strlen(ad)) != 1)
		goto out;
	if (EVP_CipherUpdate(c, out, &len, in, n) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, out + len, &fin) != 1) {
		r = enc ? -EIO : -EBADMSG; /* decrypting: the tag did not match */
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		goto out;
	r = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return r;
}

int
seal_text(const uint8_t key[SEAL_KEY_LEN], const char *ad, const char *plain, char *out, size_t cap)
{
	uint8_t packed[PACKED_MAX];
	size_t n = strlen(plain);
	int r;

	if (n > PLAIN_MAX || cap < SEAL_TEXT_CAP(n))
		return -ENOSPC;
	if (crypto_random(packed, NONCE_LEN) != 0)
		return -EIO;
	r = gcm(1, key, packed, ad, (const uint8_t *)plain, (int)n, packed + NONCE_LEN,
		packed + NONCE_LEN + n);
	if (r == 0) {
		memcpy(out, SEAL_PREFIX, 3);
		r = b64_encode(out + 3, cap - 3, packed, NONCE_LEN + n + TAG_LEN) < 0 ? -ENOSPC : 0;
	}
	OPENSSL_cleanse(packed, sizeof(packed));
	return r;
}

int
seal_open(const uint8_t key[SEAL_KEY_LEN], const char *ad, const char *sealed, char *out,
	  size_t cap)
{
	uint8_t packed[PACKED_MAX + 4];
	long got;
	size_t n;
	int r;

	if (!seal_is_sealed(sealed))
		return -EINVAL;
	got = b64_decode(packed, sizeof(packed), sealed + 3, strlen(sealed + 3));
	if (got < NONCE_LEN + TAG_LEN)
		return -EINVAL;
	n = (size_t)got - NONCE_LEN - TAG_LEN;
	if (n + 1 > cap)
		return -ENOSPC;
	r = gcm(0, key, packed, ad, packed + NONCE_LEN, (int)n, (uint8_t *)out,
		packed + NONCE_LEN + n);
	if (r == 0 && memchr(out, '\0', n) != NULL)
		r = -EBADMSG; /* sealed by us from a C string: never holds a NUL */
	if (r == 0)
		out[n] = '\0';
	else
		OPENSSL_cleanse(out, cap);
	return r;
}

int
seal_is_sealed(const char *text)
{
	return strncmp(text, SEAL_PREFIX, 3) == 0;
}
