/*
 * The emulated arm64 machine's half of test_arm64_enroll (issue 13 §3): cleave-hv --tpm on the
 * machine's TPM, reached by the x86 host's real cleave-agent through QEMU's virtio-serial port
 * "cleave.bridge". Loads the virtio-serial and TPM drivers from /lib, waits for the port (its
 * character device made here from sysfs: no udev) and /dev/tpmrm0, starts
 * `cleave-hv --tpm device:/dev/tpmrm0` with the arm64 guest, prints "enroll-relay: ready", then
 * relays frames (tests/lib/relaylink.h) between the port and cleave-hv's bridge socket: each
 * host connection number gets a connection of its own to cleave-hv, opened at its first
 * message, closed when the host closes it; a connection cleave-hv closes is closed toward the
 * host. The host's stop frame ends it: cleave-hv is stopped with SIGTERM, and the program prints
 * what it relayed and "enroll-relay: result: ok" (or failed: no stop frame within RELAY_SECS, a
 * lost or broken link, cleave-hv not listening or not exiting 0). The host test decides.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/relaylink.h"

#define STATE_DIR  "/run/hv"
#define HV_SOCKET  STATE_DIR "/hv.sock"
#define TPM_DEV    "/dev/tpmrm0"
#define PORT_NAME  "cleave.bridge"
#define PORT_DEV   "/run/cleave.bridge"
#define PORTS      "/sys/class/virtio-ports"
#define WAIT_SECS  10  /* each of: the port, the TPM, cleave-hv's socket */
#define RELAY_SECS 240 /* the host's stop frame must come within this */
#define SEND_MS    10000

struct gconn {
	int fd; /* -1: free */
	uint32_t id;
};

static unsigned long opened, msgs_in, msgs_out;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
load_module(const char *name)
{
	char path[64];
	int fd;
	long r;

	snprintf(path, sizeof(path), "/lib/%s.ko", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	r = fd < 0 ? -1 : syscall(SYS_finit_module, fd, "", 0);
	printf("enroll-relay: module %s: %s\n", name, r == 0 ? "loaded" : strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* The virtio port named PORT_NAME as a character device at PORT_DEV (from its sysfs dev). */
static int
port_node(void)
{
	DIR *d = opendir(PORTS);
	struct dirent *e;
	int rc = -1;

	while (d != NULL && rc != 0 && (e = readdir(d)) != NULL) {
		char path[300], name[64] = "";
		unsigned maj, min;
		FILE *f;

		snprintf(path, sizeof(path), PORTS "/%s/name", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(name, sizeof(name), f) == NULL || strcmp(name, PORT_NAME "\n") != 0) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), PORTS "/%s/dev", e->d_name);
		f = fopen(path, "r");
		if (f != NULL && fscanf(f, "%u:%u", &maj, &min) == 2 &&
		    (mknod(PORT_DEV, S_IFCHR | 0600, makedev(maj, min)) == 0 || errno == EEXIST))
			rc = 0;
		if (f != NULL)
			fclose(f);
	}
	if (d != NULL)
		closedir(d);
	return rc;
}

/* What the kernel has of virtio, when the port did not come: how to tell why. */
static void
list_virtio(void)
{
	static const char *const dirs[] = {PORTS, "/sys/bus/virtio/devices"};

	for (size_t i = 0; i < 2; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		printf("enroll-relay: %s:%s", dirs[i], d == NULL ? " (none)" : "");
		while (d != NULL && (e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				printf(" %s", e->d_name);
		printf("\n");
		if (d != NULL)
			closedir(d);
	}
}

/* Waits (bounded) for ready() to return 0; prints how long it took. 0 or -1. */
static int
wait_for(const char *what, int (*ready)(void))
{
	double t0 = now_s();
	int ok;

	while ((ok = ready() == 0) == 0 && now_s() - t0 < WAIT_SECS)
		usleep(100 * 1000);
	printf("enroll-relay: %s %s after %.2f s\n", what, ok ? "present" : "ABSENT", now_s() - t0);
	return ok ? 0 : -1;
}

static int
tpm_present(void)
{
	return access(TPM_DEV, R_OK | W_OK);
}

static int
hv_listening(void)
{
	return access(HV_SOCKET, F_OK);
}

static pid_t
start_hv(void)
{
	const char *argv[] = {
		"/bin/cleave-hv", "--state", STATE_DIR, "--guest",         "/bin/guest.bin",
		"--volume-size",  "4",       "--tpm",   "device:" TPM_DEV, NULL};
	char *const envp[] = {"PATH=/bin", NULL};
	pid_t pid = fork();

	if (pid == 0) {
		execve(argv[0], (char *const *)argv, envp);
		printf("enroll-relay: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* A new connection to cleave-hv's bridge socket, or -1. */
static int
hv_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = HV_SOCKET};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		printf("enroll-relay: connect %s: %s\n", HV_SOCKET, strerror(errno));
		close(fd);
		fd = -1;
	}
	return fd;
}

static void
conn_close(struct gconn *c)
{
	close(c->fd);
	c->fd = -1;
}

/* The slot of connection id, opening it (a fresh connection to cleave-hv) when it is new. */
static struct gconn *
conn_get(struct gconn *c, uint32_t id, int open_new)
{
	struct gconn *free_slot = NULL;

	for (int i = 0; i < RELAY_CONNS; i++) {
		if (c[i].fd >= 0 && c[i].id == id)
			return &c[i];
		if (c[i].fd < 0 && free_slot == NULL)
			free_slot = &c[i];
	}
	if (!open_new || free_slot == NULL || (free_slot->fd = hv_connect()) < 0)
		return NULL;
	free_slot->id = id;
	opened++;
	return free_slot;
}

/* A whole frame from the host. 1: the stop frame, 0: relayed, -1: the link broke. */
static int
from_host(struct gconn *c, const struct relay_rx *rx, int port)
{
	struct gconn *g;

	if (rx->conn == 0)
		return rx->len == 0 ? 1 : 0;
	g = conn_get(c, rx->conn, rx->len > 0);
	if (g == NULL) /* a close for one already gone, or cleave-hv refused a connection */
		return rx->len == 0 ? 0 : relay_send(port, rx->conn, NULL, 0, SEND_MS);
	if (rx->len == 0) {
		conn_close(g);
		return 0;
	}
	if (send(g->fd, rx->buf + RELAY_HDR, rx->len, MSG_NOSIGNAL) == (ssize_t)rx->len) {
		msgs_in++;
		return 0;
	}
	conn_close(g);
	return relay_send(port, rx->conn, NULL, 0, SEND_MS);
}

/*
 * Relays until the stop frame (0), RELAY_SECS (-1) or a lost or broken link (-1). The port
 * reads end-of-file while no host is attached to it: until the first frame that is a wait.
 */
static int
relay(int port)
{
	static struct relay_rx rx;
	struct gconn c[RELAY_CONNS];
	double t0 = now_s();
	int frames = 0, r = 0;

	for (int i = 0; i < RELAY_CONNS; i++)
		c[i].fd = -1;
	while (now_s() - t0 < RELAY_SECS) {
		struct pollfd p[1 + RELAY_CONNS] = {{.fd = port, .events = POLLIN}};

		r = 0;
		for (int i = 0; i < RELAY_CONNS; i++)
			p[1 + i] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
		if (poll(p, 1 + RELAY_CONNS, 1000) <= 0)
			continue;
		if (p[0].revents != 0 && (r = relay_rx_read(&rx, port)) == -1 && frames == 0) {
			usleep(100 * 1000); /* no host yet */
			continue;
		}
		if (r < 0) {
			printf("enroll-relay: the link %s\n", r == -1 ? "was lost" : "is broken");
			return -1;
		}
		if (r == 1) {
			frames++;
			rx.have = 0;
			if ((r = from_host(c, &rx, port)) != 0)
				return r == 1 ? 0 : -1;
		}
		for (int i = 0; i < RELAY_CONNS; i++)
			if (c[i].fd >= 0 && p[1 + i].revents != 0 &&
			    relay_pump(&c[i].fd, c[i].id, port, &msgs_out, SEND_MS) != 0)
				return -1;
	}
	printf("enroll-relay: no stop frame within %d s\n", RELAY_SECS);
	return -1;
}

int
main(void)
{
	static const char *const mods[] = {"virtio_mmio", "virtio_console", "tpm_tis_core",
					   "tpm_tis"};
	int failed, port, st = -1;
	pid_t hv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir("/run", 0755);
	/* init mounts devtmpfs and proc only; the port is found in sysfs */
	if (mkdir("/sys", 0755) != 0 && errno != EEXIST)
		printf("enroll-relay: mkdir /sys: %s\n", strerror(errno));
	if (mount("sysfs", "/sys", "sysfs", 0, NULL) != 0)
		printf("enroll-relay: mount sysfs: %s\n", strerror(errno));
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
		load_module(mods[i]);
	if (wait_for("port " PORT_NAME, port_node) != 0) {
		list_virtio();
		return 1;
	}
	if (wait_for(TPM_DEV, tpm_present) != 0)
		return 1;
	port = open(PORT_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	hv = port < 0 ? -1 : start_hv();
	if (hv < 0 || wait_for("cleave-hv's socket", hv_listening) != 0) {
		printf("enroll-relay: result: failed (%s)\n",
		       port < 0 ? strerror(errno) : "cleave-hv");
		return 1;
	}
	printf("enroll-relay: ready\n");
	failed = relay(port) != 0;
	printf("enroll-relay: %lu connections to cleave-hv, %lu messages in, %lu out\n", opened,
	       msgs_in, msgs_out);
	kill(hv, SIGTERM);
	if (waitpid(hv, &st, 0) == hv && WIFEXITED(st))
		st = WEXITSTATUS(st);
	printf("enroll-relay: cleave-hv exit %d\n", st);
	failed |= st != 0;
	printf("enroll-relay: result: %s\n", failed ? "failed" : "ok");
	return failed;
}
