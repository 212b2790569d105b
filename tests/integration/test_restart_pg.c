/*
 * PostgreSQL restarted under a burst of admin POSTs (issue 10 section 3): three cleave-servers
 * on one database of a private cluster; threads POST commands and enrollment tokens to all
 * three while PostgreSQL is stopped (fast shutdown, or immediate: as a crash), kept down a
 * second and a half, and started again. Every request is answered within a bound, 201/202 or
 * 503 (never a 500), and every 201/202 exists afterwards, read from another server; /healthz
 * says 503 "database": "unavailable" during the outage and 200 after; the servers serve again
 * without being restarted: a device checks in, and a check-in parked on A is answered within a
 * second of a command POSTed to B (A's wake-up listener came back). Includes test_wake_pg.c
 * for its helpers. Skipped, with the reason, without PostgreSQL.
 */
#define TEST_WAKE_NO_MAIN
#include "test_wake_pg.c"

#include <stdatomic.h>

#define BURSTERS  6    /* two per server */
#define BURST_MAX 4000 /* requests one burster may make */
#define REQ_BOUND 10.0 /* seconds: no request may take longer */
#define DOWN_MS   1500

struct burst {
	struct env *on;
	const char *device; /* commands go to it */
	int n;              /* this burster's number */
	atomic_int *stop;
	/* Outcomes. */
	int count, accepted, unavailable;
	int bad;         /* another status, or no answer */
	char why[160];   /* the first bad one */
	double slowest;  /* seconds */
	char (*ids)[64]; /* what was accepted: "c:<id>" command, "e:<id>" enrollment token */
};

static void
burst_one(struct burst *b, int i)
{
	struct resp r;
	const char *path = "/api/v1/enrollment-tokens";
	char body[160], cpath[128];
	int is_cmd = (i + b->n) % 2 == 0;
	double t0 = now_s(), dt;
	int rc;

	if (is_cmd) {
		snprintf(cpath, sizeof(cpath), "/api/v1/devices/%s/commands", b->device);
		path = cpath;
		snprintf(body, sizeof(body), "{\"type\":\"refresh\",\"reason\":\"burst %d.%d\"}",
			 b->n, i);
	} else {
		snprintf(body, sizeof(body), "{\"owner\":\"burst%d.%d@example.com\",\"uses\":1}",
			 b->n, i);
	}
	rc = client_req(b->on->admin, "POST", path, body, NULL, &r);
	dt = now_s() - t0;
	if (dt > b->slowest)
		b->slowest = dt;
	b->count++;
	if (rc == 0 && (r.status == 201 || r.status == 202)) {
		char id[48] = "";

		if (resp_str(&r, "id", id, sizeof(id)) == 0 && b->accepted < BURST_MAX)
			snprintf(b->ids[b->accepted++], 64, "%c:%s", is_cmd ? 'c' : 'e', id);
		else if (b->bad++ == 0)
			snprintf(b->why, sizeof(b->why), "%s: %ld without an id", path, r.status);
	} else if (rc == 0 && r.status == 503) {
		b->unavailable++;
	} else if (b->bad++ == 0) {
		snprintf(b->why, sizeof(b->why), "%s: %s %ld: %.100s", path,
			 rc == 0 ? "HTTP" : "no answer", rc == 0 ? r.status : (long)rc,
			 r.body ? r.body : "");
	}
	resp_free(&r);
}

static void *
burst_thread(void *p)
{
	struct burst *b = p;

	for (int i = 0; i < BURST_MAX && !atomic_load(b->stop); i++) {
		burst_one(b, i);
		usleep(5000); /* a busy admin script, not a flood: the machine is shared */
	}
	return NULL;
}

struct health {
	struct env *on;
	atomic_int *stop;
	int ok, down, bad;
};

/* Probes /healthz every 100 ms: 200 "ok" or 503 "unavailable" with "database" saying so. */
static void *
health_thread(void *p)
{
	struct health *h = p;
	struct client *c = client_new(&h->on->s, NULL);

	while (c != NULL && !atomic_load(h->stop)) {
		struct resp r;

		client_set_timeout(c, (long)REQ_BOUND);
		if (client_req(c, "GET", "/healthz", NULL, NULL, &r) == 0 && r.status == 200 &&
		    r.body && strstr(r.body, "\"database\":\"ok\""))
			h->ok++;
		else if (r.status == 503 && r.body &&
			 strstr(r.body, "\"database\":\"unavailable\"") &&
			 strstr(r.body, "\"store\":\"postgresql\""))
			h->down++;
		else
			h->bad++;
		resp_free(&r);
		usleep(100000);
	}
	client_free(c);
	return NULL;
}

/*
 * The ids of every enrollment token server from lists, as " id1 id2 ... " (the caller frees);
 * NULL on a failure. Bounded: 200 pages of 200.
 */
static char *
etoken_ids(struct env *from, char *why, size_t wcap)
{
	char path[256], cursor[128] = "";
	size_t cap = 1 << 20, len = 1;
	char *all = malloc(cap);

	if (all == NULL)
		return NULL;
	strcpy(all, " ");
	for (int page = 0; page < 200; page++) {
		long st = 0;
		json_t *j, *it;
		size_t k;

		snprintf(path, sizeof(path), "/api/v1/enrollment-tokens?limit=200%s%s",
			 cursor[0] ? "&cursor=" : "", cursor);
		j = client_get_json(from->admin, path, &st);
		if (st != 200 || j == NULL) {
			snprintf(why, wcap, "%s: HTTP %ld", path, st);
			json_decref(j);
			free(all);
			return NULL;
		}
		json_array_foreach(json_object_get(j, "items"), k, it)
		{
			const char *id = jstr(it, "id");

			if (len + strlen(id) + 2 < cap)
				len += (size_t)sprintf(all + len, "%s ", id);
		}
		it = json_object_get(j, "next_cursor");
		snprintf(cursor, sizeof(cursor), "%s",
			 json_is_string(it) ? json_string_value(it) : "");
		json_decref(j);
		if (cursor[0] == '\0')
			return all;
	}
	snprintf(why, wcap, "more than 200 pages");
	free(all);
	return NULL;
}

/* Every accepted id of b, read from server from: 0 when all are there. */
static int
all_there(struct env *from, const struct burst *b, const char *etokens, char *why, size_t cap)
{
	for (int i = 0; i < b->accepted; i++) {
		char path[128], key[72];
		json_t *j;
		long st = 0;

		if (b->ids[i][0] == 'e') {
			snprintf(key, sizeof(key), " %s ", b->ids[i] + 2);
			if (strstr(etokens, key) == NULL) {
				snprintf(why, cap,
					 "enrollment token %s is not listed by another server",
					 b->ids[i] + 2);
				return -1;
			}
			continue;
		}
		snprintf(path, sizeof(path), "/api/v1/commands/%s", b->ids[i] + 2);
		j = client_get_json(from->admin, path, &st);
		json_decref(j);
		if (st != 200) {
			snprintf(why, cap, "%s answered %ld on another server", path, st);
			return -1;
		}
	}
	return 0;
}

/* Waits (bounded: 15 s) until every server's /healthz is 200 again. */
static int
all_healthy(struct env *e, int n)
{
	for (int t = 0; t < 150; t++) {
		int ok = 0;

		for (int i = 0; i < n; i++) {
			struct resp r;

			if (client_req(e[i].admin, "GET", "/healthz", NULL, NULL, &r) == 0 &&
			    r.status == 200)
				ok++;
			resp_free(&r);
		}
		if (ok == n)
			return 0;
		usleep(100000);
	}
	return -1;
}

static void
restart_mid_burst(const char *mode)
{
	struct env e[NSRV];
	struct burst b[BURSTERS];
	struct health h = {0};
	pthread_t bt[BURSTERS], ht;
	atomic_int stop = 0;
	struct client *dca = NULL, *pca = NULL, *dcb = NULL;
	struct device_sim d, target;
	struct poll_arg a;
	char why[256], id[64];
	int accepted = 0, unavailable = 0;
	long long up = -1;
	double dt;

	CHECK(fleet_up(e, NSRV, "restart") == 0, "three servers on one database did not start");
	dca = client_new(&e[0].s, NULL);
	pca = client_new(&e[0].s, NULL);
	dcb = client_new(&e[1].s, NULL);
	CHECK(enroll_one(&e[0], dca, &d, "ana@example.com") == 0, "enroll d on A");
	CHECK(enroll_one(&e[1], dcb, &target, "bo@example.com") == 0, "enroll the target on B");
	CHECK(drain(&d, dca) == 0, "drain on A");
	for (int i = 0; i < NSRV; i++)
		client_set_timeout(e[i].admin, (long)REQ_BOUND + 5);
	h.on = &e[1];
	h.stop = &stop;
	CHECK(pthread_create(&ht, NULL, health_thread, &h) == 0, "health thread");
	for (int i = 0; i < BURSTERS; i++) {
		b[i] = (struct burst){
			.on = &e[i % NSRV], .device = target.id, .n = i, .stop = &stop};
		b[i].ids = calloc(BURST_MAX, sizeof(*b[i].ids));
		CHECK(b[i].ids != NULL, "memory");
	}
	/* Each burster on a client of its own (a client is one curl handle, one thread's). */
	for (int i = 0; i < BURSTERS; i++) {
		struct env *mine = calloc(1, sizeof(*mine));

		CHECK(mine != NULL, "memory");
		*mine = *b[i].on;
		mine->admin = client_new(&b[i].on->s, b[i].on->s.admin);
		client_set_timeout(mine->admin, (long)REQ_BOUND + 5);
		b[i].on = mine;
		CHECK(pthread_create(&bt[i], NULL, burst_thread, &b[i]) == 0, "burst thread");
	}
	usleep(700000);
	CHECK(pgtest_bounce(env_pg, mode, DOWN_MS) == 0, "PostgreSQL did not come back (%s)", mode);
	usleep(1500000);
	atomic_store(&stop, 1);
	for (int i = 0; i < BURSTERS; i++)
		pthread_join(bt[i], NULL);
	pthread_join(ht, NULL);
	for (int i = 0; i < BURSTERS; i++) {
		CHECK(b[i].bad == 0, "burster %d: %d bad answers, the first: %s", i, b[i].bad,
		      b[i].why);
		CHECK(b[i].slowest < REQ_BOUND, "burster %d: a request took %.1f s", i,
		      b[i].slowest);
		accepted += b[i].accepted;
		unavailable += b[i].unavailable;
	}
	printf("  %s: %d accepted, %d answered 503; /healthz %d ok, %d unavailable\n", mode,
	       accepted, unavailable, h.ok, h.down);
	CHECK(unavailable > 0, "no request met the outage (all %d accepted)", accepted);
	CHECK(accepted > 0, "nothing was accepted");
	CHECK(h.bad == 0 && h.down > 0 && h.ok > 0,
	      "/healthz: %d ok, %d unavailable, %d other answers", h.ok, h.down, h.bad);
	CHECK(all_healthy(e, NSRV) == 0, "a server's /healthz did not come back to 200");
	/* Each answered 201/202 is there, read from the next server over. */
	for (int i = 0; i < BURSTERS; i++) {
		struct env *other = &e[(i % NSRV + 1) % NSRV];
		char *etokens = etoken_ids(other, why, sizeof(why));
		int r;

		CHECK(etokens != NULL, "the enrollment tokens could not be listed: %s", why);
		r = all_there(other, &b[i], etokens, why, sizeof(why));
		free(etokens);
		CHECK(r == 0, "burster %d: %s", i, why);
	}
	/* Devices are served again, and A hears B's orders again (its listener came back). */
	CHECK(drain(&d, dca) == 0, "d cannot check in on A after the restart");
	for (int t = 0; t < 100 && up != 1; t++) {
		up = metric(&e[0], "cleave_wake_listener_up");
		if (up != 1)
			usleep(100000);
	}
	CHECK(up == 1, "A's wake-up listener did not come back");
	dt = order_parked(&e[0], &e[1], &a, &d, pca, "refresh", id, sizeof(id));
	CHECK(dt >= 0 && dt < 1.0, "after the restart a refresh took %.3f s (HTTP %ld)", dt,
	      a.r.status);
	resp_free(&a.r);
	for (int i = 0; i < BURSTERS; i++) {
		client_free(b[i].on->admin);
		free(b[i].on);
		free(b[i].ids);
	}
	client_free(dca);
	client_free(pca);
	client_free(dcb);
	dev_fini(&d);
	dev_fini(&target);
	fleet_down(e, NSRV);
}

static void
test_fast_restart_mid_burst(void)
{
	restart_mid_burst("fast");
}

static void
test_crash_restart_mid_burst(void)
{
	restart_mid_burst("immediate");
}

static const struct t_case restart_cases[] = {
	{"fast_restart_mid_burst", test_fast_restart_mid_burst},
	{"crash_restart_mid_burst", test_crash_restart_mid_burst},
};

int
main(int argc, char **argv)
{
	(void)server_cases;
	(void)wake_cases;
	return t_run_pg(restart_cases, ARRAY_SIZE(restart_cases), argc, argv, &env_pg);
}
