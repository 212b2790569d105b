/*
 * bulk: one command for every device a filter or a group matches (POST /api/v1/commands/bulk
 * with "filter" or "group", and "expected_count"). As in the console, the number of devices is
 * confirmed before anything is queued: --expected-count N for scripts, or typed at the prompt
 * on a terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define PATH_CAP 2048

int
target_filters(const struct ctx *c, json_t *req)
{
	json_t *f = json_object();
	size_t n = 0;

	for (size_t i = 0; f != NULL && device_filters[i] != NULL; i += 2) {
		const char *v = opt(c, device_filters[i]);

		if (v == NULL)
			continue;
		json_object_set_new(f, device_filters[i + 1], json_string(v));
		n++;
	}
	/* A group alone is the API's own form ("group": name); anything else a filter. */
	if (req != NULL && n == 1 && json_object_get(f, "group") != NULL)
		json_object_set(req, "group", json_object_get(f, "group"));
	else if (req != NULL && n > 0)
		json_object_set(req, "filter", f);
	json_decref(f);
	return (int)n;
}

/* The count to confirm: --expected-count, or typed by a person after seeing the match. */
static int
expected_count(struct ctx *c, long *out)
{
	char path[PATH_CAP] = "/api/v1/devices/count", typed[64];
	struct reply r;
	json_t *j;
	long n;
	int rc;

	if (opt(c, "expected-count") != NULL)
		return opt_long(c, "expected-count", 0, 0, 100000000, out);
	if ((rc = filters_query(c, path, sizeof(path))) != EX_OK ||
	    (rc = api_json(c, "GET", path, NULL, NULL, &j, &r)) != EX_OK)
		return rc;
	n = (long)json_integer_value(json_object_get(j, "count"));
	json_decref(j);
	reply_free(&r);
	if (!isatty(STDIN_FILENO))
		return fail(EX_USAGE,
			    "--expected-count is required (the filter matches %ld devices "
			    "now)",
			    n);
	fprintf(stderr, "The filter matches %ld devices. Type %ld to queue %s on all of them: ", n,
		n, opt(c, "type"));
	if (fgets(typed, sizeof(typed), stdin) == NULL || strtol(typed, NULL, 10) != n ||
	    typed[strspn(typed, "0123456789")] != '\n')
		return fail(EX_USAGE, "not confirmed; nothing was queued");
	*out = n;
	return EX_OK;
}

/*
 * A bulk held by the two-person rule (j the 202 answer): EX_PENDING, or with --wait the
 * decision followed, and the approved bulk's id and state printed.
 */
static int
bulk_approval(struct ctx *c, const json_t *j, long timeout)
{
	json_t *a = NULL;
	int rc;

	if (timeout == 0)
		return EX_PENDING;
	rc = approval_follow(c, json_string_value(json_object_get(j, "approval_id")),
			     mono_s() + (double)timeout, &a);
	if (rc == EX_OK && c->json) {
		char *s = json_dumps(a, JSON_COMPACT);

		puts(s ? s : "{}");
		free(s);
	} else if (rc == EX_OK) {
		printf("bulk ");
		put_safe(stdout, str_or(json_string_value(json_object_get(a, "bulk_id")), "?"));
		printf(" approved: it runs now (follow it with `cleavectl bulk get ID`)\n");
	}
	json_decref(a);
	return rc;
}

int
cmd_bulk_create(struct ctx *c)
{
	const char *type = opt(c, "type"), *ik = opt(c, "idempotency-key");
	const char *hdrs[2] = {NULL, NULL};
	char key[200], *body;
	struct reply r;
	json_t *req, *j;
	long count, timeout;
	int wait = opt(c, "wait") != NULL, rc;

	if ((rc = opt_long(c, "timeout", 300, 1, 86400, &timeout)) != EX_OK)
		return rc;
	if (opt(c, "timeout") && !wait)
		return fail(EX_USAGE, "--timeout goes with --wait");
	if (type == NULL)
		return fail(EX_USAGE,
			    "bulk create needs --type (wipe, lock, unlock, rekey, retire, "
			    "refresh)");
	if ((rc = expected_count(c, &count)) != EX_OK)
		return rc;
	if (ik != NULL) {
		snprintf(key, sizeof(key), "Idempotency-Key: %s", ik);
		hdrs[0] = key;
	}
	req = json_pack("{s:s, s:I}", "type", type, "expected_count", (json_int_t)count);
	if (req != NULL && target_filters(c, req) == 0)
		json_object_set_new(req, "filter", json_object());
	if (req != NULL && opt(c, "reason") != NULL)
		json_object_set_new(req, "reason", json_string(opt(c, "reason")));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
		return fail(EX_SERVER, "out of memory");
	rc = api_json(c, "POST", "/api/v1/commands/bulk", body, hdrs, &j, &r);
	free(body);
	if (rc == EX_OK && approval_answer(c, j, &r, wait) == EX_PENDING) {
		rc = bulk_approval(c, j, wait ? timeout : 0);
	} else if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		printf("bulk ");
		put_safe(stdout, json_string_value(json_object_get(j, "id")));
		printf(": %s on %ld devices, ", type, count);
		put_safe(stdout, json_string_value(json_object_get(j, "state")));
		printf(" (follow it with `cleavectl bulk get ID`)\n");
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_bulk_list(struct ctx *c)
{
	static const struct col cols[] = {
		{"ID", "id", 30},
		{"TYPE", "type", 8},
		{"STATE", "state", 9},
		{"EXPECTED", "expected_count", 8},
		{"DONE", "done", 8},
		{"QUEUED", "queued", 8},
		{"CREATED", "created_at", 24},
		{"BY", "requested_by", 20},
		{"REASON", "reason", 30},
	};
	char path[PATH_CAP] = "/api/v1/commands/bulk";

	if (opt(c, "state") && query_add(path, sizeof(path), "state", opt(c, "state")) != 0)
		return fail(EX_USAGE, "--state is too long");
	return list_paged(c, path, cols, ARRAY_SIZE(cols));
}

int
cmd_bulk_get(struct ctx *c)
{
	return get_id(c, "commands/bulk", "");
}

int
cmd_bulk_cancel(struct ctx *c)
{
	/* What it queued stays queued (schema/api.md); the counts say how much. */
	return act_id(c, "POST", "commands/bulk", "/cancel", "canceled bulk");
}
