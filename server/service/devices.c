/*
 * Policies and device records. A policy change is also an order to the hypervisor (its offline
 * lock and wipe limits), delivered as a signed "policy" command to each device that follows the
 * policy. The change itself writes only the policy row (its new version) and one audit entry;
 * each device's command is queued by its own next check-in, in that check-in's transaction
 * (svc_policy_sync_tx), and parked check-ins are woken for it (waker.c). So a change costs the
 * same at ten devices or a million, the write lock is never held for the whole fleet, and
 * nothing needs resuming after a crash: the version on the policy row is the rollout's state.
 * Deleting a device is refused while a wipe or retire is still open, so no wipe can be lost by
 * removing its record.
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
policy_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 63)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/*
 * The precedence (issue 11 section 5): the device's own assignment, else the policy of the
 * first group it matches (by priority, then name), else the default.
 */
int
svc_policy_effective(struct service *s, const struct device *d, struct policy *out)
{
	char name[64];
	int r;

	if (d->policy_name[0] != '\0')
		return s->st->ops->policy_get(s->st, d->policy_name, out);
	r = svc_group_policy(s, d, name, sizeof(name));
	if (r != 0)
		return r;
	if (name[0] != '\0')
		return s->st->ops->policy_get(s->st, name, out);
	return s->st->ops->policy_default(s->st, out);
}

void
svc_policy_args(struct service *s, const struct policy *p, uint64_t args[4])
{
	struct policy_content c;

	memset(args, 0, 4 * sizeof(uint64_t));
	if (s->parse_policy == NULL || s->parse_policy(p->body, &c) != 0) {
		log_warn("service: policy %s has an unreadable body", p->name);
		return;
	}
	args[0] = (uint64_t)policy_lock_s(&c);
	args[1] = (uint64_t)policy_wipe_s(&c);
	args[2] = (uint64_t)c.max_failed_unlocks;
	args[3] = (uint64_t)p->version;
}

void
svc_policy_digest(struct service *s, const struct policy *p, uint8_t out[16])
{
	uint64_t args[4];

	svc_policy_args(s, p, args);
	crypto_policy_digest(args, out);
}

/*
 * Whether device d must be sent a policy command for p, its effective policy: it is active, has
 * not applied p's name and version, and the newest policy command it was ever given is for
 * another name or version, or expired before it was done. A canceled or failed command for this
 * very version counts as sent: an admin canceled it, or the hypervisor refused it, and sending
 * it again at every check-in would loop; a newer version is sent again.
 */
static int
policy_due(struct service *s, const struct device *d, const struct policy *p, int *due)
{
	struct command_filter f = {
		.device_id = d->id, .type = "policy", .newest_first = 1, .limit = 1};
	struct command *c;
	struct ticket t;
	size_t n = 0;
	int r;

	*due = 0;
	if (strcmp(d->status, "active") != 0 || d->superseded_by[0] != '\0')
		return 0;
	if (strcmp(p->name, d->applied_policy_name) == 0 && p->version == d->applied_policy_version)
		return 0;
	c = malloc(sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	r = s->st->ops->command_list(s->st, &f, c, &n);
	if (r == 0)
		*due = n == 0 || strcmp(c->status, "expired") == 0 ||
		       strcmp(c->reason, p->name) != 0 ||
		       ticket_decode(c->ticket, sizeof(c->ticket), &t) != 0 ||
		       (int64_t)t.args[3] != p->version;
	free(c);
	return r;
}

int
svc_policy_check(struct service *s, const struct device *d, struct policy *p, int *due)
{
	int r = svc_policy_effective(s, d, p);

	*due = 0;
	return r != 0 ? r : policy_due(s, d, p, due);
}

int
svc_policy_sync_tx(struct service *s, struct device *d, const char *actor, int *queued)
{
	struct policy pol;
	struct command c;
	uint64_t args[4];
	int due = 0;
	int r = svc_policy_check(s, d, &pol, &due);

	*queued = 0;
	if (r != 0 || !due)
		return r == -ENOENT ? 0 : r; /* no policy exists yet */
	svc_policy_args(s, &pol, args);
	r = svc_command_queue_tx(s, d, "policy", pol.name, actor, 0, NULL, NULL, args, &c);
	*queued = r == 0;
	return r;
}

static int
policy_put_once(struct service *s, const struct principal *p, const char *name, const char *body,
		struct policy *out, int *changed, struct svc_error *err)
{
	struct policy old, np;
	char detail[96];
	int r = svc_authorize(s, p, PERM_POLICY_WRITE, err);

	if (r != 0)
		return r;
	if (!policy_name_ok(name))
		return svc_fail(err, SVC_INVALID,
				"policy names are 1-63 letters, digits, '.', '-' "
				"or '_'");
	if (strlen(body) >= sizeof(np.body))
		return svc_fail(err, SVC_INVALID, "the policy is too large");
	*changed = 0;
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "policy");
	r = s->st->ops->policy_get(s->st, name, &old);
	if (r == 0 && strcmp(old.body, body) == 0) {
		s->st->ops->tx_rollback(s->st);
		*out = old;
		return 0;
	}
	if (r != 0 && r != -ENOENT)
		goto fail;
	memset(&np, 0, sizeof(np));
	str_copy(np.name, sizeof(np.name), name);
	str_copy(np.body, sizeof(np.body), body);
	np.version = r == 0 ? old.version + 1 : 1;
	np.updated_at = svc_now_s(s);
	r = s->st->ops->policy_put(s->st, &np);
	if (r == 0) {
		struct policy def;

		/* The first policy becomes the default, so new devices always get one. */
		if (s->st->ops->policy_default(s->st, &def) == -ENOENT)
			r = s->st->ops->policy_set_default(s->st, name);
	}
	if (r == 0)
		r = s->st->ops->policy_get(s->st, name, &np);
	/* One entry for the change: each device's command is made when it checks in. */
	snprintf(detail, sizeof(detail), "version=%lld", (long long)np.version);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "policy.put", name, "ok", detail);
	if (r == 0) /* one notification for the change: every server wakes its own followers */
		r = svc_notify_policy_tx(s, np.name, np.is_default);
	if (r != 0)
		goto fail;
	r = s->st->ops->tx_commit(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "policy");
	svc_wake_policy(s, &np);
	*out = np;
	*changed = 1;
	return 0;
fail:
	s->st->ops->tx_rollback(s->st);
	return svc_store_fail(err, r, "policy");
}

int
svc_policy_put(struct service *s, const struct principal *p, const char *name, const char *body,
	       struct policy *out, int *changed, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, policy_put_once(s, p, name, body, out, changed, err));
	return r;
}

int
svc_policy_get(struct service *s, const struct principal *p, const char *name, struct policy *out,
	       struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->policy_get(s->st, name, out);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no policy named %s", name);
	return r == 0 ? 0 : svc_store_fail(err, r, "policy");
}

int
svc_policy_list(struct service *s, const struct principal *p, struct policy *out, size_t max,
		size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->policy_list(s->st, out, max, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "policy");
}

/*
 * The counts when groups give policies: the device query's policy filter, which follows the
 * precedence (policy_counts reads only the policy_name column).
 */
static int
reach_by_query(struct service *s, const struct policy *pol, const struct policy_groups *pg,
	       struct policy_reach *out)
{
	struct device_query q;
	int r;

	memset(&q, 0, sizeof(q));
	q.compliant = -1;
	q.status = "active";
	q.policy = pol->name;
	q.policy_is_default = pol->is_default;
	q.policy_groups = pg;
	r = s->st->ops->device_count(s->st, &q, &out->assigned);
	q.applied_name = pol->name;
	q.applied_version = pol->version;
	if (r == 0)
		r = s->st->ops->device_count(s->st, &q, &out->applied);
	return r;
}

int
svc_policy_reach(struct service *s, const struct principal *p, const struct policy *pol,
		 struct policy_reach *out, struct svc_error *err)
{
	struct svc_pgroups *pg = NULL;
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	/* A backend without the counts still serves policies; their replies say null. */
	if (s->st->ops->policy_counts == NULL)
		return svc_fail(err, SVC_UNAVAILABLE, "this store does not count policy devices");
	r = svc_pgroups_load(s, &pg);
	if (r == 0 && pg != NULL)
		r = reach_by_query(s, pol, &pg->pg, out);
	else if (r == 0)
		r = s->st->ops->policy_counts(s->st, pol->name, pol->is_default, pol->version,
					      &out->assigned, &out->applied);
	free(pg);
	return r == 0 ? 0 : svc_store_fail(err, r, "policy");
}

static int
policy_set_default_once(struct service *s, const struct principal *p, const char *name,
			struct policy *out, struct svc_error *err)
{
	struct policy np, old;
	int r = svc_authorize(s, p, PERM_POLICY_WRITE, err);

	if (r != 0)
		return r;
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "policy");
	r = s->st->ops->policy_get(s->st, name, &np);
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no policy named %s", name);
	}
	if (r == 0 && s->st->ops->policy_default(s->st, &old) == 0 && strcmp(old.name, name) == 0) {
		s->st->ops->tx_rollback(s->st);
		*out = np;
		return 0;
	}
	if (r == 0)
		r = s->st->ops->policy_set_default(s->st, name);
	if (r == 0)
		r = s->st->ops->policy_get(s->st, name, &np);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "policy.default", name, "ok", "");
	if (r == 0)
		r = svc_notify_policy_tx(s, np.name, 1);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r == 0) {
		svc_wake_policy(s, &np);
		*out = np;
	}
	return r == 0 ? 0 : svc_store_fail(err, r, "policy");
}

int
svc_policy_set_default(struct service *s, const struct principal *p, const char *name,
		       struct policy *out, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, policy_set_default_once(s, p, name, out, err));
	return r;
}

static int
policy_assign_once(struct service *s, const struct principal *p, const char *device_id,
		   const char *name, struct device *out, struct svc_error *err)
{
	struct device d;
	struct policy pol;
	int queued = 0;
	int r = svc_authorize(s, p, PERM_POLICY_WRITE, err);

	if (r != 0)
		return r;
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "device");
	r = s->st->ops->device_get_for_update(s->st, device_id, &d);
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no device with id %s", device_id);
	}
	if (r == 0 && name[0] != '\0' && s->st->ops->policy_get(s->st, name, &pol) == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_INVALID, "no policy named %s", name);
	}
	if (r == 0 && strcmp(d.status, "active") != 0) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_CONFLICT, "device %s is %s", device_id, d.status);
	}
	if (r == 0 && strcmp(d.policy_name, name) == 0) {
		s->st->ops->tx_rollback(s->st);
		*out = d;
		return 0;
	}
	if (r == 0) {
		str_copy(d.policy_name, sizeof(d.policy_name), name);
		r = s->st->ops->device_patch(s->st, &d, DEV_F_POLICY);
	}
	if (r == 0)
		r = svc_policy_sync_tx(s, &d, p->id, &queued);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "policy.assign", device_id, "ok",
				 name[0] ? name : "(default)");
	if (r == 0 && queued)
		r = svc_notify_tx(s, device_id);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "device");
	if (queued)
		svc_notify(s, device_id);
	*out = d;
	return 0;
}

int
svc_policy_assign(struct service *s, const struct principal *p, const char *device_id,
		  const char *name, struct device *out, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, policy_assign_once(s, p, device_id, name, out, err));
	return r;
}

/* ---- devices ---- */

int
svc_device_list(struct service *s, const struct principal *p, const struct device_filter *f,
		struct device *out, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->device_list(s->st, f, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "device");
}

int
svc_device_get(struct service *s, const struct principal *p, const char *id, struct device *out,
	       struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->device_get(s->st, id, out);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no device with id %s", id);
	return r == 0 ? 0 : svc_store_fail(err, r, "device");
}

/* 1 when the device has an open wipe or retire. */
static int
wipe_open(struct service *s, const char *device_id, int *open)
{
	struct command *cmds = malloc(64 * sizeof(*cmds));
	size_t n = 0;
	int r;

	*open = 0;
	if (cmds == NULL)
		return -ENOMEM;
	r = s->st->ops->command_open(s->st, device_id, cmds, 64, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (strcmp(cmds[i].type, "wipe") == 0 || strcmp(cmds[i].type, "retire") == 0)
			*open = 1;
	free(cmds);
	return r;
}

static int
device_delete_once(struct service *s, const struct principal *p, const char *id,
		   struct svc_error *err)
{
	struct device d;
	int open = 0;
	int r = svc_authorize(s, p, PERM_DEVICE_DELETE, err);

	if (r != 0)
		return r;
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "device");
	r = s->st->ops->device_get(s->st, id, &d);
	if (r == 0)
		r = wipe_open(s, id, &open);
	if (r == 0 && open) {
		s->st->ops->tx_rollback(s->st);
		svc_audit_event(s, p->id, "device.delete", id, "refused", "a wipe is pending");
		return svc_fail(err, SVC_WIPE_PENDING,
				"device %s has a wipe pending; it cannot be deleted until the wipe "
				"completes, fails, expires or is canceled",
				id);
	}
	if (r == 0)
		r = s->st->ops->device_delete(s->st, id);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "device.delete", id, "ok",
				 d.owner);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no device with id %s", id);
	if (r != 0)
		return svc_store_fail(err, r, "device");
	devstate_forget(&s->dev, id);
	return 0;
}

int
svc_device_delete(struct service *s, const struct principal *p, const char *id,
		  struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, device_delete_once(s, p, id, err));
	return r;
}

#define ROTATE_PER_SCAN 100   /* rekeys queued per scan; the rest wait for the next one */
#define ROTATE_QUIET_S  86400 /* after a rekey failed or expired, wait this long to retry */

/* Queues a server-made rekey for one device whose key epoch is older than its policy allows. */
static int
rotate_one(struct service *s, const char *id, int64_t days)
{
	struct device d;
	struct command c;
	char reason[64];
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return r;
	r = s->st->ops->device_get_for_update(s->st, id, &d);
	snprintf(reason, sizeof(reason), "key_rotation_days %lld", (long long)days);
	if (r == 0)
		r = svc_command_queue_tx(s, &d, "rekey", reason, "system", 0, NULL, NULL, NULL, &c);
	if (r == 0)
		r = svc_notify_tx(s, id);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r == 0) {
		log_info("device %s: key epoch older than %lld days; rekey %s queued", id,
			 (long long)days, c.id);
		svc_notify(s, id);
	}
	return r == -ENOENT ? 0 : r; /* deleted meanwhile */
}

int
svc_rotate_keys(struct service *s)
{
	struct policy *pols = malloc(STORE_LIST_MAX * sizeof(*pols));
	char(*ids)[STORE_ID_MAX] = malloc(ROTATE_PER_SCAN * STORE_ID_MAX);
	int64_t now = svc_now_s(s);
	size_t np = 0, left = ROTATE_PER_SCAN;
	int r = pols && ids ? 0 : -ENOMEM;

	if (r == 0)
		r = s->st->ops->policy_list(s->st, pols, STORE_LIST_MAX, &np);
	for (size_t i = 0; r == 0 && i < np && left > 0; i++) {
		struct policy_content pc;
		size_t n = 0;

		if (s->parse_policy == NULL || s->parse_policy(pols[i].body, &pc) != 0 ||
		    pc.key_rotation_days <= 0)
			continue;
		r = s->st->ops->device_ids_rekey_due(s->st, pols[i].name, pols[i].is_default,
						     now - pc.key_rotation_days * 86400,
						     now - ROTATE_QUIET_S, ids, left, &n);
		for (size_t k = 0; r == 0 && k < n; k++)
			r = rotate_one(s, ids[k], pc.key_rotation_days);
		left -= n;
	}
	free(pols);
	free(ids);
	return r;
}

int64_t
policy_lock_s(const struct policy_content *c)
{
	return c->lock_after_seconds > 0 ? c->lock_after_seconds : c->lock_after_hours * 3600;
}

int64_t
policy_wipe_s(const struct policy_content *c)
{
	return c->wipe_after_seconds > 0 ? c->wipe_after_seconds : c->wipe_after_days * 86400;
}
