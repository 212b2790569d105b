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
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
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

/* Starts b (named tag) on a's database with a's keys and admin token. */
static int
follow(struct srv *a, struct srv *b, const char *tag)
{
	char cmd[PATH_MAX * 4];

	if (srv_init(b, tag) != 0)
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

/* ---- `wake_bench scale`: issue 10 section 4 in one run ---- */

#define SCALE_MAX   8
#define RESULTS_CAP 16384
#define SCALE_S     1800 /* the whole run's bound, seconds */

struct scale {
	struct pgtest pg;
	char postmaster[16]; /* its pid, as text */
	char loadgen[PATH_MAX];
	char results[RESULTS_CAP]; /* the RESULT lines of every loadgen run, tagged */
	size_t nres;
	int servers, agents, sample, burst, rounds, conns, seconds;
	double t_end;
};

static int
env_int(const char *name, int def, int lo, int hi)
{
	const char *e = getenv(name);
	int v = e != NULL ? atoi(e) : def;

	return v < lo ? lo : v > hi ? hi : v;
}

/* Seconds left of the run's bound, at least 30. */
static int
left_s(const struct scale *sc)
{
	double l = sc->t_end - now_s();

	return l < 30 ? 30 : (int)l;
}

/*
 * Runs loadgen with argv (NULL-terminated) and waits for it; a hung one is ended by an alarm
 * set before exec (budget + 60 s). Its RESULT lines are echoed and kept, tagged "run=TAG".
 * Returns its exit status, or -1.
 */
static int
loadgen_run(struct scale *sc, const char *tag, const char *const argv[], int budget)
{
	char line[4096];
	int fd[2], st = 0;
	pid_t pid;
	FILE *f;

	fflush(stdout);
	if (pipe(fd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		close(fd[0]);
		close(fd[1]);
		alarm((unsigned)budget + 60);
		execv(sc->loadgen, (char *const *)argv); /* execv does not write them */
		_exit(127);
	}
	close(fd[1]);
	f = pid > 0 ? fdopen(fd[0], "r") : NULL;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		int k;

		if (strncmp(line, "RESULT ", 7) != 0)
			continue;
		printf("RESULT run=%s %s", tag, line + 7);
		fflush(stdout);
		k = snprintf(sc->results + sc->nres, RESULTS_CAP - sc->nres, "RESULT run=%s %s",
			     tag, line + 7);
		if (k > 0 && sc->nres + (size_t)k < RESULTS_CAP)
			sc->nres += (size_t)k;
	}
	if (f != NULL)
		fclose(f);
	else
		close(fd[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One throughput run (signed check-ins, wait 0) against s; PostgreSQL's CPU is read too. */
static int
throughput_one(struct scale *sc, struct srv *s, const char *tag)
{
	char pid[16], token[PATH_MAX + 16], conns[16], secs[16], dl[16];
	int budget = left_s(sc);

	snprintf(pid, sizeof(pid), "%d", (int)s->pid);
	snprintf(token, sizeof(token), "%s/admin-token", s->dir);
	snprintf(conns, sizeof(conns), "%d", sc->conns);
	snprintf(secs, sizeof(secs), "%d", sc->seconds);
	snprintf(dl, sizeof(dl), "%d", budget);
	return loadgen_run(sc, tag,
			   (const char *const[]){sc->loadgen,
						 "throughput",
						 "--target",
						 "cleave",
						 "--url",
						 s->url,
						 "--cacert",
						 s->cacert,
						 "--admin-token-file",
						 token,
						 "--pid",
						 pid,
						 "--pg-pid",
						 sc->postmaster,
						 "--conns",
						 conns,
						 "--seconds",
						 secs,
						 "--deadline",
						 dl,
						 NULL},
			   budget);
}

/* Signed check-ins per server CPU-second: one server on SQLite, one on PostgreSQL, alternating. */
static int
scale_throughput(struct scale *sc)
{
	struct srv lite, pg;
	int rc = -1;

	memset(&lite, 0, sizeof(lite));
	memset(&pg, 0, sizeof(pg));
	if (srv_init(&lite, "scale-sqlite") == 0 && srv_start(&lite, NULL) == 0 &&
	    srv_init(&pg, "scale-pg") == 0 && srv_use_pg(&pg, &sc->pg) == 0 &&
	    srv_start(&pg, NULL) == 0) {
		rc = 0;
		for (int round = 1; round <= sc->rounds && rc == 0; round++) {
			printf("throughput round %d of %d\n", round, sc->rounds);
			rc = throughput_one(sc, &lite, "sqlite");
			if (rc == 0)
				rc = throughput_one(sc, &pg, "postgresql");
		}
	}
	srv_cleanup(&pg);
	srv_cleanup(&lite);
	return rc;
}

/* The wake-up counters of s's /metrics, for the record. */
static void
print_wake_metrics(struct srv *s, int k)
{
	struct client *c = client_new(s, s->admin);
	struct resp r;

	if (c != NULL && client_req(c, "GET", "/metrics", NULL, NULL, &r) == 0 && r.body) {
		for (char *l = strtok(r.body, "\n"); l != NULL; l = strtok(NULL, "\n"))
			if (strncmp(l, "cleave_wake_", 12) == 0 ||
			    strncmp(l, "cleave_parked", 13) == 0)
				printf("server %c: %s\n", 'A' + k, l);
	}
	if (c != NULL)
		resp_free(&r);
	client_free(c);
}

/* "A,B,C" of field f of the first n servers, into out. */
static void
join(const struct srv *s, int n, int f, char *out, size_t cap)
{
	size_t at = 0;

	out[0] = '\0';
	for (int k = 0; k < n && at < cap; k++) {
		int w = f == 0 ? snprintf(out + at, cap - at, "%s%s", k ? "," : "", s[k].url)
			: f == 1
				? snprintf(out + at, cap - at, "%s%s", k ? "," : "", s[k].cacert)
				: snprintf(out + at, cap - at, "%s%d", k ? "," : "", (int)s[k].pid);

		at += w > 0 ? (size_t)w : 0;
	}
}

/* N servers on one database, the agents split over them, wipes POSTed across. */
static int
scale_parked(struct scale *sc)
{
	static struct srv s[SCALE_MAX];
	char urls[SCALE_MAX * 130], certs[SCALE_MAX * PATH_MAX], pids[SCALE_MAX * 12], tag[32];
	char token[PATH_MAX + 16], agents[16], sample[16], burst[16], dl[16];
	int ok, rc = -1, budget;

	memset(s, 0, sizeof(s));
	ok = srv_init(&s[0], "scale-a") == 0 && srv_use_pg(&s[0], &sc->pg) == 0 &&
	     srv_start(&s[0], NULL) == 0;
	for (int k = 1; ok && k < sc->servers; k++) {
		snprintf(tag, sizeof(tag), "scale-%c", 'a' + k);
		ok = follow(&s[0], &s[k], tag) == 0;
	}
	if (ok) {
		join(s, sc->servers, 0, urls, sizeof(urls));
		join(s, sc->servers, 1, certs, sizeof(certs));
		join(s, sc->servers, 2, pids, sizeof(pids));
		snprintf(token, sizeof(token), "%s/admin-token", s[0].dir);
		snprintf(agents, sizeof(agents), "%d", sc->agents);
		snprintf(sample, sizeof(sample), "%d", sc->sample);
		snprintf(burst, sizeof(burst), "%d", sc->burst);
		budget = left_s(sc);
		snprintf(dl, sizeof(dl), "%d", budget);
		printf("parked: %d agents over %d servers on one PostgreSQL database\n", sc->agents,
		       sc->servers);
		rc = loadgen_run(
			sc, "cluster",
			(const char *const[]){sc->loadgen,  "parked",  "--target",
					      "cleave",     "--url",   urls,
					      "--cacert",   certs,     "--admin-token-file",
					      token,        "--pid",   pids,
					      "--agents",   agents,    "--sample",
					      sample,       "--burst", burst,
					      "--deadline", dl,        NULL},
			budget);
		for (int k = 0; k < sc->servers; k++)
			print_wake_metrics(&s[k], k);
	}
	for (int k = sc->servers - 1; k >= 0; k--)
		srv_cleanup(&s[k]);
	return rc;
}

/* The value of key in a RESULT line, as a number; -1 when absent. */
static double
kv(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	return p != NULL ? strtod(p + strlen(pat), NULL) : -1;
}

/* The median of field key over the throughput RESULT lines of run tag. */
static double
median_of(const struct scale *sc, const char *tag, const char *key)
{
	double v[64];
	size_t n = 0;
	char pat[48];

	snprintf(pat, sizeof(pat), "RESULT run=%s mode=throughput", tag);
	for (const char *p = strstr(sc->results, pat); p != NULL && n < 64;
	     p = strstr(p + 1, pat)) {
		const char *eol = strchr(p, '\n');
		char line[4096];

		snprintf(line, sizeof(line), "%.*s", eol ? (int)(eol - p) : (int)strlen(p), p);
		v[n++] = kv(line, key);
	}
	return n ? pct(v, n, 0.5) : -1;
}

static void
scale_summary(const struct scale *sc)
{
	const char *c = strstr(sc->results, "RESULT run=cluster");
	char line[4096];
	double lite = median_of(sc, "sqlite", "per_cpu_s");
	double pg = median_of(sc, "postgresql", "per_cpu_s");

	printf("\nsummary (medians of %d rounds)\n", sc->rounds);
	printf("signed check-ins per server CPU-s: SQLite %.0f, PostgreSQL %.0f (ratio %.2f)\n",
	       lite, pg, lite > 0 ? pg / lite : 0);
	printf("with PostgreSQL's own CPU counted: PostgreSQL %.0f per (server + postgres) "
	       "CPU-s; postgres CPU-s in a %d s window: %.2f\n",
	       median_of(sc, "postgresql", "per_server_pg_cpu_s"), sc->seconds,
	       median_of(sc, "postgresql", "pg_cpu_s"));
	if (c == NULL)
		return;
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(c, "\n"), c);
	printf("parked: %.0f of %.0f on %.0f servers; %.2f KiB per parked agent (all servers)\n",
	       kv(line, "parked"), kv(line, "agents"), kv(line, "servers"),
	       kv(line, "kib_per_agent"));
	printf("wipe POSTed to another server -> parked poll answered: n=%.0f p50 %.1f ms, p99 "
	       "%.1f ms, max %.1f ms (target p99 <= 300 ms: %s)\n",
	       kv(line, "wipe_n"), kv(line, "wipe_p50_ms"), kv(line, "wipe_p99_ms"),
	       kv(line, "wipe_max_ms"),
	       kv(line, "wipe_n") > 0 && kv(line, "wipe_p99_ms") <= 300 ? "met" : "MISSED");
}

/* Reads the cluster's postmaster pid (the first line of postmaster.pid). */
static int
read_postmaster(struct scale *sc)
{
	char path[128];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/data/postmaster.pid", sc->pg.dir);
	f = fopen(path, "r");
	ok = f != NULL && fgets(sc->postmaster, sizeof(sc->postmaster), f) != NULL;
	if (f != NULL)
		fclose(f);
	sc->postmaster[strcspn(sc->postmaster, "\n")] = '\0';
	return ok && atoi(sc->postmaster) > 0 ? 0 : -1;
}

static int
scale_main(const char *self)
{
	static struct scale sc;
	int rc = -1;

	sc.servers = env_int("BENCH_SERVERS", 4, 2, SCALE_MAX);
	sc.agents = env_int("BENCH_AGENTS", 40000, sc.servers, 48000);
	sc.sample = env_int("BENCH_SAMPLE", 400, 1, 5000);
	sc.burst = env_int("BENCH_BURST", 1000, 0, 5000);
	sc.rounds = env_int("BENCH_ROUNDS", 3, 1, 9);
	sc.conns = env_int("BENCH_CONNS", 64, 1, 1000);
	sc.seconds = env_int("BENCH_SECONDS", 10, 1, 120);
	sc.t_end = now_s() + SCALE_S;
	snprintf(sc.loadgen, sizeof(sc.loadgen), "%.*s/loadgen", (int)(strrchr(self, '/') - self),
		 self);
	/* SQLite's commits are synced: PostgreSQL's are too here, or the comparison lies. */
	setenv("CLEAVE_PG_FSYNC", getenv("BENCH_PG_FSYNC") ? getenv("BENCH_PG_FSYNC") : "on", 1);
	if (access(sc.loadgen, X_OK) != 0 || pgtest_start(&sc.pg) != 0) {
		printf("wake_bench scale: no %s, or PostgreSQL did not start\n", sc.loadgen);
		return 1;
	}
	printf("PostgreSQL fsync=%s; %d servers, %d agents\n", getenv("CLEAVE_PG_FSYNC"),
	       sc.servers, sc.agents);
	if (read_postmaster(&sc) == 0 && scale_throughput(&sc) == 0)
		rc = scale_parked(&sc);
	scale_summary(&sc);
	pgtest_stop(&sc.pg);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *why = pgtest_skip_reason(), *e;
	int n = 200, sample = 100, rc;
	struct pgtest pg;
	struct srv a, b;

	if (why != NULL) {
		printf("skipped: %s\n", why);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "scale") == 0)
		return scale_main(argv[0]);
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
			     srv_start(&a, NULL) == 0 && follow(&a, &b, "wakebench-b") == 0
		     ? run(&a, &b, n, sample)
		     : -1;
	if (rc != 0)
		printf("wake_bench: failed (server logs: %s, %s)\n", a.log, b.log);
	srv_cleanup(&b); /* stops what still runs; removes the data directories */
	srv_cleanup(&a);
	pgtest_stop(&pg);
	return rc == 0 ? 0 : 1;
}
