/*
 * Several cleave-servers on one PostgreSQL database (issue 10 sections 2 and 3): a check-in
 * parked on one server is woken by a command or policy change made on another (NOTIFY), a
 * receipt posted anywhere is visible everywhere, and when the listen connection is cut the
 * sweep still delivers and the listener comes back. The servers share one database of a
 * private cluster (tests/lib/pgtest.h) and their keys (DATA/keys copied from the first, as a
 * deployment provisions them). Skipped, with the reason, when PostgreSQL is not installed.
 * SQLite's single-server wake-up is test_server's longpoll_wakeup, unchanged.
 */
#define TEST_SERVER_NO_MAIN
#include "test_server.c"

#include <libpq-fe.h>

#define NSRV 3

/* A session of the test's own that LISTENs on the servers' channel, to count what they send. */
static PGconn *
tap_open(const char *url)
{
	PGconn *db = PQconnectdb(url);

	if (PQstatus(db) == CONNECTION_OK)
		PQclear(PQexec(db, "LISTEN cleave_wake"));
	return db;
}

/* Notifications the tap received: *mine those naming exactly payload, the rest returned. */
static int
tap_count(PGconn *db, const char *payload, int *mine)
{
	PGnotify *n;
	int other = 0;

	usleep(200000); /* every commit is done; let the last notifications arrive */
	PQconsumeInput(db);
	while ((n = PQnotifies(db)) != NULL) {
		if (strcmp(n->extra, payload) == 0)
			(*mine)++;
		else
			other++;
		PQfreemem(n);
	}
	return other;
}

/* Starts e as one more server on lead's database, with lead's keys and admin token. */
static int
env_follow(struct env *lead, struct env *e, const char *tag)
{
	char cmd[PATH_MAX * 4];

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0)
		return -1;
	snprintf(e->s.database, sizeof(e->s.database), "%s", lead->s.database);
	/* The ticket and audit keys are the deployment's, not one server's. */
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && cp -a '%s/keys' '%s/' && cp '%s/admin-token' '%s/'", e->s.dir,
		 lead->s.dir, e->s.dir, lead->s.dir, e->s.dir);
	if (system(cmd) != 0 || srv_start(&e->s, NULL) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	return e->admin ? 0 : -1;
}

static int
fleet_up(struct env *e, int n, const char *tag)
{
	memset(e, 0, sizeof(*e) * (size_t)n);
	if (env_up(&e[0], tag) != 0)
		return -1;
	for (int i = 1; i < n; i++)
		if (env_follow(&e[0], &e[i], tag) != 0)
			return -1;
	return 0;
}

static void
fleet_down(struct env *e, int n)
{
	for (int i = n - 1; i >= 0; i--)
		if (e[i].s.dir[0] != '\0')
			env_down(&e[i]);
}

/* The value of metric name in server e's /metrics; -1 when it is not there. */
static long long
metric(struct env *e, const char *name)
{
	char key[96];
	struct resp r;
	long long v = -1;
	const char *at;

	snprintf(key, sizeof(key), "\n%s ", name);
	if (client_req(e->admin, "GET", "/metrics", NULL, NULL, &r) == 0 && r.body != NULL &&
	    (at = strstr(r.body, key)) != NULL)
		v = strtoll(at + strlen(key), NULL, 10);
	resp_free(&r);
	return v;
}

/* The backend pid of server e's wake-up listener (pg_stat_activity); -1 when there is none. */
static long long
listener_pid(struct env *e)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(max(pid), -1) FROM pg_stat_activity WHERE application_name = "
		 "'cleave-listen-%d'",
		 (int)e->s.pid);
	return pgtest_int(e->s.database, sql);
}

/* Parks a 30 s check-in of d on the server of c (a thread); 0 once that server holds it. */
static int
park(struct env *on, struct poll_arg *a, pthread_t *th, struct device_sim *d, struct client *c)
{
	memset(a, 0, sizeof(*a));
	a->d = d;
	a->c = c;
	if (pthread_create(th, NULL, poll_thread, a) != 0)
		return -1;
	return wait_parked(on, 1);
}

/*
 * Parks d's check-in on server on (c talks to it), orders type for d on server from, and waits
 * for the poll's answer (a->r). Seconds from just before the order to the answer, when that
 * answer is a 200; else -1.
 */
static double
order_parked(struct env *on, struct env *from, struct poll_arg *a, struct device_sim *d,
	     struct client *c, const char *type, char *id, size_t cap)
{
	pthread_t th;
	double t;
	long st;

	if (park(on, a, &th, d, c) != 0)
		return -1;
	t = now_s();
	st = admin_command(from->admin, d->id, type, id, cap);
	pthread_join(th, NULL);
	if (st != 202 || a->rc != 0 || a->r.status != 200)
		return -1;
	return a->t_done - t;
}

/* The first command of a check-in answer: its id and type into id/type, its ticket decoded. */
static int
first_command(const struct resp *r, char *id, char *type, uint8_t ticket[TICKET_LEN])
{
	json_t *j = resp_json(r), *c = json_array_get(json_object_get(j, "commands"), 0);
	int ok = c != NULL;

	if (ok) {
		snprintf(id, 64, "%s", jstr(c, "id"));
		snprintf(type, 32, "%s", jstr(c, "type"));
		ok = ticket == NULL || b64_decode(ticket, TICKET_LEN, jstr(c, "ticket"),
						  strlen(jstr(c, "ticket"))) == TICKET_LEN;
	}
	json_decref(j);
	return ok ? 0 : -1;
}

static void
test_wipe_across_servers(void)
{
	struct env e[NSRV];
	struct client *dca = NULL, *pca = NULL, *dcb = NULL;
	struct device_sim d;
	struct poll_arg a;
	uint8_t ticket[TICKET_LEN], rcpt[RECEIPT_LEN];
	char id[64], got[64], type[32], path[160], body[1024], rb64[600], payload[48];
	PGconn *tap = NULL;
	int mine = 0, other;
	double dt;
	struct resp r;
	json_t *j;
	long st;

	CHECK(fleet_up(e, NSRV, "wake3") == 0, "three servers on one database did not start");
	tap = tap_open(e[0].s.database);
	CHECK(PQstatus(tap) == CONNECTION_OK, "the test's own LISTEN session");
	dca = client_new(&e[0].s, NULL);
	pca = client_new(&e[0].s, NULL);
	dcb = client_new(&e[1].s, NULL);
	CHECK(enroll_one(&e[0], dca, &d, "ana@example.com") == 0, "enroll on A");
	CHECK(drain(&d, dca) == 0, "drain on A");
	/*
	 * B holds nothing of this device: only A can answer, and only if told. Several rounds,
	 * so that a sweep of A's falling within the second by chance cannot pass for the wake.
	 */
	for (int round = 0; round < 3; round++) {
		dt = order_parked(&e[0], &e[1], &a, &d, pca, "refresh", id, sizeof(id));
		CHECK(dt >= 0 && dt < 1.0,
		      "round %d: A's parked poll answered %ld %.3f s after "
		      "the order on B",
		      round, a.r.status, dt);
		resp_free(&a.r);
		CHECK(drain(&d, dca) == 0, "drain on A");
	}
	dt = order_parked(&e[0], &e[1], &a, &d, pca, "wipe", id, sizeof(id));
	CHECK(dt >= 0 && dt < 1.0, "A's parked poll answered %ld %.3f s after the wipe on B",
	      a.r.status, dt);
	CHECK(first_command(&a.r, got, type, ticket) == 0 && strcmp(got, id) == 0,
	      "A's poll got %s", a.r.body);
	resp_free(&a.r);
	/* The receipt goes to B; C (which saw none of it) shows it verified. */
	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", id);
	CHECK(dev_req(&d, dcb, "POST", path, NULL, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	dev_receipt(&d, ticket, 0, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body), "{\"status\":\"completed\",\"receipt\":\"%s\"}", rb64);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
	CHECK(dev_req(&d, dcb, "POST", path, body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	j = get_json(e[2].admin, path, &st);
	CHECK(st == 200 && strcmp(jstr(j, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(j, "verified")) &&
		      json_is_string(json_object_get(j, "receipt")),
	      "C shows the wipe as %s", j ? jstr(j, "status") : "?");
	json_decref(j);
	/* One notification per order; none from enrollment, check-ins, acks or results. */
	snprintf(payload, sizeof(payload), "d:%s", d.id);
	other = tap_count(tap, payload, &mine);
	CHECK(mine == 4 && other == 0, "%d notifications for the 4 orders, %d others", mine, other);
	/* Every server but the one that sent them heard them. */
	CHECK(metric(&e[0], "cleave_wake_notifications_total") == 4 &&
		      metric(&e[1], "cleave_wake_notifications_total") == 0 &&
		      metric(&e[2], "cleave_wake_notifications_total") == 4,
	      "notifications heard by A, B, C: %lld, %lld, %lld",
	      metric(&e[0], "cleave_wake_notifications_total"),
	      metric(&e[1], "cleave_wake_notifications_total"),
	      metric(&e[2], "cleave_wake_notifications_total"));
	PQfinish(tap);
	client_free(dca);
	client_free(pca);
	client_free(dcb);
	dev_fini(&d);
	fleet_down(e, NSRV);
}

/* Check-ins reporting policy standard v1 applied, completing what comes, until one is empty. */
static int
drain_applied(struct device_sim *d, struct client *dc)
{
	for (int i = 0; i < 5; i++) {
		char id[64], type[32], path[128];
		struct resp r;
		int st;

		if (dev_req(d, dc, "POST", "/device/v1/checkin",
			    "{\"wait\":0,\"state\":{\"policy_name\":\"standard\","
			    "\"policy_version\":1}}",
			    0, &r) != 0)
			return -1;
		st = r.status == 204 ? 0 : first_command(&r, id, type, NULL);
		resp_free(&r);
		if (r.status == 204)
			return 0;
		if (st != 0)
			continue;
		snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
		dev_req(d, dc, "POST", path, "{\"status\":\"completed\"}", 0, &r);
		resp_free(&r);
	}
	return -1;
}

static void
test_policy_change_across_servers(void)
{
	struct env e[2];
	struct client *dca = NULL, *pca = NULL;
	struct device_sim d;
	struct poll_arg a;
	pthread_t th;
	char got[64], type[32];
	double t_put;
	struct resp r;

	CHECK(fleet_up(e, 2, "wakepol") == 0, "two servers on one database did not start");
	CHECK(client_req(e[0].admin, "PUT", "/api/v1/policies/standard",
			 "{\"offline\":{\"lock_after_hours\":48,\"wipe_after_days\":10}}", NULL,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 201);
	resp_free(&r);
	dca = client_new(&e[0].s, NULL);
	pca = client_new(&e[0].s, NULL);
	CHECK(enroll_one(&e[0], dca, &d, "bo@example.com") == 0, "enroll on A");
	CHECK(drain_applied(&d, dca) == 0, "drain on A");
	CHECK(park(&e[0], &a, &th, &d, pca) == 0, "the check-in did not park on A");
	t_put = now_s();
	CHECK(client_req(e[1].admin, "PUT", "/api/v1/policies/standard",
			 "{\"offline\":{\"lock_after_hours\":24,\"wipe_after_days\":10}}", NULL,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	pthread_join(th, NULL);
	CHECK(a.rc == 0 && a.r.status == 200, "A's parked poll answered %ld", a.r.status);
	CHECK(a.t_done - t_put < 2.0, "A's parked poll woke %.3f s after the change on B",
	      a.t_done - t_put);
	CHECK(first_command(&a.r, got, type, NULL) == 0 && strcmp(type, "policy") == 0,
	      "A's poll got %s", a.r.body);
	resp_free(&a.r);
	client_free(dca);
	client_free(pca);
	dev_fini(&d);
	fleet_down(e, 2);
}

static void
test_listen_cut_sweep_delivers(void)
{
	struct env e[2];
	struct client *dca = NULL, *pca = NULL;
	struct device_sim d;
	struct poll_arg a;
	pthread_t th;
	char id[64], got[64], type[32], sql[160];
	long long pid0, pid1 = -1;
	double t_post, dt;
	long long sweeps;

	CHECK(fleet_up(e, 2, "wakecut") == 0, "two servers on one database did not start");
	dca = client_new(&e[0].s, NULL);
	pca = client_new(&e[0].s, NULL);
	CHECK(enroll_one(&e[0], dca, &d, "cy@example.com") == 0, "enroll on A");
	CHECK(drain(&d, dca) == 0, "drain on A");
	pid0 = listener_pid(&e[0]);
	CHECK(pid0 > 0, "A's listener (application_name cleave-listen-%d) is not connected",
	      (int)e[0].s.pid);
	CHECK(metric(&e[0], "cleave_wake_listener_up") == 1, "A's listener is not up");
	sweeps = metric(&e[0], "cleave_wake_sweep_woken_total");
	/*
	 * B's admin connection (and the worker thread and database session behind it) set up
	 * before the cut: the lock's POST must commit before A's listener is back (100 ms).
	 */
	{
		char path[96];
		long st;
		json_t *j;

		snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
		j = get_json(e[1].admin, path, &st);
		json_decref(j);
		CHECK(st == 200, "B does not show the device (HTTP %ld)", st);
	}
	/*
	 * Cut A's listen connection, then queue on B at once: no one on A listens when B's
	 * notification goes out, so only A's sweep can deliver it.
	 */
	CHECK(park(&e[0], &a, &th, &d, pca) == 0, "the check-in did not park on A");
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", pid0);
	CHECK(pgtest_exec(e[0].s.database, sql) == 0, "terminate A's listener");
	t_post = now_s();
	CHECK(admin_command(e[1].admin, d.id, "lock", id, sizeof(id)) == 202, "lock on B");
	pthread_join(th, NULL);
	CHECK(a.rc == 0 && a.r.status == 200, "A's parked poll answered %ld", a.r.status);
	/* Sweeps run every 3 s and at once when the listener is back: well within 5 s. */
	CHECK(a.t_done - t_post < 5.0, "the lock reached A's parked poll %.3f s after the POST",
	      a.t_done - t_post);
	CHECK(first_command(&a.r, got, type, NULL) == 0 && strcmp(got, id) == 0, "A's poll got %s",
	      a.r.body);
	resp_free(&a.r);
	CHECK(metric(&e[0], "cleave_wake_sweep_woken_total") > sweeps,
	      "the lock must have come by A's sweep (see %s)", e[0].s.log);
	/* The listener is back on a new backend, and wakes at once again. */
	for (int i = 0; i < 100 && (pid1 <= 0 || pid1 == pid0); i++) {
		usleep(50000);
		pid1 = listener_pid(&e[0]);
	}
	CHECK(pid1 > 0 && pid1 != pid0, "A's listener did not reconnect (pid %lld)", pid1);
	CHECK(metric(&e[0], "cleave_wake_listener_up") == 1,
	      "A's metrics say its listener is down");
	CHECK(drain(&d, dca) == 0, "drain on A");
	dt = order_parked(&e[0], &e[1], &a, &d, pca, "refresh", id, sizeof(id));
	CHECK(dt >= 0 && dt < 1.0, "after the reconnect a refresh took %.3f s (HTTP %ld)", dt,
	      a.r.status);
	resp_free(&a.r);
	client_free(dca);
	client_free(pca);
	dev_fini(&d);
	fleet_down(e, 2);
}

static const struct t_case wake_cases[] = {
	{"wipe_across_servers", test_wipe_across_servers},
	{"policy_change_across_servers", test_policy_change_across_servers},
	{"listen_cut_sweep_delivers", test_listen_cut_sweep_delivers},
};

#ifndef TEST_WAKE_NO_MAIN
int
main(int argc, char **argv)
{
	(void)server_cases; /* test_server's own cases run in test_server and test_server_pg */
	return t_run_pg(wake_cases, ARRAY_SIZE(wake_cases), argc, argv, &env_pg);
}
#endif
