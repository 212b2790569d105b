/*
 * cleave-hv's TPM calls on the bridge (ABI.md §2, TPM.md §3): the measurement extended into
 * PCR 23 before any vCPU runs, the TPM identity the agent sends at enrollment (EK certificate,
 * EK public, AK public, AK SPKI), and the activation of the server's credential, whose secret
 * becomes the nonce of an attestation quoted over PCR 23. Agent-only, like every management
 * call (dispatch.c); absent (NOT_SUPPORTED) with the file keystore.
 */
#include "hv.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "log.h"

#ifndef CLEAVE_NO_TPM
#include "tpm.h"

#define QUOTE_TAG "cleave-quote"

static void
put16le(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static size_t
get16le(const uint8_t *p)
{
	return (size_t)p[0] | (size_t)p[1] << 8;
}

/*
 * Reply: u16 ek_cert_len, u16 ek_public_len, u16 ak_public_len, u16 ak_spki_len, then the
 * four in that order. A TPM without an EK certificate answers with an empty one.
 */
static int64_t
h_tpm_identity(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	size_t len[4] = {0}, off = 8;
	int r;

	if (c->in_len != 0 || c->out_cap < 8)
		return CLV_E_INVALID_PARAMETER;
	r = tpm_ek_cert(h->tpm, c->out + off, c->out_cap - off, &len[0]);
	if (r == -ENOENT)
		len[0] = 0, r = 0;
	off += len[0];
	if (r == 0)
		r = tpm_ek_public(h->tpm, c->out + off, c->out_cap - off, &len[1]);
	off += len[1];
	if (r == 0)
		r = tpm_ak_public(h->tpm, c->out + off, c->out_cap - off, &len[2]);
	off += len[2];
	if (r == 0)
		r = tpm_ak_spki(h->tpm, c->out + off, c->out_cap - off, &len[3]);
	off += len[3];
	if (r != 0)
		return r == -EMSGSIZE ? CLV_E_INVALID_STATE : CLV_E_IO;
	for (int i = 0; i < 4; i++)
		put16le(c->out + 2 * i, len[i]);
	c->out_len = off;
	return CLV_OK;
}

/* qual = SHA-256("cleave-quote" || attestation body): the quote names this attestation. */
static void
quote_qual(const uint8_t *att, uint8_t qual[32])
{
	const void *parts[2] = {QUOTE_TAG, att};
	size_t lens[2] = {sizeof(QUOTE_TAG) - 1, ATTEST_BODY_LEN};

	crypto_sha256_parts(parts, lens, 2, qual);
}

/*
 * Appends u16 attest_len, u16 sig_len, u16 nlog, u16 0, the quote's TPMS_ATTEST, its
 * TPMT_SIGNATURE and the nlog measurements of the PCR 23 event log after the attestation.
 */
static int64_t
quote_out(struct hv *h, struct dispatch_call *c)
{
	struct tpm_quote q;
	uint8_t qual[32], *p = c->out + ATTEST_LEN;
	size_t need;

	quote_qual(c->out, qual);
	if (tpm_quote(h->tpm, qual, sizeof(qual), &q) != 0)
		return CLV_E_IO;
	need = ATTEST_LEN + 8 + q.attest_len + q.sig_len + (size_t)h->npcr * 32;
	if (need > c->out_cap)
		return CLV_E_INVALID_STATE;
	put16le(p, q.attest_len);
	put16le(p + 2, q.sig_len);
	put16le(p + 4, h->npcr);
	put16le(p + 6, 0);
	p += 8;
	memcpy(p, q.attest, q.attest_len), p += q.attest_len;
	memcpy(p, q.sig, q.sig_len), p += q.sig_len;
	memcpy(p, h->pcr_log, (size_t)h->npcr * 32);
	c->out_len = need;
	return CLV_OK;
}

/*
 * Request: u16 blob_len, u16 secret_len, u32 0, the TPM2B_ID_OBJECT, the TPM2B_ENCRYPTED_SECRET.
 * The recovered secret must be 32 bytes: it is the attestation's nonce. Reply: the attestation
 * (ATTEST_LEN) then quote_out's part. A credential made for another TPM or AK is BAD_TICKET.
 */
static int64_t
h_tpm_activate(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	uint8_t nonce[TPM_SECRET_MAX];
	size_t bl, sl, n = 0;
	int r;

	if (c->in_len < 8 || c->out_cap < ATTEST_LEN + 8)
		return CLV_E_INVALID_PARAMETER;
	bl = get16le(c->in);
	sl = get16le(c->in + 2);
	if (c->in[4] | c->in[5] | c->in[6] | c->in[7] || bl == 0 || sl == 0 ||
	    8 + bl + sl != c->in_len)
		return CLV_E_INVALID_PARAMETER;
	r = tpm_activate(h->tpm, c->in + 8, bl, c->in + 8 + bl, sl, nonce, sizeof(nonce), &n);
	if (r == -EKEYREJECTED || r == -EINVAL || (r == 0 && n != 32)) {
		log_warn("cleave-hv: a credential not made for this TPM's EK and AK was refused");
		return CLV_E_BAD_TICKET;
	}
	if (r != 0)
		return CLV_E_IO;
	r = trust_attest(&h->trust, nonce, (uint16_t)h->state, h->measurement, h->key_epoch,
			 h->clock(), c->out);
	explicit_bzero(nonce, sizeof(nonce));
	if (r != 0)
		return CLV_E_IO;
	return quote_out(h, c);
}

/* The sealed root key's deadline: the lease end + the policy's wipe-after, or far. */
static uint64_t
seal_deadline(const struct hv *h)
{
	const struct trust *t = &h->trust;

	if (t->lease_tpm_end == 0 || t->policy[1] == 0 || t->policy[1] > UINT32_MAX)
		return KEYS_DEADLINE_FAR;
	return t->lease_tpm_end + t->policy[1] * 1000;
}

/* The host's CLOCK_BOOTTIME in ms: never set back, and it counts suspend (the TPM may not). */
static uint64_t
boot_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* TPM2_ReadClock, kept as the last reading. */
static int
clock_read(struct hv *h, struct tpm_clock *ck)
{
	int r = tpm_read_clock(h->tpm, ck);

	if (r != 0)
		return r;
	h->tpm_clock_at = boot_ms();
	h->tpm_clock_ms = ck->clock_ms;
	h->tpm_reset_count = ck->reset_count;
	h->tpm_restart_count = ck->restart_count;
	h->tpm_clock_safe = ck->safe;
	h->tpm_clock_reads++;
	log_debug("cleave-hv: TPM clock read %llu: %llu ms (reset %u, restart %u%s)",
		  (unsigned long long)h->tpm_clock_reads, (unsigned long long)ck->clock_ms,
		  ck->reset_count, ck->restart_count, ck->safe ? "" : ", not safe");
	return 0;
}

/*
 * The next moment on the TPM clock after now_ms at which the offline policy acts (lock, wipe),
 * as the trust state and the corporate half's state say; UINT64_MAX when none is ahead.
 */
static uint64_t
next_deadline(const struct hv *h, uint64_t now_ms)
{
	const struct trust *t = &h->trust;
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < 2; i++) {
		uint64_t s = t->policy[i], d;

		if (s == 0 || s > UINT32_MAX || (i == 0 && h->state != HV_STATE_ACTIVE))
			continue;
		d = t->lease_tpm_end + s * 1000;
		if (d > now_ms && d < next)
			next = d;
	}
	return next;
}

/*
 * 1 when the last reading will not do: none yet, older than HV_TPM_CLOCK_MAX_AGE_MS, or the
 * host's elapsed time since it says the next deadline may have come. Host time only decides
 * when to ask the TPM again; what the TPM answers decides the lease.
 */
static int
clock_stale(const struct hv *h)
{
	uint64_t since = boot_ms() - h->tpm_clock_at, next;

	if (h->tpm_clock_at == 0 || since >= HV_TPM_CLOCK_MAX_AGE_MS)
		return 1;
	next = next_deadline(h, h->tpm_clock_ms);
	return next != UINT64_MAX && h->tpm_clock_ms + since >= next;
}

int
hv_tpm_lease(struct hv *h, uint64_t lease_until)
{
	struct tpm_clock ck;
	uint64_t now = h->clock() / 1000;
	int r = clock_read(h, &ck);

	if (r != 0)
		return r;
	/* The host clock is read once, to convert; from now on only the TPM's counts. */
	h->trust.lease_tpm_end = ck.clock_ms + (lease_until > now ? (lease_until - now) * 1000 : 0);
	h->trust.lease_tpm_reset = ck.reset_count | (uint64_t)ck.restart_count << 32;
	return 0;
}

void
hv_tpm_reseal(struct hv *h)
{
	uint64_t d = seal_deadline(h);
	int r;

	keys_tpm_deadline(d);
	if (h->vol == NULL || (h->state != HV_STATE_ACTIVE && h->state != HV_STATE_LOCKED))
		return;
	r = keys_root_reseal(h->trust.dirfd, h->key_epoch, d);
	if (r != 0)
		log_warn("cleave-hv: cannot seal the root key again with the new deadline (%d)", r);
}

int
hv_tpm_offline(struct hv *h, int64_t *offline)
{
	struct tpm_clock ck = {
		.clock_ms = h->tpm_clock_ms,
		.reset_count = h->tpm_reset_count,
		.restart_count = h->tpm_restart_count,
		.safe = h->tpm_clock_safe,
	};
	int r = clock_stale(h) ? clock_read(h, &ck) : 0;

	if (r != 0)
		return r;
	/*
	 * Clock can have fallen back (up to its NV save interval) only across a reset, or a
	 * restart that left it unsafe, since the lease: then it cannot say how long it was. A
	 * clock that is merely still unsafe after a reset before the lease fell back before.
	 */
	if (ck.reset_count != (uint32_t)h->trust.lease_tpm_reset ||
	    (ck.restart_count != (uint32_t)(h->trust.lease_tpm_reset >> 32) && !ck.safe))
		return 1;
	*offline = ((int64_t)ck.clock_ms - (int64_t)h->trust.lease_tpm_end) / 1000;
	return 0;
}

/*
 * Records the wipe counter's value before the erase durably (wipe_before = value + 1, 0 being
 * "none"), once per wipe: a resumed wipe finds it and keeps it. keys_root_revoke then moves the
 * counter only from that value, so the receipt's before -> after is one step however often the
 * wipe was resumed.
 */
int
hv_tpm_wipe_begin(struct hv *h)
{
	uint64_t v = 0;
	int r = 0;

	if (h->tpm == NULL)
		return 0;
	if (h->trust.wipe_before == 0) {
		r = keys_wipe_counter(&v);
		if (r == 0) {
			h->trust.wipe_before = v + 1;
			r = trust_save(&h->trust);
			if (r != 0)
				h->trust.wipe_before = 0;
		}
	}
	if (r == 0)
		keys_tpm_wipe_base(h->trust.wipe_before - 1);
	return r;
}

void
hv_tpm_receipt(struct hv *h, struct receipt *rc)
{
	uint64_t v = 0;

	if (h->tpm == NULL || keys_wipe_counter(&v) != 0)
		return;
	rc->wipe_counter_after = v;
	rc->wipe_counter_before = h->trust.wipe_before != 0 ? h->trust.wipe_before - 1 : v;
}

int
hv_tpm_open(struct hv *h)
{
	int r = keys_tpm_use(h->tpm);

	if (r == 0) {
		keys_tpm_deadline(seal_deadline(h));
		r = tpm_pcr_reset(h->tpm);
	}

	/* Before any vCPU: the VM boots only after hv_open (main's serve_open). */
	if (r == 0)
		r = tpm_pcr_extend(h->tpm, h->measurement);
	if (r != 0) {
		log_err("cleave-hv: cannot measure the corporate VM into PCR 23");
		return r;
	}
	memcpy(h->pcr_log[0], h->measurement, 32);
	h->npcr = 1;
	dispatch_register(&h->d, CLV_FN_TPM_IDENTITY, h_tpm_identity);
	dispatch_register(&h->d, CLV_FN_TPM_ACTIVATE, h_tpm_activate);
	return 0;
}

int
hv_tpm_connect(const char *tcti, struct tpm **out)
{
	int r = tpm_open(tcti, out);

	if (r != 0)
		log_err("cleave-hv: cannot open the TPM %s (%d)", tcti, r);
	return r;
}

void
hv_tpm_disconnect(struct tpm *t)
{
	tpm_close(t);
}

#else /* CLEAVE_NO_TPM */

int
hv_tpm_open(struct hv *h)
{
	(void)h;
	return -ENOTSUP;
}

int
hv_tpm_lease(struct hv *h, uint64_t lease_until)
{
	(void)h, (void)lease_until;
	return -ENOTSUP;
}

void
hv_tpm_reseal(struct hv *h)
{
	(void)h;
}

int
hv_tpm_offline(struct hv *h, int64_t *offline)
{
	(void)h, (void)offline;
	return -ENOTSUP;
}

int
hv_tpm_wipe_begin(struct hv *h)
{
	(void)h;
	return 0;
}

void
hv_tpm_receipt(struct hv *h, struct receipt *rc)
{
	(void)h, (void)rc;
}

int
hv_tpm_connect(const char *tcti, struct tpm **out)
{
	(void)tcti;
	*out = NULL;
	log_err("cleave-hv: this build has no TPM support (tpm2-tss): --tpm cannot be used");
	return -ENOTSUP;
}

void
hv_tpm_disconnect(struct tpm *t)
{
	(void)t;
}

#endif
