/*
 * arm64's hypercall register mapping (ABI.md §6), pinned on the x86 host: the Makefile links
 * hypercall-bridge/hv/arch/arm64/call_map.c (pure C, the code the arm64 doorbell runs) in place
 * of x86's. The function ID is the trap's (w0 of the store or the HVC's x0), the arguments
 * x1..x4, the status x0, the results x1..x3, and the caller is the guest kernel only at EL1
 * (PSTATE.M's exception level), the guest user at EL0. A change here breaks deployed guests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cleave_abi.h"
#include "hypercall-bridge/hv/call.h"

/* PSTATE values: M[3:0] is the mode (EL in bits 3:2, SP selection in bit 0), DAIF above. */
#define EL0T 0x000u
#define EL1T 0x3c4u
#define EL1H 0x3c5u /* what cleave-hv enters the guest with */
#define EL2H 0x3c9u

static void
test_abi_arm64_arguments(void **state)
{
	struct call_regs regs = {.r = {CLV_FN_SHARED_PAGE, 0x40200000, 12, 13, 14, 15},
				 .mode = EL1H};
	struct hv_call c;

	(void)state;
	memset(&c, 0xee, sizeof(c));
	call_map_in(&regs, CLV_FN_SHARED_PAGE, &c);
	assert_int_equal(c.fid, CLV_FN_SHARED_PAGE);
	assert_int_equal(c.args[0], 0x40200000); /* x1 */
	assert_int_equal(c.args[1], 12);         /* x2 */
	assert_int_equal(c.args[2], 13);         /* x3 */
	assert_int_equal(c.args[3], 14);         /* x4; x5 is no argument */
	assert_int_equal(c.cpl, 0);
	/* The function ID is the trap's: the stored word (w0) or the HVC's ID as KVM gives it. */
	call_map_in(&regs, CLV_FN_VERSION, &c);
	assert_int_equal(c.fid, CLV_FN_VERSION);
}

static void
test_abi_arm64_privilege_from_pstate(void **state)
{
	struct call_regs regs = {.r = {CLV_FN_STATUS}};
	struct hv_call c;

	(void)state;
	regs.mode = EL1T;
	call_map_in(&regs, CLV_FN_STATUS, &c);
	assert_int_equal(c.cpl, 0);
	regs.mode = EL1H | 0xf0000000u; /* NZCV flags change nothing */
	call_map_in(&regs, CLV_FN_STATUS, &c);
	assert_int_equal(c.cpl, 0);
	regs.mode = EL0T; /* the guest's user mode (and an unreadable PSTATE) */
	call_map_in(&regs, CLV_FN_STATUS, &c);
	assert_int_equal(c.cpl, 3);
	regs.mode = EL2H; /* never the guest kernel: least privileged */
	call_map_in(&regs, CLV_FN_STATUS, &c);
	assert_int_equal(c.cpl, 3);
}

static void
test_abi_arm64_results(void **state)
{
	struct call_regs regs = {.r = {CLV_FN_STATUS, 1, 2, 3, 4, 5}, .mode = EL1H};
	struct hv_call c = {.status = CLV_E_INVALID_STATE, .results = {21, 22, 23}};

	(void)state;
	call_map_out(&c, &regs);
	assert_int_equal((int64_t)regs.r[0], CLV_E_INVALID_STATE); /* x0 */
	assert_int_equal(regs.r[1], 21);                           /* x1 */
	assert_int_equal(regs.r[2], 22);                           /* x2 */
	assert_int_equal(regs.r[3], 23);                           /* x3 */
	assert_int_equal(regs.r[4], 4);                            /* x4 as the guest had it */
	assert_int_equal(regs.r[5], 5);
	assert_int_equal(regs.mode, EL1H);
	c.status = (int64_t)CLV_ABI_VERSION;
	call_map_out(&c, &regs);
	assert_int_equal(regs.r[0], 0x00010001); /* VERSION 1.1 in x0 */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi_arm64_arguments),
		cmocka_unit_test(test_abi_arm64_privilege_from_pstate),
		cmocka_unit_test(test_abi_arm64_results),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
