/*
 * x86's devices (arch.h): the 16550 console on COM1's ports and the hypercall doorbell, a
 * 4-byte `out` of the function ID to CLV_DOORBELL_PORT. The argument registers are copied once
 * out of the vCPU (vcpu_regs.c), mapped to the ABI's call by call_map.c, handed to the VM's
 * dispatcher by the shared vmm_doorbell_io, and the status and results written back to
 * RAX/RBX/RCX/RDX. What each function does is the dispatcher's business (vmm.c has the
 * built-in default).
 */
#include "../../vmm_priv.h"

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
		.io = vmm_doorbell_io,
		.ctx = vm,
	};

	int rc = bus_register_pio(&vm->bus, &com1);

	return rc == 0 ? bus_register_pio(&vm->bus, &d) : rc;
}
