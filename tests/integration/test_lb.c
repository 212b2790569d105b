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
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "browser.h"
#include "fileio.h"
#include "pgtest.h"
#include "testlib.h"
#include "util.h"

#define HAPROXY  "/usr/sbin/haproxy"
#define NDEV     3
#define PASSWORD "correct horse battery staple 10"

static struct pgtest *pg;

/* Two servers on one database and keys directory, and the balancer in front of them. */
struct farm {
	struct srv a, b;
	struct srv lb; /* only url and cacert: what clients of the balancer need */
	char keys[PATH_MAX], work[PATH_MAX];
	pid_t haproxy;
	struct client *admin; /* through the balancer */
	struct client *anon;  /* through the balancer, no token */
};

/* A port free right now on 127.0.0.1 (the balancer binds it a moment later). */
static unsigned
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* The port of a server's https://127.0.0.1:PORT. */
static unsigned
srv_port(const struct srv *s)
{
	const char *c = strrchr(s->url, ':');

	return c ? (unsigned)strtoul(c + 1, NULL, 10) : 0;
}

/* Writes the balancer's certificate (its own, not the servers') and haproxy.cfg. */
static int
write_balancer(struct farm *f, unsigned port)
{
	char cmd[4 * PATH_MAX], cfg[4096], path[PATH_MAX + 32];
	int n;

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
		 "-keyout lb.key -out lb.crt >/dev/null 2>&1 && cat lb.crt lb.key > lb.pem",
		 f->work);
	if (system(cmd) != 0)
		return -1;
	/* Long-polls last up to a minute: the timeouts leave room; a refused server is retried. */
	n = snprintf(cfg, sizeof(cfg),
		     "global\n  log stderr format short local0 notice\n"
		     "defaults\n  mode http\n  log global\n  timeout connect 2s\n"
		     "  timeout client 90s\n  timeout server 90s\n  retries 2\n"
		     "  option redispatch 1\n  option forwardfor\n"
		     "frontend devices\n  bind 127.0.0.1:%u ssl crt %s/lb.pem\n"
		     "  default_backend cleave\n"
		     "backend cleave\n  balance roundrobin\n  option httpchk GET /healthz\n"
		     "  server a 127.0.0.1:%u ssl verify required ca-file %s check inter 300 "
		     "fall 1 rise 1\n"
		     "  server b 127.0.0.1:%u ssl verify required ca-file %s check inter 300 "
		     "fall 1 rise 1\n",
		     port, f->work, srv_port(&f->a), f->a.cacert, srv_port(&f->b), f->b.cacert);
	snprintf(path, sizeof(path), "%s/haproxy.cfg", f->work);
	return n > 0 && (size_t)n < sizeof(cfg) ? file_write_atomic(path, cfg, (size_t)n, 0600)
						: -1;
}

/* True when something accepts TCP connections on 127.0.0.1:port. */
static int
port_open(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static int
start_balancer(struct farm *f)
{
	unsigned port = free_port();
	char cfg[PATH_MAX + 32], log[PATH_MAX + 32];

	if (port == 0 || write_balancer(f, port) != 0)
		return -1;
	snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", f->work);
	snprintf(log, sizeof(log), "%s/haproxy.log", f->work);
	f->haproxy = fork();
	if (f->haproxy < 0)
		return -1;
	if (f->haproxy == 0) {
		if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL)
			_exit(127);
		execl(HAPROXY, "haproxy", "-db", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	t_track_child(f->haproxy, 1);
	snprintf(f->lb.url, sizeof(f->lb.url), "https://127.0.0.1:%u", port);
	snprintf(f->lb.cacert, sizeof(f->lb.cacert), "%s/lb.crt", f->work);
	/* Up when it answers /healthz through a server (bounded: 10 s). */
	for (int i = 0; i < 100; i++) {
		struct client *c;

		if (!port_open(port)) {
			usleep(100000);
			continue;
		}
		c = client_new(&f->lb, NULL);
		struct resp r = {0};
		int ok = c != NULL && client_req(c, "GET", "/healthz", NULL, NULL, &r) == 0 &&
			 r.status == 200;

		resp_free(&r);
		client_free(c);
		if (ok)
			return 0;
		usleep(100000);
	}
	return -1;
}

/* Server b joins a's database: same URL, same keys; a's admin token works on both. */
static int
start_servers(struct farm *f)
{
	char path[PATH_MAX + 32], line[160], conf[PATH_MAX + 32];
	const char *extra[] = {"--keys", f->keys, "--config", conf, NULL};
	/* Each server's own refusal budget, small; the balancer names the client. */
	static const char settings[] = "refusal_limit = 4\ntrusted_proxies = 127.0.0.1\n";

	snprintf(conf, sizeof(conf), "%s/server.conf", f->work);
	if (file_write_atomic(conf, settings, strlen(settings), 0600) != 0)
		return -1;

	if (srv_init(&f->a, "lb-a") != 0 || srv_use_pg(&f->a, pg) != 0 ||
	    srv_init(&f->b, "lb-b") != 0)
		return -1;
	str_copy(f->b.database, sizeof(f->b.database), f->a.database);
	if (srv_start(&f->a, extra) != 0)
		return -1;
	/* The first admin token is the database's; b makes none, so its file is a's. */
	snprintf(path, sizeof(path), "%s/admin-token", f->b.dir);
	if (mkdir(f->b.dir, 0700) != 0)
		return -1;
	snprintf(line, sizeof(line), "%s\n", f->a.admin);
	if (file_write_atomic(path, line, strlen(line), 0600) != 0)
		return -1;
	return srv_start(&f->b, extra);
}

static const char *
farm_up(struct farm *f, const char *tag)
{
	const char *base = getenv("CLEAVE_TEST_OUT");

	memset(f, 0, sizeof(*f));
	if (access(HAPROXY, X_OK) != 0)
		return "HAProxy is not installed (scripts/deps.sh installs it)";
	snprintf(f->work, sizeof(f->work), "%s/%s-XXXXXX", base ? base : "/tmp", tag);
	if (mkdtemp(f->work) == NULL)
		return "cannot make a work directory";
	snprintf(f->keys, sizeof(f->keys), "%s/keys", f->work);
	if (mkdir(f->keys, 0700) != 0 || start_servers(f) != 0)
		return "servers did not start";
	if (start_balancer(f) != 0)
		return "the balancer did not start";
	f->admin = client_new(&f->lb, f->a.admin);
	f->anon = client_new(&f->lb, NULL);
	return f->admin && f->anon ? NULL : "no client";
}

static void
farm_down(struct farm *f)
{
	char cmd[PATH_MAX + 16];

	client_free(f->admin);
	client_free(f->anon);
	if (f->haproxy > 0)
		t_stop_child(f->haproxy, SIGTERM, 5000);
	srv_cleanup(&f->a);
	srv_cleanup(&f->b);
	if (t_failed_now) {
		printf("    balancer: %s/haproxy.log\n", f->work);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->work);
	(void)!system(cmd);
}

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

/* The status of command id, read through c; "" when it cannot be read. */
static void
command_status(struct client *c, const char *id, char *out, size_t cap)
{
	char path[160];
	long st;
	json_t *j;

	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	j = client_get_json(c, path, &st);
	str_copy(out, cap, json_string_value(json_object_get(j, "status")) ?: "");
	json_decref(j);
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

#define FARM_UP(f, tag)                                                                            \
	do {                                                                                       \
		const char *why_;                                                                  \
		if (access(HAPROXY, X_OK) != 0)                                                    \
			SKIP("HAProxy is not installed (scripts/deps.sh installs it)");            \
		why_ = farm_up(f, tag);                                                            \
		if (why_ != NULL) {                                                                \
			farm_down(f);                                                              \
			CHECK(0, "%s", why_);                                                      \
		}                                                                                  \
	} while (0)

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

	FARM_UP(&f, "lb-failover");
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
	if (n == NDEV && (checkins_on(&f.a) < 1 || checkins_on(&f.b) < 1))
		n = -4;
	if (n == NDEV && srv_stop(&f.a, SIGKILL) != 128 + SIGKILL)
		n = -1;
	for (int i = 0; n == NDEV && i < NDEV; i++)
		if (checkin_complete(&d[i], f.anon, cmd[i], &found[i]) != 0)
			n = -2;
	for (int i = 0; n == NDEV && i < NDEV; i++) {
		command_status(f.admin, cmd[i], st, sizeof(st));
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

/* The parked polls server s holds (its /metrics); -1 when unknown. */
static long
parked_on(const struct srv *s)
{
	struct client *c = client_new(s, NULL);
	struct resp r = {0};
	const char *p;
	long n = -1;

	if (c != NULL && client_req(c, "GET", "/metrics", NULL, NULL, &r) == 0 && r.body &&
	    (p = strstr(r.body, "\ncleave_parked_connections ")) != NULL)
		n = strtol(p + strlen("\ncleave_parked_connections "), NULL, 10);
	resp_free(&r);
	client_free(c);
	return n;
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

	FARM_UP(&f, "lb-parked");
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
	for (int i = 0; started == NDEV && i < 50 && (on_a = parked_on(&f.a)) < 1; i++)
		usleep(100000);
	if (on_a >= 1 && srv_stop(&f.a, SIGKILL) == 128 + SIGKILL)
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

	FARM_UP(&f, "lb-session");
	wa = client_new(&f.a, NULL);
	wb = client_new(&f.b, NULL);
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

	FARM_UP(&f, "lb-replay");
	ca = client_new(&f.a, NULL);
	cb = client_new(&f.b, NULL);
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

	FARM_UP(&f, "lb-forwarded");
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

static const struct t_case cases[] = {
	{"lb_forwarded_client", test_lb_forwarded_client},
	{"lb_failover", test_lb_failover},
	{"lb_parked_reconnect", test_lb_parked_reconnect},
	{"lb_session_across_servers", test_lb_session},
	{"lb_replay_other_server", test_lb_replay},
	{"lb_keys_mismatch", test_lb_keys_mismatch},
};

int
main(int argc, char **argv)
{
	return t_run_pg(cases, ARRAY_SIZE(cases), argc, argv, &pg);
}
