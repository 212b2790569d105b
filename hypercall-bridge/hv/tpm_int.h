/*
 * What tpm.c, tpm_ek.c, tpm_nv.c and tpm_seal.c share: the open TPM and the ESAPI helpers.
 * Not for other modules (they use tpm.h).
 */
#ifndef CLEAVE_HV_TPM_INT_H
#define CLEAVE_HV_TPM_INT_H

#include <tss2/tss2_esys.h>

#include "tpm.h"

struct tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *ctx;
	ESYS_TR srk;
	ESYS_TR ak; /* ESYS_TR_NONE before tpm_ak_init */
	uint8_t ak_public[TPM_PUBLIC_MAX];
	size_t ak_public_len;
	TPM2B_PUBLIC ak_pub;
	int ek_persistent;   /* the EK handle in use is TPM_EK_PERSISTENT's (not to be flushed) */
	unsigned ek_created; /* EKs created from the template since tpm_open (tests read it) */
};

/*
 * Maps a tpm2-tss return code to -errno and, unless rc is success, logs what failed with
 * Tss2_RC_Decode's text. 0 for success.
 */
int tpm_err(TSS2_RC rc, const char *what);
/* Flushes a loaded object or session handle (ESYS_TR_NONE ignored) and sets *h to it. */
void tpm_flush(struct tpm *t, ESYS_TR *h);
/* Creates a primary key in hierarchy from template; *out is a transient handle. */
int tpm_create_primary(struct tpm *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl, ESYS_TR *out,
		       TPM2B_PUBLIC *pub_out);
/* Starts a session of type (TPM2_SE_POLICY, _TRIAL, _HMAC), salted with the SRK when salted. */
int tpm_start_session(struct tpm *t, TPM2_SE type, int salted, ESYS_TR *out);
/* Opens the ESYS_TR of the NV index (-ENOENT when undefined). */
int tpm_nv_handle(struct tpm *t, uint32_t index, ESYS_TR *out);

static inline void
tpm_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t
tpm_get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#endif
