/*
 * The guest's exception vectors (VBAR_EL1). The guest takes no exception by design, so every
 * entry is a fault: it stores the entry's number (0..15, in the architecture's order: current EL
 * with SP0, current EL with SPx, lower EL AArch64, lower EL AArch32; each sync, IRQ, FIQ,
 * SError) to the doorbell page's fault word with ESR_EL1, ELR_EL1 and FAR_EL1 in x1..x3, and
 * the VMM stops the VM as faulted and logs them. Without this a fault spins inside KVM forever.
 */
#define DOORBELL_FAULT 0x0b000008

	.macro	entry n
	.balign	0x80
	mov	x0, #\n
	b	report
	.endm

	.text
	.balign	0x800
	.globl	guest_vectors
guest_vectors:
	.irp	n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	entry	\n
	.endr

report:
	mrs	x1, esr_el1
	mrs	x2, elr_el1
	mrs	x3, far_el1
	movz	x9, #(DOORBELL_FAULT >> 16), lsl #16
	movk	x9, #(DOORBELL_FAULT & 0xffff)
	str	w0, [x9]
1:	b	1b			/* the VMM never resumes a faulted guest */
	.section .note.GNU-stack, "", @progbits
