/*
 * A guest that faults on purpose, linked with the corporate guest's own vector table
 * (hypercall-bridge/guest/arch/arm64/vectors.S) and linker script: sets VBAR_EL1 as the real
 * guest does, prints "f" on the 16550, then executes a permanently undefined instruction. The
 * synchronous exception (current EL, SPx: entry 4) must end the VM as faulted through the
 * doorbell's fault word, instead of spinning inside KVM (ARM64.md §2). hv_smoke runs it.
 */
	.section .text.start, "ax"
	.globl	_start
_start:
	adrp	x9, guest_vectors
	add	x9, x9, :lo12:guest_vectors
	msr	vbar_el1, x9
	isb
	movz	x9, #0x0900, lsl #16	/* the UART's data register */
	mov	w10, #'f'
	strb	w10, [x9]
	mov	w10, #'\n'
	strb	w10, [x9]
	.globl	fault_here
fault_here:
	udf	#0
1:	b	1b
	.section .note.GNU-stack, "", @progbits
