/*
 * The sealed volume root key (TPM.md §4; see tpm.h): a keyedHash object under the SRK whose
 * only authorization is the policy PolicyNV(wipe counter == value at sealing) then
 * PolicyCounterTimer(Clock < deadline). The key crosses the TPM interface only encrypted (the
 * Create and Unseal parameters travel in sessions salted with the SRK). Blob layout:
 * "CLVS" || counter (u64 BE) || deadline ms (u64 BE) || TPM2B_PUBLIC || TPM2B_PRIVATE; the
 * policy digest in the public area binds both numbers, so editing them only makes unseal fail.
 */
#include "tpm_int.h"

#include <errno.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "log.h"

#define SEAL_MAGIC      "CLVS"
#define SEAL_HDR        20
#define CLOCK_OFFSET    8 /* TPMS_TIME_INFO: time (8 bytes), then clockInfo.clock */
#define SESS_CONTINUE   TPMA_SESSION_CONTINUESESSION
#define SESS_ATTRS_MASK 0xff

/* Runs the sealed key's policy in sess (a trial session computes its digest). */
static int
seal_policy(struct tpm *t, ESYS_TR sess, uint64_t counter, uint64_t deadline_ms)
{
	TPM2B_OPERAND op = {.size = 8};
	ESYS_TR nv;
	TSS2_RC rc;
	int err = tpm_nv_handle(t, TPM_NV_WIPE_COUNTER, &nv);

	if (err == -ENOENT)
		log_err("cleave-hv: tpm: the wipe counter 0x%x is not defined",
			TPM_NV_WIPE_COUNTER);
	if (err != 0)
		return err;
	tpm_be64(op.buffer, counter);
	rc = Esys_PolicyNV(t->ctx, nv, nv, sess, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &op,
			   0, TPM2_EO_EQ);
	Esys_TR_Close(t->ctx, &nv);
	if ((err = tpm_err(rc, "PolicyNV: the wipe counter is not the sealed value")) != 0)
		return err;
	tpm_be64(op.buffer, deadline_ms);
	rc = Esys_PolicyCounterTimer(t->ctx, sess, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &op,
				     CLOCK_OFFSET, TPM2_EO_UNSIGNED_LT);
	return tpm_err(rc, "PolicyCounterTimer: the TPM clock is past the sealed deadline");
}

static int
policy_digest(struct tpm *t, uint64_t counter, uint64_t deadline_ms, TPM2B_DIGEST *out)
{
	TPM2B_DIGEST *d = NULL;
	ESYS_TR trial;
	TSS2_RC rc;
	int err = tpm_start_session(t, TPM2_SE_TRIAL, 0, &trial);

	if (err != 0)
		return err;
	err = seal_policy(t, trial, counter, deadline_ms);
	if (err == 0) {
		rc = Esys_PolicyGetDigest(t->ctx, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
					  &d);
		if ((err = tpm_err(rc, "TPM2_PolicyGetDigest")) == 0)
			*out = *d;
		Esys_Free(d);
	}
	tpm_flush(t, &trial);
	return err;
}

/* An HMAC session salted with the SRK that encrypts the command's first parameter. */
static int
encrypting_session(struct tpm *t, TPMA_SESSION dir, ESYS_TR *sess)
{
	int err = tpm_start_session(t, TPM2_SE_HMAC, 1, sess);

	if (err != 0)
		return err;
	err = tpm_err(
		Esys_TRSess_SetAttributes(t->ctx, *sess, dir | SESS_CONTINUE, SESS_ATTRS_MASK),
		"setting session attributes");
	if (err != 0)
		tpm_flush(t, sess);
	return err;
}

static int
seal_create(struct tpm *t, const uint8_t *key, const TPM2B_DIGEST *policy, uint8_t *blob,
	    size_t cap, size_t *off)
{
	TPM2B_SENSITIVE_CREATE sens = {.sensitive.data.size = TPM_ROOT_LEN};
	TPM2B_PUBLIC tmpl = {
		.publicArea = {
			.type = TPM2_ALG_KEYEDHASH,
			.nameAlg = TPM2_ALG_SHA256,
			.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT,
			.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
		}};
	const TPM2B_DATA outside = {0};
	const TPML_PCR_SELECTION pcrs = {0};
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR enc;
	TSS2_RC rc;
	int err;

	tmpl.publicArea.authPolicy = *policy;
	if ((err = encrypting_session(t, TPMA_SESSION_DECRYPT, &enc)) != 0)
		return err;
	memcpy(sens.sensitive.data.buffer, key, TPM_ROOT_LEN);
	rc = Esys_Create(t->ctx, t->srk, enc, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside,
			 &pcrs, &priv, &pub, NULL, NULL, NULL);
	explicit_bzero(&sens, sizeof(sens));
	tpm_flush(t, &enc);
	if ((err = tpm_err(rc, "sealing the root key")) != 0)
		return err;
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, blob, cap, off);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_MU_TPM2B_PRIVATE_Marshal(priv, blob, cap, off);
	Esys_Free(priv);
	Esys_Free(pub);
	if ((rc & 0xffff) == TSS2_BASE_RC_INSUFFICIENT_BUFFER)
		return -EMSGSIZE;
	return tpm_err(rc, "marshalling the sealed root key");
}

int
tpm_seal(struct tpm *t, const uint8_t *key, uint64_t counter, uint64_t deadline_ms, uint8_t *blob,
	 size_t cap, size_t *len)
{
	TPM2B_DIGEST policy = {0};
	size_t off = SEAL_HDR;
	int err;

	if (key == NULL || blob == NULL || cap < SEAL_HDR)
		return cap < SEAL_HDR ? -EMSGSIZE : -EINVAL;
	if ((err = policy_digest(t, counter, deadline_ms, &policy)) != 0)
		return err;
	memcpy(blob, SEAL_MAGIC, 4);
	tpm_be64(blob + 4, counter);
	tpm_be64(blob + 12, deadline_ms);
	if ((err = seal_create(t, key, &policy, blob, cap, &off)) != 0)
		return err;
	*len = off;
	return 0;
}

static int
seal_parse(const uint8_t *blob, size_t len, uint64_t *counter, uint64_t *deadline,
	   TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv)
{
	size_t off = SEAL_HDR;

	if (blob == NULL || len < SEAL_HDR || len > TPM_SEALED_MAX || memcmp(blob, SEAL_MAGIC, 4))
		return -EINVAL;
	*counter = tpm_get_be64(blob + 4);
	*deadline = tpm_get_be64(blob + 12);
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, len, &off, pub) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, len, &off, priv) != TSS2_RC_SUCCESS ||
	    off != len || pub->publicArea.type != TPM2_ALG_KEYEDHASH)
		return -EINVAL;
	return 0;
}

int
tpm_sealed_info(const uint8_t *blob, size_t len, uint64_t *counter, uint64_t *deadline_ms)
{
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};

	return seal_parse(blob, len, counter, deadline_ms, &pub, &priv);
}

/* Unseals the loaded object obj in a policy session that also encrypts the response. */
static int
unseal_loaded(struct tpm *t, ESYS_TR obj, uint64_t counter, uint64_t deadline, uint8_t *key)
{
	TPM2B_SENSITIVE_DATA *data = NULL;
	ESYS_TR sess;
	TSS2_RC rc;
	int err = tpm_start_session(t, TPM2_SE_POLICY, 1, &sess);

	if (err != 0)
		return err;
	err = seal_policy(t, sess, counter, deadline);
	if (err == 0)
		err = tpm_err(Esys_TRSess_SetAttributes(t->ctx, sess,
							TPMA_SESSION_ENCRYPT | SESS_CONTINUE,
							SESS_ATTRS_MASK),
			      "setting session attributes");
	if (err == 0) {
		rc = Esys_Unseal(t->ctx, obj, sess, ESYS_TR_NONE, ESYS_TR_NONE, &data);
		err = tpm_err(rc, "unsealing the root key");
	}
	if (err == 0 && data->size != TPM_ROOT_LEN)
		err = -EIO;
	if (err == 0)
		memcpy(key, data->buffer, TPM_ROOT_LEN);
	if (data != NULL)
		explicit_bzero(data, sizeof(*data));
	Esys_Free(data);
	tpm_flush(t, &sess);
	return err;
}

int
tpm_unseal(struct tpm *t, const uint8_t *blob, size_t len, uint8_t *key)
{
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};
	uint64_t counter, deadline;
	ESYS_TR obj;
	TSS2_RC rc;
	int err = seal_parse(blob, len, &counter, &deadline, &pub, &priv);

	if (err != 0) {
		log_err("cleave-hv: tpm: not a sealed root key blob");
		return err;
	}
	rc = Esys_Load(t->ctx, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub,
		       &obj);
	if (rc != TSS2_RC_SUCCESS) {
		(void)tpm_err(rc, "loading the sealed root key (not this TPM's?)");
		return -EKEYREJECTED;
	}
	err = unseal_loaded(t, obj, counter, deadline, key);
	tpm_flush(t, &obj);
	return err;
}
