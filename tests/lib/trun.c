/*
 * The test runner (trun.h): cases, failures and skips, and the child processes a case leaves
 * behind. Only libc, so the arm64 build of the hypervisor suites links it as well.
 */
#include "trun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int t_failed_now;
static int t_skipped_now;
static char first_skip[256]; /* the reason of the first skipped case, for a suite-level skip */

/* Children started and not yet reaped; a case that fails early leaves them here. */
static pid_t live_servers[64];

void
t_track_child(pid_t pid, int add)
{
	for (size_t i = 0; i < ARRAY_SIZE(live_servers); i++) {
		if (add ? live_servers[i] == 0 : live_servers[i] == pid) {
			live_servers[i] = add ? pid : 0;
			return;
		}
	}
}

/* Paths outside $CLEAVE_TEST_OUT that go when the case ends. */
static char remove_paths[8][PATH_MAX];

void
t_remove_after_case(const char *path)
{
	for (size_t i = 0; i < ARRAY_SIZE(remove_paths); i++) {
		if (remove_paths[i][0] == '\0') {
			str_copy(remove_paths[i], sizeof(remove_paths[i]), path);
			return;
		}
	}
	t_fail(__FILE__, __LINE__, "more than %zu paths to remove", ARRAY_SIZE(remove_paths));
}

static void
remove_case_paths(void)
{
	char cmd[PATH_MAX + 32];

	for (size_t i = 0; i < ARRAY_SIZE(remove_paths); i++) {
		if (remove_paths[i][0] != '\0') {
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", remove_paths[i]);
			(void)!system(cmd);
			remove_paths[i][0] = '\0';
		}
	}
}

/*
 * Kills and reaps whatever a case left running. A case that passed must have stopped its
 * processes itself (gracefully, so that `make asan` sees their leaks): it fails here.
 */
static void
reap_servers(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(live_servers); i++) {
		if (live_servers[i] > 0) {
			kill(live_servers[i], SIGKILL);
			waitpid(live_servers[i], NULL, 0);
			if (!t_failed_now)
				t_fail(__FILE__, __LINE__, "the case left process %ld running",
				       (long)live_servers[i]);
			else
				printf("    (killed process %ld left running by the case)\n",
				       (long)live_servers[i]);
			live_servers[i] = 0;
		}
	}
}

void
t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	t_failed_now = 1;
	fprintf(stdout, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void
t_skip(const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	t_skipped_now = 1;
	if (first_skip[0] == '\0')
		str_copy(first_skip, sizeof(first_skip), why);
	printf("    skipped: %s\n", why);
	fflush(stdout);
}

int
t_stop_child(pid_t pid, int sig, int timeout_ms)
{
	int st;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	for (int i = 0; i < timeout_ms / 10; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR)) {
			t_track_child(pid, 0);
			if (r < 0)
				return -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	t_track_child(pid, 0);
	return -1;
}

int
t_stop_graceful(pid_t *pid, const char *what, const char *log)
{
	int rc;

	if (*pid <= 0)
		return 0;
	rc = t_stop_child(*pid, SIGTERM, 15000);
	*pid = 0;
	if (rc != 0)
		t_fail(__FILE__, __LINE__,
		       "%s did not stop cleanly on SIGTERM: %s %d (a crash, a hang, or a leak "
		       "or sanitizer report at exit; see %s)",
		       what, rc < 0 ? "killed after 15 s," : "exit status", rc,
		       log ? log : "the suite log");
	return rc;
}

double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether nothing listens on (or holds) 127.0.0.1:port now. */
static int
port_unused(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* The low end of the kernel's ephemeral port range (32768 when it cannot be read). */
static unsigned
ephemeral_low(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	unsigned low = 32768, high = 0;

	if (f != NULL) {
		if (fscanf(f, "%u %u", &low, &high) != 2)
			low = 32768;
		fclose(f);
	}
	return low;
}

/*
 * Ports come from below the ephemeral range: a port from inside it (what bind to port 0 gives)
 * can be taken as the local end of any outgoing connection, a test's own requests to its
 * server included, between this check and the caller's bind. Each process starts at a place
 * of its own and walks on, so the suites running side by side seldom try the same port and one
 * process never hands out a port twice.
 */
unsigned
t_free_port(void)
{
	static unsigned next;
	static int started;
	unsigned low = ephemeral_low(), base = 10000, span;

	if (low < base + 1000)
		return 0;
	span = low - base;
	if (!started) {
		started = 1;
		next = (unsigned)(((unsigned long)getpid() * 7919u + (unsigned long)time(NULL)) %
				  span);
	}
	for (unsigned i = 0; i < 1000; i++) {
		unsigned port = base + next % span;

		next = (next + 1) % span;
		if (port_unused(port))
			return port;
	}
	return 0;
}

int
t_run(const struct t_case *cases, size_t n, int argc, char **argv)
{
	int pass = 0, fail = 0, skip = 0;

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < n; i++) {
		double t0;
		int want = argc <= 1;

		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], cases[i].name) == 0;
		if (!want)
			continue;
		t_failed_now = 0;
		t_skipped_now = 0;
		printf("  %s\n", cases[i].name);
		fflush(stdout);
		t0 = now_s();
		cases[i].fn();
		reap_servers();
		remove_case_paths();
		printf("  %s %s (%.2fs)\n",
		       t_failed_now    ? "FAIL"
		       : t_skipped_now ? "skip"
				       : "ok  ",
		       cases[i].name, now_s() - t0);
		fflush(stdout);
		if (t_failed_now)
			fail++;
		else if (t_skipped_now)
			skip++;
		else
			pass++;
	}
	printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
	if (fail > 0)
		return 1;
	if (pass == 0 && skip > 0) {
		printf("skipped: %s\n", first_skip);
		return T_EXIT_SKIP;
	}
	return 0;
}

int
t_slow(void)
{
	const char *s = getenv("CLEAVE_TEST_SLOW");
	char *end;
	long n = s != NULL ? strtol(s, &end, 10) : 1;

	return s != NULL && *end == '\0' && n >= 1 && n <= 50 ? (int)n : 1;
}
