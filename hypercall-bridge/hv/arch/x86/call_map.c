/*
 * x86's hypercall register mapping (call.h; ABI.md §5), pure so test_abi pins it: the function
 * ID is the value of the 4-byte `out` (EAX), the arguments RBX, RCX, RSI, RDI (RDX holds the
 * doorbell port), the status RAX and the results RBX, RCX, RDX. The caller's privilege is the
 * code segment selector's RPL (0 guest kernel, 3 guest user).
 */
#include "../../call.h"

enum { RAX, RBX, RCX, RDX, RSI, RDI };

void
call_map_in(const struct call_regs *regs, uint32_t trap_value, struct hv_call *c)
{
	c->fid = trap_value;
	c->cpl = (unsigned)(regs->mode & 3);
	c->args[0] = regs->r[RBX];
	c->args[1] = regs->r[RCX];
	c->args[2] = regs->r[RSI];
	c->args[3] = regs->r[RDI];
}

void
call_map_out(const struct hv_call *c, struct call_regs *regs)
{
	regs->r[RAX] = (uint64_t)c->status;
	regs->r[RBX] = c->results[0];
	regs->r[RCX] = c->results[1];
	regs->r[RDX] = c->results[2];
}
