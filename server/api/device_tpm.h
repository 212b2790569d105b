/*
 * The TPM members of the device API's enrollment requests (device_tpm.c), read into buffers of
 * their own (heap-sized: an EK certificate's base64 is ~5.5 KB) that the service's views point
 * into.
 */
#ifndef CLEAVE_API_DEVICE_TPM_H
#define CLEAVE_API_DEVICE_TPM_H

#include <jansson.h>
#include <stdint.h>

#include "service/service.h"

struct call;

/* The base64 text of cap bytes, with its NUL: a string field's buffer size. */
#define B64_CAP(cap) (((cap) + 2) / 3 * 4 + 1)

/* POST /device/v1/enroll/nonce's tpm: {ek_cert, ek_public, ak_public}. */
struct api_tpm_id {
	char text[B64_CAP(SVC_TPM_CERT_MAX)];
	uint8_t ek_cert[SVC_TPM_CERT_MAX];
	uint8_t ek_public[SVC_TPM_PUBLIC_MAX];
	uint8_t ak_public[SVC_TPM_PUBLIC_MAX];
	struct enroll_tpm_id id; /* points into the buffers above */
};
/* Reads tpm into b; 0, or -1 after a problem answer. */
int api_tpm_id_take(struct call *c, json_t *tpm, struct api_tpm_id *b);
/* The answer's credential: {"blob", "secret"} in base64. */
json_t *api_credential_json(const struct enroll_credential *cred);

/* POST /device/v1/enroll's tpm: {ak_public, quote, quote_sig, pcr_log}. */
struct api_tpm_evidence {
	uint8_t ak_public[SVC_TPM_PUBLIC_MAX];
	uint8_t quote[SVC_TPM_ATTEST_MAX];
	uint8_t quote_sig[SVC_TPM_SIG_MAX];
	uint8_t log[SVC_PCR_LOG_MAX][32];
	struct enroll_tpm_evidence ev; /* points into the buffers above */
};
int api_tpm_evidence_take(struct call *c, json_t *tpm, struct api_tpm_evidence *b);

#endif
