/*
 * The TPM connection and what every TPM operation shares (see tpm.h): the TCTI and ESAPI
 * context, the SRK (TCG SRK template, ECC P-256, re-created at each start: the same key each
 * time, derived from the owner hierarchy's seed), error mapping, sessions, the TPM clock and
 * PCR 23.
 */
#include "tpm_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "log.h"

#define TCTI_CONF_MAX 512
/* TPM2_TRANSIENT_FIRST, without the header macro's signed shift (UBSan flags it). */
#define TRANSIENT_FIRST 0x80000000u

/* TCG EK Credential Profile / Provisioning Guidance: the ECC P-256 storage root key. */
static const TPM2B_PUBLIC srk_template = {
	.publicArea =
		{
			.type = TPM2_ALG_ECC,
			.nameAlg = TPM2_ALG_SHA256,
			.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					    TPMA_OBJECT_SENSITIVEDATAORIGIN |
					    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA |
					    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
			.parameters.eccDetail =
				{
					.symmetric = {.algorithm = TPM2_ALG_AES,
						      .keyBits.aes = 128,
						      .mode.aes = TPM2_ALG_CFB},
					.scheme = {.scheme = TPM2_ALG_NULL},
					.curveID = TPM2_ECC_NIST_P256,
					.kdf = {.scheme = TPM2_ALG_NULL},
				},
			.unique.ecc = {.x = {.size = 32}, .y = {.size = 32}},
		},
};

/* The TPM's own errors (layer 0), reduced to their code without handle/parameter numbers. */
static int
tpm_rc_errno(TSS2_RC rc)
{
	TSS2_RC base = (rc & TPM2_RC_FMT1) ? (rc & (TPM2_RC_FMT1 | 0x3f)) : (rc & 0xfff);

	switch (base) {
	case TPM2_RC_POLICY:
	case TPM2_RC_POLICY_FAIL:
	case TPM2_RC_POLICY_CC:
	case TPM2_RC_EXPIRED:
		return -EPERM;
	case TPM2_RC_AUTH_FAIL:
	case TPM2_RC_BAD_AUTH:
	case TPM2_RC_AUTH_MISSING:
	case TPM2_RC_AUTH_UNAVAILABLE:
		return -EACCES;
	case TPM2_RC_INTEGRITY:
		return -EKEYREJECTED;
	case TPM2_RC_HANDLE:
		return -ENOENT;
	case TPM2_RC_NV_DEFINED:
		return -EEXIST;
	case TPM2_RC_NV_UNINITIALIZED:
		return -ENODATA;
	case TPM2_RC_NV_LOCKED:
		return -EROFS;
	case TPM2_RC_OBJECT_MEMORY:
	case TPM2_RC_SESSION_MEMORY:
	case TPM2_RC_NV_SPACE:
	case TPM2_RC_OBJECT_HANDLES:
	case TPM2_RC_SESSION_HANDLES:
		return -ENOSPC;
	case TPM2_RC_RETRY:
	case TPM2_RC_YIELDED:
	case TPM2_RC_TESTING:
	case TPM2_RC_NV_RATE:
		return -EAGAIN;
	case TPM2_RC_LOCKOUT:
		return -EBUSY;
	case TPM2_RC_VALUE:
	case TPM2_RC_SIZE:
	case TPM2_RC_ATTRIBUTES:
	case TPM2_RC_KEY:
	case TPM2_RC_SCHEME:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int
tpm_err(TSS2_RC rc, const char *what)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
	int err;

	if (rc == TSS2_RC_SUCCESS)
		return 0;
	if (layer == TSS2_TPM_RC_LAYER)
		err = tpm_rc_errno(rc);
	else if ((rc & 0xffff) == TSS2_BASE_RC_BAD_VALUE ||
		 (rc & 0xffff) == TSS2_BASE_RC_BAD_REFERENCE ||
		 (rc & 0xffff) == TSS2_BASE_RC_INSUFFICIENT_BUFFER)
		err = -EINVAL;
	else if ((rc & 0xffff) == TSS2_BASE_RC_MEMORY)
		err = -ENOMEM;
	else
		err = -EIO;
	log_err("cleave-hv: tpm: %s: %s (0x%x)", what, Tss2_RC_Decode(rc), (unsigned)rc);
	return err;
}

void
tpm_flush(struct tpm *t, ESYS_TR *h)
{
	TSS2_RC rc;

	if (*h == ESYS_TR_NONE)
		return;
	rc = Esys_FlushContext(t->ctx, *h);
	if (rc != TSS2_RC_SUCCESS)
		(void)tpm_err(rc, "flushing a handle");
	*h = ESYS_TR_NONE;
}

int
tpm_create_primary(struct tpm *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl, ESYS_TR *out,
		   TPM2B_PUBLIC *pub_out)
{
	const TPM2B_SENSITIVE_CREATE sens = {0};
	const TPM2B_DATA outside = {0};
	const TPML_PCR_SELECTION pcrs = {0};
	TPM2B_PUBLIC *pub = NULL;
	TSS2_RC rc;

	*out = ESYS_TR_NONE;
	rc = Esys_CreatePrimary(t->ctx, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				&sens, tmpl, &outside, &pcrs, out, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		*out = ESYS_TR_NONE;
		return tpm_err(rc, "creating a primary key");
	}
	if (pub_out != NULL)
		*pub_out = *pub;
	Esys_Free(pub);
	return 0;
}

int
tpm_start_session(struct tpm *t, TPM2_SE type, int salted, ESYS_TR *out)
{
	const TPMT_SYM_DEF aes = {
		.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
	const TPMT_SYM_DEF none = {.algorithm = TPM2_ALG_NULL};
	TSS2_RC rc;

	rc = Esys_StartAuthSession(t->ctx, salted ? t->srk : ESYS_TR_NONE, ESYS_TR_NONE,
				   ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, type,
				   salted ? &aes : &none, TPM2_ALG_SHA256, out);
	if (rc != TSS2_RC_SUCCESS) {
		*out = ESYS_TR_NONE;
		return tpm_err(rc, "starting a session");
	}
	return 0;
}

int
tpm_nv_handle(struct tpm *t, uint32_t index, ESYS_TR *out)
{
	TSS2_RC rc =
		Esys_TR_FromTPMPublic(t->ctx, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, out);

	*out = rc == TSS2_RC_SUCCESS ? *out : ESYS_TR_NONE;
	/* Absent is an answer the callers expect, not a failure to log. */
	if ((rc & ~(TSS2_RC)TPM2_RC_N_MASK) == TPM2_RC_HANDLE)
		return -ENOENT;
	return tpm_err(rc, "opening an NV index");
}

/* Connects and starts the TPM (already started is fine: swtpm --flags startup-clear does). */
static int
tpm_connect(struct tpm *t, const char *tcti)
{
	TSS2_RC rc;

	/* tpm2-tss's own stderr logging off unless asked for: tpm_err logs each failure once. */
	setenv("TSS2_LOG", "all+NONE", 0);
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		(void)tpm_err(rc, "connecting");
		t->tcti = NULL;
		return -ECONNREFUSED;
	}
	rc = Esys_Initialize(&t->ctx, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		t->ctx = NULL;
		return tpm_err(rc, "initializing ESAPI");
	}
	rc = Esys_Startup(t->ctx, TPM2_SU_CLEAR);
	if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
		return tpm_err(rc, "TPM2_Startup");
	return 0;
}

/*
 * TPM2_FlushContext(handle) sent on the TCTI directly: ESAPI has no ESYS_TR for a handle another
 * process loaded. 0 or -EIO.
 */
static int
flush_raw(struct tpm *t, uint32_t handle)
{
	uint8_t cmd[14] = {0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x65}, resp[16];
	size_t n = sizeof(resp);
	TSS2_RC rc;

	for (int i = 0; i < 4; i++)
		cmd[10 + i] = (uint8_t)(handle >> (24 - 8 * i));
	rc = Tss2_Tcti_Transmit(t->tcti, sizeof(cmd), cmd);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Tcti_Receive(t->tcti, &n, resp, TSS2_TCTI_TIMEOUT_BLOCK);
	if (rc != TSS2_RC_SUCCESS || n < 10 || (resp[6] | resp[7] | resp[8] | resp[9]) != 0)
		return -EIO;
	return 0;
}

/*
 * Flushes the objects and sessions a cleave-hv that was killed left loaded. Only a TPM without
 * a resource manager keeps them (swtpm reached directly, /dev/tpm0); cleave-hv is then taken to
 * be the TPM's only user, as nothing else could share it safely. Through /dev/tpmrm0 the kernel
 * flushes a closed connection's handles and this finds none. 0 or -errno.
 */
static int
flush_leftovers(struct tpm *t)
{
	static const uint32_t first[] = {TRANSIENT_FIRST, 0x02000000u, 0x03000000u};
	unsigned flushed = 0;

	for (size_t k = 0; k < sizeof(first) / sizeof(first[0]); k++) {
		TPMS_CAPABILITY_DATA *cap = NULL;
		TPMI_YES_NO more;
		TSS2_RC rc = Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
						TPM2_CAP_HANDLES, first[k], TPM2_MAX_CAP_HANDLES,
						&more, &cap);

		if (rc != TSS2_RC_SUCCESS)
			return tpm_err(rc, "listing handles left loaded");
		for (uint32_t i = 0; i < cap->data.handles.count; i++)
			flushed += flush_raw(t, cap->data.handles.handle[i]) == 0;
		Esys_Free(cap);
	}
	if (flushed > 0)
		log_warn("cleave-hv: tpm: flushed %u objects or sessions a stopped process left "
			 "in the TPM",
			 flushed);
	return 0;
}

int
tpm_open(const char *tcti, struct tpm **out)
{
	struct tpm *t;
	int err;

	*out = NULL;
	if (tcti == NULL || strnlen(tcti, TCTI_CONF_MAX) == TCTI_CONF_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->srk = ESYS_TR_NONE;
	t->ak = ESYS_TR_NONE;
	err = tpm_connect(t, tcti);
	if (err == 0)
		err = flush_leftovers(t);
	if (err == 0)
		err = tpm_create_primary(t, ESYS_TR_RH_OWNER, &srk_template, &t->srk, NULL);
	if (err != 0) {
		tpm_close(t);
		return err;
	}
	*out = t;
	return 0;
}

void
tpm_close(struct tpm *t)
{
	if (t == NULL)
		return;
	if (t->ctx != NULL) {
		tpm_flush(t, &t->ak);
		tpm_flush(t, &t->srk);
		Esys_Finalize(&t->ctx);
	}
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	explicit_bzero(t, sizeof(*t));
	free(t);
}

int
tpm_transient_count(struct tpm *t, unsigned *out)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;

	rc = Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
				TRANSIENT_FIRST, TPM2_MAX_CAP_HANDLES, &more, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "listing transient handles");
	*out = cap->data.handles.count;
	Esys_Free(cap);
	return 0;
}

int
tpm_read_clock(struct tpm *t, struct tpm_clock *out)
{
	TPMS_TIME_INFO *ti = NULL;
	TSS2_RC rc;

	rc = Esys_ReadClock(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ti);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "TPM2_ReadClock");
	out->clock_ms = ti->clockInfo.clock;
	out->reset_count = ti->clockInfo.resetCount;
	out->restart_count = ti->clockInfo.restartCount;
	out->safe = ti->clockInfo.safe == TPM2_YES;
	Esys_Free(ti);
	return 0;
}

static void
pcr23_select(TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	sel->pcrSelections[0].pcrSelect[TPM_PCR_CLEAVE / 8] = 1u << (TPM_PCR_CLEAVE % 8);
}

int
tpm_pcr_extend(struct tpm *t, const uint8_t digest[32])
{
	TPML_DIGEST_VALUES v = {.count = 1};
	TSS2_RC rc;

	v.digests[0].hashAlg = TPM2_ALG_SHA256;
	memcpy(v.digests[0].digest.sha256, digest, 32);
	rc = Esys_PCR_Extend(t->ctx, ESYS_TR_PCR0 + TPM_PCR_CLEAVE, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			     ESYS_TR_NONE, &v);
	return tpm_err(rc, "extending PCR 23");
}

int
tpm_pcr_reset(struct tpm *t)
{
	TSS2_RC rc = Esys_PCR_Reset(t->ctx, ESYS_TR_PCR0 + TPM_PCR_CLEAVE, ESYS_TR_PASSWORD,
				    ESYS_TR_NONE, ESYS_TR_NONE);

	return tpm_err(rc, "resetting PCR 23");
}

int
tpm_pcr_read(struct tpm *t, uint8_t out[32])
{
	TPML_PCR_SELECTION sel, *sel_out = NULL;
	TPML_DIGEST *vals = NULL;
	UINT32 updates;
	TSS2_RC rc;
	int err = 0;

	pcr23_select(&sel);
	rc = Esys_PCR_Read(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &updates,
			   &sel_out, &vals);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "reading PCR 23");
	if (vals->count != 1 || vals->digests[0].size != 32) {
		log_err("cleave-hv: tpm: PCR 23 has no sha256 bank");
		err = -EIO;
	} else {
		memcpy(out, vals->digests[0].buffer, 32);
	}
	Esys_Free(sel_out);
	Esys_Free(vals);
	return err;
}

int
tpm_quote(struct tpm *t, const uint8_t *qual, size_t qlen, struct tpm_quote *q)
{
	const TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL}; /* the AK's own: ECDSA-SHA256 */
	TPML_PCR_SELECTION sel;
	TPM2B_DATA data = {0};
	TPM2B_ATTEST *att = NULL;
	TPMT_SIGNATURE *sig = NULL;
	size_t off = 0;
	TSS2_RC rc;
	int err = 0;

	if (t->ak == ESYS_TR_NONE)
		return -ENOKEY;
	if (qlen > sizeof(data.buffer) || (qlen > 0 && qual == NULL))
		return -EINVAL;
	data.size = (UINT16)qlen;
	if (qlen > 0)
		memcpy(data.buffer, qual, qlen);
	pcr23_select(&sel);
	rc = Esys_Quote(t->ctx, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data, &scheme,
			&sel, &att, &sig);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "TPM2_Quote");
	if (att->size > sizeof(q->attest)) {
		err = -EMSGSIZE;
	} else {
		memcpy(q->attest, att->attestationData, att->size);
		q->attest_len = att->size;
		rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, q->sig, sizeof(q->sig), &off);
		err = tpm_err(rc, "marshalling the quote's signature");
		q->sig_len = off;
	}
	Esys_Free(att);
	Esys_Free(sig);
	return err;
}
