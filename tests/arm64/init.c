/*
 * init: PID 1 of the arm64 test initramfs (tests/arm64/README.md), so the image needs no shell
 * or busybox. It mounts devtmpfs (for /dev/kvm and /dev/console) and proc, takes the console as
 * stdin/stdout/stderr, runs each program named on the kernel command line after "--" in turn
 * (bounded: at most 16, each killed after 120 s), prints one "cleave-init:" line per step with
 * the kernel's uptime, and powers the machine off, which ends QEMU. The host test reads the
 * serial console; this program decides nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROGRAMS 16
#define PROGRAM_SECS 280 /* the Linux corporate half boots twice: up to 150 s */

static double
uptime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
take_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
}

/* Runs path with no arguments; returns its exit status, 128 + signal, or -1. */
static int
run(const char *path)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *const argv[] = {(char *)path, NULL};
		char *const envp[] = {"PATH=/bin", NULL};
		alarm(PROGRAM_SECS); /* the alarm survives exec and ends a hung program */
		execve(path, argv, envp);
		printf("cleave-init: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, 0); /* PID 1 also reaps orphans */
		if (w < 0)
			return -1;
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

int
main(int argc, char **argv)
{
	mkdir("/dev", 0755);
	mkdir("/proc", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	take_console();
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("cleave-init: start, uptime %.3f s\n", uptime());
	if (argc < 2)
		printf("cleave-init: nothing to run (name programs after -- on the kernel command "
		       "line)\n");
	for (int i = 1; i < argc && i <= MAX_PROGRAMS; i++) {
		printf("cleave-init: run %s\n", argv[i]);
		int rc = run(argv[i]);
		printf("cleave-init: %s exit %d, uptime %.3f s\n", argv[i], rc, uptime());
	}
	printf("cleave-init: power off\n");
	sync();
	reboot(RB_POWER_OFF);
	/* Only reached when reboot failed: PID 1 must not return. */
	for (;;)
		pause();
}
