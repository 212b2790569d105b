/*
 * arm64's boot state for the corporate VM (arch.h): RAM at QEMU virt's base, a vCPU of the
 * host's preferred target with PSCI 0.2 (so SYSTEM_OFF and RESET reach us as
 * KVM_EXIT_SYSTEM_EVENT), entered at EL1h with interrupts masked at the image's first byte,
 * its stack at the same offset into RAM as on x86. The guest sets its own VBAR_EL1 first thing
 * (ARM64.md §2: a fault before that makes no exit at all).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../../vmm_priv.h"
#include "log.h"

uint64_t
arm64_core_reg(size_t off)
{
	return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (off / sizeof(uint32_t));
}

int
arm64_get_reg(int vcpu_fd, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg r = {.id = id, .addr = (uint64_t)(uintptr_t)val};

	return ioctl(vcpu_fd, KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

int
arm64_set_reg(int vcpu_fd, uint64_t id, uint64_t val, const char *what)
{
	struct kvm_one_reg r = {.id = id, .addr = (uint64_t)(uintptr_t)&val};

	return vmm_kvm_ioctl(vcpu_fd, KVM_SET_ONE_REG, &r, what);
}

int
arch_vm_type(int kvm_fd)
{
	/* 0: the default 40-bit IPA space, which holds RAM, the UART and the doorbell. */
	(void)kvm_fd;
	return 0;
}

uint64_t
arch_ram_base(void)
{
	return ARM64_RAM_BASE;
}

int
arch_vm_setup(struct vmm *vm)
{
	/* Nothing to write into RAM: no page tables (the MMU starts off) and vectors are the image's. */
	(void)vm;
	return 0;
}

/*
 * Offers the ABI's function IDs by HVC (ARM64.md §4): the kernel forwards them to us as
 * KVM_EXIT_HYPERCALL. Before 6.4 there is no filter (EINVAL) and KVM answers them -1 itself,
 * so the guest keeps to the MMIO doorbell; both are fine. Must precede the first KVM_RUN.
 * CLEAVE_HV_NO_HVC=1 leaves the filter off where the kernel has it, so the MMIO doorbell can be
 * measured on the same kernel as HVC (bench/arm64_bench.c); nothing else sets it.
 */
static void
smccc_filter(struct vmm *vm)
{
	struct kvm_smccc_filter f = {
		.base = CLV_FN_VERSION,
		.nr_functions = ARM64_ABI_FIDS,
		.action = ARM64_SMCCC_FWD_TO_USER,
	};
	struct kvm_device_attr attr = {
		.group = KVM_ARM_VM_SMCCC_CTRL,
		.attr = KVM_ARM_VM_SMCCC_FILTER,
		.addr = (uint64_t)(uintptr_t)&f,
	};

	const char *no_hvc = getenv("CLEAVE_HV_NO_HVC");

	if (no_hvc != NULL && strcmp(no_hvc, "1") == 0)
		log_info("vmm: SMCCC filter left off (CLEAVE_HV_NO_HVC): the MMIO doorbell only");
	else if (ioctl(vm->vm_fd, KVM_SET_DEVICE_ATTR, &attr) == 0)
		log_info("vmm: hypercalls by HVC forwarded (SMCCC filter)");
	else
		log_info("vmm: no SMCCC filter (%s): the MMIO doorbell only", strerror(errno));
}

int
arch_vcpu_setup(struct vmm *vm)
{
	struct kvm_vcpu_init *init = &vm->arch.init;
	int rc;

	memset(init, 0, sizeof(*init));
	rc = vmm_kvm_ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, init, "KVM_ARM_PREFERRED_TARGET");
	if (rc < 0)
		return rc;
	init->features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	rc = vmm_kvm_ioctl(vm->vcpu_fd, KVM_ARM_VCPU_INIT, init, "KVM_ARM_VCPU_INIT");
	if (rc == 0)
		rc = arm64_set_reg(vm->vcpu_fd,
				   arm64_core_reg(offsetof(struct kvm_regs, regs.pstate)),
				   ARM64_PSTATE_EL1H, "set PSTATE");
	if (rc == 0 && vm->linux_guest)
		return arm64_linux_vcpu(vm); /* entry, x0 = the device tree, the vGIC */
	if (rc == 0)
		rc = arm64_set_reg(vm->vcpu_fd, arm64_core_reg(offsetof(struct kvm_regs, sp_el1)),
				   ARM64_RAM_BASE + VMM_STACK_TOP, "set SP_EL1");
	if (rc == 0)
		rc = arm64_set_reg(vm->vcpu_fd, arm64_core_reg(offsetof(struct kvm_regs, regs.pc)),
				   ARM64_RAM_BASE + VMM_GUEST_LOAD, "set PC");
	if (rc == 0)
		smccc_filter(vm);
	return rc;
}

void
arch_run_prepare(struct vmm *vm)
{
	(void)vm; /* registers travel by KVM_{GET,SET}_ONE_REG: nothing to arm in kvm_run */
}

const char *
arch_config_tag(void)
{
	return " arch=arm64";
}
