/*
 * arm64's register access (arch.h): the doorbell's call registers x0..x5 and PSTATE (the
 * caller's privilege, call_map.c) by KVM_GET_ONE_REG, x0..x3 back by KVM_SET_ONE_REG, and the
 * state logged when the guest faults.
 */
#include <errno.h>
#include <stddef.h>

#include "../../vmm_priv.h"
#include "log.h"

/* ESR_EL1 and FAR_EL1 as KVM names system registers (op0, op1, CRn, CRm, op2). */
#define REG_ESR_EL1 ARM64_SYS_REG(3, 0, 5, 2, 0)
#define REG_FAR_EL1 ARM64_SYS_REG(3, 0, 6, 0, 0)

static uint64_t
xreg(unsigned n)
{
	return arm64_core_reg(offsetof(struct kvm_regs, regs.regs) + n * sizeof(uint64_t));
}

int
arch_call_read(struct vmm *vm, struct bus_io *io)
{
	uint64_t pstate;
	int rc;

	for (unsigned i = 0; i < 6; i++) {
		rc = arm64_get_reg(vm->vcpu_fd, xreg(i), &io->regs.r[i]);
		if (rc < 0) {
			log_errno(-rc, "vmm: KVM_GET_ONE_REG x%u", i);
			return rc;
		}
	}
	rc = arm64_get_reg(vm->vcpu_fd, arm64_core_reg(offsetof(struct kvm_regs, regs.pstate)),
			   &pstate);
	/* An unreadable PSTATE counts as EL0t: the least privileged caller. */
	io->regs.mode = rc == 0 ? pstate : 0;
	return 0;
}

/* x0..x3 carry the status and the results; x4 and x5 are left as the guest had them. */
int
arch_call_write(struct vmm *vm, const struct bus_io *io)
{
	for (unsigned i = 0; i < 4; i++) {
		int rc = arm64_set_reg(vm->vcpu_fd, xreg(i), io->regs.r[i],
				       "KVM_SET_ONE_REG x0..x3");

		if (rc < 0)
			return rc;
	}
	return 0;
}

void
arch_log_state(struct vmm *vm)
{
	uint64_t pc = 0, pstate = 0, elr = 0, esr = 0, far = 0;
	int fd = vm->vcpu_fd;

	if (arm64_get_reg(fd, arm64_core_reg(offsetof(struct kvm_regs, regs.pc)), &pc) < 0 ||
	    arm64_get_reg(fd, arm64_core_reg(offsetof(struct kvm_regs, regs.pstate)), &pstate) < 0)
		return;
	/* The EL1 fault registers help only once the guest took an exception; 0 when unreadable. */
	arm64_get_reg(fd, arm64_core_reg(offsetof(struct kvm_regs, elr_el1)), &elr);
	arm64_get_reg(fd, REG_ESR_EL1, &esr);
	arm64_get_reg(fd, REG_FAR_EL1, &far);
	log_warn("vmm: guest state: pc 0x%llx pstate 0x%llx elr_el1 0x%llx esr_el1 0x%llx "
		 "far_el1 0x%llx",
		 (unsigned long long)pc, (unsigned long long)pstate, (unsigned long long)elr,
		 (unsigned long long)esr, (unsigned long long)far);
}
