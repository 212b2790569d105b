/*
 * The orders cleave-hv carries out on the corporate volume: lock, unlock, rekey and wipe (also
 * for retire tickets), from a server ticket or decided by cleave-hv itself (offline policy,
 * failed unlocks). Every order goes through one journal in the trust state: accepting a ticket
 * makes its counter and the order durable in one write, and the order's receipt replaces the
 * journal in one write. Every step in between is idempotent, so a restart that finds the
 * journal carries the order out and signs its one receipt, whatever the kill point, and a step
 * that fails on a disk error is retried from the main loop. The VM is stopped (lock) or
 * destroyed with its RAM zeroed (wipe) before any key is touched; receipts claim VM_STOPPED
 * and RAM_ZEROED only when a VM was running and was stopped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "durable.h"
#include "hv.h"
#include "keys.h"
#include "log.h"
#include "util.h"
#include "volume.h"

#define VOLUME_NAME    "corporate"
#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS   64000
#define WIPE_DONE_CHECKS                                                                           \
	(CHECK_INTENT_RECORDED | CHECK_ROOT_EPOCH_DESTROYED | CHECK_HEADERS_ERASED |               \
	 CHECK_OLD_KEY_REJECTED | CHECK_KEYS_ZEROED | CHECK_FRESH_VOLUME)

static uint16_t
hv_state_of(struct hv *h)
{
	struct volume_info vi;

	volume_info(h->vol, &vi);
	h->key_epoch = vi.key_epoch;
	return (uint16_t)vi.state;
}

static int
is_wipe(uint16_t type)
{
	return type == TICKET_WIPE || type == TICKET_RETIRE || type == RECEIPT_AUTO_WIPE;
}

static const char *
order_name(uint16_t type)
{
	const char *n = ticket_type_name(type);

	if (n != NULL)
		return n;
	return type == RECEIPT_AUTO_LOCK ? "auto-lock" : "auto-wipe";
}

/* Runs fn on the volume with the vCPU's disk calls held off (vol_lock). */
static int
vol_change(struct hv *h, int (*fn)(struct volume *))
{
	int r;

	pthread_mutex_lock(&h->vol_lock);
	r = fn(h->vol);
	pthread_mutex_unlock(&h->vol_lock);
	return r;
}

/* A journal entry for an order of type from ticket (NULL: autonomous, bound to intent). */
static void
order_new(struct hv *h, struct trust_order *o, uint16_t type, const uint8_t *ticket,
	  const uint8_t intent[32])
{
	memset(o, 0, sizeof(*o));
	o->type = type;
	hv_state_of(h);
	o->epoch_before = h->key_epoch;
	o->started_ms = h->clock();
	if (ticket != NULL) {
		memcpy(o->ticket, ticket, TICKET_LEN);
		crypto_sha256(ticket, TICKET_LEN, o->intent);
	} else {
		memcpy(o->intent, intent, 32);
	}
}

/* Starts the receipt of the journaled order (the same fields after any restart). */
static void
receipt_start(struct hv *h, struct receipt *rc)
{
	const struct trust_order *o = &h->trust.order;
	struct ticket tk;

	memset(rc, 0, sizeof(*rc));
	rc->type = o->type;
	if (o->type != RECEIPT_AUTO_LOCK && o->type != RECEIPT_AUTO_WIPE &&
	    ticket_decode(o->ticket, TICKET_LEN, &tk) == 0) {
		str_copy(rc->command_id, sizeof(rc->command_id), tk.command_id);
		memcpy(rc->ticket_hash, o->intent, sizeof(rc->ticket_hash));
		rc->ticket_counter = tk.counter;
	} else {
		rc->ticket_counter = h->trust.counter; /* auto types: the highest accepted so far */
	}
	rc->epoch_before = o->epoch_before;
	rc->started_ms = o->started_ms;
}

/*
 * Signs the receipt, keeps it and clears the journal in one durable write (flags: see
 * trust_receipt), and returns it through c. CLV_E_IO when that write failed: the journal
 * stays, and the order is run again later.
 */
static int64_t
receipt_finish(struct hv *h, struct receipt *rc, int32_t result, struct dispatch_call *c,
	       unsigned flags)
{
	uint8_t out[RECEIPT_LEN];

	rc->result = result;
	rc->header_state = hv_state_of(h);
	rc->epoch_after = h->key_epoch;
	rc->finished_ms = h->clock();
	h->state = rc->header_state;
	hv_tpm_receipt(h, rc);
	if (trust_receipt(&h->trust, rc, out, flags) != 0)
		return CLV_E_IO;
	if (c->out != NULL && c->out_cap >= RECEIPT_LEN) {
		memcpy(c->out, out, RECEIPT_LEN);
		c->out_len = RECEIPT_LEN;
	}
	return CLV_OK;
}

/*
 * Locks the corporate half: the vCPU stops before the keys go, so the guest never runs without
 * its disk. Records the checks in rc; returns volume_lock's result (a no-op when locked).
 */
static int
lock_run(struct hv *h, struct receipt *rc)
{
	int r;

	h->vm_due = 0;
	if (h->vm != NULL) {
		rc->checks_run |= CHECK_VM_STOPPED;
		if (hv_vm_pause(h) == 1)
			rc->checks_passed |= CHECK_VM_STOPPED;
	}
	console_clear(h->console); /* a locked screen shows nothing of the corporate half */
	console_notice(h->console, "[cleave-hv] the corporate half is locked");
	r = vol_change(h, volume_lock);
	rc->checks_run |= CHECK_KEYS_ZEROED;
	if (r == 0)
		rc->checks_passed |= CHECK_KEYS_ZEROED;
	return r;
}

/* Unlocks (a no-op when already unlocked with keys); the VM resumes after the receipt. */
static int
unlock_run(struct hv *h)
{
	int r = vol_change(h, volume_unlock);

	if (r == 0) {
		h->state = HV_STATE_ACTIVE;
		h->trust.failed_unlocks = 0; /* saved with the receipt */
		h->vm_due = 1;
	}
	return r;
}

static int
rekey_run(struct hv *h)
{
	int r;

	pthread_mutex_lock(&h->vol_lock);
	r = volume_rekey_from(h->vol, h->trust.order.epoch_before);
	pthread_mutex_unlock(&h->vol_lock);
	return r;
}

/* Maps the volume's wipe checks onto the receipt's. */
static void
wipe_checks(struct receipt *rc, uint32_t passed)
{
	rc->checks_run |= CHECK_ROOT_EPOCH_DESTROYED | CHECK_HEADERS_ERASED |
			  CHECK_OLD_KEY_REJECTED | CHECK_KEYS_ZEROED;
	if (passed & VOLUME_CHECK_INTENT)
		rc->checks_passed |= CHECK_INTENT_RECORDED;
	if (passed & VOLUME_CHECK_KEY_GONE)
		rc->checks_passed |= CHECK_ROOT_EPOCH_DESTROYED;
	if (passed & VOLUME_CHECK_HDR_ERASED)
		rc->checks_passed |= CHECK_HEADERS_ERASED;
	if (passed & VOLUME_CHECK_NO_UNWRAP)
		rc->checks_passed |= CHECK_OLD_KEY_REJECTED;
	if (passed & VOLUME_CHECK_MEM_CLEAR)
		rc->checks_passed |= CHECK_KEYS_ZEROED;
}

/* Destroy, verify and provision: the destructive part of a wipe, safe to repeat. */
static int
wipe_run(struct hv *h, struct receipt *rc)
{
	uint32_t passed = 0;
	int r;

	/* Stop the corporate VM and zero its RAM before the keys are destroyed. */
	h->vm_due = 0;
	if (h->vm != NULL) {
		rc->checks_run |= CHECK_VM_STOPPED | CHECK_RAM_ZEROED;
		if (hv_vm_destroy(h) == 1)
			rc->checks_passed |= CHECK_VM_STOPPED | CHECK_RAM_ZEROED;
	}
	durable_point("wipe-after-intent");
	if (hv_tpm_wipe_begin(h) != 0)
		return -EIO;
	r = volume_wipe_destroy(h->vol);
	durable_point("wipe-after-destroy");
	if (r == 0)
		r = volume_wipe_verify(h->vol, &passed);
	wipe_checks(rc, passed);
	if (r != 0 || passed != VOLUME_CHECKS_ALL) {
		log_err("cleave-hv: wipe verification failed (checks 0x%x)", passed);
		return -EIO;
	}
	/*
	 * The employee can enroll again: a fresh, empty volume under a new epoch. Its root key
	 * belongs to no lease yet (the receipt forgets the enrollment): sealed without a deadline.
	 */
	keys_tpm_deadline(KEYS_DEADLINE_FAR);
	rc->checks_run |= CHECK_FRESH_VOLUME;
	r = volume_wipe_provision(h->vol);
	if (r == 0)
		rc->checks_passed |= CHECK_FRESH_VOLUME;
	return r;
}

/*
 * The wipe of the journaled order, from wherever a crash left it. A volume that is ACTIVE
 * under a later epoch than the order's was provisioned by this wipe (only a rekey or a wipe
 * moves the epoch, one order at a time), and provisioning runs only after all the erase checks
 * passed; what can still be checked (the old epoch's root key is gone) is checked again.
 */
static int
wipe_order(struct hv *h, struct receipt *rc)
{
	const struct trust_order *o = &h->trust.order;
	uint16_t st = hv_state_of(h);
	int r = 0;

	rc->checks_run |= CHECK_INTENT_RECORDED;
	if (st == HV_STATE_ACTIVE && h->key_epoch > o->epoch_before) {
		rc->checks_run |= WIPE_DONE_CHECKS;
		rc->checks_passed |= WIPE_DONE_CHECKS;
		if (!volume_epoch_destroyed(h->vol, o->epoch_before))
			rc->checks_passed &=
				~(uint32_t)(CHECK_ROOT_EPOCH_DESTROYED | CHECK_OLD_KEY_REJECTED);
		return rc->checks_passed == rc->checks_run ? 0 : -EIO;
	}
	if (st == HV_STATE_ACTIVE || st == HV_STATE_LOCKED) {
		/* Intent in the headers, keys dropped; the VM may still be running. */
		pthread_mutex_lock(&h->vol_lock);
		r = volume_wipe_begin(h->vol, o->intent);
		pthread_mutex_unlock(&h->vol_lock);
	}
	return r == 0 ? wipe_run(h, rc) : r;
}

/* Starts (or resumes) the VM after an unlock or a wipe; 0, or -errno to try again later. */
static int
vm_follow_up(struct hv *h)
{
	int r;

	if (!h->vm_due)
		return 0;
	if (h->state != HV_STATE_ACTIVE || !h->kvm) {
		h->vm_due = 0; /* locked or wiping again since, or no KVM: nothing to start */
		return 0;
	}
	r = hv_vm_resume(h);
	if (r == 0)
		h->vm_due = 0;
	return r;
}

/*
 * 1 when the volume refused an unlock or rekey for good: not in the state for it, or its root
 * key missing or wrong. Anything else is a disk error, worth retrying.
 */
static int
refused(int r)
{
	return r == -EPERM || r == -ENOENT || r == -EKEYREJECTED || r == -EINVAL ||
	       r == -EOVERFLOW || r == -EACCES;
}

/*
 * Carries out the journaled order (first run or resumed) and signs its receipt into c. An
 * order that fails on a disk error is not receipted: it stays journaled and is retried
 * (hv_orders_tick). An unlock or rekey the volume refuses for good ends with a receipt that
 * carries the error.
 */
static int64_t
order_run(struct hv *h, struct dispatch_call *c)
{
	uint16_t type = h->trust.order.type;
	struct receipt rc;
	unsigned flags = 0;
	int32_t result;
	int64_t st;
	int r;

	receipt_start(h, &rc);
	if (type == TICKET_LOCK || type == RECEIPT_AUTO_LOCK) {
		/* A lock must happen: like a wipe, it is retried until it does. */
		if (lock_run(h, &rc) != 0) {
			h->state = hv_state_of(h);
			return CLV_E_IO;
		}
		result = CLV_OK;
	} else if (type == TICKET_UNLOCK || type == TICKET_REKEY) {
		r = type == TICKET_UNLOCK ? unlock_run(h) : rekey_run(h);
		if (r != 0 && !refused(r))
			return CLV_E_IO; /* a disk error: retried, from what the file says */
		result = r == 0 ? CLV_OK : CLV_E_INVALID_STATE;
	} else {
		r = wipe_order(h, &rc);
		h->state = hv_state_of(h);
		if (r != 0)
			return CLV_E_IO;
		result = CLV_OK;
		flags = TRUST_RECEIPT_UNPIN; /* the corporate half is gone: so is its enrollment */
		h->vm_due = 1;               /* a fresh, empty corporate half to enroll again */
	}
	st = receipt_finish(h, &rc, result, c, flags);
	if (st == CLV_OK && is_wipe(type))
		log_info("cleave-hv: corporate half wiped by cryptographic erase (verified)");
	if (st == CLV_OK && h->console != NULL)
		vm_follow_up(h); /* at start-up (no console yet) main boots the VM */
	return st;
}

/*
 * Runs the journaled order; a failure is logged once and retried later with a backoff. A
 * retry starts from what a restart would find: a failed header write may have reached one
 * copy only, so the volume is reloaded from the file first.
 */
static int64_t
order_attempt(struct hv *h, struct dispatch_call *c)
{
	uint16_t type = h->trust.order.type;
	int64_t st = CLV_E_IO;
	int r = 0;

	if (h->retry_ms != 0) {
		pthread_mutex_lock(&h->vol_lock);
		r = volume_reload(h->vol);
		pthread_mutex_unlock(&h->vol_lock);
	}
	if (r == 0)
		st = order_run(h, c);

	if (st == CLV_OK) {
		if (h->retry_ms != 0)
			log_info("cleave-hv: the interrupted %s order is done", order_name(type));
		h->retry_ms = 0;
		return st;
	}
	if (h->retry_ms == 0) {
		log_err("cleave-hv: the %s order failed; it stays recorded and is retried",
			order_name(type));
		h->retry_ms = RETRY_FIRST_MS;
	} else if (h->retry_ms < RETRY_MAX_MS) {
		h->retry_ms *= 2;
	}
	h->retry_at = h->clock() + h->retry_ms;
	return st;
}

/* Checks a ticket for an order and journals it with its counter; CLV_OK or the refusal. */
static int
take_ticket(struct hv *h, struct dispatch_call *c, uint16_t type)
{
	struct trust_order o;
	struct ticket tk;
	int r = trust_check_ticket(&h->trust, c->in, c->in_len, type, h->clock() / 1000, &tk);

	if (h->trust.order.type != 0 && c->in_len == TICKET_LEN &&
	    memcmp(c->in, h->trust.order.ticket, TICKET_LEN) == 0)
		return CLV_E_BUSY; /* this very ticket is still being carried out */
	if (r != CLV_OK) {
		log_warn("cleave-hv: %s refused: %s", ticket_type_name(type),
			 r == CLV_E_INVALID_STATE ? "no server key pinned"
			 : r == CLV_E_DENIED      ? "the trust state is an older copy"
						  : "bad ticket");
		return r;
	}
	if (h->trust.order.type != 0) {
		/* Not accepted, so the same ticket can come again once the order in flight ends. */
		log_warn("cleave-hv: %s refused: another order is still being carried out",
			 ticket_type_name(type));
		return CLV_E_BUSY;
	}
	order_new(h, &o, tk.type, c->in, NULL);
	return trust_accept(&h->trust, &tk, &o) == 0 ? CLV_OK : CLV_E_IO;
}

/*
 * An accepted order that could not finish stays journaled and is retried: the caller hears
 * BUSY, and the same ticket sent again answers BUSY until it is done, then BAD_TICKET (a
 * replay) with its receipt in RECEIPTS.
 */
static int64_t
accepted(struct hv *h, struct dispatch_call *c)
{
	return order_attempt(h, c) == CLV_OK ? CLV_OK : CLV_E_BUSY;
}

static int64_t
h_order(void *ctx, struct dispatch_call *c, uint16_t type)
{
	struct hv *h = ctx;
	int r = take_ticket(h, c, type);

	return r != CLV_OK ? r : accepted(h, c);
}

static int64_t
h_lock(void *ctx, struct dispatch_call *c)
{
	return h_order(ctx, c, TICKET_LOCK);
}

static int64_t
h_rekey(void *ctx, struct dispatch_call *c)
{
	return h_order(ctx, c, TICKET_REKEY);
}

static int64_t
h_wipe(void *ctx, struct dispatch_call *c)
{
	return h_order(ctx, c, TICKET_WIPE);
}

/* The journal entry of an order cleave-hv decides by itself; its intent hash is bound to why. */
static void
auto_entry(struct hv *h, struct trust_order *o, uint16_t type, const char *why)
{
	uint8_t intent[32];
	char tag[128];
	int n = snprintf(tag, sizeof(tag), "cleave-hv %s %s",
			 type == RECEIPT_AUTO_WIPE ? "auto-wipe" : "auto-lock", why);

	crypto_sha256(tag, (size_t)MIN(n, (int)sizeof(tag) - 1), intent);
	order_new(h, o, type, NULL, intent);
}

/*
 * An order cleave-hv decides by itself (offline too long), with an AUTO_* receipt kept for
 * the server. 1 done, -EIO failed (a wipe stays journaled and is retried), 0 when another
 * order is in flight.
 */
static int
auto_order(struct hv *h, uint16_t type, const char *why)
{
	uint8_t out[RECEIPT_LEN];
	struct dispatch_call c = {.out = out, .out_cap = sizeof(out)};
	struct trust_order o;

	if (h->trust.order.type != 0)
		return 0;
	auto_entry(h, &o, type, why);
	if (trust_begin(&h->trust, &o) != 0)
		return -EIO;
	return order_attempt(h, &c) == CLV_OK ? 1 : -EIO;
}

/*
 * A refused unlock ticket while locked counts against the policy's failed-unlock limit; at
 * the limit cleave-hv wipes the corporate half by itself. The count that reaches the limit
 * and the wipe's journal entry are one durable write, so a crash cannot keep the one without
 * the other.
 */
static void
unlock_refused(struct hv *h)
{
	uint8_t out[RECEIPT_LEN];
	struct dispatch_call c = {.out = out, .out_cap = sizeof(out)};
	struct trust *t = &h->trust;
	char why[64];
	int due;

	if (h->state != HV_STATE_LOCKED)
		return;
	t->failed_unlocks++;
	due = t->policy[2] > 0 && t->failed_unlocks >= t->policy[2] && t->order.type == 0;
	snprintf(why, sizeof(why), "failed unlocks %llu", (unsigned long long)t->failed_unlocks);
	if (due)
		auto_entry(h, &t->order, RECEIPT_AUTO_WIPE, why);
	if (trust_save(t) != 0) {
		log_err("cleave-hv: cannot record a failed unlock");
		t->failed_unlocks--;
		if (due)
			memset(&t->order, 0, sizeof(t->order));
		return;
	}
	log_warn("cleave-hv: failed unlock %llu of %llu allowed",
		 (unsigned long long)t->failed_unlocks, (unsigned long long)t->policy[2]);
	if (due) {
		log_warn("cleave-hv: wiping the corporate half as the policy requires (%s)", why);
		order_attempt(h, &c);
	}
}

static int64_t
h_unlock(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	int r = take_ticket(h, c, TICKET_UNLOCK);

	if (r == CLV_E_BAD_TICKET)
		unlock_refused(h);
	return r != CLV_OK ? r : accepted(h, c);
}

/*
 * Seconds past the lease into *offline: on the TPM clock with a TPM (1 when it was reset since
 * the lease: lapsed), else on the host's. 0, or -errno when the TPM cannot be read.
 */
static int
lease_offline(struct hv *h, int64_t *offline)
{
	if (h->tpm != NULL)
		return hv_tpm_offline(h, offline);
	*offline = (int64_t)(h->clock() / 1000) - (int64_t)h->trust.lease_until;
	return 0;
}

int
hv_lease_check(struct hv *h)
{
	const struct trust *t = &h->trust;
	int64_t offline = 0;
	char why[64];
	int r;

	if (!t->pinned || t->lease_until == 0 || (r = lease_offline(h, &offline)) < 0)
		return 0;
	snprintf(why, sizeof(why), "lease %llu", (unsigned long long)t->lease_until);
	if (r == 1 && h->state == HV_STATE_ACTIVE) {
		log_warn("cleave-hv: the TPM was reset since the lease (its clock cannot tell how "
			 "long): locking the corporate half until a new lease");
		return auto_order(h, RECEIPT_AUTO_LOCK, "lease lapsed: TPM reset");
	}
	if (r == 1 || offline <= 0)
		return 0;
	if (t->policy[1] > 0 && offline >= (int64_t)t->policy[1] &&
	    (h->state == HV_STATE_ACTIVE || h->state == HV_STATE_LOCKED)) {
		log_warn("cleave-hv: offline %lld s past the lease: wiping the corporate half as "
			 "the policy requires",
			 (long long)offline);
		return auto_order(h, RECEIPT_AUTO_WIPE, why);
	}
	if (t->policy[0] > 0 && offline >= (int64_t)t->policy[0] && h->state == HV_STATE_ACTIVE) {
		log_warn("cleave-hv: offline %lld s past the lease: locking the corporate half",
			 (long long)offline);
		return auto_order(h, RECEIPT_AUTO_LOCK, why);
	}
	return 0;
}

void
hv_orders_tick(struct hv *h)
{
	uint8_t out[RECEIPT_LEN];
	struct dispatch_call c = {.out = out, .out_cap = sizeof(out)};

	if (h->trust.order.type != 0 && h->clock() >= h->retry_at)
		order_attempt(h, &c);
	if (h->vm_due && h->clock() >= h->vm_retry_at && vm_follow_up(h) != 0) {
		if (h->vm_retry_at == 0)
			log_err("cleave-hv: cannot start the corporate VM; retrying every 5 s");
		h->vm_retry_at = h->clock() + 5000;
	}
	if (!h->vm_due)
		h->vm_retry_at = 0;
	hv_lease_check(h);
}

int
hv_resume_order(struct hv *h)
{
	uint8_t hash[32] = {0};
	struct trust_order o;
	uint8_t out[RECEIPT_LEN];
	struct dispatch_call c = {.out = out, .out_cap = sizeof(out)};
	uint16_t st = hv_state_of(h);

	if (h->trust.order.type == 0) {
		if (st != HV_STATE_WIPE_PENDING && st != HV_STATE_ERASED)
			return 0;
		/* A wipe intent in the headers without a journal (an older cleave-hv wrote it). */
		volume_wipe_pending(h->vol, hash);
		order_new(h, &o, RECEIPT_AUTO_WIPE, NULL, hash);
		if (trust_begin(&h->trust, &o) != 0)
			return -EIO;
	}
	log_warn("cleave-hv: a %s order was interrupted; finishing it before anything else",
		 order_name(h->trust.order.type));
	order_attempt(h, &c);
	h->vm_due = 0; /* main boots the VM once the console is open */
	return 0;
}

/*
 * With a TPM, an active volume whose sealed root key the TPM refused at start (a kept copy of
 * the state after a wipe) is locked by cleave-hv itself, with a receipt: closed, and said so.
 */
static void
lock_if_sealed_refused(struct hv *h)
{
	struct volume_info vi;

	volume_info(h->vol, &vi);
	if (h->tpm == NULL || vi.state != HV_STATE_ACTIVE || vi.keys_loaded ||
	    h->trust.order.type != 0)
		return;
	log_warn("cleave-hv: the TPM refuses this volume's root key: locking the corporate half");
	auto_order(h, RECEIPT_AUTO_LOCK, "root key cannot be unsealed");
}

int
hv_orders_open(struct hv *h, uint64_t volume_mib)
{
	int r = volume_open(h->state_dir, VOLUME_NAME, &h->vol);

	if (r == -ENOENT) {
		r = volume_create(h->state_dir, VOLUME_NAME, volume_mib, &h->vol);
		if (r == 0)
			log_info("cleave-hv: created a %llu MiB corporate volume",
				 (unsigned long long)volume_mib);
	}
	if (r != 0) {
		log_err("cleave-hv: cannot open the corporate volume in %s (%d)", h->state_dir, r);
		return r;
	}
	h->state = hv_state_of(h);
	dispatch_register(&h->d, CLV_FN_LOCK, h_lock);
	dispatch_register(&h->d, CLV_FN_UNLOCK, h_unlock);
	dispatch_register(&h->d, CLV_FN_REKEY, h_rekey);
	dispatch_register(&h->d, CLV_FN_WIPE, h_wipe);
	hv_block_register(h);
	r = hv_resume_order(h);
	if (r == 0)
		hv_lease_check(h); /* a wipe that fell due while stopped, before the VM boots */
	if (r == 0)
		lock_if_sealed_refused(h);
	/*
	 * A wipe done here (a lease check's) asks for a fresh VM; main boots it next (an active
	 * volume) whatever happened here. Left set, the main loop would start it a second time.
	 */
	h->vm_due = 0;
	return r;
}

void
hv_orders_close(struct hv *h)
{
	volume_close(h->vol);
	h->vol = NULL;
}
