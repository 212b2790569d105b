/*
 * The two-person rule's routes (issue 11 section 4): GET /api/v1/approvals (newest first,
 * by status and device), GET /api/v1/approvals/{id}, and POST .../approve, .../reject,
 * .../cancel and .../override. A command or bulk that the rule holds back is answered by
 * pending_reply: 202 with "status": "pending_approval" and the request, so a script can follow
 * its Location. The rules (who may decide, the same person, expiry) are the service's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "b64.h"

static const char *const approval_states[] = {"pending", "approved",   "rejected", "canceled",
					      "expired", "overridden", NULL};

static json_t *
opt_str(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

/* The name behind a principal id (svc_principal_name), null when it has none. */
static json_t *
name_of(struct api *a, const char *id)
{
	char name[STORE_NAME_MAX];

	if (id[0] == '\0' || svc_principal_name(a->svc, id, name, sizeof(name)) != 0 ||
	    name[0] == '\0')
		return json_null();
	return json_string(name);
}

json_t *
approval_json(struct api *a, const struct approval *ap)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:s, s:s, s:o, s:o}", "id", ap->id,
			      "kind", ap->kind, "type", ap->type, "device_id",
			      opt_str(ap->device_id), "device_count", (json_int_t)ap->device_count,
			      "reason", ap->reason, "requested_by", ap->requested_by, "status",
			      svc_approval_state(a->svc, ap), "created_at", jtime(ap->created_at),
			      "expires_at", jtime(ap->expires_at));

	json_object_set_new(j, "requested_by_name", name_of(a, ap->requested_by));
	json_object_set_new(j, "decided_by", opt_str(ap->decided_by));
	json_object_set_new(j, "decided_by_name", name_of(a, ap->decided_by));
	json_object_set_new(j, "decided_at", ap->decided_at ? jtime(ap->decided_at) : json_null());
	json_object_set_new(j, "note", opt_str(ap->note));
	json_object_set_new(j, "command_id", opt_str(ap->command_id));
	json_object_set_new(j, "bulk_id", opt_str(ap->bulk_id));
	return j;
}

void
pending_reply(struct call *c, const struct approval *ap, json_t *extra)
{
	json_t *j = json_pack("{s:s, s:s, s:o}", "status", "pending_approval", "approval_id",
			      ap->id, "approval", approval_json(c->a, ap));

	if (extra != NULL)
		json_object_update(j, extra);
	json_decref(extra);
	reply_json(c->rs, 202, j);
	snprintf(c->rs->location, sizeof(c->rs->location), "/api/v1/approvals/%s", ap->id);
}

/* The list's cursor: base64url of "a1:<created_at>:<id>" of the page's last request. */
/* The cursor after the last item of a page (json.c's time_id_cursor). */
static json_t *
list_cursor(const struct approval *last)
{
	return time_id_cursor("a1", last->created_at, last->id);
}

/* cursor into f (id into idbuf); 0, or -1 after a 400. */
static int
cursor_param(struct call *c, struct approval_filter *f, char *idbuf, size_t cap)
{
	idbuf[0] = '\0';
	if (time_id_cursor_param(c, "a1", &f->after_created, idbuf, cap) != 0)
		return -1;
	if (idbuf[0] != '\0')
		f->after_id = idbuf;
	return 0;
}

/* status, device_id and limit into f; 0, or -1 after a 400 naming the parameter. */
static int
list_params(struct call *c, struct approval_filter *f, char *status, char *device)
{
	char v[16], *end;
	int r = query_get(c->rq->query, "status", status, 16);
	size_t i;

	if (r == 1 && status[0] != '\0') {
		for (i = 0; approval_states[i] != NULL && strcmp(approval_states[i], status); i++)
			;
		if (approval_states[i] == NULL)
			r = -1;
		f->status = status;
	}
	if (r < 0) {
		reply_problem(c->rs, P_BAD_REQUEST,
			      "status must be one of pending, approved, rejected, canceled, "
			      "expired, overridden");
		return -1;
	}
	r = query_get(c->rq->query, "device_id", device, STORE_ID_MAX);
	if (r < 0) {
		reply_problem(c->rs, P_BAD_REQUEST, "device_id is too long");
		return -1;
	}
	f->device_id = r == 1 && device[0] != '\0' ? device : NULL;
	f->limit = 50;
	r = query_get(c->rq->query, "limit", v, sizeof(v));
	if (r == 1 && v[0] != '\0') {
		long long x = strtoll(v, &end, 10);

		if (*end != '\0' || x < 1 || x > SVC_APPROVAL_LIST_MAX)
			r = -1;
		f->limit = (size_t)x;
	}
	if (r < 0) {
		reply_problem(c->rs, P_BAD_REQUEST, "limit must be a whole number from 1 to 200");
		return -1;
	}
	return 0;
}

void
h_approvals_list(struct call *c)
{
	struct approval *items = calloc(SVC_APPROVAL_LIST_MAX + 1, sizeof(*items));
	struct approval_filter f = {0};
	struct svc_error err = {0};
	char status[16] = "", device[STORE_ID_MAX] = "", after[STORE_ID_MAX] = "";
	size_t n = 0, limit;
	json_t *arr;

	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (list_params(c, &f, status, device) != 0 ||
	    cursor_param(c, &f, after, sizeof(after)) != 0)
		goto out;
	/* "expired" is stored as pending until someone tries to decide it: read both. */
	if (f.status != NULL && strcmp(f.status, "expired") == 0)
		f.status = NULL;
	limit = f.limit;
	f.limit = limit + 1;
	if (svc_approval_list(c->a->svc, &c->who, &f, items, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < n && i < limit; i++)
		if (status[0] == '\0' ||
		    strcmp(svc_approval_state(c->a->svc, &items[i]), status) == 0)
			json_array_append_new(arr, approval_json(c->a, &items[i]));
	reply_json(c->rs, 200,
		   json_pack("{s:o, s:o}", "items", arr, "next_cursor",
			     n > limit ? list_cursor(&items[limit - 1]) : json_null()));
out:
	free(items);
}

void
h_approval_get(struct call *c)
{
	struct approval a;
	struct svc_error err = {0};
	char *ids = malloc(APPROVAL_IDS_MAX);
	json_t *j;

	a.device_ids = ids;
	if (ids == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (svc_approval_get(c->a->svc, &c->who, c->param[0], &a, &err) != 0) {
		reply_svc_error(c->rs, &err);
	} else {
		j = approval_json(c->a, &a);
		if (strcmp(a.kind, "bulk") == 0) {
			json_t *arr = json_array();

			for (char *tok = strtok(ids, " "); tok != NULL; tok = strtok(NULL, " "))
				json_array_append_new(arr, json_string(tok));
			json_object_set_new(j, "device_ids", arr);
		}
		reply_json(c->rs, 200, j);
	}
	free(ids);
}

/* The answer to a decision: the request, and the single command it queued. */
static void
decided_reply(struct call *c, const struct approval *a, const struct command *cmd)
{
	json_t *j = json_pack("{s:o}", "approval", approval_json(c->a, a));

	json_object_set_new(j, "command",
			    cmd != NULL && cmd->id[0] ? command_json(cmd) : json_null());
	reply_json(c->rs, 200, j);
}

enum decision { D_APPROVE, D_REJECT, D_CANCEL, D_OVERRIDE };

static void
decide(struct call *c, enum decision d)
{
	char text[STORE_TEXT_MAX] = "";
	const struct field f[] = {
		{d == D_OVERRIDE ? "reason" : "note", F_STR, d == D_OVERRIDE, text, 400, 0, 0,
		 NULL},
	};
	struct svc_error err = {0};
	struct approval a = {0};
	struct command *cmd = calloc(1, sizeof(*cmd));
	json_t *body = cmd != NULL ? body_object(c) : NULL;
	int r;

	if (cmd == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	if (body == NULL)
		goto out;
	if (take_fields(c, body, f, d == D_REJECT || d == D_OVERRIDE ? 1 : 0, "") != 0)
		goto out;
	if (d == D_APPROVE)
		r = svc_approval_approve(c->a->svc, &c->who, c->param[0], &a, cmd, &err);
	else if (d == D_OVERRIDE)
		r = svc_approval_override(c->a->svc, &c->who, c->param[0], text, &a, cmd, &err);
	else if (d == D_REJECT)
		r = svc_approval_reject(c->a->svc, &c->who, c->param[0], text, &a, &err);
	else
		r = svc_approval_cancel(c->a->svc, &c->who, c->param[0], &a, &err);
	if (r != 0)
		reply_svc_error(c->rs, &err);
	else
		decided_reply(c, &a, cmd);
out:
	json_decref(body);
	free(cmd);
}

void
h_approval_approve(struct call *c)
{
	decide(c, D_APPROVE);
}

void
h_approval_reject(struct call *c)
{
	decide(c, D_REJECT);
}

void
h_approval_cancel(struct call *c)
{
	decide(c, D_CANCEL);
}

void
h_approval_override(struct call *c)
{
	decide(c, D_OVERRIDE);
}
