/*
 * One guest hypercall as the ABI sees it (function ID, arguments, caller privilege, status,
 * results) and the pure mapping between it and the vCPU's registers, which is per architecture
 * (arch/<arch>/call_map.c; ABI.md §5 for x86, §6 for arm64). Declared once here, defined once
 * per folder, like exit_decode.h: no kernel types, no ioctl, so each architecture's mapping is
 * unit-tested on the x86 host (tests/unit/test_abi.c, test_abi_arm64.c) and the doorbells use
 * exactly the tested code. Not for use outside hypercall-bridge/hv/ and those tests.
 */
#ifndef CLEAVE_CALL_H
#define CLEAVE_CALL_H

#include <stdint.h>

/* How the call reached cleave-hv: the exit decoder says, the VMM counts each (vmm_stats). */
enum call_via {
	CALL_VIA_PORT, /* x86: a 4-byte `out` to the doorbell port (0: every x86 doorbell exit) */
	CALL_VIA_MMIO, /* arm64: a 4-byte store to the doorbell page */
	CALL_VIA_HVC,  /* arm64: HVC forwarded by the SMCCC filter (Linux 6.4+) */
	CALL_VIA_COUNT
};

/*
 * The vCPU's call registers as the architecture numbers them (x86: RAX, RBX, RCX, RDX, RSI,
 * RDI; arm64: x0..x5) and the raw register the caller's privilege comes from (x86: the CS
 * selector; arm64: PSTATE). Filled by arch_call_read, written back by arch_call_write.
 */
struct call_regs {
	uint64_t r[6];
	uint64_t mode;
};

struct hv_call {
	uint32_t fid;
	unsigned cpl; /* 0 guest kernel, 3 guest user (dispatch's caller classes) */
	enum call_via via;
	uint64_t args[4];
	int64_t status;
	uint64_t results[3];
};

/*
 * Fills c's fid, cpl and args from regs (borrowed) and the value the trap carried (x86: the
 * `out` value; arm64: the stored word or the HVC's function ID). Leaves via, status, results.
 */
void call_map_in(const struct call_regs *regs, uint32_t trap_value, struct hv_call *c);
/* Writes c's status and results into regs; registers that carry neither keep their values. */
void call_map_out(const struct hv_call *c, struct call_regs *regs);

#endif
