/*
 * corp_init: PID 1 of the Linux corporate half's initramfs (issue 12 §4), the guest that
 * cleave-hv boots with --linux inside the emulated machine (tests/arm64/README.md). It loads
 * Debian's virtio_mmio and virtio_blk modules (the .ko files in /lib), waits for /dev/vda (the
 * corporate volume, through cleave-hv's virtio disk), reports whether the test pattern is on
 * it, writes the pattern, flushes, reads it back, then echoes console input forever ("verify"
 * reads the pattern back again). Every line starts with "corp-init:"; the host decides. Direct
 * I/O, so what it reads comes from the disk and not the page cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PATTERN    "CLEAVE-LINUX-CORPORATE-PATTERN-4f1c9e-"
#define AREA       (64 * 1024) /* bytes written at the start of /dev/vda */
#define VDA_WAIT_S 20

static double
uptime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
say(const char *what)
{
	printf("corp-init: %s, uptime %.3f s\n", what, uptime());
}

static void
load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long r = fd < 0 ? -1 : syscall(SYS_finit_module, fd, "", 0);

	printf("corp-init: module %s: %s\n", path, r == 0 ? "loaded" : strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void
fill(char *buf)
{
	size_t n = strlen(PATTERN);

	for (size_t i = 0; i < AREA; i++)
		buf[i] = PATTERN[i % n];
}

/* Reads the area with direct I/O into buf; 0 or -1. */
static int
read_area(int fd, char *buf)
{
	return pread(fd, buf, AREA, 0) == AREA ? 0 : -1;
}

/* "verify" typed at the console: the pattern read again from the disk, not the page cache. */
static void
verify(void)
{
	char *want, *got;
	int fd = open("/dev/vda", O_RDONLY | O_DIRECT);

	if (fd < 0 || posix_memalign((void **)&want, 4096, AREA) != 0 ||
	    posix_memalign((void **)&got, 4096, AREA) != 0) {
		printf("corp-init: vda verify: cannot open (%s)\n", strerror(errno));
		return;
	}
	fill(want);
	printf("corp-init: vda verify: %s\n",
	       read_area(fd, got) == 0 && memcmp(got, want, AREA) == 0 ? "ok" : "MISMATCH");
	close(fd);
	free(want);
	free(got);
}

static void
disk(void)
{
	char *want, *got;
	int fd = -1;

	for (int i = 0; i < VDA_WAIT_S * 10 && fd < 0; i++) {
		fd = open("/dev/vda", O_RDWR | O_DIRECT);
		if (fd < 0)
			usleep(100 * 1000);
	}
	if (fd < 0 || posix_memalign((void **)&want, 4096, AREA) != 0 ||
	    posix_memalign((void **)&got, 4096, AREA) != 0) {
		printf("corp-init: no /dev/vda (%s)\n", strerror(errno));
		return;
	}
	say("vda open");
	fill(want);
	if (read_area(fd, got) != 0) {
		printf("corp-init: vda read failed: %s\n", strerror(errno));
		return;
	}
	printf("corp-init: vda before: pattern %s\n",
	       memcmp(got, want, AREA) == 0 ? "present" : "absent");
	if (pwrite(fd, want, AREA, 0) != AREA || fsync(fd) != 0) {
		printf("corp-init: vda write failed: %s\n", strerror(errno));
		return;
	}
	say("vda pattern written and synced");
	memset(got, 0, AREA);
	printf("corp-init: vda read back: %s\n",
	       read_area(fd, got) == 0 && memcmp(got, want, AREA) == 0 ? "ok" : "MISMATCH");
	close(fd);
}

/* The kernel found no /dev/console in the initramfs: take it once devtmpfs is up. */
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

int
main(void)
{
	char line[256];

	mkdir("/dev", 0755);
	mkdir("/proc", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	take_console();
	setvbuf(stdout, NULL, _IOLBF, 0);
	say("start");
	load_module("/lib/virtio_mmio.ko");
	load_module("/lib/virtio_blk.ko");
	disk();
	say("idle, echoing the console");
	/* PID 1 must not return; a closed console ends in pause. */
	for (;;) {
		ssize_t n = read(0, line, sizeof(line) - 1);

		if (n <= 0) {
			pause();
			continue;
		}
		line[n] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
		printf("corp-init: echo %s\n", line);
		if (strcmp(line, "verify") == 0)
			verify();
	}
}
