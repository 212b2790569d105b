/*
 * Bridge calls with reconnection. Orders always use a fresh connection so that a connection
 * left over from a cleave-hv that has since restarted cannot swallow a ticket: a failure to
 * connect is then certain to mean "not sent".
 */
#include "hvlink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge_msg.h"
#include "crypto.h"
#include "hvsig.h"
#include "le.h"

#define HV_CALL_MS  5000
#define HV_ORDER_MS 60000 /* a wipe stops the VM and writes headers: allow it time */

void
hvlink_init(struct hvlink *h, const char *path)
{
	memset(h, 0, sizeof(*h));
	h->c.fd = -1;
	str_copy(h->path, sizeof(h->path), path);
}

void
hvlink_close(struct hvlink *h)
{
	if (h->up)
		bridge_close(&h->c);
	h->up = 0;
}

static int
hv_connect(struct hvlink *h, int timeout_ms)
{
	int r;

	hvlink_close(h);
	r = bridge_connect(&h->c, h->path, timeout_ms);
	if (r != 0) {
		h->down_errno = -r;
		return HVLINK_E_DOWN;
	}
	h->up = 1;
	return 0;
}

int
hvlink_call(struct hvlink *h, uint32_t fid, const void *req, size_t req_len, void *reply,
	    size_t cap, size_t *reply_len)
{
	int r;

	*reply_len = 0;
	if (!h->up && (r = hv_connect(h, HV_CALL_MS)) != 0)
		return r;
	h->c.timeout_ms = HV_CALL_MS;
	r = bridge_call(&h->c, fid, req, req_len, reply, cap, reply_len);
	if (r == -EPIPE && req_len == 0) {
		/* A connection cleave-hv closed (it restarted): calls without effect retry once. */
		if ((r = hv_connect(h, HV_CALL_MS)) != 0)
			return r;
		r = bridge_call(&h->c, fid, req, req_len, reply, cap, reply_len);
	}
	if (r < CLV_E_IO)
		hvlink_close(h);
	return r;
}

int
hvlink_status(struct hvlink *h, struct clv_status *s)
{
	uint8_t out[64];
	size_t n;
	int r = hvlink_call(h, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &n);

	if (r != CLV_OK)
		return r;
	if (n != sizeof(out) || clv_status_decode(out, s) != CLV_OK)
		return -EPROTO;
	return CLV_OK;
}

int
hvlink_sig_ok(uint16_t alg, const uint8_t hv_key[32], const uint8_t *spki, size_t spki_len,
	      const uint8_t *msg, size_t n, const uint8_t sig[64])
{
	/* One algorithm per enrollment: a TPM device's records are never taken as Ed25519 ones. */
	if (alg != (spki_len != 0 ? WIRE_SIG_ECDSA_P256 : WIRE_SIG_ED25519))
		return 0;
	return hvsig_verify(alg, hv_key, spki, spki_len, msg, n, sig) == 0;
}

int
hvlink_attest(struct hvlink *h, const uint8_t nonce[32], uint8_t raw[ATTEST_LEN],
	      struct attestation *a, const uint8_t *spki, size_t spki_len)
{
	size_t n;
	int r = hvlink_call(h, CLV_FN_ATTEST, nonce, 32, raw, ATTEST_LEN, &n);

	if (r != CLV_OK)
		return r;
	if (n != ATTEST_LEN || attest_decode(raw, n, a) != 0 || memcmp(a->nonce, nonce, 32) != 0 ||
	    !hvlink_sig_ok(a->sig_alg, a->hv_key, spki, spki_len, raw, ATTEST_BODY_LEN,
			   raw + ATTEST_BODY_LEN))
		return -EPROTO;
	return CLV_OK;
}

int
hvlink_tpm_identity(struct hvlink *h, uint8_t *buf, struct clv_tpm_identity *id)
{
	size_t n;
	int r = hvlink_call(h, CLV_FN_TPM_IDENTITY, NULL, 0, buf, CLV_MSG_PAYLOAD_MAX, &n);

	if (r != CLV_OK)
		return r;
	return clv_tpm_identity_decode(buf, n, id) == 0 ? CLV_OK : -EPROTO;
}

int
hvlink_tpm_activate(struct hvlink *h, const uint8_t *blob, size_t blob_len, const uint8_t *secret,
		    size_t secret_len, uint8_t *buf, struct clv_tpm_evidence *ev,
		    struct attestation *a, const uint8_t *spki, size_t spki_len)
{
	uint8_t req[CLV_MSG_PAYLOAD_MAX];
	long rl = clv_tpm_activate_encode(blob, blob_len, secret, secret_len, req, sizeof(req));
	size_t n;
	int r;

	if (rl < 0)
		return CLV_E_INVALID_PARAMETER;
	r = hvlink_call(h, CLV_FN_TPM_ACTIVATE, req, (size_t)rl, buf, CLV_MSG_PAYLOAD_MAX, &n);
	if (r != CLV_OK)
		return r;
	if (clv_tpm_activate_decode(buf, n, ev) != 0 || attest_decode(buf, ATTEST_LEN, a) != 0 ||
	    !hvlink_sig_ok(a->sig_alg, a->hv_key, spki, spki_len, buf, ATTEST_BODY_LEN,
			   buf + ATTEST_BODY_LEN))
		return -EPROTO;
	return CLV_OK;
}

int
hvlink_pin(struct hvlink *h, const uint8_t server_key[32], const char *device_id)
{
	uint8_t req[64] = {0};
	size_t n, len = strlen(device_id);

	if (len == 0 || len >= WIRE_ID_LEN)
		return CLV_E_INVALID_PARAMETER;
	memcpy(req, server_key, 32);
	memcpy(req + 32, device_id, len);
	return hvlink_call(h, CLV_FN_PIN_OWNER, req, sizeof(req), NULL, 0, &n);
}

int
hvlink_receipts(struct hvlink *h, uint8_t (*out)[RECEIPT_LEN], size_t *n)
{
	static uint8_t buf[8 + CLV_RECEIPTS_PER_MSG * RECEIPT_LEN];
	size_t len, count;
	int r = hvlink_call(h, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &len);

	*n = 0;
	if (r != CLV_OK)
		return r;
	if (len < 8)
		return -EPROTO;
	count = buf[0];
	if (count > CLV_RECEIPTS_PER_MSG || len != 8 + count * RECEIPT_LEN)
		return -EPROTO;
	memcpy(out, buf + 8, count * RECEIPT_LEN);
	*n = count;
	return CLV_OK;
}

int
hvlink_receipt_ack(struct hvlink *h, uint64_t seq)
{
	uint8_t req[8];
	size_t n;

	put64(req, seq);
	return hvlink_call(h, CLV_FN_RECEIPT_ACK, req, sizeof(req), NULL, 0, &n);
}

int
hvlink_order(struct hvlink *h, uint32_t fid, const uint8_t ticket[TICKET_LEN],
	     uint8_t receipt[RECEIPT_LEN], int *has_receipt)
{
	size_t n = 0;
	int r = hv_connect(h, HV_CALL_MS);

	*has_receipt = 0;
	if (r != 0)
		return r;
	h->c.timeout_ms = HV_ORDER_MS;
	r = bridge_call(&h->c, fid, ticket, TICKET_LEN, receipt, RECEIPT_LEN, &n);
	if (r < CLV_E_IO)
		hvlink_close(h);
	if (r == CLV_OK && n == RECEIPT_LEN)
		*has_receipt = 1;
	else if (r == CLV_OK && n != 0)
		return -EPROTO;
	return r;
}

const char *
hvlink_strerror(const struct hvlink *h, int st)
{
	static char buf[PATH_MAX + 96];

	if (st == HVLINK_E_DOWN) {
		snprintf(buf, sizeof(buf), "cleave-hv is not running at %s (%s)", h->path,
			 strerror(h->down_errno));
		return buf;
	}
	return bridge_strerror(st);
}
