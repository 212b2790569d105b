/*
 * x86's register access (arch.h): the doorbell's call registers from kvm_run's sync area when
 * KVM offers it (no ioctl) or with KVM_GET/SET_REGS, the caller's privilege from CS.RPL, and
 * the state logged when the guest faults. Moved unchanged from vcpu.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../../vmm_priv.h"
#include "log.h"

/* The vCPU's GPRs, from kvm_run's sync area (copied once) or with KVM_GET_REGS. */
static int
x86_regs_get(struct vmm *vm, struct kvm_regs *regs)
{
	if (vm->arch.sync_regs) {
		memcpy(regs, &vm->run->s.regs.regs, sizeof(*regs));
		return 0;
	}
	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, regs) < 0) {
		log_errno(errno, "vmm: KVM_GET_REGS");
		return -errno;
	}
	return 0;
}

/* The code segment selector, whose RPL is the caller's privilege; on failure RPL 3. */
static uint64_t
x86_cs(struct vmm *vm)
{
	struct kvm_sregs sr;

	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sr) < 0)
		return 3;
	return sr.cs.selector;
}

/* Writes regs back: into the sync area (KVM loads it on the next KVM_RUN) or KVM_SET_REGS. */
static int
x86_regs_put(struct vmm *vm, const struct kvm_regs *regs)
{
	if (vm->arch.sync_regs) {
		memcpy(&vm->run->s.regs.regs, regs, sizeof(*regs));
		vm->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		return 0;
	}
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, regs) < 0) {
		log_errno(errno, "vmm: KVM_SET_REGS");
		return -errno;
	}
	return 0;
}

int
arch_call_read(struct vmm *vm, struct bus_io *io)
{
	struct kvm_regs *regs = &vm->arch.call_regs;
	int rc = x86_regs_get(vm, regs);

	if (rc < 0)
		return rc;
	io->regs.r[X86_RAX] = regs->rax;
	io->regs.r[X86_RBX] = regs->rbx;
	io->regs.r[X86_RCX] = regs->rcx;
	io->regs.r[X86_RDX] = regs->rdx;
	io->regs.r[X86_RSI] = regs->rsi;
	io->regs.r[X86_RDI] = regs->rdi;
	io->regs.mode = x86_cs(vm);
	return 0;
}

/* Only after arch_call_read on the same exit: the other GPRs come from that read. */
int
arch_call_write(struct vmm *vm, const struct bus_io *io)
{
	struct kvm_regs *regs = &vm->arch.call_regs;

	regs->rax = io->regs.r[X86_RAX];
	regs->rbx = io->regs.r[X86_RBX];
	regs->rcx = io->regs.r[X86_RCX];
	regs->rdx = io->regs.r[X86_RDX];
	regs->rsi = io->regs.r[X86_RSI];
	regs->rdi = io->regs.r[X86_RDI];
	return x86_regs_put(vm, regs);
}

void
arch_log_state(struct vmm *vm)
{
	struct kvm_regs r;
	struct kvm_sregs sr;

	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sr) < 0)
		return;
	log_warn("vmm: guest state: rip 0x%llx rsp 0x%llx rflags 0x%llx cs 0x%x ss 0x%x cr0 0x%llx "
		 "cr3 0x%llx cr4 0x%llx efer 0x%llx",
		 (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags,
		 sr.cs.selector, sr.ss.selector, (unsigned long long)sr.cr0,
		 (unsigned long long)sr.cr3, (unsigned long long)sr.cr4,
		 (unsigned long long)sr.efer);
}
