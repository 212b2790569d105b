/*
 * The per-architecture half of cleave-hv's VMM: what vmm.c and vcpu.c (shared) ask of the
 * folder the Makefile picks, hypercall-bridge/hv/arch/$(HV_ARCH)/. Declared once here, defined
 * once per architecture, so shared files never test the architecture. The exit decoder
 * (exit_info_copy, exit_decode) belongs to the same half; it is declared in exit_decode.h
 * because its unit test uses the header on its own. Layout and plan: hypercall-bridge/ARM64.md.
 * Not for use outside hypercall-bridge/hv/.
 */
#ifndef CLEAVE_ARCH_H
#define CLEAVE_ARCH_H

#include <stdint.h>

struct vmm;
struct bus_io;
struct vmm_config;

/* The type argument of KVM_CREATE_VM for this architecture (kvm_fd: /dev/kvm, borrowed). */
int arch_vm_type(int kvm_fd);
/* The guest physical address where guest RAM (memory slot 0) starts. */
uint64_t arch_ram_base(void);
/* VM-wide boot state written into guest RAM after the image is loaded, before the vCPU exists. */
int arch_vm_setup(struct vmm *vm);
/*
 * After KVM_CREATE_VCPU and the kvm_run mapping: puts the vCPU at the image's entry point in the
 * mode the guest expects. 0 or a negative errno.
 */
int arch_vcpu_setup(struct vmm *vm);
/* Registers the guest console and the hypercall doorbell on vm->bus. 0 or a negative errno. */
int arch_devices_register(struct vmm *vm);
/* Sets the kvm_run fields each (re)start needs, before the vCPU thread's first KVM_RUN. */
void arch_run_prepare(struct vmm *vm);
/*
 * For a device that asked for registers (BUS_F_REGS): fills io->regs with the vCPU's call
 * registers and the caller's privilege (BUS_REG_CPL) at the exit. 0 or a negative errno.
 */
int arch_call_read(struct vmm *vm, struct bus_io *io);
/* Writes io->regs back into the vCPU after a device changed them (io->regs_dirty). */
int arch_call_write(struct vmm *vm, const struct bus_io *io);
/* Logs where the guest was when the VM stopped on a fault, for the post-mortem. */
void arch_log_state(struct vmm *vm);
/*
 * Appended to the VM configuration string that the measurement covers: empty where the
 * measurement predates the split (x86: enrolled devices keep their measurement), non-empty
 * elsewhere so an image never matches another architecture's enrollment.
 */
const char *arch_config_tag(void);
/* 1 when this architecture boots a Linux guest (vmm_config.linux_guest), else 0. */
int arch_linux_supported(void);
/*
 * For a Linux guest, in place of the flat image load: the kernel, the initramfs and the boot
 * description the kernel expects (arm64: a device tree) into guest RAM, and the interrupt
 * controller's plan; the vCPU is set up for it by arch_vcpu_setup. 0 or a negative errno.
 */
int arch_linux_load(struct vmm *vm, const struct vmm_config *cfg);
/* Drives device interrupt line `line` (the guest's numbering) to level. 0 or -errno. */
int arch_irq_line(struct vmm *vm, unsigned line, int level);

#endif
