/*
 * The arm64 exit costs, measured inside the emulated machine (issue 12; bench/arm64.sh boots
 * QEMU with this as init's program and prints the table, bench/RESULTS.md has the figures).
 * Cross-built static with the arm64 cleave-hv's objects. In one boot:
 *   - ref-loop: a loop without exits in this process (the emulated CPU's speed);
 *   - ref VM (bench/arm64_ref_guest.S on cleave-hv's own VMM, a dispatcher that only
 *     timestamps): PSCI_VERSION by HVC answered inside KVM, VERSION by an MMIO store to the
 *     VMM, VERSION by HVC (to the VMM with the SMCCC filter, else KVM's own -1);
 *   - cleave-hv with the real guest: the console's `ping N` (N VERSION calls through the whole
 *     dispatcher, timed as ping N minus ping 1 over the console socket), the bridge round trip
 *     (/bin/hv_bench), and `ubench N` (N calls from EL0 by the store, timed from its banner to
 *     the Nth call in COUNTERS); where the kernel forwards HVC, cleave-hv again with
 *     CLEAVE_HV_NO_HVC=1 for `ping N` by the store on the same kernel.
 * One `arm64-bench: NAME VALUE` line per figure (microseconds per call unless named), then
 * `arm64-bench: result ok|failed`. Every wait is bounded; children are stopped by pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "bridge_client.h"
#include "cleave_abi.h"
#include "hypercall-bridge/lib/bridge_msg.h"
#include "vmm.h"

#define REF_GUEST "/bin/arm64_ref_guest.bin"
#define REF_LOOPS 2000 /* arm64_ref_guest.S's LOOPS */
#define STATE     "/run/hvb"
#define SOCK      STATE "/hv.sock"
#define CSOCK     STATE "/console.sock"
#define PING_N    2000
#define UBENCH_N  2000
#define WAIT_MS   60000

static int failed;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void
fail(const char *what)
{
	printf("arm64-bench: FAILED %s\n", what);
	failed = 1;
}

/*
 * The emulated CPU's speed now: nanoseconds per iteration of a loop that never leaves the CPU
 * (2M iterations, tens of milliseconds). QEMU's share of this shared machine moves within a run,
 * so every figure is printed with the mean of this loop just before and just after it, and
 * bench/arm64.sh divides by it: figures in loop iterations, comparable across runs.
 */
static double
loop_ns(void)
{
	const long n = 2 * 1000 * 1000;
	double t0 = now_us();

	for (volatile long i = 0; i < n; i = i + 1)
		;
	return (now_us() - t0) * 1e3 / (double)n;
}

static double loop_before;

static void
mark(void)
{
	loop_before = loop_ns();
}

/* One figure (microseconds per call) and the loop around it (ns per iteration). */
static void
report_at(const char *name, double us, double loop)
{
	printf("arm64-bench: %s %.2f loop %.2f\n", name, us, loop);
}

/* One figure measured since the last mark(). */
static void
report(const char *name, double us)
{
	report_at(name, us, (loop_before + loop_ns()) / 2);
}

/* The reference VM's calls: when each reached the VMM (bounded by the guest's three phases). */
static struct {
	double t[2 * REF_LOOPS + 8];
	unsigned n;
} ref;

static int64_t
ref_dispatch(void *ctx, uint32_t fid, unsigned cpl, uint64_t args[4], uint64_t results[3])
{
	if (ref.n < sizeof(ref.t) / sizeof(ref.t[0]))
		ref.t[ref.n++] = now_us();
	return vmm_dispatch_default(ctx, fid, cpl, args, results);
}

static void
ref_vm(void)
{
	struct vmm_config cfg = {.guest_path = REF_GUEST, .dispatch = ref_dispatch};
	struct vmm_stats st;
	struct vmm *vm;
	unsigned p2 = REF_LOOPS + 1; /* the index of phase 2's last store */
	double loop;

	mark();
	if (vmm_new(&cfg, &vm) != 0 || vmm_start(vm) != 0 || vmm_join(vm, WAIT_MS) != 0) {
		fail("reference VM");
		return;
	}
	vmm_get_stats(vm, &st);
	vmm_free(vm);
	if (st.state != VMM_STOPPED || ref.n < p2 + 2) {
		fail("reference VM did not finish its phases");
		return;
	}
	/* The three phases share one pair of loops: together they take a few seconds. */
	loop = (loop_before + loop_ns()) / 2;
	report_at("ref-psci-hvc", (ref.t[1] - ref.t[0]) / REF_LOOPS, loop);
	report_at("ref-vmm-mmio", (ref.t[p2] - ref.t[1]) / REF_LOOPS, loop);
	report_at(st.calls_by[CALL_VIA_HVC] ? "ref-vmm-hvc" : "ref-kvm-smccc",
		  (ref.t[ref.n - 1] - ref.t[p2]) / REF_LOOPS, loop);
}

/*
 * One KVM_GET_ONE_REG on an initialised vCPU that is not running: what cleave-hv's arm64 VMM
 * pays per register at each doorbell call (vcpu_regs.c reads x0..x5 and PSTATE, writes x0..x3),
 * where kvm_probe's bare MMIO exit pays none.
 */
static void
ref_one_reg(void)
{
	struct kvm_vcpu_init init;
	uint64_t v = 0;
	struct kvm_one_reg r = {.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE,
				.addr = (uintptr_t)&v}; /* x0 */
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	int vcpu = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
	const int n = 2000;
	double t0;

	memset(&init, 0, sizeof(init));
	if (vcpu < 0 || ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) != 0 ||
	    ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) != 0) {
		fail("one-reg VM");
	} else {
		mark();
		t0 = now_us();
		for (int i = 0; i < n; i++)
			ioctl(vcpu, KVM_GET_ONE_REG, &r);
		report("ref-one-reg-get", (now_us() - t0) / n);
	}
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
}

/* Starts argv (env: one VAR=VALUE or NULL) with stdout to out_fd (or inherited); pid or -1. */
static pid_t
spawn(const char *const *argv, const char *env, int out_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		static char path[] = "PATH=/bin";
		char *const envp[] = {path, (char *)env, NULL};

		if (out_fd >= 0)
			dup2(out_fd, 1);
		alarm(120); /* survives exec: a hung child ends */
		execve(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	return pid;
}

static void
stop(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++)
		usleep(100 * 1000);
	if (waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
}

static pid_t
start_hv(const char *env)
{
	const char *argv[] = {"/bin/cleave-hv", "--state",       STATE, "--guest",
			      "/bin/guest.bin", "--volume-size", "4",   NULL};
	struct stat sb;
	double t0 = now_us();
	pid_t pid;

	mkdir("/run", 0755);
	unlink(SOCK);
	pid = spawn(argv, env, -1);
	while (pid > 0 && stat(SOCK, &sb) != 0 && now_us() - t0 < WAIT_MS * 1e3)
		usleep(50 * 1000);
	if (pid <= 0 || stat(SOCK, &sb) != 0) {
		fail("cleave-hv did not listen");
		stop(pid);
		return -1;
	}
	return pid;
}

/* What the console sent that no read_until has consumed yet (one console at a time). */
static char buf[8192];
static size_t len;

/* Reads the console until want has appeared (0) or WAIT_MS passed (-1). */
static int
read_until(int fd, const char *want)
{
	double t0 = now_us();

	for (;;) {
		char *hit = memmem(buf, len, want, strlen(want));

		if (hit != NULL) {
			size_t used = (size_t)(hit - buf) + strlen(want);

			memmove(buf, buf + used, len - used);
			len -= used;
			return 0;
		}
		if (len == sizeof(buf)) { /* keep the tail, where a match may be starting */
			memmove(buf, buf + len / 2, len - len / 2);
			len -= len / 2;
		}
		if (now_us() - t0 > WAIT_MS * 1e3)
			return -1;
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue; /* the 1 s receive timeout: check the deadline again */
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
}

static int
console_open(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct timeval tv = {.tv_sec = 1};

	len = 0; /* nothing carries over from another cleave-hv */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", CSOCK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Types cmd and waits for want; the time in microseconds, or -1. */
static double
console_cmd(int fd, const char *cmd, const char *want)
{
	double t0 = now_us();

	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd) || read_until(fd, want) != 0)
		return -1;
	return now_us() - t0;
}

/* Per call of ping: (ping N - ping 1) / (N - 1), the median of three pairs. */
static void
ping(int fd, const char *name)
{
	char cmd[32], want[32];
	double d[3];

	snprintf(cmd, sizeof(cmd), "ping %d\r", PING_N);
	snprintf(want, sizeof(want), "pong %d\r\n", PING_N); /* the guest ends lines CR LF */
	mark();
	for (int i = 0; i < 3; i++) {
		double one = console_cmd(fd, "ping 1\r", "pong 1\r\n");
		double many = console_cmd(fd, cmd, want);

		if (one < 0 || many < 0) {
			fail(name);
			return;
		}
		d[i] = (many - one) / (PING_N - 1);
	}
	for (int i = 0; i < 2; i++) /* sort three */
		for (int j = 0; j < 2 - i; j++)
			if (d[j] > d[j + 1]) {
				double x = d[j];
				d[j] = d[j + 1];
				d[j + 1] = x;
			}
	report(name, d[1]);
}

/* COUNTERS over c (connected), or over a connection of its own when c is NULL. 0 or -1. */
static int
counters_on(struct bridge_client *c, struct clv_counters *k)
{
	struct bridge_client own;
	uint8_t out[64];
	size_t n;
	int st;

	if (c == NULL && bridge_connect(&own, SOCK, 5000) != 0)
		return -1;
	st = bridge_call(c != NULL ? c : &own, CLV_FN_COUNTERS, NULL, 0, out, sizeof(out), &n);
	if (c == NULL)
		bridge_close(&own);
	if (st != CLV_OK || n != 64)
		return -1;
	clv_counters_decode(out, k);
	return 0;
}

static int
counters(struct clv_counters *k)
{
	return counters_on(NULL, k);
}

static void
print_counters(const char *when)
{
	struct clv_counters k;

	if (counters(&k) != 0) {
		fail("COUNTERS");
		return;
	}
	printf("arm64-bench: calls-%s port %llu mmio %llu hvc %llu\n", when,
	       (unsigned long long)k.calls_port, (unsigned long long)k.calls_mmio,
	       (unsigned long long)k.calls_hvc);
}

/*
 * ubench N from EL0, timed by COUNTERS alone (one bridge connection, polled every 20 ms):
 * from the first poll that sees ubench's stores counted to the first that sees all N, over the
 * stores counted in between, so the console's delay and the polls' own cost cancel out.
 */
static void
ubench(int fd)
{
	struct bridge_client c;
	struct clv_counters k0, k = {0};
	uint64_t c0 = 0;
	char cmd[32];
	double t0 = 0, start = now_us();

	snprintf(cmd, sizeof(cmd), "ubench %d\r", UBENCH_N);
	if (bridge_connect(&c, SOCK, 5000) != 0)
		goto out;
	if (counters_on(&c, &k0) != 0 || write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		bridge_close(&c);
		goto out;
	}
	mark();
	while (counters_on(&c, &k) == 0 && k.calls_mmio < k0.calls_mmio + UBENCH_N &&
	       now_us() - start < WAIT_MS * 1e3) {
		if (t0 == 0 && k.calls_mmio > k0.calls_mmio)
			t0 = now_us(), c0 = k.calls_mmio;
		usleep(20 * 1000);
	}
	bridge_close(&c);
	if (k.calls_mmio >= k0.calls_mmio + UBENCH_N && t0 > 0 && k.calls_mmio > c0 + 100) {
		report("ubench-el0-mmio", (now_us() - t0) / (double)(k.calls_mmio - c0));
		return;
	}
out:
	fail("ubench");
}

/* /bin/hv_bench's bridge STATUS round trip; its line is echoed, its p50 reported. */
static void
bridge_bench(void)
{
	const char *argv[] = {"/bin/hv_bench", SOCK, "2000", NULL};
	char line[256];
	int fds[2], st = -1;
	ssize_t n = -1;
	pid_t pid = -1;
	const char *p50;

	mark();
	if (pipe(fds) == 0) {
		pid = spawn(argv, NULL, fds[1]);
		close(fds[1]);
		n = pid > 0 ? read(fds[0], line, sizeof(line) - 1) : -1;
		close(fds[0]);
	}
	line[n > 0 ? n : 0] = '\0';
	fputs(line, stdout);
	p50 = strstr(line, "p50 ");
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    p50 == NULL) {
		fail("hv_bench");
		return;
	}
	report("bridge-status-p50", strtod(p50 + 4, NULL));
}

/* One cleave-hv: ping (and with full, the bridge and ubench). Returns the HVC calls counted. */
static unsigned long long
hv_round(const char *env, const char *ping_name, int full)
{
	struct clv_counters k = {0};
	pid_t pid = start_hv(env);
	int fd = pid > 0 ? console_open() : -1;

	if (fd < 0 || console_cmd(fd, "\r", "corp> ") < 0) {
		fail("the guest's console");
	} else {
		ping(fd, ping_name);
		print_counters(ping_name);
		if (counters(&k) != 0)
			k.calls_hvc = 0;
		if (full) {
			bridge_bench();
			ubench(fd);
			print_counters("after-ubench");
		}
	}
	if (fd >= 0)
		close(fd);
	stop(pid);
	return k.calls_hvc;
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("arm64-bench: ref-loop-start-ns %.2f\n", loop_ns());
	ref_vm();
	ref_one_reg();
	/* The guest picks HVC where VERSION by HVC answers: then also the store, forced. */
	if (hv_round(NULL, "ping", 1) > 0)
		hv_round("CLEAVE_HV_NO_HVC=1", "ping-forced-mmio", 0);
	printf("arm64-bench: ref-loop-end-ns %.2f\n", loop_ns());
	printf("arm64-bench: result %s\n", failed ? "failed" : "ok");
	return failed;
}
