/*
 * The arm64 cleave-hv, driven inside the emulated machine (tests/arm64/README.md): starts
 * /bin/cleave-hv on the arm64 kernel's KVM with the arm64 corporate guest, waits for its bridge
 * socket, then runs a fixed script of cleave-hvctl steps (status, attest, the console with a
 * few workspace commands typed in, and ubench: calls from EL0), each one bounded, their output on this console, one
 * `hv-step:` line per step with its exit status and time, and `hv-steps: result: ok` (or failed).
 * Then it stops cleave-hv with SIGTERM. The host test (test_arm64_kvm, its hv cases) reads the console and
 * decides; this program only reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATE_DIR   "/run/hv"
#define SOCKET      STATE_DIR "/hv.sock"
#define STEP_SECS   60 /* each hvctl step is killed after this */
#define SOCKET_SECS 60 /* cleave-hv must listen within this */

struct step {
	const char *name;
	const char *argv[8];
	const char *input; /* typed into stdin, then closed; NULL: /dev/null */
};

static const struct step steps[] = {
	{"status", {"/bin/cleave-hvctl", "--socket", SOCKET, "status", NULL}, NULL},
	{"attest",
	 {"/bin/cleave-hvctl", "--socket", SOCKET, "attest",
	  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", NULL},
	 NULL},
	{"console",
	 {"/bin/cleave-hvctl", "--socket", SOCKET, "console", NULL},
	 "version\rstatus\rput memo arm64-record\rget memo\rlist\rubench 3\r"},
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts argv with input (or /dev/null) on stdin; returns the pid or -1. */
static pid_t
spawn(const char *const *argv, const char *input, int secs)
{
	int fds[2] = {-1, -1};

	if (input != NULL && pipe(fds) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int in = input != NULL ? fds[0] : open("/dev/null", O_RDONLY);
		char *const envp[] = {"PATH=/bin", NULL};

		if (in < 0 || dup2(in, 0) < 0)
			_exit(126);
		if (input != NULL)
			close(fds[1]);
		if (secs > 0)
			alarm((unsigned)secs); /* survives exec: a hung step ends */
		execve(argv[0], (char *const *)argv, envp);
		printf("hv-steps: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (input != NULL) {
		close(fds[0]);
		if (pid > 0)
			(void)!write(fds[1], input, strlen(input)); /* fits the pipe buffer */
		close(fds[1]);
	}
	return pid;
}

static int
wait_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
main(void)
{
	const char *hv[] = {"/bin/cleave-hv", "--state",       STATE_DIR, "--guest",
			    "/bin/guest.bin", "--volume-size", "4",       NULL};
	struct stat sb;
	int failed = 0;
	double t0 = now_s();

	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir("/run", 0755);
	pid_t hv_pid = spawn(hv, NULL, 0);
	if (hv_pid < 0) {
		printf("hv-steps: cannot start cleave-hv: %s\n", strerror(errno));
		return 1;
	}
	while (stat(SOCKET, &sb) != 0 && now_s() - t0 < SOCKET_SECS &&
	       waitpid(hv_pid, NULL, WNOHANG) == 0)
		usleep(100 * 1000);
	printf("hv-step: cleave-hv %s after %.2f s\n",
	       stat(SOCKET, &sb) == 0 ? "listening" : "NOT listening", now_s() - t0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && stat(SOCKET, &sb) == 0; i++) {
		double t = now_s();
		pid_t pid = spawn(steps[i].argv, steps[i].input, STEP_SECS);
		int rc = pid < 0 ? -1 : wait_status(pid);

		printf("\nhv-step: %s exit %d, %.2f s\n", steps[i].name, rc, now_s() - t);
		failed |= rc != 0;
	}
	kill(hv_pid, SIGTERM);
	printf("hv-step: cleave-hv exit %d\n", wait_status(hv_pid));
	printf("hv-steps: result: %s\n", failed ? "failed" : "ok");
	return failed;
}
