/*
 * A policy change at fleet size (issue 10 §0): with 10,000 / 50,000 / 100,000 devices following
 * the default policy, change it and measure what the rest of the server sees meanwhile: the
 * longest hold of the store's write lock (cleave_store_write_hold_max_seconds in /metrics), a
 * stream of wipe POSTs sent back to back during the change, and how fast devices parked in
 * their long polls are answered with their new policy command. The in-run references are the
 * same wipe POST and GET /healthz on an idle server, just before the change.
 *
 * The fleet: BENCH_PARKED (default 100, at most 2,000) simulated devices are enrolled through
 * the API (they check in, park, take and apply their policy commands as an agent does); the
 * rest are written straight into the stopped server's SQLite file (a prepared INSERT of a
 * device row: random keys, one in ten following a second policy), then the server restarts.
 * The store's warnings of write-lock holds over 50 ms are printed from the server's log.
 * usage: policy_bench [DEVICES...]   (default 10000 50000 100000; needs CLEAVE_BIN or build/bin)
 */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agentsim.h"
#include "testlib.h"
#include "util.h"

#define PARKED_MAX 2000

static int n_parked = 100; /* BENCH_PARKED, at most PARKED_MAX */
#define WIPES_MAX 20000

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(double *v, size_t n, double p)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(size_t)((double)(n - 1) * p + 0.5)];
}

static long
put_policy(struct client *admin, const char *name, int lock_hours)
{
	char path[128], body[128];
	struct resp r;
	long st = -1;

	snprintf(path, sizeof(path), "/api/v1/policies/%s", name);
	snprintf(body, sizeof(body),
		 "{\"offline\":{\"lock_after_hours\":%d,\"wipe_after_days\":30}}", lock_hours);
	if (client_req(admin, "PUT", path, body, NULL, &r) == 0)
		st = r.status;
	resp_free(&r);
	return st;
}

/* Devices bench_00000000.. with random keys; one in ten follows "kiosk", the rest the default. */
static int
import(const char *dir, int n)
{
	char path[PATH_MAX + 16];
	sqlite3 *db;
	sqlite3_stmt *q = NULL;
	int64_t now = (int64_t)time(NULL);
	uint8_t key[64];
	int rc;

	snprintf(path, sizeof(path), "%s/cleave.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
			db,
			"INSERT INTO devices (id, owner, status, device_key, hv_key, "
			"measurement, enrollment_token_id, model, os, agent_version, "
			"policy_name, key_epoch, enrolled_at, last_seen_at, "
			"epoch_since, attest_status) VALUES (?,?,'active',?,?,zeroblob(32),"
			"'etk_bench','Pixel 9','Android 16','0.1.0',?,1,?,?,?,'ok')",
			-1, &q, NULL);
	for (int i = 0; rc == SQLITE_OK && i < n; i++) {
		char id[32], owner[64];

		snprintf(id, sizeof(id), "bench_%08d", i);
		snprintf(owner, sizeof(owner), "user%07d@corp.example", i);
		if (crypto_random(key, sizeof(key)) != 0)
			rc = SQLITE_ERROR;
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(q, 2, owner, -1, SQLITE_TRANSIENT);
		sqlite3_bind_blob(q, 3, key, 32, SQLITE_TRANSIENT);
		sqlite3_bind_blob(q, 4, key + 32, 32, SQLITE_TRANSIENT);
		sqlite3_bind_text(q, 5, i % 10 == 0 ? "kiosk" : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 6, now - 86400 * 30);
		sqlite3_bind_int64(q, 7, now - 3600);
		sqlite3_bind_int64(q, 8, now - 86400);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(q);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT; ANALYZE;", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "import: %s\n", sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The store's write-lock figures from /metrics: longest hold (ms) and holds over 50 ms. */
static int
hold_stats(struct client *admin, double *max_ms, long *over)
{
	struct resp r;
	const char *p;
	int ok = -1;

	if (client_req(admin, "GET", "/metrics", NULL, NULL, &r) == 0 && r.status == 200 &&
	    (p = strstr(r.body, "\ncleave_store_write_hold_max_seconds ")) != NULL) {
		*max_ms = strtod(p + 38, NULL) * 1000.0;
		p = strstr(r.body, "\ncleave_store_write_holds_over_50ms_total ");
		*over = p ? strtol(p + 42, NULL, 10) : -1;
		ok = 0;
	}
	resp_free(&r);
	return ok;
}

/* One timed request; ms, or -1 when it failed or got an unexpected status. */
static double
timed_req(struct client *c, const char *method, const char *path, const char *body, long want)
{
	struct resp r;
	double ms = -1;

	if (client_req(c, method, path, body, NULL, &r) == 0 && r.status == want)
		ms = r.seconds * 1000.0;
	resp_free(&r);
	return ms;
}

struct run {
	struct srv s;
	int n; /* imported devices */
	struct device_sim dev[PARKED_MAX];
	struct sim_applied ap[PARKED_MAX];
	double woken_ms[PARKED_MAX];
	int got_new[PARKED_MAX];
	_Atomic double t_change; /* now_s() when the change was sent; 0 before */
	atomic_int stop;
	atomic_int next_wipe;
	double wipes[WIPES_MAX];   /* ms each */
	double wipe_at[WIPES_MAX]; /* now_s() when each was sent */
	size_t nwipes;
	int wipe_errors;
};

static void *
wiper(void *p)
{
	struct run *rn = p;
	struct client *c = client_new(&rn->s, rn->s.admin);

	while (c && !atomic_load(&rn->stop) && rn->nwipes < WIPES_MAX) {
		char path[96];
		double at = now_s(), ms;

		snprintf(path, sizeof(path), "/api/v1/devices/bench_%08d/commands",
			 atomic_fetch_add(&rn->next_wipe, 1) % rn->n);
		ms = timed_req(c, "POST", path, "{\"type\":\"wipe\"}", 202);
		if (ms < 0) {
			rn->wipe_errors++;
		} else {
			rn->wipe_at[rn->nwipes] = at;
			rn->wipes[rn->nwipes++] = ms;
		}
	}
	client_free(c);
	return NULL;
}

struct parked_arg {
	struct run *rn;
	int i;
};

/* One device parks in its long poll and times the answer from the moment of the change. */
static void *
parker(void *p)
{
	struct parked_arg *pa = p;
	struct run *rn = pa->rn;
	struct client *c = client_new(&rn->s, NULL);
	char body[256];
	struct resp r;
	json_t *j;

	rn->woken_ms[pa->i] = -1;
	sim_checkin_body(&rn->ap[pa->i], 50, body, sizeof(body));
	if (c != NULL &&
	    dev_req(&rn->dev[pa->i], c, "POST", "/device/v1/checkin", body, 0, &r) == 0) {
		double t0 = atomic_load(&rn->t_change);

		if (t0 > 0)
			rn->woken_ms[pa->i] = (now_s() - t0) * 1000.0;
		j = r.status == 200 ? resp_json(&r) : NULL;
		if (j != NULL) {
			json_t *cmd = json_array_get(json_object_get(j, "commands"), 0);

			rn->got_new[pa->i] =
				cmd != NULL &&
				sim_run_command(&rn->dev[pa->i], c, cmd, &rn->ap[pa->i]) == 0 &&
				rn->ap[pa->i].version == 2;
		}
		json_decref(j);
		resp_free(&r);
	}
	client_free(c);
	return NULL;
}

/* Prints the server log's lines that contain what (the store's long-hold warnings). */
static void
log_lines(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	char line[512];

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, what) != NULL)
			printf("  server: %s", line);
	if (f != NULL)
		fclose(f);
}

/* Server up with the policies and n_parked enrolled devices, then the import and a restart. */
static int
build_fleet(struct run *rn, int total)
{
	struct client *admin, *anon;
	char owner[64];
	int r = 0;

	rn->n = total - n_parked;
	if (srv_init(&rn->s, "policy_bench") != 0 || srv_start(&rn->s, NULL) != 0)
		return -1;
	admin = client_new(&rn->s, rn->s.admin);
	anon = client_new(&rn->s, NULL);
	if (put_policy(admin, "standard", 72) != 201 || put_policy(admin, "kiosk", 24) != 201)
		r = -1;
	for (int i = 0; r == 0 && i < n_parked; i++) {
		snprintf(owner, sizeof(owner), "parked%03d@corp.example", i);
		r = admin_enroll(admin, anon, &rn->dev[i], owner);
	}
	client_free(admin);
	client_free(anon);
	if (r == 0 && srv_stop(&rn->s, SIGTERM) != 0)
		r = -1;
	if (r == 0 && (import(rn->s.dir, rn->n) != 0 || srv_start(&rn->s, NULL) != 0))
		r = -1;
	return r;
}

/* Latencies of the wipes sent in [from, to): p50, p99, max. */
static void
wipe_line(struct run *rn, const char *label, double from, double to)
{
	double *v = malloc(WIPES_MAX * sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; v != NULL && i < rn->nwipes; i++)
		if (rn->wipe_at[i] >= from && rn->wipe_at[i] < to)
			v[n++] = rn->wipes[i];
	printf("  wipe POSTs %s: n=%zu p50 %.2f / p99 %.2f / max %.2f ms\n", label, n,
	       pct(v, n, 0.5), pct(v, n, 0.99), pct(v, n, 1.0));
	free(v);
}

static void
print_row(struct run *rn, int total, double put_ms, double hold0, double hold1, long over,
	  double ref_wipe, double ref_health)
{
	double woken[PARKED_MAX];
	size_t nw = 0;
	int got = 0;

	for (int i = 0; i < n_parked; i++) {
		if (rn->woken_ms[i] >= 0)
			woken[nw++] = rn->woken_ms[i];
		got += rn->got_new[i];
	}
	printf("%d devices (%d followers of the changed policy)\n", total,
	       n_parked + rn->n - (rn->n + 9) / 10);
	printf("  reference, idle: GET /healthz p50 %.2f ms; wipe POST p50 %.2f ms\n", ref_health,
	       ref_wipe);
	printf("  PUT /api/v1/policies/standard (the change): %.2f ms\n", put_ms);
	printf("  longest write-lock hold: %.2f ms before the change, %.2f ms after it; "
	       "holds over 50 ms: %ld\n",
	       hold0, hold1, over);
	wipe_line(rn, "while the parked devices attach", 0, atomic_load(&rn->t_change));
	wipe_line(rn, "from the change until 0.3 s after the last parked answer",
		  atomic_load(&rn->t_change), 1e18);
	printf("  wipe errors: %d\n", rn->wipe_errors);
	printf("  %d parked devices answered with their v2 policy command: %d; change sent -> "
	       "answer p50 %.1f / max %.1f ms\n",
	       n_parked, got, pct(woken, nw, 0.5), pct(woken, nw, 1.0));
}

static int
one_size(int total)
{
	struct run *rn = calloc(1, sizeof(*rn));
	struct parked_arg pa[PARKED_MAX];
	pthread_t th[PARKED_MAX], wt;
	struct client *admin = NULL, *dc = NULL;
	double t0, put_ms, ref[31], hold0 = -1, hold1 = -1;
	long over = -1;
	int failed = 0;

	if (rn == NULL || build_fleet(rn, total) != 0) {
		fprintf(stderr, "policy_bench: building %d devices failed\n", total);
		failed = 1;
		goto out;
	}
	admin = client_new(&rn->s, rn->s.admin);
	dc = client_new(&rn->s, NULL);
	for (int i = 0; i < n_parked && !failed; i++) /* each takes v1, as an agent would */
		failed = sim_settle(&rn->dev[i], dc, &rn->ap[i]) != 0;
	hold_stats(admin, &hold0, &over);
	for (int i = 0; i < 31; i++) {
		char path[96];

		snprintf(path, sizeof(path), "/api/v1/devices/bench_%08d/commands", rn->n - 1 - i);
		ref[i] = timed_req(admin, "POST", path, "{\"type\":\"wipe\"}", 202);
	}
	{
		double w = pct(ref, 31, 0.5);

		for (int i = 0; i < 31; i++)
			ref[i] = timed_req(admin, "GET", "/healthz", NULL, 200);
		ref[0] = w;
		ref[1] = pct(ref + 1, 30, 0.5);
	}
	pthread_create(&wt, NULL, wiper, rn);
	for (int i = 0; i < n_parked; i++) {
		pa[i].rn = rn;
		pa[i].i = i;
		pthread_create(&th[i], NULL, parker, &pa[i]);
	}
	sleep(2 + n_parked / 250); /* all parked (a check-in takes a few ms here) */
	t0 = now_s();
	atomic_store(&rn->t_change, t0);
	put_ms = timed_req(admin, "PUT", "/api/v1/policies/standard",
			   "{\"offline\":{\"lock_after_hours\":48,\"wipe_after_days\":30}}", 200);
	for (int i = 0; i < n_parked; i++)
		pthread_join(th[i], NULL);
	usleep(300000);
	atomic_store(&rn->stop, 1);
	pthread_join(wt, NULL);
	hold_stats(admin, &hold1, &over);
	if (put_ms < 0)
		failed = 1;
	print_row(rn, total, put_ms, hold0, hold1, over, ref[0], ref[1]);
out:
	client_free(admin);
	client_free(dc);
	if (rn != NULL) {
		for (int i = 0; i < n_parked; i++)
			if (rn->dev[i].key != NULL)
				dev_fini(&rn->dev[i]);
		log_lines(rn->s.log, "held the write lock");
		srv_cleanup(&rn->s);
	}
	free(rn);
	return failed;
}

int
main(int argc, char **argv)
{
	static const int dflt[] = {10000, 50000, 100000};
	int failed = 0;

	if (getenv("BENCH_PARKED") != NULL)
		n_parked = atoi(getenv("BENCH_PARKED"));
	if (n_parked < 1 || n_parked > PARKED_MAX) {
		fprintf(stderr, "policy_bench: BENCH_PARKED must be 1 to %d\n", PARKED_MAX);
		return 2;
	}
	printf("policy change at fleet size: %d parked devices among the rest imported\n",
	       n_parked);
	for (int i = 0; i < (argc > 1 ? argc - 1 : (int)ARRAY_SIZE(dflt)); i++) {
		int n = argc > 1 ? atoi(argv[i + 1]) : dflt[i];

		if (n <= n_parked) {
			fprintf(stderr, "policy_bench: %d devices is too few\n", n);
			return 2;
		}
		failed |= one_size(n);
	}
	return failed;
}
