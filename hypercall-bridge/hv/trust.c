/*
 * Trust state of cleave-hv, kept in two files of the private state directory: identity.key
 * (PKCS#8, 0600; with --tpm the TPM's attestation key blob instead, trust_tpm.c) and
 * trust.state (a fixed binary record with a SHA-256 checksum, replaced atomically). An accepted
 * ticket's counter and the order it carries (the journal) become durable in one write, and the
 * order's receipt replaces the journal in one write, so after a crash at any point a ticket was
 * either never accepted or is carried out and receipted exactly once. The file identity key
 * stands in for a key held by the phone's secure hardware; on a Linux host the state
 * directory's permissions are what protect it.
 */
#include "trust.h"
#include "le.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"
#include "fileio.h"
#include "log.h"
#include "util.h"

#define STATE_MAGIC    "CLVTRST5"
#define STATE_MAGIC_V4 "CLVTRST4" /* without the TPM state counter: read, never written */
#define STATE_MAGIC_V3                                                                             \
	"CLVTRST3" /* the same record without the order journal: read, never written */
#define STATE_NAME "trust.state"
/* magic 8, pinned 8, owner 32, device 32, counter 8, lease counter 8, seq 8, hash 32, lease 8,
 * policy 32, failed unlocks 8, npending 8, pending 16 * 320, [order: type 8, epoch 8,
 * started 8, intent 32, ticket 256,] [TPM: state_nv 8, lease end 8, lease reset 8, wipe
 * counter before 8,] checksum 32 */
#define STATE_V3_LEN                                                                               \
	(8 + 8 + 32 + 32 + 8 + 8 + 8 + 32 + 8 + 32 + 8 + 8 + TRUST_PENDING_MAX * RECEIPT_LEN + 32)
#define ORDER_LEN    (8 + 8 + 8 + 32 + TICKET_LEN)
#define STATE_V4_LEN (STATE_V3_LEN + ORDER_LEN)
#define STATE_LEN    (STATE_V4_LEN + 32)

static int
path_of(const struct trust *t, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", t->dir, name);

	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static uint8_t *
order_put(uint8_t *p, const struct trust_order *o)
{
	put64(p, o->type), p += 8;
	put64(p, o->epoch_before), p += 8;
	put64(p, o->started_ms), p += 8;
	memcpy(p, o->intent, 32), p += 32;
	memcpy(p, o->ticket, TICKET_LEN);
	return p + TICKET_LEN;
}

static void
order_get(const uint8_t *p, struct trust_order *o)
{
	o->type = (uint16_t)get64(p), p += 8;
	o->epoch_before = get64(p), p += 8;
	o->started_ms = get64(p), p += 8;
	memcpy(o->intent, p, 32), p += 32;
	memcpy(o->ticket, p, TICKET_LEN);
}

int
trust_save(struct trust *t)
{
	uint8_t buf[STATE_LEN], *p = buf;

	memset(buf, 0, sizeof(buf));
	memcpy(p, STATE_MAGIC, 8), p += 8;
	put64(p, (uint64_t)t->pinned), p += 8;
	memcpy(p, t->owner, 32), p += 32;
	memcpy(p, t->device_id, 32), p += 32;
	put64(p, t->counter), p += 8;
	put64(p, t->lease_counter), p += 8;
	put64(p, t->receipt_seq), p += 8;
	memcpy(p, t->last_receipt_hash, 32), p += 32;
	put64(p, t->lease_until), p += 8;
	for (int i = 0; i < 4; i++)
		put64(p, t->policy[i]), p += 8;
	put64(p, t->failed_unlocks), p += 8;
	put64(p, t->npending), p += 8;
	memcpy(p, t->pending, sizeof(t->pending)), p += sizeof(t->pending);
	p = order_put(p, &t->order);
	put64(p, t->state_nv), p += 8;
	put64(p, t->lease_tpm_end), p += 8;
	put64(p, t->lease_tpm_reset), p += 8;
	put64(p, t->wipe_before), p += 8;
	crypto_sha256(buf, (size_t)(p - buf), p);
	return durable_replace(t->dirfd, STATE_NAME, buf, sizeof(buf));
}

/* Saves t; when that fails, puts back *before so that memory says what the disk says. */
static int
save_or_undo(struct trust *t, const struct trust *before)
{
	int r = trust_save(t);

	if (r != 0)
		*t = *before;
	return r;
}

static int
load_state(struct trust *t)
{
	char path[PATH_MAX];
	uint8_t sum[32];
	size_t n = 0;
	uint8_t *buf, *p;
	int r = path_of(t, STATE_NAME, path, sizeof(path)), v3, v4;

	if (r != 0)
		return r;
	buf = (uint8_t *)file_read_all(path, STATE_LEN, &n);
	if (buf == NULL)
		return errno == ENOENT ? -ENOENT : -EIO;
	p = buf;
	/* A version 3 record (an older cleave-hv) has no journal: no order was in flight. */
	v3 = n == STATE_V3_LEN && memcmp(buf, STATE_MAGIC_V3, 8) == 0;
	/* A version 4 record has no state counter: it was never bound to a TPM (state_nv 0). */
	v4 = n == STATE_V4_LEN && memcmp(buf, STATE_MAGIC_V4, 8) == 0;
	crypto_sha256(buf, n >= 32 ? n - 32 : 0, sum);
	if ((n != STATE_LEN || memcmp(buf, STATE_MAGIC, 8) != 0) && !v3 && !v4)
		n = 0;
	if (n == 0 || memcmp(sum, buf + n - 32, 32) != 0) {
		log_err("cleave-hv: %s is corrupted; refusing to start (restore it, or wipe "
			"the state directory to start over)",
			path);
		free(buf);
		return -EBADMSG;
	}
	p += 8;
	t->pinned = get64(p) != 0, p += 8;
	memcpy(t->owner, p, 32), p += 32;
	memcpy(t->device_id, p, 32), p += 32;
	t->device_id[WIRE_ID_LEN - 1] = '\0';
	t->counter = get64(p), p += 8;
	t->lease_counter = get64(p), p += 8;
	t->receipt_seq = get64(p), p += 8;
	memcpy(t->last_receipt_hash, p, 32), p += 32;
	t->lease_until = get64(p), p += 8;
	for (int i = 0; i < 4; i++)
		t->policy[i] = get64(p), p += 8;
	t->failed_unlocks = get64(p), p += 8;
	t->npending = (unsigned)MIN(get64(p), (uint64_t)TRUST_PENDING_MAX), p += 8;
	memcpy(t->pending, p, sizeof(t->pending)), p += sizeof(t->pending);
	if (!v3)
		order_get(p, &t->order), p += ORDER_LEN;
	if (!v3 && !v4) {
		t->state_nv = get64(p), p += 8;
		t->lease_tpm_end = get64(p), p += 8;
		t->lease_tpm_reset = get64(p), p += 8;
		t->wipe_before = get64(p);
	}
	free(buf);
	return 0;
}

/* The file keystore's Ed25519 identity: identity.key, created on first use. */
static int
file_identity(struct trust *t)
{
	char path[PATH_MAX];
	int r = path_of(t, "identity.key", path, sizeof(path));

	if (r == 0)
		r = ed25519_key_load(path, &t->id);
	if (r == -ENOENT) {
		r = ed25519_key_generate(&t->id);
		if (r == 0)
			r = ed25519_key_save(t->id, path);
		if (r == 0)
			log_info("cleave-hv: created identity key %s", path);
	}
	if (r == 0) {
		ed25519_key_public(t->id, t->hv_key);
		t->sig_alg = WIRE_SIG_ED25519;
	}
	return r;
}

int
trust_open(struct trust *t, const char *dir, struct tpm *tpm)
{
	int r;

	memset(t, 0, sizeof(*t));
	t->dirfd = -1;
	t->tpm = tpm;
	if (str_copy(t->dir, sizeof(t->dir), dir) != 0)
		return -ENAMETOOLONG;
	t->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0) {
		r = -errno;
		log_errno(-r, "cleave-hv: cannot open %s", dir);
		return r;
	}
	r = tpm != NULL ? trust_tpm_identity(t) : file_identity(t);
	if (r == 0)
		r = load_state(t);
	if (r == -ENOENT)
		r = trust_save(t);
	if (r == 0 && tpm != NULL)
		r = trust_tpm_bind(t);
	if (r != 0)
		trust_close(t);
	return r;
}

int
trust_sign(struct trust *t, const void *body, size_t len, uint8_t sig[WIRE_SIG_LEN])
{
	if (t->tpm != NULL)
		return trust_tpm_sign(t, body, len, sig);
	return ed25519_key_sign(t->id, body, len, sig);
}

void
trust_close(struct trust *t)
{
	ed25519_key_free(t->id);
	t->id = NULL;
	if (t->dirfd >= 0)
		close(t->dirfd);
	t->dirfd = -1;
}

int
trust_pin(struct trust *t, const uint8_t owner[32], const char *device_id)
{
	size_t n = strnlen(device_id, WIRE_ID_LEN);

	if (n == 0 || n >= WIRE_ID_LEN)
		return CLV_E_INVALID_PARAMETER;
	if (t->pinned) {
		if (memcmp(t->owner, owner, 32) == 0 && strcmp(t->device_id, device_id) == 0)
			return CLV_E_NOT_REQUIRED;
		return CLV_E_DENIED;
	}
	memcpy(t->owner, owner, 32);
	memset(t->device_id, 0, sizeof(t->device_id));
	memcpy(t->device_id, device_id, n);
	t->pinned = 1;
	if (trust_save(t) != 0) {
		t->pinned = 0;
		return CLV_E_IO;
	}
	return 0;
}

/* Forgets the enrollment (in memory; the caller saves). */
static void
forget_owner(struct trust *t)
{
	t->pinned = 0;
	memset(t->owner, 0, sizeof(t->owner));
	memset(t->device_id, 0, sizeof(t->device_id));
	t->counter = 0;
	t->lease_counter = 0;
	t->lease_until = 0;
	t->lease_tpm_end = 0;
	t->lease_tpm_reset = 0;
	t->failed_unlocks = 0;
	memset(t->policy, 0, sizeof(t->policy));
}

int
trust_check_ticket(const struct trust *t, const uint8_t *buf, size_t len, uint16_t want,
		   uint64_t now, struct ticket *out)
{
	if (!t->pinned)
		return CLV_E_INVALID_STATE;
	if (t->stale)
		return CLV_E_DENIED; /* an older copy of the state: its counters cannot be trusted */
	if (len != TICKET_LEN || ticket_decode(buf, len, out) != 0)
		return CLV_E_BAD_TICKET;
	if (ed25519_verify(t->owner, buf, TICKET_BODY_LEN, buf + TICKET_BODY_LEN) != 0)
		return CLV_E_BAD_TICKET; /* forged, or from another server */
	/* WIPE also carries retire tickets: the same erase, when the employee leaves. */
	if ((out->type != want && !(want == TICKET_WIPE && out->type == TICKET_RETIRE)) ||
	    memcmp(out->hv_key, t->hv_key, 32) != 0 || strcmp(out->device_id, t->device_id) != 0)
		return CLV_E_BAD_TICKET; /* for another order, hypervisor or device */
	if (out->counter <= (out->type == TICKET_LEASE ? t->lease_counter : t->counter))
		return CLV_E_BAD_TICKET; /* replayed or superseded */
	if (out->expires_at <= now || out->issued_at > now + 300)
		return CLV_E_BAD_TICKET;
	return 0;
}

int
trust_accept(struct trust *t, const struct ticket *tk, const struct trust_order *o)
{
	struct trust before = *t;
	int r;

	if (o != NULL && t->order.type != 0)
		return -EBUSY;
	if (tk->type == TICKET_LEASE)
		t->lease_counter = tk->counter;
	else
		t->counter = tk->counter;
	if (o != NULL)
		t->order = *o;
	if (t->tpm != NULL)
		t->state_nv++; /* TPM.md §5: stored first, then the TPM's counter follows */
	r = save_or_undo(t, &before);
	if (r == 0 && t->tpm != NULL)
		durable_point("tpm-before-state-increment");
	if (r == 0 && t->tpm != NULL && trust_tpm_advance(t) != 0)
		log_warn("cleave-hv: the TPM state counter lags the state file; retried at the "
			 "next accepted ticket or start");
	return r;
}

int
trust_begin(struct trust *t, const struct trust_order *o)
{
	struct trust before = *t;

	if (t->order.type != 0)
		return -EBUSY;
	t->order = *o;
	return save_or_undo(t, &before);
}

int
trust_attest(struct trust *t, const uint8_t nonce[32], uint16_t state,
	     const uint8_t measurement[32], uint64_t key_epoch, uint64_t now_ms,
	     uint8_t out[ATTEST_LEN])
{
	struct attestation a;
	int r;

	memset(&a, 0, sizeof(a));
	a.state = state;
	memcpy(a.nonce, nonce, 32);
	memcpy(a.hv_key, t->hv_key, 32);
	a.sig_alg = t->sig_alg;
	if (t->stale)
		a.flags |= ATTEST_FLAG_STALE_STATE;
	memcpy(a.measurement, measurement, 32);
	if (t->pinned)
		memcpy(a.owner_key, t->owner, 32);
	a.key_epoch = key_epoch;
	a.ticket_counter = t->counter;
	a.receipt_seq = t->receipt_seq;
	a.time_ms = now_ms;
	crypto_policy_digest(t->policy, a.policy_digest); /* the offline limits it enforces */
	r = attest_encode(&a, out);
	if (r == 0)
		r = trust_sign(t, out, ATTEST_BODY_LEN, out + ATTEST_BODY_LEN);
	return r;
}

int
trust_receipt(struct trust *t, struct receipt *rc, uint8_t out[RECEIPT_LEN], unsigned flags)
{
	struct trust before = *t;
	int r;

	memcpy(rc->hv_key, t->hv_key, 32);
	rc->sig_alg = t->sig_alg;
	memset(rc->device_id, 0, sizeof(rc->device_id));
	memcpy(rc->device_id, t->device_id, strnlen(t->device_id, WIRE_ID_LEN - 1));
	rc->seq = t->receipt_seq + 1;
	memcpy(rc->prev_hash, t->last_receipt_hash, 32);
	r = receipt_encode(rc, out);
	if (r == 0)
		r = trust_sign(t, out, RECEIPT_BODY_LEN, out + RECEIPT_BODY_LEN);
	if (r != 0)
		return r;
	if (t->npending == TRUST_PENDING_MAX) {
		/* Keep the newest; the oldest unacknowledged one is logged, not silently lost. */
		log_warn("cleave-hv: %d receipts unacknowledged; dropping the oldest from the "
			 "pending list (it stays in the chain)",
			 TRUST_PENDING_MAX);
		memmove(t->pending[0], t->pending[1], (TRUST_PENDING_MAX - 1) * RECEIPT_LEN);
		t->npending--;
	}
	memcpy(t->pending[t->npending++], out, RECEIPT_LEN);
	t->receipt_seq = rc->seq;
	crypto_sha256(out, RECEIPT_LEN, t->last_receipt_hash);
	memset(&t->order, 0, sizeof(t->order));
	t->wipe_before = 0;
	if (flags & TRUST_RECEIPT_UNPIN)
		forget_owner(t);
	return save_or_undo(t, &before);
}

int
trust_receipts_ack(struct trust *t, uint64_t upto)
{
	unsigned k = 0;

	for (unsigned i = 0; i < t->npending; i++) {
		struct receipt rc;

		if (receipt_decode(t->pending[i], RECEIPT_LEN, &rc) == 0 && rc.seq <= upto)
			continue;
		if (k != i)
			memcpy(t->pending[k], t->pending[i], RECEIPT_LEN);
		k++;
	}
	if (k == t->npending)
		return 0;
	t->npending = k;
	return trust_save(t);
}
