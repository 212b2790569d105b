/*
 * Integration tests of the console's audit and policy API (issue 9 §2 screens 6 and 9) against
 * the real cleave-server: audit filters by actor, action, target and time range with cursor
 * paging, the JSON lines export resumed by its cursor header, the verification's last
 * checkpoint, per-policy device counts moved by simulated devices, and the API's hygiene:
 * Content-Security-Policy and nosniff on every JSON reply, and HEAD answered like GET
 * without a body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"
#include "testlib.h"

#define API_CSP "default-src 'none'; frame-ancestors 'none'"

struct env {
	struct srv s;
	struct client *admin;
	char conf[PATH_MAX + 16];
};

/* When set (test_audit_query_pg.c), every server runs on a fresh database of this cluster. */
static struct pgtest *env_pg;

/* A server that signs its audit head every 3 entries. */
static int
env_up(struct env *e, const char *tag)
{
	const char *extra[] = {"--config", e->conf, NULL};
	FILE *f;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || srv_use_pg(&e->s, env_pg) != 0)
		return -1;
	snprintf(e->conf, sizeof(e->conf), "%.*s/server.conf", (int)strlen(e->s.dir) - 5, e->s.dir);
	f = fopen(e->conf, "w");
	if (f == NULL)
		return -1;
	fputs("audit_checkpoint_entries = 3\naudit_checkpoint_seconds = 60\n", f);
	fclose(f);
	if (srv_start(&e->s, extra) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	return e->admin ? 0 : -1;
}

static void
env_down(struct env *e)
{
	client_free(e->admin);
	e->admin = NULL;
	srv_cleanup(&e->s);
	remove(e->conf);
}

static const char *
jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* A token of role for c's server; its id (from GET /api/v1/server) into id. */
static struct client *
role_client(struct env *e, const char *role, char *id, size_t cap)
{
	char secret[160];
	struct client *c;
	json_t *me;
	long st;

	if (admin_token(e->admin, role, secret, sizeof(secret)) != 0)
		return NULL;
	c = client_new(&e->s, secret);
	me = c ? client_get_json(c, "/api/v1/server", &st) : NULL;
	snprintf(id, cap, "%s", me ? jstr(me, "token_id") : "");
	json_decref(me);
	return c;
}

/* Every entry matching query (limit and cursor aside), following next_cursor page by page. */
static json_t *
all_pages(struct client *c, const char *query, int limit)
{
	json_t *all = json_array();
	char path[1024], cursor[128] = "";
	long st;

	for (int round = 0; round < 100; round++) {
		json_t *page, *next;

		snprintf(path, sizeof(path), "/api/v1/audit?limit=%d%s%s%s%s", limit,
			 query[0] ? "&" : "", query, cursor[0] ? "&cursor=" : "", cursor);
		page = client_get_json(c, path, &st);
		if (page == NULL) {
			json_decref(all);
			return NULL;
		}
		json_array_extend(all, json_object_get(page, "items"));
		next = json_object_get(page, "next_cursor");
		snprintf(cursor, sizeof(cursor), "%s",
			 json_is_string(next) ? json_string_value(next) : "");
		json_decref(page);
		if (cursor[0] == '\0')
			return all;
	}
	json_decref(all);
	return NULL;
}

/* Whether every entry of list satisfies key == want. */
static int
all_have(json_t *list, const char *key, const char *want)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) if (strcmp(jstr(v, key), want) != 0) return 0;
	return 1;
}

/*
 * "2026-12-02T10:00:00.250Z" as the same instant written with a UTC offset of off seconds:
 * "2026-12-02T05:00:00.250-05:00" (a "+" offset is percent-encoded for a query). 0 or -1.
 */
static int
shift_time(const char *z, int off, char *out, size_t cap)
{
	struct tm tm = {0};
	int ms = 0, n = 0;
	time_t t;

	if (sscanf(z, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 ||
	    n != (int)strlen(z))
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm) + off;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s%02d:00", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
		 off < 0 ? "-" : "%2B", (off < 0 ? -off : off) / 3600);
	return 0;
}

/* Makes entries by three actors, several actions and targets, markup included. */
static int
make_entries(struct env *e, struct client *auditor)
{
	static const char *const puts_[] = {"/api/v1/policies/alpha", "/api/v1/policies/beta",
					    "/api/v1/policies/alpha"};
	struct resp r;
	char tok[128];
	int ok = 1;

	for (int i = 0; i < 3 && ok; i++)
		ok = admin_etoken(e->admin,
				  i == 1 ? "<img/src=x/onerror=alert(1)>@example.com"
					 : "x@example.com",
				  1, tok, sizeof(tok)) == 0;
	for (int i = 0; i < 3 && ok; i++) {
		char body[96];

		snprintf(body, sizeof(body), "{\"max_failed_unlocks\":%d}", 3 + i);
		ok = client_req(e->admin, "PUT", puts_[i], body, NULL, &r) == 0 &&
		     (r.status == 200 || r.status == 201);
		resp_free(&r);
	}
	/* Refused: an access.denied entry with the auditor as actor. */
	if (ok && client_req(auditor, "PUT", "/api/v1/policies/gamma", "{}", NULL, &r) == 0) {
		ok = r.status == 403;
		resp_free(&r);
	}
	return ok ? 0 : -1;
}

static void
test_audit_filters_and_paging(void)
{
	struct env e;
	struct client *aud;
	char aud_id[64], q[512], since[40], until[40];
	json_t *full = NULL, *got = NULL;
	size_t i, n, want;
	json_t *v;
	struct resp r;

	CHECK(env_up(&e, "audit-filters") == 0, "server did not start");
	aud = role_client(&e, "auditor", aud_id, sizeof(aud_id));
	CHECK(aud != NULL && aud_id[0], "auditor token");
	CHECK(make_entries(&e, aud) == 0, "making entries failed");
	full = all_pages(aud, "", 200);
	CHECK(full != NULL && json_array_size(full) >= 9, "full list");
	n = json_array_size(full);
	/* Paging by 2 gives the same entries in the same order. */
	got = all_pages(aud, "", 2);
	CHECK(got != NULL && json_equal(got, full), "pages of 2 differ from one page");
	json_decref(got);
	/* actor */
	snprintf(q, sizeof(q), "actor=%s", aud_id);
	got = all_pages(aud, q, 50);
	CHECK(got && json_array_size(got) == 1 && all_have(got, "actor", aud_id), "actor filter");
	CHECK(strcmp(jstr(json_array_get(got, 0), "action"), "access.denied") == 0, "denied entry");
	json_decref(got);
	/* action, and target together with it */
	got = all_pages(aud, "action=policy.put", 1);
	CHECK(got && json_array_size(got) == 3 && all_have(got, "action", "policy.put"),
	      "action filter");
	json_decref(got);
	got = all_pages(aud, "action=policy.put&target=alpha", 50);
	CHECK(got && json_array_size(got) == 2 && all_have(got, "target", "alpha"),
	      "target filter");
	json_decref(got);
	/* time range: since inclusive, until exclusive; RFC 3339 times compare as strings */
	snprintf(since, sizeof(since), "%s", jstr(json_array_get(full, 2), "at"));
	snprintf(until, sizeof(until), "%s", jstr(json_array_get(full, n - 2), "at"));
	snprintf(q, sizeof(q), "since=%s&until=%s", since, until);
	got = all_pages(aud, q, 3);
	CHECK(got != NULL, "time filter");
	want = 0;
	json_array_foreach(full, i, v)
	{
		const char *at = jstr(v, "at");

		if (strcmp(at, since) >= 0 && strcmp(at, until) < 0) {
			json_t *g = json_array_get(got, want++);

			CHECK(g && json_equal(g, v), "time filter: entry %zu differs", i);
		}
	}
	CHECK(want > 0 && json_array_size(got) == want, "time filter: %zu entries, want %zu",
	      json_array_size(got), want);
	json_decref(got);
	/* the same window in other offsets: -05:00, and +01:00 (its "+" sent as %2B) */
	for (int k = 0; k < 2; k++) {
		char s2[48], u2[48];
		json_t *again;

		CHECK(shift_time(since, k ? 3600 : -5 * 3600, s2, sizeof(s2)) == 0 &&
			      shift_time(until, k ? 3600 : -5 * 3600, u2, sizeof(u2)) == 0,
		      "cannot shift %s", since);
		snprintf(q, sizeof(q), "since=%s&until=%s", s2, u2);
		again = all_pages(aud, q, 200);
		CHECK(again && json_array_size(again) == want, "offset %d: %zu entries, want %zu",
		      k, again ? json_array_size(again) : 0, want);
		json_decref(again);
	}
	/* bad filters */
	CHECK(client_req(aud, "GET", "/api/v1/audit?since=yesterday", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 400);
	resp_free(&r);
	snprintf(q, sizeof(q), "/api/v1/audit?since=%s&until=%s", until, since);
	CHECK(client_req(aud, "GET", q, NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 400);
	resp_free(&r);
	json_decref(full);
	client_free(aud);
	env_down(&e);
}

/* Appends the export's lines (parsed) to out; the next cursor into cursor ("" at the end). */
static int
export_piece(struct client *c, const char *query, char *cursor, size_t cap, json_t *out)
{
	char path[1024], type[64] = "";
	struct resp r;
	int ok;

	snprintf(path, sizeof(path), "/api/v1/audit/export?%s%s%s", query,
		 cursor[0] ? "&cursor=" : "", cursor);
	if (client_req(c, "GET", path, NULL, NULL, &r) != 0)
		return -1;
	resp_header(&r, "Content-Type", type, sizeof(type));
	ok = r.status == 200 && strcmp(type, "application/x-ndjson") == 0;
	if (!ok)
		printf("    export: HTTP %ld %s %.200s\n", r.status, type, r.body ? r.body : "");
	for (char *line = r.body, *nl; ok && line && *line; line = nl + 1) {
		json_t *j;

		nl = strchr(line, '\n');
		if (nl == NULL) {
			ok = 0; /* every line ends with a newline */
			break;
		}
		*nl = '\0';
		j = json_loads(line, 0, NULL);
		ok = j != NULL && json_object_get(j, "prev_hash") != NULL;
		json_object_del(j, "prev_hash");
		json_array_append_new(out, j);
	}
	if (resp_header(&r, "Cleave-Next-Cursor", cursor, cap) != 0)
		cursor[0] = '\0';
	resp_free(&r);
	return ok ? 0 : -1;
}

static void
test_audit_export(void)
{
	struct env e;
	struct client *aud, *help;
	char id[64], cursor[128] = "";
	json_t *full, *lines = json_array(), *want;
	int pieces = 0;
	struct resp r;

	CHECK(env_up(&e, "audit-export") == 0, "server did not start");
	aud = role_client(&e, "auditor", id, sizeof(id));
	help = role_client(&e, "helpdesk", id, sizeof(id));
	CHECK(aud && help && make_entries(&e, aud) == 0, "setup");
	full = all_pages(aud, "", 200);
	CHECK(full != NULL, "list");
	/* Pieces of 4, each resumed from the previous one's cursor, add up to the whole log. */
	do {
		CHECK(export_piece(aud, "limit=4", cursor, sizeof(cursor), lines) == 0, "piece %d",
		      pieces);
	} while (cursor[0] && ++pieces < 50);
	CHECK(pieces >= 2, "a log of %zu entries came in %d pieces", json_array_size(full),
	      pieces + 1);
	CHECK(json_equal(lines, full), "export differs from the list");
	json_array_clear(lines);
	/* The same filters as the list. */
	want = all_pages(aud, "action=enrollment_token.create", 200);
	cursor[0] = '\0';
	CHECK(export_piece(aud, "action=enrollment_token.create", cursor, sizeof(cursor), lines) ==
		      0,
	      "filtered export");
	CHECK(want && json_array_size(want) == 3 && json_equal(lines, want) && cursor[0] == '\0',
	      "filtered export differs");
	json_decref(want);
	CHECK(client_req(aud, "GET", "/api/v1/audit/export?limit=5001", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 400);
	resp_free(&r);
	CHECK(client_req(help, "GET", "/api/v1/audit/export", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	json_decref(lines);
	json_decref(full);
	client_free(aud);
	client_free(help);
	env_down(&e);
}

static void
test_audit_verify_checkpoint(void)
{
	struct env e;
	struct client *aud;
	char id[64];
	json_t *v = NULL, *last, *entries;
	long st;

	CHECK(env_up(&e, "audit-verify") == 0, "server did not start");
	aud = role_client(&e, "auditor", id, sizeof(id));
	CHECK(aud && make_entries(&e, aud) == 0, "setup");
	/* Checkpoints are made by the server's once-a-second tick. */
	for (int i = 0; i < 40; i++) {
		v = client_get_json(aud, "/api/v1/audit/verify", &st);
		last = json_object_get(v, "last_checkpoint");
		if (json_is_object(last) && json_integer_value(json_object_get(last, "seq")) >= 9)
			break;
		json_decref(v);
		v = NULL;
		usleep(250 * 1000);
	}
	CHECK(v != NULL, "no checkpoint covered the entries");
	CHECK(json_is_true(json_object_get(v, "ok")), "verify: %s", jstr(v, "problem"));
	last = json_object_get(v, "last_checkpoint");
	{
		json_int_t seq = json_integer_value(json_object_get(last, "seq"));
		json_t *full = all_pages(aud, "", 200);

		entries = json_array_get(full, (size_t)seq - 1);
		CHECK(entries && strcmp(jstr(entries, "hash"), jstr(last, "head_hash")) == 0 &&
			      strlen(jstr(last, "head_hash")) == 64,
		      "last checkpoint's head_hash %s is not entry %lld's hash",
		      jstr(last, "head_hash"), (long long)seq);
		json_decref(full);
	}
	json_decref(v);
	client_free(aud);
	env_down(&e);
}

/* A JSON reply carries the API's CSP and nosniff. */
static int
hygienic(const struct resp *r)
{
	char csp[128] = "", nos[32] = "";

	resp_header(r, "Content-Security-Policy", csp, sizeof(csp));
	resp_header(r, "X-Content-Type-Options", nos, sizeof(nos));
	if (strcmp(csp, API_CSP) == 0 && strcmp(nos, "nosniff") == 0)
		return 1;
	printf("    headers of HTTP %ld: CSP \"%s\", X-Content-Type-Options \"%s\"\n", r->status,
	       csp, nos);
	return 0;
}

static void
test_api_headers_and_head(void)
{
	static const struct {
		const char *method, *path;
		long status;
	} replies[] = {
		{"GET", "/api/v1/server", 200},    {"GET", "/api/v1/nothing-here", 404},
		{"DELETE", "/api/v1/server", 405}, {"POST", "/device/v1/checkin", 401},
		{"GET", "/healthz", 200},          {"POST", "/api/v1/policies/x", 405},
	};
	struct env e;
	struct client *anon;
	struct resp r, g;
	char len[32] = "", type[64] = "";

	CHECK(env_up(&e, "api-headers") == 0, "server did not start");
	anon = client_new(&e.s, NULL);
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		CHECK(client_req(e.admin, replies[i].method, replies[i].path,
				 strcmp(replies[i].method, "POST") == 0 ? "{}" : NULL, NULL,
				 &r) == 0,
		      "tx");
		CHECK(r.status == replies[i].status && hygienic(&r), "%s %s: HTTP %ld",
		      replies[i].method, replies[i].path, r.status);
		resp_free(&r);
	}
	/* The console's files keep their own, wider policy. */
	CHECK(client_req(anon, "GET", "/", NULL, NULL, &r) == 0, "tx");
	resp_header(&r, "Content-Security-Policy", type, sizeof(type));
	CHECK(strncmp(type, "default-src 'self'", 18) == 0, "console CSP: %s", type);
	resp_free(&r);
	/* HEAD: GET's status and headers, no body. */
	CHECK(client_req(e.admin, "GET", "/api/v1/audit?limit=5", NULL, NULL, &g) == 0, "tx");
	CHECK(client_req(e.admin, "HEAD", "/api/v1/audit?limit=5", NULL, NULL, &r) == 0, "tx");
	resp_header(&r, "Content-Length", len, sizeof(len));
	resp_header(&r, "Content-Type", type, sizeof(type));
	CHECK(r.status == 200 && r.len == 0 && hygienic(&r), "HEAD audit: HTTP %ld, %zu bytes",
	      r.status, r.len);
	CHECK(strtoul(len, NULL, 10) == g.len && strcmp(type, "application/json") == 0,
	      "HEAD Content-Length %s Content-Type %s, GET had %zu bytes", len, type, g.len);
	resp_free(&r);
	resp_free(&g);
	CHECK(client_req(e.admin, "HEAD", "/api/v1/audit/export", NULL, NULL, &r) == 0, "tx");
	CHECK(r.status == 200 && r.len == 0, "HEAD export: HTTP %ld", r.status);
	resp_free(&r);
	CHECK(client_req(anon, "HEAD", "/healthz", NULL, NULL, &r) == 0, "tx");
	CHECK(r.status == 200 && r.len == 0, "HEAD healthz: HTTP %ld", r.status);
	resp_free(&r);
	/* HEAD is checked like GET, and is no way onto a route without GET. */
	CHECK(client_req(anon, "HEAD", "/api/v1/server", NULL, NULL, &r) == 0, "tx");
	CHECK(r.status == 401, "HEAD without a token: HTTP %ld", r.status);
	resp_free(&r);
	CHECK(client_req(e.admin, "HEAD", "/device/v1/enroll", NULL, NULL, &r) == 0, "tx");
	CHECK(r.status == 405, "HEAD on a POST route: HTTP %ld", r.status);
	resp_free(&r);
	client_free(anon);
	env_down(&e);
}

/* assigned and applied of policy name, or -1 each. */
static void
reach(struct env *e, const char *name, long long *assigned, long long *applied)
{
	char path[96];
	json_t *p, *d;
	long st;

	snprintf(path, sizeof(path), "/api/v1/policies/%s", name);
	p = client_get_json(e->admin, path, &st);
	d = json_object_get(p, "devices");
	*assigned = d ? json_integer_value(json_object_get(d, "assigned")) : -1;
	*applied = d ? json_integer_value(json_object_get(d, "applied")) : -1;
	json_decref(p);
}

/* The device reports policy name at version as applied. */
static int
report(struct device_sim *d, struct client *dc, const char *name, int version)
{
	char body[160];
	struct resp r;
	int ok;

	snprintf(body, sizeof(body),
		 "{\"wait\":0,\"state\":{\"policy_name\":\"%s\",\"policy_version\":%d}}", name,
		 version);
	if (dev_req(d, dc, "POST", "/device/v1/checkin", body, 0, &r) != 0)
		return -1;
	ok = r.status == 200 || r.status == 204;
	resp_free(&r);
	return ok ? 0 : -1;
}

static void
test_policy_device_counts(void)
{
	struct env e;
	struct device_sim d[3];
	struct client *dc;
	struct resp r;
	char path[128];
	long long as, ap;

	CHECK(env_up(&e, "policy-counts") == 0, "server did not start");
	memset(d, 0, sizeof(d));
	dc = client_new(&e.s, NULL);
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/base", "{}", NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 201);
	CHECK(strstr(r.body, "\"devices\":{\"assigned\":0,\"applied\":0}") != NULL, "%s", r.body);
	resp_free(&r);
	for (int i = 0; i < 3; i++)
		CHECK(admin_enroll(e.admin, dc, &d[i], "p@example.com") == 0, "enroll %d", i);
	reach(&e, "base", &as, &ap);
	CHECK(as == 3 && ap == 0, "base (default): %lld assigned, %lld applied", as, ap);
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/kiosk",
			 "{\"offline\":{\"lock_after_hours\":4,\"wipe_after_days\":2}}", NULL,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 201);
	resp_free(&r);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/api/v1/devices/%s/policy", d[i].id);
		CHECK(client_req(e.admin, "PUT", path, "{\"policy\":\"kiosk\"}", NULL, &r) == 0,
		      "tx");
		CHECK_STATUS(r, 200);
		resp_free(&r);
	}
	reach(&e, "kiosk", &as, &ap);
	CHECK(as == 2 && ap == 0, "kiosk before check-in: %lld/%lld", as, ap);
	for (int i = 0; i < 2; i++)
		CHECK(report(&d[i], dc, "kiosk", 1) == 0, "check-in %d", i);
	CHECK(report(&d[2], dc, "base", 1) == 0, "check-in 2");
	reach(&e, "kiosk", &as, &ap);
	CHECK(as == 2 && ap == 2, "kiosk after check-in: %lld/%lld", as, ap);
	reach(&e, "base", &as, &ap);
	CHECK(as == 1 && ap == 1, "base after check-in: %lld/%lld", as, ap);
	/* A new version is applied by nobody until devices report it. */
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/kiosk",
			 "{\"offline\":{\"lock_after_hours\":5,\"wipe_after_days\":2}}", NULL,
			 &r) == 0,
	      "tx");
	CHECK(r.status == 200 && strstr(r.body, "\"devices\":{\"assigned\":2,\"applied\":0}"),
	      "new version: %s", r.body);
	resp_free(&r);
	CHECK(client_req(e.admin, "GET", "/api/v1/policies", NULL, NULL, &r) == 0, "tx");
	CHECK(r.status == 200 && strstr(r.body, "\"devices\":{\"assigned\":1,\"applied\":1}"),
	      "list: %s", r.body);
	resp_free(&r);
	for (int i = 0; i < 3; i++)
		dev_fini(&d[i]);
	client_free(dc);
	env_down(&e);
}

static const struct t_case aq_cases[] = {
	{"audit_filters_and_paging", test_audit_filters_and_paging},
	{"audit_export", test_audit_export},
	{"audit_verify_checkpoint", test_audit_verify_checkpoint},
	{"api_headers_and_head", test_api_headers_and_head},
	{"policy_device_counts", test_policy_device_counts},
};

#ifndef TEST_AQ_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(aq_cases, sizeof(aq_cases) / sizeof(aq_cases[0]), argc, argv);
}
#endif
