/*
 * Enrollment of a device whose hypervisor key lives in a TPM (hypercall-bridge/TPM.md §3). At
 * the nonce: the EK certificate must chain to a manufacturer CA the admin configured, the EK
 * public the device sent must be that certificate's key, and the AK must be a key the TPM keeps
 * to itself (tpm_ak_check); the nonce then leaves only as a credential encrypted to the EK and
 * bound to the AK's name, so only that TPM with that AK loaded recovers it. At enrollment: a
 * quote by the same AK over PCR 23 whose qualifying data covers the attestation, the PCR replayed
 * from the device's log whose last entry is the attestation's measurement, and the AK's SPKI the
 * key the attestation was verified with. That the nonce was issued for this AK is checked where
 * the nonce is taken (enroll.c), inside the enrollment's transaction.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "hvsig.h"
#include "log.h"
#include "tpm_verify.h"
#include "wire.h"

int
svc_tpm_ca_init(struct service *s)
{
	char why[256] = "";

	if (s->cfg.tpm_ca_file == NULL || s->cfg.tpm_ca_file[0] == '\0')
		return 0;
	s->tpm_ca = tpm_ca_load(s->cfg.tpm_ca_file, why, sizeof(why));
	if (s->tpm_ca == NULL) {
		log_err("tpm_ca_file %s: %s", s->cfg.tpm_ca_file, why);
		return -EINVAL;
	}
	return 0;
}

void
svc_tpm_ca_free(struct service *s)
{
	tpm_ca_free(s->tpm_ca);
	s->tpm_ca = NULL;
}

/* Decodes a TPM2B_PUBLIC the device sent as field; a refusal names the field. */
static int
public_decode(const uint8_t *buf, size_t len, const char *field, struct tpm_public *out,
	      struct svc_error *err)
{
	char why[160] = "";

	if (buf == NULL || len == 0 || len > SVC_TPM_PUBLIC_MAX ||
	    tpm_public_decode(buf, len, out, why, sizeof(why)) != 0)
		return svc_fail(err, SVC_INVALID, "%s is not a TPM2B_PUBLIC: %s", field,
				why[0] ? why : "empty or too long");
	return 0;
}

int
svc_tpm_credential(struct service *s, const struct enroll_tpm_id *id, const uint8_t nonce[32],
		   struct enroll_nonce *n, struct enroll_credential *cred, struct svc_error *err)
{
	struct tpm_public ek, ak;
	struct tpm_ek_info info;
	char why[256] = "";
	int r;

	if (s->tpm_ca == NULL)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"this server trusts no TPM manufacturer (no tpm_ca_file is "
				"configured), so it cannot verify a TPM's endorsement; ask for a "
				"nonce without tpm, or have the admin configure the CAs");
	if (id->ek_cert_len == 0 || id->ek_cert_len > SVC_TPM_CERT_MAX)
		return svc_fail(err, SVC_INVALID,
				"tpm.ek_cert must be a DER certificate of at "
				"most 4096 bytes");
	r = public_decode(id->ek_public, id->ek_public_len, "tpm.ek_public", &ek, err);
	if (r == 0)
		r = public_decode(id->ak_public, id->ak_public_len, "tpm.ak_public", &ak, err);
	if (r != 0)
		return r;
	r = tpm_ek_verify(s->tpm_ca, id->ek_cert, id->ek_cert_len, &ek, &info, why, sizeof(why));
	if (r != 0)
		return svc_fail(err, SVC_ENROLL_DENIED, "the TPM's endorsement is not verified: %s",
				why);
	if (tpm_ak_check(&ak, why, sizeof(why)) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"tpm.ak_public is not a key the hypervisor may use: %s", why);
	r = tpm_make_credential(&ek, ak.name, ak.name_len, nonce, 32, cred->blob,
				sizeof(cred->blob), &cred->blob_len, cred->secret,
				sizeof(cred->secret), &cred->secret_len, why, sizeof(why));
	if (r == -ENOTSUP || r == -EINVAL || r == -EBADMSG)
		return svc_fail(err, SVC_INVALID, "no credential can be made for this EK: %s", why);
	if (r != 0 || ak.name_len > sizeof(n->ak_name))
		return svc_fail(err, SVC_INTERNAL, "credential: %s", why);
	memcpy(n->ak_name, ak.name, ak.name_len);
	n->ak_name_len = ak.name_len;
	str_copy(n->ek_issuer, sizeof(n->ek_issuer), info.issuer);
	return 0;
}

/* The quote's qualifying data: SHA-256(WIRE_QUOTE_LABEL || attestation body). */
static void
quote_qualifying(const uint8_t *attestation, uint8_t out[32])
{
	const void *parts[2] = {WIRE_QUOTE_LABEL, attestation};
	const size_t lens[2] = {sizeof(WIRE_QUOTE_LABEL) - 1, ATTEST_BODY_LEN};

	crypto_sha256_parts(parts, lens, 2, out);
}

int
svc_tpm_evidence_ok(const struct enroll_request *rq, const struct attestation *a,
		    uint8_t ak_name[STORE_AK_NAME_MAX], uint16_t *ak_name_len,
		    struct svc_error *err)
{
	const struct enroll_tpm_evidence *t = rq->tpm;
	struct tpm_public ak;
	uint8_t qual[32], spki[HVSIG_SPKI_MAX];
	size_t spki_len = 0;
	char why[256] = "";
	int r;

	if (a->sig_alg == WIRE_SIG_ED25519)
		return t == NULL ? 0
				 : svc_fail(err, SVC_INVALID,
					    "tpm goes with an attestation signed by a TPM (version "
					    "3); this one is signed by a software key");
	if (t == NULL)
		return svc_fail(err, SVC_INVALID,
				"the attestation is signed by a TPM key (version 3): enrollment "
				"needs its tpm part (ak_public, quote, quote_sig, pcr_log)");
	r = public_decode(t->ak_public, t->ak_public_len, "tpm.ak_public", &ak, err);
	if (r != 0)
		return r;
	if (tpm_ak_check(&ak, why, sizeof(why)) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"tpm.ak_public is not a key the hypervisor may use: %s", why);
	if (tpm_public_spki(&ak, spki, sizeof(spki), &spki_len, why, sizeof(why)) != 0 ||
	    spki_len != rq->hv_spki_len || memcmp(spki, rq->hv_spki, spki_len) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"hypervisor_spki is not the key of tpm.ak_public");
	if (t->pcr_log_n == 0 || t->pcr_log_n > SVC_PCR_LOG_MAX)
		return svc_fail(err, SVC_INVALID, "tpm.pcr_log must list 1 to %d measurements",
				SVC_PCR_LOG_MAX);
	quote_qualifying(rq->attestation, qual);
	r = tpm_quote_check(&ak, t->quote, t->quote_len, t->quote_sig, t->quote_sig_len, qual,
			    sizeof(qual), t->pcr_log, t->pcr_log_n, NULL, why, sizeof(why));
	if (r != 0)
		return svc_fail(err, SVC_ENROLL_DENIED, "the TPM quote is refused: %s", why);
	if (memcmp(t->pcr_log[t->pcr_log_n - 1], a->measurement, 32) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"the last measurement of tpm.pcr_log is not the attestation's");
	memcpy(ak_name, ak.name, ak.name_len);
	*ak_name_len = ak.name_len;
	return 0;
}
