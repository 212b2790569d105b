/*
 * The endorsement key (see tpm.h): the RSA 2048 EK of the TCG EK Credential Profile's template
 * L-1, and the credential activation that proves to the server that the AK lives in the TPM of
 * that EK. The manufacturer's persistent EK (TCG EK Credential Profile: handle 0x81010001) is
 * used when it is that template's key and the certificate's; otherwise the EK is created from
 * the template (deterministic from the endorsement seed, so it is the key the certificate
 * names; seconds on a discrete TPM) and flushed right after. cleave-hv never persists it.
 */
#include "tpm_int.h"

#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
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

/* 1 when pub has every field of the template but the key itself (unique). */
static int
template_matches(const TPMT_PUBLIC *pub)
{
	const TPMT_PUBLIC *tm = &ek_template.publicArea;
	const TPMS_RSA_PARMS *a = &pub->parameters.rsaDetail, *b = &tm->parameters.rsaDetail;

	return pub->type == tm->type && pub->nameAlg == tm->nameAlg &&
	       pub->objectAttributes == tm->objectAttributes &&
	       pub->authPolicy.size == tm->authPolicy.size &&
	       memcmp(pub->authPolicy.buffer, tm->authPolicy.buffer, tm->authPolicy.size) == 0 &&
	       a->symmetric.algorithm == b->symmetric.algorithm &&
	       a->symmetric.keyBits.aes == b->symmetric.keyBits.aes &&
	       a->symmetric.mode.aes == b->symmetric.mode.aes &&
	       a->scheme.scheme == b->scheme.scheme && a->keyBits == b->keyBits &&
	       (a->exponent == 0 || a->exponent == 65537) && pub->unique.rsa.size == 256;
}

/* 1 when the RSA modulus n (len bytes) is the key of the EK certificate in NV. */
static int
cert_has_modulus(struct tpm *t, const uint8_t *n, size_t len)
{
	uint8_t der[TPM_CERT_MAX];
	const unsigned char *p = der;
	size_t dl = 0;
	X509 *x = tpm_ek_cert(t, der, sizeof(der), &dl) == 0 ? d2i_X509(NULL, &p, (long)dl) : NULL;
	EVP_PKEY *k = x != NULL ? X509_get0_pubkey(x) : NULL;
	BIGNUM *cn = NULL, *ours = BN_bin2bn(n, (int)len, NULL);
	int ok = k != NULL && ours != NULL &&
		 EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &cn) == 1 && BN_cmp(cn, ours) == 0;

	BN_free(cn);
	BN_free(ours);
	X509_free(x);
	return ok;
}

/*
 * The EK as an ESYS_TR in *ek (ek_release gives it back) and its public area in pub (may be
 * NULL): the persistent one when it is the certified key of the template, else created.
 */
static int
ek_acquire(struct tpm *t, ESYS_TR *ek, TPM2B_PUBLIC *pub_out)
{
	TPM2B_PUBLIC *pub = NULL;
	int ok;

	t->ek_persistent = 0;
	if (Esys_TR_FromTPMPublic(t->ctx, TPM_EK_PERSISTENT, ESYS_TR_NONE, ESYS_TR_NONE,
				  ESYS_TR_NONE, ek) == TSS2_RC_SUCCESS) {
		ok = Esys_ReadPublic(t->ctx, *ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
				     NULL, NULL) == TSS2_RC_SUCCESS &&
		     template_matches(&pub->publicArea) &&
		     cert_has_modulus(t, pub->publicArea.unique.rsa.buffer,
				      pub->publicArea.unique.rsa.size);
		if (ok && pub_out != NULL)
			*pub_out = *pub;
		Esys_Free(pub);
		if (ok) {
			t->ek_persistent = 1;
			return 0;
		}
		Esys_TR_Close(t->ctx, ek);
	}
	*ek = ESYS_TR_NONE;
	if (t->ek_created++ == 0)
		log_info("cleave-hv: tpm: no persistent EK at 0x%x that is the certificate's key: "
			 "creating the EK from its template",
			 TPM_EK_PERSISTENT);
	return tpm_create_primary(t, ESYS_TR_RH_ENDORSEMENT, &ek_template, ek, pub_out);
}

/* Flushes a created EK; forgets (never flushes) the persistent one. */
static void
ek_release(struct tpm *t, ESYS_TR *ek)
{
	if (t->ek_persistent && *ek != ESYS_TR_NONE)
		Esys_TR_Close(t->ctx, ek);
	else
		tpm_flush(t, ek);
	*ek = ESYS_TR_NONE;
	t->ek_persistent = 0;
}

int
tpm_ek_public(struct tpm *t, uint8_t *out, size_t cap, size_t *len)
{
	TPM2B_PUBLIC pub;
	ESYS_TR ek;
	size_t off = 0;
	TSS2_RC rc;
	int err;

	err = ek_acquire(t, &ek, &pub);
	if (err != 0)
		return err;
	ek_release(t, &ek);
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
	err = ek_acquire(t, &ek, NULL);
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
	ek_release(t, &ek);
	return err;
}
