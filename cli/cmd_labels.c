/*
 * labels and groups (issue 11 section 5): a device's labels (get, set, remove, replace), one
 * label change on many devices with a result per device (labels bulk), and groups, named label
 * queries (list, get, create, update, delete, their devices). Label syntax and the query
 * language are the server's (schema/api.md "Labels and groups"): this file only carries them,
 * so a bad key or query comes back as the server's problem, with its position, and exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

#define PATH_CAP     2048
#define BULK_IDS_MAX 500 /* the API's limit for device_ids */

/* "KEY=VALUE" or "KEY" (value "") from the positional arguments from..npos into an object. */
static json_t *
labels_from_args(const struct ctx *c, int from)
{
	json_t *o = json_object();

	for (int i = from; o != NULL && i < c->a.npos; i++) {
		const char *a = c->a.pos[i], *eq = strchr(a, '=');
		char key[128];

		if (eq == NULL) {
			json_object_set_new(o, a, json_string(""));
			continue;
		}
		if ((size_t)(eq - a) >= sizeof(key)) {
			json_decref(o);
			return NULL;
		}
		memcpy(key, a, (size_t)(eq - a));
		key[eq - a] = '\0';
		json_object_set_new(o, key, json_string(eq + 1));
	}
	return o;
}

/* Every value of a repeatable option, in order, as an array of strings. */
static json_t *
opt_all(const struct ctx *c, const char *name)
{
	json_t *arr = json_array();

	for (int i = 0; arr != NULL && i < c->a.nkv; i++)
		if (strcmp(c->a.kv[i].name, name) == 0)
			json_array_append_new(arr, json_string(c->a.kv[i].val));
	return arr;
}

/* Appends the ids of --devices-from FILE ("-": stdin), one a line, to ids; EX_OK or fail. */
static int
ids_from_file(const struct ctx *c, json_t *ids)
{
	const char *path = opt(c, "devices-from");
	FILE *f;
	char line[256];
	int rc = EX_OK;

	if (path == NULL)
		return EX_OK;
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL)
		return fail(EX_USAGE, "cannot read %s", path);
	while (rc == EX_OK && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, " \t\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (json_array_size(ids) >= BULK_IDS_MAX)
			rc = fail(EX_USAGE, "more than %d device ids: send them in parts",
				  BULK_IDS_MAX);
		else
			json_array_append_new(ids, json_string(line));
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

/* The labels object of an answer as KEY VALUE rows. */
static void
print_labels(const json_t *labels)
{
	static const struct col cols[] = {{"KEY", "key", 63}, {"VALUE", "value", 80}};
	json_t *rows = json_array();
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)labels, k, v)
	{
		json_array_append_new(rows, json_pack("{s:s, s:O}", "key", k, "value", v));
	}
	if (json_array_size(rows) == 0)
		printf("(no labels)\n");
	else
		print_table(rows, cols, ARRAY_SIZE(cols));
	json_decref(rows);
}

/* METHOD /api/v1/devices/DEVICE/labels with body (may be NULL); prints the labels after. */
static int
labels_call(struct ctx *c, const char *method, json_t *body)
{
	char path[PATH_CAP], *text = NULL;
	struct reply r;
	json_t *j = NULL;
	int rc;

	if (id_path(path, sizeof(path), "devices", c->a.pos[0], "/labels") != EX_OK) {
		json_decref(body);
		return EX_USAGE;
	}
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		json_decref(body);
		return fail(EX_SERVER, "out of memory");
	}
	json_decref(body);
	rc = api_json(c, method, path, text, NULL, &j, &r);
	free(text);
	if (rc == EX_OK && c->json)
		print_raw(&r);
	else if (rc == EX_OK)
		print_labels(json_object_get(j, "labels"));
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_labels_get(struct ctx *c)
{
	return labels_call(c, "GET", NULL);
}

/* PATCH "set" or PUT "labels" with the KEY[=VALUE] arguments after the device. */
static int
labels_args_call(struct ctx *c, const char *method, const char *member)
{
	json_t *labels = labels_from_args(c, 1);

	if (labels == NULL)
		return fail(EX_USAGE, "a label key is too long");
	return labels_call(c, method, json_pack("{s:o}", member, labels));
}

int
cmd_labels_set(struct ctx *c)
{
	return labels_args_call(c, "PATCH", "set");
}

int
cmd_labels_remove(struct ctx *c)
{
	json_t *keys = json_array();

	for (int i = 1; keys != NULL && i < c->a.npos; i++)
		json_array_append_new(keys, json_string(c->a.pos[i]));
	return labels_call(c, "PATCH", json_pack("{s:o}", "remove", keys));
}

int
cmd_labels_replace(struct ctx *c)
{
	return labels_args_call(c, "PUT", "labels");
}

/* The bulk's per-device results as a table and its counts on a line after. */
static void
print_bulk_results(const json_t *j)
{
	static const struct col cols[] = {
		{"DEVICE", "device_id", 30}, {"OUTCOME", "outcome", 9}, {"DETAIL", "detail", 60}};

	print_table(json_object_get(j, "results"), cols, ARRAY_SIZE(cols));
	printf("changed %lld, unchanged %lld, refused %lld\n",
	       (long long)json_integer_value(json_object_get(j, "changed")),
	       (long long)json_integer_value(json_object_get(j, "unchanged")),
	       (long long)json_integer_value(json_object_get(j, "refused")));
}

int
cmd_labels_bulk(struct ctx *c)
{
	json_t *set = labels_from_args(c, 0), *remove = opt_all(c, "remove");
	json_t *ids = opt_all(c, "device"), *req = json_object(), *j = NULL;
	char *body = NULL;
	struct reply r = {0};
	int rc = EX_OK;

	if (set == NULL || remove == NULL || ids == NULL || req == NULL)
		rc = fail(EX_USAGE, "a label key is too long");
	else if ((rc = ids_from_file(c, ids)) != EX_OK)
		;
	else if (json_object_size(set) + json_array_size(remove) == 0)
		rc = fail(EX_USAGE, "give labels to set (KEY[=VALUE]) or --remove KEY");
	else if (json_array_size(ids) > 0 && target_filters(c, NULL) > 0)
		rc = fail(EX_USAGE, "give --device, or --group or filters, not both");
	else if (json_array_size(ids) == 0 && target_filters(c, req) == 0)
		rc = fail(EX_USAGE, "give the devices: --device ID (repeated), --devices-from "
				    "FILE, --group NAME or the device list's filters");
	if (rc != EX_OK)
		goto out;
	if (json_array_size(ids) > 0)
		json_object_set(req, "device_ids", ids);
	if (json_object_size(set) > 0)
		json_object_set(req, "set", set);
	if (json_array_size(remove) > 0)
		json_object_set(req, "remove", remove);
	if ((body = json_dumps(req, JSON_COMPACT)) == NULL) {
		rc = fail(EX_SERVER, "out of memory");
		goto out;
	}
	rc = api_json(c, "POST", "/api/v1/labels/bulk", body, NULL, &j, &r);
	if (rc == EX_OK && c->json)
		print_raw(&r);
	else if (rc == EX_OK)
		print_bulk_results(j);
	reply_free(&r);
out:
	free(body);
	json_decref(j);
	json_decref(set);
	json_decref(remove);
	json_decref(ids);
	json_decref(req);
	return rc;
}

/* ---- groups ---- */

static const struct col group_cols[] = {
	{"NAME", "name", 30},           {"QUERY", "query", 40},
	{"POLICY", "policy", 20},       {"PRIORITY", "priority", 8},
	{"MEMBERS", "member_count", 7}, {"DESCRIPTION", "description", 40},
};

int
cmd_groups_list(struct ctx *c)
{
	char path[PATH_CAP] = "/api/v1/groups";

	if ((opt(c, "after") && query_add(path, sizeof(path), "after", opt(c, "after")) != 0) ||
	    (opt(c, "limit") && query_add(path, sizeof(path), "limit", opt(c, "limit")) != 0))
		return fail(EX_USAGE, "--after or --limit is too long");
	return print_list_by(c, path, group_cols, ARRAY_SIZE(group_cols), "next_after", "after");
}

int
cmd_groups_get(struct ctx *c)
{
	return get_id(c, "groups", "");
}

/* POST /api/v1/groups (create) or PUT /api/v1/groups/NAME from the options. */
static int
group_write(struct ctx *c, int create)
{
	const char *policy = opt(c, "policy");
	char path[PATH_CAP] = "/api/v1/groups", *body;
	json_t *req;
	long prio;
	int rc;

	if (opt(c, "query") == NULL)
		return fail(EX_USAGE, "--query is required (a label query, e.g. \"dept=sales\")");
	if ((rc = opt_long(c, "priority", 100, 0, 1000000, &prio)) != EX_OK)
		return rc;
	if (!create && id_path(path, sizeof(path), "groups", c->a.pos[0], "") != EX_OK)
		return EX_USAGE;
	req = json_pack("{s:s, s:s, s:I}", "query", opt(c, "query"), "description",
			str_or(opt(c, "description"), ""), "priority", (json_int_t)prio);
	if (req != NULL && create)
		json_object_set_new(req, "name", json_string(c->a.pos[0]));
	/* --policy "" (or none) leaves the group's devices to their own or the default. */
	if (req != NULL && policy != NULL && *policy != '\0')
		json_object_set_new(req, "policy", json_string(policy));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
		return fail(EX_SERVER, "out of memory");
	rc = print_call(c, create ? "POST" : "PUT", path, body);
	free(body);
	return rc;
}

int
cmd_groups_create(struct ctx *c)
{
	return group_write(c, 1);
}

int
cmd_groups_update(struct ctx *c)
{
	return group_write(c, 0);
}

int
cmd_groups_delete(struct ctx *c)
{
	return act_id(c, "DELETE", "groups", "", "deleted group");
}

int
cmd_groups_devices(struct ctx *c)
{
	char path[PATH_CAP];

	if (id_path(path, sizeof(path), "groups", c->a.pos[0], "/devices") != EX_OK)
		return EX_USAGE;
	return devices_page(c, path, sizeof(path));
}
