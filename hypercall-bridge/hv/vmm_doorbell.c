/*
 * The hypercall doorbell: a 4-byte `out` of the function ID to CLV_DOORBELL_PORT. The argument
 * registers are copied once out of the vCPU, handed to the caller's dispatcher, and its status
 * and results written back to RAX/RBX/RCX/RDX. What each function does is the dispatcher's
 * business; this file only knows VERSION and FEATURES for the built-in default.
 */
#include <errno.h>

#include "log.h"
#include "vmm_priv.h"

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
	args[0] = io->regs[BUS_REG_RBX];
	args[1] = io->regs[BUS_REG_RCX];
	args[2] = io->regs[BUS_REG_RSI]; /* RDX holds the doorbell port */
	args[3] = io->regs[BUS_REG_RDI];
	status = vm->dispatch(vm->dispatch_ctx, io->value, (unsigned)io->regs[BUS_REG_CPL], args,
			      res);
	io->regs[BUS_REG_RAX] = (uint64_t)status;
	io->regs[BUS_REG_RBX] = res[0];
	io->regs[BUS_REG_RCX] = res[1];
	io->regs[BUS_REG_RDX] = res[2];
	io->regs_dirty = 1;
	pthread_mutex_lock(&vm->lock);
	vm->stats.doorbells++;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int
vmm_doorbell_register(struct vmm *vm)
{
	struct bus_dev d = {
		.name = "doorbell",
		.base = CLV_DOORBELL_PORT,
		.len = 4,
		.flags = BUS_F_REGS,
		.io = doorbell_io,
		.ctx = vm,
	};

	return bus_register_pio(&vm->bus, &d);
}

int64_t
vmm_dispatch_default(void *ctx, uint32_t fid, unsigned cpl, uint64_t args[4], uint64_t results[3])
{
	(void)ctx;
	(void)cpl;
	(void)results;
	switch (fid) {
	case CLV_FN_VERSION:
		return CLV_ABI_VERSION;
	case CLV_FN_FEATURES:
		return (args[0] == CLV_FN_VERSION || args[0] == CLV_FN_FEATURES)
			       ? CLV_OK
			       : CLV_E_NOT_SUPPORTED;
	default:
		return CLV_E_NOT_SUPPORTED;
	}
}
