/*
 * Guest entry: the VMM has set long mode, flat segments, identity paging and RSP, so all that
 * is left is to call guest_main. If it ever returns, halt for good (each hlt exits to the VMM).
 */
	.section .text.start, "ax"
	.globl _start
_start:
	call	guest_main
1:	hlt
	jmp	1b
	.section .note.GNU-stack, "", @progbits
