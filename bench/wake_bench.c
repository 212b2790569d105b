/*
 * Wake latency across servers (issue 10 section 4, small scale): two cleave-servers A and B on
 * one PostgreSQL database of a private cluster (tests/lib/pgtest.h), BENCH_PARKED simulated
 * devices (default 200, at most 1,000: one thread and one connection each) enrolled and parked
 * in their long polls on A. Then, one device at a time, a refresh is POSTed to B (the other
 * server: the NOTIFY path) for half of a sample and to A itself (the in-process wake, the
 * in-run reference) for the other half; each delay runs from just before the POST to the
 * parked poll's answer, so it includes the POST's own round trip. Prints p50/p99 of each.
 * usage: wake_bench   (CLEAVE_BIN=DIR picks the server; BENCH_PARKED, BENCH_SAMPLE)
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
#include "testlib.h"
#include "util.h"

#define PARKED_MAX 1000

struct parked {
	struct device_sim d;
	struct client *c;
	_Atomic double t_done; /* 0 until its poll was answered */
	long status;
};

static void *
poll_one(void *p)
{
	struct parked *k = p;
	struct resp r;

	if (dev_req(&k->d, k->c, "POST", "/device/v1/checkin", "{\"wait\":50}", 0, &r) == 0)
		k->status = r.status;
	resp_free(&r);
	atomic_store(&k->t_done, now_s());
	return NULL;
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

static long
parked_on(struct client *admin)
{
	struct resp r;
	long n = -1;
	const char *at;

	if (client_req(admin, "GET", "/metrics", NULL, NULL, &r) == 0 && r.body != NULL &&
	    (at = strstr(r.body, "\ncleave_parked_connections ")) != NULL)
		n = strtol(at + 27, NULL, 10);
	resp_free(&r);
	return n;
}

/* Starts b on a's database with a's keys and admin token. */
static int
follow(struct srv *a, struct srv *b)
{
	char cmd[PATH_MAX * 4];

	if (srv_init(b, "wakebench-b") != 0)
		return -1;
	snprintf(b->database, sizeof(b->database), "%s", a->database);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && cp -a '%s/keys' '%s/' && cp '%s/admin-token' '%s/'", b->dir,
		 a->dir, b->dir, a->dir, b->dir);
	return system(cmd) == 0 ? srv_start(b, NULL) : -1;
}

/* Orders a refresh for k through admin and waits (5 s) for its poll's answer; ms or -1. */
static double
one_wake(struct client *admin, struct parked *k)
{
	double t0 = now_s();

	if (admin_command(admin, k->d.id, "refresh", NULL, 0) != 202)
		return -1;
	while (atomic_load(&k->t_done) == 0 && now_s() - t0 < 5)
		usleep(200);
	return atomic_load(&k->t_done) == 0 ? -1 : (atomic_load(&k->t_done) - t0) * 1000;
}

static int
run(struct srv *a, struct srv *b, int n, int sample)
{
	struct parked *k = calloc((size_t)n, sizeof(*k));
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	double *lat[2] = {calloc((size_t)sample, sizeof(double)),
			  calloc((size_t)sample, sizeof(double))};
	struct client *adm[2] = {client_new(a, a->admin), client_new(b, b->admin)};
	size_t got[2] = {0, 0};
	int started = 0, rc = -1;

	for (int i = 0; i < n; i++) {
		struct sim_applied ap = {{0}, 0};

		k[i].c = client_new(a, NULL);
		if (admin_enroll(adm[0], k[i].c, &k[i].d, "bench@example.com") != 0 ||
		    sim_settle(&k[i].d, k[i].c, &ap) != 0)
			goto out;
	}
	for (; started < n; started++)
		pthread_create(&th[started], NULL, poll_one, &k[started]);
	for (int i = 0; i < 500 && parked_on(adm[0]) < n; i++)
		usleep(20000);
	printf("parked on A: %ld of %d\n", parked_on(adm[0]), n);
	for (int i = 0; i < sample && i < n; i++) {
		int via = i % 2; /* 0: A itself, 1: B */
		double ms = one_wake(adm[via], &k[i]);

		if (ms >= 0)
			lat[via][got[via]++] = ms;
	}
	printf("RESULT parked=%d via=B n=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n, got[1],
	       pct(lat[1], got[1], 0.5), pct(lat[1], got[1], 0.99), pct(lat[1], got[1], 1.0));
	printf("RESULT parked=%d via=A n=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n, got[0],
	       pct(lat[0], got[0], 0.5), pct(lat[0], got[0], 0.99), pct(lat[0], got[0], 1.0));
	rc = got[0] + got[1] == (size_t)(sample < n ? sample : n) ? 0 : -1;
out:
	srv_stop(a, SIGTERM); /* answers every parked poll, so the threads end */
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < n; i++) {
		client_free(k[i].c);
		dev_fini(&k[i].d);
	}
	client_free(adm[0]);
	client_free(adm[1]);
	free(lat[0]);
	free(lat[1]);
	free(th);
	free(k);
	return rc;
}

int
main(void)
{
	const char *why = pgtest_skip_reason(), *e;
	int n = 200, sample = 100, rc;
	struct pgtest pg;
	struct srv a, b;

	if (why != NULL) {
		printf("skipped: %s\n", why);
		return 0;
	}
	e = getenv("BENCH_PARKED");
	if (e != NULL && atoi(e) > 0)
		n = atoi(e) > PARKED_MAX ? PARKED_MAX : atoi(e);
	e = getenv("BENCH_SAMPLE");
	if (e != NULL && atoi(e) > 0)
		sample = atoi(e);
	if (pgtest_start(&pg) != 0)
		return 1;
	memset(&b, 0, sizeof(b));
	rc = srv_init(&a, "wakebench-a") == 0 && srv_use_pg(&a, &pg) == 0 &&
			     srv_start(&a, NULL) == 0 && follow(&a, &b) == 0
		     ? run(&a, &b, n, sample)
		     : -1;
	if (rc != 0)
		printf("wake_bench: failed (server logs: %s, %s)\n", a.log, b.log);
	srv_cleanup(&b); /* stops what still runs; removes the data directories */
	srv_cleanup(&a);
	pgtest_stop(&pg);
	return rc == 0 ? 0 : 1;
}
