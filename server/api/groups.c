/*
 * Groups (issue 11 section 5): /api/v1/groups, a named label query with its member count, and
 * GET /api/v1/groups/{name}/devices, its members as the device list pages them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"

#define GROUPS_PAGE_MAX 100

/* How many devices match g now; -1 when it cannot be counted (the reply says so). */
static json_t *
member_count(struct call *c, const struct device_group *g)
{
	struct group_q *gq = malloc(sizeof(*gq));
	struct svc_error err = {0};
	struct device_query q;
	int64_t n = -1;

	memset(&q, 0, sizeof(q));
	q.compliant = -1;
	if (gq != NULL && svc_labelq_parse(g->query, &gq->q, gq->msg, sizeof(gq->msg)) == 0) {
		q.group = &gq->q;
		if (svc_device_count(c->a->svc, &c->who, &q, &n, &err) != 0)
			n = -1;
	}
	free(gq);
	return n >= 0 ? json_integer(n) : json_null();
}

static json_t *
group_json(struct call *c, const struct device_group *g, int count)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o, s:I}", "name", g->name,
			      "query", g->query, "description", g->description, "policy",
			      g->policy[0] ? json_string(g->policy) : json_null(), "priority",
			      (json_int_t)g->priority, "created_by", g->created_by, "created_at",
			      jtime(g->created_at), "updated_at", jtime(g->updated_at), "version",
			      (json_int_t)g->version);

	if (count)
		json_object_set_new(j, "member_count", member_count(c, g));
	return j;
}

void
h_groups_list(struct call *c)
{
	struct device_group *items = calloc(GROUPS_PAGE_MAX + 1, sizeof(*items));
	struct svc_error err = {0};
	char after[64] = "", lim[8] = "";
	size_t n = 0, limit = GROUPS_PAGE_MAX;
	json_t *arr;

	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (query_get(c->rq->query, "after", after, sizeof(after)) < 0 ||
	    query_get(c->rq->query, "limit", lim, sizeof(lim)) < 0 ||
	    (lim[0] && (atoi(lim) < 1 || atoi(lim) > GROUPS_PAGE_MAX))) {
		reply_problem(c->rs, P_BAD_REQUEST,
			      "after must be a group name; limit a number from 1 to 100");
		goto out;
	}
	if (lim[0])
		limit = (size_t)atoi(lim);
	if (svc_group_list(c->a->svc, &c->who, after, items, limit + 1, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append_new(arr, group_json(c, &items[i], 1));
	reply_json(c->rs, 200,
		   json_pack("{s:o, s:o}", "items", arr, "next_after",
			     n > limit ? json_string(items[limit - 1].name) : json_null()));
out:
	free(items);
}

/* The body's fields into g (name from the body on create, from the path otherwise). */
static int
group_from(struct call *c, json_t *body, struct device_group *g, int create)
{
	int has_policy = 0;
	const struct field f[] = {
		{"query", F_STR, 1, g->query, sizeof(g->query), 0, 0, NULL},
		{"description", F_STR, 0, g->description, sizeof(g->description), 0, 0, NULL},
		{"policy", F_STR_NULL, 0, g->policy, sizeof(g->policy), 0, 0, &has_policy},
		{"priority", F_INT, 0, &g->priority, 0, 0, 1000000, NULL},
		{"name", F_STR, 1, g->name, sizeof(g->name), 0, 0, NULL},
	};

	memset(g, 0, sizeof(*g));
	g->priority = 100;
	if (!create)
		str_copy(g->name, sizeof(g->name), c->param[0]);
	return take_fields(c, body, f, create ? 5 : 4, "");
}

/* A query that does not parse is a 400 naming the position (the service checks it again). */
static int
query_ok(struct call *c, const struct device_group *g)
{
	struct group_q *gq = malloc(sizeof(*gq));
	int ok = gq != NULL && svc_labelq_parse(g->query, &gq->q, gq->msg, sizeof(gq->msg)) == 0;

	if (!ok)
		reply_problem(c->rs, gq ? P_BAD_REQUEST : SVC_UNAVAILABLE,
			      gq ? gq->msg : "out of memory");
	free(gq);
	return ok;
}

static void
group_write(struct call *c, int create)
{
	struct device_group *g = malloc(sizeof(*g));
	struct svc_error err = {0};
	json_t *body = body_object(c);

	if (g == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	else if (body == NULL || group_from(c, body, g, create) != 0 || !query_ok(c, g))
		;
	else if (svc_group_put(c->a->svc, &c->who, g, create, &err) != 0)
		reply_svc_error(c->rs, &err);
	else {
		reply_json(c->rs, create ? 201 : 200, group_json(c, g, 1));
		if (create)
			snprintf(c->rs->location, sizeof(c->rs->location), "/api/v1/groups/%s",
				 g->name);
	}
	json_decref(body);
	free(g);
}

void
h_groups_create(struct call *c)
{
	group_write(c, 1);
}

void
h_group_put(struct call *c)
{
	group_write(c, 0);
}

void
h_group_get(struct call *c)
{
	struct device_group *g = malloc(sizeof(*g));
	struct svc_error err = {0};

	if (g == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	else if (svc_group_get(c->a->svc, &c->who, c->param[0], g, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, group_json(c, g, 1));
	free(g);
}

void
h_group_delete(struct call *c)
{
	struct svc_error err = {0};

	if (svc_group_delete(c->a->svc, &c->who, c->param[0], &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_empty(c->rs, 204);
}

/* The device list with group=name put first: its filters, sort and cursors apply too. */
void
h_group_devices(struct call *c)
{
	struct api_request rq = *c->rq;
	struct call gc = *c;
	char *qs, probe[8];
	size_t len = strlen(c->rq->query ? c->rq->query : "") + 128;

	if (query_get(c->rq->query, "group", probe, sizeof(probe)) != 0) {
		reply_problem(c->rs, P_BAD_REQUEST, "group is given by the path");
		return;
	}
	if (strspn(c->param[0],
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
	    strlen(c->param[0])) {
		reply_problem(c->rs, SVC_NOT_FOUND, "no such group");
		return;
	}
	qs = malloc(len);
	if (qs == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	/* The name passed the path's match; group names are of [A-Za-z0-9._-]. */
	snprintf(qs, len, "group=%s%s%s", c->param[0], c->rq->query && *c->rq->query ? "&" : "",
		 c->rq->query ? c->rq->query : "");
	rq.query = qs;
	gc.rq = &rq;
	h_devices_list(&gc);
	free(qs);
}
