/*
 * Bulk commands from the console (issue 9): one command type for many devices. Each device
 * gets its own transaction, so one refusal does not undo the others and each command is
 * audited exactly as if it had been ordered alone; a summary entry records the bulk itself.
 * A device that already has an open command of the type gets none, which makes a retried
 * bulk harmless without per-device idempotency keys.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"

#define OPEN_MAX SVC_BULK_SCRATCH

/* The open command of this type, when the device has one; 0 found, -ENOENT none. */
static int
open_of_type(struct service *s, const char *device_id, const char *type, struct command *cmds,
	     char *id_out)
{
	size_t n = 0;
	int r = s->st->ops->command_open(s->st, device_id, cmds, OPEN_MAX, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		if (strcmp(cmds[i].type, type) == 0) {
			str_copy(id_out, STORE_ID_MAX, cmds[i].id);
			return 0;
		}
	}
	return r == 0 ? -ENOENT : r;
}

int
svc_bulk_device_tx(struct service *s, const char *actor, const char *type, const char *reason,
		   struct command *scratch, struct svc_bulk_result *res)
{
	struct device d;
	struct command c;
	int r = s->st->ops->device_get_for_update(s->st, res->device_id, &d);

	if (r == -ENOENT || (r == 0 && strcmp(d.status, "active") != 0)) {
		res->outcome = BULK_REFUSED;
		if (r == 0)
			snprintf(res->detail, sizeof(res->detail), "device is %s", d.status);
		else
			str_copy(res->detail, sizeof(res->detail), "no such device");
		return 0;
	}
	if (r == 0) {
		r = open_of_type(s, d.id, type, scratch, res->command_id);
		if (r == 0) {
			res->outcome = BULK_PENDING;
			return 0;
		}
	}
	if (r == -ENOENT)
		r = svc_command_queue_tx(s, &d, type, reason, actor, 0, NULL, NULL, NULL, &c);
	if (r != 0)
		return r;
	res->outcome = BULK_QUEUED;
	str_copy(res->command_id, sizeof(res->command_id), c.id);
	return 0;
}

/* One device in a transaction of its own (the synchronous bulk by id list): one attempt. */
static int
bulk_one_once(struct service *s, const struct principal *p, const char *type, const char *reason,
	      struct command *scratch, struct svc_bulk_result *res)
{
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return r;
	r = svc_bulk_device_tx(s, p->id, type, reason, scratch, res);
	if (r != 0 || res->outcome != BULK_QUEUED) {
		s->st->ops->tx_rollback(s->st);
		return r;
	}
	r = svc_notify_tx(s, res->device_id);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r != 0)
		return r;
	svc_notify(s, res->device_id);
	return 0;
}

static int
bulk_one(struct service *s, const struct principal *p, const char *type, const char *reason,
	 struct command *scratch, struct svc_bulk_result *res)
{
	int r;

	SVC_TX_RETRY(s, r, bulk_one_once(s, p, type, reason, scratch, res));
	return r;
}

int
svc_command_bulk(struct service *s, const struct principal *p, const char *type, const char *reason,
		 const char (*ids)[STORE_ID_MAX], size_t n, struct svc_bulk_result *out,
		 struct svc_error *err)
{
	struct command *scratch;
	size_t counts[3] = {0, 0, 0};
	char detail[160];
	enum perm perm;
	int r;

	if (svc_command_perm(type, &perm) != 0)
		return svc_fail(err, SVC_INVALID,
				"type must be one of wipe, lock, unlock, rekey, retire, refresh");
	r = svc_authorize(s, p, perm, err);
	if (r != 0)
		return r;
	if (n == 0 || n > SVC_BULK_MAX)
		return svc_fail(err, SVC_INVALID, "device_ids must hold 1 to %d ids", SVC_BULK_MAX);
	if (strlen(reason) >= STORE_TEXT_MAX - 64)
		return svc_fail(err, SVC_INVALID, "reason is longer than 440 characters");
	scratch = malloc(OPEN_MAX * sizeof(*scratch));
	if (scratch == NULL)
		return svc_fail(err, SVC_UNAVAILABLE, "out of memory");
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		str_copy(out[i].device_id, sizeof(out[i].device_id), ids[i]);
		r = bulk_one(s, p, type, reason, scratch, &out[i]);
		if (r != 0) {
			/* What was queued stays queued (and audited); the rest is not tried. */
			free(scratch);
			log_warn("bulk %s stopped at device %zu of %zu", type, i + 1, n);
			return svc_store_fail(err, r, "command");
		}
		counts[out[i].outcome]++;
	}
	free(scratch);
	snprintf(detail, sizeof(detail), "type=%s devices=%zu queued=%zu pending=%zu refused=%zu",
		 type, n, counts[BULK_QUEUED], counts[BULK_PENDING], counts[BULK_REFUSED]);
	svc_audit_event(s, p->id, "command.bulk", type, "ok", detail);
	return 0;
}

/* The bulk's approval request, in a transaction of its own: one attempt. */
static int
bulk_request_once(struct service *s, const struct principal *p, const char *type,
		  const char *reason, const char (*ids)[STORE_ID_MAX], size_t n,
		  struct approval *pending)
{
	const struct svc_approval_ask ask = {.type = type, .reason = reason, .ids = ids, .n = n};
	int reused, r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return r;
	r = svc_approval_request_tx(s, p, &ask, pending, &reused);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	return r;
}

int
svc_command_bulk_checked(struct service *s, const struct principal *p, const char *type,
			 const char *reason, const char (*ids)[STORE_ID_MAX], size_t n,
			 struct svc_bulk_result *out, struct approval *pending, int *waits,
			 struct svc_error *err)
{
	enum perm perm;
	int r;

	*waits = 0;
	if (!svc_approval_needed(s, type, n))
		return svc_command_bulk(s, p, type, reason, ids, n, out, err);
	if (svc_command_perm(type, &perm) != 0)
		return svc_fail(err, SVC_INVALID,
				"type must be one of wipe, lock, unlock, rekey, retire, refresh");
	r = svc_authorize(s, p, perm, err);
	if (r != 0)
		return r;
	if (n == 0 || n > SVC_BULK_MAX)
		return svc_fail(err, SVC_INVALID, "device_ids must hold 1 to %d ids", SVC_BULK_MAX);
	if (strlen(reason) >= STORE_TEXT_MAX - 64)
		return svc_fail(err, SVC_INVALID, "reason is longer than 440 characters");
	SVC_TX_RETRY(s, r, bulk_request_once(s, p, type, reason, ids, n, pending));
	if (r != 0)
		return svc_store_fail(err, r, "approval");
	*waits = 1;
	log_info("bulk %s of %zu devices by %s waits for approval %s", type, n, p->name,
		 pending->id);
	return 0;
}
