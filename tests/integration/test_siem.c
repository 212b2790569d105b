/*
 * Integration tests of the audit stream to a SIEM (issue 11 §3): a real rsyslog from Debian's
 * packages (tests/lib/siemtest.h: the test's own process on 127.0.0.1, TLS, its own config)
 * receives the stream of a real cleave-server. Every audit entry must arrive once, in order,
 * with the chain hash and detail that GET /api/v1/audit shows, a hostile token name as text.
 * The server killed with SIGKILL while streaming and started again: no entry missing, repeats
 * only within the documented window (the one batch in flight, re-sent in order). rsyslog
 * stopped for a while and started again: every entry made meanwhile arrives, once. The file
 * transport with JSON lines, and the settings the server must refuse, need no rsyslog.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "siemtest.h"
#include "testlib.h"

#define BATCH   5 /* siem_batch: small, so that a kill lands in the middle of a stream */
#define HOSTILE "x\"] \\ <b>&amp;</b> é"

struct env {
	struct srv s;
	struct client *admin;
	struct collector rs;
	int mutual_tls; /* rsyslog wants a client certificate signed by its CA */
	char conf[PATH_MAX + 16];
};

static int
start(struct env *e)
{
	const char *extra[] = {"--config", e->conf, NULL};

	if (srv_start(&e->s, extra) != 0)
		return -1;
	client_free(e->admin);
	e->admin = client_new(&e->s, e->s.admin);
	return e->admin ? 0 : -1;
}

/* name in the test's directory (the data directory's parent), beside the server. */
static void
beside(const struct env *e, char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%.*s/%s", (int)strlen(e->s.dir) - 5, e->s.dir, name);
}

/* A server whose config is settings, not started yet. */
static int
env_init(struct env *e, const char *tag, const char *settings)
{
	FILE *f;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0)
		return -1;
	beside(e, e->conf, sizeof(e->conf), "server.conf");
	f = fopen(e->conf, "w");
	if (f == NULL)
		return -1;
	fputs(settings, f);
	fclose(f);
	return 0;
}

/* rsyslog on a free port, running, and the settings that stream to it added. */
static int
env_collector(struct env *e)
{
	char settings[PATH_MAX + 128];
	FILE *f;

	if (collector_init(&e->rs, e->mutual_tls) != 0)
		return -1;
	collector_settings(&e->rs, settings, sizeof(settings));
	f = fopen(e->conf, "a");
	if (f == NULL)
		return -1;
	fputs(settings, f);
	fclose(f);
	return collector_start(&e->rs);
}

static void
env_down(struct env *e)
{
	client_free(e->admin);
	e->admin = NULL;
	collector_stop(&e->rs);
	srv_cleanup(&e->s);
}

/* Makes n audit entries (API tokens; the first with a hostile name). 0 or -1. */
static int
make_entries(struct env *e, int n)
{
	char tok[128];
	struct resp r;
	int ok;

	ok = client_req(e->admin, "POST", "/api/v1/tokens",
			"{\"name\":\"x\\\"] \\\\ <b>&amp;</b> é\",\"role\":\"auditor\"}", NULL,
			&r) == 0 &&
	     r.status == 201;
	resp_free(&r);
	for (int i = 1; ok && i < n; i++)
		ok = admin_token(e->admin, "auditor", tok, sizeof(tok)) == 0;
	return ok ? 0 : -1;
}

/* GET /api/v1/audit/stream: its lag, and this server's sending, connected and problem. */
static int
stream_state(struct env *e, long long *lag, int *sending, int *connected, char *problem, size_t cap)
{
	long status = 0;
	json_t *j = client_get_json(e->admin, "/api/v1/audit/stream", &status);
	json_t *me = json_object_get(j, "this_server");
	const char *target = json_string_value(json_object_get(me, "target"));
	int ok = status == 200 && target != NULL && strncmp(target, "tls://127.0.0.1:", 16) == 0 &&
		 json_integer_value(json_object_get(j, "head")) ==
			 json_integer_value(json_object_get(j, "position")) +
				 json_integer_value(json_object_get(j, "lag"));

	*lag = json_integer_value(json_object_get(j, "lag"));
	*sending = json_is_true(json_object_get(me, "sending"));
	*connected = json_is_true(json_object_get(me, "connected"));
	snprintf(problem, cap, "%s",
		 json_is_string(json_object_get(me, "problem"))
			 ? json_string_value(json_object_get(me, "problem"))
			 : "");
	json_decref(j);
	return ok ? 0 : -1;
}

/* Waits (bounded, 10 s) until the stream's newest checkpoint is the server's newest one. */
static int
wait_checkpoint(struct env *e)
{
	long long want = -1, got = 0;

	for (int i = 0; i < 100; i++) {
		long status = 0;
		json_t *j = client_get_json(e->admin, "/api/v1/audit/verify", &status);

		want = json_integer_value(
			json_object_get(json_object_get(j, "last_checkpoint"), "seq"));
		json_decref(j);
		got = collector_last_checkpoint(&e->rs);
		if (status == 200 && want > 0 && got == want)
			return 0;
		usleep(100000);
	}
	printf("    newest checkpoint names entry %lld; the stream's %lld\n", want, got);
	return -1;
}

static void
test_stream_kill_and_collector_down(void)
{
	const char *why = collector_skip_reason();
	char problem[256];
	long long lag;
	int sending, connected;
	struct env e;
	double t0;

	if (why != NULL)
		SKIP("%s", why);
	CHECK(env_init(&e, "siem",
		       "siem_batch = 5\nsiem_hold_ms = 150\nsiem_lease_seconds = 2\n"
		       "siem_max_backoff_seconds = 1\naudit_checkpoint_entries = 10\n") == 0,
	      "setup");
	CHECK(env_collector(&e) == 0, "rsyslog did not start");
	CHECK(start(&e) == 0, "server did not start");

	/* Every entry once, in order, as the API shows it; the hostile name as text. */
	CHECK(make_entries(&e, 12) == 0, "entries");
	CHECK(collector_wait_stream(&e.rs, e.admin, 0, 0, 20) == 0, "the stream");
	CHECK(collector_entry_lines(e.rs.out) == 13, "%d messages for 13 entries",
	      collector_entry_lines(e.rs.out));
	/* The position moves once a batch settled: a moment after rsyslog wrote it. */
	for (int i = 0;
	     i < 50 &&
	     stream_state(&e, &lag, &sending, &connected, problem, sizeof(problem)) == 0 && lag > 0;
	     i++)
		usleep(100000);
	CHECK(stream_state(&e, &lag, &sending, &connected, problem, sizeof(problem)) == 0 &&
		      lag == 0 && sending && connected && problem[0] == '\0',
	      "GET /api/v1/audit/stream: lag %lld sending %d connected %d problem %s", lag, sending,
	      connected, problem);

	/* SIGKILL while a stream of 100 entries is halfway: none lost, repeats within a batch. */
	CHECK(make_entries(&e, 100) == 0, "entries");
	for (int i = 0; i < 400 && collector_lines(e.rs.out) < 40; i++)
		usleep(10000);
	CHECK(collector_lines(e.rs.out) < 113, "the stream was over before the kill");
	CHECK(srv_stop(&e.s, SIGKILL) >= 0, "kill");
	CHECK(start(&e) == 0, "server did not start again");
	CHECK(collector_wait_stream(&e.rs, e.admin, BATCH, 1, 40) == 0,
	      "the stream after the restart");

	/* The collector down for a while: what was made meanwhile arrives when it is back. */
	collector_stop(&e.rs);
	CHECK(make_entries(&e, 10) == 0, "entries");
	sleep(2);
	/* Meanwhile the API answers at once, and says what is wrong. */
	t0 = now_s();
	CHECK(stream_state(&e, &lag, &sending, &connected, problem, sizeof(problem)) == 0 &&
		      lag >= 10 && sending && !connected && problem[0] != '\0',
	      "collector down: lag %lld sending %d connected %d problem %s", lag, sending,
	      connected, problem);
	CHECK(make_entries(&e, 1) == 0 && now_s() - t0 < 1.0, "the API waited for the collector");
	CHECK(collector_start(&e.rs) == 0, "rsyslog did not start again");
	CHECK(collector_wait_stream(&e.rs, e.admin, BATCH, 1, 30) == 0,
	      "the stream after the collector came back");
	/* The signed checkpoints follow the entries they name; the newest arrives too. */
	CHECK(wait_checkpoint(&e) == 0, "the newest checkpoint did not arrive");
	printf("    %d messages for 124 entries and their checkpoints\n",
	       collector_lines(e.rs.out));
	env_down(&e);
}

/* A collector whose certificate does not name the configured server name gets nothing. */
static void
test_tls_name_checked(void)
{
	const char *why = collector_skip_reason();
	char problem[256];
	long long lag = 0;
	int sending = 0, connected = 1;
	struct env e;

	if (why != NULL)
		SKIP("%s", why);
	CHECK(env_init(&e, "siem-name", "siem_server_name = other.example.com\n") == 0, "setup");
	CHECK(env_collector(&e) == 0, "rsyslog did not start");
	CHECK(start(&e) == 0, "server did not start");
	for (int i = 0; i < 50 && (stream_state(&e, &lag, &sending, &connected, problem,
						sizeof(problem)) != 0 ||
				   problem[0] == '\0');
	     i++)
		usleep(100000);
	CHECK(!connected && strstr(problem, "TLS") != NULL && lag == 1,
	      "connected %d, problem \"%s\", lag %lld", connected, problem, lag);
	CHECK(collector_lines(e.rs.out) == 0, "the collector received messages");
	env_down(&e);
}

/* A collector that wants a client certificate: without one nothing arrives; with one, all. */
static void
test_client_certificate(void)
{
	const char *why = collector_skip_reason();
	char problem[256], conf[PATH_MAX * 2 + 64];
	long long lag = 0;
	int sending = 0, connected = 1;
	struct env e;
	FILE *f;

	if (why != NULL)
		SKIP("%s", why);
	CHECK(env_init(&e, "siem-mtls", "") == 0, "setup");
	e.mutual_tls = 1;
	CHECK(env_collector(&e) == 0, "rsyslog did not start");
	CHECK(start(&e) == 0, "server did not start");
	for (int i = 0; i < 50 && (stream_state(&e, &lag, &sending, &connected, problem,
						sizeof(problem)) != 0 ||
				   problem[0] == '\0');
	     i++)
		usleep(100000);
	CHECK(!connected && problem[0] != '\0' && collector_lines(e.rs.out) == 0,
	      "without a client certificate: connected %d, problem \"%s\"", connected, problem);
	CHECK(srv_stop(&e.s, SIGTERM) == 0, "stop");
	snprintf(conf, sizeof(conf),
		 "siem_client_cert = %s/client.pem\nsiem_client_key = %s/client.key\n", e.rs.dir,
		 e.rs.dir);
	f = fopen(e.conf, "a");
	CHECK(f != NULL, "conf");
	fputs(conf, f);
	fclose(f);
	CHECK(start(&e) == 0, "server did not start again");
	CHECK(make_entries(&e, 3) == 0, "entries");
	CHECK(collector_wait_stream(&e.rs, e.admin, 0, 0, 20) == 0,
	      "the stream with a client certificate");
	env_down(&e);
}

/* The entry seq of the audit log, read through admin; its "hash" and "detail" into out. */
static int
api_entry(struct client *admin, long long seq, char *hash, char *detail, size_t cap)
{
	char path[96];
	long status = 0;
	json_t *j, *it;
	int r = -1;

	snprintf(path, sizeof(path), "/api/v1/audit?limit=200");
	j = client_get_json(admin, path, &status);
	it = json_array_get(json_object_get(j, "items"), (size_t)seq - 1);
	if (status == 200 && json_integer_value(json_object_get(it, "seq")) == seq) {
		snprintf(hash, 65, "%s", json_string_value(json_object_get(it, "hash")));
		snprintf(detail, cap, "%s", json_string_value(json_object_get(it, "detail")));
		r = 0;
	}
	json_decref(j);
	return r;
}

/*
 * A collector that accepts connections and never answers (a socket of the test's that listens
 * and never reads): the stream's thread waits in the TLS handshake, while the API answers at
 * once, and a stop does not wait for it.
 */
static void
test_stalled_collector(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	char settings[PATH_MAX + 128], problem[256];
	long long lag = 0;
	int sending = 0, connected = 0, fd, stopped;
	struct env e;
	double t0, slowest = 0;

	CHECK(env_init(&e, "siem-stall", "") == 0, "setup");
	CHECK(collector_init(&e.rs, 0) == 0, "certificates");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 8) == 0 &&
		      getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
	      "listen");
	snprintf(settings, sizeof(settings),
		 "siem_target = tls://127.0.0.1:%u\nsiem_ca = %s/ca.pem\n", ntohs(sa.sin_port),
		 e.rs.dir);
	{
		FILE *f = fopen(e.conf, "w");

		if (f != NULL) {
			fputs(settings, f);
			fclose(f);
		}
	}
	if (start(&e) != 0) {
		close(fd);
		CHECK(0, "server did not start");
	}
	for (int i = 0; i < 20; i++) {
		t0 = now_s();
		if (make_entries(&e, 1) != 0)
			break;
		slowest = now_s() - t0 > slowest ? now_s() - t0 : slowest;
	}
	for (int i = 0;
	     i < 100 &&
	     stream_state(&e, &lag, &sending, &connected, problem, sizeof(problem)) == 0 &&
	     problem[0] == '\0';
	     i++)
		usleep(100000);
	t0 = now_s();
	stopped = srv_stop(&e.s, SIGTERM);
	close(fd);
	CHECK(stopped == 0, "the server did not stop cleanly (%d)", stopped);
	CHECK(slowest < 0.5, "a request took %.2f s while the collector stalled", slowest);
	CHECK(lag >= 20 && !connected && strstr(problem, "TLS") != NULL,
	      "lag %lld, connected %d, problem \"%s\"", lag, connected, problem);
	CHECK(now_s() - t0 < 3.0, "the stop waited %.1f s for the stalled stream", now_s() - t0);
	env_down(&e);
}

/* The status of GET /api/v1/audit/stream with a fresh token of role. */
static long
role_status(struct env *e, const char *role)
{
	char tok[128];
	struct client *c;
	struct resp r;
	long status = -1;

	if (admin_token(e->admin, role, tok, sizeof(tok)) != 0)
		return -1;
	c = client_new(&e->s, tok);
	if (c != NULL && client_req(c, "GET", "/api/v1/audit/stream", NULL, NULL, &r) == 0) {
		status = r.status;
		resp_free(&r);
	}
	client_free(c);
	return status;
}

/* JSON lines into a file: each entry one line, hash and detail as the API's. */
static void
test_json_file(void)
{
	char settings[PATH_MAX + 64], file[PATH_MAX + 16], line[4096];
	char hash[65], detail[1024];
	struct env e;
	long long seq = 0;

	CHECK(env_init(&e, "siem-json", "") == 0, "setup");
	beside(&e, file, sizeof(file), "audit.jsonl");
	snprintf(settings, sizeof(settings), "siem_target = file:%s\nsiem_format = json\n", file);
	{
		FILE *f = fopen(e.conf, "w");

		CHECK(f != NULL, "conf");
		fputs(settings, f);
		fclose(f);
	}
	CHECK(start(&e) == 0, "server did not start");
	CHECK(make_entries(&e, 5) == 0, "entries");
	for (int i = 0; i < 100 && collector_lines(file) < 6; i++)
		usleep(100000);
	usleep(300000);
	CHECK(collector_lines(file) == 6, "%d lines for 6 entries", collector_lines(file));
	FILE *f = fopen(file, "r");
	CHECK(f != NULL, "no file");
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *j = json_loads(line, 0, NULL);

		if (json_object_get(j, "checkpoint") != NULL) { /* the one made at a stop */
			json_decref(j);
			continue;
		}
		long long s = json_integer_value(json_object_get(j, "seq"));
		const char *h = json_string_value(json_object_get(j, "hash"));
		const char *d = json_string_value(json_object_get(j, "detail"));
		int ok = s == seq + 1 && h && d &&
			 api_entry(e.admin, s, hash, detail, sizeof(detail)) == 0 &&
			 strcmp(h, hash) == 0 && strcmp(d, detail) == 0 &&
			 json_string_value(json_object_get(j, "prev_hash")) != NULL &&
			 (s != 2 || strstr(d, HOSTILE) != NULL);

		json_decref(j);
		if (!ok)
			fclose(f);
		CHECK(ok, "line %lld is not the API's entry: %.200s", seq + 1, line);
		seq = s;
	}
	fclose(f);
	/* The stream's state is for admins and auditors, as the log itself. */
	CHECK(role_status(&e, "auditor") == 200 && role_status(&e, "helpdesk") == 403,
	      "GET /api/v1/audit/stream: auditor %ld, helpdesk %ld", role_status(&e, "auditor"),
	      role_status(&e, "helpdesk"));
	env_down(&e);
}

static int
check_config(struct env *e)
{
	char cmd[PATH_MAX * 2 + 128];
	const char *bin = getenv("CLEAVE_BIN");

	snprintf(cmd, sizeof(cmd),
		 "'%s/cleave-server' --data '%s' --config '%s' --check-config >/dev/null 2>&1",
		 bin ? bin : "build/bin", e->s.dir, e->conf);
	return system(cmd);
}

/* Settings the server refuses: no CA for TLS, plain TCP to another host, a bad SD-ID. */
static void
test_refused_settings(void)
{
	static const char *const bad[] = {
		"siem_target = tls://127.0.0.1:6514\n",
		"siem_target = tls://127.0.0.1:6514\nsiem_ca = /nonexistent/ca.pem\n",
		"siem_target = tcp://192.0.2.1:514\n",
		"siem_target = udp://127.0.0.1:514\n",
		"siem_target = tcp://127.0.0.1:514\nsiem_sd_id = cleave\n",
		"siem_target = file:relative.log\n",
		"siem_target = tls://127.0.0.1:6514\nsiem_ca = /x.pem\nsiem_client_cert = /c.pem\n",
	};
	struct env e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(env_init(&e, "siem-conf", bad[i]) == 0, "setup");
		CHECK(check_config(&e) != 0, "accepted: %s", bad[i]);
		srv_cleanup(&e.s);
	}
	CHECK(env_init(&e, "siem-conf",
		       "siem_target = tcp://192.0.2.1:514\nsiem_allow_plain_tcp = 1\n") == 0,
	      "setup");
	CHECK(check_config(&e) == 0, "plain TCP with siem_allow_plain_tcp refused");
	srv_cleanup(&e.s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"stream_kill_and_collector_down", test_stream_kill_and_collector_down},
		{"tls_name_checked", test_tls_name_checked},
		{"client_certificate", test_client_certificate},
		{"stalled_collector", test_stalled_collector},
		{"json_file", test_json_file},
		{"refused_settings", test_refused_settings},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
