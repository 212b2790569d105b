/*
 * webhooks: subscriptions of other systems to Cleave's events (schema/api.md "Webhooks"), their
 * delivery log and a manual redelivery. The signing secret is in the answers of create and
 * rotate-secret only, so those two print it with a warning that it is not shown again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

#define PATH_CAP 2048

static const struct col hook_cols[] = {
	{"ID", "id", 30},
	{"URL", "url", 40},
	{"EVENTS", "events", 40},
	{"ENABLED", "enabled", 7},
	{"FAILED", "delivery.failed_attempts", 6},
	{"DISABLED WHY", "disabled_reason", 30},
	{"DESCRIPTION", "description", 30},
};

int
cmd_webhooks_list(struct ctx *c)
{
	return print_list(c, "/api/v1/webhooks", hook_cols, ARRAY_SIZE(hook_cols));
}

int
cmd_webhooks_get(struct ctx *c)
{
	return get_id(c, "webhooks", "");
}

int
cmd_webhooks_types(struct ctx *c)
{
	struct reply r;
	json_t *j, *it;
	size_t i;
	int rc = api_json(c, "GET", "/api/v1/webhooks/event-types", NULL, NULL, &j, &r);

	if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		json_array_foreach(json_object_get(j, "items"), i, it)
		{
			put_safe(stdout, json_string_value(it));
			putchar('\n');
		}
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

/*
 * The members a create or update sends, from the options: --url, --event (repeated: the whole
 * list), --description, --enable/--disable. EX_OK, or EX_USAGE when they contradict.
 */
static int
hook_body(const struct ctx *c, json_t *req)
{
	json_t *events = json_array();
	int en = opt(c, "enable") != NULL, dis = opt(c, "disable") != NULL;

	if (en && dis) {
		json_decref(events);
		return fail(EX_USAGE, "--enable or --disable, not both");
	}
	for (int i = 0; events != NULL && i < c->a.nkv; i++)
		if (strcmp(c->a.kv[i].name, "event") == 0)
			json_array_append_new(events, json_string(c->a.kv[i].val));
	if (json_array_size(events) > 0)
		json_object_set(req, "events", events);
	json_decref(events);
	if (opt(c, "url") != NULL)
		json_object_set_new(req, "url", json_string(opt(c, "url")));
	if (opt(c, "description") != NULL)
		json_object_set_new(req, "description", json_string(opt(c, "description")));
	if (en || dis)
		json_object_set_new(req, "enabled", json_boolean(en));
	return EX_OK;
}

/* The subscription in j as a record, then its secret with the warning (create, rotate). */
static void
print_secret(const json_t *j)
{
	json_t *shown = json_deep_copy(j);
	const char *secret = json_string_value(json_object_get(j, "secret"));

	json_object_del(shown, "secret");
	print_record(shown);
	json_decref(shown);
	printf("secret: ");
	put_safe(stdout, secret ? secret : "(none in the answer)");
	putchar('\n');
	fflush(stdout);
	fprintf(stderr, "cleavectl: the secret is shown only this once: store it with the "
			"receiver now (it verifies each delivery's webhook-signature)\n");
}

/* METHOD path body; the answer printed with its secret (--json: as it came). */
static int
secret_call(struct ctx *c, const char *method, const char *path, const char *body)
{
	struct reply r;
	json_t *j;
	int rc = api_json(c, method, path, body, NULL, &j, &r);

	if (rc == EX_OK && c->json)
		print_raw(&r);
	else if (rc == EX_OK)
		print_secret(j);
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_webhooks_create(struct ctx *c)
{
	json_t *req = json_object();
	char *body = NULL;
	int rc;

	if (opt(c, "url") == NULL || opt(c, "event") == NULL) {
		json_decref(req);
		return fail(EX_USAGE, "webhooks create needs --url and at least one --event "
				      "(cleavectl webhooks event-types lists them)");
	}
	if ((rc = hook_body(c, req)) == EX_OK)
		body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (rc != EX_OK)
		return rc;
	rc = body ? secret_call(c, "POST", "/api/v1/webhooks", body)
		  : fail(EX_SERVER, "out of memory");
	free(body);
	return rc;
}

int
cmd_webhooks_update(struct ctx *c)
{
	char path[PATH_CAP], *body = NULL;
	json_t *req = json_object();
	int rc;

	if ((rc = hook_body(c, req)) == EX_OK && json_object_size(req) == 0)
		rc = fail(EX_USAGE, "nothing to change: give --url, --event, --description, "
				    "--enable or --disable");
	if (rc == EX_OK && id_path(path, sizeof(path), "webhooks", c->a.pos[0], "") != EX_OK)
		rc = EX_USAGE;
	if (rc == EX_OK && (body = json_dumps(req, JSON_COMPACT)) == NULL)
		rc = fail(EX_SERVER, "out of memory");
	json_decref(req);
	if (rc == EX_OK)
		rc = print_call(c, "PATCH", path, body);
	free(body);
	return rc;
}

int
cmd_webhooks_delete(struct ctx *c)
{
	return act_id(c, "DELETE", "webhooks", "", "deleted");
}

int
cmd_webhooks_rotate(struct ctx *c)
{
	char path[PATH_CAP];
	int rc;

	if (id_path(path, sizeof(path), "webhooks", c->a.pos[0], "/rotate-secret") != EX_OK)
		return EX_USAGE;
	if ((rc = secret_call(c, "POST", path, "{}")) == EX_OK)
		fprintf(stderr, "cleavectl: the old secret no longer signs deliveries\n");
	return rc;
}

int
cmd_webhooks_deliveries(struct ctx *c)
{
	static const struct col cols[] = {
		{"ATTEMPT", "attempt", 7},
		{"TIME", "at", 24},
		{"STATUS", "status_code", 6},
		{"LATENCY MS", "latency_ms", 10},
		{"OK", "ok", 5},
		{"EVENT", "event_type", 20},
		{"DELIVERY", "id", 30},
		{"ERROR", "error", 40},
	};
	char path[PATH_CAP];

	if (id_path(path, sizeof(path), "webhooks", c->a.pos[0], "/deliveries") != EX_OK)
		return EX_USAGE;
	return list_paged(c, path, cols, ARRAY_SIZE(cols));
}

int
cmd_webhooks_redeliver(struct ctx *c)
{
	char path[PATH_CAP], msg[256];

	if (id_path(path, sizeof(path), "webhooks", c->a.pos[0], "/deliveries") != EX_OK ||
	    path_add(path, sizeof(path), c->a.pos[1]) != 0 ||
	    str_copy(path + strlen(path), sizeof(path) - strlen(path), "/redeliver") != 0)
		return fail(EX_USAGE, "the delivery id is too long");
	snprintf(msg, sizeof(msg),
		 "redelivery of %.100s asked for: its event is sent again ahead "
		 "of the ones waiting",
		 c->a.pos[1]);
	return act(c, "POST", path, "{}", NULL, msg);
}
