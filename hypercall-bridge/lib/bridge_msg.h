/*
 * Encoding and strict decoding of host-side bridge messages (cleave_abi.h, ABI.md section 4):
 * header checks, reserved fields, and the exact payload size each function takes in a request
 * and gives in a reply. Shared by cleave-hv (decodes requests) and the bridge client (decodes
 * replies). Pure functions: no I/O, no allocation.
 */
#ifndef CLEAVE_BRIDGE_MSG_H
#define CLEAVE_BRIDGE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "cleave_abi.h"

/*
 * Expected payload size of fid's request (kind CLV_MSG_REQUEST) or successful reply; -1 when
 * the size varies (RECEIPTS reply: 8 + 320 * n, n <= CLV_RECEIPTS_PER_MSG), -2 for an unknown
 * function.
 */
long clv_payload_size(uint32_t fid, uint16_t kind);

/*
 * Writes header + payload into buf (cap bytes). Returns the message length, or -EINVAL when the
 * payload does not fit the function's size rules, -ENOSPC when cap is too small.
 */
long clv_msg_encode(const struct clv_msg_hdr *h, const void *payload, uint8_t *buf, size_t cap);

/*
 * Decodes exactly len bytes. On success *h is filled and *payload points into buf. Returns 0,
 * or a CLV_E_* code: CLV_E_INVALID_PARAMETER (bad magic, kind, reserved, length or payload
 * size), CLV_E_NOT_SUPPORTED (other ABI major, unknown function).
 */
int clv_msg_decode(const uint8_t *buf, size_t len, struct clv_msg_hdr *h, const uint8_t **payload);

/* Little-endian status record <-> struct (64 bytes). Decode rejects nonzero reserved. */
void clv_status_encode(const struct clv_status *s, uint8_t out[64]);
int clv_status_decode(const uint8_t in[64], struct clv_status *s);
/* CLV_FN_COUNTERS' reply: four little-endian u64, then 32 reserved bytes (zero, ignored). */
void clv_counters_encode(const struct clv_counters *k, uint8_t out[64]);
void clv_counters_decode(const uint8_t in[64], struct clv_counters *k);

/* TPM_IDENTITY's reply (ABI.md §2), pointing into the reply buffer. */
struct clv_tpm_identity {
	const uint8_t *ek_cert, *ek_public, *ak_public, *ak_spki;
	size_t ek_cert_len, ek_public_len, ak_public_len, ak_spki_len;
};
/* Splits a TPM_IDENTITY reply of n bytes. 0, or -EPROTO when the lengths inside lie. */
int clv_tpm_identity_decode(const uint8_t *buf, size_t n, struct clv_tpm_identity *id);

/* TPM_ACTIVATE's request from a credential: blob (TPM2B_ID_OBJECT), secret (TPM2B_ENCRYPTED_SECRET). */
long clv_tpm_activate_encode(const uint8_t *blob, size_t blob_len, const uint8_t *secret,
			     size_t secret_len, uint8_t *out, size_t cap);
/* TPM_ACTIVATE's reply, pointing into the reply buffer. */
struct clv_tpm_evidence {
	const uint8_t *attestation;                 /* ATTEST_LEN bytes */
	const uint8_t *quote, *quote_sig, *pcr_log; /* pcr_log: log_count x 32 bytes */
	size_t quote_len, quote_sig_len, log_count;
};
/* Splits a TPM_ACTIVATE reply of n bytes. 0, or -EPROTO when the lengths inside lie. */
int clv_tpm_activate_decode(const uint8_t *buf, size_t n, struct clv_tpm_evidence *ev);

#endif
