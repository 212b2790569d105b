/*
 * A bulk wipe of the whole fleet by filter (issue 10 section 4): DEVICES devices (default
 * 100,000), BENCH_PARKED of them (default 200, at most 1,000) simulated devices enrolled
 * through the API and parked in their long polls, the rest written straight into the stopped
 * server's database (copies of an enrolled device with their own ids and keys). Then one POST
 * /api/v1/commands/bulk {"type":"wipe","filter":{},"expected_count":N} and, meanwhile, single
 * wipe POSTs sent back to back to other devices. Measured: the POST's own latency; POST to
 * the bulk done (every device's command queued with its counter, signed ticket and audit
 * entry); the longest batch transaction (cleave_bulk_batch_max_seconds) and, on SQLite, the
 * store's longest write-lock hold; the single wipes' latency during the bulk against the same
 * POST on the idle server; and POST to each parked device's answer carrying its wipe. The
 * parked devices come first in the bulk's walk (row id order: their rows were made before the
 * copies), so POST -> answer is the POST, their batch and the wake-up; a poll that runs out
 * (50 s) polls again.
 *
 * On SQLite one server does it all. On PostgreSQL (a private cluster, tests/lib/pgtest.h) two
 * servers share the database: the bulk is POSTed to A and the devices are parked on B, so
 * their wake-up is the cross-server path (one notification per batch, then B's sweep).
 * usage: bulk_bench [DEVICES]   (BENCH_BACKEND=sqlite|pg|both, default both; BENCH_WIPES=0 for
 *        the bulk alone; BENCH_PARKED; BENCH_WEBHOOK=1: a webhook subscription to
 *        command.queued, so every command also writes an outbox event; CLEAVE_BIN)
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentsim.h"
#include "pgtest.h"
#include "proccpu.h"
#include "testlib.h"
#include "util.h"

#define PARKED_MAX 1000
#define WIPES_MAX  20000

static int with_wipes = 1; /* BENCH_WIPES=0: the bulk alone, no single wipes meanwhile */
/* BENCH_WEBHOOK=1: a webhook subscription wants command.queued, so each command is an event. */
static int with_webhook;

struct parked {
	struct device_sim d;
	struct sim_applied ap;
	struct client *c;
	_Atomic double t_done;
	int got_wipe;
};

struct run {
	struct srv a, b; /* b: PostgreSQL only, where the devices park */
	int n, parked;
	struct parked *p;
	atomic_int stop;
	double wipes[WIPES_MAX];
	size_t nwipes;
	int wipe_errors;
	pid_t postmaster; /* PostgreSQL only */
	double cpu[2];    /* during the bulk: the servers' CPU-s, PostgreSQL's (-1: unknown) */
};

/* The cluster's postmaster (the first line of its pid file), or 0. */
static pid_t
postmaster_of(const struct pgtest *pg)
{
	char path[160], buf[64];

	snprintf(path, sizeof(path), "%s/data/postmaster.pid", pg->dir);
	return proc_read(path, buf, sizeof(buf)) > 0 ? (pid_t)strtol(buf, NULL, 10) : 0;
}

/* CPU-s so far of the run's servers (into c[0]) and of PostgreSQL (c[1], -1 on SQLite). */
static void
cpu_now(const struct run *rn, double c[2])
{
	c[0] = proc_cpu_s(rn->a.pid) + (rn->b.pid ? proc_cpu_s(rn->b.pid) : 0);
	c[1] = rn->postmaster ? pg_cpu_s(rn->postmaster) : -1;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n ? v[(size_t)((double)(n - 1) * p + 0.5)] : -1;
}

static void *
poll_one(void *arg)
{
	struct parked *k = arg;
	char body[256];
	struct resp r;

	double t0 = now_s();

	/* Polls again when a poll ends empty (its 50 s ran out), for up to 5 minutes. */
	sim_checkin_body(&k->ap, 50, body, sizeof(body));
	while (!k->got_wipe && now_s() - t0 < 300) {
		if (dev_req(&k->d, k->c, "POST", "/device/v1/checkin", body, 0, &r) != 0) {
			resp_free(&r);
			break;
		}
		k->got_wipe = r.status == 200 && r.body && strstr(r.body, "\"wipe\"") != NULL;
		resp_free(&r);
	}
	atomic_store(&k->t_done, now_s());
	return NULL;
}

/* Single wipes to imported devices, back to back, until told to stop. */
static void *
wiper(void *arg)
{
	struct run *rn = arg;
	struct client *c = client_new(&rn->a, rn->a.admin);

	for (int i = 0; c && !atomic_load(&rn->stop) && rn->nwipes < WIPES_MAX; i++) {
		char path[96];
		struct resp r;

		snprintf(path, sizeof(path), "/api/v1/devices/bulk_%07d/commands",
			 (i * 7919) % (rn->n - rn->parked));
		if (client_req(c, "POST", path, "{\"type\":\"wipe\"}", NULL, &r) == 0 &&
		    r.status == 202)
			rn->wipes[rn->nwipes++] = r.seconds * 1000.0;
		else
			rn->wipe_errors++;
		resp_free(&r);
	}
	client_free(c);
	return NULL;
}

/* A metric's value from server s's /metrics; -1 when absent. */
static double
metric(struct srv *s, const char *name)
{
	struct client *c = client_new(s, s->admin);
	char key[96];
	struct resp r;
	double v = -1;
	const char *at;

	snprintf(key, sizeof(key), "\n%s ", name);
	if (c && client_req(c, "GET", "/metrics", NULL, NULL, &r) == 0 && r.body &&
	    (at = strstr(r.body, key)) != NULL)
		v = strtod(at + strlen(key), NULL);
	resp_free(&r);
	client_free(c);
	return v;
}

/*
 * The imported devices bulk_0000000.., copies of device tmpl with their own id and key. The
 * hypervisor key is tmpl's, and so is its fingerprint: left empty, the server filled it in at
 * its next start, one UPDATE a device (100,000 round trips), which outlasted srv_start's 15 s
 * on a busy machine ("server A did not start again") and left every row updated once before
 * the bulk.
 */
static int
import(struct srv *s, const char *tmpl, int n)
{
	static const char cols[] = "id, owner, status, device_key, hv_key, measurement, "
				   "enrollment_token_id, model, os, agent_version, enrolled_at, "
				   "key_epoch, attest_status, hv_fingerprint";
	static const char copy[] = "t.hv_key, t.measurement, t.enrollment_token_id, t.model, "
				   "t.os, t.agent_version, t.enrolled_at, t.key_epoch, "
				   "t.attest_status, t.hv_fingerprint";
	char sql[1200];

	if (s->database[0] != '\0')
		snprintf(sql, sizeof(sql),
			 "INSERT INTO devices (%s) SELECT 'bulk_' || lpad((i - 1)::text, 7, '0'), "
			 "'user' || i || '@corp.example', 'active', sha256(('k' || i)::bytea), %s "
			 "FROM generate_series(1, %d) i, devices t WHERE t.id = '%s'; ANALYZE",
			 cols, copy, n, tmpl);
	else
		snprintf(sql, sizeof(sql),
			 "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < "
			 "%d) INSERT INTO devices (%s) SELECT printf('bulk_%%07d', i - 1), 'user' "
			 "|| "
			 "i || '@corp.example', 'active', randomblob(32), %s FROM s, devices t "
			 "WHERE "
			 "t.id = '%s'; ANALYZE",
			 n, cols, copy, tmpl);
	return srv_db_exec(s, sql);
}

/* B on A's database with A's keys (PostgreSQL). */
static int
follow(struct srv *a, struct srv *b)
{
	char cmd[PATH_MAX * 4];

	if (srv_init(b, "bulkbench-b") != 0)
		return -1;
	snprintf(b->database, sizeof(b->database), "%s", a->database);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && cp -a '%s/keys' '%s/' && cp '%s/admin-token' '%s/'", b->dir,
		 a->dir, b->dir, a->dir, b->dir);
	return system(cmd) == 0 ? srv_start(b, NULL) : -1;
}

/* Enrolls and settles the parked devices on A, imports the rest, restarts A (and B). */
static int
build(struct run *rn, struct pgtest *pg)
{
	struct client *admin, *anon;
	int r = 0;

	if (srv_init(&rn->a, "bulkbench") != 0 || srv_use_pg(&rn->a, pg) != 0 ||
	    srv_start(&rn->a, NULL) != 0) {
		printf("bulk_bench: server A did not start\n");
		return -1;
	}
	admin = client_new(&rn->a, rn->a.admin);
	anon = client_new(&rn->a, NULL);
	for (int i = 0; r == 0 && i < rn->parked; i++) {
		char owner[64];

		snprintf(owner, sizeof(owner), "parked%04d@corp.example", i);
		r = admin_enroll(admin, anon, &rn->p[i].d, owner);
		if (r == 0)
			r = sim_settle(&rn->p[i].d, anon, &rn->p[i].ap);
		if (r != 0)
			printf("bulk_bench: enrolling parked device %d failed\n", i);
	}
	client_free(admin);
	client_free(anon);
	if (r == 0 && (r = srv_stop(&rn->a, SIGTERM)) != 0)
		printf("bulk_bench: server A did not stop on SIGTERM\n");
	if (r == 0 && (r = import(&rn->a, rn->p[0].d.id, rn->n - rn->parked)) != 0)
		printf("bulk_bench: importing %d devices failed\n", rn->n - rn->parked);
	if (r == 0 && (r = srv_start(&rn->a, NULL)) != 0)
		printf("bulk_bench: server A did not start again\n");
	if (r == 0 && pg != NULL && (r = follow(&rn->a, &rn->b)) != 0)
		printf("bulk_bench: server B did not start\n");
	return r;
}

/* Idle reference: the median of 31 single wipe POSTs. */
static double
idle_wipe_ms(struct run *rn, struct client *admin)
{
	double v[31];
	size_t k = 0;

	for (int i = 0; i < 31; i++) {
		char path[96];
		struct resp r;

		snprintf(path, sizeof(path), "/api/v1/devices/bulk_%07d/commands",
			 rn->n - rn->parked - 100 + i);
		if (client_req(admin, "POST", path, "{\"type\":\"wipe\"}", NULL, &r) == 0 &&
		    r.status == 202)
			v[k++] = r.seconds * 1000.0;
		resp_free(&r);
	}
	return pct(v, k, 0.5);
}

/* POSTs the bulk wipe and polls it to done; seconds from the POST to done, or -1. */
static double
bulk_wipe(struct run *rn, struct client *admin, double t0, double *post_ms, long long *queued)
{
	char body[160], id[64] = "", path[128];
	struct resp r;

	snprintf(body, sizeof(body),
		 "{\"type\":\"wipe\",\"reason\":\"bench\",\"filter\":{},\"expected_count\":%d}",
		 rn->n);
	if (client_req(admin, "POST", "/api/v1/commands/bulk", body, NULL, &r) != 0 ||
	    r.status != 202 || resp_str(&r, "id", id, sizeof(id)) != 0) {
		printf("  bulk POST: HTTP %ld %s\n", r.status, r.body ? r.body : "");
		resp_free(&r);
		return -1;
	}
	*post_ms = r.seconds * 1000.0;
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/commands/bulk/%s", id);
	for (int i = 0; i < 6000; i++) { /* 120 s */
		json_t *j = NULL;
		int done = 0;

		if (client_req(admin, "GET", path, NULL, NULL, &r) == 0 && r.status == 200)
			j = resp_json(&r);
		resp_free(&r);
		done = j &&
		       strcmp(json_string_value(json_object_get(j, "state")) ?: "", "done") == 0;
		*queued = j ? (long long)json_integer_value(json_object_get(j, "queued")) : 0;
		json_decref(j);
		if (done)
			return now_s() - t0;
		usleep(20000);
	}
	return -1;
}

static void
report(struct run *rn, const char *backend, double post_ms, double took, long long queued,
       double idle_ms, double t0)
{
	double *lat = malloc(sizeof(double) * (size_t)rn->parked);
	size_t k = 0;
	int got = 0;

	for (int i = 0; lat && i < rn->parked; i++) {
		if (rn->p[i].got_wipe) {
			got++;
			lat[k++] = (atomic_load(&rn->p[i].t_done) - t0) * 1000.0;
		}
	}
	printf("%s: %d devices, %d parked%s\n", backend, rn->n, rn->parked,
	       rn->b.pid ? " on server B, bulk POSTed to A" : "");
	printf("  bulk POST answered 202 in %.1f ms; POST -> all queued and signed: %.2f s "
	       "(%lld queued, the rest already had a wipe from the single POSTs)\n",
	       post_ms, took, queued);
	/* CPU moves less than wall time with the load others put on a shared machine. */
	printf("  CPU meanwhile: servers %.2f s, PostgreSQL %.2f s; per device queued %.1f + %.1f "
	       "us\n",
	       rn->cpu[0], rn->cpu[1], queued > 0 ? rn->cpu[0] * 1e6 / (double)queued : -1,
	       queued > 0 && rn->cpu[1] >= 0 ? rn->cpu[1] * 1e6 / (double)queued : -1);
	printf("  longest batch transaction %.1f ms over %.0f batches; store write-lock hold max "
	       "%.1f ms\n",
	       metric(&rn->a, "cleave_bulk_batch_max_seconds") * 1000.0,
	       metric(&rn->a, "cleave_bulk_batches_total") +
		       (rn->b.pid ? metric(&rn->b, "cleave_bulk_batches_total") : 0),
	       metric(&rn->a, "cleave_store_write_hold_max_seconds") * 1000.0);
	if (rn->b.pid)
		printf("  server B's longest batch %.1f ms\n",
		       metric(&rn->b, "cleave_bulk_batch_max_seconds") * 1000.0);
	printf("  single wipe POSTs: idle p50 %.1f ms; during the bulk n=%zu p50 %.1f / p99 %.1f "
	       "/ max %.1f ms, errors %d\n",
	       idle_ms, rn->nwipes, pct(rn->wipes, rn->nwipes, 0.5),
	       pct(rn->wipes, rn->nwipes, 0.99), pct(rn->wipes, rn->nwipes, 1.0), rn->wipe_errors);
	printf("  parked devices answered with their wipe: %d of %d; POST -> answer p50 %.0f / "
	       "max %.0f ms\n",
	       got, rn->parked, pct(lat, k, 0.5), pct(lat, k, 1.0));
	free(lat);
}

static int
park_all(struct run *rn, pthread_t *th)
{
	struct srv *on = rn->b.pid ? &rn->b : &rn->a;

	for (int i = 0; i < rn->parked; i++) {
		rn->p[i].c = client_new(on, NULL);
		pthread_create(&th[i], NULL, poll_one, &rn->p[i]);
	}
	for (int i = 0; i < 1000; i++) {
		if (metric(on, "cleave_parked_connections") >= rn->parked)
			return 0;
		usleep(20000);
	}
	return -1;
}

/* A subscription to command.queued at a port where nothing listens: events pile up. */
static int
subscribe(struct client *admin)
{
	struct resp r;
	int ok = client_req(admin, "POST", "/api/v1/webhooks",
			    "{\"url\":\"http://127.0.0.1:9/hook\",\"events\":[\"command.queued\"]}",
			    NULL, &r) == 0 &&
		 r.status == 201;

	if (!ok)
		printf("bulk_bench: the webhook subscription failed: HTTP %ld\n", r.status);
	resp_free(&r);
	return ok ? 0 : -1;
}

static int
one_backend(int n, int parked, struct pgtest *pg)
{
	struct run *rn = calloc(1, sizeof(*rn));
	pthread_t *th = calloc((size_t)parked, sizeof(*th)), wt;
	struct client *admin = NULL;
	double t0, took, post_ms = -1, idle, c0[2];
	long long queued = 0;
	int rc = -1;

	if (rn == NULL || th == NULL || (rn->p = calloc((size_t)parked, sizeof(*rn->p))) == NULL)
		goto out;
	rn->n = n;
	rn->parked = parked;
	if (build(rn, pg) != 0) {
		/* srv_cleanup keeps a server's directory, and says where its log is, after this. */
		t_failed_now = 1;
		printf("bulk_bench: building the fleet failed (server A's log %s is kept)\n",
		       rn->a.log);
		goto out;
	}
	admin = client_new(&rn->a, rn->a.admin);
	if (with_webhook && subscribe(admin) != 0)
		goto out;
	idle = idle_wipe_ms(rn, admin);
	if (park_all(rn, th) != 0) {
		printf("bulk_bench: the devices did not park\n");
		goto out;
	}
	if (with_wipes)
		pthread_create(&wt, NULL, wiper, rn);
	usleep(200000);
	rn->postmaster = pg ? postmaster_of(pg) : 0;
	cpu_now(rn, c0);
	t0 = now_s();
	took = bulk_wipe(rn, admin, t0, &post_ms, &queued);
	cpu_now(rn, rn->cpu);
	for (int k = 0; k < 2; k++)
		rn->cpu[k] = c0[k] >= 0 && rn->cpu[k] >= 0 ? rn->cpu[k] - c0[k] : -1;
	atomic_store(&rn->stop, 1);
	if (with_wipes)
		pthread_join(wt, NULL);
	for (int i = 0; i < parked; i++)
		pthread_join(th[i], NULL);
	report(rn, pg ? "PostgreSQL" : "SQLite", post_ms, took, queued, idle, t0);
	rc = took > 0 ? 0 : -1;
	t_failed_now = rc != 0; /* a bulk that did not finish keeps the logs too */
out:
	client_free(admin);
	for (int i = 0; rn && rn->p && i < parked; i++) {
		client_free(rn->p[i].c);
		if (rn->p[i].d.key != NULL)
			dev_fini(&rn->p[i].d);
	}
	if (rn != NULL) {
		if (rn->b.dir[0])
			srv_cleanup(&rn->b);
		srv_cleanup(&rn->a);
		free(rn->p);
	}
	free(rn);
	free(th);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *be = getenv("BENCH_BACKEND") ? getenv("BENCH_BACKEND") : "both";
	int n = argc > 1 ? atoi(argv[1]) : 100000, parked = 200, rc = 0;
	struct pgtest pg;

	if (getenv("BENCH_PARKED") != NULL)
		parked = atoi(getenv("BENCH_PARKED"));
	if (getenv("BENCH_WIPES") != NULL)
		with_wipes = atoi(getenv("BENCH_WIPES")) != 0;
	if (getenv("BENCH_WEBHOOK") != NULL)
		with_webhook = atoi(getenv("BENCH_WEBHOOK")) != 0;
	if (parked < 1 || parked > PARKED_MAX || n < parked + 300) {
		fprintf(stderr, "bulk_bench: BENCH_PARKED 1..%d, DEVICES at least 300 more\n",
			PARKED_MAX);
		return 2;
	}
	if (strcmp(be, "pg") != 0)
		rc |= one_backend(n, parked, NULL);
	if (strcmp(be, "sqlite") != 0) {
		const char *why = pgtest_skip_reason();

		if (why != NULL) {
			printf("PostgreSQL: skipped: %s\n", why);
		} else if (pgtest_start(&pg) == 0) {
			rc |= one_backend(n, parked, &pg);
			pgtest_stop(&pg);
		} else {
			rc = -1;
		}
	}
	return rc == 0 ? 0 : 1;
}
