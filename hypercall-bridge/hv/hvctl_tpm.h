/*
 * cleave-hvctl's TPM commands (hvctl_tpm.c): the TPM identity the agent sends at enrollment,
 * the activation of the server's credential (an attestation quoted over PCR 23), and the PEM of
 * a TPM-resident identity key. Each prints base64 lines `name: value` and returns the exit code.
 */
#ifndef CLEAVE_HVCTL_TPM_H
#define CLEAVE_HVCTL_TPM_H

#include <stddef.h>
#include <stdint.h>

#include "bridge_client.h"

/* ek_cert, ek_public, ak_public, ak_spki (TPM_IDENTITY). */
int hvctl_tpm_identity(struct bridge_client *c);
/*
 * TPM_ACTIVATE with the credential in path (tpm2-tools' tpm2_makecredential file: 0xbadcc0de,
 * version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET): attestation, quote, quote_sig, pcr_log.
 */
int hvctl_tpm_activate(struct bridge_client *c, const char *path);
/*
 * The P-256 key that signed att (raw attestation, n bytes, decoded with a sig_alg of ECDSA):
 * the AK's SPKI from TPM_IDENTITY, checked to be the key hv_key names and to verify the
 * attestation; printed as PEM, or (pem 0) hv_key in base64. 0, or -EPROTO when it does not.
 */
int hvctl_tpm_pubkey(struct bridge_client *c, const uint8_t *att, size_t n,
		     const uint8_t hv_key[32], int pem);

#endif
