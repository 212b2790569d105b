/*
 * Unit tests for crypto/hvsig.c: a hypervisor signature by either algorithm. P-256 keys and
 * signatures come from OpenSSL itself (as a TPM's would: ECDSA over SHA-256, r || s); the
 * verifier must accept exactly the key the record names, refuse a flipped bit, another key, a
 * key of another curve, trailing bytes, and an unknown algorithm; DER and r || s convert both
 * ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "hvsig.h"
#include "wire.h"

static const char body[] = "CLVRCPT1 a receipt body stands here";

/* A fresh key on curve ("P-256", "P-384") and its DER SPKI. */
static EVP_PKEY *
ec_key(const char *curve, uint8_t *spki, size_t *len)
{
	EVP_PKEY *k = EVP_EC_gen(curve);
	unsigned char *p = spki;
	int n;

	assert_non_null(k);
	n = i2d_PUBKEY(k, NULL);
	assert_true(n > 0 && n <= HVSIG_SPKI_MAX + 32);
	assert_int_equal(i2d_PUBKEY(k, &p), n);
	*len = (size_t)n;
	return k;
}

/* ECDSA-SHA256 over body by k, as r || s. */
static void
ec_sign(EVP_PKEY *k, uint8_t sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[HVSIG_DER_MAX];
	size_t n = sizeof(der);

	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &n, (const uint8_t *)body, sizeof(body)), 1);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(hvsig_ecdsa_raw(der, n, sig), 0);
}

static void
test_hvsig_p256_verifies_only_its_key(void **state)
{
	uint8_t spki[HVSIG_SPKI_MAX + 32], other[HVSIG_SPKI_MAX + 32], id[32], oid[32], sig[64];
	size_t len, olen;
	EVP_PKEY *k = ec_key("P-256", spki, &len), *o = ec_key("P-256", other, &olen);

	(void)state;
	assert_int_equal(len, 91);
	assert_int_equal(hvsig_key_id(spki, len, id), 0);
	{
		uint8_t h[32];

		crypto_sha256(spki, len, h);
		assert_memory_equal(id, h, 32);
	}
	ec_sign(k, sig);
	assert_int_equal(hvsig_verify(WIRE_SIG_ECDSA_P256, id, spki, len, body, sizeof(body), sig),
			 0);
	/* a flipped bit in the message or the signature */
	sig[40] ^= 1;
	assert_int_equal(hvsig_verify(WIRE_SIG_ECDSA_P256, id, spki, len, body, sizeof(body), sig),
			 -EBADMSG);
	sig[40] ^= 1;
	assert_int_equal(
		hvsig_verify(WIRE_SIG_ECDSA_P256, id, spki, len, body, sizeof(body) - 1, sig),
		-EBADMSG);
	/* another key: named by the record's hv_key or not, it does not verify */
	assert_int_equal(hvsig_key_id(other, olen, oid), 0);
	assert_int_equal(
		hvsig_verify(WIRE_SIG_ECDSA_P256, id, other, olen, body, sizeof(body), sig),
		-EINVAL);
	assert_int_equal(
		hvsig_verify(WIRE_SIG_ECDSA_P256, oid, other, olen, body, sizeof(body), sig),
		-EBADMSG);
	/* trailing bytes after the SPKI, no SPKI, an unknown algorithm */
	spki[len] = 0;
	assert_int_equal(hvsig_key_id(spki, len + 1, oid), -EINVAL);
	assert_int_equal(hvsig_verify(WIRE_SIG_ECDSA_P256, id, NULL, 0, body, sizeof(body), sig),
			 -EINVAL);
	assert_int_equal(hvsig_verify(7, id, spki, len, body, sizeof(body), sig), -EINVAL);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
}

static void
test_hvsig_other_curve_refused(void **state)
{
	uint8_t spki[HVSIG_SPKI_MAX + 32], id[32];
	size_t len;
	EVP_PKEY *k = ec_key("P-384", spki, &len);

	(void)state;
	assert_int_equal(hvsig_key_id(spki, len, id), -EINVAL);
	EVP_PKEY_free(k);
}

static void
test_hvsig_der_round_trip(void **state)
{
	uint8_t sig[64], back[64], der[HVSIG_DER_MAX];
	size_t n;

	(void)state;
	/* high bits set (DER needs a leading zero) and leading zeros (DER drops them) */
	memset(sig, 0xff, 32);
	memset(sig + 32, 0, 31);
	sig[63] = 5;
	assert_int_equal(hvsig_ecdsa_der(sig, der, sizeof(der), &n), 0);
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[3], 33); /* r: 0x00 + 32 bytes */
	assert_int_equal(hvsig_ecdsa_raw(der, n, back), 0);
	assert_memory_equal(sig, back, 64);
	assert_int_equal(hvsig_ecdsa_raw(der, n - 1, back), -EINVAL);
	assert_int_equal(hvsig_ecdsa_der(sig, der, 8, &n), -EINVAL);
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* What an auditor runs: the PEM and the DER signature with openssl's command line. */
static void
test_hvsig_openssl_cli_verifies(void **state)
{
	uint8_t spki[HVSIG_SPKI_MAX + 32], sig[64], der[HVSIG_DER_MAX];
	char dir[] = "/tmp/cleave-hvsig-XXXXXX", cmd[512], path[3][64];
	size_t len, n;
	char *pem = NULL;
	EVP_PKEY *k = ec_key("P-256", spki, &len);

	(void)state;
	assert_non_null(mkdtemp(dir));
	ec_sign(k, sig);
	assert_int_equal(hvsig_spki_pem(spki, len, &pem), 0);
	assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
	assert_int_equal(hvsig_ecdsa_der(sig, der, sizeof(der), &n), 0);
	snprintf(path[0], sizeof(path[0]), "%s/key.pem", dir);
	snprintf(path[1], sizeof(path[1]), "%s/sig.der", dir);
	snprintf(path[2], sizeof(path[2]), "%s/body", dir);
	write_file(path[0], pem, strlen(pem));
	write_file(path[1], der, n);
	write_file(path[2], body, sizeof(body));
	snprintf(cmd, sizeof(cmd),
		 "openssl dgst -sha256 -verify %s -signature %s %s 2>&1 | grep -qx 'Verified OK'",
		 path[0], path[1], path[2]);
	assert_int_equal(system(cmd), 0);
	write_file(path[2], body, sizeof(body) - 1);
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(pem);
	EVP_PKEY_free(k);
	assert_int_equal(hvsig_spki_pem(spki, len - 1, &pem), -EINVAL);
}

/* schema/wire-formats.md 5.1, run as written: a version 2 receipt checked with openssl alone. */
static const char auditor_sh[] =
	"cd \"$1\" || exit 2\n"
	"head -c 256 receipt.bin > body.bin\n"
	"r=$(tail -c 64 receipt.bin | head -c 32 | od -An -tx1 -v | tr -d ' \\n')\n"
	"s=$(tail -c 32 receipt.bin | od -An -tx1 -v | tr -d ' \\n')\n"
	"printf 'asn1=SEQUENCE:sig\\n[sig]\\nr=INTEGER:0x%s\\ns=INTEGER:0x%s\\n' \"$r\" \"$s\" > "
	"sig.cnf\n"
	"openssl asn1parse -genconf sig.cnf -out sig.der -noout\n"
	"openssl dgst -sha256 -verify hv.pem -signature sig.der body.bin | grep -qx 'Verified OK' "
	"|| exit 1\n"
	"a=$(od -An -tx1 -v -j16 -N32 receipt.bin | tr -d ' \\n')\n"
	"b=$(openssl pkey -pubin -in hv.pem -outform DER | sha256sum | cut -d' ' -f1)\n"
	"[ \"$a\" = \"$b\" ] || exit 3\n";

static void
test_hvsig_auditor_commands(void **state)
{
	uint8_t spki[HVSIG_SPKI_MAX + 32], bin[RECEIPT_LEN], der[HVSIG_DER_MAX];
	char dir[] = "/tmp/cleave-hvsig-XXXXXX", path[96], cmd[256];
	struct receipt r;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t len, n = sizeof(der);
	char *pem = NULL;
	EVP_PKEY *k = ec_key("P-256", spki, &len);

	(void)state;
	assert_non_null(mkdtemp(dir));
	memset(&r, 0, sizeof(r));
	r.type = TICKET_WIPE;
	strcpy(r.device_id, "dev_a");
	strcpy(r.command_id, "cmd_b");
	r.header_state = HV_STATE_ERASED;
	r.sig_alg = WIRE_SIG_ECDSA_P256;
	r.wipe_counter_before = 7;
	r.wipe_counter_after = 8;
	assert_int_equal(hvsig_key_id(spki, len, r.hv_key), 0);
	assert_int_equal(receipt_encode(&r, bin), 0);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &n, bin, RECEIPT_BODY_LEN), 1);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(hvsig_ecdsa_raw(der, n, bin + RECEIPT_BODY_LEN), 0);
	assert_int_equal(hvsig_verify(WIRE_SIG_ECDSA_P256, r.hv_key, spki, len, bin,
				      RECEIPT_BODY_LEN, bin + RECEIPT_BODY_LEN),
			 0);
	assert_int_equal(hvsig_spki_pem(spki, len, &pem), 0);
	snprintf(path, sizeof(path), "%s/hv.pem", dir);
	write_file(path, pem, strlen(pem));
	snprintf(path, sizeof(path), "%s/check.sh", dir);
	write_file(path, auditor_sh, strlen(auditor_sh));
	snprintf(path, sizeof(path), "%s/receipt.bin", dir);
	write_file(path, bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd), "sh %s/check.sh %s >/dev/null 2>&1", dir, dir);
	assert_int_equal(system(cmd), 0);
	bin[160] ^= 1; /* epoch_before */
	write_file(path, bin, sizeof(bin));
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(pem);
	EVP_PKEY_free(k);
}

static void
test_hvsig_ed25519_is_the_raw_key(void **state)
{
	struct ed25519_key *k;
	uint8_t pub[32], sig[64];

	(void)state;
	assert_int_equal(ed25519_key_generate(&k), 0);
	ed25519_key_public(k, pub);
	assert_int_equal(ed25519_key_sign(k, body, sizeof(body), sig), 0);
	assert_int_equal(hvsig_verify(WIRE_SIG_ED25519, pub, NULL, 0, body, sizeof(body), sig), 0);
	sig[0] ^= 1;
	assert_int_equal(hvsig_verify(WIRE_SIG_ED25519, pub, NULL, 0, body, sizeof(body), sig),
			 -EBADMSG);
	ed25519_key_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hvsig_p256_verifies_only_its_key),
		cmocka_unit_test(test_hvsig_other_curve_refused),
		cmocka_unit_test(test_hvsig_der_round_trip),
		cmocka_unit_test(test_hvsig_openssl_cli_verifies),
		cmocka_unit_test(test_hvsig_auditor_commands),
		cmocka_unit_test(test_hvsig_ed25519_is_the_raw_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
