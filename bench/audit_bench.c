/*
 * The audit log at fleet size (issue 10 §0): cleave-server with 1,000,000 audit entries and
 * 100,000 devices. Times GET /api/v1/audit/verify incremental against full, the filtered audit
 * and device lists (with the query plan SQLite picks for each, on statistics-free tables as a
 * real server has them), and wipe delivery to parked agents (bench/loadgen parked) without and
 * with an auditor calling verify in a loop.
 *
 * The entries are imported straight into the server's SQLite file between two starts: a valid
 * hash chain continuing the server's own first entries, hashed by the server's audit_hash, and
 * a signed checkpoint every 100 entries (the server's default) in the table and in the
 * checkpoint file, signed with the server's audit key by the server's audit_ckpt_sign: what
 * a server that wrote them one by one would have left. Devices are imported in one statement.
 * usage: audit_bench [ENTRIES] [DEVICES] [AGENTS]  (default 1000000 100000 500; needs
 * CLEAVE_BIN or build/bin, and loadgen beside this program)
 */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "store/store.h"
#include "testlib.h"
#include "util.h"

#define CKPT_EVERY 100
#define TARGETS    100000 /* distinct device ids the entries name */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the imported entries look like: mostly command traffic, a few rare actors/actions. */
static void
fake_entry(struct audit_entry *e, int64_t i)
{
	static const char *const actions[] = {"command.create", "command.complete",
					      "device.checkin_refused", "command.deliver"};
	uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15ULL;

	snprintf(e->actor, sizeof(e->actor), "%s",
		 i % 1000 == 7  ? "tok_rare"
		 : (h >> 7) % 2 ? "tok_ops"
				: "adm_alice");
	snprintf(e->action, sizeof(e->action), "%s",
		 i % 10000 == 3 ? "policy.update" : actions[(h >> 13) % 4]);
	snprintf(e->target, sizeof(e->target), "dev_%020lld", (long long)(i % TARGETS));
	snprintf(e->outcome, sizeof(e->outcome), "ok");
	snprintf(e->detail, sizeof(e->detail), "type=lock counter=%lld reason=bench entry %lld",
		 (long long)(i / TARGETS + 1), (long long)i);
}

static int
put_ckpt(sqlite3_stmt *q, FILE *f, const struct ed25519_key *key, const struct audit_entry *e)
{
	struct audit_ckpt c = {.seq = e->seq, .at_ms = e->at_ms + 1};
	uint8_t rec[AUDIT_CKPT_LEN];
	char line[AUDIT_CKPT_LINE_MAX];

	memcpy(c.head_hash, e->hash, 32);
	if (audit_ckpt_sign(key, &c, rec) != 0 || audit_ckpt_line(rec, line, sizeof(line)) != 0)
		return -1;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, c.seq);
	sqlite3_bind_int64(q, 2, c.at_ms);
	sqlite3_bind_blob(q, 3, rec, sizeof(rec), SQLITE_TRANSIENT);
	return sqlite3_step(q) == SQLITE_DONE && fputs(line, f) >= 0 ? 0 : -1;
}

static int
insert_entry(sqlite3_stmt *q, const struct audit_entry *e)
{
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, e->seq);
	sqlite3_bind_int64(q, 2, e->at_ms);
	sqlite3_bind_text(q, 3, e->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, e->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, e->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, e->outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, e->detail, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 8, e->prev_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(q, 9, e->hash, 32, SQLITE_STATIC);
	return sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
}

/* The server's checkpoints of its first start are replaced by ours, in time order. */
static int
import_audit(sqlite3 *db, const char *dir, int64_t n)
{
	char path[PATH_MAX + 64];
	struct ed25519_key *key = NULL;
	sqlite3_stmt *ins = NULL, *ck = NULL, *last = NULL;
	struct audit_entry e = {0};
	int64_t t0 = wall_ms() - 30LL * 86400 * 1000, step = 30LL * 86400 * 1000 / (n + 1);
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/keys/audit.key", dir);
	if (ed25519_key_load(path, &key) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/audit-checkpoints.log", dir);
	f = fopen(path, "w");
	if (f == NULL ||
	    sqlite3_exec(db, "BEGIN; DELETE FROM audit_checkpoints", NULL, NULL, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1,
			       &last, NULL) != SQLITE_OK ||
	    sqlite3_step(last) != SQLITE_ROW)
		goto out;
	e.seq = sqlite3_column_int64(last, 0);
	memcpy(e.hash, sqlite3_column_blob(last, 1), 32);
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO audit (seq, at_ms, actor, action, target, outcome, "
			       "detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)",
			       -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO audit_checkpoints (seq, at_ms, record) VALUES (?,?,?)",
			       -1, &ck, NULL) != SQLITE_OK)
		goto out;
	for (int64_t i = 1; i <= n; i++) {
		memcpy(e.prev_hash, e.hash, 32);
		e.seq++;
		e.at_ms = t0 + i * step;
		fake_entry(&e, i);
		audit_hash(&e, e.hash);
		if (insert_entry(ins, &e) != 0 ||
		    ((e.seq % CKPT_EVERY == 0 || i == n) && put_ckpt(ck, f, key, &e) != 0))
			goto out;
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
out:
	if (rc != 0)
		fprintf(stderr, "audit import: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(last);
	sqlite3_finalize(ins);
	sqlite3_finalize(ck);
	if (f != NULL && fclose(f) != 0)
		rc = -1;
	ed25519_key_free(key);
	return rc;
}

/* 100,000 devices in one statement: 1% retired, owners spread, keys random. */
static int
import_devices(sqlite3 *db, int n)
{
	char sql[1600];

	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < %d) "
		 "INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
		 "enrollment_token_id, model, os, agent_version, enrolled_at, last_seen_at, "
		 "epoch_since, hv_fingerprint) SELECT printf('dev_%%020d', i), "
		 "printf('user%%06d@corp.example', (i * 7919) %% %d), "
		 "CASE WHEN i %% 100 = 42 THEN 'retired' ELSE 'active' END, randomblob(32), "
		 "randomblob(32), zeroblob(32), 'etk_bench', 'Pixel 9', 'Android 16', '0.1.0', "
		 "unixepoch() - 86400 * 100 + i, unixepoch() - (i * 37) %% 86400, unixepoch(), "
		 "hex(randomblob(16)) FROM c",
		 n, n);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "device import: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int
import(const char *dir, int64_t entries, int devices)
{
	char path[PATH_MAX + 16];
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/cleave.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = import_devices(db, devices);
	if (rc == 0)
		rc = import_audit(db, dir, entries);
	sqlite3_close(db);
	return rc;
}

/* Runs of GET path: median and max in ms; the last reply's JSON into *last when asked. */
static int
timed(struct client *c, const char *path, int runs, double *med, double *max, json_t **last)
{
	double t[64];

	runs = runs > 64 ? 64 : runs;
	for (int i = 0; i < runs; i++) {
		struct resp r;

		if (client_req(c, "GET", path, NULL, NULL, &r) != 0 || r.status != 200) {
			fprintf(stderr, "GET %s: %ld %.300s\n", path, r.status,
				r.body ? r.body : "");
			resp_free(&r);
			return -1;
		}
		t[i] = r.seconds * 1000.0;
		if (last != NULL && i == runs - 1)
			*last = resp_json(&r);
		resp_free(&r);
	}
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	*med = t[runs / 2];
	*max = t[runs - 1];
	return 0;
}

static void
plan(sqlite3 *db, const char *label, const char *sql)
{
	char eqp[1200];
	sqlite3_stmt *q = NULL;

	snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
	printf("  %-44s", label);
	if (sqlite3_prepare_v2(db, eqp, -1, &q, NULL) != SQLITE_OK) {
		printf(" (cannot prepare: %s)\n", sqlite3_errmsg(db));
		return;
	}
	while (sqlite3_step(q) == SQLITE_ROW)
		printf(" | %s", (const char *)sqlite3_column_text(q, 3));
	printf("\n");
	sqlite3_finalize(q);
}

/* The plans of the store's own audit SQL and of the device query's shape, on the file. */
static void
plans(const char *dir)
{
	static const struct {
		const char *label;
		struct audit_filter f;
	} af[] = {
		{"audit target=", {.target = "x", .limit = 50}},
		{"audit actor=", {.actor = "x", .limit = 50}},
		{"audit action=", {.action = "x", .limit = 50}},
		{"audit actor= action=", {.actor = "x", .action = "y", .limit = 50}},
		{"audit since=", {.since_ms = 1, .limit = 50}},
	};
	char path[PATH_MAX + 16], sql[600];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/cleave.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return;
	printf("\nquery plans (no ANALYZE statistics, as the server runs):\n");
	for (size_t i = 0; i < ARRAY_SIZE(af); i++)
		if (store_sqlite_audit_list_sql(&af[i].f, sql, sizeof(sql)) == 0)
			plan(db, af[i].label, sql);
	/* The shape store_sqlite_query.c builds for a status or owner filter, default sort. */
	plan(db, "devices status= (sort last check-in)",
	     "SELECT id FROM devices WHERE 1 AND status = ?1 ORDER BY last_seen_at DESC, "
	     "rowid DESC LIMIT 50");
	plan(db, "devices owner= (sort last check-in)",
	     "SELECT id FROM devices WHERE 1 AND owner = ?1 ORDER BY last_seen_at DESC, "
	     "rowid DESC LIMIT 50");
	sqlite3_close(db);
}

struct auditor {
	struct srv *s;
	const char *path;
	atomic_int stop;
	atomic_long calls;
	pthread_t th;
};

static void *
auditor_main(void *p)
{
	struct auditor *a = p;
	struct client *c = client_new(a->s, a->s->admin);

	/* Bounded by the stop flag, set once loadgen ended. */
	while (c != NULL && !atomic_load(&a->stop)) {
		struct resp r;

		if (client_req(c, "GET", a->path, NULL, NULL, &r) == 0 && r.status == 200)
			atomic_fetch_add(&a->calls, 1);
		resp_free(&r);
	}
	client_free(c);
	return NULL;
}

/*
 * Runs loadgen parked against s and prints its wipe delivery line; once loadgen says its agents
 * are parked (and not before, so that connections are spread over the server's threads as in
 * a fleet that was there first), starts the auditor a when a->path is set. 0 or -1.
 */
static int
delivery(struct srv *s, const char *loadgen, int agents, struct auditor *a, const char *label)
{
	char url[160], cacert[PATH_MAX + 32], tok[PATH_MAX + 32], pid[16], ag[16], line[4096];
	const char *argv[] = {
		loadgen,    "parked", "--target",           "cleave", "--url",      url,
		"--cacert", cacert,   "--admin-token-file", tok,      "--pid",      pid,
		"--agents", ag,       "--sample",           "200",    "--deadline", "240",
		NULL};
	int fds[2], st = -1, found = 0, started = 0;
	pid_t child;
	FILE *f;

	snprintf(url, sizeof(url), "%s", s->url);
	snprintf(cacert, sizeof(cacert), "%s", s->cacert);
	snprintf(tok, sizeof(tok), "%s/admin-token", s->dir);
	snprintf(pid, sizeof(pid), "%d", (int)s->pid);
	snprintf(ag, sizeof(ag), "%d", agents);
	if (pipe(fds) != 0)
		return -1;
	child = fork();
	if (child == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execv(loadgen, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *p = strstr(line, " wipe_n=");

		if (strncmp(line, "RESULT", 6) != 0 || p == NULL) {
			fputs(line, stderr);
			if (a->path != NULL && !started && strstr(line, " parked; server RSS")) {
				started = pthread_create(&a->th, NULL, auditor_main, a) == 0;
				usleep(300000); /* the auditor's first full walk is under way */
			}
			continue;
		}
		if (strstr(p, " post_p50"))
			*strstr(p, " post_p50") = '\0';
		printf("  %-34s%s\n", label, p);
		found = 1;
	}
	if (f != NULL)
		fclose(f);
	waitpid(child, &st, 0);
	if (started) {
		atomic_store(&a->stop, 1);
		pthread_join(a->th, NULL);
		printf("  %-34s  (%ld verify calls answered meanwhile)\n", "",
		       atomic_load(&a->calls));
	}
	return found && (a->path == NULL || started) && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0
											      : -1;
}

/* Wipe delivery with an auditor looping on path (NULL: none). */
static int
delivery_with(struct srv *s, const char *loadgen, int agents, const char *path, const char *label)
{
	struct auditor a = {.s = s, .path = path};

	return delivery(s, loadgen, agents, &a, label);
}

static int
verify_times(struct client *admin)
{
	double med, max;
	json_t *j = NULL;
	int r;

	printf("\nGET /api/v1/audit/verify                      median ms   max ms   checked\n");
	/* The first call after a start has no anchor: it is a full walk on the verifier thread. */
	r = timed(admin, "/api/v1/audit/verify", 1, &med, &max, &j);
	printf("  first call after start (full walk)          %9.1f %8.1f %9lld\n", med, max,
	       (long long)json_integer_value(json_object_get(j, "checked")));
	json_decref(j);
	j = NULL;
	if (r == 0)
		r = timed(admin, "/api/v1/audit/verify", 15, &med, &max, &j);
	if (r == 0)
		printf("  incremental, nothing new                    %9.2f %8.2f %9lld  ok=%d\n",
		       med, max, (long long)json_integer_value(json_object_get(j, "checked")),
		       json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	j = NULL;
	if (r == 0)
		r = timed(admin, "/api/v1/audit/verify?full=1", 3, &med, &max, &j);
	if (r == 0)
		printf("  full (?full=1)                              %9.1f %8.1f %9lld  ok=%d\n",
		       med, max, (long long)json_integer_value(json_object_get(j, "checked")),
		       json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	return r;
}

static int
list_times(struct client *admin)
{
	static const char *const paths[] = {
		"/api/v1/audit?limit=50",
		"/api/v1/audit?limit=50&target=dev_00000000000000012345",
		"/api/v1/audit?limit=50&target=dev_nobody",
		"/api/v1/audit?limit=50&actor=tok_rare",
		"/api/v1/audit?limit=50&actor=nobody",
		"/api/v1/audit?limit=50&action=policy.update",
		"/api/v1/audit?limit=50&action=command.create",
		"/api/v1/audit?limit=50&actor=tok_rare&action=policy.update",
		/* Two filters, the index SQLite takes (actor) matching half the log: its worst case. */
		"/api/v1/audit?limit=50&actor=tok_ops&action=policy.update",
		"/api/v1/audit?limit=50&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
		"/api/v1/devices?limit=50&status=retired",
		"/api/v1/devices?limit=50&status=active",
		"/api/v1/devices?limit=50&owner=user012345@corp.example",
		"/api/v1/devices?limit=50&owner=nobody@corp.example",
	};
	double ref, med, max;

	if (timed(admin, "/healthz", 15, &ref, &max, NULL) != 0)
		return -1;
	printf("\nfiltered lists, median of 15 (GET /healthz reference %.2f ms)   med ms   max "
	       "ms\n",
	       ref);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		if (timed(admin, paths[i], 15, &med, &max, NULL) != 0)
			return -1;
		printf("  %-62s %7.2f %8.2f\n", paths[i] + 8, med, max);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	int64_t entries = argc > 1 ? atoll(argv[1]) : 1000000;
	int devices = argc > 2 ? atoi(argv[2]) : 100000, agents = argc > 3 ? atoi(argv[3]) : 500;
	char loadgen[PATH_MAX];
	const char *slash = strrchr(argv[0], '/');
	struct client *admin = NULL;
	struct srv s;
	double t0;
	int failed = 0;

	snprintf(loadgen, sizeof(loadgen), "%.*sloadgen", slash ? (int)(slash - argv[0] + 1) : 0,
		 argv[0]);
	if (srv_init(&s, "audit_bench") != 0 || srv_start(&s, NULL) != 0 ||
	    srv_stop(&s, SIGTERM) != 0) {
		fprintf(stderr, "audit_bench: server did not start\n");
		return 1;
	}
	t0 = now_s();
	if (import(s.dir, entries, devices) != 0 || srv_start(&s, NULL) != 0) {
		fprintf(stderr, "audit_bench: import or restart failed\n");
		failed = 1;
		goto out;
	}
	printf("imported %lld audit entries (checkpoint every %d) and %d devices in %.1f s\n",
	       (long long)entries, CKPT_EVERY, devices, now_s() - t0);
	admin = client_new(&s, s.admin);
	plans(s.dir);
	failed = verify_times(admin) != 0 || list_times(admin) != 0;
	printf("\nwipe delivery to %d parked agents, 200 wipes one at a time\n", agents);
	failed |= delivery_with(&s, loadgen, agents, NULL, "no auditor") != 0;
	failed |= delivery_with(&s, loadgen, agents, "/api/v1/audit/verify",
				"auditor looping, incremental") != 0;
	failed |= delivery_with(&s, loadgen, agents, "/api/v1/audit/verify?full=1",
				"auditor looping, ?full=1") != 0;
out:
	client_free(admin);
	srv_cleanup(&s);
	return failed;
}
