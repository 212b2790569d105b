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
 * The hv_* cases run hv_steps (the whole arm64 cleave-hv, a fixed script); the suites_* cases
 * run the x86 host's own hypervisor suites, cross-built unchanged, inside the emulated machine
 * (tests/arm64/hv_suites.c) and require every case of each suite's x86 build passed there.
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

#include "arm64vm.h"
#include "crypto.h"
#include "fileio.h"
#include "testlib.h"

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
		/* Neither Debian kernel lets a VMM make a protected VM (pKVM's type bit 31). */
		"kvm: protected vm Invalid argument",
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
	miss = filter ? missing_in_order(strstr(b.log, common[5]), version_fwd, 2)
		      : missing_in_order(strstr(b.log, common[5]), version_kvm, 1);
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
 * Which doorbell the guest used, counted by cleave-hv (the status-calls step, after the restart):
 * with the SMCCC filter (6.4+) every EL1 call goes by HVC and only ubench's 3 calls from EL0,
 * where HVC is undefined, by the store; without it (6.1) no call goes by HVC.
 */
static void
check_transport(const char *log, int filter)
{
	const char *p = strstr(log, "hv-step: console-wiped");
	unsigned long long port = 0, mmio = 0, hvc = 0;

	p = p != NULL ? strstr(p, "guest calls: ") : NULL;
	CHECK(p != NULL && sscanf(p, "guest calls: port %llu, mmio %llu, hvc %llu", &port, &mmio,
				  &hvc) == 3,
	      "no \"guest calls:\" line from cleave-hvctl status");
	printf("    guest calls: port %llu, mmio %llu, hvc %llu\n", port, mmio, hvc);
	CHECK(port == 0, "arm64 counted port I/O calls");
	if (filter)
		CHECK(hvc > 0 && mmio <= 3, "6.12: the guest's calls did not go by HVC");
	else
		CHECK(hvc == 0 && mmio > 0, "6.1: the guest's calls did not go by the MMIO store");
}

static size_t b64_decode(const char *in, size_t len, unsigned char *out, size_t cap);

/*
 * The measurement covers the architecture (issue 12 §1): the arm64 attestation's measurement
 * (bytes 80..111) is SHA-256 of the arm64 guest image and the VM configuration with
 * " arch=arm64", as hv_steps starts cleave-hv (64 MiB, a 4 MiB volume), and so differs from what
 * the same image measures as without it: an arm64 image never matches an x86 enrollment.
 */
static void
check_measurement(const char *log)
{
	static const char arm64_cfg[] = "cleave-vm v1 memory=64M vcpus=1 volume=4M arch=arm64";
	const char *p = strstr(log, "\nQ0xWQVRUUzE"), *e;
	unsigned char att[300], want[32], x86[32];
	char path[PATH_MAX + 32];
	size_t n = 0, len;
	char *img;

	e = p != NULL ? strchr(p + 1, '\n') : NULL;
	CHECK(e != NULL && b64_decode(p + 1, (size_t)(e - p - 1), att, sizeof(att)) == 256,
	      "no attestation from cleave-hvctl attest");
	snprintf(path, sizeof(path), "%s/guest/guest.bin", arm64_dir);
	img = file_read_all(path, 1u << 20, &n);
	CHECK(img != NULL, "cannot read %s", path);
	{
		const void *parts[2] = {img, arm64_cfg};
		size_t lens[2] = {n, sizeof(arm64_cfg) - 1};

		crypto_sha256_parts(parts, lens, 2, want);
		len = strlen(arm64_cfg) - strlen(" arch=arm64");
		lens[1] = len;
		crypto_sha256_parts(parts, lens, 2, x86);
	}
	free(img);
	CHECK(memcmp(att + 80, want, 32) == 0,
	      "the measurement is not SHA-256(arm64 guest || config with arch=arm64)");
	CHECK(memcmp(att + 80, x86, 32) != 0, "the measurement does not cover the architecture");
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
	if (qemu_path[0] != '\0' && access(path, R_OK) != 0) {
		CHECK(!fetched("sysroot"),
		      "no %s although the arm64 libraries were fetched: "
		      "`make arm64-hv-full` failed to build it",
		      path);
		SKIP("no %s: `make arm64-hv-full` builds it (fetches Debian's arm64 libssl and "
		     "libsodium with apt: network)",
		     path);
	}
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
		"hv-step: status-calls exit 0",
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
	check_transport(b.log, filter);
	check_measurement(b.log);
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

/* ---- the x86 hypervisor suites, cross-built, in the emulated machine ---- */

/* What tests/arm64/hv_suites.c runs, in its order: the same sources as the x86 suites. The
 * slowest last: the pKVM case leaves it out by default. */
static const char *const hv_suites[] = {"test_hv", "test_hv_cli", "test_hv_console",
					"test_hv_workspace", "test_hv_crash"};
#define ARRAY_LEN(a)   (sizeof(a) / sizeof((a)[0]))
#define SUITES_LIMIT_S 280 /* the whole boot; about 100 s here when nothing hangs */

/* The case names of the x86 build of suite (`SUITE --list`), one a line, into out; 0 or -1. */
static int
x86_cases(const char *suite, char *out, size_t cap)
{
	const char *bin = getenv("CLEAVE_BIN");
	char cmd[PATH_MAX + 64];
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s/../tests/integration/%s' --list", bin ? bin : "build/bin",
		 suite);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	return pclose(f) == 0 && n > 0 ? 0 : -1;
}

/* The word of the case line "  ok   NAME (1.23s)" etc. for name in [from, to); or NULL. */
static const char *
case_verdict(const char *from, const char *to, const char *name)
{
	static const char *const verdicts[] = {"ok  ", "FAIL", "skip"};
	char line[256];

	for (size_t i = 0; i < 3; i++) {
		snprintf(line, sizeof(line), "\n  %s %s (", verdicts[i], name);
		const char *hit = memmem(from, (size_t)(to - from), line, strlen(line));
		if (hit != NULL)
			return verdicts[i];
	}
	return NULL;
}

/*
 * One suite's block of the console ("hv-suite: NAME start" to "hv-suite: NAME exit RC, T s"):
 * every case the x86 build of the suite has must have run and passed on arm64. Prints the
 * suite's counts and each case that did not pass; a reason for the first problem into why
 * (empty when the suite passed). Counts are added to *pass, *fail, *skip.
 */
static void
suite_verdict(const char *log, const char *suite, int *pass, int *fail, int *skip, char *why,
	      size_t cap)
{
	char mark[96], names[4096];
	int rc = -1, np = 0, nf = 0, ns = 0, ncases = 0;
	double secs = 0;

	why[0] = '\0';
	snprintf(mark, sizeof(mark), "hv-suite: %s start\n", suite);
	const char *from = strstr(log, mark);
	snprintf(mark, sizeof(mark), "hv-suite: %s exit ", suite);
	const char *to = from != NULL ? strstr(from, mark) : NULL;
	if (to == NULL || sscanf(to + strlen(mark), "%d, %lf s", &rc, &secs) != 2) {
		snprintf(why, cap, "%s: no start and exit lines on the console", suite);
		return;
	}
	if (x86_cases(suite, names, sizeof(names)) != 0) {
		snprintf(why, cap, "%s: the x86 build's --list failed (make all builds it)", suite);
		return;
	}
	for (char *save = NULL, *n = strtok_r(names, "\n", &save); n != NULL;
	     n = strtok_r(NULL, "\n", &save)) {
		const char *v = case_verdict(from - 1, to, n);
		ncases++;
		np += v != NULL && v[0] == 'o';
		nf += v == NULL || v[0] == 'F';
		ns += v != NULL && v[0] == 's';
		if (v == NULL || v[0] != 'o')
			printf("      %s %s\n", v != NULL ? v : "did not run:", n);
		if (why[0] == '\0' && (v == NULL || v[0] != 'o'))
			snprintf(why, cap, "%s: %s %s on arm64", suite, n,
				 v == NULL     ? "did not run"
				 : v[0] == 'F' ? "failed"
					       : "skipped");
	}
	printf("    %s: %d passed, %d failed, %d skipped of the x86 build's %d cases, exit %d, "
	       "%.1f s\n",
	       suite, np, nf, ns, ncases, rc, secs);
	if (why[0] == '\0' && rc != 0)
		snprintf(why, cap, "%s exited %d inside the emulated machine", suite, rc);
	*pass += np, *fail += nf, *skip += ns;
}

/*
 * The x86 host's hypervisor suites (test_hv, test_hv_cli, test_hv_console, test_hv_workspace,
 * test_hv_crash), cross-built unchanged for arm64 (`make arm64-hv-full`), run by hv_suites in
 * the emulated machine against the arm64 cleave-hv and its corporate guest on the arm64
 * kernel's KVM. This host decides: every case of the x86 build of each suite must be on the
 * console as passed; a case that failed, skipped or did not run fails this one.
 */
static void
suites_case(const char *tag, const char *kernel, const char *cpu, const char *extra,
	    const char *mode_line, size_t nsuites)
{
	static struct boot b;
	char path[PATH_MAX], why[512], first[512] = "", cmdline[512];
	int pass = 0, fail = 0, skip = 0;
	size_t len;

	snprintf(path, sizeof(path), "%s/initramfs-suites.cpio.gz", arm64_dir);
	if (qemu_path[0] != '\0' && access(path, R_OK) != 0) {
		CHECK(!fetched("sysroot") || !fetched("tools"),
		      "no %s although the arm64 packages were fetched: `make arm64-hv-full` "
		      "failed to build it",
		      path);
		SKIP("no %s: `make arm64-hv-full` builds it (fetches Debian's arm64 libssl, "
		     "libsodium, busybox-static and openssl with apt: network)",
		     path);
	}
	len = (size_t)snprintf(cmdline, sizeof(cmdline), "%s cleave.suites=", extra);
	for (size_t i = 0; i < nsuites && len < sizeof(cmdline); i++)
		len += (size_t)snprintf(cmdline + len, sizeof(cmdline) - len, "%s%s",
					i > 0 ? "," : "", hv_suites[i]);
	memset(&b, 0, sizeof(b));
	b.kernel = kernel, b.cpu = cpu, b.extra = cmdline, b.limit_s = SUITES_LIMIT_S;
	b.image = "initramfs-suites.cpio.gz", b.progs = "/bin/hv_suites";
	boot_checked(&b, tag, mode_line);
	CHECK(strstr(b.log, "hv-suites: result: done\n") != NULL, "hv_suites did not finish");
	for (size_t i = 0; i < nsuites; i++) {
		suite_verdict(b.log, hv_suites[i], &pass, &fail, &skip, why, sizeof(why));
		if (first[0] == '\0')
			snprintf(first, sizeof(first), "%s", why);
	}
	for (size_t i = nsuites; i < ARRAY_LEN(hv_suites); i++)
		printf("    %s: not run on %s (the 5-minute budget of make test; "
		       "CLEAVE_ARM64_ALL=1 runs it)\n",
		       hv_suites[i], tag);
	printf("    all suites on %s: %d passed, %d failed, %d skipped\n", tag, pass, fail, skip);
	CHECK(first[0] == '\0', "%s", first);
}

/* Every suite, on the fastest kernel: 6.1, Cortex-A57, nVHE, the MMIO doorbell. */
static void
test_arm64_suites_61_nvhe(void)
{
	suites_case("suites-61-nvhe", "6.1", "cortex-a57", "", "Hyp mode initialized successfully",
		    ARRAY_LEN(hv_suites));
}

/*
 * Under a pKVM host (6.12; the guest's calls go by HVC through the SMCCC filter). -cpu max is
 * 3-6 times slower under TCG (pauth-impdef=on takes back some); test_hv_crash's 14 kill and
 * store-failure walks (90-120 s here, against 50-70 s on 6.1) run only with CLEAVE_ARM64_ALL=1
 * so that the arm64 suite stays under 5 minutes.
 */
static void
test_arm64_suites_612_pkvm(void)
{
	const char *all = getenv("CLEAVE_ARM64_ALL");

	suites_case("suites-612-pkvm", "6.12", "max,pauth-impdef=on", "kvm-arm.mode=protected",
		    "Protected hVHE mode initialized successfully",
		    all != NULL && strcmp(all, "1") == 0 ? ARRAY_LEN(hv_suites)
							 : ARRAY_LEN(hv_suites) - 1);
}

/* ---- The Linux corporate half (issue 12 §4): tests/arm64/linux_steps.c in the machine ---- */

#define LINUX_PATTERN "CLEAVE-LINUX-CORPORATE-PATTERN-4f1c9e-" /* corp_init.c's */

/* Decodes len chars of base64 text (newlines skipped) into out; the byte count. */
static size_t
b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	const char *end = in + len;

	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0, bits = 0;
	size_t n = 0;

	for (; in < end && n < cap; in++) {
		if (*in == '\n')
			continue;
		const char *p = strchr(a, *in);
		if (p == NULL)
			break;
		v = v << 6 | (unsigned)(p - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(v >> bits);
		}
	}
	return n;
}

/* The data-area dump linux_steps printed under tag, decoded into out; its size, or 0. */
static size_t
volume_dump(const char *log, const char *tag, unsigned char *out, size_t cap)
{
	char begin[64], end[64];
	const char *p, *q;

	snprintf(begin, sizeof(begin), "vol-dump-begin %s ", tag);
	snprintf(end, sizeof(end), "\nvol-dump-end %s\n", tag);
	p = strstr(log, begin);
	p = p != NULL ? strchr(p, '\n') : NULL;
	q = p != NULL ? strstr(p, end) : NULL;
	return q != NULL ? b64_decode(p + 1, (size_t)(q - p - 1), out, cap) : 0;
}

/*
 * On this host: the sectors the Linux guest wrote its pattern to are in the volume file as
 * ciphertext (not zero, no pattern), and after the wipe they are neither the pattern nor the
 * old ciphertext (the wipe punched them out: zeros).
 */
static void
linux_check_volume(const char *log)
{
	static unsigned char before[16384], after[16384];
	size_t nb = volume_dump(log, "before-wipe", before, sizeof(before));
	size_t na = volume_dump(log, "after-wipe", after, sizeof(after));
	size_t zeros = 0;

	CHECK(nb == 12288 && na == 12288, "volume dumps of %zu and %zu bytes, not 12288", nb, na);
	for (size_t i = 0; i < nb; i++)
		zeros += before[i] == 0;
	CHECK(zeros < nb / 16, "the written sectors are mostly zeros (%zu of %zu)", zeros, nb);
	CHECK(memmem(before, nb, LINUX_PATTERN, 16) == NULL,
	      "the pattern is in the volume in plain");
	CHECK(memmem(after, na, LINUX_PATTERN, 16) == NULL,
	      "the pattern is in the volume after the wipe");
	CHECK(memmem(after, na, before, 64) == NULL, "the old ciphertext survived the wipe");
	printf("    volume: %zu bytes of ciphertext before the wipe (%zu zero), none of it after\n",
	       nb, zeros);
}

/*
 * cleave-hv --linux in the emulated machine: Debian's 6.1 arm64 Image boots as the corporate
 * half with cleave-hv's device tree, its kernel log and init's lines come out of cleave-hv's
 * console socket, init finds /dev/vda (the encrypted volume through the virtio disk) blank,
 * writes and reads back the pattern, echoes what the console typed; a signed lock and unlock
 * pause and resume it (it reads its disk again after); a signed wipe (receipts verified here)
 * gives a fresh guest that finds the disk blank again. With cleave.linux_quiet in extra the
 * guest boots `quiet` (the pKVM host is too slow for the suite's budget with its full log).
 */
static void
linux_case(const char *tag, const char *kernel, const char *cpu, const char *extra,
	   const char *mode_line)
{
	static struct boot b;
	char path[PATH_MAX];
	int quiet = strstr(extra, "cleave.linux_quiet") != NULL;

	snprintf(path, sizeof(path), "%s/initramfs-linux.cpio.gz", arm64_dir);
	if (qemu_path[0] != '\0' && access(path, R_OK) != 0)
		SKIP("no %s: `make arm64-linux` builds it (after `make arm64` and arm64-hv-full)",
		     path);
	memset(&b, 0, sizeof(b));
	b.kernel = kernel, b.cpu = cpu, b.extra = extra;
	b.image = "initramfs-linux.cpio.gz", b.progs = "/bin/linux_steps";
	boot_checked(&b, tag, mode_line);
	const char *want[] = {
		"vmm: Linux Image ",
		"cleave-hv: corporate VM running (160 MiB)",
		/* The kernel's own messages, unless it boots quiet (warnings only). */
		quiet ? "" : "corp| [    0.000000] Booting Linux on physical CPU 0x0",
		quiet ? "" : "linux-step: kernel banner seen at",
		"corp| corp-init: start",
		"linux-step: guest init seen at",
		"corp| corp-init: module /lib/virtio_mmio.ko: loaded",
		"corp| corp-init: module /lib/virtio_blk.ko: loaded",
		"corp| corp-init: vda before: pattern absent",
		"corp| corp-init: vda pattern written and synced",
		"corp| corp-init: vda read back: ok",
		"corp| corp-init: echo hello-from-l1",
		"linux-step: console echo seen at",
		"linux-step: pin exit 0",
		"\nreceipt 1: lock done, state locked",
		"linux-step: lock exit 0",
		"\nreceipt 2: unlock done, state active",
		"linux-step: unlock exit 0",
		"corp| corp-init: vda verify: ok", /* the paused guest resumed, its disk readable */
		"linux-step: disk after unlock seen at",
		"vol-dump-end before-wipe",
		"corporate half wiped by cryptographic erase (verified)",
		"\nreceipt 3: wipe done, state active, key epoch 1 -> 2",
		"linux-step: wipe exit 0",
		"linux-step: pubkey exit 0",
		"vol-dump-end after-wipe",
		/* The fresh guest on the blank volume. */
		"corp| corp-init: vda before: pattern absent",
		"linux-step: rebooted blank seen at",
		"corp| corp-init: vda read back: ok",
		"linux-step: cleave-hv exit 0",
		"linux-steps: result: ok\n",
		"cleave-init: /bin/linux_steps exit 0",
	};
	const char *miss = missing_in_order(b.log, want, sizeof(want) / sizeof(want[0]));
	CHECK(miss == NULL, "console lacks (in order) \"%s\"", miss);
	CHECK(strstr(b.log, "stopping the VM") == NULL, "the Linux guest stopped on a fault");
	linux_check_volume(b.log);
	CHECK(verify_receipt(b.log, "receipt 1: lock done", 2) == 0,
	      "openssl did not verify the lock receipt (or accepted an altered one)");
	CHECK(verify_receipt(b.log, "receipt 3: wipe done", 1) == 0,
	      "openssl did not verify the wipe receipt (or accepted an altered one)");
}

static void
test_arm64_linux_61_nvhe(void)
{
	linux_case("linux-61-nvhe", "6.1", "cortex-a57", "", "Hyp mode initialized successfully");
}

/* The same guest (Debian 6.1) under a 6.12 pKVM host: a normal VM with a vGIC. */
static void
test_arm64_linux_612_pkvm(void)
{
	linux_case("linux-612-pkvm", "6.12", "max", "kvm-arm.mode=protected cleave.linux_quiet",
		   "Protected hVHE mode initialized successfully");
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"kvm_61_nvhe", test_arm64_kvm_61_nvhe},
		{"kvm_61_vhe", test_arm64_kvm_61_vhe},
		{"kvm_612_vhe", test_arm64_kvm_612_vhe},
		{"kvm_612_pkvm", test_arm64_kvm_612_pkvm},
		{"hv_61_nvhe", test_arm64_hv_61_nvhe},
		{"hv_612_pkvm", test_arm64_hv_612_pkvm},
		{"suites_61_nvhe", test_arm64_suites_61_nvhe},
		{"suites_612_pkvm", test_arm64_suites_612_pkvm},
		{"linux_61_nvhe", test_arm64_linux_61_nvhe},
		{"linux_612_pkvm", test_arm64_linux_612_pkvm},
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	arm64vm_init();
	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
