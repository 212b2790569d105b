/*
 * Integration tests of the audit stream to a SIEM (issue 11 §3): a real rsyslog from Debian's
 * packages, started here as a child process on 127.0.0.1 with its own configuration in the
 * test's directory (imtcp with TLS through the gtls driver, the raw messages written to a
 * file; no system rsyslog touched), receives the stream of a real cleave-server. Every audit
 * entry must arrive once, in order, with every field and the chain hash that GET /api/v1/audit
 * shows, a hostile token name as text. The server killed with SIGKILL while streaming and
 * started again: no entry missing, and repeats only within the documented window (the one
 * batch in flight, re-sent in order). rsyslog stopped for a while and started again: every
 * entry made meanwhile arrives, once. The file transport with JSON lines, and the settings
 * the server must refuse, are checked without rsyslog.
 */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "testlib.h"

#define RSYSLOGD  "/usr/sbin/rsyslogd"
#define BATCH     5 /* siem_batch: small, so that a kill lands in the middle of a stream */
#define MAX_SEQ   400
#define HOSTILE   "x\"] \\ <b>&amp;</b> é"

static int quiet; /* wait_stream's polls say nothing; its last check says why it failed */

struct collector {
	char dir[PATH_MAX];
	char out[PATH_MAX + 16];
	unsigned port;
	pid_t pid;
};

struct env {
	struct srv s;
	struct client *admin;
	struct collector rs;
	char conf[PATH_MAX + 16];
};

/* What one received message says: its seq and chain hash, and its detail unescaped. */
struct msg {
	long long seq;
	char hash[65];
	char detail[1024];
};

static const char *
skip_reason(void)
{
	glob_t g;
	int found;

	if (access(RSYSLOGD, X_OK) != 0)
		return "rsyslog is not installed (scripts/deps.sh installs rsyslog, rsyslog-gnutls)";
	found = glob("/usr/lib/*/rsyslog/lmnsd_gtls.so", 0, NULL, &g) == 0;
	globfree(&g);
	if (!found)
		return "rsyslog's TLS driver is not installed (rsyslog-gnutls)";
	if (system("command -v openssl >/dev/null") != 0)
		return "openssl is not installed";
	return NULL;
}

/* A CA and the collector's certificate for localhost and 127.0.0.1, signed by it. */
static int
make_certs(const char *dir)
{
	char cmd[PATH_MAX + 1024];

	snprintf(cmd, sizeof(cmd), "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		  "-keyout ca.key -out ca.pem -days 2 -subj '/CN=siem test CA' 2>/dev/null && "
		  "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem "
		  "-out req.csr -subj /CN=localhost 2>/dev/null && printf "
		  "'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' "
		  ">ext.cnf && openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key "
		  "-CAcreateserial -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null",
		  dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
write_rsyslog_conf(struct collector *c)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/rsyslog.conf", c->dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
		"global(workDirectory=\"%s/work\"\n"
		"       DefaultNetstreamDriverCAFile=\"%s/ca.pem\"\n"
		"       DefaultNetstreamDriverCertFile=\"%s/cert.pem\"\n"
		"       DefaultNetstreamDriverKeyFile=\"%s/key.pem\")\n"
		"module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\"\n"
		"       StreamDriver.Authmode=\"anon\")\n"
		"template(name=\"raw\" type=\"string\" string=\"%%rawmsg%%\\n\")\n"
		"input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%u\")\n"
		"action(type=\"omfile\" file=\"%s\" template=\"raw\")\n",
		c->dir, c->dir, c->dir, c->dir, c->port, c->out);
	fclose(f);
	snprintf(path, sizeof(path), "%s/work", c->dir);
	return mkdir(path, 0700) == 0 ? 0 : -1;
}

/* Waits (bounded, 10 s) until something accepts TCP connections on 127.0.0.1:port. */
static int
wait_listening(unsigned port)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "exec 3<>/dev/tcp/127.0.0.1/%u", port);
	for (int i = 0; i < 200; i++) {
		char full[256];

		snprintf(full, sizeof(full), "bash -c '%s' 2>/dev/null", cmd);
		if (system(full) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

static int
rs_start(struct collector *c)
{
	char conf[PATH_MAX + 16], log[PATH_MAX + 16], pid[PATH_MAX + 16];

	snprintf(conf, sizeof(conf), "%s/rsyslog.conf", c->dir);
	snprintf(log, sizeof(log), "%s/rsyslog.log", c->dir);
	snprintf(pid, sizeof(pid), "%s/rsyslog.pid", c->dir);
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL)
			_exit(127);
		execl(RSYSLOGD, "rsyslogd", "-n", "-f", conf, "-i", pid, (char *)NULL);
		_exit(127);
	}
	t_track_child(c->pid, 1);
	if (wait_listening(c->port) != 0) {
		printf("    rsyslog did not listen: see %s\n", log);
		return -1;
	}
	return 0;
}

static void
rs_stop(struct collector *c)
{
	if (c->pid > 0)
		t_stop_child(c->pid, SIGTERM, 10000);
	c->pid = 0;
}

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

/* The test's directory (the data directory's parent), for what lives beside the server. */
static void
beside(const struct env *e, char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%.*s/%s", (int)strlen(e->s.dir) - 5, e->s.dir, name);
}

/* A server whose config is settings (siem_* lines), not started yet. */
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

/* Adds rsyslog with TLS on a free port, and the server settings that stream to it. */
static int
env_collector(struct env *e)
{
	struct collector *c = &e->rs;
	FILE *f;

	beside(e, c->dir, sizeof(c->dir), "rsyslog");
	snprintf(c->out, sizeof(c->out), "%s/received.log", c->dir);
	c->port = t_free_port();
	if (mkdir(c->dir, 0700) != 0 || make_certs(c->dir) != 0 || write_rsyslog_conf(c) != 0)
		return -1;
	f = fopen(e->conf, "a");
	if (f == NULL)
		return -1;
	fprintf(f, "siem_target = tls://127.0.0.1:%u\nsiem_ca = %s/ca.pem\n", c->port, c->dir);
	fclose(f);
	return rs_start(c);
}

static void
env_down(struct env *e)
{
	client_free(e->admin);
	e->admin = NULL;
	rs_stop(&e->rs);
	srv_cleanup(&e->s);
}

/* ---- what was received ---- */

/* The value of name="..." in the structured data of line, unescaped (RFC 5424 §6.3.3). */
static int
sd_param(const char *line, const char *name, char *out, size_t cap)
{
	char key[64];
	const char *p;
	size_t n = 0;

	snprintf(key, sizeof(key), " %s=\"", name);
	p = strstr(line, key);
	if (p == NULL)
		return -1;
	for (p += strlen(key); *p != '\0' && *p != '"' && n + 1 < cap; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == ']'))
			p++;
		out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"' ? 0 : -1;
}

/* Reads every received message into m (up to max); the count, or -1 on a malformed one. */
static int
received(const char *path, struct msg *m, int max)
{
	char line[4096], seq[32];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "<109>1 ", 7) != 0 && strncmp(line, "<108>1 ", 7) != 0) {
			printf("    not an RFC 5424 audit message: %.200s\n", line);
			n = -1;
			break;
		}
		if (strstr(line, "[cleave@32473 ") == NULL || sd_param(line, "seq", seq, 32) ||
		    sd_param(line, "hash", m[n].hash, 65) ||
		    sd_param(line, "detail", m[n].detail, sizeof(m[n].detail))) {
			printf("    a message without our structured data: %.200s\n", line);
			n = -1;
			break;
		}
		m[n++].seq = atoll(seq);
	}
	fclose(f);
	return n;
}

/* The audit log as GET /api/v1/audit shows it, into m[seq] (seq 1..max-1); the head's seq. */
static long long
api_audit(struct env *e, struct msg *m, int max)
{
	char path[512], after[256] = "";
	long long head = 0;

	for (int page = 0; page < 20; page++) {
		long status = 0;
		json_t *j, *items, *it;
		size_t i;

		snprintf(path, sizeof(path), "/api/v1/audit?limit=200%s%s", after[0] ? "&cursor=" : "",
			 after);
		j = client_get_json(e->admin, path, &status);
		items = json_object_get(j, "items");
		json_array_foreach(items, i, it) {
			long long seq = json_integer_value(json_object_get(it, "seq"));

			if (seq > 0 && seq < max) {
				m[seq].seq = seq;
				snprintf(m[seq].hash, sizeof(m[seq].hash), "%s",
					 json_string_value(json_object_get(it, "hash")));
				snprintf(m[seq].detail, sizeof(m[seq].detail), "%s",
					 json_string_value(json_object_get(it, "detail")));
			}
			head = seq > head ? seq : head;
		}
		snprintf(after, sizeof(after), "%s",
			 json_is_string(json_object_get(j, "next_cursor"))
				 ? json_string_value(json_object_get(j, "next_cursor"))
				 : "");
		json_decref(j);
		if (status != 200 || after[0] == '\0')
			break;
	}
	return head;
}

/*
 * Checks the received messages against the API's log up to head: every entry, with its hash
 * and detail, each following the one before, except at most restarts rewinds, each to at most
 * window entries back (the batch a killed server had sent but not recorded as arrived; window
 * 0: no repeat at all). 0, or -1 with the reason.
 */
static int
check_stream(struct env *e, int window, int restarts)
{
	static struct msg got[MAX_SEQ * 2], want[MAX_SEQ];
	long long head, cur = 0, top = 0;
	int n, rewinds = 0;

	memset(want, 0, sizeof(want));
	head = api_audit(e, want, MAX_SEQ);
	n = received(e->rs.out, got, MAX_SEQ * 2);
	if (n < 0 || head <= 0 || head >= MAX_SEQ)
		return -1;
	for (int i = 0; i < n; i++) {
		const struct msg *g = &got[i];

		if (g->seq != cur + 1 &&
		    (g->seq > cur || top - g->seq >= window || ++rewinds > restarts)) {
			if (!quiet)
				printf("    entry %lld came after %lld (a gap, or a repeat beyond %d)\n",
			       g->seq, cur, window);
			return -1;
		}
		if (g->seq > head || strcmp(g->hash, want[g->seq].hash) != 0 ||
		    strcmp(g->detail, want[g->seq].detail) != 0) {
			if (!quiet)
				printf("    entry %lld differs from the API's: hash %s detail %s\n", g->seq,
			       g->hash, g->detail);
			return -1;
		}
		cur = g->seq;
		top = cur > top ? cur : top;
	}
	if (top != head || cur != top) {
		if (!quiet)
			printf("    %lld of %lld entries arrived\n", top, head);
		return -1;
	}
	return 0;
}

/* Waits (bounded, timeout_s) until check_stream holds. */
static int
wait_stream(struct env *e, int window, int restarts, int timeout_s)
{
	quiet = 1;
	for (int i = 0; i < timeout_s * 5; i++) {
		if (i > 0)
			usleep(200000);
		if (check_stream(e, window, restarts) == 0) {
			quiet = 0;
			return 0;
		}
	}
	quiet = 0;
	return check_stream(e, window, restarts) == 0 ? 0 : -1;
}

static int
count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, ch;

	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* Makes n audit entries (API tokens; the first with a hostile name). 0 or -1. */
static int
make_entries(struct env *e, int n)
{
	char tok[128];
	struct resp r;
	int ok;

	ok = client_req(e->admin, "POST", "/api/v1/tokens",
			"{\"name\":\"" "x\\\"] \\\\ <b>&amp;</b> é" "\",\"role\":\"auditor\"}", NULL,
			&r) == 0 &&
	     r.status == 201;
	resp_free(&r);
	for (int i = 1; ok && i < n; i++)
		ok = admin_token(e->admin, "auditor", tok, sizeof(tok)) == 0;
	return ok ? 0 : -1;
}

/* ---- cases ---- */

static void
test_stream_kill_and_collector_down(void)
{
	const char *why = skip_reason();
	struct env e;
	int mid;

	if (why != NULL)
		SKIP("%s", why);
	CHECK(env_init(&e, "siem", "siem_batch = 5\nsiem_hold_ms = 150\nsiem_lease_seconds = 2\n"
				   "siem_max_backoff_seconds = 1\n") == 0,
	      "setup");
	CHECK(env_collector(&e) == 0, "rsyslog did not start");
	CHECK(start(&e) == 0, "server did not start");

	/* Every entry once, in order, as the API shows it; the hostile name as text. */
	CHECK(make_entries(&e, 12) == 0, "entries");
	CHECK(wait_stream(&e, 0, 0, 20) == 0, "the stream is not the audit log");
	CHECK(count_lines(e.rs.out) == 13, "%d messages for 13 entries", count_lines(e.rs.out));

	/* SIGKILL while a stream of 100 entries is halfway: none lost, repeats within a batch. */
	CHECK(make_entries(&e, 100) == 0, "entries");
	for (mid = 0; mid < 400 && count_lines(e.rs.out) < 40; mid++)
		usleep(10000);
	CHECK(count_lines(e.rs.out) < 113, "the stream was over before the kill");
	CHECK(srv_stop(&e.s, SIGKILL) >= 0, "kill");
	e.s.pid = 0;
	CHECK(start(&e) == 0, "server did not start again");
	CHECK(wait_stream(&e, BATCH, 1, 40) == 0, "the stream after the restart");

	/* The collector down for a while: what was made meanwhile arrives when it is back. */
	rs_stop(&e.rs);
	CHECK(make_entries(&e, 10) == 0, "entries");
	sleep(2);
	CHECK(rs_start(&e.rs) == 0, "rsyslog did not start again");
	CHECK(wait_stream(&e, BATCH, 1, 30) == 0, "the stream after the collector came back");
	printf("    %d messages for %d entries\n", count_lines(e.rs.out), 123);
	env_down(&e);
}

/* JSON lines into a file: each entry one line, hashes as the API's. */
static void
test_json_file(void)
{
	static struct msg want[64];
	char file[PATH_MAX + 16], line[4096];
	struct env e;
	long long head, seq = 0;
	FILE *f;

	CHECK(env_init(&e, "siem-json", "") == 0, "setup");
	beside(&e, file, sizeof(file), "audit.jsonl");
	f = fopen(e.conf, "w");
	CHECK(f != NULL, "conf");
	fprintf(f, "siem_target = file:%s\nsiem_format = json\n", file);
	fclose(f);
	CHECK(start(&e) == 0, "server did not start");
	CHECK(make_entries(&e, 5) == 0, "entries");
	for (int i = 0; i < 100 && count_lines(file) < 6; i++)
		usleep(100000);
	head = api_audit(&e, want, 64);
	CHECK(head == 6 && count_lines(file) == 6, "%d lines for %lld entries", count_lines(file),
	      head);
	CHECK(strstr(want[2].detail, HOSTILE) != NULL, "the hostile name: %s", want[2].detail);
	f = fopen(file, "r");
	CHECK(f != NULL, "no file");
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *j = json_loads(line, 0, NULL);
		long long s = json_integer_value(json_object_get(j, "seq"));
		const char *h = json_string_value(json_object_get(j, "hash"));
		const char *d = json_string_value(json_object_get(j, "detail"));
		int ok = s == seq + 1 && s <= head && h && d && strcmp(h, want[s].hash) == 0 &&
			 strcmp(d, want[s].detail) == 0 &&
			 json_string_value(json_object_get(j, "prev_hash")) != NULL;

		json_decref(j);
		if (!ok)
			fclose(f);
		CHECK(ok, "line %lld is not the API's entry: %.200s", seq + 1, line);
		seq = s;
	}
	fclose(f);
	env_down(&e);
}

/* Settings the server refuses: no CA for TLS, plain TCP to another host, a bad SD-ID. */
static void
test_refused_settings(void)
{
	static const char *const bad[] = {
		"siem_target = tls://127.0.0.1:6514\n",
		"siem_target = tcp://192.0.2.1:514\n",
		"siem_target = udp://127.0.0.1:514\n",
		"siem_target = tcp://127.0.0.1:514\nsiem_sd_id = cleave\n",
		"siem_target = file:relative.log\n",
	};
	struct env e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char cmd[PATH_MAX * 2 + 128];

		CHECK(env_init(&e, "siem-conf", bad[i]) == 0, "setup");
		snprintf(cmd, sizeof(cmd), "'%s/cleave-server' --data '%s' --config '%s' "
			 "--check-config >/dev/null 2>&1",
			 getenv("CLEAVE_BIN") ? getenv("CLEAVE_BIN") : "build/bin", e.s.dir, e.conf);
		CHECK(system(cmd) != 0, "accepted: %s", bad[i]);
		srv_cleanup(&e.s);
	}
	CHECK(env_init(&e, "siem-conf", "siem_target = tcp://192.0.2.1:514\n"
					"siem_allow_plain_tcp = 1\n") == 0,
	      "setup");
	{
		char cmd[PATH_MAX * 2 + 128];

		snprintf(cmd, sizeof(cmd), "'%s/cleave-server' --data '%s' --config '%s' "
			 "--check-config >/dev/null 2>&1",
			 getenv("CLEAVE_BIN") ? getenv("CLEAVE_BIN") : "build/bin", e.s.dir, e.conf);
		CHECK(system(cmd) == 0, "plain TCP with siem_allow_plain_tcp refused");
	}
	srv_cleanup(&e.s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"stream_kill_and_collector_down", test_stream_kill_and_collector_down},
		{"json_file", test_json_file},
		{"refused_settings", test_refused_settings},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
