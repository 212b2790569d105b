/*
 * A device's hypervisor half on a TPM, for tests (issue 13, hypercall-bridge/TPM.md §3): one AK
 * of a manufactured swtpm (swtpmtest.h) through cleave-hv's own TPM layer (hv/tpm.h), and the
 * requests a device with it sends the server: the nonce request with its TPM identity, the
 * credential's activation, a version 3 attestation signed by the AK, the quote over PCR 23 and
 * the enrollment with its evidence (the agent half is testlib's simulated device key). One
 * device is open at a time (swtpm serves one connection): opening one closes the other.
 */
#ifndef CLEAVE_TPMDEV_H
#define CLEAVE_TPMDEV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "swtpmtest.h"
#include "testlib.h"
#include "tpm.h"
#include "wire.h"

/* A device's hypervisor half: one AK of a TPM, and what it sends the server. */
struct tdev {
	struct tpm *tpm;
	/* what tdev_measure extends into PCR 23: the VM config, then the guest image (attested) */
	uint8_t log[2][32];
	uint8_t ek_pub[TPM_PUBLIC_MAX], ek_cert[TPM_CERT_MAX], ak_pub[TPM_PUBLIC_MAX];
	uint8_t spki[TPM_SPKI_MAX], hv_key[32];
	size_t ek_pub_len, ek_cert_len, ak_pub_len, spki_len;
};

/*
 * Opens t with the AK kept in t's directory ak (made there the first time): its EK, EK
 * certificate, AK public, SPKI, hv_key and log. 0 or -1.
 */
int tdev_open(struct tdev *d, const struct swtpm *t, const char *ak);
void tdev_close(struct tdev *d);
/* Closes whichever device is open (a case that failed half-way). */
void tdev_close_any(void);
/* What cleave-hv does before the first vCPU runs: extends PCR 23 with d->log. 0 or -1. */
int tdev_measure(struct tdev *d);
/* Base64 of n bytes as a JSON string. */
json_t *tdev_b64(const void *p, size_t n);
/* POSTs j (consumed) to path. 0 or -1 (transport). */
int tdev_post(struct client *c, const char *path, json_t *j, struct resp *r);
/* The nonce request: tpm is its identity member (consumed), NULL for a plain nonce. */
int tdev_nonce_req(struct client *c, const char *tok, json_t *tpm, struct resp *r);
/* d's identity member for the nonce request: {ek_cert, ek_public, ak_public}. */
json_t *tdev_id(const struct tdev *d);
/* Decodes base64 member name of j into out; its length, or -1. */
long tdev_member_b64(json_t *j, const char *name, uint8_t *out, size_t cap);
/* Activates the credential of a nonce answer (which must carry no plain nonce): the nonce. */
int tdev_activate(struct tdev *d, const struct resp *r, uint8_t nonce[32]);
/* A version 3 attestation over nonce signed by d's AK; owner the pinned server key or NULL. */
int tdev_attest(struct tdev *d, const uint8_t nonce[32], const uint8_t owner[32],
		uint8_t out[ATTEST_LEN]);
/* d's quote over PCR 23 for the attestation att (qualifying data as TPM.md §3). */
int tdev_quote(struct tdev *d, const uint8_t *att, struct tpm_quote *q);
/* The enrollment's tpm member: d's ak_public, the quote q, the first n entries of log. */
json_t *tdev_evidence(const struct tdev *d, const struct tpm_quote *q, uint8_t (*log)[32],
		      size_t n);
/*
 * POST /device/v1/enroll: sim's device key, d's hv_key and SPKI (none when d->spki_len is 0),
 * the attestation att, tpm the evidence (consumed; NULL: none).
 */
int tdev_enroll_req(struct client *c, const char *tok, const uint8_t nonce[32],
		    struct device_sim *sim, const struct tdev *d, const uint8_t *att, json_t *tpm,
		    struct resp *r);

#endif
