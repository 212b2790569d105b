/*
 * arm64 guest entry: the VMM enters at EL1h, MMU off, interrupts masked, SP_EL1 set. The vector
 * table goes in first (ARM64.md §2: with VBAR_EL1 at its reset value a fault makes no exit at
 * all), then guest_main. If that ever returns, PSCI SYSTEM_OFF by HVC powers the VM off, which
 * the VMM takes as a clean stop, not a fault.
 */
	.section .text.start, "ax"
	.globl _start
_start:
	adrp	x9, guest_vectors
	add	x9, x9, :lo12:guest_vectors
	msr	vbar_el1, x9
	isb
	bl	guest_main
	movz	w0, #0x8400, lsl #16	/* PSCI SYSTEM_OFF, 0x84000008 */
	movk	w0, #0x0008
	hvc	#0
1:	b	1b
	.section .note.GNU-stack, "", @progbits
