/*
 * The orders cleave-hv carries out on the corporate volume: lock, unlock, rekey and wipe. Each
 * takes a server ticket, which must pass the trust checks and have its counter made durable
 * before anything changes; each answers with a signed receipt saying what was done and which
 * checks passed. A wipe records its intent (and its ticket) before the first destructive step,
 * so a crash at any point is finished by the next start. The VM is stopped (lock) or destroyed
 * with its RAM zeroed (wipe) before any key is touched;
 * receipts claim VM_STOPPED and RAM_ZEROED only when a VM was running and was stopped.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "fileio.h"
#include "hv.h"
#include "log.h"
#include "util.h"
#include "volume.h"

#define VOLUME_NAME "corporate"

static uint16_t
hv_state_of(struct hv *h)
{
	struct volume_info vi;

	volume_info(h->vol, &vi);
	h->key_epoch = vi.key_epoch;
	return (uint16_t)vi.state;
}

/*
 * Fault injection for the crash tests: when CLEAVE_HV_FAULT names this point, cleave-hv
 * kills itself with SIGKILL there, exactly as a crash or a power cut would stop it.
 */
static void
fault_point(const char *name)
{
	const char *f = getenv("CLEAVE_HV_FAULT");

	if (f != NULL && strcmp(f, name) == 0) {
		log_warn("cleave-hv: CLEAVE_HV_FAULT=%s: killing ourselves here", name);
		raise(SIGKILL);
	}
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

/* Wipe step 1 (intent, keys dropped) under vol_lock: the VM may still be running. */
static int
wipe_begin(struct hv *h, const uint8_t hash[32])
{
	int r;

	pthread_mutex_lock(&h->vol_lock);
	r = volume_wipe_begin(h->vol, hash);
	pthread_mutex_unlock(&h->vol_lock);
	return r;
}

/* Starts a receipt for ticket tk (raw bytes for the hash). */
static void
receipt_start(struct hv *h, struct receipt *rc, const struct ticket *tk, const uint8_t *raw)
{
	memset(rc, 0, sizeof(*rc));
	rc->type = tk->type;
	str_copy(rc->command_id, sizeof(rc->command_id), tk->command_id);
	crypto_sha256(raw, TICKET_LEN, rc->ticket_hash);
	rc->ticket_counter = tk->counter;
	rc->epoch_before = h->key_epoch;
	rc->started_ms = h->clock();
}

/* Finishes, signs and returns the receipt through c. */
static int64_t
receipt_finish(struct hv *h, struct receipt *rc, int32_t result, struct dispatch_call *c)
{
	rc->result = result;
	rc->header_state = hv_state_of(h);
	rc->epoch_after = h->key_epoch;
	rc->finished_ms = h->clock();
	h->state = rc->header_state;
	if (c->out_cap < RECEIPT_LEN || trust_receipt(&h->trust, rc, c->out) != 0)
		return CLV_E_IO;
	c->out_len = RECEIPT_LEN;
	return CLV_OK;
}

static int
take_ticket(struct hv *h, struct dispatch_call *c, uint16_t type, struct ticket *tk)
{
	int r = trust_check_ticket(&h->trust, c->in, c->in_len, type, h->clock() / 1000, tk);

	if (r != CLV_OK) {
		log_warn("cleave-hv: %s refused: bad ticket", ticket_type_name(type));
		return r;
	}
	return trust_accept(&h->trust, tk) == 0 ? CLV_OK : CLV_E_IO;
}

/*
 * Locks the corporate half: the vCPU stops before the keys go, so the guest never runs without
 * its disk. Records the checks in rc; returns volume_lock's result.
 */
static int
lock_run(struct hv *h, struct receipt *rc)
{
	int r;

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

static int64_t
h_lock(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	struct ticket tk;
	struct receipt rc;
	int r = take_ticket(h, c, TICKET_LOCK, &tk);

	if (r != CLV_OK)
		return r;
	receipt_start(h, &rc, &tk, c->in);
	r = lock_run(h, &rc);
	log_info("cleave-hv: corporate half locked (ticket %s)", tk.command_id);
	return receipt_finish(h, &rc, r == 0 ? CLV_OK : CLV_E_IO, c);
}

static int auto_wipe(struct hv *h, const char *why);

/*
 * A refused unlock ticket while locked counts against the policy's failed-unlock limit
 * (durably); at the limit cleave-hv wipes the corporate half by itself.
 */
static void
unlock_refused(struct hv *h)
{
	struct trust *t = &h->trust;

	if (h->state != HV_STATE_LOCKED)
		return;
	t->failed_unlocks++;
	if (trust_save(t) != 0)
		log_err("cleave-hv: cannot record a failed unlock");
	log_warn("cleave-hv: failed unlock %llu of %llu allowed",
		 (unsigned long long)t->failed_unlocks, (unsigned long long)t->policy[2]);
	if (t->policy[2] > 0 && t->failed_unlocks >= t->policy[2]) {
		char why[64];

		snprintf(why, sizeof(why), "failed unlocks %llu",
			 (unsigned long long)t->failed_unlocks);
		auto_wipe(h, why);
	}
}

static int64_t
h_unlock(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	struct ticket tk;
	struct receipt rc;
	int r = take_ticket(h, c, TICKET_UNLOCK, &tk);

	if (r == CLV_E_BAD_TICKET)
		unlock_refused(h);
	if (r != CLV_OK)
		return r;
	receipt_start(h, &rc, &tk, c->in);
	r = vol_change(h, volume_unlock);
	if (r == 0) {
		h->state = HV_STATE_ACTIVE;
		h->trust.failed_unlocks = 0; /* saved with the receipt */
		hv_vm_resume(h);
	}
	log_info("cleave-hv: corporate half unlocked (ticket %s)", tk.command_id);
	return receipt_finish(h, &rc, r == 0 ? CLV_OK : CLV_E_INVALID_STATE, c);
}

static int64_t
h_rekey(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	struct ticket tk;
	struct receipt rc;
	int r = take_ticket(h, c, TICKET_REKEY, &tk);

	if (r != CLV_OK)
		return r;
	receipt_start(h, &rc, &tk, c->in);
	r = vol_change(h, volume_rekey);
	return receipt_finish(h, &rc, r == 0 ? CLV_OK : CLV_E_INVALID_STATE, c);
}

static int
wipe_ticket_path(const struct hv *h, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/wipe.ticket", h->state_dir);

	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

/* The destructive part of a wipe, safe to repeat; fills the receipt's checks. */
static int
wipe_run(struct hv *h, struct receipt *rc)
{
	uint32_t passed = 0;
	int r;

	/* Stop the corporate VM and zero its RAM before the keys are destroyed. */
	if (h->vm != NULL) {
		rc->checks_run |= CHECK_VM_STOPPED | CHECK_RAM_ZEROED;
		if (hv_vm_destroy(h) == 1)
			rc->checks_passed |= CHECK_VM_STOPPED | CHECK_RAM_ZEROED;
	}
	fault_point("wipe-after-intent");
	r = volume_wipe_destroy(h->vol);
	fault_point("wipe-after-destroy");

	if (r == 0)
		r = volume_wipe_verify(h->vol, &passed);
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
	if (r != 0 || passed != VOLUME_CHECKS_ALL) {
		log_err("cleave-hv: wipe verification failed (checks 0x%x)", passed);
		return -EIO;
	}
	/* The employee can enroll again: a fresh, empty volume under a new epoch. */
	rc->checks_run |= CHECK_FRESH_VOLUME;
	r = volume_wipe_provision(h->vol);
	if (r == 0)
		rc->checks_passed |= CHECK_FRESH_VOLUME;
	return r;
}

/* Signs the receipt of a finished wipe and forgets its ticket. */
static int64_t
wipe_finish(struct hv *h, struct receipt *rc, int r, struct dispatch_call *c)
{
	char path[PATH_MAX];
	int64_t st = receipt_finish(h, rc, r == 0 ? CLV_OK : CLV_E_IO, c);

	if (st == CLV_OK && wipe_ticket_path(h, path, sizeof(path)) == 0)
		unlink(path);
	/* The corporate half is gone: so is its enrollment. The next one pins afresh. */
	if (st == CLV_OK && r == 0)
		trust_unpin(&h->trust);
	/* A fresh, empty corporate half, so the employee can enroll again. */
	if (st == CLV_OK && r == 0 && h->kvm)
		hv_vm_boot(h, h->ram_bytes >> 20);
	log_info("cleave-hv: corporate half wiped by cryptographic erase (%s)",
		 r == 0 ? "verified" : "NOT verified");
	return st;
}

static int64_t
h_wipe(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	char path[PATH_MAX];
	struct ticket tk;
	struct receipt rc;
	int r = take_ticket(h, c, TICKET_WIPE, &tk);

	if (r != CLV_OK)
		return r;
	receipt_start(h, &rc, &tk, c->in);
	/* Intent first: the ticket, then the volume headers, both durable. */
	r = wipe_ticket_path(h, path, sizeof(path));
	if (r == 0)
		r = file_write_atomic(path, c->in, TICKET_LEN, 0600);
	if (r == 0)
		r = wipe_begin(h, rc.ticket_hash);
	rc.checks_run = CHECK_INTENT_RECORDED;
	if (r == 0)
		r = wipe_run(h, &rc);
	return wipe_finish(h, &rc, r, c);
}

int
hv_resume_wipe(struct hv *h)
{
	uint8_t raw[RECEIPT_LEN], hash[32];
	char path[PATH_MAX], *t = NULL;
	struct dispatch_call c = {.out = raw, .out_cap = sizeof(raw)};
	struct ticket tk;
	struct receipt rc;
	size_t n = 0;
	int pending = volume_wipe_pending(h->vol, hash) == 1;
	int erased = hv_state_of(h) == HV_STATE_ERASED;
	int r = 0;

	/* The ticket is saved before anything else: it marks an authorised, unfinished wipe. */
	if (wipe_ticket_path(h, path, sizeof(path)) == 0)
		t = file_read_all(path, TICKET_LEN, &n);
	if (t != NULL && (n != TICKET_LEN || ticket_decode((uint8_t *)t, n, &tk) != 0)) {
		free(t);
		t = NULL;
	}
	if (!pending && !erased && t == NULL)
		return 0;
	log_warn("cleave-hv: a wipe was interrupted; finishing it before anything else");
	if (t != NULL) {
		receipt_start(h, &rc, &tk, (uint8_t *)t);
	} else {
		/* The intent is in the headers; finish anyway, with a receipt naming no ticket. */
		memset(&rc, 0, sizeof(rc));
		rc.type = RECEIPT_AUTO_WIPE;
		rc.epoch_before = h->key_epoch;
	}
	rc.started_ms = h->clock();
	rc.checks_run = CHECK_INTENT_RECORDED;
	if (!pending && !erased)
		r = wipe_begin(h, rc.ticket_hash);
	free(t);
	if (r == 0)
		r = wipe_run(h, &rc);
	return wipe_finish(h, &rc, r, &c) == CLV_OK ? 0 : -EIO;
}

/* A receipt for an action cleave-hv took on its own (no ticket). */
static void
auto_receipt(struct hv *h, struct receipt *rc, uint16_t type)
{
	memset(rc, 0, sizeof(*rc));
	rc->type = type;
	rc->epoch_before = h->key_epoch;
	rc->started_ms = h->clock();
}

/*
 * A wipe cleave-hv decides by itself (offline too long, too many failed unlocks), with an
 * AUTO_WIPE receipt kept for the server. Its intent hash is bound to why. 1 done, -EIO failed.
 */
static int
auto_wipe(struct hv *h, const char *why)
{
	uint8_t out[RECEIPT_LEN], intent[32];
	struct dispatch_call c = {.out = out, .out_cap = sizeof(out)};
	char tag[128];
	int n = snprintf(tag, sizeof(tag), "cleave-hv auto-wipe %s", why);
	struct receipt rc;
	int r;

	log_warn("cleave-hv: wiping the corporate half as the policy requires (%s)", why);
	auto_receipt(h, &rc, RECEIPT_AUTO_WIPE);
	crypto_sha256(tag, (size_t)n, intent);
	rc.checks_run = CHECK_INTENT_RECORDED;
	r = wipe_begin(h, intent);
	if (r == 0)
		r = wipe_run(h, &rc);
	return wipe_finish(h, &rc, r, &c) == CLV_OK ? 1 : -EIO;
}

int
hv_lease_check(struct hv *h)
{
	uint8_t out[RECEIPT_LEN];
	struct dispatch_call c = {.out = out, .out_cap = sizeof(out)};
	const struct trust *t = &h->trust;
	int64_t offline = (int64_t)(h->clock() / 1000) - (int64_t)t->lease_until;
	struct receipt rc;
	char why[64];
	int r;

	if (!t->pinned || t->lease_until == 0 || offline <= 0)
		return 0;
	if (t->policy[1] > 0 && offline >= (int64_t)t->policy[1] &&
	    (h->state == HV_STATE_ACTIVE || h->state == HV_STATE_LOCKED)) {
		log_warn("cleave-hv: offline %lld s past the lease", (long long)offline);
		snprintf(why, sizeof(why), "lease %llu", (unsigned long long)t->lease_until);
		return auto_wipe(h, why);
	}
	if (t->policy[0] > 0 && offline >= (int64_t)t->policy[0] && h->state == HV_STATE_ACTIVE) {
		log_warn("cleave-hv: offline %lld s past the lease: locking the corporate half",
			 (long long)offline);
		auto_receipt(h, &rc, RECEIPT_AUTO_LOCK);
		r = lock_run(h, &rc);
		return receipt_finish(h, &rc, r == 0 ? CLV_OK : CLV_E_IO, &c) == CLV_OK ? 1 : -EIO;
	}
	return 0;
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
	return hv_resume_wipe(h);
}

void
hv_orders_close(struct hv *h)
{
	volume_close(h->vol);
	h->vol = NULL;
}
