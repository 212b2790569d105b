/*
 * The agent's side of the hypercall bridge: a thin layer over hypercall-bridge/lib's client
 * that reconnects after cleave-hv restarts, checks attestations before trusting them, and tells
 * apart "cleave-hv was never reached" (safe to try again) from "the call may have happened"
 * (the journal must find out). It does not decide what to do with answers.
 */
#ifndef CLEAVE_AGENT_HVLINK_H
#define CLEAVE_AGENT_HVLINK_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge_client.h"
#include "bridge_msg.h"
#include "cleave_abi.h"
#include "util.h"
#include "wire.h"

/* cleave-hv's socket when neither --hv-socket nor $CLEAVE_HV_SOCKET says otherwise. */
#define HVLINK_DEFAULT_SOCKET "/run/cleave-hv/hv.sock"
/* Returned when the socket could not be connected: the request never left. */
#define HVLINK_E_DOWN (-2000)

struct hvlink {
	char path[PATH_MAX];
	struct bridge_client c;
	int up;
	int down_errno; /* why the last connect failed */
};

void hvlink_init(struct hvlink *h, const char *path);
void hvlink_close(struct hvlink *h);

/*
 * One call (see bridge_call): connects first when needed. Returns CLV_OK or a CLV_E_* status,
 * HVLINK_E_DOWN when cleave-hv could not be reached, or a negative errno for a transport
 * failure after the request may have arrived (the connection is then closed).
 */
int hvlink_call(struct hvlink *h, uint32_t fid, const void *req, size_t req_len, void *reply,
		size_t cap, size_t *reply_len);

int hvlink_status(struct hvlink *h, struct clv_status *s);
/*
 * Whether sig over msg is the hypervisor's: made with the algorithm its key implies (ECDSA
 * P-256 when spki_len is not 0, a TPM's key whose SHA-256 is hv_key; else Ed25519, hv_key the
 * key itself) and valid. 1 or 0.
 */
int hvlink_sig_ok(uint16_t alg, const uint8_t hv_key[32], const uint8_t *spki, size_t spki_len,
		  const uint8_t *msg, size_t n, const uint8_t sig[64]);
/*
 * An attestation over nonce, checked: it decodes, echoes the nonce and is signed by the key it
 * names (hvlink_sig_ok; spki NULL for a file-keystore cleave-hv). raw and a are filled on
 * CLV_OK; a forged or mismatched answer is -EPROTO.
 */
int hvlink_attest(struct hvlink *h, const uint8_t nonce[32], uint8_t raw[ATTEST_LEN],
		  struct attestation *a, const uint8_t *spki, size_t spki_len);
/*
 * TPM_IDENTITY of a cleave-hv started with --tpm, into buf (CLV_MSG_PAYLOAD_MAX bytes); id
 * points into buf. CLV_OK, a CLV_E_* status, or -EPROTO when the reply's lengths lie.
 */
int hvlink_tpm_identity(struct hvlink *h, uint8_t *buf, struct clv_tpm_identity *id);
/*
 * TPM_ACTIVATE with the server's credential (blob, secret) into buf (CLV_MSG_PAYLOAD_MAX bytes):
 * ev points into buf, a is its attestation, checked as hvlink_attest checks one, with the AK's
 * spki (its nonce is the secret the TPM recovered, which only the server knew). CLV_E_BAD_TICKET
 * when the TPM refused the credential.
 */
int hvlink_tpm_activate(struct hvlink *h, const uint8_t *blob, size_t blob_len,
			const uint8_t *secret, size_t secret_len, uint8_t *buf,
			struct clv_tpm_evidence *ev, struct attestation *a, const uint8_t *spki,
			size_t spki_len);
/* PIN_OWNER(server key, device id). CLV_E_NOT_REQUIRED means: already pinned to the same. */
int hvlink_pin(struct hvlink *h, const uint8_t server_key[32], const char *device_id);
/* Pending receipts (at most CLV_RECEIPTS_PER_MSG) into out; *n of them. */
int hvlink_receipts(struct hvlink *h, uint8_t (*out)[RECEIPT_LEN], size_t *n);
int hvlink_receipt_ack(struct hvlink *h, uint64_t seq);
/*
 * Passes a ticket to fid on a fresh connection. On CLV_OK, *has_receipt says whether a receipt
 * (written to receipt) came back; LEASE and POLICY answer without one.
 */
int hvlink_order(struct hvlink *h, uint32_t fid, const uint8_t ticket[TICKET_LEN],
		 uint8_t receipt[RECEIPT_LEN], int *has_receipt);

/* Whether a status means the request surely did not reach cleave-hv. */
static inline int
hvlink_unreached(int st)
{
	return st == HVLINK_E_DOWN;
}
/* A sentence for st (any status hvlink returns). Borrowed, static or in h. */
const char *hvlink_strerror(const struct hvlink *h, int st);

#endif
