/*
 * The arm64 cleave-hv, driven inside the emulated machine (tests/arm64/README.md): starts
 * /bin/cleave-hv on the arm64 kernel's KVM with the arm64 corporate guest, waits for its bridge
 * socket, then runs a fixed script of cleave-hvctl steps, each one bounded, their output on this
 * console: status, attest, the console with workspace commands typed in; then, with
 * cleave-ticket playing the server's signer, pin, lock, unlock, wipe (hvctl prints each
 * receipt in base64; pubkey --pem gives the key the host verifies them with), the console after
 * each (records back after unlock, gone after wipe; ubench: calls from EL0), and status with
 * the guest's calls counted by transport. One
 * `hv-step:` line per step with its exit status and time, and `hv-steps: result: ok` (or failed).
 * Then it stops cleave-hv with SIGTERM. The host test (test_arm64_kvm, its hv cases) reads the console and
 * decides; this program only reports.
 *
 * Run as /bin/tpm_steps (the same program under another name, in initramfs-tpm.cpio.gz) it runs
 * cleave-hv with the TPM the emulated machine has (QEMU's tpm-tis-device backed by the host's
 * swtpm): loads tpm_tis_core.ko and tpm_tis.ko from /lib, waits for /dev/tpmrm0, starts
 * cleave-hv --tpm device:/dev/tpmrm0 and runs status, attest, tpm-identity, pin, a signed lock
 * (its receipt printed), unlock and pubkey --pem; stops cleave-hv and keeps a copy of its state
 * directory (a thief's); restarted, a signed wipe; then cleave-hv on the kept copy, whose sealed
 * root key the wipe killed and whose trust state is older than the TPM's counter: status, its
 * pending receipts, and an unlock ticket it must refuse. The host test (test_arm64_tpm) verifies them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATE_DIR   "/run/hv"
#define SOCKET      STATE_DIR "/hv.sock"
#define STEP_SECS   60 /* each hvctl step is killed after this */
#define TPM_DEV     "/dev/tpmrm0"
#define TPM_SECS    20          /* the TPM driver must give TPM_DEV within this */
#define KEPT_DIR    "/run/kept" /* tpm_steps: the copy of STATE_DIR a thief keeps */
#define SOCKET_SECS 60          /* cleave-hv must listen within this */

#define HVCTL "/bin/cleave-hvctl", "--socket", SOCKET
#define TICKET                                                                                     \
	"/bin/cleave-ticket", "make", "--key", OWNER_KEY, "--hv-socket", SOCKET, "--device", DEVICE
#define OWNER_KEY "/run/owner.key"
#define DEVICE    "arm64-phone"
#define PUBKEY    "@pubkey" /* an argument replaced by what keygen printed */
#define HVKEY     "@hvkey"  /* replaced by what `cleave-hvctl pubkey` printed */
#define MAX_ARGS  16
#define NONCE_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

struct step {
	const char *name;
	const char *argv[MAX_ARGS];
	const char *input; /* typed into stdin, then closed; NULL: /dev/null */
	int capture;       /* keep stdout: 1 as the owner's public key, 2 as the hypervisor's */
};

/* Before the kill: cleave-hv runs with CLEAVE_HV_FAULT=wipe-after-intent. */
static const struct step before_kill[] = {
	{"status", {HVCTL, "status", NULL}, NULL, 0},
	{"attest", {HVCTL, "attest", NONCE_HEX, NULL}, NULL, 0},
	{"console",
	 {HVCTL, "console", NULL},
	 "version\rstatus\rput memo arm64-record\rget memo\rlist\r",
	 0},
	/* The server's part, played by cleave-ticket: pin its key, then signed orders. */
	{"keygen", {"/bin/cleave-ticket", "keygen", OWNER_KEY, NULL}, NULL, 1},
	{"pin", {HVCTL, "pin", PUBKEY, DEVICE, NULL}, NULL, 0},
	{"lock-ticket", {TICKET, "--counter", "1", "--out", "/run/lock.tk", "lock", NULL}, NULL, 0},
	{"lock",
	 {HVCTL, "lock", "--ticket", "/run/lock.tk", "--receipt-out", "/run/lock.rc", NULL},
	 NULL,
	 0},
	{"status-locked", {HVCTL, "status", NULL}, NULL, 0},
	{"unlock-ticket",
	 {TICKET, "--counter", "2", "--out", "/run/unlock.tk", "unlock", NULL},
	 NULL,
	 0},
	{"unlock", {HVCTL, "unlock", "--ticket", "/run/unlock.tk", NULL}, NULL, 0},
	{"console-unlocked", {HVCTL, "console", NULL}, "get memo\r", 0},
	{"rekey-ticket",
	 {TICKET, "--counter", "3", "--out", "/run/rekey.tk", "rekey", NULL},
	 NULL,
	 0},
	{"rekey", {HVCTL, "rekey", "--ticket", "/run/rekey.tk", NULL}, NULL, 0},
	{"console-rekeyed", {HVCTL, "console", NULL}, "get memo\r", 0},
	{"wipe-ticket", {TICKET, "--counter", "4", "--out", "/run/wipe.tk", "wipe", NULL}, NULL, 0},
	/* cleave-hv kills itself once the wipe's intent is durable: hvctl loses its answer. */
	{"wipe-killed", {HVCTL, "wipe", "--ticket", "/run/wipe.tk", NULL}, NULL, 0},
};

/* After the restart without the fault: the wipe was completed, and its receipt is pending. */
static const struct step after_kill[] = {
	{"status-wiped", {HVCTL, "status", NULL}, NULL, 0},
	{"receipts", {HVCTL, "receipts", NULL}, NULL, 0},
	{"console-wiped", {HVCTL, "console", NULL}, "get memo\rubench 3\r", 0},
	/* status's last lines: the guest's calls by transport (HVC or store; ubench's are stores) */
	{"status-calls", {HVCTL, "status", NULL}, NULL, 0},
	{"pubkey", {HVCTL, "pubkey", "--pem", NULL}, NULL, 0},
};

/* cleave-ticket's --hv-socket checks an Ed25519 attestation: with the TPM it gets --hv-key. */
#define TPM_TICKET(counter, out)                                                                   \
	"/bin/cleave-ticket", "make", "--key", OWNER_KEY, "--hv-key", HVKEY, "--device", DEVICE,   \
		"--counter", counter, "--out", out

/* With the TPM (as tpm_steps): the identity, the endorsement and TPM-signed receipts. */
static const struct step tpm_script[] = {
	{"status", {HVCTL, "status", NULL}, NULL, 0},
	{"attest", {HVCTL, "attest", NONCE_HEX, NULL}, NULL, 0},
	{"tpm-identity", {HVCTL, "tpm-identity", NULL}, NULL, 0},
	{"keygen", {"/bin/cleave-ticket", "keygen", OWNER_KEY, NULL}, NULL, 1},
	{"pin", {HVCTL, "pin", PUBKEY, DEVICE, NULL}, NULL, 0},
	{"hv-key", {HVCTL, "pubkey", NULL}, NULL, 2},
	{"lock-ticket",
	 {"/bin/cleave-ticket", "make", "--key", OWNER_KEY, "--hv-key", HVKEY, "--device", DEVICE,
	  "--counter", "1", "--out", "/run/lock.tk", "lock", NULL},
	 NULL,
	 0},
	{"lock",
	 {HVCTL, "lock", "--ticket", "/run/lock.tk", "--receipt-out", "/run/lock.rc", NULL},
	 NULL,
	 0},
	{"unlock-ticket", {TPM_TICKET("2", "/run/unlock.tk"), "unlock", NULL}, NULL, 0},
	{"unlock", {HVCTL, "unlock", "--ticket", "/run/unlock.tk", NULL}, NULL, 0},
	{"pubkey", {HVCTL, "pubkey", "--pem", NULL}, NULL, 0},
};

/* Then, with a copy of the state directory kept aside (the thief's): a signed wipe. */
static const struct step tpm_wipe[] = {
	{"wipe-ticket", {TPM_TICKET("3", "/run/wipe.tk"), "wipe", NULL}, NULL, 0},
	{"wipe", {HVCTL, "wipe", "--ticket", "/run/wipe.tk", NULL}, NULL, 0},
	{"status-wiped", {HVCTL, "status", NULL}, NULL, 0},
};

/* cleave-hv started on the kept copy: its sealed root key is dead, its trust state stale. */
static const struct step tpm_kept[] = {
	{"status-kept", {HVCTL, "status", NULL}, NULL, 0},
	{"receipts-kept", {HVCTL, "receipts", NULL}, NULL, 0},
	/* a new ticket too: the state is stale, so it must be refused (the one failing step) */
	{"unlock-kept-ticket", {TPM_TICKET("4", "/run/unlock4.tk"), "unlock", NULL}, NULL, 0},
	{"unlock-kept", {HVCTL, "unlock", "--ticket", "/run/unlock4.tk", NULL}, NULL, 0},
};

static char pubkey[128]; /* keygen's output, one base64 line */
static char hvkey[128];  /* `cleave-hvctl pubkey`'s, one base64 line */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Starts argv with input (or /dev/null) on stdin; with out_fd >= 0 its stdout goes there.
 * Returns the pid or -1.
 */
static pid_t
spawn(const char *const *argv, const char *input, int secs, int out_fd, const char *env)
{
	int fds[2] = {-1, -1};

	if (input != NULL && pipe(fds) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int in = input != NULL ? fds[0] : open("/dev/null", O_RDONLY);
		char *const envp[] = {"PATH=/bin", (char *)env, NULL};

		if (in < 0 || dup2(in, 0) < 0 || (out_fd >= 0 && dup2(out_fd, 1) < 0))
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

/* Runs one step (PUBKEY arguments replaced); returns its exit status or -1. */
static int
run_step(const struct step *st)
{
	const char *argv[MAX_ARGS];
	char out[sizeof(pubkey)];
	int fds[2] = {-1, -1};

	for (size_t i = 0; i < MAX_ARGS; i++) {
		argv[i] = st->argv[i];
		if (argv[i] != NULL && strcmp(argv[i], PUBKEY) == 0)
			argv[i] = pubkey;
		else if (argv[i] != NULL && strcmp(argv[i], HVKEY) == 0)
			argv[i] = hvkey;
	}
	if (st->capture && pipe(fds) < 0)
		return -1;
	pid_t pid = spawn(argv, st->input, STEP_SECS, fds[1], NULL);
	if (st->capture) {
		close(fds[1]);
		ssize_t n = pid < 0 ? -1 : read(fds[0], out, sizeof(out) - 1);
		close(fds[0]);
		out[n > 0 ? n : 0] = '\0';
		out[strcspn(out, "\r\n")] = '\0';
		snprintf(st->capture == 1 ? pubkey : hvkey, sizeof(pubkey), "%s", out);
		printf("%s key: %s\n", st->capture == 1 ? "owner" : "hypervisor", out);
	}
	return pid < 0 ? -1 : wait_status(pid);
}

/*
 * Starts cleave-hv (env: NULL or one VAR=VALUE; tcti: NULL or --tpm's) and waits for its socket;
 * the pid or -1.
 */
static pid_t
start_hv(const char *env, const char *tcti)
{
	const char *hv[] = {"/bin/cleave-hv",
			    "--state",
			    STATE_DIR,
			    "--guest",
			    "/bin/guest.bin",
			    "--volume-size",
			    "4",
			    tcti ? "--tpm" : NULL,
			    tcti,
			    NULL};
	struct stat sb;
	double t0 = now_s();

	unlink(SOCKET); /* a killed cleave-hv leaves it behind */
	pid_t pid = spawn(hv, NULL, 0, -1, env);
	if (pid < 0) {
		printf("hv-steps: cannot start cleave-hv: %s\n", strerror(errno));
		return -1;
	}
	while (stat(SOCKET, &sb) != 0 && now_s() - t0 < SOCKET_SECS &&
	       waitpid(pid, NULL, WNOHANG) == 0)
		usleep(100 * 1000);
	int up = stat(SOCKET, &sb) == 0;
	printf("hv-step: cleave-hv %s after %.2f s\n", up ? "listening" : "NOT listening",
	       now_s() - t0);
	return up ? pid : -1;
}

/* Runs n steps in order; returns how many failed. */
static int
run_steps(const struct step *st, size_t n)
{
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		double t = now_s();
		int rc = run_step(&st[i]);

		printf("\nhv-step: %s exit %d, %.2f s\n", st[i].name, rc, now_s() - t);
		failed += rc != 0;
	}
	return failed;
}

static void
load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long r = fd < 0 ? -1 : syscall(SYS_finit_module, fd, "", 0);

	printf("hv-step: module %s: %s\n", path, r == 0 ? "loaded" : strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* SIGTERM to cleave-hv and its exit status, printed; 0 when it ended cleanly. */
static int
stop_hv(pid_t pid)
{
	int rc;

	kill(pid, SIGTERM);
	rc = wait_status(pid);
	printf("hv-step: cleave-hv exit %d\n", rc);
	return rc;
}

/* Copies the regular files of the flat directory from into a new directory to; 0 or -1. */
static int
copy_dir(const char *from, const char *to)
{
	static char buf[65536];
	DIR *d = opendir(from);
	struct dirent *e;
	int rc = d != NULL && mkdir(to, 0700) == 0 ? 0 : -1;

	while (rc == 0 && (e = readdir(d)) != NULL) {
		char src[512], dst[512];
		struct stat sb;
		ssize_t n;

		snprintf(src, sizeof(src), "%s/%s", from, e->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name);
		if (lstat(src, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		int in = open(src, O_RDONLY),
		    out = open(dst, O_WRONLY | O_CREAT | O_EXCL, sb.st_mode);
		while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				rc = -1;
		rc = in < 0 || out < 0 ? -1 : rc;
		if (in >= 0)
			close(in);
		if (out >= 0 && close(out) != 0)
			rc = -1;
	}
	if (d != NULL)
		closedir(d);
	printf("hv-step: %s copied to %s: %s\n", from, to, rc == 0 ? "ok" : "FAILED");
	return rc;
}

/* tpm_steps: cleave-hv on the machine's TPM (the file comment); 0 when every step passed. */
static int
tpm_main(void)
{
	struct stat sb;
	double t0 = now_s();
	int failed;

	load_module("/lib/tpm_tis_core.ko");
	load_module("/lib/tpm_tis.ko");
	while (stat(TPM_DEV, &sb) != 0 && now_s() - t0 < TPM_SECS)
		usleep(100 * 1000);
	printf("hv-step: %s %s after %.2f s\n", TPM_DEV,
	       stat(TPM_DEV, &sb) == 0 ? "present" : "ABSENT", now_s() - t0);
	pid_t hv_pid = start_hv(NULL, "device:" TPM_DEV);
	if (hv_pid < 0)
		return 1;
	failed = run_steps(tpm_script, sizeof(tpm_script) / sizeof(tpm_script[0]));
	failed += stop_hv(hv_pid) != 0 || copy_dir(STATE_DIR, KEPT_DIR) != 0;
	hv_pid = start_hv(NULL, "device:" TPM_DEV);
	if (hv_pid < 0)
		return 1;
	failed += run_steps(tpm_wipe, sizeof(tpm_wipe) / sizeof(tpm_wipe[0]));
	failed += stop_hv(hv_pid) != 0;
	/* The kept copy back in place of the wiped state, as a thief would restore it. */
	if (rename(STATE_DIR, STATE_DIR ".wiped") != 0 || rename(KEPT_DIR, STATE_DIR) != 0)
		return 1;
	hv_pid = start_hv(NULL, "device:" TPM_DEV);
	if (hv_pid < 0)
		return 1;
	failed += run_steps(tpm_kept, sizeof(tpm_kept) / sizeof(tpm_kept[0])) != 1;
	failed += stop_hv(hv_pid) != 0;
	printf("tpm-steps: result: %s\n", failed ? "failed" : "ok");
	return failed != 0;
}

int
main(int argc, char **argv)
{
	int failed = 0, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir("/run", 0755);
	if (argc > 0 && strstr(argv[0], "tpm_steps") != NULL)
		return tpm_main();
	pid_t hv_pid = start_hv("CLEAVE_HV_FAULT=wipe-after-intent", NULL);
	if (hv_pid < 0)
		return 1;
	/* The last step's hvctl must fail: cleave-hv died under it. */
	failed += run_steps(before_kill, sizeof(before_kill) / sizeof(before_kill[0])) != 1;
	rc = wait_status(hv_pid);
	printf("hv-step: cleave-hv exit %d (killed in the wipe)\n", rc);
	failed += rc != 128 + SIGKILL;
	hv_pid = start_hv(NULL, NULL);
	if (hv_pid < 0)
		return 1;
	failed += run_steps(after_kill, sizeof(after_kill) / sizeof(after_kill[0]));
	(void)stop_hv(hv_pid);
	printf("hv-steps: result: %s\n", failed ? "failed" : "ok");
	return failed != 0;
}
