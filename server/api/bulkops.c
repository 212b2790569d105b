/*
 * Bulk operations by filter an admin follows and stops (issue 10 section 2):
 * GET /api/v1/commands/bulk, newest first, keyset-paged, filtered by state;
 * GET /api/v1/commands/bulk/{id}, one bulk's progress; POST /api/v1/commands/bulk/{id}/cancel,
 * which stops a running one before its next batch. devquery.c starts them. The rules (roles,
 * which states may end) are the service's (bulkctl.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "b64.h"

static const char *const bulk_states[] = {"running", "done",     "canceled",
					  "refused", "awaiting", NULL};

json_t *
bulk_json(const struct bulk_op *b)
{
	json_t *filter = json_loads(b->filter, 0, NULL);
	json_t *j =
		json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
			  "id", b->id, "type", b->type, "reason", b->reason, "requested_by",
			  b->requested_by, "filter", filter ? filter : json_null(),
			  "expected_count", (json_int_t)b->expected_count, "state", b->state,
			  "queued", (json_int_t)b->queued, "already_pending",
			  (json_int_t)b->already_pending, "skipped", (json_int_t)b->skipped, "done",
			  (json_int_t)(b->queued + b->already_pending + b->skipped), "created_at",
			  jtime(b->created_at), "updated_at", jtime(b->updated_at), "finished_at",
			  b->finished_at ? jtime(b->finished_at) : json_null());

	/* Canceled: who canceled; refused: the requester, and why it may no longer. */
	json_object_set_new(j, "ended_by", b->ended_by[0] ? json_string(b->ended_by) : json_null());
	json_object_set_new(j, "end_reason",
			    b->ended_why[0] ? json_string(b->ended_why) : json_null());
	return j;
}

/* The list's cursor: base64url of "b1:<created_at>:<id>" of the page's last bulk. */
/* The cursor after the last item of a page (json.c's time_id_cursor). */
static json_t *
list_cursor(const struct bulk_op *last)
{
	return time_id_cursor("b1", last->created_at, last->id);
}

/* cursor into f (id into idbuf); 0, or -1 after a 400. */
static int
list_cursor_param(struct call *c, struct bulk_list_filter *f, char *idbuf, size_t cap)
{
	idbuf[0] = '\0';
	if (time_id_cursor_param(c, "b1", &f->after_created, idbuf, cap) != 0)
		return -1;
	if (idbuf[0] != '\0')
		f->after_id = idbuf;
	return 0;
}

/* state and limit into f; 0, or -1 after a 400 that names the parameter. */
static int
list_params(struct call *c, struct bulk_list_filter *f, char *state, size_t cap)
{
	char v[16], *end;
	int r = query_get(c->rq->query, "state", state, cap);
	size_t i;

	if (r == 1 && state[0] != '\0') {
		for (i = 0; bulk_states[i] != NULL && strcmp(bulk_states[i], state) != 0; i++)
			;
		if (bulk_states[i] == NULL)
			r = -1;
		f->state = state;
	}
	if (r < 0) {
		reply_problem(c->rs, P_BAD_REQUEST,
			      "state must be one of running, done, canceled, refused, awaiting");
		return -1;
	}
	f->limit = 50;
	r = query_get(c->rq->query, "limit", v, sizeof(v));
	if (r == 1 && v[0] != '\0') {
		long long x = strtoll(v, &end, 10);

		if (*end != '\0' || x < 1 || x > SVC_BULK_LIST_MAX)
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
h_bulk_list(struct call *c)
{
	struct bulk_op *items = calloc(SVC_BULK_LIST_MAX + 1, sizeof(*items));
	struct bulk_list_filter f = {0};
	struct svc_error err = {0};
	char state[16] = "", after[STORE_ID_MAX] = "";
	size_t n = 0, limit;
	json_t *arr;

	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (list_params(c, &f, state, sizeof(state)) != 0 ||
	    list_cursor_param(c, &f, after, sizeof(after)) != 0)
		goto out;
	/* One row more than the page: a next cursor only when there is a next page. */
	limit = f.limit;
	f.limit = limit + 1;
	if (svc_bulk_list(c->a->svc, &c->who, &f, items, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append_new(arr, bulk_json(&items[i]));
	reply_json(c->rs, 200,
		   json_pack("{s:o, s:o}", "items", arr, "next_cursor",
			     n > limit ? list_cursor(&items[limit - 1]) : json_null()));
out:
	free(items);
}

void
h_bulk_get(struct call *c)
{
	struct bulk_op *b = calloc(1, sizeof(*b));
	struct svc_error err = {0};

	if (b == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	else if (svc_bulk_get(c->a->svc, &c->who, c->param[0], b, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, bulk_json(b));
	free(b);
}

void
h_bulk_cancel(struct call *c)
{
	struct bulk_op *b = calloc(1, sizeof(*b));
	struct svc_error err = {0};
	json_t *body = b != NULL ? body_object(c) : NULL;

	if (b == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	else if (body == NULL)
		; /* body_object answered */
	else if (json_object_size(body) != 0)
		reply_problem(c->rs, P_BAD_REQUEST, "cancel takes no body (or {})");
	else if (svc_bulk_cancel(c->a->svc, &c->who, c->param[0], b, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, bulk_json(b));
	json_decref(body);
	free(b);
}
