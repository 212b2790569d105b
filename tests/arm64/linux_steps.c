/*
 * The Linux corporate half in the emulated machine (issue 12 §4, tests/arm64/README.md):
 * starts /bin/cleave-hv with --linux (Debian's arm64 Image and corp_init's initramfs, the
 * corporate volume as its virtio disk), attaches to its console socket and copies the guest's
 * screen to this console ("corp| " lines), and times each stage: the console's first byte, the
 * guest's init, its write of the test pattern to /dev/vda, an echo typed through the console.
 * Then it prints the start of the volume's data area in base64 (the host checks the pattern is
 * not there in plain), pins an owner key, locks and unlocks (the guest re-reads its disk after),
 * wipes the corporate half by a signed ticket (receipts in base64, the key by pubkey --pem),
 * prints the data area again at once, waits for the fresh guest to report the pattern absent
 * (its kernel `quiet` with cleave.linux_quiet on this machine's command line), and stops
 * cleave-hv. One "linux-step:" line per stage and "linux-steps: result: ok|failed"; the host
 * test (test_arm64_kvm) decides.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATE_DIR "/run/hv"
#define SOCKET    STATE_DIR "/hv.sock"
#define CONSOLE   STATE_DIR "/console.sock"
#define VOLUME    STATE_DIR "/corporate"
#define OWNER_KEY "/run/owner.key"
#define DEVICE    "arm64-linux"
#define HVCTL     "/bin/cleave-hvctl", "--socket", SOCKET
#define TICKET                                                                                     \
	"/bin/cleave-ticket", "make", "--key", OWNER_KEY, "--hv-socket", SOCKET, "--device", DEVICE
#define BOOT_SECS 120 /* one stage of the guest's boot, under nested emulation */
#define STEP_SECS 60
#define DUMP_OFF  (1024 * 1024) /* the volume's data area (hypercall-bridge/VOLUME.md) */
#define DUMP_LEN  (12 * 1024)   /* three sectors, a multiple of 3 for base64 */
#define SEEN_CAP  16384

static double t0;
static char seen[SEEN_CAP + 1]; /* the console's recent text, for markers */
static size_t seen_len;
static char pubkey[128];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0;
}

/* Runs argv (stdout to out_fd when >= 0), bounded; its exit status, 128 + signal, or -1. */
static int
run(const char *const *argv, int out_fd)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		char *const envp[] = {"PATH=/bin", NULL};
		int in = open("/dev/null", O_RDONLY);

		if (in < 0 || dup2(in, 0) < 0 || (out_fd >= 0 && dup2(out_fd, 1) < 0))
			_exit(126);
		alarm(STEP_SECS);
		execve(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int
step(const char *name, const char *const *argv)
{
	double t = now_s();
	int rc = run(argv, -1);

	printf("\nlinux-step: %s exit %d, %.2f s\n", name, rc, now_s() - t);
	return rc;
}

/* Copies console bytes to stdout as "corp| " lines and keeps the recent text. */
static void
show(const char *buf, size_t n)
{
	static int at_line_start = 1;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\r')
			continue;
		if (at_line_start)
			fputs("corp| ", stdout);
		putchar(buf[i]);
		at_line_start = buf[i] == '\n';
		if (seen_len == SEEN_CAP) {
			memmove(seen, seen + SEEN_CAP / 2, SEEN_CAP / 2);
			seen_len = SEEN_CAP / 2;
		}
		seen[seen_len++] = buf[i];
	}
	seen[seen_len] = '\0';
	fflush(stdout);
}

static int
marker_line(const char *marker)
{
	const char *hit = strstr(seen, marker);

	return hit != NULL && strchr(hit, '\n') != NULL;
}

/* Reads the console until marker appears (then forgets what came before it) or secs pass. */
static int
watch(int fd, const char *marker, int secs, const char *stage)
{
	double start = now_s();
	char buf[1024];

	/* The whole line with the marker, so that the report never splits a console line. */
	while (!marker_line(marker) && now_s() - start < secs) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		show(buf, (size_t)n);
	}
	char *hit = marker_line(marker) ? strstr(seen, marker) : NULL;
	printf("\nlinux-step: %s %s at %.2f s (%.2f s for this stage)\n", stage,
	       hit != NULL ? "seen" : "NOT SEEN", now_s(), now_s() - start);
	if (hit == NULL)
		return -1;
	seen_len -= (size_t)(hit + strlen(marker) - seen);
	memmove(seen, hit + strlen(marker), seen_len + 1);
	return 0;
}

static int
console_attach(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = -1, err = 0;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", CONSOLE);
	/*
	 * The socket file appears when cleave-hv binds it, a moment before it listens: a refused
	 * or missing socket is retried (every 50 ms, bounded by STEP_SECS).
	 */
	for (int i = 0; i < STEP_SECS * 20; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		err = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
		if (err != ECONNREFUSED && err != ENOENT)
			break;
		usleep(50 * 1000);
	}
	if (fd < 0) {
		printf("linux-steps: console: %s\n", strerror(err));
		return -1;
	}
	printf("linux-step: console attached at %.2f s\n", now_s());
	return fd;
}

/* The start of the volume's data area in base64, between two marker lines. */
static void
dump_volume(const char *tag)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static unsigned char d[DUMP_LEN];
	int fd = open(VOLUME, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : pread(fd, d, sizeof(d), DUMP_OFF);

	if (fd >= 0)
		close(fd);
	printf("vol-dump-begin %s %zd\n", tag, n);
	for (ssize_t i = 0; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];

		printf("%c%c%c%c", b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63],
		       b64[v & 63]);
		if ((i / 3 + 1) % 19 == 0)
			putchar('\n');
	}
	printf("\nvol-dump-end %s\n", tag);
}

/* keygen (its output is the owner key) and pin: the server's part, played here. */
static int
pin(void)
{
	const char *keygen[] = {"/bin/cleave-ticket", "keygen", OWNER_KEY, NULL};
	const char *pn[] = {HVCTL, "pin", pubkey, DEVICE, NULL};
	int fds[2], failed = 0;
	ssize_t n;

	if (pipe(fds) != 0)
		return 1;
	failed += run(keygen, fds[1]) != 0;
	close(fds[1]);
	n = read(fds[0], pubkey, sizeof(pubkey) - 1);
	close(fds[0]);
	pubkey[n > 0 ? n : 0] = '\0';
	pubkey[strcspn(pubkey, "\r\n")] = '\0';
	return failed + (step("pin", pn) != 0);
}

/* A ticket for order (counter), then the order itself; failures counted. */
static int
order(const char *what, const char *counter)
{
	char out[64], name[32];
	const char *tk[] = {TICKET, "--counter", counter, "--out", out, what, NULL};
	const char *od[] = {HVCTL, what, "--ticket", out, NULL};
	int failed;

	snprintf(out, sizeof(out), "/run/%s.tk", what);
	snprintf(name, sizeof(name), "%s-ticket", what);
	failed = step(name, tk) != 0;
	return failed + (step(what, od) != 0);
}

/* Lock, then unlock: the guest was paused, and its disk and console work again after. */
static int
lock_unlock(int fd)
{
	int failed = order("lock", "1") + order("unlock", "2");

	(void)!write(fd, "verify\r", 7);
	failed += watch(fd, "corp-init: vda verify: ok", STEP_SECS, "disk after unlock") != 0;
	return failed;
}

/*
 * "cleave.linux_quiet" on this machine's command line: the guest boots with `quiet`, so only
 * its warnings reach the console (two MMIO exits per character make the full log most of the
 * boot time under emulation; the slow pKVM host needs that time back for the suite's budget).
 */
static int
quiet(void)
{
	char buf[1024] = "";
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, "cleave.linux_quiet") != NULL;
}

static pid_t
start_hv(void)
{
	const char *hv[] = {"/bin/cleave-hv",
			    "--state",
			    STATE_DIR,
			    "--linux",
			    "/bin/Image",
			    "--initrd",
			    "/bin/corp.cpio.gz",
			    "--memory",
			    "160",
			    "--volume-size",
			    "8",
			    "--cmdline",
			    quiet() ? "console=ttyS0 earlycon panic=-1 quiet"
				    : "console=ttyS0 earlycon panic=-1",
			    "--log-level",
			    "debug",
			    NULL};
	pid_t pid = fork();

	if (pid == 0) {
		char *const envp[] = {"PATH=/bin", NULL};

		execve(hv[0], (char *const *)hv, envp);
		_exit(127);
	}
	return pid;
}

int
main(void)
{
	int failed = 0, fd, st;

	t0 = 0;
	t0 = now_s();
	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir("/run", 0755);
	pid_t hv = start_hv();
	if (hv < 0 || (fd = console_attach()) < 0)
		return 1;
	if (!quiet())
		failed += watch(fd, "Booting Linux", BOOT_SECS, "kernel banner") != 0;
	failed += watch(fd, "corp-init: start", BOOT_SECS, "guest init") != 0;
	failed += watch(fd, "corp-init: vda before: pattern absent", STEP_SECS, "disk found") != 0;
	failed += watch(fd, "corp-init: vda read back: ok", STEP_SECS, "pattern written") != 0;
	failed += watch(fd, "echoing the console", STEP_SECS, "guest idle") != 0;
	(void)!write(fd, "hello-from-l1\r", 14);
	failed += watch(fd, "corp-init: echo hello-from-l1", STEP_SECS, "console echo") != 0;
	failed += pin();
	failed += lock_unlock(fd);
	dump_volume("before-wipe");
	failed += order("wipe", "3");
	failed += step("pubkey", (const char *[]){HVCTL, "pubkey", "--pem", NULL}) != 0;
	/* At once: the fresh guest needs far longer than this to boot and write again. */
	dump_volume("after-wipe");
	failed += watch(fd, "corp-init: vda before: pattern absent", BOOT_SECS, "rebooted blank") !=
		  0;
	failed += watch(fd, "corp-init: vda read back: ok", STEP_SECS, "pattern rewritten") != 0;
	close(fd);
	kill(hv, SIGTERM);
	printf("linux-step: cleave-hv exit %d\n",
	       waitpid(hv, &st, 0) == hv && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	printf("linux-steps: result: %s\n", failed ? "failed" : "ok");
	return failed != 0;
}
