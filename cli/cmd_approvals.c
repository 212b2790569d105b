/*
 * approvals: the two-person rule (schema/api.md "Two-person rule"). A held wipe, retire or
 * large bulk is answered 202 "pending_approval" with an approval id instead of a command;
 * approval_answer() tells the person (or, by exit code 7, the script) what to do next, and
 * approval_follow() waits for the second admin's decision for `--wait`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define PATH_CAP 2048

static const struct col approval_cols[] = {
	{"ID", "id", 30},
	{"KIND", "kind", 7},
	{"TYPE", "type", 8},
	{"DEVICE", "device_id", 30},
	{"COUNT", "device_count", 6},
	{"STATUS", "status", 10},
	{"REQUESTED BY", "requested_by", 24},
	{"EXPIRES", "expires_at", 24},
	{"REASON", "reason", 30},
};

int
cmd_approvals_list(struct ctx *c)
{
	char path[PATH_CAP] = "/api/v1/approvals";

	if ((opt(c, "status") && query_add(path, sizeof(path), "status", opt(c, "status")) != 0) ||
	    (opt(c, "device") && query_add(path, sizeof(path), "device_id", opt(c, "device")) != 0))
		return fail(EX_USAGE, "--status or --device is too long");
	return list_paged(c, path, approval_cols, ARRAY_SIZE(approval_cols));
}

int
cmd_approvals_get(struct ctx *c)
{
	return get_id(c, "approvals", "");
}

/* POST /api/v1/approvals/ID/VERB body; says how the request stands now. */
static int
decide(struct ctx *c, const char *verb, const char *body)
{
	char path[PATH_CAP], tail[32];
	struct reply r;
	json_t *j, *a;
	const char *cmd;
	int rc;

	snprintf(tail, sizeof(tail), "/%s", verb);
	if (id_path(path, sizeof(path), "approvals", c->a.pos[0], tail) != EX_OK)
		return EX_USAGE;
	if ((rc = api_json(c, "POST", path, body, NULL, &j, &r)) == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		a = json_object_get(j, "approval");
		cmd = json_string_value(json_object_get(json_object_get(j, "command"), "id"));
		put_safe(stdout, c->a.pos[0]);
		fputs(": ", stdout);
		put_safe(stdout, json_string_value(json_object_get(a, "status")));
		if (cmd != NULL) {
			fputs("; command ", stdout);
			put_safe(stdout, cmd);
			fputs(" is queued", stdout);
		} else if (json_string_value(json_object_get(a, "bulk_id")) != NULL &&
			   strcmp(verb, "approve") == 0) {
			fputs("; bulk ", stdout);
			put_safe(stdout, json_string_value(json_object_get(a, "bulk_id")));
			fputs(" runs", stdout);
		}
		putchar('\n');
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_approvals_approve(struct ctx *c)
{
	return decide(c, "approve", "{}");
}

/* --note or --reason (override) as the body's member name. */
static int
decide_with(struct ctx *c, const char *verb, const char *member, const char *text)
{
	json_t *req = json_object();
	char *body;
	int rc;

	if (text != NULL)
		json_object_set_new(req, member, json_string(text));
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	rc = body ? decide(c, verb, body) : fail(EX_SERVER, "out of memory");
	free(body);
	return rc;
}

int
cmd_approvals_reject(struct ctx *c)
{
	return decide_with(c, "reject", "note", opt(c, "note"));
}

int
cmd_approvals_cancel(struct ctx *c)
{
	return decide(c, "cancel", "{}");
}

int
cmd_approvals_override(struct ctx *c)
{
	const char *why = opt(c, "reason");

	if (why == NULL || *why == '\0')
		return fail(EX_USAGE,
			    "an override needs --reason (10 to 380 characters): it "
			    "goes into the audit trail and the approval.overridden event");
	fprintf(stderr,
		"cleavectl: WARNING: EMERGENCY OVERRIDE of the two-person rule for %s.\n"
		"cleavectl: WARNING: it queues the request without a second admin; the override "
		"and its reason are audited and sent to every webhook subscribed to "
		"approval.overridden.\n",
		c->a.pos[0]);
	return decide_with(c, "override", "reason", why);
}

/* The 202 pending_approval answer of a held request: what to do next. */
static void
print_pending(const json_t *j)
{
	const json_t *a = json_object_get(j, "approval");
	const char *id = json_string_value(json_object_get(j, "approval_id"));
	const char *bulk = json_string_value(json_object_get(json_object_get(j, "bulk"), "id"));

	fputs("approval ", stdout);
	put_safe(stdout, id);
	fputs(" requested: ", stdout);
	put_safe(stdout, json_string_value(json_object_get(a, "type")));
	if (json_string_value(json_object_get(a, "device_id")) != NULL) {
		fputs(" of ", stdout);
		put_safe(stdout, json_string_value(json_object_get(a, "device_id")));
	} else {
		long long n = (long long)json_integer_value(json_object_get(a, "device_count"));

		printf(" of %lld device%s", n, n == 1 ? "" : "s");
	}
	if (bulk != NULL) {
		fputs(" by bulk ", stdout);
		put_safe(stdout, bulk);
	}
	fputs(" waits for a second admin until ", stdout);
	put_safe(stdout, json_string_value(json_object_get(a, "expires_at")));
	fputs("\n  another admin approves it: cleavectl approvals approve ", stdout);
	put_safe(stdout, id);
	fputs("\n  follow it:                 cleavectl approvals get ", stdout);
	put_safe(stdout, id);
	fputs("\n  withdraw it:               cleavectl approvals cancel ", stdout);
	put_safe(stdout, id);
	putchar('\n');
	fflush(stdout);
}

int
approval_answer(struct ctx *c, const json_t *j, const struct reply *r, int wait)
{
	const char *status = json_string_value(json_object_get(j, "status"));

	if (status == NULL || strcmp(status, "pending_approval") != 0)
		return -1;
	if (c->json && !wait)
		print_raw(r);
	else if (!c->json)
		print_pending(j);
	if (!wait)
		fail(EX_PENDING,
		     "waiting for approval (exit %d): nothing is queued until another "
		     "admin approves",
		     EX_PENDING);
	return EX_PENDING;
}

/* Why a decided request will not be carried out, on stderr; EX_UNVERIFIED. */
static int
not_approved(const char *id, const json_t *a, const char *status)
{
	const char *by = json_string_value(json_object_get(a, "decided_by"));
	const char *note = json_string_value(json_object_get(a, "note"));

	fprintf(stderr, "cleavectl: %s was %s", id, status);
	if (by != NULL) {
		fputs(" by ", stderr);
		put_safe(stderr, by);
	}
	if (note != NULL && *note != '\0') {
		fputs(": ", stderr);
		put_safe(stderr, note);
	}
	fputs("; nothing was queued\n", stderr);
	return EX_UNVERIFIED;
}

int
approval_follow(struct ctx *c, const char *id, double deadline, json_t **out)
{
	char path[PATH_CAP];
	struct reply r = {0};
	json_t *j = NULL;
	const char *st = "pending";
	int rc;

	*out = NULL;
	if (id_path(path, sizeof(path), "approvals", id, "") != EX_OK)
		return EX_USAGE;
	if (!c->json)
		fprintf(stderr, "%s: pending (waiting for a second admin)\n", id);
	for (int polls = 0; polls < 400000; polls++) {
		double left = deadline - mono_s();

		json_decref(j);
		reply_free(&r);
		c->req_timeout = left > 1 ? (long)left + 1 : 2;
		if ((rc = api_json(c, "GET", path, NULL, NULL, &j, &r)) != EX_OK)
			return rc;
		st = str_or(json_string_value(json_object_get(j, "status")), "");
		if (strcmp(st, "pending") != 0 || mono_s() >= deadline)
			break;
		usleep(500000);
	}
	reply_free(&r);
	if (strcmp(st, "approved") == 0 || strcmp(st, "overridden") == 0) {
		if (!c->json) {
			fprintf(stderr, "%s: %s by ", id, st);
			put_safe(stderr, json_string_value(json_object_get(j, "decided_by")));
			fputc('\n', stderr);
		}
		*out = j;
		return EX_OK;
	}
	rc = strcmp(st, "pending") == 0
		     ? fail(EX_PENDING, "%s: still waiting for approval when --timeout ran out", id)
		     : not_approved(id, j, st);
	json_decref(j);
	return rc;
}
