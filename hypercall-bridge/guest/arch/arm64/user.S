/*
 * Guest user mode on arm64 (EL0t). user_bench(n) drops from EL1 to EL0 by ERET, makes n VERSION
 * hypercalls through the MMIO doorbell (HVC is undefined at EL0; with the MMU off nothing stops
 * EL0 from reaching the doorbell page), then spins until the host stops the vCPU. One-way, as on
 * x86: nothing brings it back to EL1. State lives in x19/x20, which the VMM never writes.
 */
#define FN_VERSION  0xf2000000
#define USER_STACK  0x40180000	/* RAM + 0x180000, as on x86 */
#define SPSR_EL0T   0x3c0	/* EL0t with D, A, I and F masked */

	.text
	.globl	user_bench
user_bench:
	mov	x19, x0
	movz	x20, #0x0b00, lsl #16	/* the doorbell page */
	adr	x9, user_loop
	msr	elr_el1, x9
	mov	x9, #SPSR_EL0T
	msr	spsr_el1, x9
	movz	x9, #(USER_STACK >> 16), lsl #16
	msr	sp_el0, x9
	eret

user_loop:				/* EL0 from here on */
	cbz	x19, 2f
	movz	w0, #(FN_VERSION >> 16), lsl #16
	str	w0, [x20]
	sub	x19, x19, #1
	b	user_loop
2:	yield
	b	2b
	.section .note.GNU-stack, "", @progbits
