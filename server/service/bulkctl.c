/*
 * Following and stopping bulk operations by filter (issue 10 section 2; bulkop.c starts and
 * works them): the list an admin reads, the cancel an admin gives, and the worker's check,
 * before each batch, that the requester may still give the order.
 *
 * Both ways of ending a running bulk go through store bulk_stop, which changes only a row that
 * is still running, inside a transaction that also writes the audit entry. A batch holds the
 * row from its claim to its commit (SQLite: the one writer lock; PostgreSQL: FOR UPDATE), so a
 * cancel lands between two batches: the batch in flight commits whole, the next claim finds
 * the bulk no longer running, and no command is queued for it afterwards. What was queued
 * stays queued; its commands can be canceled one by one as any other.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"

int
svc_bulk_list(struct service *s, const struct principal *p, const struct bulk_list_filter *f,
	      struct bulk_op *out, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	*n = 0;
	if (r != 0)
		return r;
	if (f->limit < 1 || f->limit > SVC_BULK_LIST_MAX)
		return svc_fail(err, SVC_INVALID, "limit must be between 1 and %d",
				SVC_BULK_LIST_MAX);
	r = s->st->ops->bulk_list(s->st, f, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "bulk command");
}

/* The end's audit detail: what the bulk had done when it stopped. */
static void
end_detail(const struct bulk_op *b, const char *why, char *out, size_t cap)
{
	snprintf(out, cap, "type=%s queued=%lld already_pending=%lld skipped=%lld of=%lld%s%.200s",
		 b->type, (long long)b->queued, (long long)b->already_pending,
		 (long long)b->skipped, (long long)b->expected_count, why[0] ? " why=" : "", why);
}

static int
cancel_once(struct service *s, const struct principal *p, const char *id, struct bulk_op *out,
	    struct svc_error *err)
{
	char detail[STORE_TEXT_MAX];
	enum perm perm;
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return svc_store_fail(err, r, "bulk command");
	r = s->st->ops->bulk_get(s->st, id, out);
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no bulk command with id %s", id);
	}
	if (r != 0)
		goto fail;
	/* Who may order the type may stop it: helpdesk may not stop a wipe. */
	if (svc_command_perm(out->type, &perm) != 0 || svc_authorize(s, p, perm, err) != 0) {
		s->st->ops->tx_rollback(s->st);
		if (err->kind != SVC_FORBIDDEN)
			return svc_fail(err, SVC_FORBIDDEN, "the %s role may not do this",
					role_name(p->role));
		return -EACCES;
	}
	r = s->st->ops->bulk_stop(s->st, id, "canceled", p->id, "", svc_now_s(s));
	if (r == -ENOENT) { /* ended meanwhile (the batch in flight may have finished it) */
		r = s->st->ops->bulk_get(s->st, id, out);
		s->st->ops->tx_rollback(s->st);
		if (r != 0)
			return svc_store_fail(err, r, "bulk command");
		return svc_fail(err, SVC_CONFLICT,
				"bulk command %s is %s; only a running one can be canceled", id,
				out->state);
	}
	if (r == 0)
		r = s->st->ops->bulk_get(s->st, id, out);
	end_detail(out, "", detail, sizeof(detail));
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "command.bulk.cancel", id, "ok",
				 detail);
	if (r != 0)
		goto fail;
	r = s->st->ops->tx_commit(s->st);
	return r == 0 ? 0 : svc_store_fail(err, r, "bulk command");
fail:
	s->st->ops->tx_rollback(s->st);
	return svc_store_fail(err, r, "bulk command");
}

int
svc_bulk_cancel(struct service *s, const struct principal *p, const char *id, struct bulk_op *out,
		struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, cancel_once(s, p, id, out, err));
	return r;
}

/* Whether role may give perm now; why says what stops it. */
static int
role_may(struct service *s, const char *role, enum perm perm, char *why, size_t cap)
{
	struct principal who = {.role = role_parse(role)};
	struct svc_error ignored = {0};

	if (svc_authorize(s, &who, perm, &ignored) == 0)
		return 1;
	snprintf(why, cap, "the requester's role is now %s", role[0] ? role : "none");
	return 0;
}

/*
 * Whether the bulk's requester may still give its order: 1 yes, 0 no (why says why), or a
 * store error. The requester is a console account or an API token; a console account may be
 * disabled, a token revoked or expired, and either's role may no longer allow the type.
 */
static int
requester_may(struct service *s, const struct bulk_op *b, char *why, size_t cap)
{
	struct admin_account a;
	struct api_token t;
	enum perm perm;
	int r;

	if (svc_command_perm(b->type, &perm) != 0) {
		snprintf(why, cap, "the type %s is not known", b->type);
		return 0;
	}
	r = s->st->ops->admin_get(s->st, b->requested_by, &a);
	if (r == 0) {
		if (a.disabled_at != 0) {
			snprintf(why, cap, "the requester's account is disabled");
			return 0;
		}
		return role_may(s, a.role, perm, why, cap);
	}
	if (r != -ENOENT)
		return r;
	r = s->st->ops->token_get(s->st, b->requested_by, &t);
	if (r == -ENOENT) {
		snprintf(why, cap, "the requester no longer exists");
		return 0;
	}
	if (r != 0)
		return r;
	if (t.revoked_at != 0 || (t.expires_at != 0 && t.expires_at <= svc_now_s(s))) {
		snprintf(why, cap, "the requester's API token is %s",
			 t.revoked_at != 0 ? "revoked" : "expired");
		return 0;
	}
	return role_may(s, t.role, perm, why, cap);
}

int
svc_bulk_gate_tx(struct service *s, struct bulk_op *b)
{
	char why[STORE_TEXT_MAX / 2] = "", detail[STORE_TEXT_MAX];
	int r = requester_may(s, b, why, sizeof(why));

	if (r != 0)
		return r == 1 ? 0 : r;
	r = s->st->ops->bulk_stop(s->st, b->id, "refused", b->requested_by, why, svc_now_s(s));
	end_detail(b, why, detail, sizeof(detail));
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), "system", "command.bulk.refused", b->id,
				 "refused", detail);
	return r == 0 ? 1 : r;
}
