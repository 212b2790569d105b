/*
 * Integration tests of cleave-hv's first hour and its bridge's connection limits: --version and
 * "unknown option" in cleave-hv, cleave-hvctl and cleave-ticket; a missing state directory is
 * created 0700; `cleave-hvctl console` finds the console beside a --socket placed elsewhere;
 * idle connections cannot lock the agent out, and other callers' idle connections are closed.
 * Runs the real binaries; needs no KVM (the other-uid half of the bridge test needs root).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge_client.h"
#include "bridge_msg.h"
#include "hvproc.h"
#include "trun.h"
#include "util.h"

#define NOBODY_UID 65534

static const char *
bin(void)
{
	const char *b = getenv("CLEAVE_BIN");

	return b && *b ? b : "build/bin";
}

/* Runs "BIN/prog args" with stdin from /dev/null; output in out; returns the exit status. */
static int
run(const char *prog, const char *args, char *out, size_t cap)
{
	char cmd[PATH_MAX * 2];
	size_t n;
	FILE *f;
	int rc;

	snprintf(cmd, sizeof(cmd), "timeout 20 %s/%s %s </dev/null 2>&1", bin(), prog, args);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	rc = pclose(f);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void
test_hv_cli_version_and_unknown_option(void)
{
	static const char *const progs[] = {"cleave-hv", "cleave-hvctl", "cleave-ticket"};
	char out[4096], want[64];

	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		CHECK(run(progs[i], "--version", out, sizeof(out)) == 0, "%s --version: %s",
		      progs[i], out);
		snprintf(want, sizeof(want), "%s ", progs[i]);
		CHECK(strncmp(out, want, strlen(want)) == 0, "%s --version printed %s", progs[i],
		      out);
		CHECK(run(progs[i], "--no-such-option", out, sizeof(out)) == 2 &&
			      strstr(out, "unknown option --no-such-option") != NULL,
		      "%s: an unknown option must be named: %s", progs[i], out);
	}
	CHECK(run("cleave-hvctl", "status", out, sizeof(out)) == 2 &&
		      strstr(out, "--socket PATH is required") != NULL,
	      "cleave-hvctl without --socket must say so: %s", out);
	CHECK(run("cleave-ticket", "make --key k --bogus 1 wipe", out, sizeof(out)) == 2 &&
		      strstr(out, "unknown option --bogus") != NULL,
	      "cleave-ticket make: an unknown option must be named: %s", out);
}

static void
test_hv_creates_missing_state_dir_0700(void)
{
	struct hvproc p;
	char cmd[PATH_MAX + 32];
	struct stat st;

	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	hvp_stop(&p, SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p.dir);
	CHECK(system(cmd) == 0 && access(p.dir, F_OK) != 0, "remove the state dir");
	CHECK(hvp_start(&p) == 0, "cleave-hv must create a missing state directory and start");
	CHECK(stat(p.dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
	      "the new state directory must be 0700 (is %o)", (unsigned)(st.st_mode & 0777));
	hvp_cleanup(&p);
}

/*
 * A SIGTERM while cleave-hv is still starting (here: its identity key written, its bridge not
 * yet serving) stops it cleanly, exit 0, as a supervisor expects; the default action would kill
 * it (a watcher that saw the socket appear could send one before the loop ran).
 */
static void
test_hv_sigterm_during_start_is_clean(void)
{
	struct hvproc p;
	char key[PATH_MAX + 16];
	int rc, i;

	CHECK(hvp_prepare(&p) == 0 && hvp_spawn(&p) == 0, "cleave-hv did not start");
	snprintf(key, sizeof(key), "%s/identity.key", p.dir);
	for (i = 0; i < 50000 * t_slow() && access(key, F_OK) != 0; i++) /* 100 us steps, 5 s */
		usleep(100);
	CHECK(access(key, F_OK) == 0, "cleave-hv wrote no identity key");
	rc = t_stop_child(p.pid, SIGTERM, 10000 * t_slow());
	p.pid = 0;
	CHECK(rc == 0, "cleave-hv stopped during its start must exit 0 (got %d; 143: killed)", rc);
	hvp_cleanup(&p);
}

static void
test_hv_console_found_beside_socket_elsewhere(void)
{
	struct hvproc p;
	char sockdir[PATH_MAX], args[PATH_MAX * 2], out[8192];
	const char *base = getenv("CLEAVE_TEST_OUT");

	snprintf(sockdir, sizeof(sockdir), "%s/hvsock-XXXXXX", base && *base ? base : "/tmp");
	CHECK(mkdtemp(sockdir) != NULL, "mkdtemp");
	t_remove_after_case(sockdir); /* with the console socket cleave-hv leaves beside it */
	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	hvp_stop(&p, SIGTERM);
	snprintf(p.sock, sizeof(p.sock), "%s/hv.sock", sockdir);
	p.extra[0] = "--socket";
	p.extra[1] = p.sock;
	CHECK(hvp_start(&p) == 0, "cleave-hv with --socket elsewhere");
	snprintf(args, sizeof(args), "--socket %s console", p.sock);
	/* With KVM the console carries the guest's banner, without it cleave-hv's own lines. */
	CHECK(run("cleave-hvctl", args, out, sizeof(out)) == 0 &&
		      (strstr(out, "[cleave-hv]") || strstr(out, "cleave corporate guest")),
	      "cleave-hvctl console must find the console beside --socket: %.400s", out);
	hvp_cleanup(&p);
}

/* 1 when cleave-hv has closed the connection fd (EOF within timeout_ms). */
static int
closed_by_server(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char b;

	return poll(&pfd, 1, timeout_ms) == 1 && recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

/* A full table of idle agent connections: a new agent connection still gets answers. */
static void
test_hv_bridge_idle_agent_connections_never_lock_out(void)
{
	struct hvproc p;
	struct bridge_client held[20], c;
	uint64_t e;

	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	for (int i = 0; i < 20; i++)
		CHECK(bridge_connect(&held[i], p.sock, 5000) == 0, "connect %d", i);
	usleep(300000); /* cleave-hv accepts them all (one per poll round at most) */
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	CHECK(hvp_state(&c, &e) == HV_STATE_ACTIVE, "20 idle connections locked the agent out");
	/* the longest-idle ones made room */
	CHECK(closed_by_server(held[0].fd, 1000), "the oldest idle connection was not closed");
	bridge_close(&c);
	for (int i = 0; i < 20; i++)
		bridge_close(&held[i]);
	hvp_cleanup(&p);
}

/* In a child running as the agent's uid: status and an attestation (agent only). */
static int
agent_child(const char *sock)
{
	uint8_t nonce[32] = {3}, buf[512];
	struct bridge_client c;
	size_t n;
	uint64_t e;

	if (setgid(NOBODY_UID) != 0 || setuid(NOBODY_UID) != 0)
		return 3;
	if (bridge_connect(&c, sock, 5000) != 0)
		return 4;
	if (hvp_state(&c, &e) != HV_STATE_ACTIVE)
		return 5;
	return bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK ? 0 : 6;
}

/* Other callers hold at most 12 connections, idle ones are closed, the agent gets in. */
static void
test_hv_bridge_others_capped_and_closed_when_idle(void)
{
	struct hvproc p;
	struct bridge_client held[16];
	char sockdir[] = "/tmp/cleave-hvsock-XXXXXX";
	int status = -1, closed = 0;
	uint64_t e;
	pid_t pid;

	if (geteuid() != 0) {
		printf("    (not root: the other-uid half needs a second uid; skipped)\n");
		return;
	}
	CHECK(mkdtemp(sockdir) != NULL && chmod(sockdir, 0711) == 0, "socket dir");
	t_remove_after_case(sockdir);
	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	hvp_stop(&p, SIGTERM);
	snprintf(p.sock, sizeof(p.sock), "%s/hv.sock", sockdir);
	p.extra[0] = "--socket", p.extra[1] = p.sock;
	p.extra[2] = "--agent-uid", p.extra[3] = "65534";
	p.extra[4] = "--bridge-idle", p.extra[5] = "3";
	CHECK(hvp_start(&p) == 0, "cleave-hv with an agent uid of its own");
	for (int i = 0; i < 16; i++) /* we are root, so "other" */
		CHECK(bridge_connect(&held[i], p.sock, 5000) == 0, "connect %d", i);
	/* an answer on the last one: cleave-hv has accepted all 16 (in order) */
	CHECK(hvp_state(&held[15], &e) == HV_STATE_ACTIVE, "status as another user");
	pid = fork();
	if (pid == 0)
		_exit(agent_child(p.sock));
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "16 other connections starved the agent (child status %d)", status);
	/* the 4 oldest of ours made room for newer ones (the cap), long before the idle limit */
	for (int i = 0; i < 4; i++)
		closed += closed_by_server(held[i].fd, 1000);
	CHECK(closed == 4, "other callers hold more than 12 connections (%d of 4 closed)", closed);
	CHECK(!closed_by_server(held[4].fd, 0), "a connection within the cap was closed early");
	/* the rest go once silent for 3 s */
	for (int i = 4; i < 16; i++)
		CHECK(closed_by_server(held[i].fd, 6000), "idle connection %d still open", i);
	for (int i = 0; i < 16; i++)
		bridge_close(&held[i]);
	hvp_cleanup(&p);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"hv_cli_version_and_unknown_option", test_hv_cli_version_and_unknown_option},
		{"hv_creates_missing_state_dir_0700", test_hv_creates_missing_state_dir_0700},
		{"hv_sigterm_during_start_is_clean", test_hv_sigterm_during_start_is_clean},
		{"hv_console_found_beside_socket_elsewhere",
		 test_hv_console_found_beside_socket_elsewhere},
		{"hv_bridge_idle_agent_connections_never_lock_out",
		 test_hv_bridge_idle_agent_connections_never_lock_out},
		{"hv_bridge_others_capped_and_closed_when_idle",
		 test_hv_bridge_others_capped_and_closed_when_idle},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
