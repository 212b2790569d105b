/*
 * The device side of the command lifecycle: check-in (report state, collect what is pending),
 * acknowledge, and report results with an optional receipt. A receipt is checked against the
 * hypervisor key registered at enrollment and the command's own ticket; only then is the
 * command "verified". Everything here is idempotent, because agents retry.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"
#include "wire.h"

static int
str_changed(const char *now, const char *before)
{
	return now != NULL && strcmp(now, before) != 0;
}

#define ATTEST_SKEW_MS (10 * 60 * 1000)

/* What a check-in's attestation showed: verdict "ok" or "mismatch", NULL without one. */
struct evidence {
	const char *verdict;
	struct attestation a; /* valid when verdict is "ok" */
	int64_t now;          /* unix seconds */
};

/*
 * Judges an attestation the device sent (see struct device_report): signed by the registered
 * hypervisor key, the enrolled measurement, a clock within 10 minutes of ours.
 */
static void
attest_judge(struct service *s, const struct device *d, const uint8_t *buf, struct evidence *ev)
{
	int64_t now_ms = service_now_ms(s);
	struct attestation *a = &ev->a;

	ev->now = now_ms / 1000;
	ev->verdict = NULL;
	if (buf == NULL)
		return;
	ev->verdict = "mismatch";
	if (attest_decode(buf, ATTEST_LEN, a) != 0 || memcmp(a->hv_key, d->hv_key, 32) != 0 ||
	    !svc_hv_sig_ok(d, a->sig_alg, buf, ATTEST_BODY_LEN) ||
	    memcmp(a->measurement, d->measurement, 32) != 0 ||
	    (int64_t)a->time_ms < now_ms - ATTEST_SKEW_MS ||
	    (int64_t)a->time_ms > now_ms + ATTEST_SKEW_MS)
		return;
	ev->verdict = "ok";
	/* A hypervisor that no longer holds our key was released by a wipe (it unpins then). */
	if (memcmp(a->owner_key, s->ticket_pub, 32) != 0)
		a->state = HV_STATE_ERASED;
}

/* The API's name of a corporate-half state that a hypervisor signed. */
static const char *
state_name(uint16_t st)
{
	switch (st) {
	case HV_STATE_ACTIVE:
		return "active";
	case HV_STATE_ERASED:
		return "wiped";
	default: /* locked, or a wipe under way: stopped, keys gone */
		return "locked";
	}
}

/*
 * Applies a check-in to d: the corporate state and key epoch only from a good attestation
 * (the agent's own words for them are not evidence), the applied policy and agent version as
 * the agent reports them. Returns the DEV_F_* bits of the columns it changed.
 */
static unsigned
apply_report(struct device *d, const struct device_report *rep, const struct evidence *ev)
{
	unsigned ch = 0;

	if (rep == NULL)
		return 0;
	if (ev->verdict != NULL && strcmp(ev->verdict, d->attest_status) != 0) {
		str_copy(d->attest_status, sizeof(d->attest_status), ev->verdict);
		ch |= DEV_F_ATTEST;
	}
	if (ev->verdict != NULL && strcmp(ev->verdict, "ok") == 0) {
		const char *st = state_name(ev->a.state);

		d->attested_at = ev->now;
		memcpy(d->attested_policy, ev->a.policy_digest, sizeof(d->attested_policy));
		ch |= DEV_F_ATTESTED_AT;
		if (strcmp(st, d->reported_state) != 0) {
			str_copy(d->reported_state, sizeof(d->reported_state), st);
			ch |= DEV_F_REPORTED;
		}
		if ((int64_t)ev->a.key_epoch != d->key_epoch) {
			d->key_epoch = (int64_t)ev->a.key_epoch;
			d->epoch_since = ev->now;
			ch |= DEV_F_KEY_EPOCH | DEV_F_EPOCH_SINCE;
		}
	}
	if (str_changed(rep->policy_name, d->applied_policy_name)) {
		str_copy(d->applied_policy_name, sizeof(d->applied_policy_name), rep->policy_name);
		ch |= DEV_F_APPLIED;
	}
	if (rep->policy_version >= 0 && rep->policy_version != d->applied_policy_version) {
		d->applied_policy_version = rep->policy_version;
		ch |= DEV_F_APPLIED;
	}
	if (str_changed(rep->agent_version, d->agent_version)) {
		str_copy(d->agent_version, sizeof(d->agent_version), rep->agent_version);
		ch |= DEV_F_AGENT;
	}
	return ch;
}

/* Keeps the open commands the device has not acknowledged yet; 1 when one is still queued. */
static int
pending_of(const struct command *open, size_t n, struct checkin_result *r)
{
	int queued = 0;

	r->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(open[i].status, "acknowledged") == 0)
			continue;
		queued |= strcmp(open[i].status, "queued") == 0;
		r->commands[r->n++] = open[i];
	}
	return queued;
}

/*
 * The writing half of a check-in, in one transaction on rows read inside it: the device's
 * report is applied to the device as it is now (not as it was when the request was
 * authenticated), a policy version it was not sent yet is queued for it (this is how a policy
 * change reaches each device: devices.c), and queued commands become delivered only if they
 * are still queued, so a command canceled or finished meanwhile is never handed out or set
 * back.
 */
static int
checkin_write_once(struct service *s, struct device *dev, const struct device_report *rep,
		   const struct evidence *ev, struct checkin_result *r, unsigned *changed)
{
	struct command open[CHECKIN_MAX_COMMANDS];
	int64_t now = svc_now_s(s);
	size_t n = 0;
	int queued = 0;
	int rc = s->st->ops->tx_begin(s->st);

	if (rc != 0)
		return rc;
	rc = s->st->ops->device_get_for_update(s->st, dev->id, dev);
	if (rc == 0) {
		*changed = apply_report(dev, rep, ev);
		if (*changed != 0)
			rc = s->st->ops->device_patch(s->st, dev, *changed);
		if (rc == 0 && (*changed & (DEV_F_ATTEST | DEV_F_REPORTED)))
			rc = svc_ev_device(s, "compliance.changed", dev);
	}
	/* A policy version this device has not been sent yet: its own command, signed now. */
	if (rc == 0)
		rc = svc_policy_sync_tx(s, dev, "system", &queued);
	if (rc == 0)
		rc = s->st->ops->command_open(s->st, dev->id, open, CHECKIN_MAX_COMMANDS, &n);
	if (rc == 0)
		pending_of(open, n, r);
	for (size_t i = 0; rc == 0 && i < r->n; i++) {
		struct command *c = &r->commands[i];

		if (strcmp(c->status, "queued") != 0)
			continue;
		str_copy(c->status, sizeof(c->status), "delivered");
		c->delivered_at = now;
		rc = s->st->ops->command_update(s->st, c, "queued");
	}
	if (rc == 0)
		return s->st->ops->tx_commit(s->st);
	s->st->ops->tx_rollback(s->st);
	return rc;
}

static int
checkin_write(struct service *s, struct device *dev, const struct device_report *rep,
	      const struct evidence *ev, struct checkin_result *r, unsigned *changed)
{
	int rc;

	SVC_TX_RETRY(s, rc, checkin_write_once(s, dev, rep, ev, r, changed));
	return rc;
}

int
svc_checkin(struct service *s, struct device *dev, const struct device_report *rep,
	    struct checkin_result *r, uint64_t *gen, struct svc_error *err)
{
	struct command open[CHECKIN_MAX_COMMANDS];
	struct device probe = *dev;
	struct evidence ev;
	unsigned changed = 0;
	size_t n = 0;
	int write, have_policy = 0, rc;

	if (rep != NULL) /* a parked request coming back is the same check-in */
		atomic_fetch_add(&s->checkins, 1);
	attest_judge(s, dev, rep ? rep->attestation : NULL, &ev);
	/* Read the generation before looking, so a command queued after the look wakes us. */
	*gen = devstate_gen(&s->dev, dev->id);
	r->n = 0;
	r->policy_pending = 0;
	/*
	 * A look without the writer lock first: most check-ins find nothing new and write nothing.
	 * Anything to write (a changed report, a queued command) is redone inside a transaction.
	 */
	rc = s->st->ops->command_open(s->st, dev->id, open, CHECKIN_MAX_COMMANDS, &n);
	if (rc != 0)
		return svc_store_fail(err, rc, "command");
	write = pending_of(open, n, r) || apply_report(&probe, rep, &ev) != 0;
	if (!write) { /* a policy version not sent yet is a write too (redone inside it) */
		rc = svc_policy_check(s, &probe, &r->policy, &write);
		have_policy = rc == 0;
		if (rc != 0 && rc != -ENOENT)
			return svc_store_fail(err, rc, "policy");
	}
	if (write) {
		rc = checkin_write(s, dev, rep, &ev, r, &changed);
		if (rc == -ENOENT)
			return svc_fail(err, SVC_UNAUTHORIZED, "device %s no longer exists",
					dev->id);
		if (rc != 0)
			return svc_store_fail(err, rc, "command");
		if ((changed & DEV_F_ATTEST) && strcmp(dev->attest_status, "mismatch") == 0)
			log_warn("device %s: its hypervisor attestation does not match enrollment "
				 "(key, measurement, signature or clock)",
				 dev->id);
		have_policy = svc_policy_effective(s, dev, &r->policy) == 0;
	}
	if (have_policy && (strcmp(r->policy.name, dev->applied_policy_name) != 0 ||
			    r->policy.version != dev->applied_policy_version))
		r->policy_pending = 1;
	return 0;
}

/* Loads a command of this device; another device's command is "not found". */
static int
own_command(struct service *s, const struct device *dev, const char *cmd_id, struct command *c,
	    struct svc_error *err)
{
	int r = s->st->ops->command_get(s->st, cmd_id, c);

	if (r == 0 && strcmp(c->device_id, dev->id) != 0)
		r = -ENOENT;
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no command with id %s for this device",
				cmd_id);
	return r == 0 ? 0 : svc_store_fail(err, r, "command");
}

static int
command_ack_once(struct service *s, const struct device *dev, const char *cmd_id,
		 struct command *out, struct svc_error *err)
{
	char from[16];
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return svc_store_fail(err, r, "command");
	r = own_command(s, dev, cmd_id, out, err);
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		return r;
	}
	if (!(strcmp(out->status, "queued") == 0 || strcmp(out->status, "delivered") == 0)) {
		s->st->ops->tx_rollback(s->st);
		if (strcmp(out->status, "canceled") == 0)
			return svc_fail(err, SVC_CONFLICT, "command %s was canceled", cmd_id);
		return 0; /* already acknowledged or finished: acknowledging again is harmless */
	}
	str_copy(from, sizeof(from), out->status);
	str_copy(out->status, sizeof(out->status), "acknowledged");
	out->acknowledged_at = svc_now_s(s);
	if (out->delivered_at == 0)
		out->delivered_at = out->acknowledged_at;
	r = s->st->ops->command_update(s->st, out, from);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), dev->id, "command.ack", cmd_id, "ok",
				 out->type);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	return r == 0 ? 0 : svc_store_fail(err, r, "command");
}

int
svc_command_ack(struct service *s, const struct device *dev, const char *cmd_id,
		struct command *out, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, command_ack_once(s, dev, cmd_id, out, err));
	return r;
}

/*
 * Checks a receipt against the device's hypervisor key and the command's ticket. Returns 0 when
 * it is valid for this command, else fills err (SVC_INVALID) and returns -EINVAL.
 */
static int
receipt_check(const struct device *dev, const struct command *c, const uint8_t *buf, size_t len,
	      struct receipt *rc, struct svc_error *err)
{
	uint8_t th[32];

	if (receipt_decode(buf, len, rc) != 0)
		return svc_fail(err, SVC_INVALID,
				"receipt is not a valid receipt (%d bytes "
				"expected)",
				RECEIPT_LEN);
	if (memcmp(rc->hv_key, dev->hv_key, 32) != 0)
		return svc_fail(err, SVC_INVALID, "receipt is from a different hypervisor");
	if (!svc_hv_sig_ok(dev, rc->sig_alg, buf, RECEIPT_BODY_LEN))
		return svc_fail(err, SVC_INVALID, "receipt signature does not verify");
	crypto_sha256(c->ticket, TICKET_LEN, th);
	if (strcmp(rc->command_id, c->id) != 0 || memcmp(rc->ticket_hash, th, 32) != 0 ||
	    rc->ticket_counter != (uint64_t)c->counter || strcmp(rc->device_id, dev->id) != 0)
		return svc_fail(err, SVC_INVALID, "receipt is for a different command");
	return 0;
}

/*
 * What a verified command means for the device record; returns the DEV_F_* bits it set. Only
 * a receipt that proves the action moves the corporate state: a claim never does.
 */
static unsigned
apply_completion(struct service *s, struct device *d, const struct command *c,
		 const struct receipt *rc)
{
	const char *state = NULL;
	unsigned ch = 0;

	if (strcmp(c->type, "retire") == 0) {
		/* The employee left: the record is retired even when the wipe is not proven. */
		str_copy(d->status, sizeof(d->status), "retired");
		ch |= DEV_F_STATUS;
	}
	if (!c->verified)
		return ch;
	if (strcmp(c->type, "wipe") == 0 || strcmp(c->type, "retire") == 0)
		state = "wiped";
	else if (strcmp(c->type, "lock") == 0)
		state = "locked";
	else if (strcmp(c->type, "unlock") == 0)
		state = "active";
	if (state != NULL) {
		str_copy(d->reported_state, sizeof(d->reported_state), state);
		ch |= DEV_F_REPORTED;
	}
	if ((int64_t)rc->epoch_after != d->key_epoch) {
		d->key_epoch = (int64_t)rc->epoch_after;
		d->epoch_since = svc_now_s(s);
		ch |= DEV_F_KEY_EPOCH | DEV_F_EPOCH_SINCE;
	}
	return ch;
}

/* Commands that cleave-hv answers with a receipt. */
static int
has_receipt_type(const char *type)
{
	return strcmp(type, "refresh") != 0 && strcmp(type, "policy") != 0;
}

/*
 * Takes the receipt of a result, if any: checks it is this command's (else -EBADMSG, audited
 * by the caller) and that it does not contradict the status (else -EPROTO), and decides
 * verified and its note.
 */
static int
take_receipt(const struct device *dev, const struct command_result *res, struct command *out,
	     struct receipt *rc, struct svc_error *err)
{
	int ok = strcmp(res->status, "completed") == 0;

	out->verified = 0;
	out->verify_note[0] = '\0';
	if (res->receipt_len == 0) {
		if (ok && has_receipt_type(out->type))
			snprintf(out->verify_note, sizeof(out->verify_note),
				 "no receipt from the hypervisor");
		return 0;
	}
	if (receipt_check(dev, out, res->receipt, res->receipt_len, rc, err) != 0)
		return -EBADMSG;
	if (ok != (rc->result == 0)) {
		svc_fail(err, SVC_INVALID,
			 "the result says %s but the hypervisor's receipt says the %s %s (result "
			 "%d)",
			 res->status, out->type, rc->result == 0 ? "was done" : "failed",
			 rc->result);
		return -EBADMSG;
	}
	memcpy(out->receipt, res->receipt, res->receipt_len);
	out->receipt_len = res->receipt_len;
	if (ok) {
		svc_receipt_shortfall(rc, out->verify_note, sizeof(out->verify_note));
		out->verified = out->verify_note[0] == '\0';
	}
	return 0;
}

static int
result_tx(struct service *s, const struct device *dev, const char *cmd_id,
	  const struct command_result *res, struct command *out, struct svc_error *err)
{
	struct receipt rc;
	struct device d;
	char detail[STORE_TEXT_MAX], from[16];
	int ok = strcmp(res->status, "completed") == 0;
	int r = own_command(s, dev, cmd_id, out, err);

	if (r != 0)
		return r;
	if (strcmp(out->status, "completed") == 0 || strcmp(out->status, "failed") == 0) {
		/* The same result again is harmless; it may bring the receipt that was missing. */
		if (strcmp(out->status, res->status) != 0)
			return svc_fail(err, SVC_CONFLICT, "command %s already %s", cmd_id,
					out->status);
		if (out->receipt_len > 0 || res->receipt_len == 0)
			return 1;
	}
	if (strcmp(out->status, "canceled") == 0)
		return svc_fail(err, SVC_CONFLICT, "command %s was canceled", cmd_id);
	r = take_receipt(dev, res, out, &rc, err);
	if (r != 0)
		return r;
	str_copy(from, sizeof(from), out->status);
	str_copy(out->status, sizeof(out->status), res->status);
	str_copy(out->result_detail, sizeof(out->result_detail), res->detail ? res->detail : "");
	out->completed_at = svc_now_s(s);
	r = s->st->ops->command_update(s->st, out, from);
	if (r == 0 && ok) {
		r = s->st->ops->device_get_for_update(s->st, dev->id, &d);
		if (r == 0) {
			unsigned ch = apply_completion(s, &d, out, &rc);

			if (ch != 0)
				r = s->st->ops->device_patch(s->st, &d, ch);
			if (r == 0 && (ch & DEV_F_STATUS))
				r = svc_ev_device(s, "device.retired", &d);
			if (r == 0 && (ch & DEV_F_REPORTED))
				r = svc_ev_device(s, "compliance.changed", &d);
		}
	}
	if (r == 0)
		r = svc_ev_command_completed(s, out);
	snprintf(detail, sizeof(detail), "type=%s receipt=%s detail=%s%s%s", out->type,
		 out->receipt_len ? (out->verified ? "verified" : "unverified") : "none",
		 out->result_detail, out->verify_note[0] ? " unverified: " : "", out->verify_note);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), dev->id, "command.result", cmd_id,
				 res->status, detail);
	return r == 0 ? 0 : svc_store_fail(err, r, "command");
}

static int
command_result_once(struct service *s, const struct device *dev, const char *cmd_id,
		    const struct command_result *res, struct command *out, struct svc_error *err)
{
	int r;

	if (strcmp(res->status, "completed") != 0 && strcmp(res->status, "failed") != 0)
		return svc_fail(err, SVC_INVALID, "status must be completed or failed");
	if (res->receipt_len > sizeof(out->receipt))
		return svc_fail(err, SVC_INVALID, "receipt is too large");
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "command");
	r = result_tx(s, dev, cmd_id, res, out, err);
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		if (r == -EBADMSG) {
			svc_audit_event(s, dev->id, "command.receipt", cmd_id, "rejected",
					err->detail);
			return -EINVAL;
		}
		return r > 0 ? 0 : r;
	}
	r = s->st->ops->tx_commit(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "command");
	log_info("command %s (%s) %s by %s", out->id, out->type, out->status, dev->id);
	return 0;
}

int
svc_command_result(struct service *s, const struct device *dev, const char *cmd_id,
		   const struct command_result *res, struct command *out, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, command_result_once(s, dev, cmd_id, res, out, err));
	return r;
}

int
svc_checkin_again(struct service *s, const char *device_id, struct checkin_result *r, uint64_t *gen,
		  struct svc_error *err)
{
	struct device d;
	int rc = s->st->ops->device_get(s->st, device_id, &d);

	if (rc == -ENOENT)
		return svc_fail(err, SVC_UNAUTHORIZED, "device %s no longer exists", device_id);
	if (rc != 0)
		return svc_store_fail(err, rc, "device");
	return svc_checkin(s, &d, NULL, r, gen, err);
}
