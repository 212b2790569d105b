/*
 * Bulk commands by filter (issue 10 section 2), against the real cleave-server: a filter of
 * the device list with the count the admin confirmed, answered 202 with a durable bulk
 * operation that a background worker queues in batches. Checks that every matching device
 * gets exactly one command (and its audit entry), that devices with one open are counted
 * already_pending and retired ones skipped, that a parked device is woken, the 409 on a
 * changed count (nothing queued), 422 on no match, 400 on a bad filter, the role refusal and
 * the Idempotency-Key; that a server killed with SIGKILL mid-bulk resumes after its restart
 * with no device queued twice and none missed; and (PostgreSQL, test_bulk_pg.c) that two
 * servers working one database queue each device once. Most devices are written straight
 * into the database (as another phone's enrollment would be), copying an enrolled one.
 */
#define TEST_SERVER_NO_MAIN
#include "test_server.c"

#include <sqlite3.h>

#define TEAM       "team-bulk@fleet.example"
#define TEAM_QUERY "owner=team-bulk%40fleet.example"

/* The one integer sql answers on the server's database; -1 on failure. */
static long long
db_int(struct env *e, const char *sql)
{
	char path[PATH_MAX + 16];
	sqlite3_stmt *q = NULL;
	sqlite3 *db = NULL;
	long long v = -1;

	if (e->s.database[0] != '\0')
		return pgtest_int(e->s.database, sql);
	snprintf(path, sizeof(path), "%s/cleave.db", e->s.dir);
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* n devices "dev_bulkNNNNN" of owner TEAM, copies of device tmpl but for id and key. */
static int
import(struct env *e, const char *tmpl, int n)
{
	static const char cols[] = "id, owner, status, device_key, hv_key, measurement, "
				   "enrollment_token_id, model, os, agent_version, enrolled_at";
	static const char copy[] = "t.hv_key, t.measurement, t.enrollment_token_id, t.model, "
				   "t.os, t.agent_version, t.enrolled_at";
	char sql[1024];

	if (e->s.database[0] != '\0')
		snprintf(
			sql, sizeof(sql),
			"INSERT INTO devices (%s) SELECT 'dev_bulk' || lpad(i::text, 5, '0'), "
			"'%s', 'active', sha256(('k' || i)::bytea), %s FROM generate_series(1, %d) "
			"i, devices t WHERE t.id = '%s'",
			cols, TEAM, copy, n, tmpl);
	else
		snprintf(sql, sizeof(sql),
			 "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < "
			 "%d) INSERT INTO devices (%s) SELECT printf('dev_bulk%%05d', i), '%s', "
			 "'active', randomblob(32), %s FROM s, devices t WHERE t.id = '%s'",
			 n, cols, TEAM, copy, tmpl);
	return db_exec(e, sql);
}

/* POSTs a bulk body as c (with key as Idempotency-Key unless NULL); the status, r filled. */
static long
bulk_post(struct client *c, const char *body, const char *key, struct resp *r)
{
	char hdr[160];
	const char *hdrs[] = {hdr, NULL};

	snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key ? key : "");
	if (client_req(c, "POST", "/api/v1/commands/bulk", body, key ? hdrs : NULL, r) != 0)
		return -1;
	return r->status;
}

/* Polls the bulk until it is done (bounded: 60 s); its last state, or NULL. */
static json_t *
bulk_wait(struct client *c, const char *id)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/commands/bulk/%s", id);
	for (int i = 0; i < 1200; i++) {
		struct resp r;
		json_t *j = NULL;

		if (client_req(c, "GET", path, NULL, NULL, &r) == 0 && r.status == 200)
			j = resp_json(&r);
		resp_free(&r);
		if (j != NULL &&
		    strcmp(json_string_value(json_object_get(j, "state")) ?: "", "done") == 0)
			return j;
		json_decref(j);
		usleep(50000);
	}
	return NULL;
}

static long long
jint(json_t *j, const char *k)
{
	return (long long)json_integer_value(json_object_get(j, k));
}

/* GET /api/v1/devices/count of TEAM's devices; the JSON or NULL. */
static json_t *
get_count(struct env *e)
{
	struct resp r;
	json_t *j = NULL;

	if (client_req(e->admin, "GET", "/api/v1/devices/count?" TEAM_QUERY, NULL, NULL, &r) == 0 &&
	    r.status == 200)
		j = resp_json(&r);
	resp_free(&r);
	return j;
}

/* Devices of TEAM with more than one command of type, and the commands of type they have. */
static int
once_each(struct env *e, const char *type, long long want)
{
	char sql[512];
	long long dup, n;

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM (SELECT c.device_id FROM commands c JOIN devices d ON "
		 "d.id = c.device_id WHERE d.owner = '%s' AND c.type = '%s' GROUP BY c.device_id "
		 "HAVING count(*) > 1) x",
		 TEAM, type);
	dup = db_int(e, sql);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM commands c JOIN devices d ON d.id = c.device_id WHERE "
		 "d.owner = '%s' AND c.type = '%s'",
		 TEAM, type);
	n = db_int(e, sql);
	if (dup != 0 || n != want)
		printf("    %lld devices have more than one %s; %lld %s commands, want %lld\n", dup,
		       type, n, type, want);
	return dup == 0 && n == want ? 0 : -1;
}

/* A filter bulk of 300 imported devices and one parked real one, with every refusal. */
static void
test_bulk_filter(void)
{
	struct env e;
	struct device_sim d;
	struct client *dc, *pc, *hd;
	struct poll_arg a = {0};
	char body[512], hdtok[128], id[64], id2[64], sql[256];
	struct resp r;
	pthread_t th;
	double t0;
	json_t *j;

	CHECK(env_up(&e, "bulk") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	pc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, TEAM) == 0, "enroll");
	CHECK(import(&e, d.id, 300) == 0, "import 300 devices");
	/* Two retired (skipped), three with a lock open already (already_pending). */
	CHECK(db_exec(&e, "UPDATE devices SET status = 'retired' WHERE id IN ('dev_bulk00001', "
			  "'dev_bulk00002')") == 0,
	      "retire two");
	CHECK(bulk_post(e.admin,
			"{\"type\":\"lock\",\"device_ids\":[\"dev_bulk00003\",\"dev_bulk00004\","
			"\"dev_bulk00005\"]}",
			NULL, &r) == 200,
	      "bulk by ids: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	j = get_count(&e);
	CHECK(jint(j, "count") == 301, "count of the filter");
	json_decref(j);

	/* A changed count is a 409 that says the count now, and queues nothing. */
	CHECK(bulk_post(e.admin,
			"{\"type\":\"lock\",\"filter\":{\"owner\":\"" TEAM "\"},"
			"\"expected_count\":290}",
			NULL, &r) == 409,
	      "stale count: %ld %s", r.status, r.body ?: "");
	j = resp_json(&r);
	resp_free(&r);
	CHECK(jint(j, "count") == 301, "the 409 says the count now");
	json_decref(j);
	CHECK(db_int(&e, "SELECT count(*) FROM bulk_ops") == 0, "a refused bulk left a row");
	CHECK(once_each(&e, "lock", 3) == 0, "a refused bulk queued commands");
	/* No match, a filter the list does not have, no count, helpdesk wiping. */
	CHECK(bulk_post(e.admin,
			"{\"type\":\"lock\",\"filter\":{\"owner\":\"nobody@x\"},\"expected_count\":"
			"1}",
			NULL, &r) == 422,
	      "no match: %ld", r.status);
	resp_free(&r);
	CHECK(bulk_post(e.admin,
			"{\"type\":\"lock\",\"filter\":{\"sort\":\"owner\"},\"expected_count\":1}",
			NULL, &r) == 400 &&
		      strstr(r.body, "filter.sort") != NULL,
	      "bad filter: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	CHECK(bulk_post(e.admin, "{\"type\":\"lock\",\"filter\":{}}", NULL, &r) == 422 &&
		      strstr(r.body, "expected_count") != NULL,
	      "everything without expected_count: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	CHECK(admin_token(e.admin, "helpdesk", hdtok, sizeof(hdtok)) == 0, "helpdesk token");
	hd = client_new(&e.s, hdtok);
	CHECK(bulk_post(hd, "{\"type\":\"wipe\",\"filter\":{},\"expected_count\":301}", NULL, &r) ==
		      403,
	      "helpdesk bulk wipe: %ld", r.status);
	resp_free(&r);
	client_free(hd);

	/* The real device parks; the bulk must wake it. */
	CHECK(drain(&d, dc) == 0, "could not drain pending work");
	a.d = &d;
	a.c = pc;
	pthread_create(&th, NULL, poll_thread, &a);
	CHECK(wait_parked(&e, 1) == 0, "the poll never parked");
	snprintf(body, sizeof(body),
		 "{\"type\":\"lock\",\"reason\":\"<b>lost</b> batch\",\"filter\":{\"owner\":\"%s\","
		 "\"status\":null},\"expected_count\":301}",
		 TEAM);
	t0 = now_s();
	CHECK(bulk_post(e.admin, body, "bulk-key-1", &r) == 202, "bulk: %ld %s", r.status,
	      r.body ?: "");
	CHECK(resp_str(&r, "id", id, sizeof(id)) == 0 && strncmp(id, "blk_", 4) == 0, "bulk id");
	CHECK(resp_header(&r, "Location", sql, sizeof(sql)) == 0 && strstr(sql, id) != NULL,
	      "Location");
	resp_free(&r);
	/* The same key and body: the same bulk; another body: refused. */
	CHECK(bulk_post(e.admin, body, "bulk-key-1", &r) == 202 &&
		      resp_str(&r, "id", id2, sizeof(id2)) == 0 && strcmp(id, id2) == 0,
	      "idempotent replay: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	CHECK(bulk_post(e.admin,
			"{\"type\":\"lock\",\"filter\":{\"owner\":\"" TEAM "\"},"
			"\"expected_count\":301}",
			"bulk-key-1", &r) == 422,
	      "key reused: %ld", r.status);
	resp_free(&r);
	pthread_join(th, NULL);
	CHECK(a.rc == 0 && a.r.status == 200 && strstr(a.r.body, "\"lock\"") != NULL,
	      "parked poll: %ld %s", a.r.status, a.r.body ?: "");
	CHECK(a.t_done - t0 < 2.0, "parked device woke %.2f s after the POST", a.t_done - t0);
	resp_free(&a.r);

	j = bulk_wait(e.admin, id);
	CHECK(j != NULL, "bulk never finished");
	CHECK(jint(j, "queued") == 296 && jint(j, "already_pending") == 3 &&
		      jint(j, "skipped") == 2 && jint(j, "expected_count") == 301,
	      "counts: queued %lld pending %lld skipped %lld", jint(j, "queued"),
	      jint(j, "already_pending"), jint(j, "skipped"));
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(j, "filter"), "owner"))
			     ?: "",
		     TEAM) == 0,
	      "filter shown");
	json_decref(j);
	CHECK(once_each(&e, "lock", 299) == 0, "each device one lock");
	/* Each queued command audited as a single one; the bulk's start and end once. */
	CHECK(db_int(&e, "SELECT count(*) FROM audit WHERE action = 'command.create' AND "
			 "detail LIKE '%reason=<b>lost</b> batch'") == 296,
	      "per-device audit entries");
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM audit WHERE target = '%s' AND action IN ('command.bulk', "
		 "'command.bulk.done')",
		 id);
	CHECK(db_int(&e, sql) == 2, "bulk audit entries");
	client_free(dc);
	client_free(pc);
	dev_fini(&d);
	env_down(&e);
}

/* Starts e's server with bulk batches of 5 devices (many commits: a kill lands mid-way). */
static int
start_small_batches(struct env *e)
{
	char path[PATH_MAX + 16];
	const char *extra[] = {"--config", path, NULL};
	FILE *f;

	snprintf(path, sizeof(path), "%s/small-batches.conf", e->s.dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs("bulk_batch = 5\n", f);
	fclose(f);
	if (srv_start(&e->s, extra) != 0)
		return -1;
	client_free(e->admin); /* the port is new */
	e->admin = client_new(&e->s, e->s.admin);
	return e->admin ? 0 : -1;
}

#define KILL_N 2000

/* SIGKILL mid-bulk, restart: the bulk goes on from its cursor; each device one wipe. */
static void
test_bulk_kill_resume(void)
{
	struct env e;
	struct device_sim d;
	struct client *dc;
	char body[256], id[64], path[128];
	long long done = 0, at_kill;
	struct resp r;
	json_t *j;

	CHECK(env_up(&e, "bulkkill") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, TEAM) == 0, "enroll");
	CHECK(import(&e, d.id, KILL_N) == 0, "import");
	CHECK(srv_stop(&e.s, SIGTERM) == 0, "stop");
	CHECK(start_small_batches(&e) == 0, "restart with small batches");
	snprintf(body, sizeof(body),
		 "{\"type\":\"wipe\",\"filter\":{\"owner\":\"%s\"},\"expected_count\":%d}", TEAM,
		 KILL_N + 1);
	CHECK(bulk_post(e.admin, body, NULL, &r) == 202 && resp_str(&r, "id", id, sizeof(id)) == 0,
	      "bulk: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/commands/bulk/%s", id);
	for (int i = 0; i < 2000 && done < 100; i++) {
		j = NULL;
		if (client_req(e.admin, "GET", path, NULL, NULL, &r) == 0 && r.status == 200)
			j = resp_json(&r);
		resp_free(&r);
		done = j ? jint(j, "done") : 0;
		json_decref(j);
		usleep(2000);
	}
	srv_stop(&e.s, SIGKILL);
	snprintf(path, sizeof(path), "SELECT queued FROM bulk_ops WHERE id = '%s'", id);
	at_kill = db_int(&e, path);
	CHECK(at_kill > 0 && at_kill < KILL_N + 1,
	      "the kill did not land mid-bulk (%lld of %d queued)", at_kill, KILL_N + 1);
	CHECK(once_each(&e, "wipe", at_kill) == 0, "commands and cursor disagree after the kill");
	CHECK(start_small_batches(&e) == 0, "restart after the kill");
	j = bulk_wait(e.admin, id);
	CHECK(j != NULL, "bulk never finished after the restart");
	CHECK(jint(j, "queued") == KILL_N + 1, "queued %lld of %d", jint(j, "queued"), KILL_N + 1);
	json_decref(j);
	CHECK(once_each(&e, "wipe", KILL_N + 1) == 0, "each device one wipe after the restart");
	printf("    killed at %lld of %d queued; resumed to all\n", at_kill, KILL_N + 1);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

/* Two servers on one PostgreSQL database, both working bulks: each device queued once. */
static void
test_bulk_two_servers(void)
{
	struct env a, b;
	struct device_sim d;
	struct client *dc;
	char body[256], id[64], cmd[PATH_MAX * 4];
	struct resp r;
	json_t *j;

	CHECK(env_pg != NULL, "runs on PostgreSQL only (test_bulk_pg lists it)");
	CHECK(env_up(&a, "bulk2a") == 0, "server A did not start");
	dc = client_new(&a.s, NULL);
	CHECK(enroll_one(&a, dc, &d, TEAM) == 0, "enroll");
	CHECK(import(&a, d.id, KILL_N) == 0, "import");
	CHECK(srv_stop(&a.s, SIGTERM) == 0, "stop A");
	CHECK(start_small_batches(&a) == 0, "A with small batches");
	memset(&b, 0, sizeof(b));
	CHECK(srv_init(&b.s, "bulk2b") == 0, "B's directory");
	snprintf(b.s.database, sizeof(b.s.database), "%s", a.s.database);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && cp -a '%s/keys' '%s/' && cp '%s/admin-token' '%s/'", b.s.dir,
		 a.s.dir, b.s.dir, a.s.dir, b.s.dir);
	CHECK(system(cmd) == 0 && start_small_batches(&b) == 0, "server B did not start");
	/* Two bulks at once, one POSTed to each server: both servers' workers run. */
	snprintf(body, sizeof(body),
		 "{\"type\":\"wipe\",\"filter\":{\"owner\":\"%s\"},\"expected_count\":%d}", TEAM,
		 KILL_N + 1);
	CHECK(bulk_post(a.admin, body, NULL, &r) == 202 && resp_str(&r, "id", id, sizeof(id)) == 0,
	      "bulk on A: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	snprintf(body, sizeof(body),
		 "{\"type\":\"lock\",\"filter\":{\"owner\":\"%s\"},\"expected_count\":%d}", TEAM,
		 KILL_N + 1);
	CHECK(bulk_post(b.admin, body, NULL, &r) == 202, "bulk on B: %ld", r.status);
	resp_free(&r);
	j = bulk_wait(b.admin, id);
	CHECK(j != NULL && jint(j, "queued") == KILL_N + 1, "wipe bulk seen from B");
	json_decref(j);
	CHECK(once_each(&a, "wipe", KILL_N + 1) == 0, "each device one wipe");
	for (int i = 0; i < 600 && db_int(&a, "SELECT count(*) FROM bulk_ops WHERE state = "
					      "'running'") != 0;
	     i++)
		usleep(50000);
	CHECK(once_each(&a, "lock", KILL_N + 1) == 0, "each device one lock");
	client_free(dc);
	dev_fini(&d);
	env_down(&b);
	env_down(&a);
}

/* Several servers share a PostgreSQL database only: bulk_two_servers is test_bulk_pg's. */
static const struct t_case bulk_cases[] = {
	{"bulk_filter", test_bulk_filter},
	{"bulk_kill_resume", test_bulk_kill_resume},
	{"bulk_two_servers", test_bulk_two_servers},
};

#ifndef TEST_BULK_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(bulk_cases, ARRAY_SIZE(bulk_cases) - 1, argc, argv);
}
#endif
