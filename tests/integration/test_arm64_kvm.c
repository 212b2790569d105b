/*
 * arm64 KVM under nested virtualization, from this x86 host: boots QEMU's emulated arm64 machine
 * (-M virt,virtualization=on) with a Debian arm64 kernel and the test initramfs that `make all`
 * builds (tests/arm64/: our init and kvm_probe), and reads the serial console. Inside, kvm_probe
 * creates a VM on the arm64 kernel's KVM and runs a guest; this test asserts the exits it saw,
 * in order: PSCI_VERSION answered in the kernel, an MMIO store and load on the doorbell page,
 * the ABI's VERSION by HVC (forwarded to userspace where the kernel has the SMCCC filter, else
 * answered NOT_SUPPORTED by KVM), VERSION again by the MMIO doorbell (answered in x0 by the
 * VMM), 200 doorbell stores, and PSCI SYSTEM_OFF as
 * KVM_EXIT_SYSTEM_EVENT. Then hv_smoke runs cleave-hv's own arm64 VMM (hv/arch/arm64/): its
 * guest prints on the memory-mapped 16550, VERSION by the MMIO doorbell is answered 1.0 by the
 * built-in dispatcher, and PSCI SYSTEM_OFF ends the VM cleanly; then a guest that executes an
 * undefined instruction under the corporate guest's vector table ends the VM as faulted. Prints boot-to-result times (emulated: orders of magnitude only).
 * A case skips, with the reason, only when qemu-system-aarch64 or its kernel cannot be had;
 * a missing initramfs is a broken build and fails. Each QEMU is bounded and killed by its pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

#ifndef RUN_LIMIT_S
#define RUN_LIMIT_S 150 /* one boot takes 2-25 s here; a hang ends at this */
#endif
#define LOG_CAP (256 * 1024)

static char arm64_dir[PATH_MAX]; /* BUILD/arm64 */
static char qemu_path[PATH_MAX];

struct boot {
	const char *kernel; /* "6.1" or "6.12": BUILD/arm64/vmlinuz-KERNEL */
	const char *cpu;    /* QEMU -cpu */
	const char *extra;  /* extra kernel parameters, "" for none */
	const char *image;  /* BUILD/arm64/IMAGE: the initramfs */
	const char *progs;  /* what init runs, after "--" on the kernel command line */
	char log[LOG_CAP + 1];
	double boot_s, result_s, exit_s; /* from spawn: init started, result line, QEMU gone */
	int status;                      /* QEMU's wait status; -1 when it had to be killed */
};

/* The first executable qemu-system-aarch64 on PATH, into qemu_path; 0 or -1. */
static int
find_qemu(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path != NULL ? path : "/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(qemu_path, sizeof(qemu_path), "%s/qemu-system-aarch64", d);
		if (access(qemu_path, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* Reads the whole log file (at most LOG_CAP bytes) into b->log, serial CRs dropped. */
static void
read_log(struct boot *b, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c;

	while (f != NULL && n < LOG_CAP && (c = getc(f)) != EOF)
		if (c != '\r')
			b->log[n++] = (char)c;
	if (f != NULL)
		fclose(f);
	b->log[n] = '\0';
}

static pid_t
spawn_qemu(const struct boot *b, const char *log_path)
{
	char kernel[PATH_MAX], initrd[PATH_MAX], append[512];

	snprintf(kernel, sizeof(kernel), "%s/vmlinuz-%s", arm64_dir, b->kernel);
	snprintf(initrd, sizeof(initrd), "%s/%s", arm64_dir, b->image);
	/* panic=-1 with -no-reboot: a kernel panic ends QEMU at once instead of hanging. */
	snprintf(append, sizeof(append), "console=ttyAMA0 panic=-1 %s -- %s", b->extra, b->progs);
	const char *argv[] = {qemu_path,    "-M",      "virt,virtualization=on,gic-version=3",
			      "-cpu",       b->cpu,    "-smp",
			      "1",          "-m",      "512",
			      "-nic",       "none",    "-kernel",
			      kernel,       "-initrd", initrd,
			      "-append",    append,    "-nographic",
			      "-no-reboot", NULL};
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* The child: the CPU is shared with the rest of the suite, so QEMU runs niced. */
	setpriority(PRIO_PROCESS, 0, 10);
	int in = open("/dev/null", O_RDONLY);
	int out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	execv(qemu_path, (char *const *)argv);
	_exit(127);
}

/* Boots b, waits (bounded) for QEMU to end, and keeps its console and timings in b. 0 or -1. */
static int
boot_run(struct boot *b, const char *tag)
{
	char log_path[PATH_MAX];
	const char *out = getenv("CLEAVE_TEST_OUT");

	snprintf(log_path, sizeof(log_path), "%s/arm64-%s.log", out != NULL ? out : "/tmp", tag);
	double t0 = now_s();
	pid_t pid = spawn_qemu(b, log_path);
	if (pid < 0)
		return -1;
	t_track_child(pid, 1);
	b->status = -1;
	while (now_s() - t0 < RUN_LIMIT_S) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		read_log(b, log_path);
		double t = now_s() - t0;
		if (b->boot_s == 0 && strstr(b->log, "cleave-init: start") != NULL)
			b->boot_s = t;
		if (b->result_s == 0 && strstr(b->log, "result: ") != NULL)
			b->result_s = t;
		if (w == pid) {
			b->status = st;
			b->exit_s = t;
			t_track_child(pid, 0);
			break;
		}
		usleep(50 * 1000);
	}
	if (b->status == -1) /* still running: ours to kill, by its pid */
		t_stop_child(pid, SIGKILL, 5000);
	read_log(b, log_path);
	unlink(log_path);
	return 0;
}

/* Prints the console lines that are not the kernel's own ("[    1.234] ..."), and kvm's. */
static void
print_console(const struct boot *b)
{
	const char *p = b->log;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);
		if (p[0] != '[' || memmem(p, (size_t)len, "kvm [", 5) != NULL ||
		    memmem(p, (size_t)len, "Kernel panic", 12) != NULL)
			printf("    | %.*s\n", len, p);
		p += len + (nl != NULL);
	}
}

/* Each of want[] must appear in the log after the previous one; names the first that did not. */
static const char *
missing_in_order(const char *log, const char *const *want, size_t n)
{
	const char *at = log;

	for (size_t i = 0; i < n; i++) {
		const char *hit = strstr(at, want[i]);
		if (hit == NULL)
			return want[i];
		at = hit + strlen(want[i]);
	}
	return NULL;
}

/*
 * Boots b (kernel, cpu, extra, image and progs set) and checks that the machine came up, ran and
 * powered off with KVM in the mode mode_line names. Skips only when QEMU or the kernel is
 * missing; a missing image is a broken build.
 */
static void
boot_checked(struct boot *b, const char *tag, const char *mode_line)
{
	char path[PATH_MAX];

	if (qemu_path[0] == '\0')
		SKIP("qemu-system-aarch64 not installed (scripts/deps.sh installs "
		     "qemu-system-arm)");
	snprintf(path, sizeof(path), "%s/vmlinuz-%s", arm64_dir, b->kernel);
	if (access(path, R_OK) != 0)
		SKIP("no %s: `make arm64` fetches Debian's arm64 %s kernel with apt (network)",
		     path, b->kernel);
	snprintf(path, sizeof(path), "%s/%s", arm64_dir, b->image);
	CHECK(access(path, R_OK) == 0, "no %s: `make all` builds it (gcc-aarch64-linux-gnu)", path);
	CHECK(boot_run(b, tag) == 0, "could not start %s", qemu_path);
	print_console(b);
	printf("    time: init started %.1f s, result %.1f s, QEMU ended %.1f s after spawn\n",
	       b->boot_s, b->result_s, b->exit_s);
	CHECK(b->status != -1, "QEMU did not end within %d s (killed)", RUN_LIMIT_S);
	CHECK(WIFEXITED(b->status) && WEXITSTATUS(b->status) == 0,
	      "QEMU ended with wait status 0x%x", b->status);
	CHECK(strstr(b->log, mode_line) != NULL, "the kernel did not report \"%s\"", mode_line);
}

/* Runs the probe under kernel/cpu/extra and checks every exit; filter: the kernel has it. */
static void
probe_case(const char *tag, const char *kernel, const char *cpu, const char *extra, int filter,
	   const char *mode_line)
{
	static struct boot b;

	memset(&b, 0, sizeof(b));
	b.kernel = kernel, b.cpu = cpu, b.extra = extra;
	b.image = "initramfs.cpio.gz", b.progs = "/bin/kvm_probe /bin/hv_smoke";
	boot_checked(&b, tag, mode_line);
	CHECK(strstr(mode_line, "Protected") != NULL || strstr(b.log, "Protected") == NULL,
	      "KVM came up protected without being asked");

	const char *common[] = {
		filter ? "kvm: smccc filter yes" : "kvm: smccc filter Invalid argument",
		"exit: mmio write addr 0xb000008 len 4 data 0x1", /* PSCI 1.x, from the kernel */
		"exit: mmio write addr 0xb000000 len 4 data 0xc1eabeef\n",
		"exit: mmio read addr 0xb000004 len 4 -> 0x5a5a1234\n",
		"exit: mmio write addr 0xb00000c len 4 data 0x5a5a1234\n",
	};
	const char *miss = missing_in_order(b.log, common, sizeof(common) / sizeof(common[0]));
	CHECK(miss == NULL, "console lacks (in order) \"%s\"", miss);
	/* VERSION by HVC: ours to answer with the filter; without it KVM says NOT_SUPPORTED (-1). */
	const char *version_fwd[] = {"exit: hypercall fid 0xf2000000 x1 0x1234\n",
				     "exit: mmio write addr 0xb000010 len 8 data 0x10001\n"};
	const char *version_kvm[] = {
		"exit: mmio write addr 0xb000010 len 8 data 0xffffffffffffffff\n"};
	miss = filter ? missing_in_order(strstr(b.log, common[4]), version_fwd, 2)
		      : missing_in_order(strstr(b.log, common[4]), version_kvm, 1);
	CHECK(miss == NULL, "console lacks (in order) \"%s\"", miss);
	CHECK(filter || strstr(b.log, "exit: hypercall") == NULL,
	      "a hypercall exit without the filter");
	/* The MMIO doorbell: answered in x0 like an HVC, on every kernel. */
	const char *tail[] = {
		"exit: mmio doorbell fid 0xf2000000 x1 0x5678 -> x0 0x10001\n",
		"exit: mmio write addr 0xb000028 len 8 data 0x10001\n",
		"exit: system_event type 1\n", "exit: mmio loop 200 stores", "result: ok\n",
		"cleave-init: /bin/kvm_probe exit 0",
		/* cleave-hv's VMM: console, doorbell answered (Y), PSCI off */
		"cleave-init: run /bin/hv_smoke\n", "SMCCC filter", "\nok\nY\n",
		"vmm: the guest powered off",
		"hv_smoke: join 0 state 2 stop_err 0 exits 7 doorbells 1\n",
		/* the fault guest: its vectors report udf (ESR EC 0) at fault_here */
		"f\n", "vmm: stopping the VM: the guest took an exception (vector table)",
		"elr_el1 0x40010024 esr_el1 0x2000000 ",
		"hv_smoke: fault guest: join 0 state 3 stop_err -14 exits 3 doorbells 0\n",
		"cleave-init: /bin/hv_smoke exit 0", "cleave-init: power off"};
	miss = missing_in_order(strstr(b.log, "exit: mmio write addr 0xb000010"), tail,
				sizeof(tail) / sizeof(tail[0]));
	CHECK(miss == NULL, "console lacks (in order) \"%s\"", miss);
}

/* Debian 12's 6.1 on a Cortex-A57 (ARMv8.0, no VHE): KVM in nVHE mode, no SMCCC filter. */
static void
test_arm64_kvm_61_nvhe(void)
{
	probe_case("61-nvhe", "6.1", "cortex-a57", "", 0, "Hyp mode initialized successfully");
}

/* 6.1 on QEMU's max CPU (VHE): the configuration the issue names. */
static void
test_arm64_kvm_61_vhe(void)
{
	probe_case("61-vhe", "6.1", "max", "", 0, "VHE mode initialized successfully");
}

/* 6.12 (VHE): the SMCCC filter forwards the ABI's range to userspace. */
static void
test_arm64_kvm_612_vhe(void)
{
	probe_case("612-vhe", "6.12", "max", "", 1, "VHE mode initialized successfully");
}

/* 6.12 with pKVM: a normal (not protected) VM under a protected host behaves the same. */
static void
test_arm64_kvm_612_pkvm(void)
{
	probe_case("612-pkvm", "6.12", "max", "kvm-arm.mode=protected", 1,
		   "Protected hVHE mode initialized successfully");
}

/* The line of log just before the first line that starts with marker, into out; 0 or -1. */
static int
line_before(const char *log, const char *marker, char *out, size_t cap)
{
	const char *hit = strstr(log, marker), *start;

	if (hit == NULL || hit - log < 2 || hit[-1] != '\n')
		return -1;
	for (start = hit - 2; start > log && start[-1] != '\n'; start--)
		;
	if ((size_t)(hit - 1 - start) >= cap)
		return -1;
	memcpy(out, start, (size_t)(hit - 1 - start));
	out[hit - 1 - start] = '\0';
	return 0;
}

/*
 * Verifies on this x86 host, with openssl, the receipt whose base64 line precedes marker in the
 * log, against the PEM key the arm64 cleave-hv printed, and its type (the byte after the magic
 * and version); an altered copy must fail. 0 when all hold, -1 otherwise.
 */
static int
verify_receipt(const char *log, const char *marker, int type)
{
	const char *pem = strstr(log, "-----BEGIN PUBLIC KEY-----\n");
	const char *pem_end = pem != NULL ? strstr(pem, "-----END PUBLIC KEY-----\n") : NULL;
	const char *out = getenv("CLEAVE_TEST_OUT");
	char b64[1024], dir[PATH_MAX], path[PATH_MAX + 16], cmd[2 * PATH_MAX + 512];
	FILE *f;
	int rc;

	if (pem_end == NULL || line_before(log, marker, b64, sizeof(b64)) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/arm64-receipt.XXXXXX", out != NULL ? out : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/hv.pem", dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fwrite(pem, 1, (size_t)(pem_end - pem) + strlen("-----END PUBLIC KEY-----\n"), f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/r.b64", dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fprintf(f, "%s\n", b64);
		fclose(f);
	}
	snprintf(
		cmd, sizeof(cmd),
		"cd '%s' && openssl base64 -d -A -in r.b64 -out r.bin && head -c 256 r.bin > body "
		"&& [ \"$(od -An -tu1 -j10 -N1 r.bin | tr -d ' ')\" = %d ] && tail -c 64 r.bin > "
		"sig && openssl pkeyutl -verify -pubin -inkey hv.pem -rawin "
		"-in body -sigfile sig >/dev/null && printf '\\001' | dd of=body bs=1 seek=100 "
		"conv=notrunc 2>/dev/null && ! openssl pkeyutl -verify -pubin -inkey hv.pem -rawin "
		"-in body -sigfile sig >/dev/null 2>&1",
		dir, type);
	rc = system(cmd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
	return rc == 0 ? 0 : -1;
}

/*
 * The whole arm64 cleave-hv in the emulated machine (hv_steps, from `make arm64-hv-full`): it
 * runs the arm64 corporate guest on the arm64 kernel's KVM, cleave-hvctl's status and attest
 * answer, and the console shows the guest's banner, its ABI check over the doorbell, and
 * workspace commands whose records go through the block calls into the encrypted volume; then
 * lock, unlock (the record is back), rekey (still there) and a wipe by signed tickets during
 * which cleave-hv is killed (CLEAVE_HV_FAULT) and which it completes on restart (the record is
 * gone); this host verifies the lock and wipe receipts with openssl against the arm64
 * hypervisor's key.
 */
static void
hv_case(const char *tag, const char *kernel, const char *cpu, const char *extra,
	const char *mode_line, int filter)
{
	static struct boot b;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/initramfs-hv.cpio.gz", arm64_dir);
	if (qemu_path[0] != '\0' && access(path, R_OK) != 0)
		SKIP("no %s: `make arm64-hv-full` builds it (fetches Debian's arm64 libssl and "
		     "libsodium with apt: network)",
		     path);
	memset(&b, 0, sizeof(b));
	b.kernel = kernel, b.cpu = cpu, b.extra = extra;
	b.image = "initramfs-hv.cpio.gz", b.progs = "/bin/hv_steps";
	boot_checked(&b, tag, mode_line);
	const char *want[] = {
		/* 6.4+: the guest finds VERSION by HVC answered and makes every call by HVC */
		filter ? "vmm: hypercalls by HVC forwarded (SMCCC filter)"
		       : "vmm: no SMCCC filter (Invalid argument): the MMIO doorbell only",
		"hv-step: cleave-hv listening",
		"state: active\nabi: 1.1\nkey epoch: 1\n",
		"hv-step: status exit 0",
		"\nQ0xWQVRUUzE", /* base64 of the attestation's magic, "CLVATTS1" */
		"hv-step: attest exit 0",
		"cleave corporate guest\nabi 1.1\nworkspace: 0 records\ncorp> version\n"
		"version: abi 1.1\n",
		"corp> status\ncorporate half active, key epoch 1, disk 4096 KiB\n",
		"corp> put memo arm64-record\nsaved memo\n",
		"corp> get memo\narm64-record\n",
		"corp> list\nmemo (12 bytes)\n1 records\n",
		"hv-step: console exit 0",
		"hv-step: pin exit 0",
		"\nreceipt 1: lock done, state locked",
		"hv-step: lock exit 0",
		"state: locked\n",
		"\nreceipt 2: unlock done, state active",
		"\nget memo\narm64-record\n", /* the same record, after the key came back */
		"hv-step: console-unlocked exit 0",
		"\nreceipt 3: rekey done, state active, key epoch 1 -> 2",
		"corp> get memo\narm64-record\n", /* re-encrypted under the new key */
		"hv-step: console-rekeyed exit 0",
		"CLEAVE_HV_FAULT=wipe-after-intent: killing ourselves",
		"hv-step: wipe-killed exit 1",
		"hv-step: cleave-hv exit 137 (killed in the wipe)",
		"a wipe order was interrupted; finishing it",
		"corporate half wiped by cryptographic erase (verified)",
		"state: active\nabi: 1.1\nkey epoch: 3\n",
		"hv-step: receipts exit 0",
		"corp> get memo\nno record memo\n",
		"corp> ubench 3\nubench: entering user mode for good\n",
		"hv-step: console-wiped exit 0",
		"hv-step: pubkey exit 0",
		"hv-step: cleave-hv exit 0",
		"hv-steps: result: ok\n",
		"cleave-init: /bin/hv_steps exit 0",
		"cleave-init: power off",
	};
	const char *miss = missing_in_order(b.log, want, sizeof(want) / sizeof(want[0]));
	CHECK(miss == NULL, "console lacks (in order) \"%s\"", miss);
	/* A fault (the vectors' report, or an unexpected exit) would stop the VM early. */
	CHECK(strstr(b.log, "stopping the VM") == NULL, "the corporate VM stopped on a fault");
	CHECK(verify_receipt(b.log, "receipt 1: lock done", 2) == 0,
	      "openssl did not verify the lock receipt (or accepted an altered one)");
	/* The wipe's receipt was made after the restart: the last of `hvctl receipts`. */
	CHECK(verify_receipt(b.log, "\nhv-step: receipts exit 0", 1) == 0,
	      "openssl did not verify the wipe receipt (or accepted an altered one)");
}

static void
test_arm64_hv_61_nvhe(void)
{
	hv_case("hv-61-nvhe", "6.1", "cortex-a57", "", "Hyp mode initialized successfully", 0);
}

/* Under a pKVM host (6.12) cleave-hv sets the SMCCC filter and the guest's calls go by HVC. */
static void
test_arm64_hv_612_pkvm(void)
{
	hv_case("hv-612-pkvm", "6.12", "max", "kvm-arm.mode=protected",
		"Protected hVHE mode initialized successfully", 1);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"kvm_61_nvhe", test_arm64_kvm_61_nvhe}, {"kvm_61_vhe", test_arm64_kvm_61_vhe},
		{"kvm_612_vhe", test_arm64_kvm_612_vhe}, {"kvm_612_pkvm", test_arm64_kvm_612_pkvm},
		{"hv_61_nvhe", test_arm64_hv_61_nvhe},   {"hv_612_pkvm", test_arm64_hv_612_pkvm},
	};
	const char *bin = getenv("CLEAVE_BIN");

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* BUILD/bin -> BUILD/arm64, without needing BUILD/bin to exist for a "..". */
	snprintf(arm64_dir, sizeof(arm64_dir), "%s", bin != NULL ? bin : "build/bin");
	char *slash = strrchr(arm64_dir, '/');
	snprintf(slash != NULL ? slash + 1 : arm64_dir,
		 sizeof(arm64_dir) - (size_t)(slash != NULL ? slash + 1 - arm64_dir : 0), "arm64");
	if (find_qemu() != 0)
		qemu_path[0] = '\0';
	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
