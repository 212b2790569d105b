/*
 * TLS as a security reviewer probes it: the real cleave-server on 127.0.0.1, driven by
 * `openssl s_client` (as testssl.sh would), must refuse TLS 1.0, 1.1 and CBC suites, accept
 * TLS 1.2 AEAD suites and TLS 1.3, refuse client-initiated renegotiation, send HSTS, apply a
 * configured priority string and refuse to start with a bad one, and answer ambiguous body
 * framing (request smuggling) with 400. The probes are separate processes, like a reviewer's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

#define OUT_CAP 65536

/* The port of s->url ("https://127.0.0.1:PORT"). */
static const char *
port_of(const struct srv *s)
{
	const char *c = strrchr(s->url, ':');

	return c ? c + 1 : "0";
}

/*
 * Runs argv (NULL-terminated) with stdin fed from chunks (NULL-terminated, 400 ms apart, stdin
 * held open hold_s after the last), stdout and stderr into out. Waits at most 15 s in all and
 * kills the child after that. Returns its exit status, or -1.
 */
static int
run_fed(const char *const *argv, const char *const *chunks, double hold_s, char *out, size_t cap)
{
	int in[2], op[2], st = -1;
	size_t n = 0;
	double t0 = now_s(), stdin_close_at;
	pid_t pid;

	out[0] = '\0';
	if (pipe(in) != 0 || pipe(op) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(op[1], 1);
		dup2(op[1], 2);
		close(in[1]);
		close(op[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	t_track_child(pid, 1);
	close(in[0]);
	close(op[1]);
	for (size_t i = 0; chunks && chunks[i]; i++) {
		if (i > 0)
			usleep(400000);
		if (write(in[1], chunks[i], strlen(chunks[i])) < 0)
			break;
	}
	stdin_close_at = now_s() + hold_s;
	while (now_s() - t0 < 15) {
		struct pollfd p = {.fd = op[0], .events = POLLIN};
		ssize_t k;

		if (in[1] >= 0 && now_s() >= stdin_close_at) {
			close(in[1]);
			in[1] = -1;
		}
		if (poll(&p, 1, 100) <= 0)
			continue;
		k = read(op[0], out + n, cap - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		out[n] = '\0';
		if (n + 1 >= cap)
			break;
	}
	if (in[1] >= 0)
		close(in[1]);
	close(op[0]);
	for (int i = 0; i < 200 && waitpid(pid, &st, WNOHANG) != pid; i++) {
		if (i == 100)
			kill(pid, SIGKILL);
		usleep(10000);
	}
	t_track_child(pid, 0);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * One `openssl s_client` handshake with the given extra options (NULL-terminated), then chunks
 * typed in; out gets its report. Interactive s_client ends at the end of its input, so stdin
 * stays open 1.5 s for an answer to what was typed; with -quiet it waits for the server to
 * close instead.
 * Returns 1 when a TLS session was set up, 0 when the handshake failed.
 */
static int
s_client(const struct srv *s, const char *const *opts, const char *const *chunks, char *out,
	 size_t cap)
{
	char target[64];
	const char *argv[24] = {"openssl", "s_client",    "-connect",
				target,    "-servername", "localhost"};
	int argc = 6, quiet = 0;

	snprintf(target, sizeof(target), "127.0.0.1:%s", port_of(s));
	for (int i = 0; opts && opts[i] && argc < 22; i++) {
		quiet |= strcmp(opts[i], "-quiet") == 0;
		argv[argc++] = opts[i];
	}
	argv[argc] = NULL;
	run_fed(argv, chunks, quiet || chunks == NULL ? 0 : 1.5, out, cap);
	/* s_client prints "New, TLSv1.x, Cipher is ..." for a session, "New, (NONE)" without. */
	return strstr(out, "New, TLSv") != NULL;
}

static int
start(struct srv *s, const char *tag, const char *const *extra)
{
	return srv_init(s, tag) == 0 && srv_start(s, extra) == 0 ? 0 : -1;
}

static void
test_protocols_and_ciphers(void)
{
	/* SECLEVEL=0 lets OpenSSL 3 offer what the server must refuse on its own. */
	static const struct {
		const char *what;
		const char *opts[6];
		int want;
	} probes[] = {
		{"TLS 1.0", {"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"}, 0},
		{"TLS 1.1", {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, 0},
		{"TLS 1.2 CBC SHA-1", {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"}, 0},
		{"TLS 1.2 CBC SHA-384", {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"}, 0},
		{"TLS 1.2 CCM", {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-CCM"}, 0},
		{"TLS 1.3 CCM", {"-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"}, 0},
		{"TLS 1.2 AES-GCM", {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}, 1},
		{"TLS 1.2 AES-256-GCM", {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"}, 1},
		{"TLS 1.2 ChaCha20", {"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}, 1},
		{"TLS 1.3", {"-tls1_3"}, 1},
	};
	static char out[OUT_CAP];
	struct srv s;

	CHECK(start(&s, "tlsproto", NULL) == 0, "server did not start");
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		int got = s_client(&s, probes[i].opts, NULL, out, sizeof(out));

		CHECK(got == probes[i].want, "%s: handshake %s, want %s\n%.1500s", probes[i].what,
		      got ? "succeeded" : "failed", probes[i].want ? "success" : "refusal", out);
	}
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

/*
 * 'R' makes s_client renegotiate. A GnuTLS server only renegotiates when the application calls
 * gnutls_handshake again; libmicrohttpd never does and drops the connection instead, so the
 * request typed after 'R' must go unanswered, while the same request without 'R' is answered.
 */
static void
test_renegotiation_refused(void)
{
	static const char *const opts[] = {"-tls1_2", "-crlf", NULL};
	static const char *const plain[] = {"GET /healthz HTTP/1.1\nHost: localhost\n\n", NULL};
	static const char *const reneg[] = {"R\n", "GET /healthz HTTP/1.1\nHost: localhost\n\n",
					    NULL};
	static char out[OUT_CAP];
	struct srv s;

	CHECK(start(&s, "tlsreneg", NULL) == 0, "server did not start");
	CHECK(s_client(&s, opts, plain, out, sizeof(out)), "no TLS 1.2 session: %.1500s", out);
	CHECK(strstr(out, "HTTP/1.1 200"), "control request unanswered: %.2000s", out);
	CHECK(s_client(&s, opts, reneg, out, sizeof(out)), "no TLS 1.2 session: %.1500s", out);
	CHECK(strstr(out, "RENEGOTIATING"), "s_client did not try to renegotiate: %.2000s", out);
	CHECK(strstr(out, "HTTP/1.1 200") == NULL,
	      "the server renegotiated and answered on the same connection: %.3000s", out);
	/* and the server is fine afterwards */
	CHECK(s_client(&s, opts, plain, out, sizeof(out)) && strstr(out, "HTTP/1.1 200"),
	      "server unwell after a renegotiation attempt: %.1500s", out);
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

/* The HSTS max-age in a response head, or -1 when the header is missing. */
static long
hsts_max_age(const char *out)
{
	const char *h = strstr(out, "Strict-Transport-Security: max-age=");

	return h ? strtol(h + strlen("Strict-Transport-Security: max-age="), NULL, 10) : -1;
}

static void
test_hsts_on_every_response(void)
{
	static const char *const opts[] = {"-quiet", NULL};
	static const char *const reqs[] = {
		"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"GET /nowhere HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"GET /api/v1/devices HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"DELETE /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
	};
	static const char *const want[] = {"HTTP/1.1 200", "HTTP/1.1 404", "HTTP/1.1 401",
					   "HTTP/1.1 405"};
	static char out[OUT_CAP];
	struct srv s;

	CHECK(start(&s, "tlshsts", NULL) == 0, "server did not start");
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		const char *chunks[] = {reqs[i], NULL};

		s_client(&s, opts, chunks, out, sizeof(out));
		CHECK(strstr(out, want[i]), "want %s: %.1500s", want[i], out);
		CHECK(hsts_max_age(out) >= 31536000, "no HSTS of a year or more: %.1500s", out);
		CHECK(strstr(out, "includeSubDomains") == NULL, "HSTS reaches other hosts");
	}
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

static void
test_priorities_setting(void)
{
	static const char *const bad[] = {"--tls-priorities", "NORMAL:+VERS-TLS1.3:+BOGUS", NULL};
	static const char *const only13[] = {"--tls-priorities", "NORMAL:-VERS-ALL:+VERS-TLS1.3",
					     NULL};
	static const char *const v12[] = {"-tls1_2", NULL};
	static const char *const v13[] = {"-tls1_3", NULL};
	static char out[OUT_CAP];
	char log[4096] = "";
	struct srv s;
	struct stat sb;
	FILE *f;

	/* a priority string GnuTLS rejects stops the server before it makes anything */
	CHECK(srv_init(&s, "tlsprio") == 0, "init");
	CHECK(srv_start(&s, bad) != 0, "the server started with a bad priority string");
	f = fopen(s.log, "r");
	if (f != NULL) {
		log[fread(log, 1, sizeof(log) - 1, f)] = '\0';
		fclose(f);
	}
	CHECK(strstr(log, "GnuTLS rejects the TLS priority string at '+BOGUS'"), "log: %s", log);
	CHECK(stat(s.dir, &sb) != 0, "the data directory was made for a server that cannot run");
	/* a valid one is applied: TLS 1.3 only */
	CHECK(srv_start(&s, only13) == 0, "server did not start with a TLS 1.3-only string");
	CHECK(!s_client(&s, v12, NULL, out, sizeof(out)), "TLS 1.2 accepted: %.1500s", out);
	CHECK(s_client(&s, v13, NULL, out, sizeof(out)), "TLS 1.3 refused: %.1500s", out);
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

/* Request smuggling: a body's length must be stated once, one way. */
static void
test_ambiguous_framing(void)
{
	static const char *const opts[] = {"-quiet", NULL};
	static const struct {
		const char *req, *detail;
	} bad[] = {
		{"POST /api/v1/tokens HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
		 "Content-Length: 40\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
		 "more than one Content-Length"},
		{"POST /api/v1/tokens HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
		 "Content-Length: 2\r\n\r\n{}",
		 "more than one Content-Length"},
		{"POST /api/v1/tokens HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: "
		 "localhost\r\n\r\n",
		 "both Content-Length and Transfer-Encoding"},
		{"POST /api/v1/tokens HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, "
		 "chunked\r\n\r\n0\r\n\r\n",
		 "single \\\"chunked\\\""},
		{"POST /api/v1/tokens HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		 "single \\\"chunked\\\""},
	};
	static const char *const good = "POST /api/v1/tokens HTTP/1.1\r\nHost: localhost\r\n"
					"Content-Length: 2\r\nConnection: close\r\n\r\n{}";
	static char out[OUT_CAP];
	struct srv s;

	CHECK(start(&s, "smuggle", NULL) == 0, "server did not start");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *chunks[] = {bad[i].req, NULL};
		const char *second;
		double t0 = now_s();

		s_client(&s, opts, chunks, out, sizeof(out));
		CHECK(now_s() - t0 < 5, "case %zu: the connection stayed open after the answer", i);
		CHECK(strncmp(out, "HTTP/1.1 400", 12) == 0 || strstr(out, "\nHTTP/1.1 400"),
		      "case %zu: want 400: %.1500s", i, out);
		CHECK(strstr(out, "Content-Type: application/problem+json"), "case %zu: %.1500s", i,
		      out);
		CHECK(strstr(out, bad[i].detail), "case %zu: want '%s': %.1500s", i, bad[i].detail,
		      out);
		CHECK(strstr(out, "Connection: close"), "case %zu: connection kept: %.1500s", i,
		      out);
		/* nothing smuggled after the refused request is answered */
		second = strstr(out, "HTTP/1.1 400");
		CHECK(second && strstr(second + 1, "HTTP/1.1") == NULL,
		      "case %zu: a second response: %.2000s", i, out);
	}
	{
		const char *chunks[] = {good, NULL};

		s_client(&s, opts, chunks, out, sizeof(out));
		CHECK(strstr(out, "HTTP/1.1 401"), "a well-framed request must pass: %.1500s", out);
	}
	srv_stop(&s, SIGTERM);
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"protocols_and_ciphers", test_protocols_and_ciphers},
		{"renegotiation_refused", test_renegotiation_refused},
		{"hsts_on_every_response", test_hsts_on_every_response},
		{"priorities_setting", test_priorities_setting},
		{"ambiguous_framing", test_ambiguous_framing},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
