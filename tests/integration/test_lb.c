/*
 * Several cleave-servers on one PostgreSQL database behind a TLS-terminating load balancer
 * (issue 10 §2): HAProxy from Debian's packages terminates TLS on 127.0.0.1 with its own
 * certificate and forwards each request, over TLS, to one of two servers that share the
 * database and one keys directory. Devices enroll and check in through the balancer (their
 * RFC 9421 signatures cover @method, @path, @query and content-digest, which the balancer
 * does not change); a console session made on one server works on the other; a signed request
 * accepted by one server is refused as a replay by the other; server A is killed with SIGKILL
 * and every command queued before is delivered, and completed, through B. A server started
 * with other signing keys refuses to start. Skipped, with the reason, without PostgreSQL or
 * HAProxy.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "browser.h"
#include "farm.h"
#include "fileio.h"
#include "pgtest.h"
#include "testlib.h"
#include "util.h"

#define NDEV     3
#define PASSWORD "correct horse battery staple 10"

static struct pgtest *pg;

/* Checks in once (wait 0) and completes every command returned; *found when want came. */
static int
checkin_complete(struct device_sim *d, struct client *c, const char *want, int *found)
{
	struct resp r;
	json_t *j, *it;
	size_t k;

	if (dev_req(d, c, "POST", "/device/v1/checkin",
		    "{\"wait\":0,\"state\":{\"policy_name\":\"\",\"policy_version\":0}}", 0,
		    &r) != 0)
		return -1;
	if (r.status != 200 && r.status != 204) {
		printf("    check-in: HTTP %ld %s\n", r.status, r.body ? r.body : "");
		resp_free(&r);
		return -1;
	}
	j = resp_json(&r);
	resp_free(&r);
	json_array_foreach(json_object_get(j, "commands"), k, it)
	{
		const char *id = json_string_value(json_object_get(it, "id"));
		char p[160];

		if (id == NULL)
			continue;
		if (want != NULL && strcmp(id, want) == 0)
			*found = 1;
		snprintf(p, sizeof(p), "/device/v1/commands/%s/result", id);
		if (dev_req(d, c, "POST", p, "{\"status\":\"completed\"}", 0, &r) != 0 ||
		    r.status >= 300) {
			printf("    result: HTTP %ld %s\n", r.status, r.body ? r.body : "");
			resp_free(&r);
			json_decref(j);
			return -1;
		}
		resp_free(&r);
	}
	json_decref(j);
	return 0;
}

/* The check-ins server s answered (its /metrics, asked directly); -1 when unknown. */
#define LINE "cleave_http_requests_total{route=\"/device/v1/checkin\""
static long
checkins_on(const struct srv *s)
{
	struct client *c = client_new(s, NULL);
	struct resp r = {0};
	const char *p;
	long n = -1;

	/* Every status of the check-in route: one counter line each. */
	if (c != NULL && client_req(c, "GET", "/metrics", NULL, NULL, &r) == 0 && r.body) {
		n = 0;
		for (p = r.body; (p = strstr(p, LINE)) != NULL; p += strlen(LINE)) {
			const char *v = strchr(p, ' ');

			n += v ? strtol(v + 1, NULL, 10) : 0;
		}
	}
	resp_free(&r);
	client_free(c);
	return n;
}

/*
 * Devices enroll and check in through the balancer (so on both servers); a command is queued
 * for each; server A dies by SIGKILL; each device's next check-in through the balancer
 * reaches B and gets its command, and its result is recorded.
 */
static void
test_lb_failover(void)
{
	struct farm f;
	struct device_sim d[NDEV];
	char cmd[NDEV][64], st[32];
	int found[NDEV] = {0}, n = 0;

	FARM_UP(&f, 2, "lb-failover", pg);
	memset(d, 0, sizeof(d));
	for (; n < NDEV; n++) {
		char owner[32];

		snprintf(owner, sizeof(owner), "lb%d@example.com", n);
		if (admin_enroll(f.admin, f.anon, &d[n], owner) != 0)
			break;
		/* Twice: round robin puts one check-in on each server. */
		if (checkin_complete(&d[n], f.anon, NULL, &found[n]) != 0 ||
		    checkin_complete(&d[n], f.anon, NULL, &found[n]) != 0)
			break;
		if (admin_command(f.admin, d[n].id, "lock", cmd[n], sizeof(cmd[n])) != 202)
			break;
	}
	/* The balancer spread the check-ins: both servers served some. */
	if (n == NDEV && (checkins_on(&f.s[0]) < 1 || checkins_on(&f.s[1]) < 1))
		n = -4;
	if (n == NDEV && srv_stop(&f.s[0], SIGKILL) != 128 + SIGKILL)
		n = -1;
	for (int i = 0; n == NDEV && i < NDEV; i++)
		if (checkin_complete(&d[i], f.anon, cmd[i], &found[i]) != 0)
			n = -2;
	for (int i = 0; n == NDEV && i < NDEV; i++) {
		admin_command_status(f.admin, cmd[i], st, sizeof(st));
		if (!found[i] || strcmp(st, "completed") != 0) {
			printf("    device %d: command %s delivered %d, status '%s'\n", i, cmd[i],
			       found[i], st);
			n = -3;
		}
	}
	for (int i = 0; i < NDEV; i++)
		dev_fini(&d[i]);
	farm_down(&f);
	CHECK(n == NDEV, "failover through the balancer failed (step %d)", n);
}

/* A device parked through the balancer: polls (again after a cut) until a lock arrives. */
struct parker {
	struct device_sim *d;
	const struct srv *lb;
	int got, cuts;
};

static void *
park(void *p)
{
	struct parker *k = p;
	struct client *c = client_new(k->lb, NULL);
	double end = now_s() + 30;

	/* Bounded: 30 s, and each poll waits at most 20 s. */
	while (c != NULL && !k->got && now_s() < end) {
		struct resp r = {0};
		json_t *j, *it;
		size_t i;

		if (dev_req(k->d, c, "POST", "/device/v1/checkin", "{\"wait\":20}", 0, &r) != 0 ||
		    r.status >= 500) {
			k->cuts++; /* its server died under it: the agent polls again */
			resp_free(&r);
			usleep(100000);
			continue;
		}
		j = resp_json(&r);
		resp_free(&r);
		json_array_foreach(json_object_get(j, "commands"), i, it)
		{
			const char *t = json_string_value(json_object_get(it, "type"));

			k->got |= t != NULL && strcmp(t, "lock") == 0;
		}
		json_decref(j);
	}
	client_free(c);
	return NULL;
}

/*
 * Devices park through the balancer, so on both servers; A dies by SIGKILL with some parked on
 * it; those poll again through the balancer and reach B; a lock queued then reaches every one.
 */
static void
test_lb_parked_reconnect(void)
{
	struct farm f;
	struct device_sim d[NDEV];
	struct parker k[NDEV];
	pthread_t th[NDEV];
	char cmd[64];
	int n = 0, started = 0, ok = 1, cuts = 0;
	long on_a = -1;

	FARM_UP(&f, 2, "lb-parked", pg);
	memset(d, 0, sizeof(d));
	for (int found = 0; n < NDEV; n++) {
		char owner[32];

		snprintf(owner, sizeof(owner), "park%d@example.com", n);
		if (admin_enroll(f.admin, f.anon, &d[n], owner) != 0 ||
		    checkin_complete(&d[n], f.anon, NULL, &found) != 0)
			break;
	}
	for (; n == NDEV && started < NDEV; started++) {
		k[started] = (struct parker){.d = &d[started], .lb = &f.lb};
		if (pthread_create(&th[started], NULL, park, &k[started]) != 0)
			break;
	}
	/* Round robin: of three polls, A holds one or two (bounded wait: 5 s). */
	for (int i = 0; started == NDEV && i < 50 &&
			(on_a = farm_metric(&f.s[0], "cleave_parked_connections")) < 1;
	     i++)
		usleep(100000);
	if (on_a >= 1 && srv_stop(&f.s[0], SIGKILL) == 128 + SIGKILL)
		for (int i = 0; i < NDEV; i++)
			ok &= admin_command(f.admin, d[i].id, "lock", cmd, sizeof(cmd)) == 202;
	else
		ok = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		ok &= k[i].got;
		cuts += k[i].cuts;
	}
	for (int i = 0; i < NDEV; i++)
		dev_fini(&d[i]);
	farm_down(&f);
	CHECK(n == NDEV && started == NDEV, "setup failed");
	CHECK(on_a >= 1, "no poll parked on server A (%ld)", on_a);
	CHECK(cuts >= 1, "no parked poll was cut by A's death");
	CHECK(ok, "a device did not get its lock through B after A died");
}

/* Signs in to the console on one server; the cookie and CSRF token work on the other. */
static void
test_lb_session(void)
{
	struct farm f;
	struct client *wa = NULL, *wb = NULL;
	char body[256], cookie[300] = "", csrf[200] = "", tok[128];
	struct resp r = {0};
	long on_b = -1, no_csrf = -1, with_csrf = -1;

	FARM_UP(&f, 2, "lb-session", pg);
	wa = client_new(&f.s[0], NULL);
	wb = client_new(&f.s[1], NULL);
	snprintf(body, sizeof(body), "{\"email\":\"ops@example.com\",\"password\":\"%s\"}",
		 PASSWORD);
	if (wa && wb && browser_admin(f.admin, "ops@example.com", "admin", PASSWORD) == 0 &&
	    client_req(wa, "POST", "/api/v1/session", body, NULL, &r) == 0 && r.status == 200) {
		const char *v = strchr(r.set_cookie, '=');

		snprintf(cookie, sizeof(cookie), "Cookie: cleave_session=%.*s",
			 v ? (int)strcspn(v + 1, ";") : 0, v ? v + 1 : "");
		if (resp_str(&r, "csrf_token", tok, sizeof(tok)) == 0)
			snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", tok);
	}
	resp_free(&r);
	if (csrf[0] != '\0') {
		const char *h1[] = {cookie, NULL}, *h2[] = {cookie, csrf, NULL};
		const char *et = "{\"owner\":\"x@example.com\",\"uses\":1}";

		if (client_req(wb, "GET", "/api/v1/session", NULL, h1, &r) == 0)
			on_b = r.status;
		resp_free(&r);
		if (client_req(wb, "POST", "/api/v1/enrollment-tokens", et, h1, &r) == 0)
			no_csrf = r.status;
		resp_free(&r);
		if (client_req(wb, "POST", "/api/v1/enrollment-tokens", et, h2, &r) == 0)
			with_csrf = r.status;
		resp_free(&r);
	}
	client_free(wa);
	client_free(wb);
	farm_down(&f);
	CHECK(csrf[0] != '\0', "no console session on server A");
	CHECK(on_b == 200, "A's session cookie on B: HTTP %ld", on_b);
	CHECK(no_csrf == 403, "a POST without the CSRF token on B: HTTP %ld", no_csrf);
	CHECK(with_csrf == 201, "A's CSRF token on B: HTTP %ld", with_csrf);
}

/*
 * The device's newest nonce reaches A only; B saw an older one (so its own window would take
 * the newer): the same signed request sent to B must still be refused.
 */
static void
test_lb_replay(void)
{
	struct farm f;
	struct device_sim d = {0};
	struct client *ca = NULL, *cb = NULL;
	char hdrs[3][600];
	const char *h[4];
	const char *body = "{\"wait\":0}";
	struct resp r = {0};
	long first = -1, on_b = -1, again_a = -1;
	int enrolled;

	FARM_UP(&f, 2, "lb-replay", pg);
	ca = client_new(&f.s[0], NULL);
	cb = client_new(&f.s[1], NULL);
	enrolled = ca && cb && admin_enroll(f.admin, f.anon, &d, "replay@example.com") == 0;
	if (enrolled && dev_req(&d, cb, "POST", "/device/v1/checkin", body, 0, &r) == 0) {
		resp_free(&r);
		dev_sign(&d, "POST", "/device/v1/checkin", body, time(NULL), ++d.nonce, hdrs, h);
		if (client_req(ca, "POST", "/device/v1/checkin", body, h, &r) == 0)
			first = r.status;
		resp_free(&r);
		if (client_req(cb, "POST", "/device/v1/checkin", body, h, &r) == 0)
			on_b = r.status;
		resp_free(&r);
		if (client_req(ca, "POST", "/device/v1/checkin", body, h, &r) == 0)
			again_a = r.status;
		resp_free(&r);
	}
	dev_fini(&d);
	client_free(ca);
	client_free(cb);
	farm_down(&f);
	CHECK(enrolled, "enrollment through the balancer failed");
	CHECK(first == 200 || first == 204, "the signed request on A: HTTP %ld", first);
	CHECK(on_b == 401, "the same request replayed to B: HTTP %ld, want 401", on_b);
	CHECK(again_a == 401, "the same request replayed to A: HTTP %ld, want 401", again_a);
}

/* A server whose keys are not the deployment's stops with a clear error, before serving. */
static void
test_lb_keys_mismatch(void)
{
	struct srv a = {0}, c = {0};
	char keys_a[PATH_MAX + 8], keys_c[PATH_MAX + 8], log[4096] = "";
	const char *ea[] = {"--keys", keys_a, NULL}, *ec[] = {"--keys", keys_c, NULL};
	int started_a, started_c = -2;
	FILE *fl;

	started_a = srv_init(&a, "lb-keys-a") == 0 && srv_use_pg(&a, pg) == 0 &&
		    srv_init(&c, "lb-keys-c") == 0;
	/* Beside each data directory (DIR/../), removed with it. */
	snprintf(keys_a, sizeof(keys_a), "%.*s/keys-a", (int)strlen(a.dir) - 5, a.dir);
	snprintf(keys_c, sizeof(keys_c), "%.*s/keys-c", (int)strlen(c.dir) - 5, c.dir);
	str_copy(c.database, sizeof(c.database), a.database);
	if (started_a && mkdir(keys_a, 0700) == 0 && mkdir(keys_c, 0700) == 0)
		started_a = srv_start(&a, ea) == 0;
	else
		started_a = 0;
	if (started_a)
		started_c = srv_start(&c, ec);
	fl = fopen(c.log, "r");
	if (fl != NULL) {
		size_t n = fread(log, 1, sizeof(log) - 1, fl);

		log[n] = '\0';
		fclose(fl);
	}
	srv_cleanup(&a);
	srv_cleanup(&c);
	CHECK(started_a, "server A did not start");
	CHECK(started_c != 0, "a server with other keys started on the deployment's database");
	CHECK(strstr(log, "ticket-signing key") && strstr(log, "not the deployment's"),
	      "no clear error in the log: %.600s", log);
}

/*
 * Garbage from one client (127.0.0.2) through the balancer spends that client's refusal
 * budget, not the balancer's: it ends in 429 while a device at 127.0.0.1 still checks in.
 */
static void
test_lb_forwarded_client(void)
{
	struct farm f;
	struct device_sim d = {0};
	struct resp r = {0};
	char cmd[2 * PATH_MAX + 256];
	long device = -1;
	int last = -1, enrolled, named = 0;

	FARM_UP(&f, 2, "lb-forwarded", pg);
	enrolled = admin_enroll(f.admin, f.anon, &d, "fwd@example.com") == 0;
	/* Two servers, 4 each: the tenth refusal from 127.0.0.2 is answered 429 by both. */
	snprintf(cmd, sizeof(cmd),
		 "for i in $(seq 10); do curl -s -o /dev/null -w '%%{http_code}\\n' "
		 "--interface 127.0.0.2 --cacert '%s' -X POST -d '{}' %s/device/v1/checkin; "
		 "done | tail -n 1 | grep -q 429",
		 f.lb.cacert, f.lb.url);
	if (enrolled) {
		last = system(cmd);
		if (dev_req(&d, f.anon, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0)
			device = r.status;
		resp_free(&r);
		/* The refusal's audit row names the client, not the balancer. */
		if (client_req(f.admin, "GET", "/api/v1/audit?action=device.auth", NULL, NULL,
			       &r) == 0)
			named = r.body && strstr(r.body, "\"target\":\"127.0.0.2\"") != NULL;
		resp_free(&r);
	}
	dev_fini(&d);
	farm_down(&f);
	CHECK(enrolled, "enrollment through the balancer failed");
	CHECK(last == 0, "127.0.0.2's tenth refused request was not answered 429");
	CHECK(device == 200 || device == 204, "the device at 127.0.0.1: HTTP %ld", device);
	CHECK(named, "no refusal audited with 127.0.0.2 as its source");
}

/* Appends audit entries on one server (an enrollment token each) until *stop. */
struct appender {
	const struct srv *s;
	const char *token;
	volatile int *stop;
	int made;
};

static void *
append_entries(void *p)
{
	struct appender *w = p;
	struct client *c = client_new(w->s, w->token);
	char secret[256];

	for (int i = 0; c != NULL && !*w->stop && i < 1000; i++)
		if (admin_etoken(c, "tail@example.com", 1, secret, sizeof(secret)) == 0)
			w->made++;
	client_free(c);
	return NULL;
}

/* A reader tailing the audit export: the last entry it holds and where it resumes. */
struct tail {
	long long seq; /* 0: none yet */
	char hash[72];
	char cursor[160];
	long long broken; /* the first entry that did not follow the one before, or 0 */
	int fresh;        /* entries the last piece brought */
};

/* Takes one entry of the export unless held already; checks it follows the last one held. */
static void
tail_take(struct tail *t, json_t *j)
{
	long long seq = json_integer_value(json_object_get(j, "seq"));
	const char *prev = json_string_value(json_object_get(j, "prev_hash"));
	const char *hash = json_string_value(json_object_get(j, "hash"));

	if (seq <= t->seq || t->broken)
		return;
	if (seq != t->seq + 1 || !prev || !hash || (t->seq > 0 && strcmp(prev, t->hash) != 0)) {
		printf("    tail: entry %lld came after %lld\n", seq, t->seq);
		t->broken = seq;
		return;
	}
	t->seq = seq;
	t->fresh++;
	str_copy(t->hash, sizeof(t->hash), hash);
}

/*
 * Reads the export piece of limit entries at t->cursor through c, as a SIEM tails the log: a
 * full piece gives the next cursor; a short one is the end for now, read again later.
 */
static int
tail_piece(struct client *c, struct tail *t, int limit)
{
	char path[256], next[160];
	struct resp r;

	snprintf(path, sizeof(path), "/api/v1/audit/export?limit=%d%s%s", limit,
		 t->cursor[0] ? "&cursor=" : "", t->cursor);
	if (client_req(c, "GET", path, NULL, NULL, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	t->fresh = 0;
	for (char *line = r.body, *nl; line && (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		json_t *j;

		*nl = '\0';
		j = json_loads(line, 0, NULL);
		tail_take(t, j);
		json_decref(j);
	}
	if (resp_header(&r, "Cleave-Next-Cursor", next, sizeof(next)) == 0)
		str_copy(t->cursor, sizeof(t->cursor), next);
	resp_free(&r);
	return 0;
}

/*
 * Both servers append audit entries at once while a reader tails the export through the
 * balancer (so from either server): every entry reaches the reader, in order and linked, none
 * skipped (an entry's seq is visible only once every smaller one is: server/README.md).
 */
static void
test_lb_audit_tail(void)
{
	struct farm f;
	struct tail t = {0}, whole = {0};
	volatile int stop = 0;
	struct appender w[2];
	pthread_t th[2];
	int started = 0, pieces = 0, errors = 0;
	long long total = -1;
	double end;

	FARM_UP(&f, 2, "lb-tail", pg);
	for (; started < 2; started++) {
		w[started] =
			(struct appender){.s = &f.s[started], .token = f.s[0].admin, .stop = &stop};
		if (pthread_create(&th[started], NULL, append_entries, &w[started]) != 0)
			break;
	}
	for (end = now_s() + 3; now_s() < end && !t.broken; pieces++)
		errors += tail_piece(f.admin, &t, 5) != 0;
	stop = 1;
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	/* Then to the end: until a piece brings nothing (bounded). */
	for (int i = 0; i < 500 && !t.broken; i++)
		if (tail_piece(f.admin, &t, 5) != 0 || t.fresh == 0)
			break;
	/* The whole log read afresh, in one piece: its last entry is the tail's. */
	if (tail_piece(f.admin, &whole, 5000) == 0 && !whole.broken)
		total = whole.seq;
	farm_down(&f);
	CHECK(started == 2, "writer threads");
	CHECK(w[0].made >= 10 && w[1].made >= 10, "too few entries made: %d and %d", w[0].made,
	      w[1].made);
	CHECK(errors == 0, "%d export requests failed", errors);
	CHECK(!t.broken, "the tail skipped to entry %lld", t.broken);
	CHECK(t.seq == total, "the tail holds entries 1..%lld of %lld", t.seq, total);
	printf("    %d + %d entries appended on two servers, tailed in %d pieces\n", w[0].made,
	       w[1].made, pieces);
}

static const struct t_case cases[] = {
	{"lb_forwarded_client", test_lb_forwarded_client},
	{"lb_failover", test_lb_failover},
	{"lb_parked_reconnect", test_lb_parked_reconnect},
	{"lb_session_across_servers", test_lb_session},
	{"lb_replay_other_server", test_lb_replay},
	{"lb_keys_mismatch", test_lb_keys_mismatch},
	{"lb_audit_tail", test_lb_audit_tail},
};

int
main(int argc, char **argv)
{
	return t_run_pg(cases, ARRAY_SIZE(cases), argc, argv, &pg);
}
