/*
 * Labels on devices and groups of devices (issue 11 section 5). Admins set labels (one device
 * at a time, or one label on many devices with a result per device); every role reads them.
 * A group is a named label query (labelq.c), kept as its canonical text and parsed again
 * wherever it is used, so a group always means what its text says; its members are whatever
 * devices match now. Each change is one transaction with its audit entry.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"

/* ---- labels ---- */

int
svc_labels_get(struct service *s, const struct principal *p, const char *device_id,
	       struct device_label *out, size_t *n, struct svc_error *err)
{
	struct device d;
	int r = svc_authorize(s, p, PERM_READ, err);

	*n = 0;
	if (r != 0)
		return r;
	r = s->st->ops->device_get(s->st, device_id, &d);
	if (r == 0)
		r = s->st->ops->labels_get(s->st, device_id, out, LABELS_PER_DEVICE, n);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no device with id %s", device_id);
	return r == 0 ? 0 : svc_store_fail(err, r, "labels");
}

int
svc_labels_check(const struct svc_label_change *ch, struct svc_error *err)
{
	for (size_t i = 0; i < ch->nset; i++) {
		if (!svc_label_key_ok(ch->set[i].key))
			return svc_fail(err, SVC_INVALID,
					"label key \"%.63s\" must be 1-63 of A-Z a-z 0-9 . _ / - "
					"and start with a letter or digit",
					ch->set[i].key);
		if (!svc_label_value_ok(ch->set[i].value))
			return svc_fail(err, SVC_INVALID,
					"label %s: the value must be at most %d bytes of UTF-8 "
					"without control characters",
					ch->set[i].key, LABEL_VALUE_MAX - 1);
	}
	for (size_t i = 0; i < ch->nremove; i++)
		if (!svc_label_key_ok(ch->remove[i]))
			return svc_fail(err, SVC_INVALID, "\"%.63s\" is not a label key",
					ch->remove[i]);
	if (ch->nset > LABELS_PER_DEVICE)
		return svc_fail(err, SVC_INVALID, "a device has at most %d labels",
				LABELS_PER_DEVICE);
	return 0;
}

static int
has_key(const struct device_label *l, size_t n, const char *key, size_t *at)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].key, key) == 0) {
			*at = i;
			return 1;
		}
	return 0;
}

/* Whether key is to be removed: named in remove, or (replace) not among the labels set. */
static int
dropped(const struct svc_label_change *ch, const char *key)
{
	size_t at;

	for (size_t i = 0; i < ch->nremove; i++)
		if (strcmp(ch->remove[i], key) == 0)
			return 1;
	return ch->replace && !has_key(ch->set, ch->nset, key, &at);
}

/*
 * Inside the caller's transaction, with the device locked: applies ch to its labels (old, n of
 * them), counting what changed into *changed, and writes the audit detail. SVC_INVALID when the
 * result would hold more than LABELS_PER_DEVICE.
 */
static int
apply_tx(struct service *s, const char *device_id, const struct svc_label_change *ch,
	 const struct device_label *old, size_t n, int *changed, struct svc_error *err)
{
	size_t after = n, at;
	int r = 0;

	*changed = 0;
	for (size_t i = 0; i < n; i++)
		after -= dropped(ch, old[i].key);
	for (size_t i = 0; i < ch->nset; i++)
		after += !has_key(old, n, ch->set[i].key, &at);
	if (after > LABELS_PER_DEVICE)
		return svc_fail(err, SVC_INVALID, "device %s would have %zu labels; at most %d",
				device_id, after, LABELS_PER_DEVICE);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (dropped(ch, old[i].key)) {
			r = s->st->ops->label_delete(s->st, device_id, old[i].key);
			(*changed)++;
		}
	for (size_t i = 0; r == 0 && i < ch->nset; i++) {
		if (has_key(old, n, ch->set[i].key, &at) &&
		    strcmp(old[at].value, ch->set[i].value) == 0 && !dropped(ch, old[at].key))
			continue; /* already so */
		r = s->st->ops->label_put(s->st, device_id, ch->set[i].key, ch->set[i].value);
		(*changed)++;
	}
	return r == 0 ? 0 : svc_store_fail(err, r, "labels");
}

/* The audit detail of a change: what was set and removed, cut to fit. */
static void
change_detail(const struct svc_label_change *ch, char *buf, size_t cap)
{
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ch->nset && k < cap; i++)
		k += (size_t)snprintf(buf + k, cap - k, "%s%s=%s", k ? " " : "set ", ch->set[i].key,
				      ch->set[i].value);
	for (size_t i = 0; i < ch->nremove && k < cap; i++)
		k += (size_t)snprintf(buf + k, cap - k, " -%s", ch->remove[i]);
	if (ch->replace && k < cap)
		snprintf(buf + k, cap - k, " (replacing all)");
}

static int
change_once(struct service *s, const struct principal *p, const char *device_id,
	    const struct svc_label_change *ch, int *changed, struct svc_error *err)
{
	struct device_label *old = calloc(LABELS_PER_DEVICE, sizeof(*old));
	char detail[STORE_TEXT_MAX];
	struct device d;
	int queued = 0;
	size_t n = 0;
	int r;

	*changed = 0;
	if (old == NULL)
		return svc_fail(err, SVC_UNAVAILABLE, "out of memory");
	r = s->st->ops->tx_begin(s->st);
	if (r != 0) {
		free(old);
		return svc_store_fail(err, r, "labels");
	}
	r = s->st->ops->device_get_for_update(s->st, device_id, &d);
	if (r == -ENOENT)
		r = svc_fail(err, SVC_NOT_FOUND, "no device with id %s", device_id);
	else if (r != 0)
		r = svc_store_fail(err, r, "labels");
	if (r == 0)
		r = s->st->ops->labels_get(s->st, device_id, old, LABELS_PER_DEVICE, &n);
	if (r == 0)
		r = apply_tx(s, device_id, ch, old, n, changed, err);
	change_detail(ch, detail, sizeof(detail));
	if (r == 0 && *changed > 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "device.labels", device_id, "ok",
				 detail);
	/* New labels may put it in a group that gives another policy: sent now, not later. */
	if (r == 0 && *changed > 0)
		r = svc_policy_sync_tx(s, &d, p->id, &queued);
	if (r == 0 && queued)
		r = svc_notify_tx(s, device_id);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	free(old);
	if (r != 0 && err->kind == SVC_OK)
		return svc_store_fail(err, r, "labels");
	if (r == 0 && queued)
		svc_notify(s, device_id);
	return r;
}

int
svc_labels_change(struct service *s, const struct principal *p, const char *device_id,
		  const struct svc_label_change *ch, struct device_label *out, size_t *n,
		  struct svc_error *err)
{
	int changed = 0;
	int r = svc_authorize(s, p, PERM_LABELS_WRITE, err);

	*n = 0;
	if (r == 0)
		r = svc_labels_check(ch, err);
	if (r != 0)
		return r;
	SVC_TX_RETRY(s, r, change_once(s, p, device_id, ch, &changed, err));
	if (r != 0)
		return r;
	r = s->st->ops->labels_get(s->st, device_id, out, LABELS_PER_DEVICE, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "labels");
}

int
svc_labels_bulk(struct service *s, const struct principal *p, const struct svc_label_change *ch,
		const char (*ids)[STORE_ID_MAX], size_t n, struct svc_label_result *out,
		struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_LABELS_WRITE, err);

	if (r == 0)
		r = svc_labels_check(ch, err);
	if (r != 0)
		return r;
	if (n > SVC_BULK_MAX)
		return svc_fail(err, SVC_INVALID, "at most %d devices per request", SVC_BULK_MAX);
	/* Each device in its own transaction: one that fails leaves the others done. */
	for (size_t i = 0; i < n; i++) {
		struct svc_error e = {0};
		int changed = 0;

		memset(&out[i], 0, sizeof(out[i]));
		str_copy(out[i].device_id, sizeof(out[i].device_id), ids[i]);
		SVC_TX_RETRY(s, r, change_once(s, p, ids[i], ch, &changed, &e));
		out[i].outcome = r != 0 ? LABEL_REFUSED : changed ? LABEL_CHANGED : LABEL_UNCHANGED;
		if (r != 0)
			str_copy(out[i].detail, sizeof(out[i].detail), e.detail);
	}
	return 0;
}

/* ---- groups ---- */

/* A label key without "/": a group's name is a segment of a URL path. */
static int
group_name_ok(const char *n)
{
	return svc_label_key_ok(n) && strchr(n, '/') == NULL;
}

/* Parses g->query into q and rewrites g->query as its canonical text; SVC_INVALID otherwise. */
static int
group_query(struct group_q *gq, struct device_group *g, struct svc_error *err)
{
	if (svc_labelq_parse(g->query, &gq->q, gq->msg, sizeof(gq->msg)) != 0)
		return svc_fail(err, SVC_INVALID, "%s", gq->msg);
	if (svc_labelq_format(&gq->q, g->query, sizeof(g->query)) != 0)
		return svc_fail(err, SVC_INVALID, "query: too long once written out");
	return 0;
}

/* The checks of a group's fields but its name, and its query made canonical. */
static int
group_check(struct service *s, struct device_group *g, struct svc_error *err)
{
	struct group_q *gq = malloc(sizeof(*gq));
	struct policy pol;
	int r;

	if (gq == NULL)
		return svc_fail(err, SVC_UNAVAILABLE, "out of memory");
	r = group_query(gq, g, err);
	free(gq);
	if (r != 0)
		return r;
	if (!svc_label_value_ok(g->description))
		return svc_fail(err, SVC_INVALID,
				"description must be UTF-8 without control "
				"characters");
	if (g->priority < 0 || g->priority > 1000000)
		return svc_fail(err, SVC_INVALID, "priority must be 0 to 1000000");
	if (g->policy[0] != '\0') {
		r = s->st->ops->policy_get(s->st, g->policy, &pol);
		if (r == -ENOENT)
			return svc_fail(err, SVC_INVALID, "no policy named %s", g->policy);
		if (r != 0)
			return svc_store_fail(err, r, "group");
	}
	return 0;
}

static int
group_write_once(struct service *s, const struct principal *p, struct device_group *g, int create,
		 struct svc_error *err)
{
	struct device_group old;
	char detail[STORE_TEXT_MAX];
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return svc_store_fail(err, r, "group");
	g->updated_at = svc_now_s(s);
	if (create) {
		g->created_at = g->updated_at;
		g->version = 1;
		str_copy(g->created_by, sizeof(g->created_by), p->id);
		r = s->st->ops->group_insert(s->st, g);
	} else if ((r = s->st->ops->group_update(s->st, g)) == 0) {
		/* What the row holds now: its creation and the version the update counted. */
		r = s->st->ops->group_get(s->st, g->name, &old);
		g->created_at = old.created_at;
		g->version = old.version;
		str_copy(g->created_by, sizeof(g->created_by), old.created_by);
	}
	snprintf(detail, sizeof(detail), "query=%.300s policy=%s", g->query,
		 g->policy[0] ? g->policy : "(none)");
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id,
				 create ? "group.create" : "group.update", g->name, "ok", detail);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r == -EEXIST)
		return svc_fail(err, SVC_CONFLICT, "a group named %s exists", g->name);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no group named %s", g->name);
	return r == 0 ? 0 : svc_store_fail(err, r, "group");
}

int
svc_group_put(struct service *s, const struct principal *p, struct device_group *g, int create,
	      struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_LABELS_WRITE, err);

	if (r != 0)
		return r;
	if (!group_name_ok(g->name))
		return svc_fail(err, SVC_INVALID,
				"name must be 1-63 of A-Z a-z 0-9 . _ - and start with a letter or "
				"digit");
	r = group_check(s, g, err);
	if (r == 0)
		SVC_TX_RETRY(s, r, group_write_once(s, p, g, create, err));
	return r;
}

int
svc_group_get(struct service *s, const struct principal *p, const char *name,
	      struct device_group *out, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->group_get(s->st, name, out);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no group named %s", name);
	return r == 0 ? 0 : svc_store_fail(err, r, "group");
}

int
svc_group_list(struct service *s, const struct principal *p, const char *after,
	       struct device_group *out, size_t max, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	*n = 0;
	if (r != 0)
		return r;
	r = s->st->ops->group_list(s->st, after, out, max, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "group");
}

static int
group_delete_once(struct service *s, const struct principal *p, const char *name,
		  struct svc_error *err)
{
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return svc_store_fail(err, r, "group");
	r = s->st->ops->group_delete(s->st, name);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "group.delete", name, "ok", "");
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no group named %s", name);
	return r == 0 ? 0 : svc_store_fail(err, r, "group");
}

int
svc_group_delete(struct service *s, const struct principal *p, const char *name,
		 struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_LABELS_WRITE, err);

	if (r == 0)
		SVC_TX_RETRY(s, r, group_delete_once(s, p, name, err));
	return r;
}

int
svc_group_resolve(struct service *s, const struct principal *p, const char *name,
		  struct group_q *out, struct svc_error *err)
{
	int r = svc_group_get(s, p, name, &out->g, err);

	if (r != 0)
		return r;
	if (svc_labelq_parse(out->g.query, &out->q, out->msg, sizeof(out->msg)) != 0)
		return svc_fail(err, SVC_INTERNAL, "group %s has an unreadable query", name);
	return 0;
}

/* ---- groups that give a policy ---- */

int
svc_pgroups_load(struct service *s, struct svc_pgroups **out)
{
	struct svc_pgroups *pg = calloc(1, sizeof(*pg));
	struct device_group *g = NULL;
	char msg[200];
	size_t n = 0;
	int r;

	*out = NULL;
	if (pg == NULL)
		return -ENOMEM;
	g = calloc(POLICY_GROUPS_MAX, sizeof(*g));
	r = g ? s->st->ops->group_policies(s->st, g, POLICY_GROUPS_MAX, &n) : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		size_t k = pg->pg.n;

		if (svc_labelq_parse(g[i].query, &pg->q[k], msg, sizeof(msg)) != 0) {
			log_warn("group %s: its query does not parse (%s); it gives no policy",
				 g[i].name, msg);
			continue;
		}
		pg->g[k] = g[i];
		pg->pg.q[k] = &pg->q[k];
		pg->pg.policy[k] = pg->g[k].policy;
		pg->pg.n++;
	}
	free(g);
	if (r != 0 || pg->pg.n == 0) {
		free(pg);
		return r;
	}
	*out = pg;
	return 0;
}

int
svc_group_policy(struct service *s, const struct device *d, char *name, size_t cap)
{
	struct svc_pgroups *pg = NULL;
	int r = svc_pgroups_load(s, &pg);

	name[0] = '\0';
	for (size_t i = 0; r == 0 && pg != NULL && i < pg->pg.n; i++) {
		int match = 0;

		r = s->st->ops->device_matches(s->st, d->id, pg->pg.q[i], &match);
		if (r == 0 && match) {
			str_copy(name, cap, pg->pg.policy[i]);
			break;
		}
	}
	free(pg);
	return r;
}
