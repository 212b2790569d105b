/*
 * Byte-exact encoding of bridge messages. Every field is written and read one byte at a time in
 * little-endian order, so the format does not depend on the host's struct layout or endianness.
 * The table below is the single source of payload sizes; ABI.md section 4 describes the same.
 */
#include "bridge_msg.h"
#include "le.h"

#include <errno.h>
#include <string.h>

#include "wire.h"

#define VARIES  (-1)
#define UNKNOWN (-2)
#define BLOB    (-3) /* 8 to CLV_MSG_PAYLOAD_MAX bytes, lengths inside (TPM calls) */

static const struct {
	uint32_t fid;
	long request; /* payload bytes of a request */
	long reply;   /* payload bytes of a successful reply */
} sizes[] = {
	{CLV_FN_VERSION, 0, 8},
	{CLV_FN_FEATURES, 8, 0},
	{CLV_FN_STATUS, 0, 64},
	{CLV_FN_ATTEST, 32, ATTEST_LEN},
	{CLV_FN_PIN_OWNER, 64, 0},
	{CLV_FN_LOCK, TICKET_LEN, RECEIPT_LEN},
	{CLV_FN_UNLOCK, TICKET_LEN, RECEIPT_LEN},
	{CLV_FN_REKEY, TICKET_LEN, RECEIPT_LEN},
	{CLV_FN_WIPE, TICKET_LEN, RECEIPT_LEN},
	{CLV_FN_RENEW_LEASE, TICKET_LEN, 0},
	{CLV_FN_SET_POLICY, TICKET_LEN, 0},
	{CLV_FN_RECEIPTS, 0, VARIES},
	{CLV_FN_RECEIPT_ACK, 8, 0},
	{CLV_FN_COUNTERS, 0, 64},
	{CLV_FN_TPM_IDENTITY, 0, BLOB},
	{CLV_FN_TPM_ACTIVATE, BLOB, BLOB},
};

long
clv_payload_size(uint32_t fid, uint16_t kind)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (sizes[i].fid == fid)
			return kind == CLV_MSG_REQUEST ? sizes[i].request : sizes[i].reply;
	return UNKNOWN;
}

/* Whether n payload bytes are right for this header (errors carry no payload). */
static int
size_ok(uint32_t fid, uint16_t kind, int32_t status, uint32_t n)
{
	long want = clv_payload_size(fid, kind);

	if (kind == CLV_MSG_REPLY && status != CLV_OK)
		return n == 0;
	if (want == BLOB)
		return n >= 8 && n <= CLV_MSG_PAYLOAD_MAX;
	if (want == VARIES)
		return n >= 8 && (n - 8) % RECEIPT_LEN == 0 &&
		       (n - 8) / RECEIPT_LEN <= CLV_RECEIPTS_PER_MSG;
	return want >= 0 && (long)n == want;
}

long
clv_msg_encode(const struct clv_msg_hdr *h, const void *payload, uint8_t *buf, size_t cap)
{
	size_t len = CLV_MSG_HDR_LEN + h->payload_len;

	if (h->payload_len > CLV_MSG_PAYLOAD_MAX || h->reserved != 0 ||
	    (h->kind != CLV_MSG_REQUEST && h->kind != CLV_MSG_REPLY) ||
	    (h->kind == CLV_MSG_REQUEST && h->status != 0) ||
	    (clv_payload_size(h->fid, h->kind) != UNKNOWN &&
	     !size_ok(h->fid, h->kind, h->status, h->payload_len)))
		return -EINVAL;
	if (cap < len)
		return -ENOSPC;
	put32(buf, CLV_MSG_MAGIC);
	put16(buf + 4, h->abi_major);
	put16(buf + 6, h->kind);
	put32(buf + 8, h->fid);
	put32(buf + 12, (uint32_t)h->status);
	put64(buf + 16, h->request_id);
	put32(buf + 24, h->payload_len);
	put32(buf + 28, 0);
	if (h->payload_len > 0)
		memcpy(buf + CLV_MSG_HDR_LEN, payload, h->payload_len);
	return (long)len;
}

int
clv_msg_decode(const uint8_t *buf, size_t len, struct clv_msg_hdr *h, const uint8_t **payload)
{
	if (len < CLV_MSG_HDR_LEN || len > CLV_MSG_HDR_LEN + CLV_MSG_PAYLOAD_MAX)
		return CLV_E_INVALID_PARAMETER;
	h->magic = get32(buf);
	h->abi_major = get16(buf + 4);
	h->kind = get16(buf + 6);
	h->fid = get32(buf + 8);
	h->status = (int32_t)get32(buf + 12);
	h->request_id = get64(buf + 16);
	h->payload_len = get32(buf + 24);
	h->reserved = get32(buf + 28);
	if (h->magic != CLV_MSG_MAGIC || h->reserved != 0 ||
	    (h->kind != CLV_MSG_REQUEST && h->kind != CLV_MSG_REPLY) ||
	    h->payload_len != len - CLV_MSG_HDR_LEN ||
	    (h->kind == CLV_MSG_REQUEST && h->status != 0))
		return CLV_E_INVALID_PARAMETER;
	if (h->abi_major != CLV_ABI_MAJOR || clv_payload_size(h->fid, h->kind) == UNKNOWN)
		return CLV_E_NOT_SUPPORTED;
	if (!size_ok(h->fid, h->kind, h->status, h->payload_len))
		return CLV_E_INVALID_PARAMETER;
	*payload = buf + CLV_MSG_HDR_LEN;
	return CLV_OK;
}

void
clv_status_encode(const struct clv_status *s, uint8_t out[64])
{
	put32(out, s->abi_version);
	put32(out + 4, s->state);
	put64(out + 8, s->key_epoch);
	put64(out + 16, s->ticket_counter);
	put64(out + 24, s->receipt_seq);
	put64(out + 32, s->lease_until);
	memcpy(out + 40, s->measurement, 16);
	put64(out + 56, s->flags);
}

int
clv_status_decode(const uint8_t in[64], struct clv_status *s)
{
	s->abi_version = get32(in);
	s->state = get32(in + 4);
	s->key_epoch = get64(in + 8);
	s->ticket_counter = get64(in + 16);
	s->receipt_seq = get64(in + 24);
	s->lease_until = get64(in + 32);
	memcpy(s->measurement, in + 40, 16);
	s->flags = get64(in + 56);
	if ((s->flags & ~(uint64_t)CLV_STATUS_FLAGS_KNOWN) != 0 || s->state < HV_STATE_ACTIVE ||
	    s->state > HV_STATE_ERASED)
		return CLV_E_INVALID_PARAMETER;
	return CLV_OK;
}

void
clv_counters_encode(const struct clv_counters *k, uint8_t out[64])
{
	put64(out, k->exits);
	put64(out + 8, k->calls_port);
	put64(out + 16, k->calls_mmio);
	put64(out + 24, k->calls_hvc);
	memset(out + 32, 0, 32);
}

/* The reserved words are not checked: a later minor may fill them (ABI.md §2). */
void
clv_counters_decode(const uint8_t in[64], struct clv_counters *k)
{
	memset(k, 0, sizeof(*k));
	k->exits = get64(in);
	k->calls_port = get64(in + 8);
	k->calls_mmio = get64(in + 16);
	k->calls_hvc = get64(in + 24);
}

int
clv_tpm_identity_decode(const uint8_t *buf, size_t n, struct clv_tpm_identity *id)
{
	const uint8_t **part[4] = {&id->ek_cert, &id->ek_public, &id->ak_public, &id->ak_spki};
	size_t *len[4] = {&id->ek_cert_len, &id->ek_public_len, &id->ak_public_len,
			  &id->ak_spki_len};
	size_t off = 8;

	if (n < 8)
		return -EPROTO;
	for (int i = 0; i < 4; i++) {
		*len[i] = get16(buf + 2 * i);
		if (*len[i] > n - off)
			return -EPROTO;
		*part[i] = buf + off;
		off += *len[i];
	}
	return off == n ? 0 : -EPROTO;
}

long
clv_tpm_activate_encode(const uint8_t *blob, size_t blob_len, const uint8_t *secret,
			size_t secret_len, uint8_t *out, size_t cap)
{
	size_t n = 8 + blob_len + secret_len;

	if (blob_len == 0 || secret_len == 0 || blob_len > UINT16_MAX || secret_len > UINT16_MAX ||
	    n > CLV_MSG_PAYLOAD_MAX)
		return -EINVAL;
	if (n > cap)
		return -ENOSPC;
	put16(out, (uint16_t)blob_len);
	put16(out + 2, (uint16_t)secret_len);
	memset(out + 4, 0, 4);
	memcpy(out + 8, blob, blob_len);
	memcpy(out + 8 + blob_len, secret, secret_len);
	return (long)n;
}

int
clv_tpm_activate_decode(const uint8_t *buf, size_t n, struct clv_tpm_evidence *ev)
{
	const uint8_t *p = buf + ATTEST_LEN;

	if (n < ATTEST_LEN + 8)
		return -EPROTO;
	ev->attestation = buf;
	ev->quote_len = get16(p);
	ev->quote_sig_len = get16(p + 2);
	ev->log_count = get16(p + 4);
	if (get16(p + 6) != 0 ||
	    ATTEST_LEN + 8 + ev->quote_len + ev->quote_sig_len + ev->log_count * 32 != n)
		return -EPROTO;
	ev->quote = p + 8;
	ev->quote_sig = ev->quote + ev->quote_len;
	ev->pcr_log = ev->quote_sig + ev->quote_sig_len;
	return 0;
}
