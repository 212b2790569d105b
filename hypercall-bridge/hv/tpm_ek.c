/*
 * The endorsement key (see tpm.h): the RSA 2048 EK of the TCG EK Credential Profile's template
 * L-1, re-created when needed (deterministic from the endorsement seed, so it is the key the
 * manufacturer's certificate names) and flushed right after, and the credential activation
 * that proves to the server that the AK lives in the TPM of that EK.
 */
#include "tpm_int.h"

#include <errno.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "log.h"

/* TCG EK Credential Profile 2.0, template L-1: the authPolicy is PolicySecret(TPM_RH_ENDORSEMENT). */
static const TPM2B_PUBLIC ek_template = {
	.publicArea =
		{
			.type = TPM2_ALG_RSA,
			.nameAlg = TPM2_ALG_SHA256,
			.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					    TPMA_OBJECT_SENSITIVEDATAORIGIN |
					    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED |
					    TPMA_OBJECT_DECRYPT,
			.authPolicy =
				{
					.size = 32,
					.buffer = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
						   0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
						   0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
						   0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa},
				},
			.parameters.rsaDetail =
				{
					.symmetric = {.algorithm = TPM2_ALG_AES,
						      .keyBits.aes = 128,
						      .mode.aes = TPM2_ALG_CFB},
					.scheme = {.scheme = TPM2_ALG_NULL},
					.keyBits = 2048,
					.exponent = 0,
				},
			.unique.rsa = {.size = 256},
		},
};

int
tpm_ek_public(struct tpm *t, uint8_t *out, size_t cap, size_t *len)
{
	TPM2B_PUBLIC pub;
	ESYS_TR ek;
	size_t off = 0;
	TSS2_RC rc;
	int err;

	err = tpm_create_primary(t, ESYS_TR_RH_ENDORSEMENT, &ek_template, &ek, &pub);
	if (err != 0)
		return err;
	tpm_flush(t, &ek);
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out, cap, &off);
	if ((rc & 0xffff) == TSS2_BASE_RC_INSUFFICIENT_BUFFER)
		return -EMSGSIZE;
	if ((err = tpm_err(rc, "marshalling the EK's public area")) != 0)
		return err;
	*len = off;
	return 0;
}

/* A policy session satisfying the EK's policy: PolicySecret(TPM_RH_ENDORSEMENT). */
static int
ek_session(struct tpm *t, ESYS_TR *sess)
{
	TSS2_RC rc;
	int err = tpm_start_session(t, TPM2_SE_POLICY, 0, sess);

	if (err != 0)
		return err;
	rc = Esys_PolicySecret(t->ctx, ESYS_TR_RH_ENDORSEMENT, *sess, ESYS_TR_PASSWORD,
			       ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
	if ((err = tpm_err(rc, "PolicySecret(endorsement)")) != 0)
		tpm_flush(t, sess);
	return err;
}

static int
parse_credential(const uint8_t *blob, size_t blob_len, const uint8_t *secret, size_t secret_len,
		 TPM2B_ID_OBJECT *id, TPM2B_ENCRYPTED_SECRET *enc)
{
	size_t a = 0, b = 0;

	if (blob == NULL || secret == NULL || blob_len > TPM_CRED_MAX || secret_len > TPM_CRED_MAX)
		return -EINVAL;
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &a, id) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret, secret_len, &b, enc) !=
		    TSS2_RC_SUCCESS ||
	    a != blob_len || b != secret_len) {
		log_err("cleave-hv: tpm: the credential is not a TPM2B_ID_OBJECT and a "
			"TPM2B_ENCRYPTED_SECRET");
		return -EINVAL;
	}
	return 0;
}

int
tpm_activate(struct tpm *t, const uint8_t *blob, size_t blob_len, const uint8_t *secret,
	     size_t secret_len, uint8_t *out, size_t cap, size_t *len)
{
	TPM2B_ID_OBJECT id = {0};
	TPM2B_ENCRYPTED_SECRET enc = {0};
	TPM2B_DIGEST *cert = NULL;
	ESYS_TR ek = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	TSS2_RC rc;
	int err;

	if (t->ak == ESYS_TR_NONE)
		return -ENOKEY;
	if ((err = parse_credential(blob, blob_len, secret, secret_len, &id, &enc)) != 0)
		return err;
	err = tpm_create_primary(t, ESYS_TR_RH_ENDORSEMENT, &ek_template, &ek, NULL);
	if (err == 0)
		err = ek_session(t, &sess);
	if (err == 0) {
		rc = Esys_ActivateCredential(t->ctx, t->ak, ek, ESYS_TR_PASSWORD, sess,
					     ESYS_TR_NONE, &id, &enc, &cert);
		err = tpm_err(rc, "TPM2_ActivateCredential");
		/*
		 * A credential for another EK or AK fails its decryption or integrity check.
		 * libtpms before 0.10 answers a failed decryption with TPM_RC_FAILURE (libtpms
		 * pull 445), which otherwise means a TPM in failure mode: the log has the code.
		 */
		if (err == -EINVAL || err == -EPERM || err == -EKEYREJECTED ||
		    (rc & 0xfff) == TPM2_RC_FAILURE)
			err = -EKEYREJECTED;
	}
	if (err == 0 && cert->size > cap)
		err = -EMSGSIZE;
	if (err == 0) {
		memcpy(out, cert->buffer, cert->size);
		*len = cert->size;
	}
	if (cert != NULL)
		explicit_bzero(cert, sizeof(*cert));
	Esys_Free(cert);
	tpm_flush(t, &sess);
	tpm_flush(t, &ek);
	return err;
}
