/*
 * devices, commands and bulk: the fleet and what is ordered to it. `commands TYPE DEVICE
 * --wait` follows the command until the server has verified its receipt (exit 0) or it ended
 * otherwise or the time ran out (exit 6).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define PATH_CAP 2048

/* Option name, then the query parameter of GET /api/v1/devices it sets. */
/* clang-format off */
const char *const device_filters[] = {
	"q", "q", /* one search box */
	"status", "status",
	"owner", "owner",
	"compliant", "compliant",
	"reason-code", "reason", /* --reason is a command's own reason */
	"desired", "desired",
	"reported", "reported",
	"policy", "policy",
	"not-seen-days", "not_seen_days",
	"label", "label", /* a label query: "dept=sales AND NOT lost" */
	"group", "group",
	NULL,
};
/* clang-format on */

int
filters_query(const struct ctx *c, char *q, size_t cap)
{
	for (size_t i = 0; device_filters[i] != NULL; i += 2) {
		const char *v = opt(c, device_filters[i]);

		if (v != NULL && query_add(q, cap, device_filters[i + 1], v) != 0)
			return fail(EX_USAGE, "--%s is too long", device_filters[i]);
	}
	return EX_OK;
}

/* Adds the options named (option, then parameter) to the query; EX_OK or EX_USAGE. */
static int
opts_query(const struct ctx *c, char *q, size_t cap, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i += 2) {
		const char *v = opt(c, names[i]);

		if (v != NULL && query_add(q, cap, names[i + 1], v) != 0)
			return fail(EX_USAGE, "--%s is too long", names[i]);
	}
	return EX_OK;
}

static const struct col device_cols[] = {
	{"ID", "id", 30},
	{"OWNER", "owner", 28},
	{"MODEL", "model", 18},
	{"STATUS", "status", 8},
	{"DESIRED", "corporate_state.desired", 8},
	{"REPORTED", "corporate_state.reported", 8},
	{"COMPLIANT", "compliance.compliant", 9},
	{"LAST CHECK-IN", "last_checkin_at", 24},
};

int
devices_page(struct ctx *c, char *path, size_t cap)
{
	static const char *const more[] = {"sort", "sort", "order", "order", NULL};
	int rc;

	if ((rc = filters_query(c, path, cap)) != EX_OK ||
	    (rc = opts_query(c, path, cap, more)) != EX_OK)
		return rc;
	return list_paged(c, path, device_cols, ARRAY_SIZE(device_cols));
}

int
cmd_devices_list(struct ctx *c)
{
	char path[PATH_CAP] = "/api/v1/devices";

	return devices_page(c, path, sizeof(path));
}

int
cmd_devices_search(struct ctx *c)
{
	char path[PATH_CAP] = "/api/v1/devices";

	if (query_add(path, sizeof(path), "q", c->a.pos[0]) != 0)
		return fail(EX_USAGE, "the search text is too long");
	return list_paged(c, path, device_cols, ARRAY_SIZE(device_cols));
}

int
cmd_devices_get(struct ctx *c)
{
	return get_id(c, "devices", "");
}

int
cmd_devices_count(struct ctx *c)
{
	char path[PATH_CAP] = "/api/v1/devices/count";
	struct reply r;
	json_t *j;
	int rc;

	if ((rc = filters_query(c, path, sizeof(path))) != EX_OK)
		return rc;
	if ((rc = api_json(c, "GET", path, NULL, NULL, &j, &r)) == EX_OK) {
		if (c->json)
			print_raw(&r);
		else
			printf("%lld\n",
			       (long long)json_integer_value(json_object_get(j, "count")));
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_devices_delete(struct ctx *c)
{
	return act_id(c, "DELETE", "devices", "", "deleted");
}

int
cmd_devices_policy(struct ctx *c)
{
	char path[PATH_CAP], done[256], *body;
	int def = opt(c, "default") != NULL, rc;
	json_t *req;

	if (def == (c->a.npos == 2))
		return fail(EX_USAGE, "give a policy name or --default, not both");
	if (id_path(path, sizeof(path), "devices", c->a.pos[0], "/policy") != EX_OK)
		return EX_USAGE;
	req = json_pack("{s:s?}", "policy", def ? NULL : c->a.pos[1]);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	snprintf(done, sizeof(done), "%s now follows %s", c->a.pos[0],
		 def ? "the default policy" : c->a.pos[1]);
	rc = body ? act(c, "PUT", path, body, NULL, done) : fail(EX_SERVER, "out of memory");
	free(body);
	return rc;
}

double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
ended(const char *status)
{
	static const char *const done[] = {"completed", "failed", "canceled", "expired"};

	for (size_t i = 0; status && i < ARRAY_SIZE(done); i++)
		if (strcmp(status, done[i]) == 0)
			return 1;
	return 0;
}

/* What a finished (or timed-out) wait says; the exit code. */
static int
wait_verdict(struct ctx *c, const char *id, const json_t *cmd, const struct reply *r, int timed_out,
	     long timeout)
{
	const char *status = json_string_value(json_object_get(cmd, "status"));
	const char *why = json_string_value(json_object_get(cmd, "unverified_reason"));
	int ok = !timed_out && status && strcmp(status, "completed") == 0 &&
		 json_is_true(json_object_get(cmd, "verified"));

	if (c->json)
		print_raw(r);
	if (ok) {
		if (!c->json)
			printf("%s completed: the receipt is verified\n", id);
		return EX_OK;
	}
	if (timed_out)
		return fail(EX_UNVERIFIED,
			    "%s: no verified receipt within %ld s (the command is %s)", id, timeout,
			    status ? status : "unknown");
	fprintf(stderr, "cleavectl: %s ended %s without a verified receipt: ", id, status);
	put_safe(stderr, why ? why
			     : str_or(json_string_value(json_object_get(cmd, "result_detail")),
				      "no reason given"));
	fputc('\n', stderr);
	return EX_UNVERIFIED;
}

/* Follows command id until it ends or timeout seconds pass. */
static int
wait_command(struct ctx *c, const char *id, long timeout)
{
	char path[PATH_CAP], last[32] = "";
	double deadline = mono_s() + (double)timeout;
	struct reply r = {0};
	json_t *j = NULL;
	int rc;

	if (id_path(path, sizeof(path), "commands", id, "") != EX_OK)
		return EX_USAGE;
	for (long polls = 0; polls < timeout * 4 + 8; polls++) {
		const char *status;
		double left = deadline - mono_s();

		json_decref(j);
		reply_free(&r);
		/* A hung request must not outlast --timeout either. */
		c->req_timeout = left > 1 ? (long)left + 1 : 2;
		if ((rc = api_json(c, "GET", path, NULL, NULL, &j, &r)) != EX_OK)
			return rc;
		status = json_string_value(json_object_get(j, "status"));
		if (status && strcmp(status, last) != 0 && !c->json)
			fprintf(stderr, "%s: %s\n", id, status);
		str_copy(last, sizeof(last), status ? status : "");
		if (ended(status) || mono_s() >= deadline)
			break;
		usleep(250000);
	}
	rc = wait_verdict(c, id, j, &r, !ended(last), timeout);
	json_decref(j);
	reply_free(&r);
	return rc;
}

/* The answer j of a new command: queued (followed with --wait), or held for approval. */
static int
command_answer(struct ctx *c, const json_t *j, const struct reply *r, int wait, long timeout)
{
	double deadline = mono_s() + (double)timeout;
	json_t *a = NULL;
	char id[64];
	int rc = approval_answer(c, j, r, wait);

	if (rc == EX_PENDING && !wait)
		return rc;
	if (rc == EX_PENDING) {
		/* Held: the second admin's decision first, then the command it queued. */
		rc = approval_follow(c, json_string_value(json_object_get(j, "approval_id")),
				     deadline, &a);
		j = a;
		if (rc != EX_OK)
			return rc;
	}
	str_copy(id, sizeof(id),
		 str_or(json_string_value(json_object_get(j, a ? "command_id" : "id")), ""));
	if (wait) {
		/* After an approval, what is left of --timeout; else all of it. */
		double left = a != NULL ? deadline - mono_s() : (double)timeout;

		json_decref(a);
		if (!c->json) {
			printf("queued %s %s for %s\n", c->cmd->verb, id, c->a.pos[0]);
			fflush(stdout); /* before the progress lines on stderr */
		}
		return wait_command(c, id, left >= 1 ? (long)left : 1);
	}
	if (c->json) {
		print_raw(r);
	} else {
		printf("queued %s ", c->cmd->verb);
		put_safe(stdout, id);
		printf(" for %s (status ", c->a.pos[0]);
		put_safe(stdout, json_string_value(json_object_get(j, "status")));
		printf(")\n");
	}
	return EX_OK;
}

int
cmd_command_new(struct ctx *c)
{
	char path[PATH_CAP], key[200], *body;
	const char *hdrs[2] = {NULL, NULL}, *ik = opt(c, "idempotency-key");
	long timeout, expires;
	struct reply r;
	json_t *j, *req;
	int wait = opt(c, "wait") != NULL, rc;

	if ((rc = opt_long(c, "timeout", 300, 1, 86400, &timeout)) != EX_OK ||
	    (rc = opt_long(c, "expires-in", 0, 1, 31536000, &expires)) != EX_OK)
		return rc;
	if (opt(c, "timeout") && !wait)
		return fail(EX_USAGE, "--timeout goes with --wait");
	if (id_path(path, sizeof(path), "devices", c->a.pos[0], "/commands") != EX_OK)
		return EX_USAGE;
	if (ik != NULL) {
		snprintf(key, sizeof(key), "Idempotency-Key: %s", ik);
		hdrs[0] = key;
	}
	req = json_pack("{s:s}", "type", c->cmd->verb);
	if (opt(c, "reason") != NULL)
		json_object_set_new(req, "reason", json_string(opt(c, "reason")));
	if (expires > 0)
		json_object_set_new(req, "expires_in", json_integer(expires));
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	rc = body ? api_json(c, "POST", path, body, hdrs, &j, &r) : fail(EX_SERVER, "no memory");
	free(body);
	if (rc == EX_OK)
		rc = command_answer(c, j, &r, wait, timeout);
	json_decref(j);
	reply_free(&r);
	return rc;
}

static const struct col command_cols[] = {
	{"ID", "id", 30},         {"DEVICE", "device_id", 30}, {"TYPE", "type", 8},
	{"STATUS", "status", 12}, {"VERIFIED", "verified", 8}, {"CREATED", "created_at", 24},
	{"BY", "created_by", 20}, {"REASON", "reason", 30},
};

int
cmd_commands_list(struct ctx *c)
{
	static const char *const f[] = {"device", "device_id", "status", "status",
					"type",   "type",      NULL};
	char path[PATH_CAP] = "/api/v1/commands";
	int rc;

	if ((rc = opts_query(c, path, sizeof(path), f)) != EX_OK)
		return rc;
	return list_paged(c, path, command_cols, ARRAY_SIZE(command_cols));
}

int
cmd_commands_get(struct ctx *c)
{
	return get_id(c, "commands", "");
}

int
cmd_commands_wait(struct ctx *c)
{
	long timeout;
	int rc = opt_long(c, "timeout", 300, 1, 86400, &timeout);

	return rc == EX_OK ? wait_command(c, c->a.pos[0], timeout) : rc;
}

int
cmd_commands_cancel(struct ctx *c)
{
	return act_id(c, "POST", "commands", "/cancel", "canceled");
}
