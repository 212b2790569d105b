/*
 * arm64's hypercall register mapping (call.h; ABI.md §6), pure so it is unit-tested on the x86
 * host (tests/unit/test_abi_arm64.c): the function ID is the trap's (w0 of the store, which the
 * ABI requires to be x0, or the HVC's x0 as KVM reports it), the arguments x1..x4, the status
 * x0 and the results x1..x3. The caller is the guest kernel only from EL1 (EL1t or EL1h, by
 * PSTATE.M[3:2]); EL0, and anything else, is the least privileged caller.
 */
#include "../../call.h"

#define PSTATE_EL_SHIFT 2
#define PSTATE_EL_MASK  0x3u

void
call_map_in(const struct call_regs *regs, uint32_t trap_value, struct hv_call *c)
{
	c->fid = trap_value;
	c->cpl = ((regs->mode >> PSTATE_EL_SHIFT) & PSTATE_EL_MASK) == 1 ? 0 : 3;
	for (unsigned i = 0; i < 4; i++)
		c->args[i] = regs->r[1 + i];
}

void
call_map_out(const struct hv_call *c, struct call_regs *regs)
{
	regs->r[0] = (uint64_t)c->status;
	for (unsigned i = 0; i < 3; i++)
		regs->r[1 + i] = c->results[i];
}
