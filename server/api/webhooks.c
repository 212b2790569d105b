/*
 * The webhook routes (issue 11 §3): subscriptions under /api/v1/webhooks, their delivery log
 * and manual redelivery. Admins only; the service checks the role. A secret appears in a
 * response twice only: when the subscription is created and when it is rotated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"

#define HOOK_LIST_MAX 100

static json_t *
events_json(const char *set)
{
	json_t *a = json_array();
	char buf[WEBHOOK_EVENTS_MAX];
	char *save = NULL;

	str_copy(buf, sizeof(buf), set);
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

static json_t *
webhook_json(const struct webhook *w, int with_secret)
{
	json_t *j =
		json_pack("{s:s, s:s, s:s, s:o, s:b, s:s?, s:s, s:o, s:o, s:{s:I, s:I, s:o, s:o}}",
			  "id", w->id, "url", w->url, "description", w->description, "events",
			  events_json(w->events), "enabled", w->enabled, "disabled_reason",
			  w->enabled ? NULL : w->disabled_why, "created_by", w->created_by,
			  "created_at", jtime_ms(w->created_at), "updated_at",
			  jtime_ms(w->updated_at), "delivery", "cursor", (json_int_t)w->cursor,
			  "failed_attempts", (json_int_t)w->attempts, "failing_since",
			  jtime_ms(w->failing_since), "next_attempt_at", jtime_ms(w->next_at_ms));

	if (j != NULL && with_secret)
		json_object_set_new(j, "secret", json_string(w->secret));
	return j;
}

static json_t *
delivery_json(const struct webhook_delivery *d)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:I, s:b, s:o, s:o, s:I, s:s, s:b}", "id",
			 (json_int_t)d->id, "webhook_id", d->webhook_id, "event_id", d->event_id,
			 "event_type", d->event_type, "attempt", (json_int_t)d->attempt, "manual",
			 d->manual, "at", jtime_ms(d->at_ms), "status_code",
			 d->status ? json_integer(d->status) : json_null(), "latency_ms",
			 (json_int_t)d->latency_ms, "error", d->error, "ok", d->ok);
}

/*
 * The body of a create or update into in (strings point into body, which must outlive in);
 * names holds the event names. 0, or -1 with the response filled.
 */
static int
take_input(struct call *c, json_t *body, struct svc_webhook_input *in, const char **names,
	   char *url, char *desc)
{
	json_t *ev = json_object_get(body, "events");
	json_t *rest = json_deep_copy(body);
	struct field f[] = {
		{"url", F_STR, 0, url, STORE_TEXT_MAX, 0, 0, &in->has_url},
		{"description", F_STR, 0, desc, STORE_NAME_MAX, 0, 0, &in->has_description},
		{"enabled", F_BOOL, 0, &in->enabled, 0, 0, 0, &in->has_enabled},
	};
	int r;

	json_object_del(rest, "events");
	r = take_fields(c, rest, f, ARRAY_SIZE(f), "");
	json_decref(rest);
	if (r != 0)
		return -1;
	in->url = url;
	in->description = desc;
	if (ev == NULL)
		return 0;
	if (!json_is_array(ev) || json_array_size(ev) > SVC_EVENT_TYPES_N) {
		reply_problem(c->rs, SVC_INVALID, "events must be an array of event types");
		return -1;
	}
	for (size_t i = 0; i < json_array_size(ev); i++) {
		names[i] = json_string_value(json_array_get(ev, i));
		if (names[i] == NULL) {
			reply_problem(c->rs, SVC_INVALID, "events must be an array of strings");
			return -1;
		}
	}
	in->events = names;
	in->nevents = json_array_size(ev);
	in->has_events = 1;
	return 0;
}

/* Create (id NULL) or update one subscription from the request body. */
static void
create_or_update(struct call *c, const char *id)
{
	struct svc_webhook_input in = {0};
	const char *names[SVC_EVENT_TYPES_N];
	char url[STORE_TEXT_MAX], desc[STORE_NAME_MAX];
	struct svc_error err = {0};
	struct webhook w;
	json_t *body = body_object(c);
	int r;

	if (body == NULL || take_input(c, body, &in, names, url, desc) != 0) {
		json_decref(body);
		return;
	}
	r = id == NULL ? svc_webhook_create(c->a->svc, &c->who, &in, &w, &err)
		       : svc_webhook_update(c->a->svc, &c->who, id, &in, &w, &err);
	if (r != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, id == NULL ? 201 : 200, webhook_json(&w, id == NULL));
	secure_zero(&w, sizeof(w));
	json_decref(body);
}

void
h_webhooks_create(struct call *c)
{
	create_or_update(c, NULL);
}

void
h_webhook_update(struct call *c)
{
	create_or_update(c, c->param[0]);
}

void
h_webhooks_list(struct call *c)
{
	struct webhook *items = calloc(HOOK_LIST_MAX, sizeof(*items));
	struct svc_error err = {0};
	size_t n = 0;
	json_t *arr;

	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (svc_webhook_list(c->a->svc, &c->who, items, HOOK_LIST_MAX, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
	} else {
		arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, webhook_json(&items[i], 0));
		reply_json(c->rs, 200, json_pack("{s:o}", "items", arr));
	}
	free(items);
}

void
h_webhook_types(struct call *c)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < SVC_EVENT_TYPES_N; i++)
		json_array_append_new(arr, json_string(svc_event_types[i]));
	reply_json(c->rs, 200, json_pack("{s:o}", "items", arr));
}

void
h_webhook_get(struct call *c)
{
	struct svc_error err = {0};
	struct webhook w;

	if (svc_webhook_get(c->a->svc, &c->who, c->param[0], &w, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, webhook_json(&w, 0));
}

void
h_webhook_delete(struct call *c)
{
	struct svc_error err = {0};

	if (svc_webhook_delete(c->a->svc, &c->who, c->param[0], &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_empty(c->rs, 204);
}

void
h_webhook_rotate(struct call *c)
{
	struct svc_error err = {0};
	struct webhook w;

	if (svc_webhook_rotate(c->a->svc, &c->who, c->param[0], &w, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, webhook_json(&w, 1));
	secure_zero(&w, sizeof(w));
}

void
h_webhook_deliveries(struct call *c)
{
	struct webhook_delivery *items;
	struct svc_error err = {0};
	size_t limit, n = 0;
	int64_t after;
	json_t *arr;

	if (page_params(c, &limit, &after) != 0)
		return;
	items = calloc(limit, sizeof(*items));
	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (svc_webhook_deliveries(c->a->svc, &c->who, c->param[0], after, limit, items, &n,
				   &err) != 0) {
		reply_svc_error(c->rs, &err);
	} else {
		arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, delivery_json(&items[i]));
		reply_json(c->rs, 200,
			   json_pack("{s:o, s:o}", "items", arr, "next_cursor",
				     page_cursor(n ? items[n - 1].id : 0, n, limit)));
	}
	free(items);
}

void
h_webhook_redeliver(struct call *c)
{
	struct svc_error err = {0};
	struct webhook_delivery d;
	char *end;
	long long id = strtoll(c->param[1], &end, 10);
	json_t *body;

	if (*end != '\0' || id <= 0) {
		reply_problem(c->rs, SVC_NOT_FOUND, "no such delivery");
		return;
	}
	body = body_object(c);
	if (body == NULL)
		return;
	if (json_object_size(body) != 0)
		reply_problem(c->rs, P_BAD_REQUEST, "redeliver takes no body (or {})");
	else if (svc_webhook_redeliver(c->a->svc, &c->who, c->param[0], id, &d, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 202, delivery_json(&d));
	json_decref(body);
}
