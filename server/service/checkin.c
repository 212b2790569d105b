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

/* "ok" or "mismatch" for an attestation the device sent (see struct device_report). */
static const char *
attest_verdict(const struct device *d, const uint8_t *buf, int64_t now_ms)
{
	struct attestation a;

	if (attest_decode(buf, ATTEST_LEN, &a) != 0 || memcmp(a.hv_key, d->hv_key, 32) != 0 ||
	    ed25519_verify(d->hv_key, buf, ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN) != 0 ||
	    memcmp(a.measurement, d->measurement, 32) != 0 ||
	    (int64_t)a.time_ms < now_ms - ATTEST_SKEW_MS ||
	    (int64_t)a.time_ms > now_ms + ATTEST_SKEW_MS)
		return "mismatch";
	return "ok";
}

/*
 * Applies what the device reported to d; verdict is attest_verdict() of the report's
 * attestation, or NULL without one. Returns the DEV_F_* bits of the columns it changed.
 */
static unsigned
apply_report(struct device *d, const struct device_report *rep, const char *verdict)
{
	unsigned ch = 0;

	if (rep == NULL)
		return 0;
	if (verdict != NULL && strcmp(verdict, d->attest_status) != 0) {
		str_copy(d->attest_status, sizeof(d->attest_status), verdict);
		ch |= DEV_F_ATTEST;
	}
	if (str_changed(rep->corporate_state, d->reported_state)) {
		str_copy(d->reported_state, sizeof(d->reported_state), rep->corporate_state);
		ch |= DEV_F_REPORTED;
	}
	if (str_changed(rep->policy_name, d->applied_policy_name)) {
		str_copy(d->applied_policy_name, sizeof(d->applied_policy_name), rep->policy_name);
		ch |= DEV_F_APPLIED;
	}
	if (rep->policy_version >= 0 && rep->policy_version != d->applied_policy_version) {
		d->applied_policy_version = rep->policy_version;
		ch |= DEV_F_APPLIED;
	}
	if (rep->key_epoch >= 0 && rep->key_epoch != d->key_epoch) {
		d->key_epoch = rep->key_epoch;
		ch |= DEV_F_KEY_EPOCH;
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
 * authenticated), and queued commands become delivered only if they are still queued, so a
 * command canceled or finished meanwhile is never handed out or set back.
 */
static int
checkin_write(struct service *s, struct device *dev, const struct device_report *rep,
	      const char *verdict, struct checkin_result *r, unsigned *changed)
{
	struct command open[CHECKIN_MAX_COMMANDS];
	int64_t now = svc_now_s(s);
	size_t n = 0;
	int rc = s->st->ops->tx_begin(s->st);

	if (rc != 0)
		return rc;
	rc = s->st->ops->device_get_for_update(s->st, dev->id, dev);
	if (rc == 0) {
		*changed = apply_report(dev, rep, verdict);
		if (*changed != 0)
			rc = s->st->ops->device_patch(s->st, dev, *changed);
	}
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

int
svc_checkin(struct service *s, struct device *dev, const struct device_report *rep,
	    struct checkin_result *r, uint64_t *gen, struct svc_error *err)
{
	struct command open[CHECKIN_MAX_COMMANDS];
	struct device probe = *dev;
	const char *verdict = NULL;
	unsigned changed = 0;
	size_t n = 0;
	int rc;

	if (rep != NULL) /* a parked request coming back is the same check-in */
		atomic_fetch_add(&s->checkins, 1);
	if (rep != NULL && rep->attestation != NULL)
		verdict = attest_verdict(dev, rep->attestation, service_now_ms(s));
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
	if (pending_of(open, n, r) || apply_report(&probe, rep, verdict) != 0) {
		rc = checkin_write(s, dev, rep, verdict, r, &changed);
		if (rc == -ENOENT)
			return svc_fail(err, SVC_UNAUTHORIZED, "device %s no longer exists",
					dev->id);
		if (rc != 0)
			return svc_store_fail(err, rc, "command");
		if ((changed & DEV_F_ATTEST) && strcmp(dev->attest_status, "mismatch") == 0)
			log_warn("device %s: its hypervisor attestation does not match enrollment "
				 "(key, measurement, signature or clock)",
				 dev->id);
	}
	if (svc_policy_effective(s, dev, &r->policy) == 0 &&
	    (strcmp(r->policy.name, dev->applied_policy_name) != 0 ||
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

int
svc_command_ack(struct service *s, const struct device *dev, const char *cmd_id,
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
	if (ed25519_verify(dev->hv_key, buf, RECEIPT_BODY_LEN, buf + RECEIPT_BODY_LEN) != 0)
		return svc_fail(err, SVC_INVALID, "receipt signature does not verify");
	crypto_sha256(c->ticket, TICKET_LEN, th);
	if (strcmp(rc->command_id, c->id) != 0 || memcmp(rc->ticket_hash, th, 32) != 0 ||
	    rc->ticket_counter != (uint64_t)c->counter || strcmp(rc->device_id, dev->id) != 0)
		return svc_fail(err, SVC_INVALID, "receipt is for a different command");
	return 0;
}

/* What a completed command means for the device record; returns the DEV_F_* bits it set. */
static unsigned
apply_completion(struct device *d, const struct command *c, const struct receipt *rc)
{
	unsigned ch = DEV_F_REPORTED;

	if (strcmp(c->type, "wipe") == 0) {
		str_copy(d->reported_state, sizeof(d->reported_state), "wiped");
	} else if (strcmp(c->type, "retire") == 0) {
		str_copy(d->reported_state, sizeof(d->reported_state), "wiped");
		str_copy(d->status, sizeof(d->status), "retired");
		ch |= DEV_F_STATUS;
	} else if (strcmp(c->type, "lock") == 0) {
		str_copy(d->reported_state, sizeof(d->reported_state), "locked");
	} else if (strcmp(c->type, "unlock") == 0) {
		str_copy(d->reported_state, sizeof(d->reported_state), "active");
	} else {
		ch = 0;
	}
	if (rc != NULL) {
		d->key_epoch = (int64_t)rc->epoch_after;
		ch |= DEV_F_KEY_EPOCH;
	}
	return ch;
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
		if (strcmp(out->status, res->status) == 0)
			return 1; /* the same result again: nothing to do */
		return svc_fail(err, SVC_CONFLICT, "command %s already %s", cmd_id, out->status);
	}
	if (strcmp(out->status, "canceled") == 0)
		return svc_fail(err, SVC_CONFLICT, "command %s was canceled", cmd_id);
	if (res->receipt_len > 0) {
		if (receipt_check(dev, out, res->receipt, res->receipt_len, &rc, err) != 0)
			return -EBADMSG; /* audited by the caller, outside this transaction */
		memcpy(out->receipt, res->receipt, res->receipt_len);
		out->receipt_len = res->receipt_len;
		out->verified = ok && rc.result == 0;
	}
	str_copy(from, sizeof(from), out->status);
	str_copy(out->status, sizeof(out->status), res->status);
	str_copy(out->result_detail, sizeof(out->result_detail), res->detail ? res->detail : "");
	out->completed_at = svc_now_s(s);
	r = s->st->ops->command_update(s->st, out, from);
	if (r == 0 && ok) {
		r = s->st->ops->device_get_for_update(s->st, dev->id, &d);
		if (r == 0) {
			unsigned ch = apply_completion(&d, out, out->receipt_len > 0 ? &rc : NULL);

			if (ch != 0)
				r = s->st->ops->device_patch(s->st, &d, ch);
		}
	}
	snprintf(detail, sizeof(detail), "type=%s receipt=%s detail=%s", out->type,
		 out->receipt_len ? (out->verified ? "verified" : "present") : "none",
		 out->result_detail);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), dev->id, "command.result", cmd_id,
				 res->status, detail);
	return r == 0 ? 0 : svc_store_fail(err, r, "command");
}

int
svc_command_result(struct service *s, const struct device *dev, const char *cmd_id,
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
