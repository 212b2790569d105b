/*
 * cleave-server's connection front, with the real binary on 127.0.0.1: one address cannot take
 * every connection, trusted addresses keep a reserve (so /healthz answers during a flood), a
 * connection that never completes TLS is closed at the handshake deadline while kept-alive ones
 * are not, and the first-hour command line (--version, unknown options, a busy port refused
 * before the data directory exists). Other clients are played from 127.0.0.2 and 127.0.0.3,
 * which are loopback too on Linux.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

#define FLOOD_MAX 400

static uint16_t
port_of(const struct srv *s)
{
	const char *c = strrchr(s->url, ':');

	return (uint16_t)(c ? strtoul(c + 1, NULL, 10) : 0);
}

/* Starts a server with the given config file lines. */
static int
start_with(struct srv *s, const char *tag, const char *config)
{
	char path[PATH_MAX + 16];
	const char *extra[] = {"--config", path, NULL};
	FILE *f;

	if (srv_init(s, tag) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s.conf", s->dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(config, f);
	fclose(f);
	return srv_start(s, extra);
}

/* A TCP connection from src to the server that sends nothing; -1 on failure. */
static int
tcp_from(const char *src, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	to.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * True when the server has closed fd (EOF or reset) within ms; what it sent before (a TLS
 * alert) is read and dropped.
 */
static int
closed_by_server(int fd, int ms)
{
	double until = now_s() + ms / 1000.0;
	char b[512];

	for (int i = 0; i < 1000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)((until - now_s()) * 1000);
		ssize_t k;

		if (poll(&p, 1, MAX(left, 0)) <= 0)
			return 0;
		k = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
	return 0;
}

/*
 * Opens n idle connections from src and returns how many the server still holds once its
 * refusals have settled (no new close for a second; 15 s at most). fds receive the sockets.
 */
static int
flood(const char *src, uint16_t port, int *fds, int n)
{
	int open = 0, before = -1;
	double t0 = now_s();

	for (int i = 0; i < n; i++)
		fds[i] = tcp_from(src, port);
	while (now_s() - t0 < 15) {
		open = 0;
		for (int i = 0; i < n; i++) {
			if (fds[i] >= 0 && closed_by_server(fds[i], 0)) {
				close(fds[i]);
				fds[i] = -1;
			}
			open += fds[i] >= 0;
		}
		if (open == before)
			break;
		before = open;
		usleep(1000000);
	}
	return open;
}

static void
close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* GET /healthz from the source address src; the HTTP status, or -1 when refused. */
static long
healthz_from(const struct srv *s, const char *src, double *seconds)
{
	char url[160], iface[64];
	CURL *c = curl_easy_init();
	long status = -1;

	snprintf(url, sizeof(url), "%s/healthz", s->url);
	snprintf(iface, sizeof(iface), "host!%s", src);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, s->cacert);
	curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, seconds);
	curl_easy_cleanup(c);
	return status;
}

static int
log_has(const struct srv *s, const char *what)
{
	static char log[1 << 16];
	FILE *f = fopen(s->log, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(log, 1, sizeof(log) - 1, f);
	log[n] = '\0';
	fclose(f);
	return strstr(log, what) != NULL;
}

static void
test_per_address_cap(void)
{
	static int fds[FLOOD_MAX];
	struct srv s;
	double sec = 0;
	long st;
	int open;

	CHECK(start_with(&s, "peraddr",
			 "max_connections_per_address = 40\ntrusted_addresses = 127.0.0.2\n") == 0,
	      "server did not start");
	open = flood("127.0.0.1", port_of(&s), fds, 300);
	/* the check and the count happen on each of the 2 worker threads: at most 1 over each */
	CHECK(open >= 40 && open <= 42, "127.0.0.1 holds %d of 300 idle connections, want 40",
	      open);
	st = healthz_from(&s, "127.0.0.1", &sec);
	CHECK(st == -1, "a 41st connection from 127.0.0.1 got HTTP %ld", st);
	st = healthz_from(&s, "127.0.0.3", &sec);
	CHECK(st == 200, "another address got %ld during the flood", st);
	st = healthz_from(&s, "127.0.0.2", &sec);
	CHECK(st == 200, "the trusted address got %ld during the flood", st);
	printf("    %d idle connections held from 127.0.0.1; /healthz from 127.0.0.2 in %.1f ms\n",
	       open, sec * 1000);
	CHECK(log_has(&s, "refusing connections from 127.0.0.1: it holds "
			  "max_connections_per_address"),
	      "the refusal is not in the server log");
	/* the cap is about connections held: closing them lets the address back in */
	close_all(fds, 300);
	for (int i = 0; i < 50 && (st = healthz_from(&s, "127.0.0.1", &sec)) != 200; i++)
		usleep(100000);
	CHECK(st == 200, "127.0.0.1 still refused after closing its connections (%ld)", st);
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

static void
test_trusted_reserve(void)
{
	static int fds[FLOOD_MAX];
	struct srv s;
	double sec = 0;
	long st;
	int open;

	CHECK(start_with(&s, "reserve",
			 "max_connections = 60\nreserved_connections = 20\n"
			 "max_connections_per_address = 0\ntrusted_addresses = 127.0.0.2\n") == 0,
	      "server did not start");
	open = flood("127.0.0.1", port_of(&s), fds, 100);
	CHECK(open >= 40 && open <= 42, "untrusted clients hold %d, want 60 - 20 reserved", open);
	st = healthz_from(&s, "127.0.0.3", &sec);
	CHECK(st == -1, "an untrusted address got into the reserve (HTTP %ld)", st);
	st = healthz_from(&s, "127.0.0.2", &sec);
	CHECK(st == 200, "the trusted address got %ld with only the reserve left", st);
	printf("    untrusted hold %d of 60; trusted /healthz in %.1f ms\n", open, sec * 1000);
	close_all(fds, 100);
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

/* Runs cmd through the shell; output into out, returns the exit status or -1. */
static int
run_sh(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n;
	int st;

	if (p == NULL)
		return -1;
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *
bin_dir(void)
{
	const char *bin = getenv("CLEAVE_BIN");

	return bin && *bin ? bin : "build/bin";
}

/*
 * A parked check-in is a request in progress: the handshake deadline was lifted when its
 * request line arrived, and suspended connections are never timed out, so a 5 s long poll
 * outlives a 2 s deadline. Played by cleave-devsim.
 */
static void
test_parked_poll_outlives_deadline(void)
{
	char cmd[PATH_MAX * 3 + 256], out[4096], tok[128], state[PATH_MAX];
	struct client *admin;
	struct srv s;
	double t0;
	int rc = -1;

	CHECK(start_with(&s, "parkdl", "tls_handshake_timeout = 2\n") == 0, "server did not start");
	admin = client_new(&s, s.admin);
	CHECK(admin && admin_etoken(admin, "kim@example.com", 1, tok, sizeof(tok)) == 0,
	      "enrollment token");
	client_free(admin);
	snprintf(state, sizeof(state), "%s.dev", s.dir);
	snprintf(cmd, sizeof(cmd),
		 "'%s/cleave-devsim' --state '%s' enroll --server %s --token %s --ca-cert '%s' "
		 "2>&1",
		 bin_dir(), state, s.url, tok, s.cacert);
	rc = run_sh(cmd, out, sizeof(out));
	CHECK(rc == 0, "enroll: %s", out);
	/* take the initial policy command so that the next check-in parks */
	snprintf(cmd, sizeof(cmd),
		 "'%s/cleave-devsim' --state '%s' checkin --wait 0 --complete 2>&1", bin_dir(),
		 state);
	for (int i = 0; i < 3 && strstr(out, "nothing pending") == NULL; i++)
		rc = run_sh(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, "nothing pending"), "drain: %s", out);
	snprintf(cmd, sizeof(cmd), "'%s/cleave-devsim' --state '%s' checkin --wait 5 2>&1",
		 bin_dir(), state);
	t0 = now_s();
	rc = run_sh(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, "nothing pending"), "parked check-in: %d %s", rc, out);
	CHECK(now_s() - t0 >= 4.5, "the parked check-in ended after %.2f s", now_s() - t0);
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

static void
test_handshake_deadline(void)
{
	struct srv s;
	char url[160];
	CURL *c;
	long first = 0, second = 0, reused = -1;
	double t0, waited = -1;
	int fd, half;

	CHECK(start_with(&s, "handshake", "tls_handshake_timeout = 2\n") == 0,
	      "server did not start");
	/* a TCP connection that never starts TLS, and one stuck in the middle of a ClientHello */
	fd = tcp_from("127.0.0.1", port_of(&s));
	half = tcp_from("127.0.0.1", port_of(&s));
	CHECK(fd >= 0 && half >= 0, "connect");
	CHECK(write(half, "\x16\x03\x01\x02\x00\x01", 6) == 6, "write");
	t0 = now_s();
	for (int i = 0; i < 80; i++) {
		if (closed_by_server(fd, 100)) {
			waited = now_s() - t0;
			break;
		}
	}
	CHECK(waited >= 1.5 && waited <= 5.0, "silent connection closed after %.2f s, want ~2",
	      waited);
	CHECK(closed_by_server(half, 2000), "half a ClientHello kept the connection open");
	close(fd);
	close(half);
	/* a kept-alive connection outlives the handshake deadline between its requests */
	snprintf(url, sizeof(url), "%s/healthz", s.url);
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, s.cacert);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &first);
	sleep(3);
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &second);
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &reused);
	}
	curl_easy_cleanup(c);
	CHECK(first == 200 && second == 200, "statuses %ld %ld", first, second);
	CHECK(reused == 0, "the idle kept-alive connection was cut at the handshake deadline");
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

static void
test_command_line(void)
{
	char cmd[PATH_MAX * 2 + 128], out[4096], dir[PATH_MAX];
	const char *bin = bin_dir();
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	struct srv s;
	struct stat sb;
	int rc, busy;

	snprintf(cmd, sizeof(cmd), "'%s/cleave-server' --version 2>&1", bin);
	rc = run_sh(cmd, out, sizeof(out));
	CHECK(rc == 0 && strncmp(out, "cleave-server ", 14) == 0, "--version: %d %s", rc, out);
	snprintf(cmd, sizeof(cmd), "'%s/cleave-server' --data /nonexistent --frobnicate 2>&1", bin);
	rc = run_sh(cmd, out, sizeof(out));
	CHECK(rc == 2 && strstr(out, "unknown option '--frobnicate'"), "unknown option: %d %s", rc,
	      out);
	CHECK(srv_init(&s, "busyport") == 0, "init");
	/* a port someone else holds: refused before the data directory is made */
	busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	CHECK(busy >= 0 && bind(busy, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		      listen(busy, 1) == 0 && getsockname(busy, (struct sockaddr *)&a, &len) == 0,
	      "cannot hold a port");
	str_copy(dir, sizeof(dir), s.dir);
	snprintf(cmd, sizeof(cmd), "'%s/cleave-server' --data '%s' --listen 127.0.0.1:%u 2>&1", bin,
		 dir, ntohs(a.sin_port));
	rc = run_sh(cmd, out, sizeof(out));
	close(busy);
	CHECK(rc == 1 && strstr(out, "cannot listen on 127.0.0.1:") &&
		      strstr(out, "Address already in use"),
	      "busy port: %d %s", rc, out);
	CHECK(stat(dir, &sb) != 0, "%s was created by a server that cannot listen", dir);
	srv_cleanup(&s);
}

/* --check-config knows the transport settings and names what is wrong. */
static void
test_check_config_transport(void)
{
	char cmd[PATH_MAX * 3 + 128], out[4096], conf[PATH_MAX + 8];
	const char *bin = bin_dir();
	struct srv s;
	FILE *f;
	int rc;

	CHECK(srv_init(&s, "cmdline") == 0, "init");
	snprintf(conf, sizeof(conf), "%s.conf", s.dir);
	f = fopen(conf, "w");
	CHECK(f != NULL, "cannot write %s", conf);
	fputs("trusted_addresses = 10.0.0.0/8, lb.example\nreserved_connections = 10\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "'%s/cleave-server' --data '%s' --config '%s' --check-config 2>&1", bin, s.dir,
		 conf);
	rc = run_sh(cmd, out, sizeof(out));
	CHECK(rc == 2 && strstr(out, "'lb.example' is not an address or CIDR network"),
	      "bad trusted_addresses: %d %s", rc, out);
	snprintf(cmd, sizeof(cmd),
		 "'%s/cleave-server' --data '%s' --tls-priorities 'NORMAL:-VERS-ALL:+VERS-TLS1.3' "
		 "--check-config 2>&1",
		 bin, s.dir);
	rc = run_sh(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, "configuration ok"), "good priorities: %d %s", rc, out);
	srv_cleanup(&s);
}

/* 1 when the file at path contains text (read up to 256 KiB). */
static int
file_has(const char *path, const char *text)
{
	static char buf[256 * 1024];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, text) != NULL;
}

/*
 * Each connection holds a descriptor, so the server raises its open-file soft limit to the
 * hard limit, sizes its connection limit from it and says so at start. The server here starts
 * with a soft limit of 256 (inherited from this process); max_connections above what fits is
 * cut to what fits, with a warning.
 */
static void
test_fd_limit_raised_and_logged(void)
{
	struct rlimit saved, low;
	struct srv s;
	char want[160], conf[PATH_MAX + 16];
	FILE *f;

	CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0, "getrlimit");
	if (saved.rlim_max <= 1024)
		SKIP("the hard open-file limit here is %llu: nothing to raise",
		     (unsigned long long)saved.rlim_max);
	low = saved;
	low.rlim_cur = 256;
	CHECK(srv_init(&s, "fdlimit") == 0, "srv_init");
	snprintf(conf, sizeof(conf), "%s.conf", s.dir);
	f = fopen(conf, "w");
	CHECK(f != NULL, "cannot write %s", conf);
	fprintf(f, "max_connections = 1000000\n");
	fclose(f);
	t_remove_after_case(conf);
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit");
	{
		const char *const too_many[] = {"--config", conf, NULL};
		int r = srv_start(&s, too_many);

		setrlimit(RLIMIT_NOFILE, &saved);
		CHECK(r == 0, "server did not start");
	}
	if (saved.rlim_max == RLIM_INFINITY || saved.rlim_max >= 1000064)
		snprintf(want, sizeof(want), "was 256), hard limit");
	else
		snprintf(want, sizeof(want), "(was 256), hard limit %llu; up to %llu connections",
			 (unsigned long long)saved.rlim_max,
			 (unsigned long long)saved.rlim_max - 64);
	CHECK(file_has(s.log, want), "the start log lacks \"%s\"", want);
	CHECK(file_has(s.log, "max_connections = 1000000 does not fit"),
	      "no warning that max_connections does not fit");
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"per_address_cap", test_per_address_cap},
		{"trusted_reserve", test_trusted_reserve},
		{"handshake_deadline", test_handshake_deadline},
		{"parked_poll_outlives_deadline", test_parked_poll_outlives_deadline},
		{"command_line", test_command_line},
		{"check_config_transport", test_check_config_transport},
		{"fd_limit_raised_and_logged", test_fd_limit_raised_and_logged},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
