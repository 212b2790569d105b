/*
 * A hypervisor's signature on its attestations and receipts, whichever key made it
 * (common/wire.h WIRE_SIG_*): Ed25519 by the file keystore's key, whose raw public key is the
 * record's hv_key; or ECDSA P-256 with SHA-256 by a key inside a TPM (hypercall-bridge/TPM.md),
 * whose DER SubjectPublicKeyInfo the verifier keeps and whose SHA-256 is the record's hv_key.
 * The ECDSA signature travels as r || s; auditors' tools (openssl dgst -verify) want DER, which
 * hvsig_ecdsa_der gives.
 */
#ifndef CLEAVE_HVSIG_H
#define CLEAVE_HVSIG_H

#include <stddef.h>
#include <stdint.h>

#define HVSIG_SPKI_MAX 128 /* DER SubjectPublicKeyInfo of a P-256 key is 91 bytes */
#define HVSIG_DER_MAX  72  /* DER ECDSA-Sig-Value of P-256 */

/*
 * Verifies sig (64 bytes) over msg. WIRE_SIG_ED25519: hv_key is the public key (spki unused).
 * WIRE_SIG_ECDSA_P256: spki must be a P-256 public key whose SHA-256 is hv_key. 0 when valid;
 * -EBADMSG when the signature does not verify; -EINVAL for an unknown algorithm, a key that is
 * not what hv_key names, or not a P-256 key.
 */
int hvsig_verify(uint16_t alg, const uint8_t hv_key[32], const uint8_t *spki, size_t spki_len,
		 const void *msg, size_t n, const uint8_t sig[64]);
/* The record's hv_key for a P-256 key: SHA-256 of its DER SubjectPublicKeyInfo. 0 or -EINVAL. */
int hvsig_key_id(const uint8_t *spki, size_t spki_len, uint8_t hv_key[32]);
/* r || s as a DER ECDSA-Sig-Value (openssl's form) into der (cap >= HVSIG_DER_MAX). 0 or -errno. */
int hvsig_ecdsa_der(const uint8_t sig[64], uint8_t *der, size_t cap, size_t *len);
/* PEM ("-----BEGIN PUBLIC KEY-----") of a P-256 DER SPKI; *pem is the caller's (free()). 0 or -errno. */
int hvsig_spki_pem(const uint8_t *spki, size_t len, char **pem);
/* The DER of an ECDSA-Sig-Value as r || s (the TPM's and the wire's form). 0 or -EINVAL. */
int hvsig_ecdsa_raw(const uint8_t *der, size_t len, uint8_t sig[64]);

#endif
