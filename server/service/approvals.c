/*
 * The two-person rule (issue 11 section 4), its requests: when the server's setting says so, a
 * wipe or retire, and a bulk of more than approval_bulk_size devices, is recorded as an
 * approval request instead of being queued, and nothing reaches a device until a second admin
 * approves it (approve.c) before it expires. Who counts as "the same person" is decided here
 * (svc_person_of): a console session is its admin account; an API token stands for the
 * account that made it, following created_by through tokens made by tokens; a token made by
 * the server itself (the first admin token) is a person of its own. approve.c adds the
 * account-level checks (email, accounts made after the request).
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"

#define PERSON_HOPS      8  /* tokens made by tokens: a chain longer than this is cut */
#define REUSE_SCAN       50 /* pending requests of a device looked at for a repeat */
#define APPROVAL_TTL_DEF 86400
#define BULK_SIZE_DEF    50

static int
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

void
svc_approval_settings(const struct service *s, int *on, int64_t *bulk_size, int64_t *ttl_s)
{
	*on = s->cfg.two_person != 0;
	*bulk_size = s->cfg.approval_bulk_size > 0 ? s->cfg.approval_bulk_size : BULK_SIZE_DEF;
	*ttl_s = s->cfg.approval_ttl_s > 0 ? s->cfg.approval_ttl_s : APPROVAL_TTL_DEF;
}

int
svc_approval_needed(const struct service *s, const char *type, size_t n)
{
	int64_t size, ttl;
	int on;

	svc_approval_settings(s, &on, &size, &ttl);
	if (!on)
		return 0;
	return strcmp(type, "wipe") == 0 || strcmp(type, "retire") == 0 || (int64_t)n > size;
}

const char *
svc_approval_state(const struct service *s, const struct approval *a)
{
	if (strcmp(a->status, "pending") == 0 && a->expires_at <= svc_now_s(s))
		return "expired";
	return a->status;
}

int
svc_person_of(struct service *s, const char *id, char person[STORE_ID_MAX])
{
	char cur[STORE_ID_MAX], last[STORE_ID_MAX] = "";
	struct api_token t;
	int r;

	str_copy(cur, sizeof(cur), id);
	for (int hop = 0; hop < PERSON_HOPS && has_prefix(cur, "tok_"); hop++) {
		r = s->st->ops->token_get(s->st, cur, &t);
		if (r == -ENOENT)
			break;
		if (r != 0)
			return r;
		str_copy(last, sizeof(last), cur);
		str_copy(cur, sizeof(cur), t.created_by);
	}
	/* An account, or a token the server made (its creator "system"): that is the person. */
	str_copy(person, STORE_ID_MAX,
		 has_prefix(cur, "adm_") || has_prefix(cur, "tok_") || last[0] == '\0' ? cur
										       : last);
	return 0;
}

int
svc_principal_name(struct service *s, const char *id, char *out, size_t cap)
{
	struct admin_account acc;
	struct api_token t;
	int r = -ENOENT;

	out[0] = '\0';
	if (has_prefix(id, "adm_") && (r = s->st->ops->admin_get(s->st, id, &acc)) == 0)
		str_copy(out, cap, acc.email);
	else if (has_prefix(id, "tok_") && (r = s->st->ops->token_get(s->st, id, &t)) == 0)
		str_copy(out, cap, t.name);
	secure_zero(&acc, sizeof(acc)); /* its password hash and TOTP key */
	return r == -ENOENT ? 0 : r;
}

/* A pending request of the same person for the same device and type, still in time. */
static int
find_repeat(struct service *s, const char *person, const char *type, const char *device_id,
	    struct approval *out)
{
	struct approval_filter f = {
		.status = "pending", .device_id = device_id, .limit = REUSE_SCAN};
	struct approval *page = calloc(REUSE_SCAN, sizeof(*page));
	size_t n = 0;
	int r;

	if (page == NULL)
		return -ENOMEM;
	r = s->st->ops->approval_list(s->st, &f, page, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (strcmp(page[i].type, type) == 0 && strcmp(page[i].kind, "command") == 0 &&
		    strcmp(page[i].requester_person, person) == 0 &&
		    page[i].expires_at > svc_now_s(s)) {
			*out = page[i];
			free(page);
			return 0;
		}
	free(page);
	return r == 0 ? -ENOENT : r;
}

/* The bulk's ids as one space-separated text in buf (APPROVAL_IDS_MAX). */
static void
join_ids(const char (*ids)[STORE_ID_MAX], size_t n, char *buf)
{
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(buf + at, APPROVAL_IDS_MAX - at, "%s%s", i ? " " : "",
				       ids[i]);
}

int
svc_approval_request_tx(struct service *s, const struct principal *p,
			const struct svc_approval_ask *ask, struct approval *out, int *reused)
{
	const char *kind = ask->ids != NULL ? "bulk" : ask->bulk_id != NULL ? "filter" : "command";
	char detail[STORE_TEXT_MAX], *buf = NULL;
	int64_t size, ttl;
	int on, r;

	svc_approval_settings(s, &on, &size, &ttl);
	*reused = 0;
	memset(out, 0, sizeof(*out));
	r = svc_person_of(s, p->id, out->requester_person);
	if (r == 0 && strcmp(kind, "command") == 0) {
		r = find_repeat(s, out->requester_person, ask->type, ask->device_id, out);
		if (r == 0) {
			*reused = 1;
			return 0;
		}
		str_copy(out->requester_person, sizeof(out->requester_person), "");
		r = r == -ENOENT ? svc_person_of(s, p->id, out->requester_person) : r;
	}
	if (r == 0)
		r = svc_new_id(out->id, "apr_");
	if (r != 0)
		return r;
	str_copy(out->kind, sizeof(out->kind), kind);
	str_copy(out->type, sizeof(out->type), ask->type);
	str_copy(out->device_id, sizeof(out->device_id), ask->device_id ? ask->device_id : "");
	str_copy(out->bulk_id, sizeof(out->bulk_id), ask->bulk_id ? ask->bulk_id : "");
	out->device_count = strcmp(kind, "command") != 0 ? (int64_t)ask->n : 1;
	str_copy(out->reason, sizeof(out->reason), ask->reason);
	out->command_ttl_s = ask->ttl_s;
	str_copy(out->requested_by, sizeof(out->requested_by), p->id);
	str_copy(out->status, sizeof(out->status), "pending");
	out->created_ms = service_now_ms(s);
	out->created_at = out->created_ms / 1000;
	out->expires_at = out->created_at + ttl;
	if (ask->ids != NULL) {
		buf = malloc(APPROVAL_IDS_MAX);
		if (buf == NULL)
			return -ENOMEM;
		join_ids(ask->ids, ask->n, buf);
		out->device_ids = buf;
	}
	r = s->st->ops->approval_insert(s->st, out);
	out->device_ids = NULL;
	free(buf);
	snprintf(detail, sizeof(detail),
		 "type=%s device=%s devices=%lld bulk=%s expires_at=%lld reason=%s", ask->type,
		 out->device_id, (long long)out->device_count, out->bulk_id,
		 (long long)out->expires_at, ask->reason);
	/* The event before the audit entry: the outbox head is locked before the audit head. */
	if (r == 0)
		r = svc_ev_approval(s, "approval.requested", out);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "approval.request", out->id,
				 "pending", detail);
	return r;
}

int
svc_approval_list(struct service *s, const struct principal *p, const struct approval_filter *f,
		  struct approval *out, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->approval_list(s->st, f, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "approval");
}

int
svc_approval_get(struct service *s, const struct principal *p, const char *id, struct approval *out,
		 struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->approval_get(s->st, id, 0, out);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no approval request with id %s", id);
	return r == 0 ? 0 : svc_store_fail(err, r, "approval");
}

/* Reject (any admin) or cancel (the requester's person): one attempt. */
static int
end_once(struct service *s, const struct principal *p, const char *id, const char *status,
	 const char *note, struct approval *out, struct svc_error *err)
{
	char person[STORE_ID_MAX], detail[STORE_TEXT_MAX];
	int cancel = strcmp(status, "canceled") == 0;
	int r = svc_person_of(s, p->id, person);

	if (r == 0)
		r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "approval");
	out->device_ids = NULL;
	r = s->st->ops->approval_get(s->st, id, 1, out);
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no approval request with id %s", id);
	}
	if (r != 0)
		goto fail;
	if (cancel && strcmp(out->requester_person, person) != 0) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_FORBIDDEN,
				"only the admin who asked may cancel a request; others reject it");
	}
	if (strcmp(svc_approval_state(s, out), "pending") != 0) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_CONFLICT, "approval request %s is %s", id,
				svc_approval_state(s, out));
	}
	str_copy(out->status, sizeof(out->status), status);
	str_copy(out->decided_by, sizeof(out->decided_by), p->id);
	str_copy(out->decided_person, sizeof(out->decided_person), person);
	str_copy(out->note, sizeof(out->note), note);
	out->decided_at = svc_now_s(s);
	snprintf(detail, sizeof(detail), "type=%s device=%s requested_by=%s note=%s", out->type,
		 out->device_id, out->requested_by, note);
	r = s->st->ops->approval_decide(s->st, out);
	if (r == 0)
		r = svc_approval_end_bulk_tx(s, out, p->id,
					     cancel ? "the approval request was canceled"
						    : "the approval request was rejected");
	if (r == 0)
		r = svc_ev_approval(s, cancel ? "approval.canceled" : "approval.rejected", out);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id,
				 cancel ? "approval.cancel" : "approval.reject", id, "ok", detail);
	if (r != 0)
		goto fail;
	r = s->st->ops->tx_commit(s->st);
	return r == 0 ? 0 : svc_store_fail(err, r, "approval");
fail:
	s->st->ops->tx_rollback(s->st);
	if (r == -ENOENT) /* decided by another in the meantime */
		return svc_fail(err, SVC_CONFLICT, "approval request %s was decided already", id);
	return svc_store_fail(err, r, "approval");
}

int
svc_approval_reject(struct service *s, const struct principal *p, const char *id, const char *note,
		    struct approval *out, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_CMD_DESTRUCT, err);

	if (r != 0)
		return r;
	if (strlen(note) >= STORE_TEXT_MAX - 128)
		return svc_fail(err, SVC_INVALID, "note is longer than 380 characters");
	SVC_TX_RETRY(s, r, end_once(s, p, id, "rejected", note, out, err));
	return r;
}

int
svc_approval_cancel(struct service *s, const struct principal *p, const char *id,
		    struct approval *out, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_CMD_DESTRUCT, err);

	if (r != 0)
		return r;
	SVC_TX_RETRY(s, r, end_once(s, p, id, "canceled", "", out, err));
	return r;
}

int
svc_approval_end_bulk_tx(struct service *s, const struct approval *a, const char *by,
			 const char *why)
{
	int r;

	if (strcmp(a->kind, "filter") != 0)
		return 0;
	r = s->st->ops->bulk_stop(s->st, a->bulk_id, "canceled", by, why, svc_now_s(s));
	return r == -ENOENT ? 0 : r; /* canceled on its own already */
}

/* ---- API tokens with the approve permission ---- */

int
svc_token_can_approve(struct service *s, const char *id)
{
	int r = s->st->ops->token_permission_has(s->st, id, "approve");

	return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}
