/*
 * The command queue: creating a command signs its ticket with the next per-device counter and
 * stores it, the counter, the device's desired state and the audit entry in one transaction, so
 * a 202 is only ever sent for a durable command. Devices then move it through delivered,
 * acknowledged and completed or failed; results are idempotent per (device, command).
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"
#include "wire.h"

/* Admin-orderable types, with the permission each needs. "policy" is server-made only. */
static const struct {
	const char *name;
	enum perm perm;
	const char *desired; /* desired corporate state after it, NULL: unchanged */
} admin_types[] = {
	{"wipe", PERM_CMD_DESTRUCT, "wiped"},   {"retire", PERM_CMD_DESTRUCT, "wiped"},
	{"rekey", PERM_CMD_DESTRUCT, NULL},     {"lock", PERM_CMD_ROUTINE, "locked"},
	{"unlock", PERM_CMD_ROUTINE, "active"}, {"refresh", PERM_CMD_ROUTINE, NULL},
};

static int
type_index(const char *type)
{
	for (size_t i = 0; i < ARRAY_SIZE(admin_types); i++)
		if (strcmp(type, admin_types[i].name) == 0)
			return (int)i;
	return -1;
}

/*
 * The permission a command of this type needs, to create or to cancel it. Server-made types
 * follow the rules of what they do: a policy command carries the offline limits, so only those
 * who may change policies may cancel one. Unknown types need the most.
 */
static enum perm
type_perm(const char *type)
{
	int i = type_index(type);

	if (i >= 0)
		return admin_types[i].perm;
	if (strcmp(type, "policy") == 0)
		return PERM_POLICY_WRITE;
	return PERM_CMD_DESTRUCT;
}

static const char *
desired_after(const char *type)
{
	int i = type_index(type);

	return i >= 0 ? admin_types[i].desired : NULL;
}

static int
status_is(const struct command *c, const char *a, const char *b)
{
	return strcmp(c->status, a) == 0 || (b != NULL && strcmp(c->status, b) == 0);
}

static int
sign_ticket(struct service *s, const struct device *d, struct command *c, uint16_t type,
	    const uint64_t args[4])
{
	struct ticket t;
	int r;

	memset(&t, 0, sizeof(t));
	t.type = type;
	str_copy(t.device_id, sizeof(t.device_id), d->id);
	str_copy(t.command_id, sizeof(t.command_id), c->id);
	memcpy(t.hv_key, d->hv_key, sizeof(t.hv_key));
	t.counter = (uint64_t)c->counter;
	t.issued_at = (uint64_t)c->created_at;
	t.expires_at = (uint64_t)c->expires_at;
	if (args != NULL)
		memcpy(t.args, args, sizeof(t.args));
	r = ticket_encode(&t, c->ticket);
	if (r == 0)
		r = ed25519_key_sign(s->ticket_key, c->ticket, TICKET_BODY_LEN,
				     c->ticket + TICKET_BODY_LEN);
	return r;
}

int
svc_command_new(struct service *s, const struct device *d, const char *type, const char *reason,
		const char *created_by, int64_t expires_in_s, struct command *c)
{
	int r;

	memset(c, 0, sizeof(*c));
	r = svc_new_id(c->id, "cmd_");
	if (r != 0)
		return r;
	str_copy(c->device_id, sizeof(c->device_id), d->id);
	str_copy(c->type, sizeof(c->type), type);
	str_copy(c->status, sizeof(c->status), "queued");
	str_copy(c->reason, sizeof(c->reason), reason ? reason : "");
	str_copy(c->created_by, sizeof(c->created_by), created_by);
	c->created_at = svc_now_s(s);
	c->expires_at = c->created_at + (expires_in_s > 0 ? expires_in_s : s->cfg.command_ttl_s);
	return 0;
}

int
svc_command_sign(struct service *s, const struct device *d, struct command *c,
		 const uint64_t args[4])
{
	return sign_ticket(s, d, c, ticket_type_from_name(c->type), args);
}

const char *
svc_command_desired(const char *type)
{
	return desired_after(type);
}

int
svc_command_audited(const char *type)
{
	/*
	 * A policy command is the consequence of an audited change (policy.put, policy.default,
	 * policy.assign, device.enroll), made when the device checks in: one entry per change,
	 * not one per device per change. Its ack and result are audited as any command's.
	 */
	return strcmp(type, "policy") != 0;
}

void
svc_command_audit_detail(const struct command *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "device=%s type=%s counter=%lld reason=%s", c->device_id, c->type,
		 (long long)c->counter, c->reason);
}

int
svc_command_queue_tx(struct service *s, struct device *d, const char *type, const char *reason,
		     const char *created_by, int64_t expires_in_s, const char *idem_key,
		     const uint8_t *request_hash, const uint64_t args[4], struct command *out)
{
	struct command *c = out;
	const char *desired = desired_after(type);
	char detail[STORE_TEXT_MAX];
	int r = svc_command_new(s, d, type, reason, created_by, expires_in_s, c);

	if (r != 0)
		return r;
	if (idem_key != NULL && idem_key[0] != '\0') {
		str_copy(c->idempotency_key, sizeof(c->idempotency_key), idem_key);
		memcpy(c->request_hash, request_hash, sizeof(c->request_hash));
	}
	/* The counter is taken from the row itself, never from the caller's copy of it. */
	r = s->st->ops->device_next_counter(s->st, d->id, &c->counter);
	if (r != 0)
		return r;
	r = svc_command_sign(s, d, c, args);
	if (r != 0)
		return r;
	r = s->st->ops->command_insert(s->st, c);
	if (r != 0)
		return r;
	d->ticket_counter = c->counter;
	if (desired != NULL) {
		str_copy(d->desired_state, sizeof(d->desired_state), desired);
		r = s->st->ops->device_patch(s->st, d, DEV_F_DESIRED);
		if (r != 0)
			return r;
	}
	r = svc_ev_command_queued(s, c, 1);
	if (r != 0 || !svc_command_audited(type))
		return r;
	svc_command_audit_detail(c, detail, sizeof(detail));
	return audit_append(s->st, service_now_ms(s), created_by, "command.create", c->id, "ok",
			    detail);
}

/*
 * The two-person rule holds the command back: inside the caller's transaction (the device
 * read for update), an approval request is made (or the requester's pending one found) and
 * committed instead; nothing is queued.
 */
static int
request_approval(struct service *s, const struct principal *p, const struct command_request *rq,
		 int *created, struct svc_error *err)
{
	const struct svc_approval_ask ask = {.type = rq->type,
					     .reason = rq->reason,
					     .ttl_s = rq->expires_in_s,
					     .device_id = rq->device_id};
	struct approval a;
	int reused;
	int r = svc_approval_request_tx(s, p, &ask, &a, &reused);

	if (r == 0 && !reused)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "approval");
	if (rq->pending != NULL)
		*rq->pending = a;
	*created = SVC_CMD_PENDING;
	log_info("%s of %s by %s waits for approval %s", rq->type, rq->device_id, p->name, a.id);
	return 0;
}

static int
command_create_once(struct service *s, const struct principal *p, const struct command_request *rq,
		    struct command *out, int *created, struct svc_error *err)
{
	int ti = type_index(rq->type);
	int has_key = rq->idempotency_key != NULL && rq->idempotency_key[0] != '\0';
	struct device d;
	int r;

	*created = 0;
	if (ti < 0)
		return svc_fail(err, SVC_INVALID,
				"type must be one of wipe, lock, unlock, rekey, retire, refresh");
	r = svc_authorize(s, p, admin_types[ti].perm, err);
	if (r != 0)
		return r;
	if (strlen(rq->reason) >= STORE_TEXT_MAX - 64)
		return svc_fail(err, SVC_INVALID, "reason is longer than 440 characters");
	if (rq->expires_in_s < 0 || rq->expires_in_s > 366 * 86400)
		return svc_fail(err, SVC_INVALID, "expires_in must be between 1 s and 366 days");
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "command");
	if (has_key) {
		r = s->st->ops->command_by_idempotency(s->st, p->id, rq->idempotency_key, out);
		if (r == 0) {
			s->st->ops->tx_rollback(s->st);
			if (memcmp(out->request_hash, rq->request_hash, 32) != 0)
				return svc_fail(err, SVC_IDEMPOTENCY,
						"Idempotency-Key %s was already used for a "
						"different request",
						rq->idempotency_key);
			return 0;
		}
		if (r != -ENOENT)
			goto fail;
	}
	r = s->st->ops->device_get_for_update(s->st, rq->device_id, &d);
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no device with id %s", rq->device_id);
	}
	if (r != 0)
		goto fail;
	if (strcmp(d.status, "active") != 0) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_CONFLICT, "device %s is %s and takes no more commands",
				d.id, d.status);
	}
	if (svc_approval_needed(s, rq->type, 1))
		return request_approval(s, p, rq, created, err);
	r = svc_command_queue_tx(s, &d, rq->type, rq->reason, p->id, rq->expires_in_s,
				 has_key ? rq->idempotency_key : NULL, rq->request_hash, NULL, out);
	if (r == 0) /* the other servers hear of it only if it commits */
		r = svc_notify_tx(s, d.id);
	if (r != 0)
		goto fail;
	r = s->st->ops->tx_commit(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "command");
	*created = 1;
	log_info("command %s (%s) queued for %s by %s", out->id, out->type, d.id, p->name);
	svc_notify(s, d.id);
	return 0;
fail:
	s->st->ops->tx_rollback(s->st);
	return svc_store_fail(err, r, "command");
}

int
svc_command_create(struct service *s, const struct principal *p, const struct command_request *rq,
		   struct command *out, int *created, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, command_create_once(s, p, rq, out, created, err));
	return r;
}

int
svc_command_get(struct service *s, const struct principal *p, const char *id, struct command *out,
		struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->command_get(s->st, id, out);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no command with id %s", id);
	return r == 0 ? 0 : svc_store_fail(err, r, "command");
}

int
svc_command_list(struct service *s, const struct principal *p, const struct command_filter *f,
		 struct command *out, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->command_list(s->st, f, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "command");
}

/*
 * Recomputes the device's desired state from its latest state-changing command that still
 * counts (not canceled or expired). Bounded by the number of the device's commands.
 */
static int
recompute_desired(struct service *s, struct device *d)
{
	struct command_filter f = {.device_id = d->id, .limit = 100};
	struct command *page = malloc(f.limit * sizeof(*page));
	const char *desired = "active";
	int64_t best = 0;
	size_t n;
	int r;

	if (page == NULL)
		return -ENOMEM;
	do {
		r = s->st->ops->command_list(s->st, &f, page, &n);
		for (size_t i = 0; r == 0 && i < n; i++) {
			const char *after = desired_after(page[i].type);

			if (after != NULL && page[i].counter > best &&
			    !status_is(&page[i], "canceled", "expired")) {
				best = page[i].counter;
				desired = after;
			}
			f.after = page[i].rowid;
		}
	} while (r == 0 && n == f.limit);
	free(page);
	if (r == 0) {
		str_copy(d->desired_state, sizeof(d->desired_state), desired);
		r = s->st->ops->device_patch(s->st, d, DEV_F_DESIRED);
	}
	return r;
}

int
svc_recompute_desired(struct service *s, const char *device_id)
{
	struct device d;
	int r = s->st->ops->device_get_for_update(s->st, device_id, &d);

	return r == 0 ? recompute_desired(s, &d) : r;
}

static int
command_cancel_once(struct service *s, const struct principal *p, const char *id,
		    struct command *out, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_CMD_ROUTINE, err);

	if (r != 0)
		return r;
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "command");
	r = s->st->ops->command_get(s->st, id, out);
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no command with id %s", id);
	}
	if (r != 0)
		goto fail;
	if (svc_authorize(s, p, type_perm(out->type), err) != 0) {
		s->st->ops->tx_rollback(s->st);
		return -EACCES;
	}
	if (!status_is(out, "queued", NULL)) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_CONFLICT,
				"command %s is %s; only queued commands (not yet delivered) can "
				"be canceled",
				id, out->status);
	}
	str_copy(out->status, sizeof(out->status), "canceled");
	out->completed_at = svc_now_s(s);
	r = s->st->ops->command_update(s->st, out, "queued");
	if (r == 0)
		r = svc_recompute_desired(s, out->device_id);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "command.cancel", id, "ok",
				 out->type);
	if (r != 0)
		goto fail;
	r = s->st->ops->tx_commit(s->st);
	return r == 0 ? 0 : svc_store_fail(err, r, "command");
fail:
	s->st->ops->tx_rollback(s->st);
	return svc_store_fail(err, r, "command");
}

int
svc_command_cancel(struct service *s, const struct principal *p, const char *id,
		   struct command *out, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, command_cancel_once(s, p, id, out, err));
	return r;
}

int
svc_command_perm(const char *type, enum perm *perm)
{
	int i = type_index(type);

	if (i < 0)
		return -EINVAL;
	*perm = admin_types[i].perm;
	return 0;
}
