/*
 * x86's devices (arch.h): the 16550 console on COM1's ports and the hypercall doorbell, a
 * 4-byte `out` of the function ID to CLV_DOORBELL_PORT. The argument registers are copied once
 * out of the vCPU, handed to the caller's dispatcher, and its status and results written back
 * to RAX/RBX/RCX/RDX. What each function does is the dispatcher's business (vmm.c has the
 * built-in default).
 */
#include <errno.h>

#include "../../vmm_priv.h"

static int
doorbell_io(void *ctx, struct bus_io *io)
{
	struct vmm *vm = ctx;
	uint64_t args[4], res[3] = {0, 0, 0};
	int64_t status;

	if (!io->is_write || io->size != 4) {
		/* Reads and narrow writes are not calls: reads see all ones, writes vanish. */
		io->value = 0xffffffffu;
		return io->is_write ? -EINVAL : 0;
	}
	args[0] = io->regs[X86_RBX];
	args[1] = io->regs[X86_RCX];
	args[2] = io->regs[X86_RSI]; /* RDX holds the doorbell port */
	args[3] = io->regs[X86_RDI];
	status = vmm_doorbell_call(vm, io->value, (unsigned)io->regs[BUS_REG_CPL], args, res);
	io->regs[X86_RAX] = (uint64_t)status;
	io->regs[X86_RBX] = res[0];
	io->regs[X86_RCX] = res[1];
	io->regs[X86_RDX] = res[2];
	io->regs_dirty = 1;
	return 0;
}

int
arch_devices_register(struct vmm *vm)
{
	struct bus_dev com1 = {
		.name = "com1",
		.base = CLV_SERIAL_PORT,
		.len = SERIAL_NPORTS,
		.io = serial_io,
		.ctx = &vm->serial,
	};
	struct bus_dev d = {
		.name = "doorbell",
		.base = CLV_DOORBELL_PORT,
		.len = 4,
		.flags = BUS_F_REGS,
		.io = doorbell_io,
		.ctx = vm,
	};

	int rc = bus_register_pio(&vm->bus, &com1);

	return rc == 0 ? bus_register_pio(&vm->bus, &d) : rc;
}
