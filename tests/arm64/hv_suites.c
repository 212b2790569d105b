/*
 * hv_suites: runs the x86 host's hypervisor suites (tests/integration/test_hv*.c, cross-built
 * unchanged for arm64) inside the emulated arm64 machine, against the arm64 cleave-hv in /bin
 * and the arm64 corporate guest in /guest (where hvproc.c looks: $CLEAVE_BIN/../guest). init
 * runs it; it gives each suite the environment `make test` gives it on x86 (CLEAVE_BIN,
 * CLEAVE_TEST_OUT) plus CLEAVE_TEST_SLOW, the factor on the suites' own timeouts under TCG, and
 * frames each suite's output with "hv-suite:" lines for the host test (test_arm64_kvm.c), which
 * reads the cases' lines and decides. The kernel command line may name the suites
 * (cleave.suites=test_hv,test_hv_cli), the factor (cleave.slow=N) and a shorter bound on each
 * suite (cleave.suite_secs=N); by default all five, 8 and SUITE_SECS.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE_SECS 280 /* a suite that hangs is killed at this; the host bounds the whole boot */
#define MAX_SUITES 8

static const char *const all_suites[] = {"test_hv", "test_hv_cli", "test_hv_console",
					 "test_hv_workspace", "test_hv_crash"};

static double
uptime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of "key=" on the kernel command line into out; 0, or -1 when absent. */
static int
cmdline_value(const char *key, char *out, size_t cap)
{
	char line[2048], *save = NULL;
	FILE *f = fopen("/proc/cmdline", "r");
	size_t klen = strlen(key);

	if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	for (char *w = strtok_r(line, " \n", &save); w != NULL; w = strtok_r(NULL, " \n", &save))
		if (strncmp(w, key, klen) == 0 && w[klen] == '=') {
			snprintf(out, cap, "%s", w + klen + 1);
			return 0;
		}
	return -1;
}

/* Runs argv[0] with argv, bounded by secs (then SIGKILL by its pid); exit code or 128 + sig. */
static int
run(char *const argv[], int secs)
{
	pid_t pid = fork();
	int st = 0;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], argv);
		printf("hv-suites: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < secs * 10; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (w < 0 && errno != EINTR)
			return -1;
		usleep(100 * 1000);
	}
	printf("hv-suites: %s still running after %d s: killed\n", argv[0], secs);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 128 + SIGKILL;
}

/*
 * After a suite that failed or was killed: the last lines of what its cases left in
 * CLEAVE_TEST_OUT (a failed case keeps its cleave-hv log and command output), for the reader of
 * the host test's console dump.
 */
static void
show_leftovers(void)
{
	char *const argv[] = {
		"/bin/sh", "-c",
		"for f in $(find /tmp/out -name '*.log' -o -name '*.out' | head -n 8); "
		"do echo \"hv-suites: --- $f\"; tail -n 15 \"$f\"; done",
		NULL};

	run(argv, 20);
}

int
main(void)
{
	char list[512] = "", slow[16] = "8", secs[16] = "", path[64];
	const char *names[MAX_SUITES];
	size_t n = 0;

	/* init's 120 s alarm is for one program; this one bounds each suite itself (SUITE_SECS). */
	alarm(0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	cmdline_value("cleave.slow", slow, sizeof(slow));
	int suite_secs =
		cmdline_value("cleave.suite_secs", secs, sizeof(secs)) == 0 ? atoi(secs) : 0;
	if (suite_secs <= 0 || suite_secs > SUITE_SECS)
		suite_secs = SUITE_SECS;
	if (cmdline_value("cleave.suites", list, sizeof(list)) == 0) {
		char *save = NULL;
		for (char *w = strtok_r(list, ",", &save); w != NULL && n < MAX_SUITES;
		     w = strtok_r(NULL, ",", &save))
			names[n++] = w;
	} else {
		for (; n < sizeof(all_suites) / sizeof(all_suites[0]); n++)
			names[n] = all_suites[n];
	}
	/* The suites' system() and popen() need a shell and small tools: busybox's applets. */
	char *const install[] = {"/bin/busybox", "--install", "-s", "/bin", NULL};
	if (run(install, 30) != 0)
		printf("hv-suites: busybox --install failed\n");
	mkdir("/tmp", 01777);
	mkdir("/tmp/out", 0700);
	setenv("PATH", "/bin", 1);
	setenv("CLEAVE_BIN", "/bin", 1);
	setenv("CLEAVE_TEST_OUT", "/tmp/out", 1);
	setenv("CLEAVE_TEST_SLOW", slow, 1);
	printf("hv-suites: %zu suites, CLEAVE_TEST_SLOW=%s\n", n, slow);
	for (size_t i = 0; i < n; i++) {
		double t0 = uptime();
		snprintf(path, sizeof(path), "/bin/%s", names[i]);
		char *const argv[] = {path, NULL};
		printf("hv-suite: %s start\n", names[i]);
		int rc = run(argv, suite_secs);
		printf("hv-suite: %s exit %d, %.1f s\n", names[i], rc, uptime() - t0);
		if (rc != 0 && rc != 77)
			show_leftovers();
	}
	printf("hv-suites: result: done\n");
	return 0;
}
