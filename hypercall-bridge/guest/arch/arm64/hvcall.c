/*
 * The arm64 guest's hypercall transport (ARM64.md §4). The first call finds out which one the
 * VMM answers: VERSION by HVC returns the ABI version where the kernel forwards the ABI's SMCCC
 * range to the VMM (6.4 and later, with the filter set), and KVM's own NOT_SUPPORTED (-1)
 * otherwise; then every call uses HVC or the MMIO doorbell for good. Both end in the same
 * dispatcher. x0..x17 are clobbered by either (KVM's PSCI code zeroes x1..x3, SMCCC leaves
 * x4..x17 unpredictable).
 */
#include <stdint.h>

#include "cleave_abi.h"
#include "guest_io.h"

#define DOORBELL 0x0b000000ul

enum transport { T_UNKNOWN, T_HVC, T_MMIO };

static enum transport transport;

#define CALL_CLOBBERS                                                                              \
	"memory", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16",   \
		"x17"

static int64_t
call_hvc(uint32_t fid, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t res[3])
{
	register uint64_t x0 __asm__("x0") = fid;
	register uint64_t x1 __asm__("x1") = a0;
	register uint64_t x2 __asm__("x2") = a1;
	register uint64_t x3 __asm__("x3") = a2;
	register uint64_t x4 __asm__("x4") = a3;

	__asm__ volatile("hvc #0"
			 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4)
			 :
			 : CALL_CLOBBERS);
	res[0] = x1;
	res[1] = x2;
	res[2] = x3;
	return (int64_t)x0;
}

/* The stored value must be w0: the VMM reads the function ID from the store and from x0. */
static int64_t
call_mmio(uint32_t fid, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t res[3])
{
	register uint64_t x0 __asm__("x0") = fid;
	register uint64_t x1 __asm__("x1") = a0;
	register uint64_t x2 __asm__("x2") = a1;
	register uint64_t x3 __asm__("x3") = a2;
	register uint64_t x4 __asm__("x4") = a3;
	register uint64_t db __asm__("x5") = DOORBELL;

	__asm__ volatile("str w0, [%5]"
			 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4)
			 : "r"(db)
			 : "memory", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
			   "x15", "x16", "x17");
	res[0] = x1;
	res[1] = x2;
	res[2] = x3;
	return (int64_t)x0;
}

int64_t
hv_call(uint32_t fid, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t res[3])
{
	if (transport == T_UNKNOWN) {
		uint64_t r[3];

		transport = call_hvc(CLV_FN_VERSION, 0, 0, 0, 0, r) == (int64_t)CLV_ABI_VERSION
				    ? T_HVC
				    : T_MMIO;
	}
	if (transport == T_HVC)
		return call_hvc(fid, a0, a1, a2, a3, res);
	return call_mmio(fid, a0, a1, a2, a3, res);
}
