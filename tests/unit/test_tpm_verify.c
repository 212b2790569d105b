/*
 * Unit tests for crypto/tpm_verify.h without a TPM: KDFa against OpenSSL's own SP 800-108 KDF,
 * a quote a real swtpm made (fixtures from tests/integration/test_tpm_verify, which cross-checks
 * everything against the TPM itself) verified offline, every truncation and an extra byte of
 * each structure refused, bounds on sizes, the AK rules one attribute at a time, a point off
 * the curve, the SubjectPublicKeyInfo, MakeCredential's argument checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include "crypto.h"
#include "tpm_verify.h"

/* An ECC AK of a swtpm, its TPM2_Quote over sha256:23 and the quote's TPMT_SIGNATURE. */
static const char AK_HEX[] =
	"00580023000b00050072000000100018000b000300100020a238aeeb9299b2b0d166786e292c17d82ab20dda"
	"c8d5b32c9204911468cf5cbb0020b1102793fce9e967a7cb30f29612fec2a1acac1315c3a35415b88b46fb4d"
	"ff8a";
static const char QUOTE_HEX[] =
	"ff54434780180022000bbcc2ad5a439a524d71ce8f66c107987a8cfe4444256594363ffe8596a0af1c840020"
	"6cdd26cac926e7b5dfa0ef4a730af55b39897e70c7675be45b15302ef388ea75000000000000055300000002"
	"0000000001201910230016363600000001000b0300008000200d81829b06b5b0edc7471d15274b66dd32444a"
	"11a052b1c824bf413b4e62ce18";
static const char SIG_HEX[] =
	"0018000b0020c45571bcfbf791bc1e52f22eeef353988a29c05fb4a46da10c1c310e6e39a23800207ff3ddb4"
	"eb31b54555686738bf9d96ea7bf7222624c716396113e9cfd18a005c";

/* PCR 23's log when that quote was made (test_tpm_verify's extend_pcr23). */
static const char *const LOG_TEXT[3] = {"guest image", "vm config", "lease"};

struct fix {
	uint8_t ak[256], quote[512], sig[256];
	size_t ak_len, quote_len, sig_len;
	uint8_t log[3][32];
	struct tpm_public pub;
	char why[256];
};

static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static int
setup(void **state)
{
	static struct fix f;

	memset(&f, 0, sizeof(f));
	f.ak_len = unhex(AK_HEX, f.ak, sizeof(f.ak));
	f.quote_len = unhex(QUOTE_HEX, f.quote, sizeof(f.quote));
	f.sig_len = unhex(SIG_HEX, f.sig, sizeof(f.sig));
	for (int i = 0; i < 3; i++)
		crypto_sha256(LOG_TEXT[i], strlen(LOG_TEXT[i]), f.log[i]);
	if (tpm_public_decode(f.ak, f.ak_len, &f.pub, f.why, sizeof(f.why)) != 0)
		return -1;
	*state = &f;
	return 0;
}

/* The quote's own extraData (the nonce the test chose at random) as the expected nonce. */
static int
check(struct fix *f, size_t log_n)
{
	struct tpm_attest a;

	assert_int_equal(tpm_attest_decode(f->quote, f->quote_len, &a, NULL, 0), 0);
	return tpm_quote_check(&f->pub, f->quote, f->quote_len, f->sig, f->sig_len, a.extra,
			       a.extra_len, (const uint8_t(*)[32])f->log, log_n, NULL, f->why,
			       sizeof(f->why));
}

static void
test_quote_fixture_verifies(void **state)
{
	struct fix *f = *state;

	assert_int_equal(tpm_ak_check(&f->pub, f->why, sizeof(f->why)), 0);
	assert_int_equal(check(f, 3), 0);
	assert_int_equal(check(f, 2), -EBADMSG);
	assert_non_null(strstr(f->why, "PCR digest"));
	f->sig[f->sig_len - 1] ^= 1;
	assert_int_equal(check(f, 3), -EBADMSG);
	assert_non_null(strstr(f->why, "signature"));
	f->sig[f->sig_len - 1] ^= 1;
}

/* Every proper prefix and one extra byte are refused, never read past. */
static void
test_truncations_and_trailing_refused(void **state)
{
	struct fix *f = *state;
	struct tpm_public p;
	struct tpm_attest a;
	struct tpm_signature s;
	uint8_t big[600];

	for (size_t n = 0; n < f->ak_len; n++)
		assert_int_equal(tpm_public_decode(f->ak, n, &p, NULL, 0), -EINVAL);
	for (size_t n = 0; n < f->quote_len; n++)
		assert_int_equal(tpm_attest_decode(f->quote, n, &a, NULL, 0), -EINVAL);
	for (size_t n = 0; n < f->sig_len; n++)
		assert_int_not_equal(tpm_signature_decode(f->sig, n, &s, NULL, 0), 0);
	/* The bare TPMT_PUBLIC with a byte after it; the TPM2B's size one larger. */
	memcpy(big, f->ak + 2, f->ak_len - 2);
	big[f->ak_len - 2] = 0;
	assert_int_equal(tpm_public_decode_t(big, f->ak_len - 1, &p, f->why, sizeof(f->why)),
			 -EINVAL);
	assert_non_null(strstr(f->why, "after its end"));
	memcpy(big, f->quote, f->quote_len);
	big[f->quote_len] = 0;
	assert_int_equal(tpm_attest_decode(big, f->quote_len + 1, &a, NULL, 0), -EINVAL);
	memcpy(big, f->sig, f->sig_len);
	big[f->sig_len] = 0;
	assert_int_equal(tpm_signature_decode(big, f->sig_len + 1, &s, NULL, 0), -EINVAL);
}

/* A TPM2B larger than its structure allows is malformed even when the bytes are there. */
static void
test_oversized_fields_refused(void **state)
{
	struct fix *f = *state;
	struct tpm_attest a;
	uint8_t q[600] = {0};

	memcpy(q, f->quote, f->quote_len);
	/* qualifiedSigner's size (offset 6) beyond a name's 66 bytes. */
	q[6] = 0, q[7] = 67;
	assert_int_equal(tpm_attest_decode(q, sizeof(q), &a, NULL, 0), -EINVAL);
	memcpy(q, f->quote, f->quote_len);
	q[4] = 0x80, q[5] = 0x15; /* TPM_ST_ATTEST_COMMAND_AUDIT: not ours */
	assert_int_equal(tpm_attest_decode(q, f->quote_len, &a, f->why, sizeof(f->why)), -ENOTSUP);
	memcpy(q, f->ak, f->ak_len);
	q[2] = 0x00, q[3] = 0x99; /* an unknown object type */
	assert_int_equal(tpm_public_decode(q, f->ak_len, &f->pub, NULL, 0), -ENOTSUP);
	assert_int_equal(tpm_public_decode(f->ak, f->ak_len, &f->pub, NULL, 0), 0);
}

static void
test_ak_rules(void **state)
{
	struct fix *f = *state;
	static const uint32_t required[] = {TPMA_FIXED_TPM, TPMA_FIXED_PARENT, TPMA_SENSITIVE_ORIG,
					    TPMA_RESTRICTED, TPMA_SIGN};
	struct tpm_public p;
	EVP_PKEY *key = NULL;

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		p = f->pub;
		p.attrs &= ~required[i];
		assert_int_equal(tpm_ak_check(&p, f->why, sizeof(f->why)), -EBADMSG);
		assert_non_null(strstr(f->why, "attributes"));
	}
	p = f->pub;
	p.attrs |= TPMA_DECRYPT;
	assert_int_equal(tpm_ak_check(&p, NULL, 0), -EBADMSG);
	p = f->pub;
	p.scheme_hash = TPM_ALG_SHA1;
	assert_int_equal(tpm_ak_check(&p, NULL, 0), -EBADMSG);
	p = f->pub;
	p.curve = TPM_ECC_NIST_P384;
	assert_int_equal(tpm_ak_check(&p, NULL, 0), -EBADMSG);
	p = f->pub;
	p.unique_y[5] ^= 1; /* off the curve */
	assert_int_equal(tpm_public_pkey(&p, &key, f->why, sizeof(f->why)), -EINVAL);
	assert_null(key);
}

/* The AK's SubjectPublicKeyInfo (91 bytes for P-256), and a buffer one byte short. */
static void
test_spki(void **state)
{
	struct fix *f = *state;
	uint8_t spki[128];
	size_t len = 0;

	assert_int_equal(tpm_public_spki(&f->pub, spki, sizeof(spki), &len, NULL, 0), 0);
	assert_int_equal(len, 91);
	assert_int_equal(tpm_public_spki(&f->pub, spki, 90, &len, f->why, sizeof(f->why)), -ENOSPC);
}

/* OpenSSL's KBKDF (counter mode, HMAC-SHA256) formats [i]32 || label || 00 || ctx || [L]32,
 * which is KDFa with contextU || contextV as its context. */
static void
kbkdf(const char *label, const uint8_t *ctx, size_t ctx_len, const uint8_t *key, size_t key_len,
      uint8_t *out, size_t n)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"HMAC", 0),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label,
						  strlen(label)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)ctx, ctx_len),
		OSSL_PARAM_construct_end()};

	assert_non_null(c);
	assert_int_equal(EVP_KDF_derive(c, out, n, params), 1);
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
}

static void
test_kdfa_matches_openssl_kbkdf(void **state)
{
	struct fix *f = *state;
	static const uint32_t bits[] = {128, 256, 520};
	uint8_t seed[32], ours[65], theirs[65];

	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		size_t n = bits[i] / 8;

		assert_int_equal(tpm_kdfa_sha256(seed, sizeof(seed), "STORAGE", f->pub.name,
						 f->pub.name_len, NULL, 0, bits[i], ours),
				 0);
		kbkdf("STORAGE", f->pub.name, f->pub.name_len, seed, sizeof(seed), theirs, n);
		assert_memory_equal(ours, theirs, n);
		assert_int_equal(tpm_kdfa_sha256(seed, sizeof(seed), "INTEGRITY", NULL, 0, NULL, 0,
						 bits[i], ours),
				 0);
		kbkdf("INTEGRITY", NULL, 0, seed, sizeof(seed), theirs, n);
		assert_memory_equal(ours, theirs, n);
	}
}

static void
test_pcr_replay(void **state)
{
	struct fix *f = *state;
	uint8_t pcr[32], zero[32] = {0}, want[32];
	const void *parts[2] = {zero, f->log[0]};
	const size_t lens[2] = {32, 32};

	tpm_pcr_replay(NULL, 0, pcr);
	assert_memory_equal(pcr, zero, 32);
	tpm_pcr_replay((const uint8_t(*)[32])f->log, 1, pcr);
	crypto_sha256_parts(parts, lens, 2, want);
	assert_memory_equal(pcr, want, 32);
}

/* The AK is no EK; bad names, credentials and buffers are refused before any work. */
static void
test_make_credential_arguments(void **state)
{
	struct fix *f = *state;
	uint8_t id[TPM_ID_OBJECT_MAX], enc[TPM_ENC_SECRET_MAX], cred[40] = {0};
	size_t il, el;
	struct tpm_public ek = f->pub;

	assert_int_equal(tpm_make_credential(&f->pub, f->pub.name, f->pub.name_len, cred, 32, id,
					     sizeof(id), &il, enc, sizeof(enc), &el, NULL, 0),
			 -EINVAL);
	/* The AK's point as an ECC EK: a credential whose secret is an ephemeral point. */
	ek.attrs = TPMA_FIXED_TPM | TPMA_FIXED_PARENT | TPMA_RESTRICTED | TPMA_DECRYPT;
	ek.sym_alg = TPM_ALG_AES, ek.sym_bits = 128, ek.sym_mode = TPM_ALG_CFB;
	assert_int_equal(tpm_make_credential(&ek, f->pub.name, f->pub.name_len, cred, 32, id,
					     sizeof(id), &il, enc, sizeof(enc), &el, NULL, 0),
			 0);
	assert_int_equal(el, 2 + 2 + 32 + 2 + 32);
	assert_int_equal(il, 2 + 2 + 32 + 2 + 32);
	ek.curve = TPM_ECC_NIST_P384;
	assert_int_equal(tpm_make_credential(&ek, f->pub.name, f->pub.name_len, cred, 32, id,
					     sizeof(id), &il, enc, sizeof(enc), &el, NULL, 0),
			 -ENOTSUP);
	ek.type = TPM_ALG_RSA, ek.name_alg = TPM_ALG_SHA256, ek.sym_alg = TPM_ALG_AES;
	ek.sym_bits = 128, ek.sym_mode = TPM_ALG_CFB;
	ek.attrs = TPMA_FIXED_TPM | TPMA_FIXED_PARENT | TPMA_RESTRICTED | TPMA_DECRYPT;
	assert_int_equal(tpm_make_credential(&ek, f->pub.name, 2, cred, 32, id, sizeof(id), &il,
					     enc, sizeof(enc), &el, NULL, 0),
			 -EINVAL);
	assert_int_equal(tpm_make_credential(&ek, f->pub.name, f->pub.name_len, cred, 33, id,
					     sizeof(id), &il, enc, sizeof(enc), &el, NULL, 0),
			 -EINVAL);
	assert_int_equal(tpm_make_credential(&ek, f->pub.name, f->pub.name_len, cred, 32, id, 40,
					     &il, enc, sizeof(enc), &el, NULL, 0),
			 -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_fixture_verifies),
		cmocka_unit_test(test_truncations_and_trailing_refused),
		cmocka_unit_test(test_oversized_fields_refused),
		cmocka_unit_test(test_ak_rules),
		cmocka_unit_test(test_spki),
		cmocka_unit_test(test_kdfa_matches_openssl_kbkdf),
		cmocka_unit_test(test_pcr_replay),
		cmocka_unit_test(test_make_credential_arguments),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
