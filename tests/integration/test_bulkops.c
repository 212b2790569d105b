/*
 * Bulk operations an admin follows and stops (issue 10 section 2), against the real
 * cleave-server: GET /api/v1/commands/bulk newest first, paged and filtered by state (and its
 * 400s); POST /api/v1/commands/bulk/{id}/cancel of a large bulk worked in batches of 5, so it
 * is running: the role refusal (helpdesk may not stop a wipe, may stop its own lock), the bulk
 * canceled with who and when, what it queued still queued and nothing queued after, the audit
 * entry, 409 on a canceled and on a finished bulk, 404 on an unknown one; and the worker
 * refusing to go on with the bulk of a console account disabled, and of an API token revoked,
 * mid-way (state refused, audited, nothing queued after). test_bulkops_pg.c runs every case on
 * PostgreSQL, and there also a cancel POSTed to a second server of the same database. Devices are imported into the database as test_bulk.c does.
 */
#define TEST_BULK_NO_MAIN
#include "test_bulk.c"

#define BIG_N 6000 /* at 5 a batch, long enough that the bulk is running when stopped */

/* GET path as c: the JSON on status want, else NULL (the status printed). */
static json_t *
get_want(struct client *c, const char *path, long want)
{
	long st = 0;
	json_t *j = get_json(c, path, &st);

	if (st != want) {
		printf("    GET %s: %ld, want %ld\n", path, st, want);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* POSTs a bulk by filter of owner TEAM as c; its id into id. */
static int
start_bulk(struct client *c, const char *type, long long n, char *id, size_t cap)
{
	char body[256];
	struct resp r;
	int rc;

	snprintf(body, sizeof(body),
		 "{\"type\":\"%s\",\"reason\":\"ops %s\",\"filter\":{\"owner\":\"%s\"},"
		 "\"expected_count\":%lld}",
		 type, type, TEAM, n);
	rc = bulk_post(c, body, NULL, &r) == 202 && resp_str(&r, "id", id, cap) == 0 ? 0 : -1;
	if (rc != 0)
		printf("    bulk %s: %ld %s\n", type, r.status, r.body ?: "");
	resp_free(&r);
	return rc;
}

/* POST .../cancel as c; the status, and the answer's JSON into *out when given. */
static long
cancel(struct client *c, const char *id, json_t **out)
{
	char path[128];
	struct resp r;
	long st;

	snprintf(path, sizeof(path), "/api/v1/commands/bulk/%s/cancel", id);
	if (client_req(c, "POST", path, NULL, NULL, &r) != 0)
		return -1;
	st = r.status;
	if (out != NULL)
		*out = resp_json(&r);
	resp_free(&r);
	return st;
}

/* Polls the bulk until it has done at least n devices or ended; its JSON, or NULL. */
static json_t *
bulk_until(struct client *c, const char *id, long long n)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/commands/bulk/%s", id);
	for (int i = 0; i < 3000; i++) {
		json_t *j = get_want(c, path, 200);

		if (j == NULL)
			return NULL;
		if (jint(j, "done") >= n || strcmp(jstr(j, "state"), "running") != 0)
			return j;
		json_decref(j);
		usleep(5000);
	}
	return NULL;
}

/* Polls the bulk until it is no longer running (bounded: 30 s); its JSON, or NULL. */
static json_t *
bulk_ended(struct client *c, const char *id)
{
	json_t *j = NULL;

	for (int i = 0; i < 600; i++) {
		json_decref(j);
		j = bulk_until(c, id, INT64_MAX);
		if (j == NULL || strcmp(jstr(j, "state"), "running") != 0)
			return j;
		usleep(50000);
	}
	json_decref(j);
	return NULL;
}

static long long
audit_count(struct env *e, const char *action, const char *target, const char *actor)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM audit WHERE action = '%s' AND target = '%s' AND actor = "
		 "'%s'",
		 action, target, actor);
	return db_int(e, sql);
}

/*
 * e up with one enrolled device (d, through dc) and n copies of it of owner TEAM; with small,
 * restarted with batches of 5 devices. 0, or -1 naming what failed.
 */
static int
fleet_up(struct env *e, const char *tag, struct client **dc, struct device_sim *d, int n, int small)
{
	*dc = NULL;
	if (env_up(e, tag) != 0 || (*dc = client_new(&e->s, NULL)) == NULL)
		printf("    the server did not start\n");
	else if (enroll_one(e, *dc, d, TEAM) != 0 || import(e, d->id, n) != 0)
		printf("    enrolling or importing the devices failed\n");
	else if (small && (srv_stop(&e->s, SIGTERM) != 0 || start_small_batches(e) != 0))
		printf("    the restart with batches of 5 failed\n");
	else
		return 0;
	return -1;
}

/* The list: newest first, pages of 2, by state, and its 400s; an auditor may read it. */
static void
test_bulk_list(void)
{
	static const char *const types[] = {"refresh", "lock", "unlock"};
	char ids[3][64], audtok[128];
	struct env e_list;
	struct device_sim d;
	struct client *dc, *aud;
	json_t *j, *k;

	CHECK(fleet_up(&e_list, "bulklist", &dc, &d, 20, 0) == 0, "fleet");
	for (int i = 0; i < 3; i++) {
		CHECK(start_bulk(e_list.admin, types[i], 21, ids[i], sizeof(ids[i])) == 0,
		      "bulk %d", i);
		j = bulk_ended(e_list.admin, ids[i]);
		CHECK(j != NULL && strcmp(jstr(j, "state"), "done") == 0, "bulk %d ended", i);
		json_decref(j);
		sleep(1); /* created_at is in seconds: the order is by time, then id */
	}
	CHECK(admin_token(e_list.admin, "auditor", audtok, sizeof(audtok)) == 0, "auditor");
	aud = client_new(&e_list.s, audtok);
	j = get_want(aud, "/api/v1/commands/bulk?limit=2", 200);
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) == 2, "first page of 2");
	k = json_array_get(json_object_get(j, "items"), 0);
	CHECK(strcmp(jstr(k, "id"), ids[2]) == 0 && strcmp(jstr(k, "type"), "unlock") == 0 &&
		      strcmp(jstr(k, "reason"), "ops unlock") == 0 && jint(k, "queued") == 21 &&
		      strcmp(jstr(k, "requested_by"), "") != 0 &&
		      json_is_string(json_object_get(k, "finished_at")),
	      "newest first, with type, requester, reason, counts, times");
	CHECK(strcmp(jstr(json_array_get(json_object_get(j, "items"), 1), "id"), ids[1]) == 0,
	      "then the one before");
	{
		char path[256];

		snprintf(path, sizeof(path), "/api/v1/commands/bulk?limit=2&cursor=%s",
			 jstr(j, "next_cursor"));
		json_decref(j);
		j = get_want(aud, path, 200);
	}
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) == 1 &&
		      strcmp(jstr(json_array_get(json_object_get(j, "items"), 0), "id"), ids[0]) ==
			      0 &&
		      json_is_null(json_object_get(j, "next_cursor")),
	      "second page: the oldest, and no next cursor");
	json_decref(j);
	j = get_want(aud, "/api/v1/commands/bulk?state=done", 200);
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) == 3, "3 done");
	json_decref(j);
	j = get_want(aud, "/api/v1/commands/bulk?state=running", 200);
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) == 0, "none running");
	json_decref(j);
	j = get_want(aud, "/api/v1/commands/bulk?state=stuck", 400);
	CHECK(j != NULL && strstr(jstr(j, "detail"), "state") != NULL, "a bad state is a 400");
	json_decref(j);
	j = get_want(aud, "/api/v1/commands/bulk?cursor=bm9wZQ", 400);
	CHECK(j != NULL && strstr(jstr(j, "detail"), "cursor") != NULL, "a bad cursor: 400");
	json_decref(j);
	j = get_want(aud, "/api/v1/commands/bulk?limit=201", 400);
	CHECK(j != NULL, "limit over 200: 400");
	json_decref(j);
	CHECK(cancel(aud, ids[2], NULL) == 403, "an auditor may not cancel");
	client_free(aud);
	client_free(dc);
	dev_fini(&d);
	env_down(&e_list);
}

/* Cancel mid-bulk: roles, who and when, nothing queued after, 409s, the audit entry. */
static void
test_bulk_cancel(void)
{
	struct env e;
	struct device_sim d;
	struct client *dc, *hd;
	char id[64], lock_id[64], small[64], hdtok[128], path[160];
	long long queued, n;
	json_t *j;

	CHECK(fleet_up(&e, "bulkcancel", &dc, &d, BIG_N, 1) == 0, "fleet");
	CHECK(admin_token(e.admin, "helpdesk", hdtok, sizeof(hdtok)) == 0, "helpdesk token");
	hd = client_new(&e.s, hdtok);
	CHECK(start_bulk(e.admin, "wipe", BIG_N + 1, id, sizeof(id)) == 0, "wipe bulk");
	j = bulk_until(e.admin, id, 50);
	CHECK(j != NULL && strcmp(jstr(j, "state"), "running") == 0, "the bulk is running");
	json_decref(j);
	CHECK(cancel(hd, id, NULL) == 403, "helpdesk may not cancel a wipe bulk");
	CHECK(cancel(e.admin, "blk_nosuch", NULL) == 404, "an unknown bulk: 404");
	CHECK(cancel(e.admin, id, &j) == 200, "admin cancels");
	CHECK(strcmp(jstr(j, "state"), "canceled") == 0 && jint(j, "queued") < BIG_N + 1 &&
		      json_is_string(json_object_get(j, "finished_at")) &&
		      json_is_string(json_object_get(j, "ended_by")),
	      "canceled mid-way, with who and when");
	queued = jint(j, "queued");
	json_decref(j);
	printf("    canceled after %lld of %d queued\n", queued, BIG_N + 1);
	usleep(1500000); /* time for several batches, were any still run */
	CHECK(once_each(&e, "wipe", queued) == 0, "what was queued stays, nothing after");
	n = db_int(&e, "SELECT count(*) FROM commands WHERE type = 'wipe' AND status = 'queued'");
	CHECK(n == queued, "the %lld queued are still queued (%lld)", queued, n);
	snprintf(path, sizeof(path), "/api/v1/commands/bulk/%s", id);
	j = get_want(e.admin, path, 200);
	CHECK(j != NULL && jint(j, "queued") == queued && strcmp(jstr(j, "state"), "canceled") == 0,
	      "the bulk says canceled with its count");
	json_decref(j);
	CHECK(cancel(e.admin, id, &j) == 409 && strstr(jstr(j, "detail"), "canceled") != NULL,
	      "canceling again: 409");
	json_decref(j);
	{
		char actor[64];

		CHECK(db_int(&e, "SELECT count(*) FROM audit WHERE action = "
				 "'command.bulk.cancel'") == 1,
		      "one cancel audited");
		j = get_want(e.admin, "/api/v1/commands/bulk?state=canceled", 200);
		snprintf(actor, sizeof(actor), "%s",
			 jstr(json_array_get(json_object_get(j, "items"), 0), "ended_by"));
		json_decref(j);
		CHECK(audit_count(&e, "command.bulk.cancel", id, actor) == 1,
		      "the audit entry names who canceled (%s)", actor);
	}
	/* Helpdesk may stop the lock bulk it may start. */
	CHECK(start_bulk(hd, "lock", BIG_N + 1, lock_id, sizeof(lock_id)) == 0, "helpdesk lock");
	j = bulk_until(hd, lock_id, 20);
	CHECK(j != NULL && strcmp(jstr(j, "state"), "running") == 0, "the lock bulk runs");
	json_decref(j);
	CHECK(cancel(hd, lock_id, &j) == 200 && strcmp(jstr(j, "state"), "canceled") == 0,
	      "helpdesk cancels its lock bulk");
	json_decref(j);
	/* A finished bulk: 409, and it stays done. */
	CHECK(db_exec(&e, "UPDATE devices SET owner = 'few@fleet.example' WHERE id IN "
			  "('dev_bulk00001', 'dev_bulk00002')") == 0,
	      "two devices of their own");
	{
		struct resp r;

		CHECK(bulk_post(
			      e.admin,
			      "{\"type\":\"refresh\",\"filter\":{\"owner\":\"few@fleet.example\"},"
			      "\"expected_count\":2}",
			      NULL, &r) == 202 &&
			      resp_str(&r, "id", small, sizeof(small)) == 0,
		      "small bulk: %ld", r.status);
		resp_free(&r);
	}
	j = bulk_ended(e.admin, small);
	CHECK(j != NULL && strcmp(jstr(j, "state"), "done") == 0, "the small bulk is done");
	json_decref(j);
	CHECK(cancel(e.admin, small, &j) == 409 && strstr(jstr(j, "detail"), "done") != NULL,
	      "canceling a finished bulk: 409");
	json_decref(j);
	client_free(hd);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

/* Signs in as email on c (a client without a token); the session's two headers into h. */
static int
sign_in(struct client *c, const char *email, char h[2][200])
{
	char body[256], tok[128];
	struct resp r;
	const char *v;
	int rc = -1;

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email,
		 "correct horse battery staple");
	if (client_req(c, "POST", "/api/v1/session", body, NULL, &r) != 0)
		return -1;
	v = strchr(r.set_cookie, '=');
	if (r.status == 200 && v != NULL && resp_str(&r, "csrf_token", tok, sizeof(tok)) == 0) {
		snprintf(h[0], 200, "Cookie: cleave_session=%.*s", (int)strcspn(v + 1, ";"), v + 1);
		snprintf(h[1], 200, "X-CSRF-Token: %s", tok);
		rc = 0;
	}
	resp_free(&r);
	return rc;
}

/* A request with body as status; the JSON answer into *out when given. */
static long
req(struct client *c, const char *method, const char *path, const char *body,
    const char *const *hdrs, json_t **out)
{
	struct resp r;
	long st;

	if (client_req(c, method, path, body, hdrs, &r) != 0)
		return -1;
	st = r.status;
	if (out != NULL)
		*out = resp_json(&r);
	resp_free(&r);
	return st;
}

/* The bulk ended refused, queued what it says and nothing after, audited once. */
static void
check_refused(struct env *e, const char *id, const char *type, const char *why)
{
	json_t *j = bulk_ended(e->admin, id);
	long long queued;

	CHECK(j != NULL && strcmp(jstr(j, "state"), "refused") == 0, "%s bulk refused", type);
	CHECK(strstr(jstr(j, "end_reason"), why) != NULL, "end_reason: %s", jstr(j, "end_reason"));
	queued = jint(j, "queued");
	json_decref(j);
	usleep(1000000);
	CHECK(once_each(e, type, queued) == 0, "%s: nothing queued after the refusal", type);
	CHECK(audit_count(e, "command.bulk.refused", id, "system") == 1, "refusal audited");
	printf("    %s bulk refused after %lld queued: %s\n", type, queued, why);
}

/* The worker stops the bulk of a disabled console account and of a revoked token. */
static void
test_bulk_refused(void)
{
	struct env e;
	struct device_sim d;
	struct client *dc, *web, *tc;
	char h[2][200], admin_id[64], tok_id[64], secret[128], id_a[64], id_t[64], path[160];
	const char *hdrs[3];
	json_t *j;

	CHECK(fleet_up(&e, "bulkrefused", &dc, &d, BIG_N, 1) == 0, "fleet");
	CHECK(req(e.admin, "POST", "/api/v1/admins",
		  "{\"email\":\"second@example.com\",\"display_name\":\"Second\",\"role\":"
		  "\"admin\",\"password\":\"correct horse battery staple\"}",
		  NULL, &j) == 201,
	      "second admin");
	snprintf(admin_id, sizeof(admin_id), "%s", jstr(j, "id"));
	json_decref(j);
	CHECK(req(e.admin, "POST", "/api/v1/tokens", "{\"name\":\"script\",\"role\":\"admin\"}",
		  NULL, &j) == 201,
	      "script token");
	snprintf(tok_id, sizeof(tok_id), "%s", jstr(j, "id"));
	snprintf(secret, sizeof(secret), "%s", jstr(j, "token"));
	json_decref(j);
	web = client_new(&e.s, NULL);
	tc = client_new(&e.s, secret);
	CHECK(sign_in(web, "second@example.com", h) == 0, "the second admin signs in");
	hdrs[0] = h[0];
	hdrs[1] = h[1];
	hdrs[2] = NULL;
	/* The account's bulk; the token's once that one has ended. */
	{
		char body[256];

		snprintf(body, sizeof(body),
			 "{\"type\":\"lock\",\"filter\":{\"owner\":\"%s\"},\"expected_count\":%d}",
			 TEAM, BIG_N + 1);
		CHECK(req(web, "POST", "/api/v1/commands/bulk", body, hdrs, &j) == 202,
		      "bulk by the console account");
		snprintf(id_a, sizeof(id_a), "%s", jstr(j, "id"));
		CHECK(strcmp(jstr(j, "requested_by"), admin_id) == 0, "requested by the account");
		json_decref(j);
	}
	j = bulk_until(e.admin, id_a, 20);
	CHECK(j != NULL && strcmp(jstr(j, "state"), "running") == 0, "the account's bulk runs");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/admins/%s", admin_id);
	CHECK(req(e.admin, "DELETE", path, NULL, NULL, NULL) == 204, "disable the account");
	check_refused(&e, id_a, "lock", "account is disabled");
	CHECK(start_bulk(tc, "refresh", BIG_N + 1, id_t, sizeof(id_t)) == 0, "bulk by the token");
	j = bulk_until(e.admin, id_t, 20);
	CHECK(j != NULL && strcmp(jstr(j, "state"), "running") == 0, "the token's bulk runs");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/tokens/%s", tok_id);
	CHECK(req(e.admin, "DELETE", path, NULL, NULL, NULL) == 204, "revoke the token");
	check_refused(&e, id_t, "refresh", "token is revoked");
	client_free(web);
	client_free(tc);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

/* Starts b as a second server of a's PostgreSQL database (its keys and admin token). */
static int
join_server(struct env *a, struct env *b)
{
	char cmd[PATH_MAX * 4];

	memset(b, 0, sizeof(*b));
	if (srv_init(&b->s, "bulkops-b") != 0)
		return -1;
	snprintf(b->s.database, sizeof(b->s.database), "%s", a->s.database);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/keys' '%s/admin-token' '%s/'",
		 b->s.dir, a->s.dir, a->s.dir, b->s.dir);
	return system(cmd) == 0 ? start_small_batches(b) : -1;
}

/*
 * PostgreSQL, two servers working bulks on one database: a cancel POSTed to B stops the bulk
 * whichever server's worker holds it, and neither queues for it after the answer.
 */
static void
test_bulk_cancel_across_servers(void)
{
	struct env a, b;
	struct device_sim d;
	struct client *dc;
	char id[64];
	long long queued;
	json_t *j;

	CHECK(env_pg != NULL, "runs on PostgreSQL only (test_bulkops_pg lists it)");
	CHECK(fleet_up(&a, "bulkopsa", &dc, &d, BIG_N, 1) == 0, "fleet on A");
	CHECK(join_server(&a, &b) == 0, "server B did not start");
	CHECK(start_bulk(a.admin, "lock", BIG_N + 1, id, sizeof(id)) == 0, "bulk on A");
	j = bulk_until(b.admin, id, 100);
	CHECK(j != NULL && strcmp(jstr(j, "state"), "running") == 0, "B sees it running");
	json_decref(j);
	CHECK(cancel(b.admin, id, &j) == 200 && strcmp(jstr(j, "state"), "canceled") == 0,
	      "B cancels A's bulk");
	queued = jint(j, "queued");
	json_decref(j);
	usleep(1500000);
	CHECK(once_each(&a, "lock", queued) == 0, "nothing queued after the cancel (%lld)", queued);
	j = bulk_ended(a.admin, id);
	CHECK(j != NULL && strcmp(jstr(j, "state"), "canceled") == 0 && jint(j, "queued") == queued,
	      "A sees it canceled with the same count");
	json_decref(j);
	printf("    canceled on B after %lld of %d queued\n", queued, BIG_N + 1);
	client_free(dc);
	dev_fini(&d);
	env_down(&b);
	env_down(&a);
}

/* The last case runs on PostgreSQL only (test_bulkops_pg lists it). */
static const struct t_case bulkops_cases[] = {
	{"bulk_list", test_bulk_list},
	{"bulk_cancel", test_bulk_cancel},
	{"bulk_refused", test_bulk_refused},
	{"bulk_cancel_across_servers", test_bulk_cancel_across_servers},
};

#ifndef TEST_BULKOPS_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(bulkops_cases, ARRAY_SIZE(bulkops_cases) - 1, argc, argv);
}
#endif
