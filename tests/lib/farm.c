/*
 * The farm of tests/lib/farm.h: N servers on one PostgreSQL database and one keys directory,
 * HAProxy in front. Every wait is bounded; processes are tracked (t_track_child) so a failing
 * case leaves none running.
 */
#include "farm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "pgtest.h"
#include "util.h"

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
	char cmd[4 * PATH_MAX], cfg[8192], path[PATH_MAX + 32];
	size_t len;
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
		     "backend cleave\n  balance roundrobin\n  option httpchk GET /healthz\n",
		     port, f->work);
	for (int i = 0; n > 0 && (size_t)n < sizeof(cfg) && i < f->n; i++) {
		len = (size_t)n;
		n += snprintf(cfg + len, sizeof(cfg) - len,
			      "  server s%d 127.0.0.1:%u ssl verify required ca-file %s check "
			      "inter 300 fall 1 rise 1\n",
			      i, srv_port(&f->s[i]), f->s[i].cacert);
	}
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
	unsigned port = t_free_port();
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
		execl(FARM_HAPROXY, "haproxy", "-db", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	t_track_child(f->haproxy, 1);
	snprintf(f->lb.url, sizeof(f->lb.url), "https://127.0.0.1:%u", port);
	snprintf(f->lb.cacert, sizeof(f->lb.cacert), "%s/lb.crt", f->work);
	/* Up when it answers /healthz through a server (bounded: 10 s). */
	for (int i = 0; i < 100; i++) {
		struct client *c;
		struct resp r = {0};
		int ok;

		if (!port_open(port)) {
			usleep(100000);
			continue;
		}
		c = client_new(&f->lb, NULL);
		ok = c != NULL && client_req(c, "GET", "/healthz", NULL, NULL, &r) == 0 &&
		     r.status == 200;
		resp_free(&r);
		client_free(c);
		if (ok)
			return 0;
		usleep(100000);
	}
	return -1;
}

/* The others join the first one's database: same URL, same keys; its admin token works on all. */
static int
start_servers(struct farm *f, const char *tag, struct pgtest *pg)
{
	char path[PATH_MAX + 32], line[160], conf[PATH_MAX + 32], name[64];
	const char *extra[] = {"--keys", f->keys, "--config", conf, NULL};
	/* Each server's own refusal budget, small; the balancer names the client. */
	static const char settings[] = "refusal_limit = 4\ntrusted_proxies = 127.0.0.1\n";

	snprintf(conf, sizeof(conf), "%s/server.conf", f->work);
	if (file_write_atomic(conf, settings, strlen(settings), 0600) != 0)
		return -1;
	for (int i = 0; i < f->n; i++) {
		snprintf(name, sizeof(name), "%s-%c", tag, 'a' + i);
		if (srv_init(&f->s[i], name) != 0)
			return -1;
		if (i == 0) {
			if (srv_use_pg(&f->s[0], pg) != 0 || srv_start(&f->s[0], extra) != 0)
				return -1;
			continue;
		}
		str_copy(f->s[i].database, sizeof(f->s[i].database), f->s[0].database);
		/* The first admin token is the database's; the others make none: theirs is it. */
		snprintf(path, sizeof(path), "%s/admin-token", f->s[i].dir);
		snprintf(line, sizeof(line), "%s\n", f->s[0].admin);
		if (mkdir(f->s[i].dir, 0700) != 0 ||
		    file_write_atomic(path, line, strlen(line), 0600) != 0 ||
		    srv_start(&f->s[i], extra) != 0)
			return -1;
	}
	return 0;
}

const char *
farm_up(struct farm *f, int n, const char *tag, struct pgtest *pg)
{
	const char *base = getenv("CLEAVE_TEST_OUT");

	memset(f, 0, sizeof(*f));
	if (n < 2 || n > FARM_MAX)
		return "a farm has 2 to 3 servers";
	f->n = n;
	if (access(FARM_HAPROXY, X_OK) != 0)
		return "HAProxy is not installed (scripts/deps.sh installs it)";
	snprintf(f->work, sizeof(f->work), "%s/%s-XXXXXX", base ? base : "/tmp", tag);
	if (mkdtemp(f->work) == NULL)
		return "cannot make a work directory";
	snprintf(f->keys, sizeof(f->keys), "%s/keys", f->work);
	if (mkdir(f->keys, 0700) != 0 || start_servers(f, tag, pg) != 0)
		return "servers did not start";
	if (start_balancer(f) != 0)
		return "the balancer did not start";
	f->admin = client_new(&f->lb, f->s[0].admin);
	f->anon = client_new(&f->lb, NULL);
	return f->admin && f->anon ? NULL : "no client";
}

void
farm_down(struct farm *f)
{
	char cmd[PATH_MAX + 16];

	client_free(f->admin);
	client_free(f->anon);
	f->admin = f->anon = NULL;
	if (f->haproxy > 0)
		t_stop_child(f->haproxy, SIGTERM, 5000);
	f->haproxy = 0;
	for (int i = 0; i < f->n; i++)
		srv_cleanup(&f->s[i]);
	if (f->work[0] == '\0')
		return;
	if (t_failed_now) {
		printf("    balancer: %s/haproxy.log\n", f->work);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->work);
	(void)!system(cmd);
}

long
farm_metric(const struct srv *s, const char *name)
{
	struct client *c = client_new(s, NULL);
	struct resp r = {0};
	char key[128];
	const char *p;
	long n = -1;

	snprintf(key, sizeof(key), "\n%s ", name);
	if (c != NULL && client_req(c, "GET", "/metrics", NULL, NULL, &r) == 0 && r.body &&
	    (p = strstr(r.body, key)) != NULL)
		n = strtol(p + strlen(key), NULL, 10);
	resp_free(&r);
	client_free(c);
	return n;
}

long
farm_parked(struct farm *f, long counts[FARM_MAX])
{
	long total = 0;

	for (int i = 0; i < FARM_MAX; i++) {
		counts[i] = i < f->n && f->s[i].pid > 0
				    ? farm_metric(&f->s[i], "cleave_parked_connections")
				    : 0;
		total += counts[i] > 0 ? counts[i] : 0;
	}
	return total;
}

int
farm_parked_on(struct farm *f, int timeout_ms)
{
	double end = now_s() + timeout_ms / 1000.0;

	do {
		int holder = -1, holders = 0;

		for (int i = 0; i < f->n; i++) {
			if (f->s[i].pid > 0 &&
			    farm_metric(&f->s[i], "cleave_parked_connections") > 0) {
				holder = i;
				holders++;
			}
		}
		if (holders == 1)
			return holder;
		usleep(50000);
	} while (now_s() < end);
	return -1;
}
