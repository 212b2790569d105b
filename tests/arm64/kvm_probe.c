/*
 * kvm_probe: the first arm64 VMM of the nested-KVM pipeline (tests/arm64/README.md). Built
 * static for aarch64 and run inside QEMU's emulated arm64 machine by init; the x86 host test
 * (tests/integration/test_arm64_kvm.c) reads what it prints on the serial console.
 *
 * It opens /dev/kvm, creates a VM with RAM at the QEMU virt layout (0x4000_0000), one vCPU
 * (KVM_ARM_PREFERRED_TARGET + KVM_ARM_VCPU_INIT with PSCI 0.2), sets PC with KVM_SET_ONE_REG,
 * offers the ABI's SMCCC range to userspace where the kernel has KVM_ARM_VM_SMCCC_FILTER, and
 * runs a hand-written guest that exercises each exit a cleave-hv port relies on: an in-kernel
 * PSCI call, an MMIO store and load on the doorbell page, the ABI's VERSION by HVC, a timed
 * loop of doorbell stores, and PSCI SYSTEM_OFF. Every exit is printed as one "exit:" line.
 * Exit status 0 only when the run ended in SYSTEM_OFF without a surprise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cleave_abi.h"

/* The SMCCC filter arrived in Linux 6.4; the cross compiler's headers (6.1) lack it. */
#ifndef KVM_ARM_VM_SMCCC_CTRL
#define KVM_ARM_VM_SMCCC_CTRL   0
#define KVM_ARM_VM_SMCCC_FILTER 0
struct kvm_smccc_filter {
	uint32_t base;
	uint32_t nr_functions;
	uint8_t action;
	uint8_t pad[15];
};
#endif
#define SMCCC_FILTER_FWD_TO_USER 2

#ifndef RAM_BASE
#define RAM_BASE 0x40000000u /* QEMU virt's RAM base, kept for the port */
#endif
#define RAM_SIZE   0x10000u
#define DOORBELL   0x0b000000u /* an unused page of the virt map, outside every memslot */
#define READ_WORD  0x5a5a1234u /* what a guest load from DOORBELL + 4 sees */
#define LOOPS      200         /* timed doorbell stores */
#define MAX_EXITS  (LOOPS + 64)
#define STUCK_SECS 10 /* a guest that makes no exit this long is reported and stopped */

/*
 * The guest, assembled by the cross compiler into .rodata and copied into guest RAM. It keeps
 * its state in x19-x22 because KVM's PSCI/SMCCC handling clobbers x0-x3 on every HVC. Offsets
 * on the doorbell page: 0 store, 4 load, 8 PSCI version, 0xc echo of the load, 0x10 the ABI
 * VERSION call's x0 by HVC (8 bytes), 0x18 the timed loop, 0x20 the ring of the MMIO doorbell
 * (the value stored is the function ID, as on x86), 0x28 x0 after that ring (8 bytes): the VMM
 * answers an MMIO doorbell call in x0 as it answers an HVC.
 */
__asm__(".section .rodata.guest, \"a\"\n"
	".balign 4\n"
	".globl guest_code, guest_code_size\n"
	".hidden guest_code, guest_code_size\n"
	"guest_code:\n"
	"	movz x19, #0x0b00, lsl #16\n" /* x19 = DOORBELL */
	"	movz x0, #0x0000\n"
	"	movk x0, #0x8400, lsl #16\n" /* PSCI_VERSION, answered by KVM */
	"	hvc #0\n"
	"	str w0, [x19, #0x08]\n"
	"	movz w20, #0xbeef\n"
	"	movk w20, #0xc1ea, lsl #16\n"
	"	str w20, [x19]\n"
	"	ldr w21, [x19, #0x04]\n"
	"	str w21, [x19, #0x0c]\n"
	"	movz x0, #0x0000\n"
	"	movk x0, #0xf200, lsl #16\n" /* CLV_FN_VERSION */
	"	movz x1, #0x1234\n"
	"	hvc #0\n"
	"	str x0, [x19, #0x10]\n"
	"	movz x0, #0x0000\n"
	"	movk x0, #0xf200, lsl #16\n" /* CLV_FN_VERSION again, by the MMIO doorbell */
	"	movz x1, #0x5678\n"
	"	str w0, [x19, #0x20]\n"
	"	str x0, [x19, #0x28]\n"
	"	movz x22, #200\n" /* LOOPS */
	"1:	str w22, [x19, #0x18]\n"
	"	subs x22, x22, #1\n"
	"	b.ne 1b\n"
	"	movz x0, #0x0008\n"
	"	movk x0, #0x8400, lsl #16\n" /* PSCI SYSTEM_OFF */
	"	hvc #0\n"
	"2:	b 2b\n"
	"guest_code_end:\n"
	"guest_code_size: .word guest_code_end - guest_code\n"
	".previous\n");
/* The size comes from the assembler: C may not subtract pointers to two distinct objects. */
extern const uint8_t guest_code[];
extern const uint32_t guest_code_size;

struct probe {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	int filter; /* the ABI range goes to userspace */
	unsigned loop_exits;
	int64_t loop_first_ns, loop_last_ns;
	int failed;
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t
core_reg(size_t offset)
{
	return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / sizeof(uint32_t));
}

static int
reg_get(int vcpu, size_t offset, uint64_t *v)
{
	struct kvm_one_reg r = {.id = core_reg(offset), .addr = (uintptr_t)v};

	return ioctl(vcpu, KVM_GET_ONE_REG, &r);
}

static int
reg_set(int vcpu, size_t offset, uint64_t v)
{
	struct kvm_one_reg r = {.id = core_reg(offset), .addr = (uintptr_t)&v};

	return ioctl(vcpu, KVM_SET_ONE_REG, &r);
}

#define XREG(n) offsetof(struct kvm_regs, regs.regs[n])
#define PCREG   offsetof(struct kvm_regs, regs.pc)

/* Creates the VM, its RAM with the guest in it, the SMCCC filter and the vCPU. 0 or -1. */
static int
probe_setup(struct probe *p)
{
	p->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (p->kvm < 0) {
		printf("fail: open /dev/kvm: %s\n", strerror(errno));
		return -1;
	}
	int ipa = ioctl(p->kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	int64_t t0 = now_ns();
	p->vm = ioctl(p->kvm, KVM_CREATE_VM, 0UL);
	if (p->vm < 0) {
		printf("fail: KVM_CREATE_VM: %s\n", strerror(errno));
		return -1;
	}
	printf("kvm: api %d, ipa max %d bits, create_vm %.2f ms\n",
	       ioctl(p->kvm, KVM_GET_API_VERSION, 0), ipa, (double)(now_ns() - t0) / 1e6);
	/*
	 * A protected VM (pKVM's KVM_VM_TYPE_ARM_PROTECTED, type bit 31 in Android's kernels):
	 * whether this kernel lets a userspace VMM make one (PHONES.md; test_arm64_kvm asserts it).
	 */
	int pvm = ioctl(p->kvm, KVM_CREATE_VM, 1UL << 31);
	printf("kvm: protected vm %s\n", pvm >= 0 ? "created" : strerror(errno));
	if (pvm >= 0)
		close(pvm);
	uint8_t *ram =
		mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED || guest_code_size == 0 || guest_code_size > RAM_SIZE) {
		printf("fail: guest RAM (%s) or guest code size %u\n",
		       ram == MAP_FAILED ? strerror(errno) : "ok", guest_code_size);
		return -1;
	}
	memcpy(ram, guest_code, guest_code_size);
	struct kvm_userspace_memory_region slot = {.slot = 0,
						   .guest_phys_addr = RAM_BASE,
						   .memory_size = RAM_SIZE,
						   .userspace_addr = (uintptr_t)ram};
	if (ioctl(p->vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
		printf("fail: KVM_SET_USER_MEMORY_REGION: %s\n", strerror(errno));
		return -1;
	}
	/* Forward the ABI's function IDs (service core, host, guest) to us; before any vCPU runs. */
	struct kvm_smccc_filter f = {.base = CLV_FN_VERSION,
				     .nr_functions = 0x30000,
				     .action = SMCCC_FILTER_FWD_TO_USER};
	struct kvm_device_attr attr = {.group = KVM_ARM_VM_SMCCC_CTRL,
				       .attr = KVM_ARM_VM_SMCCC_FILTER,
				       .addr = (uintptr_t)&f};
	p->filter = ioctl(p->vm, KVM_SET_DEVICE_ATTR, &attr) == 0;
	printf("kvm: smccc filter %s\n", p->filter ? "yes" : strerror(errno));

	p->vcpu = ioctl(p->vm, KVM_CREATE_VCPU, 0UL);
	struct kvm_vcpu_init init;
	if (p->vcpu < 0 || ioctl(p->vm, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
		printf("fail: vcpu or preferred target: %s\n", strerror(errno));
		return -1;
	}
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (ioctl(p->vcpu, KVM_ARM_VCPU_INIT, &init) < 0 || reg_set(p->vcpu, PCREG, RAM_BASE) < 0) {
		printf("fail: KVM_ARM_VCPU_INIT or PC: %s\n", strerror(errno));
		return -1;
	}
	printf("kvm: vcpu target %u\n", init.target);
	int run_size = ioctl(p->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	p->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->vcpu, 0);
	return p->run == MAP_FAILED ? -1 : 0;
}

/*
 * The MMIO doorbell: the stored value is the function ID, the arguments are in x1..x4, the
 * answer goes to x0 by KVM_SET_ONE_REG; KVM completes the store (advances PC) on the next
 * KVM_RUN and, a store writing no register, leaves x0 as set here.
 */
static void
on_doorbell(struct probe *p, uint64_t fid)
{
	uint64_t x1 = 0;
	int64_t ret = fid == CLV_FN_VERSION ? (int64_t)CLV_ABI_VERSION : CLV_E_NOT_SUPPORTED;

	reg_get(p->vcpu, XREG(1), &x1);
	printf("exit: mmio doorbell fid 0x%" PRIx64 " x1 0x%" PRIx64 " -> x0 0x%" PRIx64 "\n", fid,
	       x1, (uint64_t)ret);
	if (reg_set(p->vcpu, XREG(0), (uint64_t)ret) < 0)
		p->failed = 1;
}

static void
on_mmio(struct probe *p)
{
	uint64_t addr = p->run->mmio.phys_addr, v = 0;
	uint32_t len = p->run->mmio.len;

	if (len > sizeof(v) || addr < DOORBELL || addr >= DOORBELL + 0x1000) {
		printf("exit: mmio unexpected addr 0x%" PRIx64 " len %u\n", addr, len);
		p->failed = 1;
		return;
	}
	if (!p->run->mmio.is_write) {
		uint32_t w = READ_WORD;
		memcpy(p->run->mmio.data, &w, len < 4 ? len : 4);
		printf("exit: mmio read addr 0x%" PRIx64 " len %u -> 0x%x\n", addr, len, READ_WORD);
		return;
	}
	memcpy(&v, p->run->mmio.data, len);
	if (addr == DOORBELL + 0x20) {
		on_doorbell(p, v);
		return;
	}
	if (addr == DOORBELL + 0x18) {
		int64_t t = now_ns();
		if (p->loop_exits++ == 0)
			p->loop_first_ns = t;
		p->loop_last_ns = t;
		return;
	}
	printf("exit: mmio write addr 0x%" PRIx64 " len %u data 0x%" PRIx64 "\n", addr, len, v);
}

static void
on_hypercall(struct probe *p)
{
	uint64_t x1 = 0;

	reg_get(p->vcpu, XREG(1), &x1);
	printf("exit: hypercall fid 0x%" PRIx64 " x1 0x%" PRIx64 "\n",
	       (uint64_t)p->run->hypercall.nr, x1);
	/* HVC has already advanced PC; x0 carries the answer. */
	if (p->run->hypercall.nr == CLV_FN_VERSION)
		reg_set(p->vcpu, XREG(0), CLV_ABI_VERSION);
	else
		reg_set(p->vcpu, XREG(0), (uint64_t)(int64_t)CLV_E_NOT_SUPPORTED);
}

static void
on_alarm(int sig)
{
	(void)sig; /* only there to make KVM_RUN return EINTR */
}

/* Where a vCPU that stopped exiting was: PC, PSTATE and the guest's exception state. */
static void
print_stuck(const struct probe *p)
{
	uint64_t pc = 0, pstate = 0, x0 = 0, elr = 0, esr = 0;
	uint64_t esr_id = ARM64_SYS_REG(3, 0, 5, 2, 0); /* ESR_EL1 */
	struct kvm_one_reg r = {.id = esr_id, .addr = (uintptr_t)&esr};

	ioctl(p->vcpu, KVM_GET_ONE_REG, &r);
	reg_get(p->vcpu, offsetof(struct kvm_regs, elr_el1), &elr);
	reg_get(p->vcpu, PCREG, &pc);
	reg_get(p->vcpu, offsetof(struct kvm_regs, regs.pstate), &pstate);
	reg_get(p->vcpu, XREG(0), &x0);
	printf("fail: guest made no exit for %d s: pc 0x%" PRIx64 " pstate 0x%" PRIx64
	       " x0 0x%" PRIx64 " elr_el1 0x%" PRIx64 " esr_el1 0x%" PRIx64 "\n",
	       STUCK_SECS, pc, pstate, x0, elr, esr);
}

/* Runs until SYSTEM_OFF or a surprise; bounded by MAX_EXITS. 0 when it ended in SYSTEM_OFF. */
static int
probe_run(struct probe *p)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: KVM_RUN returns EINTR */
	for (unsigned n = 0; n < MAX_EXITS; n++) {
		alarm(STUCK_SECS);
		int r = ioctl(p->vcpu, KVM_RUN, 0);
		alarm(0);
		if (r < 0 && errno == EINTR) {
			print_stuck(p);
			return -1;
		}
		if (r < 0) {
			printf("fail: KVM_RUN: %s\n", strerror(errno));
			return -1;
		}
		switch (p->run->exit_reason) {
		case KVM_EXIT_MMIO:
			on_mmio(p);
			break;
		case KVM_EXIT_HYPERCALL:
			on_hypercall(p);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			printf("exit: system_event type %u\n", p->run->system_event.type);
			return p->run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? 0 : -1;
		default:
			printf("exit: unexpected reason %u\n", p->run->exit_reason);
			return -1;
		}
	}
	printf("fail: more than %d exits\n", MAX_EXITS);
	return -1;
}

int
main(void)
{
	struct probe p = {.kvm = -1, .vm = -1, .vcpu = -1};
	int64_t t0 = now_ns();

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (probe_setup(&p) < 0)
		return 1;
	int rc = probe_run(&p);
	if (p.loop_exits > 1)
		printf("exit: mmio loop %u stores, %.1f us each\n", p.loop_exits,
		       (double)(p.loop_last_ns - p.loop_first_ns) / 1e3 / (p.loop_exits - 1));
	printf("kvm: probe %.1f ms\n", (double)(now_ns() - t0) / 1e6);
	printf("result: %s\n", rc == 0 && !p.failed && p.loop_exits == LOOPS ? "ok" : "FAIL");
	return rc == 0 && !p.failed ? 0 : 1;
}
