/*
 * Interoperability of device request signatures: a device enrolled by the test library signs its
 * check-ins with someone else's RFC 9421 implementation (the npm package http-message-signatures,
 * driven by tests/interop/sign.mjs: its own label, parameter order, expires and an unknown tag),
 * and the real cleave-server on 127.0.0.1 must accept them, and still refuse a wrong key, a stale
 * created, an expired signature, a replayed nonce and a signature that leaves content-digest out.
 * Where node or the package is missing, every case says "skipped: <reason>" instead of passing.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

#define SIGNER_SECONDS 40
#define OUT_MAX        4096

/* Why the interop signer cannot run here, or "" when it can. */
static char skip_reason[256];
static char interop_dir[PATH_MAX];

/* A server, one enrolled device, its key in PEM for the signer, and the check-in URL. */
struct env {
	struct srv s;
	struct client *admin, *dc;
	struct device_sim d;
	char keyfile[PATH_MAX + 16];
	char url[192];
};

static void
find_signer(void)
{
	const char *bin = getenv("CLEAVE_BIN");
	char root[PATH_MAX], probe[PATH_MAX + 64];

	/* CLEAVE_BIN is <repo>/<build>/bin; without it the tests run from the repository root. */
	snprintf(probe, sizeof(probe), "%s/../..", bin && *bin ? bin : ".");
	if (realpath(bin && *bin ? probe : ".", root) == NULL) {
		snprintf(skip_reason, sizeof(skip_reason), "cannot find the repository root");
		return;
	}
	snprintf(interop_dir, sizeof(interop_dir), "%s/tests/interop", root);
	if (system("node --version >/dev/null 2>&1") != 0) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "node is not installed (scripts/deps.sh installs it)");
		return;
	}
	snprintf(probe, sizeof(probe), "%s/node_modules/http-message-signatures/package.json",
		 interop_dir);
	if (access(probe, R_OK) != 0)
		snprintf(skip_reason, sizeof(skip_reason),
			 "npm package missing: %s (scripts/deps.sh runs npm ci there)", probe);
}

static int
env_up(struct env *e, const char *tag)
{
	char tok[128];
	struct resp r;
	int ok;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || srv_start(&e->s, NULL) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	e->dc = client_new(&e->s, NULL);
	if (e->admin == NULL || e->dc == NULL || dev_init(&e->d) != 0 ||
	    admin_etoken(e->admin, "ivan@example.com", 1, tok, sizeof(tok)) != 0 ||
	    dev_enroll(&e->d, e->dc, tok, &r) != 0)
		return -1;
	ok = r.status == 201 ? 0 : -1;
	resp_free(&r);
	snprintf(e->keyfile, sizeof(e->keyfile), "%s/../device-key.pem", e->s.dir);
	snprintf(e->url, sizeof(e->url), "%s/device/v1/checkin", e->s.url);
	return ok == 0 && ed25519_key_save(e->d.key, e->keyfile) == 0 ? 0 : -1;
}

static void
env_down(struct env *e)
{
	client_free(e->dc);
	client_free(e->admin);
	dev_fini(&e->d);
	srv_cleanup(&e->s);
}

/* Reads the child's stdout into out until EOF or the deadline; 0, or -ETIMEDOUT. */
static int
read_all(int fd, char *out, size_t cap, double deadline)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		double left = deadline - now_s();
		ssize_t k;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		k = read(fd, out + n, cap - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == cap - 1)
			break;
	}
	out[n] = '\0';
	return 0;
}

/*
 * Runs sign.mjs for e's device with the next nonce and extra arguments (NULL-terminated),
 * bounded by SIGNER_SECONDS. out receives its stdout; returns its exit status or -1.
 */
static int
run_signer(struct env *e, const char *const *extra, char *out, size_t cap)
{
	char script[PATH_MAX + 16], nonce[24], errlog[PATH_MAX + 16];
	const char *argv[32] = {"node",  script,     "--url",   e->url,  "--ca",    e->s.cacert,
				"--key", e->keyfile, "--keyid", e->d.id, "--nonce", nonce};
	size_t argc = 12;
	int fds[2], st = 0, r;
	pid_t pid;

	snprintf(script, sizeof(script), "%s/sign.mjs", interop_dir);
	snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)++e->d.nonce);
	snprintf(errlog, sizeof(errlog), "%s/../signer.log", e->s.dir);
	for (; extra != NULL && *extra != NULL && argc + 1 < ARRAY_SIZE(argv); extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		FILE *f = fopen(errlog, "a");

		dup2(fds[1], STDOUT_FILENO);
		if (f != NULL)
			dup2(fileno(f), STDERR_FILENO);
		close(fds[0]);
		execvp("node", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -1;
	}
	t_track_child(pid, 1);
	r = read_all(fds[0], out, cap, now_s() + SIGNER_SECONDS);
	close(fds[0]);
	if (r != 0)
		kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	t_track_child(pid, 0);
	if (r != 0) {
		printf("    signer timed out; its log: %s\n", errlog);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The HTTP status on line i (0-based) of the signer's output, or -1. */
static long
status_of(const char *out, int i)
{
	for (; i > 0 && out != NULL; i--) {
		out = strchr(out, '\n');
		out = out ? out + 1 : NULL;
	}
	return out != NULL ? strtol(out, NULL, 10) : -1;
}

#define START(e, tag)                                                                              \
	do {                                                                                       \
		if (skip_reason[0] != '\0') {                                                      \
			printf("    skipped: %s\n", skip_reason);                                  \
			return;                                                                    \
		}                                                                                  \
		CHECK(env_up(e, tag) == 0, "server or enrollment failed");                         \
	} while (0)

#define SIGN(e, out, ...)                                                                          \
	do {                                                                                       \
		const char *const args_[] = {__VA_ARGS__, NULL};                                   \
		int rc_ = run_signer(e, args_, out, sizeof(out));                                  \
		CHECK(rc_ == 0, "signer exit %d (log next to %s): %s", rc_, (e)->s.dir, out);      \
	} while (0)

static int
accepted(long status)
{
	return status == 200 || status == 204;
}

/* Its label, its parameter order, expires and tag; then alongside a gateway's HMAC signature. */
static void
test_accepts_independent_signer(void)
{
	struct env e;
	char out[OUT_MAX];

	START(&e, "interop-ok");
	SIGN(&e, out, "--label", "cleave");
	CHECK(accepted(status_of(out, 0)), "label cleave: %s", out);
	printf("    the signer sent:\n%s", strchr(out, '#') ? strchr(out, '#') : out);
	SIGN(&e, out, "--label", "sig-b26", "--fields", "@method,@path,@query,content-digest",
	     "--gateway-signature");
	CHECK(accepted(status_of(out, 0)), "second signature after a gateway's: %s", out);
	CHECK(strstr(out, "gw=(") != NULL, "no gateway signature sent: %s", out);
	SIGN(&e, out, "--label", "s", "--fields", "@query,content-digest,@path,@method", "--body",
	     "{\"wait\":0,\"state\":{\"agent_version\":\"interop\"}}");
	CHECK(accepted(status_of(out, 0)), "other order, other body: %s", out);
	env_down(&e);
}

static void
test_refuses_wrong_key(void)
{
	struct env e;
	char out[OUT_MAX];

	START(&e, "interop-key");
	SIGN(&e, out, "--wrong-key");
	CHECK(status_of(out, 0) == 401 && strstr(out, "does not verify"), "%s", out);
	env_down(&e);
}

static void
test_refuses_stale_and_expired(void)
{
	struct env e;
	char out[OUT_MAX];

	START(&e, "interop-time");
	SIGN(&e, out, "--created-offset", "-3600", "--expires-offset", "300");
	CHECK(status_of(out, 0) == 401 && strstr(out, "stale"), "stale created: %s", out);
	SIGN(&e, out, "--created-offset", "-20", "--expires-offset", "-10");
	CHECK(status_of(out, 0) == 401 && strstr(out, "expired"), "expired: %s", out);
	SIGN(&e, out, "--created-offset", "-20", "--expires-offset", "60");
	CHECK(accepted(status_of(out, 0)), "not yet expired: %s", out);
	env_down(&e);
}

static void
test_refuses_replay(void)
{
	struct env e;
	char out[OUT_MAX];

	START(&e, "interop-replay");
	SIGN(&e, out, "--repeat", "2");
	CHECK(accepted(status_of(out, 0)), "first: %s", out);
	CHECK(status_of(out, 1) == 401 && strstr(out, "replay"), "second: %s", out);
	env_down(&e);
}

/* content-digest left out; and @authority, which the server does not rebuild, added. */
static void
test_refuses_components(void)
{
	struct env e;
	char out[OUT_MAX];

	START(&e, "interop-comp");
	SIGN(&e, out, "--fields", "@method,@path,@query");
	CHECK(status_of(out, 0) == 401 && strstr(out, "does not cover"), "no digest: %s", out);
	SIGN(&e, out, "--fields", "@method,@authority,@path,@query,content-digest");
	CHECK(status_of(out, 0) == 401 && strstr(out, "other than"), "@authority: %s", out);
	env_down(&e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"accepts_independent_signer", test_accepts_independent_signer},
		{"refuses_wrong_key", test_refuses_wrong_key},
		{"refuses_stale_and_expired", test_refuses_stale_and_expired},
		{"refuses_replay", test_refuses_replay},
		{"refuses_components", test_refuses_components},
	};

	find_signer();
	if (skip_reason[0] != '\0')
		printf("skipped: %s\n", skip_reason);
	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
