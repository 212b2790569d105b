/*
 * The two-person rule, its decisions: a second admin approves a request, or an admin uses the
 * emergency override; either queues the request's command (or a bulk's commands, device by
 * device as svc_command_bulk would) in the same transaction that decides the request, with the
 * requester as the command's creator and the approver recorded on it, both audited.
 *
 * Concurrency: the request's row is read for update first (PostgreSQL: FOR UPDATE), so the
 * deciders of one request take turns; the second finds it decided and queues nothing. The
 * decision itself is written only while the row is pending (approval_decide), the backstop.
 * The lock order is request, then device, then audit head, which no other path reverses.
 *
 * Same person: the approver's person (svc_person_of) must differ from the requester's; when
 * both are accounts, their emails must differ once case and a "+tag" are ignored, and an
 * account that the requester's person made after the request cannot approve it.
 */
#include "service_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"

#define OVERRIDE_REASON_MIN 10
#define SWEEP_MAX           20 /* expired requests written per sweep */

struct decision {
	const struct principal *p;
	const char *mode; /* "approved" or "overridden" */
	const char *note;
	char person[STORE_ID_MAX];
	char (*ids)[STORE_ID_MAX]; /* a bulk's devices, SVC_BULK_MAX */
	size_t nids;
	struct svc_bulk_result *res; /* per device of a bulk */
	struct command *scratch;     /* SVC_BULK_SCRATCH */
	struct command cmd;          /* a single command as queued */
};

static int
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

int
svc_approver_check(struct service *s, const struct principal *p, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_CMD_DESTRUCT, err);

	if (r != 0)
		return r;
	/* A session counts only if its sign-in checked a code, not if TOTP came later. */
	if (has_prefix(p->id, "adm_")) {
		if (p->second_factor)
			return 0;
		return svc_fail(err, SVC_APPROVAL_FACTOR,
				"approving needs a console session signed in with a TOTP code; "
				"enroll TOTP for your account and sign in again");
	}
	r = svc_token_can_approve(s, p->id);
	if (r < 0)
		return svc_store_fail(err, r, "token");
	if (r == 1)
		return 0;
	return svc_fail(err, SVC_APPROVAL_FACTOR,
			"this API token lacks the approve permission; create one with "
			"\"permissions\": [\"approve\"] from a console session with TOTP");
}

int
svc_can_approve(struct service *s, const struct principal *p)
{
	struct svc_error err = {0};

	return svc_approver_check(s, p, &err) == 0;
}

/* The mailbox of an email without case and "+tag": "Ann+ops@x" and "ann@x" are one. */
static void
mailbox(const char *email, char *out, size_t cap)
{
	const char *at = strchr(email, '@');
	const char *plus = strchr(email, '+');
	size_t k = 0;

	for (const char *c = email; *c != '\0' && k + 1 < cap; c++) {
		if (plus != NULL && at != NULL && c >= plus && c < at)
			continue;
		out[k++] = (char)tolower((unsigned char)*c);
	}
	out[k] = '\0';
}

/*
 * The account was made at or after the request: in ms when both rows have them (migration
 * 0022), else in whole seconds (rows from before, where the same second counts as after).
 */
static int
made_after(const struct admin_account *acc, const struct approval *a)
{
	if (acc->created_ms > 0 && a->created_ms > 0)
		return acc->created_ms >= a->created_ms;
	return acc->created_at >= a->created_at;
}

/* 1 when the approver is the requester's person under the rules above, 0 when not, or < 0. */
static int
same_person(struct service *s, const struct approval *a, const char *approver_person)
{
	struct admin_account req, app;
	char m1[STORE_NAME_MAX], m2[STORE_NAME_MAX], maker[STORE_ID_MAX];
	int r;

	if (strcmp(a->requester_person, approver_person) == 0)
		return 1;
	if (!has_prefix(approver_person, "adm_"))
		return 0;
	r = s->st->ops->admin_get(s->st, approver_person, &app);
	if (r != 0)
		return r == -ENOENT ? 0 : r;
	r = svc_person_of(s, app.created_by, maker);
	if (r != 0)
		return r;
	if (strcmp(maker, a->requester_person) == 0 && made_after(&app, a))
		return 1;
	if (!has_prefix(a->requester_person, "adm_"))
		return 0;
	r = s->st->ops->admin_get(s->st, a->requester_person, &req);
	if (r != 0)
		return r == -ENOENT ? 0 : r;
	mailbox(req.email, m1, sizeof(m1));
	mailbox(app.email, m2, sizeof(m2));
	return strcmp(m1, m2) == 0;
}

/* A single command's device: queue it, record the approval on it. */
static int
queue_one(struct service *s, const struct approval *a, struct decision *dc, struct svc_error *err)
{
	struct device d;
	int r = s->st->ops->device_get_for_update(s->st, a->device_id, &d);

	if (r == -ENOENT || (r == 0 && strcmp(d.status, "active") != 0)) {
		svc_fail(err, SVC_CONFLICT,
			 "device %s is %s and takes no more commands; reject "
			 "the request",
			 a->device_id, r == 0 ? d.status : "gone");
		return -ECANCELED;
	}
	if (r == 0)
		r = svc_command_queue_tx(s, &d, a->type, a->reason, a->requested_by,
					 a->command_ttl_s, NULL, NULL, NULL, &dc->cmd);
	if (r == 0)
		r = s->st->ops->command_set_approval(s->st, dc->cmd.id, a->id, dc->p->id);
	if (r == 0) {
		str_copy(dc->cmd.approval_id, sizeof(dc->cmd.approval_id), a->id);
		str_copy(dc->cmd.approved_by, sizeof(dc->cmd.approved_by), dc->p->id);
		r = svc_notify_tx(s, d.id);
	}
	return r;
}

/* A bulk's devices, each as svc_command_bulk would (queued, already pending or refused). */
static int
queue_bulk(struct service *s, const struct approval *a, struct decision *dc)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < dc->nids; i++) {
		memset(&dc->res[i], 0, sizeof(dc->res[i]));
		str_copy(dc->res[i].device_id, sizeof(dc->res[i].device_id), dc->ids[i]);
		r = svc_bulk_device_tx(s, a->requested_by, a->type, a->reason, dc->scratch,
				       &dc->res[i]);
		if (r == 0 && dc->res[i].outcome == BULK_QUEUED)
			r = s->st->ops->command_set_approval(s->st, dc->res[i].command_id, a->id,
							     dc->p->id);
	}
	return r == 0 ? svc_notify_sweep_tx(s) : r;
}

/* A bulk by filter held as awaiting starts (its worker takes it from there). */
static int
release_bulk(struct service *s, const struct approval *a, struct svc_error *err)
{
	int r = s->st->ops->bulk_release(s->st, a->bulk_id, svc_now_s(s));

	if (r != -ENOENT)
		return r;
	svc_fail(err, SVC_CONFLICT, "bulk %s no longer waits (it was canceled); reject the request",
		 a->bulk_id);
	return -ECANCELED;
}

/* Splits a bulk's stored ids into dc->ids. */
static void
split_ids(const char *text, struct decision *dc)
{
	const char *c = text;

	dc->nids = 0;
	while (*c != '\0' && dc->nids < SVC_BULK_MAX) {
		size_t len = strcspn(c, " ");

		if (len > 0 && len < STORE_ID_MAX) {
			memcpy(dc->ids[dc->nids], c, len);
			dc->ids[dc->nids++][len] = '\0';
		}
		c += len;
		c += *c == ' ';
	}
}

/* Checks the request may be decided now by dc; 0, or an error in err (-EACCES etc.). */
static int
check_decidable(struct service *s, struct approval *a, struct decision *dc, struct svc_error *err)
{
	int overriding = strcmp(dc->mode, "overridden") == 0;
	int r;

	if (strcmp(a->status, "pending") != 0)
		return svc_fail(err, SVC_CONFLICT, "approval request %s is %s already", a->id,
				a->status);
	if (a->expires_at <= svc_now_s(s))
		return -ETIMEDOUT;
	if (overriding)
		return 0;
	r = same_person(s, a, dc->person);
	if (r < 0)
		return r;
	if (r == 1)
		return svc_fail(err, SVC_APPROVAL_SELF,
				"the admin who asked (or another account of the same person) "
				"cannot approve; a second admin must");
	return 0;
}

/* A late decision: the request is marked expired (audited) and the caller is told so. */
static int
expire_tx(struct service *s, struct approval *a)
{
	int r;

	str_copy(a->status, sizeof(a->status), "expired");
	a->decided_at = svc_now_s(s);
	r = s->st->ops->approval_decide(s->st, a);
	if (r == 0)
		r = svc_approval_end_bulk_tx(s, a, "system", "the approval request expired");
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), "system", "approval.expire", a->id, "ok",
				 a->type);
	return r;
}

/* One expired request, in its own transaction; 0 also when another got there first. */
static int
sweep_once(struct service *s, const char *id)
{
	struct approval a = {0};
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return r;
	r = s->st->ops->approval_get(s->st, id, 1, &a);
	if (r == 0 && (strcmp(a.status, "pending") != 0 || a.expires_at > svc_now_s(s)))
		r = -ENOENT; /* decided meanwhile */
	if (r == 0)
		r = expire_tx(s, &a);
	if (r == 0)
		return s->st->ops->tx_commit(s->st);
	s->st->ops->tx_rollback(s->st);
	return r == -ENOENT ? 0 : r;
}

int
svc_approval_sweep(struct service *s)
{
	struct approval *due = calloc(SWEEP_MAX, sizeof(*due));
	size_t n = 0;
	int r;

	if (due == NULL)
		return -ENOMEM;
	r = s->st->ops->approval_expired(s->st, svc_now_s(s), due, SWEEP_MAX, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		SVC_TX_RETRY(s, r, sweep_once(s, due[i].id));
	free(due);
	return r;
}

static void
decision_detail(const struct approval *a, const struct decision *dc, char *buf, size_t cap)
{
	snprintf(buf, cap, "type=%s device=%s devices=%lld requested_by=%s %s_by=%s command=%s%s%s",
		 a->type, a->device_id, (long long)a->device_count, a->requested_by,
		 strcmp(dc->mode, "approved") == 0 ? "approved" : "overridden", dc->p->id,
		 a->command_id, dc->note[0] ? " reason=" : "", dc->note);
}

/* What the request asked for, now: its command queued, its bulk's commands, or its bulk run. */
static int
carry_out(struct service *s, struct approval *a, char *ids, struct decision *dc,
	  struct svc_error *err)
{
	int r;

	if (strcmp(a->kind, "bulk") == 0) {
		split_ids(ids, dc);
		return queue_bulk(s, a, dc);
	}
	if (strcmp(a->kind, "filter") == 0)
		return release_bulk(s, a, err);
	r = queue_one(s, a, dc, err);
	str_copy(a->command_id, sizeof(a->command_id), dc->cmd.id);
	return r;
}

/* The decision on the request's row, its audit entry and its event (-ENOENT: decided). */
static int
record_tx(struct service *s, struct approval *a, const struct decision *dc)
{
	int overriding = strcmp(dc->mode, "overridden") == 0;
	char detail[STORE_TEXT_MAX];
	int r;

	str_copy(a->status, sizeof(a->status), dc->mode);
	str_copy(a->decided_by, sizeof(a->decided_by), dc->p->id);
	str_copy(a->decided_person, sizeof(a->decided_person), dc->person);
	str_copy(a->note, sizeof(a->note), dc->note);
	a->decided_at = svc_now_s(s);
	decision_detail(a, dc, detail, sizeof(detail));
	r = s->st->ops->approval_decide(s->st, a);
	if (r == 0)
		r = svc_ev_approval(s, overriding ? "approval.overridden" : "approval.approved", a);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), dc->p->id,
				 overriding ? "approval.override" : "approval.approve", a->id,
				 overriding ? "override" : "ok", detail);
	return r;
}

static int
decide_once(struct service *s, const char *id, struct decision *dc, struct approval *out,
	    struct svc_error *err)
{
	char *ids = NULL;
	int r;

	err->kind = SVC_OK; /* a previous attempt's error is not this one's */
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "approval");
	ids = malloc(APPROVAL_IDS_MAX);
	out->device_ids = ids;
	r = ids == NULL ? -ENOMEM : s->st->ops->approval_get(s->st, id, 1, out);
	out->device_ids = NULL;
	if (r == -ENOENT) {
		r = svc_fail(err, SVC_NOT_FOUND, "no approval request with id %s", id);
		goto refuse;
	}
	if (r == 0)
		r = check_decidable(s, out, dc, err);
	if (r == -ETIMEDOUT) {
		r = expire_tx(s, out);
		if (r == 0)
			r = s->st->ops->tx_commit(s->st);
		free(ids);
		if (r != 0)
			return svc_store_fail(err, r, "approval");
		return svc_fail(err, SVC_CONFLICT,
				"approval request %s expired before it was approved; ask again",
				id);
	}
	if (r == 0)
		r = carry_out(s, out, ids, dc, err);
	if (r != 0)
		goto refuse;
	r = record_tx(s, out, dc);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	free(ids);
	if (r == -ENOENT)
		return svc_fail(err, SVC_CONFLICT, "approval request %s was decided already", id);
	return r == 0 ? 0 : svc_store_fail(err, r, "approval");
refuse:
	s->st->ops->tx_rollback(s->st);
	free(ids);
	if (err->kind != SVC_OK && r != -EDEADLK)
		return r == -ECANCELED ? -EPERM : r;
	return svc_store_fail(err, r, "approval");
}

/* After the commit: wake the devices that got a command. */
static void
wake_after(struct service *s, const struct approval *a, const struct decision *dc)
{
	if (strcmp(a->kind, "filter") == 0) {
		svc_bulk_kick(s);
		return;
	}
	if (strcmp(a->kind, "bulk") != 0) {
		svc_notify(s, a->device_id);
		return;
	}
	for (size_t i = 0; i < dc->nids; i++)
		if (dc->res[i].outcome == BULK_QUEUED)
			svc_notify(s, dc->res[i].device_id);
}

static int
decide(struct service *s, const char *id, struct decision *dc, struct approval *out,
       struct command *cmd, struct svc_error *err)
{
	int r = svc_person_of(s, dc->p->id, dc->person);

	if (r != 0)
		return svc_store_fail(err, r, "approval");
	dc->ids = calloc(SVC_BULK_MAX, STORE_ID_MAX);
	dc->res = calloc(SVC_BULK_MAX, sizeof(*dc->res));
	dc->scratch = calloc(SVC_BULK_SCRATCH, sizeof(*dc->scratch));
	if (dc->ids == NULL || dc->res == NULL || dc->scratch == NULL)
		r = svc_fail(err, SVC_UNAVAILABLE, "out of memory");
	else
		SVC_TX_RETRY(s, r, decide_once(s, id, dc, out, err));
	if (r == 0) {
		wake_after(s, out, dc);
		if (cmd != NULL)
			*cmd = dc->cmd;
	}
	free(dc->ids);
	free(dc->res);
	free(dc->scratch);
	return r;
}

int
svc_approval_approve(struct service *s, const struct principal *p, const char *id,
		     struct approval *out, struct command *cmd, struct svc_error *err)
{
	struct decision *dc;
	int r = svc_approver_check(s, p, err);

	if (r != 0)
		return r;
	dc = calloc(1, sizeof(*dc));
	if (dc == NULL)
		return svc_fail(err, SVC_UNAVAILABLE, "out of memory");
	dc->p = p;
	dc->mode = "approved";
	dc->note = "";
	r = decide(s, id, dc, out, cmd, err);
	if (r == 0)
		log_info("approval %s (%s) approved by %s; requested by %s", id, out->type, p->name,
			 out->requested_by);
	free(dc);
	return r;
}

int
svc_approval_override(struct service *s, const struct principal *p, const char *id,
		      const char *reason, struct approval *out, struct command *cmd,
		      struct svc_error *err)
{
	struct decision *dc;
	int r = svc_authorize(s, p, PERM_CMD_DESTRUCT, err);

	if (r != 0)
		return r;
	if (p->role != ROLE_ADMIN)
		return svc_fail(err, SVC_FORBIDDEN, "only an admin may override");
	if (strlen(reason) < OVERRIDE_REASON_MIN || strlen(reason) >= STORE_TEXT_MAX - 128)
		return svc_fail(err, SVC_INVALID,
				"an emergency override needs a reason of 10 to 380 characters");
	dc = calloc(1, sizeof(*dc));
	if (dc == NULL)
		return svc_fail(err, SVC_UNAVAILABLE, "out of memory");
	dc->p = p;
	dc->mode = "overridden";
	dc->note = reason;
	r = decide(s, id, dc, out, cmd, err);
	if (r == 0)
		log_warn("EMERGENCY OVERRIDE of the two-person rule: approval %s (%s of %s) queued "
			 "by %s without a second admin: %s",
			 id, out->type, out->device_id[0] ? out->device_id : "a bulk", p->name,
			 reason);
	free(dc);
	return r;
}
