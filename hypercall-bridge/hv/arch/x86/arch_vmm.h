/*
 * x86's part of struct vmm (vmm_priv.h embeds it as vm->arch). Found through the include path
 * the Makefile sets for the chosen architecture; not for use outside hypercall-bridge/hv/.
 */
#ifndef CLEAVE_ARCH_VMM_H
#define CLEAVE_ARCH_VMM_H

#include <linux/kvm.h>

#include "bus_pio.h"

/* Where x86's call registers sit in struct call_regs.r (call.h). */
enum x86_call_reg { X86_RAX, X86_RBX, X86_RCX, X86_RDX, X86_RSI, X86_RDI };

struct arch_vmm {
	int sync_regs; /* KVM_CAP_SYNC_REGS: GPRs travel in kvm_run, no GET/SET_REGS ioctls */
	/* The GPRs read at a doorbell exit, written back with the results (vcpu_regs.c). */
	struct kvm_regs call_regs;
};

#endif
