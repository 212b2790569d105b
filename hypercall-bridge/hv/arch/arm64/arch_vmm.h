/*
 * arm64's part of struct vmm (vmm_priv.h embeds it as vm->arch) and the guest's physical
 * layout, QEMU virt's (hypercall-bridge/ARM64.md §4). Found through the include path the
 * Makefile sets for the chosen architecture; not for use outside hypercall-bridge/hv/.
 */
#ifndef CLEAVE_ARCH_VMM_H
#define CLEAVE_ARCH_VMM_H

#include <stdint.h>

#include <linux/kvm.h>

#include "layout.h"

/* The SMCCC filter (Linux 6.4+): forward a range of function IDs to userspace. */
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
#define ARM64_SMCCC_FWD_TO_USER 2
/* The ABI's function IDs: services core, host and guest, 0x10000 numbers each. */
#define ARM64_ABI_FIDS 0x30000u

/* PSTATE at entry: EL1h with D, A, I and F masked (the guest has no interrupts yet). */
#define ARM64_PSTATE_EL1H 0x3c5ull

struct arch_vmm {
	struct kvm_vcpu_init init; /* the target and features the vCPU was made with */
	/* A Linux guest (linux_boot.c): where it starts and its device tree. */
	uint64_t linux_entry, linux_dtb;
};

struct vmm;

/* Linux guests: the vGIC (after the vCPU exists) and the boot registers. 0 or -errno. */
int arm64_linux_vcpu(struct vmm *vm);

/* The KVM_{GET,SET}_ONE_REG id of the core register at byte offset off in struct kvm_regs. */
uint64_t arm64_core_reg(size_t off);
/* KVM_GET_ONE_REG / KVM_SET_ONE_REG of one 64-bit register; 0 or -errno (logged on set). */
int arm64_get_reg(int vcpu_fd, uint64_t id, uint64_t *val);
int arm64_set_reg(int vcpu_fd, uint64_t id, uint64_t val, const char *what);

#endif
