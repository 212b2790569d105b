/*
 * Labels and groups (issue 11 section 5): GET, PUT (replace all) and PATCH (set some, remove
 * some) /api/v1/devices/{id}/labels; POST /api/v1/labels/bulk, one label change on a list of
 * devices, a filter's or a group's, with a result per device; /api/v1/groups CRUD, each group
 * with its member count, and GET /api/v1/groups/{name}/devices, its members paged as the
 * device list (which takes label= and group= itself). Labels travel as a JSON object
 * {"key": "value"}; a plain name has the value "".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"

static void
bad(struct call *c, const char *msg)
{
	reply_problem(c->rs, P_BAD_REQUEST, msg);
}

static json_t *
labels_json(const struct device_label *l, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, l[i].key, json_string(l[i].value));
	return o;
}

/* Labels in set (an object of strings) into out (up to LABELS_PER_DEVICE); 400 otherwise. */
static int
labels_from(struct call *c, json_t *set, const char *where, struct device_label *out, size_t *n)
{
	char msg[160];
	const char *k;
	json_t *v;

	*n = 0;
	if (set == NULL)
		return 0;
	if (!json_is_object(set) || json_object_size(set) > LABELS_PER_DEVICE) {
		snprintf(msg, sizeof(msg),
			 "%s must be an object of at most %d labels (\"key\": "
			 "\"value\")",
			 where, LABELS_PER_DEVICE);
		bad(c, msg);
		return -1;
	}
	json_object_foreach(set, k, v)
	{
		if (!json_is_string(v) || strlen(k) >= LABEL_KEY_MAX ||
		    json_string_length(v) >= LABEL_VALUE_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(msg, sizeof(msg),
				 "%s.%.63s must be a string of at most %d bytes (a key at most %d)",
				 where, k, LABEL_VALUE_MAX - 1, LABEL_KEY_MAX - 1);
			bad(c, msg);
			return -1;
		}
		str_copy(out[*n].key, LABEL_KEY_MAX, k);
		str_copy(out[*n].value, LABEL_VALUE_MAX, json_string_value(v));
		(*n)++;
	}
	return 0;
}

/* Keys in arr (an array of strings) into out; 400 otherwise. */
static int
keys_from(struct call *c, json_t *arr, char (*out)[LABEL_KEY_MAX], size_t *n)
{
	size_t i;
	json_t *v;

	*n = 0;
	if (arr == NULL)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > LABELS_PER_DEVICE) {
		bad(c, "remove must be an array of label keys");
		return -1;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) >= LABEL_KEY_MAX) {
			bad(c, "remove must be an array of label keys");
			return -1;
		}
		str_copy(out[i], LABEL_KEY_MAX, json_string_value(v));
	}
	*n = i;
	return 0;
}

/* The change a PUT ({"labels": {...}}) or PATCH ({"set": {...}, "remove": [...]}) asks for. */
struct change_buf {
	struct device_label set[LABELS_PER_DEVICE];
	char remove[LABELS_PER_DEVICE][LABEL_KEY_MAX];
	struct device_label after[LABELS_PER_DEVICE];
	struct svc_label_change ch;
};

static int
change_from(struct call *c, json_t *body, int replace, struct change_buf *b)
{
	json_t *set = NULL, *remove = replace ? NULL : json_incref(json_object_get(body, "remove"));
	const struct field put[] = {{"labels", F_OBJ, 1, &set, 0, 0, 0, NULL}};
	const struct field patch[] = {{"set", F_OBJ, 0, &set, 0, 0, 0, NULL}};
	int r;

	/* remove is an array, which take_fields has no type for: read apart. */
	json_object_del(body, "remove");
	r = take_fields(c, body, replace ? put : patch, 1, "") != 0 ||
			    labels_from(c, set, replace ? "labels" : "set", b->set, &b->ch.nset) !=
				    0 ||
			    keys_from(c, remove, b->remove, &b->ch.nremove) != 0
		    ? -1
		    : 0;
	json_decref(remove);
	b->ch.set = b->set;
	b->ch.remove = (const char(*)[LABEL_KEY_MAX])b->remove;
	b->ch.replace = replace;
	return r;
}

json_t *
api_labels_of(struct call *c, const char *device_id)
{
	struct device_label *l = calloc(LABELS_PER_DEVICE, sizeof(*l));
	struct svc_error err = {0};
	json_t *j = json_null();
	size_t n = 0;

	if (l != NULL && svc_labels_get(c->a->svc, &c->who, device_id, l, &n, &err) == 0) {
		json_decref(j);
		j = labels_json(l, n);
	}
	free(l);
	return j;
}

void
h_device_labels_get(struct call *c)
{
	struct device_label *l = calloc(LABELS_PER_DEVICE, sizeof(*l));
	struct svc_error err = {0};
	size_t n = 0;

	if (l == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	else if (svc_labels_get(c->a->svc, &c->who, c->param[0], l, &n, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200,
			   json_pack("{s:s, s:o}", "device_id", c->param[0], "labels",
				     labels_json(l, n)));
	free(l);
}

static void
labels_write(struct call *c, int replace)
{
	struct change_buf *b = calloc(1, sizeof(*b));
	struct svc_error err = {0};
	json_t *body = NULL;
	size_t n = 0;

	if (b == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	body = body_object(c);
	if (body != NULL && change_from(c, body, replace, b) == 0) {
		if (svc_labels_change(c->a->svc, &c->who, c->param[0], &b->ch, b->after, &n,
				      &err) != 0)
			reply_svc_error(c->rs, &err);
		else
			reply_json(c->rs, 200,
				   json_pack("{s:s, s:o}", "device_id", c->param[0], "labels",
					     labels_json(b->after, n)));
	}
	json_decref(body);
	free(b);
}

void
h_device_labels_put(struct call *c)
{
	labels_write(c, 1);
}

void
h_device_labels_patch(struct call *c)
{
	labels_write(c, 0);
}

/* ---- one change on many devices ---- */

static const char *const outcome_words[] = {"changed", "unchanged", "refused"};

/* The target's ids: device_ids, or the devices a filter or a group matches (at most max). */
static int
bulk_targets(struct call *c, json_t *body, char (*ids)[STORE_ID_MAX], size_t max, size_t *n)
{
	json_t *list = json_object_get(body, "device_ids");
	json_t *filter = json_object_get(body, "filter");
	json_t *group = json_object_get(body, "group");
	json_t *own = NULL;
	char msg[160];
	size_t i;
	json_t *v;
	int r;

	*n = 0;
	if ((list != NULL) + (filter != NULL) + (group != NULL) != 1) {
		bad(c, "give one of device_ids, filter or group");
		return -1;
	}
	if (list != NULL) {
		if (!json_is_array(list) || json_array_size(list) == 0 ||
		    json_array_size(list) > max) {
			snprintf(msg, sizeof(msg), "device_ids must be an array of 1 to %zu ids",
				 max);
			bad(c, msg);
			return -1;
		}
		json_array_foreach(list, i, v)
		{
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) >= STORE_ID_MAX) {
				snprintf(msg, sizeof(msg), "device_ids[%zu] must be a device id",
					 i);
				bad(c, msg);
				return -1;
			}
			str_copy(ids[i], STORE_ID_MAX, json_string_value(v));
		}
		*n = i;
		return 0;
	}
	if (group != NULL && !json_is_string(group)) {
		bad(c, "group must be a group's name");
		return -1;
	}
	if (filter != NULL && !json_is_object(filter)) {
		bad(c, "filter must be an object of the device list's filters");
		return -1;
	}
	own = group != NULL ? json_pack("{s:O}", "group", group) : json_incref(filter);
	r = api_devices_matching(c, own, ids, max, n);
	json_decref(own);
	if (r == 0 && *n > max) {
		snprintf(msg, sizeof(msg),
			 "the target matches more than %zu devices; narrow it or send device_ids "
			 "in parts",
			 max);
		reply_problem(c->rs, SVC_INVALID, msg);
		return -1;
	}
	return r;
}

static json_t *
bulk_results(const struct svc_label_result *res, size_t n, size_t counts[3])
{
	json_t *out = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *r = json_pack("{s:s, s:s}", "device_id", res[i].device_id, "outcome",
				      outcome_words[res[i].outcome]);

		counts[res[i].outcome]++;
		if (res[i].detail[0])
			json_object_set_new(r, "detail", json_string(res[i].detail));
		json_array_append_new(out, r);
	}
	return out;
}

void
h_labels_bulk(struct call *c)
{
	char(*ids)[STORE_ID_MAX] = calloc(SVC_BULK_MAX + 1, STORE_ID_MAX);
	struct svc_label_result *res = calloc(SVC_BULK_MAX, sizeof(*res));
	struct change_buf *b = calloc(1, sizeof(*b));
	struct svc_error err = {0};
	size_t n = 0, counts[3] = {0, 0, 0};
	json_t *body = NULL, *out;

	if (ids == NULL || res == NULL || b == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		goto done;
	}
	body = body_object(c);
	if (body == NULL || bulk_targets(c, body, ids, SVC_BULK_MAX, &n) != 0)
		goto done;
	json_object_del(body, "device_ids");
	json_object_del(body, "filter");
	json_object_del(body, "group");
	if (change_from(c, body, 0, b) != 0)
		goto done;
	if (b->ch.nset + b->ch.nremove == 0) {
		bad(c, "give labels to set or keys to remove");
		goto done;
	}
	if (svc_labels_bulk(c->a->svc, &c->who, &b->ch, (const char(*)[STORE_ID_MAX])ids, n, res,
			    &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto done;
	}
	out = bulk_results(res, n, counts);
	reply_json(c->rs, 200,
		   json_pack("{s:I, s:I, s:I, s:o}", "changed", (json_int_t)counts[LABEL_CHANGED],
			     "unchanged", (json_int_t)counts[LABEL_UNCHANGED], "refused",
			     (json_int_t)counts[LABEL_REFUSED], "results", out));
done:
	json_decref(body);
	free(ids);
	free(res);
	free(b);
}
