/*
 * What a device hands in besides command results: the receipts its hypervisor signed on its
 * own (offline auto-lock and auto-wipe) or that it could not tie to a command, its lease
 * renewals, and its unenrollment. Receipts are verified against the hypervisor key registered
 * at enrollment; a receipt that names a command of this device completes that command exactly
 * as a result would; the others are recorded in the audit log (with the receipt itself) and
 * move the device's reported state.
 */
#include "service_priv.h"

#include "hvsig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "b64.h"
#include "log.h"
#include "wire.h"

#define LEASE_DEFAULT_S 900 /* 15 minutes past the last contact */

int
svc_lease(struct service *s, const struct device *dev, uint8_t out[TICKET_LEN], int64_t *until,
	  struct svc_error *err)
{
	int64_t now_ms = service_now_ms(s),
		len = s->cfg.lease_s > 0 ? s->cfg.lease_s : LEASE_DEFAULT_S;
	struct ticket t;

	memset(&t, 0, sizeof(t));
	t.type = TICKET_LEASE;
	str_copy(t.device_id, sizeof(t.device_id), dev->id);
	str_copy(t.command_id, sizeof(t.command_id), "lease");
	memcpy(t.hv_key, dev->hv_key, sizeof(t.hv_key));
	/*
	 * Leases count on their own in cleave-hv (schema/wire-formats.md 2.4): the server's clock
	 * in milliseconds is their counter, so issuing one writes nothing here.
	 */
	t.counter = (uint64_t)now_ms;
	t.issued_at = (uint64_t)(now_ms / 1000);
	t.expires_at = t.issued_at + (uint64_t)len;
	t.args[0] = t.expires_at;
	*until = (int64_t)t.expires_at;
	if (ticket_encode(&t, out) != 0 ||
	    ed25519_key_sign(s->ticket_key, out, TICKET_BODY_LEN, out + TICKET_BODY_LEN) != 0)
		return svc_fail(err, SVC_INTERNAL, "cannot sign a lease");
	return 0;
}

void
svc_receipt_shortfall(const struct receipt *rc, char *note, size_t cap)
{
	uint32_t failed = rc->checks_run & ~rc->checks_passed;
	uint32_t missing = receipt_required_checks(rc->type) & ~rc->checks_passed;
	const char *what = rc->type == RECEIPT_AUTO_WIPE   ? "auto-wipe"
			   : rc->type == RECEIPT_AUTO_LOCK ? "auto-lock"
							   : ticket_type_name(rc->type);
	size_t n = 0;

	note[0] = '\0';
	if (rc->result != 0) {
		snprintf(note, cap, "the hypervisor reports that the %s failed (error %d)",
			 what ? what : "action", rc->result);
		return;
	}
	for (uint32_t bit = 1; bit != 0 && n < cap; bit <<= 1) {
		if ((failed | missing) & bit) {
			int w = snprintf(note + n, cap - n, "%s%s %s", n ? "; " : "",
					 check_name(bit), failed & bit ? "failed" : "not shown");

			n += w > 0 ? (size_t)w : 0;
		}
	}
	if (n == 0 &&
	    (rc->type == TICKET_WIPE || rc->type == TICKET_RETIRE || rc->type == TICKET_REKEY ||
	     rc->type == RECEIPT_AUTO_WIPE) &&
	    rc->epoch_after <= rc->epoch_before)
		snprintf(note, cap, "the key epoch did not advance (%llu -> %llu)",
			 (unsigned long long)rc->epoch_before, (unsigned long long)rc->epoch_after);
}

/* Checks that buf is a receipt of this device's hypervisor; decodes it into rc. */
int
svc_hv_sig_ok(const struct device *d, uint16_t rec_alg, const uint8_t *buf, size_t body_len)
{
	return rec_alg == d->hv_sig_alg &&
	       hvsig_verify(rec_alg, d->hv_key, d->hv_spki, d->hv_spki_len, buf, body_len,
			    buf + body_len) == 0;
}

static int
receipt_of_device(const struct device *dev, const uint8_t *buf, size_t len, size_t i,
		  struct receipt *rc, struct svc_error *err)
{
	if (len != RECEIPT_LEN || receipt_decode(buf, len, rc) != 0)
		return svc_fail(err, SVC_INVALID, "receipts[%zu] is not a 320-byte receipt", i);
	if (memcmp(rc->hv_key, dev->hv_key, 32) != 0 || strcmp(rc->device_id, dev->id) != 0)
		return svc_fail(err, SVC_INVALID,
				"receipts[%zu] is from another hypervisor or device", i);
	if (!svc_hv_sig_ok(dev, rc->sig_alg, buf, RECEIPT_BODY_LEN))
		return svc_fail(err, SVC_INVALID, "receipts[%zu] signature does not verify", i);
	return 0;
}

#define AUDIT_PAGE 32

/*
 * 1 when this device's auto receipt seq is already in the audit log (an agent that crashed
 * between our answer and its ack to cleave-hv uploads it again), 0 when not, or -errno.
 * Auto receipts are rare, so a bounded scan of the device's receipt entries is enough.
 */
static int
auto_seen(struct service *s, const struct device *dev, uint64_t seq)
{
	struct audit_entry *page = calloc(AUDIT_PAGE, sizeof(*page));
	struct audit_filter f = {
		.action = "device.receipt", .target = dev->id, .limit = AUDIT_PAGE};
	char want[40];
	int found = 0, r = 0;

	if (page == NULL)
		return -ENOMEM;
	snprintf(want, sizeof(want), "seq=%llu ", (unsigned long long)seq);
	for (int p = 0; p < 64 && !found; p++) { /* at most 2,048 entries */
		size_t n = 0;

		r = s->st->ops->audit_list(s->st, &f, page, &n);
		if (r != 0)
			break;
		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(page[i].outcome, "rejected") != 0 &&
				strncmp(page[i].detail, want, strlen(want)) == 0;
		if (n < AUDIT_PAGE)
			break;
		f.after = page[n - 1].seq;
	}
	free(page);
	return r != 0 ? r : found;
}

/* Records a receipt cleave-hv made on its own: audit entry with the receipt, reported state. */
static int
record_auto_once(struct service *s, const struct device *dev, const uint8_t *buf,
		 const struct receipt *rc, struct svc_error *err)
{
	char b64[RECEIPT_LEN * 2], detail[STORE_TEXT_MAX + 64], note[160];
	const char *what = rc->type == RECEIPT_AUTO_WIPE ? "auto_wipe" : "auto_lock";
	struct device d;
	int r;

	b64_encode(b64, sizeof(b64), buf, RECEIPT_LEN);
	svc_receipt_shortfall(rc, note, sizeof(note));
	snprintf(detail, sizeof(detail), "seq=%llu result=%d receipt=%s%s%s",
		 (unsigned long long)rc->seq, rc->result, b64, note[0] ? " unverified: " : "",
		 note);
	r = s->st->ops->tx_begin(s->st);
	if (r == 0) {
		int seen = auto_seen(s, dev, rc->seq);

		if (seen == 1) {
			s->st->ops->tx_rollback(s->st);
			return 0; /* already recorded: the device sent it again */
		}
		r = seen < 0 ? seen : 0;
	}
	if (r == 0 && note[0] == '\0') { /* only a receipt that proves it moves the state */
		memset(&d, 0, sizeof(d));
		str_copy(d.id, sizeof(d.id), dev->id);
		str_copy(d.reported_state, sizeof(d.reported_state),
			 rc->type == RECEIPT_AUTO_WIPE ? "wiped" : "locked");
		d.key_epoch = (int64_t)rc->epoch_after;
		d.epoch_since = svc_now_s(s);
		r = s->st->ops->device_patch(
			s->st, &d,
			DEV_F_REPORTED | DEV_F_KEY_EPOCH |
				(rc->epoch_after != rc->epoch_before ? DEV_F_EPOCH_SINCE : 0u));
		/* The hypervisor acted on its own: the record as it is now, for the event. */
		if (r == 0)
			r = s->st->ops->device_get(s->st, dev->id, &d);
		if (r == 0)
			r = svc_ev_device(s, "compliance.changed", &d);
	}
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), dev->id, "device.receipt", dev->id, what,
				 detail);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "receipt");
	log_warn("device %s: hypervisor %s on its own (receipt %llu, %s)", dev->id,
		 rc->type == RECEIPT_AUTO_WIPE ? "wiped the corporate half" : "locked",
		 (unsigned long long)rc->seq, note[0] == '\0' ? "verified" : note);
	return 0;
}

static int
record_auto(struct service *s, const struct device *dev, const uint8_t *buf,
	    const struct receipt *rc, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, record_auto_once(s, dev, buf, rc, err));
	return r;
}

int
svc_receipts_upload(struct service *s, const struct device *dev, const uint8_t (*bufs)[RECEIPT_LEN],
		    size_t n, size_t *accepted, uint64_t *highest, struct svc_error *err)
{
	struct receipt rc;
	int r;

	*accepted = 0;
	*highest = 0;
	/* All or nothing: one bad receipt and none is taken (the device keeps them all). */
	for (size_t i = 0; i < n; i++) {
		if (receipt_of_device(dev, bufs[i], RECEIPT_LEN, i, &rc, err) != 0) {
			svc_audit_event(s, dev->id, "device.receipt", dev->id, "rejected",
					err->detail);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		(void)receipt_decode(bufs[i], RECEIPT_LEN, &rc);
		if (rc.type == RECEIPT_AUTO_LOCK || rc.type == RECEIPT_AUTO_WIPE) {
			r = record_auto(s, dev, bufs[i], &rc, err);
		} else {
			/* A command's receipt: the same as reporting its result. */
			struct command_result res = {
				.status = rc.result == 0 ? "completed" : "failed",
				.detail = "receipt uploaded",
				.receipt = bufs[i],
				.receipt_len = RECEIPT_LEN,
			};
			struct command cmd;

			r = svc_command_result(s, dev, rc.command_id, &res, &cmd, err);
			if (r != 0 && (err->kind == SVC_CONFLICT || err->kind == SVC_NOT_FOUND)) {
				/* Already settled (or expired and purged): the server has what it needs. */
				log_info("device %s: receipt %llu for %s not applied: %s", dev->id,
					 (unsigned long long)rc.seq, rc.command_id, err->detail);
				memset(err, 0, sizeof(*err));
				r = 0;
			}
		}
		if (r != 0)
			return r;
		(*accepted)++;
		if (rc.seq > *highest)
			*highest = rc.seq;
	}
	return 0;
}

static int
unenroll_once(struct service *s, const struct device *dev, struct command *out, int *created,
	      struct svc_error *err)
{
	struct command open[CHECKIN_MAX_COMMANDS];
	struct device d;
	size_t n = 0;
	int r;

	*created = 0;
	r = s->st->ops->tx_begin(s->st);
	if (r == 0)
		r = s->st->ops->device_get_for_update(s->st, dev->id, &d);
	if (r == 0)
		r = s->st->ops->command_open(s->st, dev->id, open, CHECKIN_MAX_COMMANDS, &n);
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		return svc_store_fail(err, r, "device");
	}
	if (strcmp(d.status, "retired") == 0) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_CONFLICT, "device %s is already retired", dev->id);
	}
	/* Asking again returns the retire already on its way. */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(open[i].type, "retire") == 0) {
			s->st->ops->tx_rollback(s->st);
			*out = open[i];
			return 0;
		}
	}
	r = svc_command_queue_tx(s, &d, "retire", "the employee unenrolled the device", dev->id, 0,
				 NULL, NULL, NULL, out);
	/* Rare (once per device), unlike a check-in: its parked poll may be on another server. */
	if (r == 0)
		r = svc_notify_tx(s, d.id);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "command");
	*created = 1;
	log_info("device %s asked to unenroll: retire %s queued", dev->id, out->id);
	return 0;
}

int
svc_unenroll(struct service *s, const struct device *dev, struct command *out, int *created,
	     struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, unenroll_once(s, dev, out, created, err));
	return r;
}
