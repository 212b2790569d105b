/*
 * libFuzzer target: the server's TPM structure decoders (crypto/tpm_decode.c), which read bytes
 * a device relays at enrollment. The first byte picks the structure: 0 TPM2B_PUBLIC, 1
 * TPMS_ATTEST, 2 TPMT_SIGNATURE. A public area that decodes must decode the same from its bare
 * TPMT_PUBLIC (same name), and is then taken as far as the server takes one: its key, the AK
 * checks and a credential made to it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tpm_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
public_area(const uint8_t *p, size_t n)
{
	struct tpm_public pub, again;
	uint8_t id[TPM_ID_OBJECT_MAX], secret[TPM_ENC_SECRET_MAX], cred[32] = {1};
	size_t id_len, secret_len;
	char why[160];
	EVP_PKEY *key = NULL;

	if (tpm_public_decode(p, n, &pub, why, sizeof(why)) != 0)
		return;
	if (tpm_public_decode_t(p + 2, n - 2, &again, why, sizeof(why)) != 0 ||
	    again.name_len != pub.name_len || memcmp(again.name, pub.name, pub.name_len) != 0)
		__builtin_trap();
	if (tpm_public_pkey(&pub, &key, why, sizeof(why)) == 0)
		EVP_PKEY_free(key);
	(void)tpm_ak_check(&pub, why, sizeof(why));
	(void)tpm_make_credential(&pub, pub.name, pub.name_len, cred, sizeof(cred), id, sizeof(id),
				  &id_len, secret, sizeof(secret), &secret_len, why, sizeof(why));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tpm_attest a;
	struct tpm_signature s;
	char why[160];

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		public_area(data + 1, size - 1);
		break;
	case 1:
		(void)tpm_attest_decode(data + 1, size - 1, &a, why, sizeof(why));
		break;
	default:
		(void)tpm_signature_decode(data + 1, size - 1, &s, why, sizeof(why));
		break;
	}
	return 0;
}
