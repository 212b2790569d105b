/*
 * TPM2_MakeCredential in software (TPM 2.0 Part 1 §24 "Credential Protection", Part 3 §12.6),
 * for an EK: the server encrypts a secret (the enrollment nonce) so that only the TPM holding
 * the EK can recover it, and only while an object with the given name (the AK) is loaded there.
 *   seed       (RSA EK) random, as many bytes as the EK's nameAlg digest
 *   secret     RSA-OAEP(EK, seed), hash = the EK's nameAlg, label "IDENTITY\0"
 *   symKey     KDFa(nameAlg, seed, "STORAGE", name, "", EK's symmetric key bits)
 *   encIdentity AES-CFB(symKey, IV 0, TPM2B credential)
 *   HMACkey    KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits)
 *   outerHMAC  HMAC(HMACkey, encIdentity || name)
 * For an ECC EK (NIST P-256) the seed is not encrypted but agreed (Part 1 Annex C, ECDH): an
 * ephemeral key e on the EK's curve, Z = x of e * EK,
 *   seed       KDFe(nameAlg, Z, "IDENTITY\0", e.x, EK.x, digest bits)
 *   secret     e's public point (TPMS_ECC_POINT)
 * Only EKs with nameAlg SHA-256: the TCG templates L-1 (RSA 2048) and L-2 (ECC P-256).
 */
#include "tpm_verify.h"

#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include "crypto.h"
#include "tpm_priv.h"

#define SEED_LEN      SHA256_LEN
#define CRED_MAX      SHA256_LEN /* Part 3: at most the EK nameAlg's digest size */
#define KDF_LABEL_MAX 32

/* HMAC-SHA256 of count parts (empty ones skipped) into out[32]. */
static int
hmac_parts(const uint8_t *key, size_t key_len, const void *const *parts, const size_t *lens,
	   size_t count, uint8_t out[SHA256_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end()};
	size_t got = 0;
	int ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1;

	for (size_t i = 0; ok && i < count; i++)
		if (lens[i] > 0)
			ok = EVP_MAC_update(ctx, parts[i], lens[i]) == 1;
	ok = ok && EVP_MAC_final(ctx, out, &got, SHA256_LEN) == 1 && got == SHA256_LEN;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok ? 0 : -EIO;
}

int
tpm_kdfa_sha256(const uint8_t *key, size_t key_len, const char *label, const uint8_t *context_u,
		size_t u_len, const uint8_t *context_v, size_t v_len, uint32_t bits, uint8_t *out)
{
	size_t want = bits / 8, done = 0, label_len = strlen(label) + 1; /* with its NUL */
	uint8_t counter[4], lbits[4], block[SHA256_LEN];

	if (bits == 0 || bits % 8 != 0 || bits > 8 * 1024 || label_len > KDF_LABEL_MAX + 1)
		return -EINVAL;
	put_u32(lbits, bits);
	for (uint32_t i = 1; done < want; i++) {
		const void *parts[5] = {counter, label, context_u, context_v, lbits};
		const size_t lens[5] = {4, label_len, u_len, v_len, 4};
		size_t k = want - done < SHA256_LEN ? want - done : SHA256_LEN;

		put_u32(counter, i);
		if (hmac_parts(key, key_len, parts, lens, 5, block) != 0)
			return -EIO;
		memcpy(out + done, block, k);
		done += k;
	}
	OPENSSL_cleanse(block, sizeof(block));
	return 0;
}

/* RSA-OAEP(SHA-256, MGF1-SHA-256, label "IDENTITY\0") of the seed to the EK: out, *out_len. */
static int
oaep_seed(const struct tpm_public *ek, const uint8_t seed[SEED_LEN], uint8_t *out, size_t *out_len,
	  char *why, size_t cap)
{
	static const char label[] = "IDENTITY"; /* the NUL is part of the label */
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	void *lab = NULL;
	int r;

	if ((r = tpm_public_pkey(ek, &key, why, cap)) != 0)
		return r;
	r = -EIO;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	lab = OPENSSL_memdup(label, sizeof(label));
	if (ctx == NULL || lab == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, lab, sizeof(label)) != 1)
		goto out;
	lab = NULL; /* the context owns it */
	if (EVP_PKEY_encrypt(ctx, out, out_len, seed, SEED_LEN) == 1)
		r = 0;
out:
	if (r != 0)
		tpm_fail(why, cap, r, "credential: RSA-OAEP to the EK failed");
	OPENSSL_free(lab);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(key);
	return r;
}

/* AES-CFB (128 or 256 bits, IV zero) of in into out, n bytes. */
static int
aes_cfb(const uint8_t *key, uint16_t bits, const uint8_t *in, size_t n, uint8_t *out)
{
	static const uint8_t iv[16];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0, ok;

	ok = c != NULL &&
	     EVP_EncryptInit_ex(c, bits == 256 ? EVP_aes_256_cfb128() : EVP_aes_128_cfb128(), NULL,
				key, iv) == 1 &&
	     EVP_EncryptUpdate(c, out, &len, in, (int)n) == 1 &&
	     EVP_EncryptFinal_ex(c, out + len, &fin) == 1 && (size_t)(len + fin) == n;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EIO;
}

/* KDFe (Part 1, SP 800-56A concatenation) with SHA-256, one block: 256 bits. */
static void
kdfe_sha256(const uint8_t z[32], const char *use, const uint8_t *u, size_t u_len, const uint8_t *v,
	    size_t v_len, uint8_t out[SHA256_LEN])
{
	static const uint8_t counter[4] = {0, 0, 0, 1};
	const void *parts[5] = {counter, z, use, u, v};
	const size_t lens[5] = {4, 32, strlen(use) + 1, u_len, v_len};

	crypto_sha256_parts(parts, lens, 5, out);
}

/* The x and y of an EC key's public point, 32 bytes each. */
static int
ec_point_xy(EVP_PKEY *k, uint8_t x[32], uint8_t y[32])
{
	BIGNUM *bx = NULL, *by = NULL;
	int ok = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
		 EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 &&
		 BN_bn2binpad(bx, x, 32) == 32 && BN_bn2binpad(by, y, 32) == 32;

	BN_free(bx);
	BN_free(by);
	return ok ? 0 : -EIO;
}

/* ECC P-256 EK: the seed agreed with an ephemeral key, whose point goes to out (68 bytes). */
static int
ecdh_seed(const struct tpm_public *ek, uint8_t seed[SEED_LEN], uint8_t *out, size_t *out_len,
	  char *why, size_t cap)
{
	EVP_PKEY *peer = NULL, *eph = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t z[32], ex[32], ey[32];
	size_t zl = sizeof(z);
	int r;

	if ((r = tpm_public_pkey(ek, &peer, why, cap)) != 0)
		return r;
	r = -EIO;
	eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ctx = eph ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
	if (ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
	    EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, z, &zl) == 1 &&
	    zl == sizeof(z) && ec_point_xy(eph, ex, ey) == 0) {
		kdfe_sha256(z, "IDENTITY", ex, sizeof(ex), ek->unique, ek->unique_len, seed);
		put_u16(out, 32);
		memcpy(out + 2, ex, 32);
		put_u16(out + 34, 32);
		memcpy(out + 36, ey, 32);
		*out_len = 2 + 32 + 2 + 32;
		r = 0;
	}
	if (r != 0)
		tpm_fail(why, cap, r, "credential: ECDH with the EK failed");
	OPENSSL_cleanse(z, sizeof(z));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(eph); /* OpenSSL wipes the ephemeral private key */
	EVP_PKEY_free(peer);
	return r;
}

/* The EK must be one MakeCredential here can encrypt to, as the TPM will decrypt with it. */
static int
ek_usable(const struct tpm_public *ek, char *why, size_t cap)
{
	uint32_t need = TPMA_RESTRICTED | TPMA_DECRYPT | TPMA_FIXED_TPM | TPMA_FIXED_PARENT;

	if (ek->name_alg != TPM_ALG_SHA256)
		return tpm_fail(why, cap, -ENOTSUP, "credential: EK nameAlg is not SHA-256");
	if (ek->type == TPM_ALG_ECC && ek->curve != TPM_ECC_NIST_P256)
		return tpm_fail(why, cap, -ENOTSUP, "credential: ECC EKs other than P-256");
	if (ek->type != TPM_ALG_RSA && ek->type != TPM_ALG_ECC)
		return tpm_fail(why, cap, -ENOTSUP, "credential: EK is neither RSA nor ECC");
	if ((ek->attrs & need) != need || (ek->attrs & TPMA_SIGN))
		return tpm_fail(why, cap, -EINVAL,
				"credential: EK is not a fixed restricted decryption key");
	if (ek->sym_alg != TPM_ALG_AES || ek->sym_mode != TPM_ALG_CFB ||
	    (ek->sym_bits != 128 && ek->sym_bits != 256))
		return tpm_fail(why, cap, -ENOTSUP, "credential: EK symmetric is not AES-CFB");
	return 0;
}

/* symKey, encIdentity, HMAC key and outerHMAC into id (TPM2B_ID_OBJECT). */
static int
id_object(const struct tpm_public *ek, const uint8_t seed[SEED_LEN], const uint8_t *name,
	  size_t name_len, const uint8_t *cred, size_t cred_len, uint8_t *id, size_t *id_len)
{
	uint8_t sym[32], hkey[SHA256_LEN], plain[2 + CRED_MAX];
	uint8_t *enc = id + 2 + 2 + SHA256_LEN;
	size_t enc_len = 2 + cred_len;
	const void *parts[2] = {enc, name};
	const size_t lens[2] = {enc_len, name_len};
	int r;

	put_u16(plain, (uint16_t)cred_len);
	memcpy(plain + 2, cred, cred_len);
	r = tpm_kdfa_sha256(seed, SEED_LEN, "STORAGE", name, name_len, NULL, 0, ek->sym_bits, sym);
	if (r == 0)
		r = aes_cfb(sym, ek->sym_bits, plain, enc_len, enc);
	if (r == 0)
		r = tpm_kdfa_sha256(seed, SEED_LEN, "INTEGRITY", NULL, 0, NULL, 0, 8 * SHA256_LEN,
				    hkey);
	if (r == 0)
		r = hmac_parts(hkey, sizeof(hkey), parts, lens, 2, id + 4);
	put_u16(id, (uint16_t)(2 + SHA256_LEN + enc_len));
	put_u16(id + 2, SHA256_LEN);
	*id_len = 2 + 2 + SHA256_LEN + enc_len;
	OPENSSL_cleanse(sym, sizeof(sym));
	OPENSSL_cleanse(hkey, sizeof(hkey));
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

int
tpm_make_credential(const struct tpm_public *ek, const uint8_t *name, size_t name_len,
		    const uint8_t *credential, size_t cred_len, uint8_t *id, size_t id_cap,
		    size_t *id_len, uint8_t *secret, size_t secret_cap, size_t *secret_len,
		    char *why, size_t cap)
{
	uint8_t seed[SEED_LEN];
	size_t ct_len, need;
	int r;

	if ((r = ek_usable(ek, why, cap)) != 0)
		return r;
	if (name_len <= 2 || name_len > TPM_NAME_MAX)
		return tpm_fail(why, cap, -EINVAL, "credential: bad object name length %zu",
				name_len);
	if (cred_len == 0 || cred_len > CRED_MAX)
		return tpm_fail(why, cap, -EINVAL, "credential: 1 to %d bytes, not %zu", CRED_MAX,
				cred_len);
	need = ek->type == TPM_ALG_RSA ? 2 + (size_t)ek->unique_len : 2 + 2 + 32 + 2 + 32;
	if (id_cap < 2 + 2 + SHA256_LEN + 2 + cred_len || secret_cap < need)
		return tpm_fail(why, cap, -ENOSPC, "credential: output buffers too small");
	ct_len = secret_cap - 2;
	if (ek->type == TPM_ALG_ECC) {
		r = ecdh_seed(ek, seed, secret + 2, &ct_len, why, cap);
	} else if (crypto_random(seed, sizeof(seed)) != 0) {
		r = tpm_fail(why, cap, -EIO, "credential: no random bytes");
	} else {
		r = oaep_seed(ek, seed, secret + 2, &ct_len, why, cap);
	}
	if (r == 0) {
		put_u16(secret, (uint16_t)ct_len);
		*secret_len = 2 + ct_len;
		r = id_object(ek, seed, name, name_len, credential, cred_len, id, id_len);
		if (r != 0)
			tpm_fail(why, cap, r, "credential: KDFa, AES or HMAC failed");
	}
	OPENSSL_cleanse(seed, sizeof(seed));
	return r;
}
