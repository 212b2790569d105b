/*
 * The console's queries at fleet size (issue 9 §5): cleave-server with 100,000 devices answers
 * the device list's first page, searches, filters and the compliance summary; each is timed
 * over keep-alive HTTPS (median of repeated runs) beside GET /healthz on the same connection,
 * the in-run reference, so "server time" is a request's time minus the reference's.
 *
 * The devices are written straight into the server's SQLite file between two starts (the
 * first start applies the migrations and makes the policies through the API), with the same
 * columns the store's device_insert writes, hv_fingerprint included: a prepared-statement
 * import, 100,000 rows in one transaction, instead of 100,000 enrollments.
 * With BENCH_BACKEND=pg the server runs on PostgreSQL (a private cluster, tests/lib/pgtest.h)
 * and the fleet is made by one INSERT ... SELECT from generate_series with fixed expressions
 * (same shares as the SQLite import, other values; fingerprints computed in SQL).
 * usage: console_bench [DEVICES] [RUNS]   (default 100000 and 15; needs CLEAVE_BIN or build/bin)
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgtest.h"
#include "testlib.h"
#include "util.h"

static const char *const models[] = {"Pixel 9", "Pixel 8a", "Galaxy S25", "ThinkPad X1",
				     "Fairphone 5"};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* A small deterministic generator, so every run builds the same fleet. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int
put(struct client *admin, const char *path, const char *body)
{
	struct resp r;
	long st = -1;

	if (client_req(admin, "PUT", path, body, NULL, &r) == 0)
		st = r.status;
	resp_free(&r);
	return st == 200 || st == 201 ? 0 : -1;
}

/* The labels of the import (both backends): dept 20% each, os 2/3 android, vip 1%. */
static const char labels_sql[] =
	"INSERT INTO device_labels (device_id, key, value) SELECT id, 'dept', "
	"CASE rowid % 5 WHEN 0 THEN 'sales' WHEN 1 THEN 'ops' WHEN 2 THEN 'eng' "
	"WHEN 3 THEN 'support' ELSE 'finance' END FROM devices;"
	"INSERT INTO device_labels (device_id, key, value) SELECT id, 'os', "
	"CASE WHEN rowid % 3 < 2 THEN 'android' ELSE 'ios' END FROM devices;"
	"INSERT INTO device_labels (device_id, key, value) SELECT id, 'vip', '' "
	"FROM devices WHERE rowid % 100 = 5;";

static int
import(const char *dir, int n)
{
	static const uint64_t std_args[4] = {72 * 3600, 30 * 86400, 10, 1};
	static const uint64_t kiosk_args[4] = {0, 0, 0, 1};
	uint8_t std_digest[16], kiosk_digest[16];
	char path[PATH_MAX + 16];
	sqlite3 *db;
	sqlite3_stmt *q = NULL;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	int64_t now = (int64_t)time(NULL);
	int rc;

	crypto_policy_digest(std_args, std_digest);
	crypto_policy_digest(kiosk_args, kiosk_digest);
	snprintf(path, sizeof(path), "%s/cleave.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
			db,
			"INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
			"enrollment_token_id, model, os, agent_version, policy_name, key_epoch, "
			"enrolled_at, last_seen_at, epoch_since, attested_at, attested_policy, "
			"attest_status, desired_state, reported_state, hv_fingerprint) "
			"VALUES (?,?,'active',?,?,?,'etk_bench',?,'Android "
			"16',?,?,1,?,?,?,?,?,?,?,?,?)",
			-1, &q, NULL);
	for (int i = 0; rc == SQLITE_OK && i < n; i++) {
		char id[32], owner[64], fp[64];
		uint8_t dk[32], hk[32], meas[32] = {0};
		uint64_t r = rnd(&seed);
		int kiosk = r % 10 == 0, locked = (r >> 8) % 100 == 0;
		int64_t enrolled = now - 86400 * 200 + (int64_t)((r >> 16) % (86400 * 190));
		int64_t seen = now - (int64_t)((r >> 24) % (86400 * 60));

		snprintf(id, sizeof(id), "dev_%020llx", (unsigned long long)rnd(&seed));
		/* Owners out of insertion order, so sorting by owner is real work. */
		snprintf(owner, sizeof(owner), "user%06d@corp.example",
			 (int)((uint64_t)i * 7919 % (uint64_t)n));
		for (int k = 0; k < 4; k++) {
			uint64_t a = rnd(&seed), b = rnd(&seed);

			memcpy(dk + 8 * k, &a, 8);
			memcpy(hk + 8 * k, &b, 8);
		}
		key_fingerprint(hk, fp, sizeof(fp));
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(q, 2, owner, -1, SQLITE_TRANSIENT);
		sqlite3_bind_blob(q, 3, dk, 32, SQLITE_TRANSIENT);
		sqlite3_bind_blob(q, 4, hk, 32, SQLITE_TRANSIENT);
		sqlite3_bind_blob(q, 5, meas, 32, SQLITE_TRANSIENT);
		sqlite3_bind_text(q, 6, models[(r >> 4) % ARRAY_SIZE(models)], -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 7, (r >> 12) % 20 == 0 ? "0.0.9" : "0.1.0", -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 8, kiosk ? "kiosk" : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 9, enrolled);
		sqlite3_bind_int64(q, 10, seen);
		/* A key epoch a day old: no key rotation falls due while the bench measures. */
		sqlite3_bind_int64(q, 11, now - 86400);
		sqlite3_bind_int64(q, 12, seen);
		/* One in 50 never applied its policy. */
		sqlite3_bind_blob(q, 13,
				  (r >> 20) % 50 == 0 ? meas
				  : kiosk             ? kiosk_digest
						      : std_digest,
				  16, SQLITE_TRANSIENT);
		sqlite3_bind_text(q, 14, (r >> 28) % 500 == 0 ? "mismatch" : "ok", -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(q, 15, locked ? "locked" : "active", -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 16, locked && (r >> 32) % 3 ? "locked" : "active", -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(q, 17, fp + 7, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(q);
	/*
	 * Labels (issue 11): dept one of five (20% each), os android on 2/3, vip on 1% (all in sales); three
	 * labels a device, 301,000 rows at 100,000 devices.
	 */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, labels_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT; ANALYZE;", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "import: %s\n", sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The PostgreSQL fleet: n devices from generate_series, then the labels. */
static int
import_pg(const char *url, int n)
{
	static const uint64_t std_args[4] = {72 * 3600, 30 * 86400, 10, 1};
	static const uint64_t kiosk_args[4] = {0, 0, 0, 1};
	uint8_t sd[16], kd[16];
	char std_hex[33], kiosk_hex[33], *sql;
	long long now = (long long)time(NULL);
	int rc;

	crypto_policy_digest(std_args, sd);
	crypto_policy_digest(kiosk_args, kd);
	hex_encode(std_hex, sizeof(std_hex), sd, sizeof(sd));
	hex_encode(kiosk_hex, sizeof(kiosk_hex), kd, sizeof(kd));
	sql = malloc(8192);
	if (sql == NULL)
		return -1;
	snprintf(sql, 8192,
		 "INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
		 "enrollment_token_id, model, os, agent_version, policy_name, key_epoch, "
		 "enrolled_at, "
		 "last_seen_at, epoch_since, attested_at, attested_policy, attest_status, "
		 "desired_state, reported_state, hv_fingerprint) SELECT "
		 "'dev_' || lpad(to_hex((i * 2654435761) %% 4294967296), 20, '0'), "
		 "'user' || lpad(((i::bigint * 7919) %% %d)::text, 6, '0') || '@corp.example', "
		 "'active', sha256(('d' || i)::bytea), sha256(('h' || i)::bytea), "
		 "decode(repeat('00', 32), 'hex'), 'etk_bench', (ARRAY['Pixel 9', 'Pixel 8a', "
		 "'Galaxy S25', 'ThinkPad X1', 'Fairphone 5'])[1 + i %% 5], 'Android 16', "
		 "CASE WHEN i %% 20 = 3 THEN '0.0.9' ELSE '0.1.0' END, "
		 "CASE WHEN i %% 10 = 1 THEN 'kiosk' ELSE '' END, 1, "
		 "%lld - 17280000 + (i::bigint * 7777) %% 16416000, %lld - (i::bigint * 3571) %% "
		 "5184000, %lld, %lld - (i::bigint * 3571) %% 5184000, "
		 "CASE WHEN i %% 50 = 7 THEN decode(repeat('00', 16), 'hex') WHEN i %% 10 = 1 THEN "
		 "decode('%s', 'hex') ELSE decode('%s', 'hex') END, "
		 "CASE WHEN i %% 500 = 11 THEN 'mismatch' ELSE 'ok' END, "
		 "CASE WHEN i %% 100 = 13 THEN 'locked' ELSE 'active' END, "
		 "CASE WHEN i %% 300 = 13 THEN 'locked' ELSE 'active' END, "
		 "rtrim(encode(sha256(sha256(('h' || i)::bytea)), 'base64'), '=') "
		 "FROM generate_series(1, %d) i; %s ANALYZE;",
		 n, now, now, now - 86400, now, kiosk_hex, std_hex, n, labels_sql);
	rc = pgtest_exec(url, sql);
	free(sql);
	return rc;
}

/* Median time of runs GETs of path, in ms; *items gets the last page's item count. */
static double
timed(struct client *c, const char *path, int runs, long *items)
{
	double t[64];

	*items = -1;
	if (runs > 64)
		runs = 64;
	for (int i = 0; i < runs; i++) {
		struct resp r;
		json_t *j;

		if (client_req(c, "GET", path, NULL, NULL, &r) != 0 || r.status != 200) {
			fprintf(stderr, "GET %s: %ld %.200s\n", path, r.status,
				r.body ? r.body : "");
			resp_free(&r);
			return -1;
		}
		t[i] = r.seconds * 1000.0;
		j = resp_json(&r);
		if (json_is_array(json_object_get(j, "items")))
			*items = (long)json_array_size(json_object_get(j, "items"));
		else if (json_is_integer(json_object_get(j, "total")))
			*items = (long)json_integer_value(json_object_get(j, "total"));
		json_decref(j);
		resp_free(&r);
	}
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	return t[runs / 2];
}

/* The cursor 20 pages into the owner-sorted list, for a deep page. */
static void
deep_cursor(struct client *c, char *out, size_t cap)
{
	char path[700] = "/api/v1/devices?sort=owner&limit=200";

	out[0] = '\0';
	for (int i = 0; i < 20; i++) {
		struct resp r;
		json_t *j;
		const char *nc;

		if (client_req(c, "GET", path, NULL, NULL, &r) != 0)
			return;
		j = resp_json(&r);
		nc = json_string_value(json_object_get(j, "next_cursor"));
		if (nc != NULL)
			str_copy(out, cap, nc);
		snprintf(path, sizeof(path), "/api/v1/devices?sort=owner&limit=200&cursor=%s", out);
		json_decref(j);
		resp_free(&r);
	}
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000, runs = argc > 2 ? atoi(argv[2]) : 15;
	const char *be = getenv("BENCH_BACKEND");
	int use_pg = be != NULL && strcmp(be, "pg") == 0;
	struct pgtest pg;
	struct srv s;
	struct client *admin = NULL;
	char cursor[600], deep[800], q_owner[64], q_fp[80];
	double ref, t0;
	long items;
	int failed = 0;

	if (use_pg && (pgtest_skip_reason() != NULL || pgtest_start(&pg) != 0)) {
		fprintf(stderr, "console_bench: no PostgreSQL: %s\n", pgtest_skip_reason() ?: "");
		return 1;
	}
	if (srv_init(&s, "console_bench") != 0 || (use_pg && srv_use_pg(&s, &pg) != 0) ||
	    srv_start(&s, NULL) != 0) {
		fprintf(stderr, "console_bench: server did not start\n");
		return 1;
	}
	admin = client_new(&s, s.admin);
	if (put(admin, "/api/v1/policies/standard",
		"{\"offline\":{\"lock_after_hours\":72,\"wipe_after_days\":30},"
		"\"max_failed_unlocks\":10,\"min_agent_version\":\"0.1.0\"}") != 0 ||
	    put(admin, "/api/v1/policies/kiosk", "{}") != 0) {
		fprintf(stderr, "console_bench: policies\n");
		failed = 1;
		goto out;
	}
	client_free(admin);
	admin = NULL;
	srv_stop(&s, SIGTERM);
	t0 = now_s();
	if ((use_pg ? import_pg(s.database, n) : import(s.dir, n)) != 0 ||
	    srv_start(&s, NULL) != 0) {
		fprintf(stderr, "console_bench: import or restart failed\n");
		failed = 1;
		goto out;
	}
	printf("imported %d devices in %.1f s (%s)\n", n, now_s() - t0,
	       use_pg ? "PostgreSQL" : "SQLite");
	admin = client_new(&s, s.admin);
	{
		struct resp r;

		if (client_req(admin, "POST", "/api/v1/groups",
			       "{\"name\":\"sales-vip\",\"query\":\"dept=sales AND vip\"}", NULL,
			       &r) != 0 ||
		    r.status != 201)
			failed = 1;
		resp_free(&r);
	}
	snprintf(q_owner, sizeof(q_owner), "user%06d", n / 3);
	{
		/* A real device's fingerprint prefix, read back through the API. */
		struct resp r;
		json_t *j = NULL;

		if (client_req(admin, "GET", "/api/v1/devices?limit=1&sort=enrolled", NULL, NULL,
			       &r) == 0)
			j = resp_json(&r);
		snprintf(q_fp, sizeof(q_fp), "%.18s",
			 json_string_value(json_object_get(
				 json_object_get(json_array_get(json_object_get(j, "items"), 0),
						 "hypervisor"),
				 "key_fingerprint"))
				 ?: "SHA256:none");
		json_decref(j);
		resp_free(&r);
	}
	deep_cursor(admin, cursor, sizeof(cursor));
	snprintf(deep, sizeof(deep), "/api/v1/devices?sort=owner&limit=50&cursor=%s", cursor);
	ref = timed(admin, "/healthz", runs, &items);
	printf("\nconsole queries, %d devices, median of %d runs over one keep-alive TLS "
	       "connection\n",
	       n, runs);
	printf("%-52s %9s %9s %7s %7s\n", "request", "total ms", "server ms", "items", "target");
	printf("%-52s %9.2f %9s %7s %7s\n", "GET /healthz (reference)", ref, "-", "-", "-");
	{
		struct {
			const char *label;
			char path[900];
			double target;
		} qs[] = {
			{"first page (last check-in, 50)", "/api/v1/devices?limit=50", 100},
			{"first page, sort=owner", "/api/v1/devices?limit=50&sort=owner", 100},
			{"first page, sort=enrolled asc",
			 "/api/v1/devices?limit=50&sort=enrolled&order=asc", 100},
			{"page 81 by cursor (sort=owner)", "", 100},
			{"search owner prefix (1 match)", "", 200},
			{"search owner prefix 'user01' (10% match)",
			 "/api/v1/devices?limit=50&q=user01", 200},
			{"search device id prefix 'dev_0000a'",
			 "/api/v1/devices?limit=50&q=dev_0000a", 200},
			{"search hypervisor key fingerprint prefix", "", 200},
			{"search, no match", "/api/v1/devices?limit=50&q=zz-nobody", 200},
			{"filter compliant=false", "/api/v1/devices?limit=50&compliant=false", 0},
			{"filter reason=attestation_mismatch (0.2%)",
			 "/api/v1/devices?limit=50&reason=attestation_mismatch", 0},
			{"filter desired=locked (1%)", "/api/v1/devices?limit=50&desired=locked",
			 0},
			{"filter policy=kiosk (10%)", "/api/v1/devices?limit=50&policy=kiosk", 0},
			{"filter not_seen_days=30", "/api/v1/devices?limit=50&not_seen_days=30", 0},
			{"filter label=dept=sales (20%)",
			 "/api/v1/devices?limit=50&label=dept%3Dsales", 100},
			{"filter label=vip (1%)", "/api/v1/devices?limit=50&label=vip", 100},
			{"filter label=dept=sales AND os=ios AND NOT vip",
			 "/api/v1/"
			 "devices?limit=50&label=dept%3Dsales%20AND%20os%3Dios%20AND%20NOT%20vip",
			 100},
			{"filter label=dept=nobody (no match)",
			 "/api/v1/devices?limit=50&label=dept%3Dnobody", 100},
			{"filter group=sales-vip (1%)", "/api/v1/devices?limit=50&group=sales-vip",
			 100},
			{"count label=dept=sales", "/api/v1/devices/count?label=dept%3Dsales", 0},
			{"summary (all reasons and states)", "/api/v1/devices/summary", 0},
			{"command queue, newest first", "/api/v1/commands?limit=50", 0},
		};

		str_copy(qs[3].path, sizeof(qs[3].path), deep);
		snprintf(qs[4].path, sizeof(qs[4].path), "/api/v1/devices?limit=50&q=%s", q_owner);
		snprintf(qs[7].path, sizeof(qs[7].path), "/api/v1/devices?limit=50&q=%s", q_fp + 7);
		for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
			double t = timed(admin, qs[i].path, runs, &items);
			char tg[16] = "-";

			if (t < 0) {
				failed = 1;
				continue;
			}
			if (qs[i].target > 0)
				snprintf(tg, sizeof(tg), "%s",
					 t - ref < qs[i].target ? "met" : "MISSED");
			printf("%-52s %9.2f %9.2f %7ld %7s\n", qs[i].label, t, t - ref, items, tg);
		}
	}
	printf("targets: first page (also by label and group) < 100 ms, search < 200 ms server "
	       "time (total minus reference)\n");
out:
	client_free(admin);
	srv_cleanup(&s);
	if (use_pg)
		pgtest_stop(&pg);
	return failed;
}
